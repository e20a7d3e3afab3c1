/** specs/vectors/mix.json against protocol/mix-packet.ts (specs/mix.md §2) and protocol/mix-message.ts (§8). */
import { expect } from 'chai';
import { concatBytes, toHex } from '../../protocol/bytes.js';
import { createMixPacket, processMixPacket, type MixResult } from '../../protocol/mix-packet.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { createIdentity } from '../../protocol/address.js';
import {
  MAX_MIX_FRAGMENTED_BYTES,
  MAX_MIX_MESSENGER_BYTES,
  MIX_ACK_BATCH,
  MIX_FRAGMENT_CHUNK,
  MIX_FRAGMENT_KIND,
  MIX_MAX_FRAGMENTS,
  MIX_READS_BATCHES_MARK,
  MIX_READS_FRAGMENTS_MARK,
  mixBoxNonce,
  mixFragmentCount,
  sealMixFragments,
  MIX_ACK_BATCH_KIND,
  MIX_ACK_KIND,
  MIX_ADDRESS_KIND,
  MIX_MESSAGE_OVERHEAD,
  MIX_MESSAGE_VERSION,
  mixSecretsOf,
  openMixMessage,
  sealMixAck,
  sealMixAckBatch,
  sealMixAddress,
  sealMixBox,
  sealMixMessage,
} from '../../protocol/mix-message.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Relay {
  identity: string;
  secretKey: string;
  publicKey: string;
}
interface Valid {
  name: string;
  path: number[];
  delays: number[];
  final: { kind: 'deliver'; inbox: string } | { kind: 'drop' };
  payload: string;
  random: string;
  randomCalls: number[];
  packet: string;
  hops: Record<string, unknown>[];
}
interface Invalid {
  name: string;
  packet: string;
  relay: number;
  identity?: string;
  code: string;
}

const ctx = (r: Relay, identity?: string) => ({
  identity: hex(identity ?? r.identity),
  keys: [{ publicKey: hex(r.publicKey), secretKey: hex(r.secretKey) }],
  replay: new ReplayFilter({ capacity: 100 }),
});

function describe_(r: MixResult): Record<string, unknown> {
  if (r.kind === 'forward') return { kind: r.kind, delayMs: r.delayMs, next: toHex(r.next), packet: toHex(r.packet) };
  if (r.kind === 'deliver') return { kind: r.kind, delayMs: r.delayMs, inbox: toHex(r.inbox), payload: toHex(r.payload) };
  return { kind: r.kind, delayMs: r.delayMs };
}

describeEachBinding('vectors: mix packets', () => {
  const v = readVectors<{ relays: Relay[]; valid: Valid[]; invalid: Invalid[] }>('mix.json');

  for (const t of v.valid) {
    it(`valid: ${t.name}`, () => {
      const random = hex(t.random);
      let off = 0;
      const source = (n: number): Uint8Array => {
        const b = random.subarray(off, off + n);
        off += n;
        return Uint8Array.from(b);
      };
      const path = t.path.map((i, k) => ({ identity: hex(v.relays[i]!.identity), mixKey: hex(v.relays[i]!.publicKey), delayMs: t.delays[k]! }));
      const final = t.final.kind === 'deliver' ? { kind: 'deliver' as const, inbox: hex(t.final.inbox) } : { kind: 'drop' as const };
      expect(toHex(createMixPacket(path, final, hex(t.payload), { random: source }))).to.equal(t.packet);
      let p = hex(t.packet);
      t.path.forEach((i, k) => {
        const r = processMixPacket(p, ctx(v.relays[i]!));
        expect(describe_(r)).to.deep.equal(t.hops[k]);
        if (r.kind === 'forward') p = r.packet;
      });
    });
  }

  for (const t of v.invalid) {
    it(`invalid: ${t.name} → ${t.code}`, () => {
      expectCode(() => processMixPacket(hex(t.packet), ctx(v.relays[t.relay]!, t.identity)), t.code);
    });
  }

  it('refuses a replayed packet under the same key (ERR_MIX_REPLAY)', () => {
    const t = v.valid[0]!;
    const c = ctx(v.relays[t.path[0]!]!);
    processMixPacket(hex(t.packet), c);
    expectCode(() => processMixPacket(hex(t.packet), c), 'ERR_MIX_REPLAY');
  });
});

interface MessengerVectors {
  maxBody: number;
  identities: { seed: string; identity: string; inboxSecret: string; inbox: string; key: string }[];
  boxes: { from: number; to: number; id: string; nonce: string; body: string; data: string }[];
  acks: { from: number; to: number; id: string; nonce: string; data: string }[];
  addresses: { from: number; to: number; id: string; nonce: string; seq: number; gateway: string; inbox: string; key: string; data: string }[];
  maxAckBatch: number;
  readsBatchesMark: string;
  batches: { from: number; to: number; id: string; nonce: string; acked: string[]; data: string }[];
  fragmentChunk: number;
  maxFragments: number;
  maxFragmented: number;
  readsFragmentsMark: string;
  fragments: { from: number; to: number; id: string; length: number; body: string; nonces: string[]; data: string[] }[];
}

describeEachBinding('vectors: a Messenger in message mode (specs/mix.md §8)', () => {
  const v = readVectors<{ messenger: MessengerVectors }>('mix.json').messenger;
  let ids: ReturnType<typeof createIdentity>[] = [];
  before(() => (ids = v.identities.map((i) => createIdentity(hex(i.seed)))));

  it('MAX_MIX_MESSENGER_BYTES matches, and each identity derives its mix secrets (§8.1)', () => {
    expect(v.maxBody).to.equal(MAX_MIX_MESSENGER_BYTES);
    v.identities.forEach((i, n) => {
      const m = mixSecretsOf(ids[n]!);
      expect(toHex(ids[n]!.publicKey)).to.equal(i.identity);
      expect([toHex(m.inboxSecret), toHex(m.inbox), toHex(m.keys.publicKey)]).to.deep.equal([i.inboxSecret, i.inbox, i.key]);
    });
  });

  for (const [n, b] of v.boxes.entries()) {
    it(`box ${n} (${b.body.length / 2} bytes): sealed as given, opened by its recipient, refused when changed (§8.2)`, () => {
      const from = ids[b.from]!;
      const to = ids[b.to]!;
      expect(toHex(sealMixMessage(from, to.publicKey, hex(b.id), hex(b.body), hex(b.nonce)))).to.equal(b.data);
      const m = openMixMessage(to, hex(b.data));
      expect([m.kind, toHex(m.from), toHex(m.id), toHex(m.body)]).to.deep.equal(['message', toHex(from.publicKey), b.id, b.body]);
      // Another sender claimed, a byte of the box changed, or opened by the sender: ERR_MESSAGE_AUTH.
      const claimed = hex(b.data);
      claimed.set(createIdentity(new Uint8Array(32).fill(7)).publicKey, 1);
      expectCode(() => openMixMessage(to, claimed), 'ERR_MESSAGE_AUTH');
      const flipped = hex(b.data);
      flipped[flipped.length - 1]! ^= 1;
      expectCode(() => openMixMessage(to, flipped), 'ERR_MESSAGE_AUTH');
      expectCode(() => openMixMessage(from, hex(b.data)), 'ERR_MESSAGE_AUTH');
    });
  }

  for (const [n, a] of v.acks.entries()) {
    it(`acknowledgement ${n}: sealed as given, opened as an acknowledgement, never as a message (§8.5)`, () => {
      const from = ids[a.from]!;
      const to = ids[a.to]!;
      expect(toHex(sealMixAck(from, to.publicKey, hex(a.id), hex(a.nonce)))).to.equal(a.data);
      expect(a.data.length / 2).to.equal(MIX_MESSAGE_OVERHEAD);
      const m = openMixMessage(to, hex(a.data));
      expect([m.kind, toHex(m.from), toHex(m.id), m.body.length]).to.deep.equal(['ack', toHex(from.publicKey), a.id, 0]);
      // Its kind byte changed to a message's: the associated data differs, it does not open.
      const asMessage = hex(a.data);
      asMessage[0] = MIX_MESSAGE_VERSION;
      expectCode(() => openMixMessage(to, asMessage), 'ERR_MESSAGE_AUTH');
      // A message box relabelled as an acknowledgement does not open either; nor does an unknown kind.
      const box = sealMixMessage(from, to.publicKey, hex(a.id), new Uint8Array(0));
      box[0] = MIX_ACK_KIND;
      expectCode(() => openMixMessage(to, box), 'ERR_MESSAGE_AUTH');
      const unknown = hex(a.data);
      unknown[0] = 4;
      expectCode(() => openMixMessage(to, unknown), 'ERR_MESSAGE_AUTH');
    });
  }

  it('has address boxes (§8.6)', () => expect(v.addresses).to.have.length.greaterThan(0));
  for (const [n, a] of (v.addresses ?? []).entries()) {
    it(`address box ${n}: sealed as given, opened as the sender's mix address, never as another kind (§8.6)`, () => {
      const from = ids[a.from]!;
      const to = ids[a.to]!;
      const mix = { gateway: hex(a.gateway), inbox: hex(a.inbox), key: hex(a.key) };
      expect(toHex(sealMixAddress(from, to.publicKey, hex(a.id), mix, a.seq, hex(a.nonce)))).to.equal(a.data);
      expect(a.data.length / 2).to.equal(MIX_MESSAGE_OVERHEAD + 105);
      const m = openMixMessage(to, hex(a.data));
      expect([m.kind, toHex(m.from), toHex(m.id), toHex(m.body), m.seq]).to.deep.equal([
        'address',
        toHex(from.publicKey),
        a.id,
        a.gateway + a.inbox + a.key,
        a.seq,
      ]);
      // The body's first form (the address alone, no sequence), another version, a sequence over 2^53 − 1: refused.
      const seqBytes = (hi: number, lo: number): Uint8Array => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setUint32(0, hi);
        new DataView(b.buffer).setUint32(4, lo);
        return b;
      };
      const address = hex(a.gateway + a.inbox + a.key);
      for (const body of [
        address,
        concatBytes(Uint8Array.of(2), seqBytes(0, 1), address),
        concatBytes(Uint8Array.of(1), seqBytes(2 ** 21, 0), address),
        concatBytes(Uint8Array.of(1), seqBytes(0, 1), address, Uint8Array.of(0)),
      ])
        expectCode(() => openMixMessage(to, sealMixBox(MIX_ADDRESS_KIND, from, to.publicKey, hex(a.id), body)), 'ERR_MESSAGE_AUTH');
      expect(
        openMixMessage(
          to,
          sealMixBox(MIX_ADDRESS_KIND, from, to.publicKey, hex(a.id), concatBytes(Uint8Array.of(1), seqBytes(2 ** 21 - 1, 2 ** 32 - 1), address)),
        ).seq,
      ).to.equal(Number.MAX_SAFE_INTEGER);
      expect([toHex(m.mix!.gateway), toHex(m.mix!.inbox), toHex(m.mix!.key)]).to.deep.equal([a.gateway, a.inbox, a.key]);
      // Relabelled as a message or an acknowledgement it does not open; nor does a message box relabelled as kind 3.
      for (const k of [MIX_MESSAGE_VERSION, MIX_ACK_KIND]) {
        const other = hex(a.data);
        other[0] = k;
        expectCode(() => openMixMessage(to, other), 'ERR_MESSAGE_AUTH');
      }
      const box = sealMixMessage(from, to.publicKey, hex(a.id), hex(a.gateway + a.inbox + a.key));
      box[0] = MIX_ADDRESS_KIND;
      expectCode(() => openMixMessage(to, box), 'ERR_MESSAGE_AUTH');
    });
  }

  it("a box's nonce says whether its sender reads batches: the vectors' random nonces do not, a nonce ending with the mark does, and senders mark theirs (§8.2)", () => {
    expect(v.readsBatchesMark).to.equal(toHex(MIX_READS_BATCHES_MARK));
    const all = [...v.boxes, ...v.acks, ...v.addresses, ...v.batches];
    for (const b of all) expect(b.nonce.endsWith(v.readsBatchesMark), b.nonce).to.equal(false);
    for (const b of all) expect(openMixMessage(ids[b.to]!, hex(b.data)).readsBatches).to.equal(false);
    const b = v.boxes[0]!;
    const [from, to] = [ids[b.from]!, ids[b.to]!];
    const marked = hex(b.nonce.slice(0, 40) + v.readsBatchesMark);
    expect(openMixMessage(to, sealMixMessage(from, to.publicKey, hex(b.id), hex(b.body), marked)).readsBatches).to.equal(true);
    // A fresh nonce, as a sender draws it for every kind, carries the mark.
    for (const data of [
      sealMixMessage(from, to.publicKey, hex(b.id), hex(b.body)),
      sealMixAck(from, to.publicKey, hex(b.id)),
      sealMixAckBatch(from, to.publicKey, [hex(b.id)]),
    ])
      expect(openMixMessage(to, data).readsBatches).to.equal(true);
  });

  it('has acknowledgement batches, the largest of MIX_ACK_BATCH ids (§8.5)', () => {
    expect(v.maxAckBatch).to.equal(MIX_ACK_BATCH);
    expect(v.batches.map((b) => b.acked.length)).to.include(MIX_ACK_BATCH);
  });
  for (const [n, b] of (v.batches ?? []).entries()) {
    it(`acknowledgement batch ${n} (${b.acked.length} ids): sealed as given, opened with its ids in order, never as another kind (§8.2, §8.5)`, () => {
      const from = ids[b.from]!;
      const to = ids[b.to]!;
      expect(toHex(sealMixAckBatch(from, to.publicKey, b.acked.map(hex), hex(b.id), hex(b.nonce)))).to.equal(b.data);
      expect(b.data.length / 2).to.equal(MIX_MESSAGE_OVERHEAD + 1 + 16 * b.acked.length);
      const m = openMixMessage(to, hex(b.data));
      expect([m.kind, toHex(m.from), toHex(m.id), m.acked!.map(toHex)]).to.deep.equal(['acks', toHex(from.publicKey), b.id, b.acked]);
      // No id, more than MIX_ACK_BATCH, a part of an id, another version: refused.
      const idsBytes = b.acked.map(hex);
      for (const body of [
        Uint8Array.of(1),
        concatBytes(Uint8Array.of(1), ...Array.from({ length: MIX_ACK_BATCH + 1 }, () => idsBytes[0]!)),
        concatBytes(Uint8Array.of(1), ...idsBytes, Uint8Array.of(0)),
        concatBytes(Uint8Array.of(2), ...idsBytes),
      ])
        expectCode(() => openMixMessage(to, sealMixBox(MIX_ACK_BATCH_KIND, from, to.publicKey, hex(b.id), body)), 'ERR_MESSAGE_AUTH');
      expectCode(() => sealMixAckBatch(from, to.publicKey, []), 'ERR_BAD_LENGTH');
      expectCode(
        () =>
          sealMixAckBatch(
            from,
            to.publicKey,
            Array.from({ length: MIX_ACK_BATCH + 1 }, () => idsBytes[0]!),
          ),
        'ERR_BAD_LENGTH',
      );
      // Relabelled as a single acknowledgement or a message it does not open.
      for (const k of [MIX_MESSAGE_VERSION, MIX_ACK_KIND]) {
        const other = hex(b.data);
        other[0] = k;
        expectCode(() => openMixMessage(to, other), 'ERR_MESSAGE_AUTH');
      }
    });
  }

  it('fragments: MIX_FRAGMENT_CHUNK, MIX_MAX_FRAGMENTS and MAX_MIX_FRAGMENTED_BYTES match (§8.4)', () => {
    expect([v.fragmentChunk, v.maxFragments, v.maxFragmented]).to.deep.equal([MIX_FRAGMENT_CHUNK, MIX_MAX_FRAGMENTS, MAX_MIX_FRAGMENTED_BYTES]);
    expect([
      mixFragmentCount(MAX_MIX_MESSENGER_BYTES),
      mixFragmentCount(MAX_MIX_MESSENGER_BYTES + 1),
      mixFragmentCount(MAX_MIX_FRAGMENTED_BYTES),
    ]).to.deep.equal([1, 2, MIX_MAX_FRAGMENTS]);
    const [from, to] = [ids[0]!, ids[1]!];
    expectCode(() => sealMixFragments(from, to.publicKey, new Uint8Array(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES + 1)), 'ERR_LIMIT');
    expectCode(() => sealMixFragments(from, to.publicKey, new Uint8Array(16), new Uint8Array(MAX_MIX_MESSENGER_BYTES)), 'ERR_BAD_LENGTH');
    expect(sealMixFragments(from, to.publicKey, new Uint8Array(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES))).to.have.length(MIX_MAX_FRAGMENTS);
  });
  for (const [n, f] of (v.fragments ?? []).entries()) {
    it(`fragmented message ${n} (${f.length} bytes, ${f.data.length} fragments): sealed as given, each opened and authenticated alone, the chunks the body (§8.4)`, () => {
      const from = ids[f.from]!;
      const to = ids[f.to]!;
      expect(sealMixFragments(from, to.publicKey, hex(f.id), hex(f.body), f.nonces.map(hex)).map(toHex)).to.deep.equal(f.data);
      const opened = f.data.map((d) => openMixMessage(to, hex(d)));
      expect(opened.map((m) => [m.kind, toHex(m.from), toHex(m.id), m.fragment!.index, m.fragment!.count])).to.deep.equal(
        f.data.map((_, i) => ['fragment', toHex(from.publicKey), f.id, i, f.data.length]),
      );
      expect(toHex(concatBytes(...opened.map((m) => m.fragment!.chunk)))).to.equal(f.body);
      expect(opened.every((m) => !m.readsFragments && !m.readsBatches)).to.equal(true);
      // Any one byte changed: it does not open. Relabelled as a message, it does not open either.
      const changed = hex(f.data[0]!);
      changed[changed.length - 1]! ^= 1;
      expectCode(() => openMixMessage(to, changed), 'ERR_MESSAGE_AUTH');
      const relabelled = hex(f.data[0]!);
      relabelled[0] = MIX_MESSAGE_VERSION;
      expectCode(() => openMixMessage(to, relabelled), 'ERR_MESSAGE_AUTH');
      // Another version, a count of 1 or over MIX_MAX_FRAGMENTS, an index not below the count, a short chunk before
      // the last, an empty last chunk: refused.
      const full = new Uint8Array(MIX_FRAGMENT_CHUNK);
      for (const body of [
        concatBytes(Uint8Array.of(2, 0, 2), full),
        concatBytes(Uint8Array.of(1, 0, 1), full),
        concatBytes(Uint8Array.of(1, 0, MIX_MAX_FRAGMENTS + 1), full),
        concatBytes(Uint8Array.of(1, 2, 2), full),
        concatBytes(Uint8Array.of(1, 0, 2), full.subarray(1)),
        Uint8Array.of(1, 1, 2),
      ])
        expectCode(() => openMixMessage(to, sealMixBox(MIX_FRAGMENT_KIND, from, to.publicKey, hex(f.id), body)), 'ERR_MESSAGE_AUTH');
      expect(openMixMessage(to, sealMixBox(MIX_FRAGMENT_KIND, from, to.publicKey, hex(f.id), Uint8Array.of(1, 1, 2, 7))).fragment!.chunk).to.deep.equal(
        Uint8Array.of(7),
      );
    });
  }

  it("a box's nonce says whether its sender reads fragments: bytes 16 to 20, before the batches mark; senders mark theirs (§8.2, §8.4)", () => {
    expect(v.readsFragmentsMark).to.equal(toHex(MIX_READS_FRAGMENTS_MARK));
    const nonce = mixBoxNonce();
    expect(toHex(nonce.subarray(16))).to.equal(v.readsFragmentsMark + v.readsBatchesMark);
    const b = v.boxes[0]!;
    const [from, to] = [ids[b.from]!, ids[b.to]!];
    // The fragments mark alone (an older nonce's last 4 bytes random), the batches mark alone, both.
    const at = (frg: boolean, ack: boolean): Uint8Array =>
      hex(b.nonce.slice(0, 32) + (frg ? v.readsFragmentsMark : b.nonce.slice(32, 40)) + (ack ? v.readsBatchesMark : b.nonce.slice(40)));
    for (const [frg, ack] of [
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const m = openMixMessage(to, sealMixMessage(from, to.publicKey, hex(b.id), hex(b.body), at(frg, ack)));
      expect([m.readsFragments, m.readsBatches]).to.deep.equal([frg, ack]);
    }
    expect(openMixMessage(to, sealMixAck(from, to.publicKey, hex(b.id))).readsFragments).to.equal(true);
  });

  it('refuses a body over MAX_MIX_MESSENGER_BYTES at the sender (ERR_LIMIT)', () => {
    expectCode(() => sealMixMessage(ids[0]!, ids[1]!.publicKey, new Uint8Array(16), new Uint8Array(MAX_MIX_MESSENGER_BYTES + 1)), 'ERR_LIMIT');
  });
});
