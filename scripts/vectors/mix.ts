/**
 * specs/vectors/mix.json: the message-mode mix packet (specs/mix.md §2, protocol/mix-packet.ts). Each valid vector
 * gives the path's keys and delays, the final instruction, the payload and the sender's random bytes, the packet,
 * and what each hop makes of it; invalid ones give a packet, the relay's keys and the code processing throws.
 * `messenger` (mix.md §8.1–§8.2): the mix secrets an identity derives, and boxes between two identities.
 */

/** mix.md §8: identities' derived mix secrets, and message boxes (with their nonces) between them. */
function messengerVectors(): object {
  const rnd = seeded('mix-messenger');
  const ids = ['alice', 'bob'].map(() => createIdentity(rnd(32)));
  const identities = ids.map((id) => {
    const m = mixSecretsOf(id);
    return {
      seed: toHex(id.secretKey.subarray(0, 32)),
      identity: toHex(id.publicKey),
      inboxSecret: toHex(m.inboxSecret),
      inbox: toHex(m.inbox),
      key: toHex(m.keys.publicKey),
    };
  });
  const bodies = [new Uint8Array(0), new TextEncoder().encode('hello through the mixes'), rnd(MAX_MIX_MESSENGER_BYTES)];
  const boxes = bodies.map((body, i) => {
    const [from, to] = i % 2 === 0 ? [ids[0]!, ids[1]!] : [ids[1]!, ids[0]!];
    const id = rnd(16);
    const nonce = rnd(24);
    const data = sealMixMessage(from, to.publicKey, id, body, nonce);
    const back = openMixMessage(to, data);
    if (toHex(back.body) !== toHex(body) || toHex(back.from) !== toHex(from.publicKey)) throw new Error('mix messenger box round trip');
    return { from: i % 2 === 0 ? 0 : 1, to: i % 2 === 0 ? 1 : 0, id: toHex(id), nonce: toHex(nonce), body: toHex(body), data: toHex(data) };
  });
  // Acknowledgements (mix.md §8.5): kind 2, the acknowledged box's id, empty body. Drawn after the boxes, so the
  // values above stay as they were.
  const acks = boxes.map((b) => {
    const [from, to] = [ids[b.to]!, ids[b.from]!];
    const nonce = rnd(24);
    const data = sealMixAck(from, to.publicKey, Uint8Array.from(Buffer.from(b.id, 'hex')), nonce);
    const back = openMixMessage(to, data);
    if (back.kind !== 'ack' || toHex(back.id) !== b.id) throw new Error('mix messenger ack round trip');
    return { from: b.to, to: b.from, id: b.id, nonce: toHex(nonce), data: toHex(data) };
  });
  // Address boxes (mix.md §8.2, §8.6): kind 3, version 1 | seq | the sender's mix address as the body (its own inbox
  // and key, a gateway of the seeded identities); seq a millisecond clock's value, the second with the top of the
  // 2^53 range. Drawn after the acknowledgements, so the values above stay as they were.
  const addresses = [0, 1].map((n) => {
    const [from, to] = [ids[n]!, ids[1 - n]!];
    const m = mixSecretsOf(from);
    const mix = { gateway: createIdentity(rnd(32)).publicKey, inbox: m.inbox, key: m.keys.publicKey };
    const id = rnd(16);
    const nonce = rnd(24);
    const seq = n === 0 ? 1_765_000_000_000 : Number.MAX_SAFE_INTEGER;
    const data = sealMixAddress(from, to.publicKey, id, mix, seq, nonce);
    const back = openMixMessage(to, data);
    if (back.kind !== 'address' || back.seq !== seq || toHex(back.body) !== toHex(concatBytes(mix.gateway, mix.inbox, mix.key)))
      throw new Error('mix messenger address round trip');
    return {
      from: n,
      to: 1 - n,
      id: toHex(id),
      nonce: toHex(nonce),
      seq,
      gateway: toHex(mix.gateway),
      inbox: toHex(mix.inbox),
      key: toHex(mix.key),
      data: toHex(data),
    };
  });
  // Acknowledgement batches (mix.md §8.2, §8.5): kind 4, a random batch id, body version 1 | the acknowledged ids;
  // one of two ids, one of MIX_ACK_BATCH (the largest) with a repeated id. Drawn after the address boxes, so the
  // values above stay as they were.
  const batches = [2, MIX_ACK_BATCH].map((n, k) => {
    const [from, to] = [ids[1 - (k % 2)]!, ids[k % 2]!];
    const acked = Array.from({ length: n }, () => rnd(16));
    if (n > 2) acked[n - 1] = acked[0]!; // a repeat: the decoder keeps it, the receiver ignores it
    const id = rnd(16);
    const nonce = rnd(24);
    const data = sealMixAckBatch(from, to.publicKey, acked, id, nonce);
    const back = openMixMessage(to, data);
    if (back.kind !== 'acks' || back.acked!.map(toHex).join() !== acked.map(toHex).join()) throw new Error('mix messenger batch round trip');
    return { from: 1 - (k % 2), to: k % 2, id: toHex(id), nonce: toHex(nonce), acked: acked.map(toHex), data: toHex(data) };
  });
  // Fragments (mix.md §8.4): kind 5, the message's id on every fragment, body version 1 | index | count | chunk; a
  // message of MAX_MIX_MESSENGER_BYTES + 1 (2 fragments, the last of 4 bytes) and one of 1,200 (3). Drawn after the
  // batches, so the values above stay as they were.
  const fragments = [MAX_MIX_MESSENGER_BYTES + 1, 1200].map((length, k) => {
    const [from, to] = [ids[k % 2]!, ids[1 - (k % 2)]!];
    const body = rnd(length);
    const id = rnd(16);
    const nonces = Array.from({ length: mixFragmentCount(length) }, () => rnd(24));
    const data = sealMixFragments(from, to.publicKey, id, body, nonces);
    const back = data.map((d) => openMixMessage(to, d));
    if (
      back.some((b, i) => b.kind !== 'fragment' || b.fragment!.index !== i || toHex(b.id) !== toHex(id)) ||
      toHex(concatBytes(...back.map((b) => b.fragment!.chunk))) !== toHex(body)
    )
      throw new Error('mix messenger fragments round trip');
    return { from: k % 2, to: 1 - (k % 2), id: toHex(id), length, body: toHex(body), nonces: nonces.map(toHex), data: data.map(toHex) };
  });
  return {
    description:
      'Each identity is createIdentity(seed); mixSecretsOf gives inboxSecret, inbox and the X25519 key. Each box is sealMixMessage(identities[from], identities[to].identity, id, body, nonce) = data (kind 1); openMixMessage(identities[to], data) gives kind "message", from, id, body. Each ack is sealMixAck(identities[from], identities[to].identity, id, nonce) = data (kind 2, 89 bytes); openMixMessage gives kind "ack", from, id and an empty body. Each address is sealMixAddress(identities[from], identities[to].identity, id, { gateway, inbox, key }, seq, nonce) = data (kind 3, 194 bytes: the plaintext body of the box is version 1 | seq u64 big-endian | gateway | inbox | key); openMixMessage gives kind "address", from, id, seq and the body gateway | inbox | key. A kind 3 box whose body is the 96-byte address alone (the first form), of another version, or with a seq over 2^53 - 1 is refused (ERR_MESSAGE_AUTH). Each batch is sealMixAckBatch(identities[from], identities[to].identity, acked, id, nonce) = data (kind 4, 90 + 16 n bytes: the plaintext body is version 1 | the acked ids); openMixMessage gives kind "acks", from, id (of the batch itself) and acked in order, repeats kept. A kind 4 box with no id, more than maxAckBatch ids, a part of an id, or another version is refused (ERR_MESSAGE_AUTH). maxBody is MAX_MIX_MESSENGER_BYTES; maxAckBatch is MIX_ACK_BATCH. Every nonce here is random, as a messenger from before batches draws it, and does not end with readsBatchesMark (MIX_READS_BATCHES_MARK): openMixMessage gives readsBatches false for these boxes, and true for a box whose nonce ends with the mark (its sender reads kind 4, specs/mix.md §8.2, §8.5). Each entry of fragments is a message of length bytes (body) sent in fragments: sealMixFragments(identities[from], identities[to].identity, id, body, nonces) = data, one box for each nonce (kind 5; the plaintext body of fragment i is version 1 | i | count | body[532 i .. min(532 (i + 1), length)]); openMixMessage gives kind "fragment", from, the message id and fragment { index, count, chunk }, and the chunks in order are the body. A kind 5 box of another version, a count under 2 or over maxFragments, an index not below the count, a chunk that is not fragmentChunk bytes before the last, or an empty last chunk is refused (ERR_MESSAGE_AUTH). fragmentChunk is MIX_FRAGMENT_CHUNK, maxFragments MIX_MAX_FRAGMENTS, maxFragmented MAX_MIX_FRAGMENTED_BYTES. These nonces do not carry readsFragmentsMark (MIX_READS_FRAGMENTS_MARK) at bytes 16 to 20 either: openMixMessage gives readsFragments false for every box here, and true for a box whose nonce carries it there (its sender reads kind 5, specs/mix.md §8.4).',
    maxBody: MAX_MIX_MESSENGER_BYTES,
    maxAckBatch: MIX_ACK_BATCH,
    readsBatchesMark: toHex(MIX_READS_BATCHES_MARK),
    fragmentChunk: MIX_FRAGMENT_CHUNK,
    maxFragments: MIX_MAX_FRAGMENTS,
    maxFragmented: MAX_MIX_FRAGMENTED_BYTES,
    readsFragmentsMark: toHex(MIX_READS_FRAGMENTS_MARK),
    identities,
    boxes,
    acks,
    addresses,
    batches,
    fragments,
  };
}
import { crypto } from '../../crypto/index.js';
import { concatBytes, toHex } from '../../protocol/bytes.js';
import { createMixPacket, MIX_PACKET_LEN, MIX_PAYLOAD_LEN, mixInbox, processMixPacket, type MixFinal, type MixResult } from '../../protocol/mix-packet.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { createIdentity } from '../../protocol/address.js';
import {
  MAX_MIX_FRAGMENTED_BYTES,
  MAX_MIX_MESSENGER_BYTES,
  MIX_ACK_BATCH,
  MIX_FRAGMENT_CHUNK,
  MIX_MAX_FRAGMENTS,
  MIX_READS_BATCHES_MARK,
  MIX_READS_FRAGMENTS_MARK,
  mixFragmentCount,
  mixSecretsOf,
  openMixMessage,
  sealMixAck,
  sealMixAckBatch,
  sealMixAddress,
  sealMixFragments,
  sealMixMessage,
} from '../../protocol/mix-message.js';
import { errorCodeOf, expectCode, recordingRandom, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

interface Relay {
  identity: string;
  secretKey: string;
  publicKey: string;
}

function relays(n: number): Relay[] {
  const rnd = seeded('mix-relays');
  return Array.from({ length: n }, () => {
    const identity = rnd(32);
    const kp = crypto().x25519Keypair(rnd(32));
    return { identity: toHex(identity), secretKey: toHex(kp.secretKey), publicKey: toHex(kp.publicKey) };
  });
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

function describeResult(r: MixResult): Record<string, unknown> {
  if (r.kind === 'forward') return { kind: r.kind, delayMs: r.delayMs, next: toHex(r.next), packet: toHex(r.packet) };
  if (r.kind === 'deliver') return { kind: r.kind, delayMs: r.delayMs, inbox: toHex(r.inbox), payload: toHex(r.payload) };
  return { kind: r.kind, delayMs: r.delayMs };
}

function run(relaysOnPath: Relay[], packet: Uint8Array): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let p = packet;
  for (const r of relaysOnPath) {
    const res = processMixPacket(p, {
      identity: hex(r.identity),
      keys: [{ publicKey: hex(r.publicKey), secretKey: hex(r.secretKey) }],
      replay: new ReplayFilter({ capacity: 100 }),
    });
    out.push(describeResult(res));
    if (res.kind === 'forward') p = res.packet;
  }
  return out;
}

export function mixFile(): VectorFile {
  const R = relays(5);
  const rnd = seeded('mix');
  const inboxSecret = rnd(32);
  const cases: { name: string; path: number[]; delays: number[]; final: 'deliver' | 'drop' }[] = [
    { name: 'three hops, deliver', path: [0, 1, 2], delays: [120, 45, 300], final: 'deliver' },
    { name: 'five hops (the most), deliver', path: [4, 3, 2, 1, 0], delays: [0, 1, 30_000, 7, 99], final: 'deliver' },
    { name: 'one hop, drop', path: [3], delays: [250], final: 'drop' },
  ];
  const valid = cases.map((c) => {
    const payload = rnd(MIX_PAYLOAD_LEN);
    const rec = recordingRandom(`mix/${c.name}`);
    const final: MixFinal = c.final === 'deliver' ? { kind: 'deliver', inbox: mixInbox(inboxSecret) } : { kind: 'drop' };
    const path = c.path.map((i, k) => ({ identity: hex(R[i]!.identity), mixKey: hex(R[i]!.publicKey), delayMs: c.delays[k]! }));
    const packet = createMixPacket(path, final, payload, { random: rec.random });
    if (packet.length !== MIX_PACKET_LEN) throw new Error('mix packet length');
    const hops = run(
      c.path.map((i) => R[i]!),
      packet,
    );
    const last = hops[hops.length - 1]!;
    if (c.final === 'deliver' && last['payload'] !== toHex(payload)) throw new Error('mix vector does not deliver its payload');
    return {
      name: c.name,
      path: c.path,
      delays: c.delays,
      final: c.final === 'deliver' ? { kind: 'deliver', inboxSecret: toHex(inboxSecret), inbox: toHex(mixInbox(inboxSecret)) } : { kind: 'drop' },
      payload: toHex(payload),
      random: rec.taken(),
      randomCalls: rec.calls(),
      packet: toHex(packet),
      hops,
    };
  });

  const base = hex(valid[0]!.packet);
  const flip = (at: number): string => {
    const b = Uint8Array.from(base);
    b[at]! ^= 1;
    return toHex(b);
  };
  const invalid = [
    { name: 'gamma changed', packet: flip(40), relay: 0, expected: 'ERR_MIX_MAC' },
    { name: 'beta changed', packet: flip(100), relay: 0, expected: 'ERR_MIX_MAC' },
    { name: 'payload changed (a tagging attack)', packet: flip(900), relay: 0, expected: 'ERR_MIX_MAC' },
    { name: 'at a relay not on the path', packet: toHex(base), relay: 1, expected: 'ERR_MIX_MAC' },
    { name: 'one byte short', packet: toHex(base.subarray(0, MIX_PACKET_LEN - 1)), relay: 0, expected: 'ERR_BAD_LENGTH' },
    { name: 'a small-order alpha', packet: toHex(new Uint8Array(MIX_PACKET_LEN)), relay: 0, expected: 'ERR_BAD_POINT' },
    { name: 'a forward to the relay itself', packet: toHex(base), relay: 0, identity: R[1]!.identity, expected: 'ERR_MIX_SLOT' },
  ].map((t) => {
    const r = R[t.relay]!;
    const code = errorCodeOf(
      () =>
        processMixPacket(hex(t.packet), {
          identity: hex(t.identity ?? r.identity),
          keys: [{ publicKey: hex(r.publicKey), secretKey: hex(r.secretKey) }],
          replay: new ReplayFilter({ capacity: 100 }),
        }),
      t.name,
    );
    const { expected, ...rest } = t;
    return { ...rest, code: expectCode(code, expected, t.name) };
  });
  return {
    description:
      'Mix packets (specs/mix.md §2). valid: createMixPacket(path of relays[i] with delays, final, payload, random) gives `packet`; processMixPacket at each hop in turn (its identity, its one key, an empty replay filter) gives `hops`. invalid: processMixPacket(packet) at relays[relay] (identity overridden by `identity` when given) throws `code`.',
    version: VECTORS_VERSION,
    relays: R,
    valid,
    invalid,
    messenger: messengerVectors(),
  };
}
