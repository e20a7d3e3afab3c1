/**
 * Forwarding (specs/content.md §8.3) against relay processes: a FETCH and a STORE sent to a forwarder with the
 * holder named in `f` are served by the holder, which the client's circuit never reaches; a holder that is not in
 * the directory (or the forwarder itself) is answered `unknown`; forwards in flight on one circuit beyond
 * MAX_FORWARDS_PER_CIRCUIT are answered `refused` at once, and the relay goes on serving.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { crypto } from '../../crypto/index.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { fetchItem, storeItem } from '../../net/content-requests.js';
import { fromHex } from '../../protocol/bytes.js';
import { BLOCK_LEN, BLOCK_PAYLOAD_MAX, BlockType, blockPlaintext, encryptBlock } from '../../protocol/chk.js';
import { decodeStored, encodeStore } from '../../protocol/content-messages.js';
import { formatLink, parseLink } from '../../protocol/content-link.js';
import { encodeFile, type EncodedBlock } from '../../protocol/file-codec.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { MAX_FORWARDS_PER_CIRCUIT, MAX_FORWARDS_PER_HOLDER } from '../../relay/content-forward.js';
import { patternBytes, startClient } from '../helpers/content.js';
import { startNetwork, type RelayProcess, type TestNetwork } from '../helpers/network.js';

describe('content forwarding: requests reach the holder through a forwarder (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;
  /** A block stored by a put, and its first holder. */
  let rk: Uint8Array;
  let holder: RelayProcess;
  /** The client's guard (the first hop of its circuits). */
  let guard: string;

  before(async () => {
    net = await startNetwork(5, { timing: { repair_interval: 60_000 } });
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
    const link = await content.put(patternBytes(BLOCK_PAYLOAD_MAX - 10, 7));
    const parsed = parseLink(link);
    if (parsed.type !== 'chk') throw new Error('a put gives a chk link');
    rk = parsed.rk;
    const probe = await client.newCircuit({ exitPort: null });
    guard = probe.path[0]!.fingerprint;
    probe.close();
    // A holder that is not the guard: the client's circuits to the forwarder can then leave it out.
    const fp = content.holders(rk).find((d) => d.fingerprint !== guard)!.fingerprint;
    holder = net.relays.find((r) => r.fingerprint === fp)!;
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  const descriptorOf = (r: RelayProcess): Descriptor => client.directory.all().find((d) => d.fingerprint === r.fingerprint)!;

  /** A circuit ending at `last` on which `avoid` is no hop at all. */
  async function circuitAvoiding(last: RelayProcess, avoid: RelayProcess): Promise<ClientCircuit> {
    for (let i = 0; i < 20; i++) {
      const c = await client.newCircuit({ last: descriptorOf(last), exitPort: null });
      if (c.path.every((d) => d.fingerprint !== avoid.fingerprint)) return c;
      c.close();
    }
    throw new Error('no circuit avoiding the holder');
  }

  const forwarderFor = (h: RelayProcess): RelayProcess => net.relays.find((r) => r !== h && r.fingerprint !== guard)!;

  it('a FETCH and a STORE naming the holder are served by the holder, which no hop of the client circuit is', async () => {
    const forwarder = forwarderFor(holder);
    const c = await circuitAvoiding(forwarder, holder);
    try {
      const found = await holder.metric('allium_fetches_total', { result: 'found' });
      const answered = await forwarder.metric('allium_content_forwards_total', { result: 'answered' });
      const bytes = await fetchItem(c, 'block', rk, { forwardTo: fromHex(holder.fingerprint) });
      expect(bytes, 'the block, from the holder').to.have.length(BLOCK_LEN);
      expect(await holder.metric('allium_fetches_total', { result: 'found' }), 'the holder served it').to.equal(found + 1);
      expect(await forwarder.metric('allium_content_forwards_total', { result: 'answered' }), 'the forwarder forwarded it').to.equal(answered + 1);

      // A STORE of a new block, named for the holder: the holder has it afterwards (asked directly, head only).
      const data = encryptBlock(blockPlaintext(BlockType.DATA, patternBytes(100, 9)), 'random');
      expect(await storeItem(c, 'block', data.ref.rk, data.stored, { forwardTo: fromHex(holder.fingerprint) })).to.equal('ok');
      expect(await forwarder.metric('allium_content_forwards_total', { result: 'answered' })).to.equal(answered + 2);
      const direct = await client.newCircuit({ last: descriptorOf(holder), exitPort: null });
      try {
        expect(await fetchItem(direct, 'block', data.ref.rk, { head: true })).to.not.equal(null);
      } finally {
        direct.close();
      }
    } finally {
      c.close();
    }
  });

  it('a holder not in the directory, or the forwarder itself, is answered unknown; the circuit keeps serving', async () => {
    const forwarder = forwarderFor(holder);
    const c = await circuitAvoiding(forwarder, holder);
    try {
      const stranger = crypto().random(32);
      const err = await fetchItem(c, 'block', rk, { forwardTo: stranger }).then(
        () => null,
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(err?.code).to.equal('ERR_UNREACHABLE');
      expect(err?.message).to.contain('unknown');
      const data = encryptBlock(blockPlaintext(BlockType.DATA, patternBytes(100, 10)), 'random');
      expect(await storeItem(c, 'block', data.ref.rk, data.stored, { forwardTo: stranger })).to.equal('unknown');
      expect(await storeItem(c, 'block', data.ref.rk, data.stored, { forwardTo: fromHex(forwarder.fingerprint) })).to.equal('unknown');
      expect(await forwarder.metric('allium_content_forwards_total', { result: 'unknown' })).to.be.at.least(3);
      expect(await fetchItem(c, 'block', rk, { forwardTo: fromHex(holder.fingerprint) })).to.have.length(BLOCK_LEN);
    } finally {
      c.close();
    }
  });

  it(`forwards in flight on one circuit beyond MAX_FORWARDS_PER_CIRCUIT (${MAX_FORWARDS_PER_CIRCUIT}) are refused; the relay keeps serving`, async () => {
    const forwarder = forwarderFor(holder);
    const others = net.relays.filter((r) => r !== forwarder);
    const c = await circuitAvoiding(forwarder, holder);
    const replies: (string | null)[] = [];
    const flood = MAX_FORWARDS_PER_CIRCUIT + 3;
    let answered = 0;
    let notify: () => void = () => undefined;
    const enough = new Promise<void>((r) => (notify = r));
    try {
      // STOREs whose data never comes: each holds its forward slot (the forwarder waits up to 30 s for the bytes).
      for (let i = 0; i < flood; i++) {
        const s = c.mux.open();
        s.markOpen();
        replies.push(null);
        s.on('stream:reply', (cmd, data) => {
          replies[i] = cmd === RelayCommand.STORED ? decodeStored(data).s : 'other';
          if (++answered === flood - MAX_FORWARDS_PER_CIRCUIT) notify();
        });
        // Spread over holders so that no holder's own bound (MAX_FORWARDS_PER_HOLDER) is reached first.
        const to = others[i % others.length]!;
        c.send({
          command: RelayCommand.STORE,
          streamId: s.id,
          data: encodeStore({ k: crypto().random(32), t: 'block', n: BLOCK_LEN, c: false, f: fromHex(to.fingerprint) }),
        });
      }
      await enough;
      expect(replies.filter((r) => r === 'refused')).to.have.length(flood - MAX_FORWARDS_PER_CIRCUIT);
      expect(replies.filter((r) => r === null)).to.have.length(MAX_FORWARDS_PER_CIRCUIT);
      expect(await forwarder.metric('allium_drops_total', { reason: 'content_forward_limit' })).to.be.at.least(flood - MAX_FORWARDS_PER_CIRCUIT);
      // Everyone else is served: another circuit through the same forwarder fetches through it.
      const other = await circuitAvoiding(forwarder, holder);
      try {
        expect(await fetchItem(other, 'block', rk, { forwardTo: fromHex(holder.fingerprint) })).to.have.length(BLOCK_LEN);
      } finally {
        other.close();
      }
    } finally {
      c.close();
    }
  });

  /** Refusals counted by every relay but `holder`, as forwarders. */
  async function refusedNow(): Promise<number> {
    let n = 0;
    for (const r of net.relays) if (r !== holder) n += await r.metric('allium_content_forwards_total', { result: 'refused' });
    return n;
  }

  /**
   * Every relay but `holder`, as a forwarder, made to hold MAX_FORWARDS_PER_HOLDER STOREs to `holder` whose data never
   * comes: each refuses one more request to it until the returned circuits close.
   */
  async function holdForwarders(): Promise<ClientCircuit[]> {
    const stalls: ClientCircuit[] = [];
    for (const f of net.relays.filter((r) => r !== holder)) {
      const c = await client.newCircuit({ last: descriptorOf(f), exitPort: null });
      stalls.push(c);
      for (let i = 0; i < MAX_FORWARDS_PER_HOLDER; i++) {
        const s = c.mux.open();
        s.markOpen();
        c.send({
          command: RelayCommand.STORE,
          streamId: s.id,
          data: encodeStore({ k: crypto().random(32), t: 'block', n: BLOCK_LEN, c: false, f: fromHex(holder.fingerprint) }),
        });
      }
    }
    return stalls;
  }

  it('a STORE every forwarder refuses at its bounds is tried again once forwards end, not failed (content.md §8.2)', async () => {
    // Every other relay, as a forwarder, holds MAX_FORWARDS_PER_HOLDER STOREs to `holder` whose data never comes: each
    // refuses one more to it. Before, a STORE there was refused by both forwarders tried and failed at once
    // (ERR_UNREACHABLE: no holder accepted the block (refused)); now it waits and is tried again once they end.
    const one = new ContentClient(client, { replication: 1, circuitsAhead: false });
    let stalls: ClientCircuit[] = [];
    try {
      let block = encryptBlock(blockPlaintext(BlockType.DATA, crypto().random(100)), 'random');
      while (one.holders(block.ref.rk)[0]!.fingerprint !== holder.fingerprint)
        block = encryptBlock(blockPlaintext(BlockType.DATA, crypto().random(100)), 'random');
      stalls = await holdForwarders();
      const before = await refusedNow();
      const stored = one.storeEverywhere('block', block.ref.rk, block.stored);
      // Both forwarders tried refused it; then the forwards in the way end (their circuits close).
      while ((await refusedNow()) < before + 2) await new Promise((r) => setImmediate(r));
      for (const c of stalls) c.close();
      expect(await stored).to.deep.equal(['ok']);
    } finally {
      for (const c of stalls) c.close();
      one.close();
    }
  });

  it('a get whose every try a forwarder refused at its bounds asks again once forwards end, not failed (content.md §8.2)', async () => {
    // The file's one block is held by `holder` alone (replication 1), whose every forwarder is at its bounds for it.
    // Before, the read was refused through both forwarders tried, the fallback holders did not have it, and the get
    // failed at once (ERR_UNREACHABLE: 1 of 1 holders could not be asked); now it asks again once they end.
    const one = new ContentClient(client, { replication: 1, circuitsAhead: false });
    let stalls: ClientCircuit[] = [];
    try {
      let data: Uint8Array;
      let blocks: EncodedBlock[];
      let root;
      do {
        data = crypto().random(100);
        blocks = [];
        const gen = encodeFile([data], { mode: 'random' });
        let step = await gen.next();
        for (; !step.done; step = await gen.next()) blocks.push(step.value);
        root = step.value;
      } while (one.holders(root.rk)[0]!.fingerprint !== holder.fingerprint);
      for (const b of blocks) expect(await one.storeEverywhere('block', b.ref.rk, b.stored)).to.deep.equal(['ok']);
      const link = formatLink({ type: 'chk', rk: root.rk, dk: root.dk, flags: 1 });
      stalls = await holdForwarders();
      const before = await refusedNow();
      const got = one.get(link).then(
        (b) => b,
        (e: unknown) => e,
      );
      // Both forwarders tried refused it; then the forwards in the way end (their circuits close).
      while ((await refusedNow()) < before + 2) await new Promise((r) => setImmediate(r));
      for (const c of stalls) c.close();
      expect(await got).to.deep.equal(data);
    } finally {
      for (const c of stalls) c.close();
      one.close();
    }
  });
});
