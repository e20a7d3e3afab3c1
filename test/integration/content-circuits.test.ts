/**
 * The circuits content requests travel on (specs/content.md §8.2), against relay processes: an operation's requests
 * spread over its three circuits to forwarders, each request naming its holder, which is never the circuit's last
 * hop; two gets never share a circuit; fetches padded to a size class with check blocks; a put's circuits used for
 * new requests no longer than the dirtiness limit (an injected clock and a small limit, no sleeps), then replaced,
 * and closed when the put ends; an operation takes circuits built ahead while the one before it ran, never one that
 * operation used, and close() leaves none open.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { CONTENT_FETCHES_PER_CIRCUIT } from '../../client/content-circuits.js';
import type { NewCircuitOptions } from '../../client/client.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { toHex } from '../../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX } from '../../protocol/chk.js';
import { decodeFetch, decodeStore, encodeFetch } from '../../protocol/content-messages.js';
import { requestClass } from '../../protocol/file-codec.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { MAX_FORWARDS_PER_CIRCUIT } from '../../relay/content-forward.js';
import { patternBytes, sha256, startClient } from '../helpers/content.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

interface Request {
  readonly circuit: ClientCircuit;
  readonly command: 'STORE' | 'FETCH';
  readonly at: number;
  /** The holder the request names (hex), or null. */
  readonly holder: string | null;
  /** Streams open on this circuit, and on every open content circuit, as the request went out (itself included). */
  readonly onCircuit: number;
  readonly open: number;
  /** A FETCH's routing key (hex), or null. */
  readonly rk: string | null;
  /** How many STOREs and FETCHes had gone out when this FETCH's last answer byte came in (null: none came). */
  sentAtLastByte: number | null;
}

/** Whether every circuit closes within `ms` (false if one is still open then). */
const allClosed = (circuits: Iterable<ClientCircuit>, ms = 30_000): Promise<boolean> =>
  new Promise((resolve) => {
    const open = [...circuits].filter((c) => c.state !== 'closed');
    let left = open.length;
    if (left === 0) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    for (const c of open)
      c.once('circuit:close', () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve(true);
        }
      });
  });

/** The circuit's last hop: the forwarder. */
const lastHop = (c: ClientCircuit): string => c.path[c.path.length - 1]!.fingerprint;

describe('content circuits: a few per operation to forwarders, rotated and closed (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  /** Every STORE and FETCH the client sent, on which circuit, at the injected clock's time. */
  let requests: Request[] = [];
  let now = 0;
  /** Given each STORE and FETCH the client sends: true when it took the message (to send it later, or changed). */
  let intercept: ((m: RelayMessage, send: (m: RelayMessage) => boolean) => boolean) | null = null;

  before(async () => {
    net = await startNetwork(5, { timing: { repair_interval: 1000 } });
    client = await startClient(net.bootstrap);
    /** Open circuits that carried a STORE or FETCH. */
    const circuits = new Set<ClientCircuit>();
    client.on('client:circuit', (c) => {
      c.once('circuit:close', () => circuits.delete(c));
      const send = c.send.bind(c);
      c.send = (m: RelayMessage, hop?: number): boolean => {
        if (m.command === RelayCommand.FETCH || m.command === RelayCommand.STORE) {
          const fetch = m.command === RelayCommand.FETCH;
          const f = fetch ? decodeFetch(m.data).f : decodeStore(m.data).f;
          if (c.state === 'open') circuits.add(c);
          const open = [...circuits].reduce((n, x) => n + x.mux.size, 0);
          const r: Request = {
            circuit: c,
            command: fetch ? 'FETCH' : 'STORE',
            at: now,
            holder: f ? toHex(f) : null,
            onCircuit: c.mux.size,
            open,
            rk: fetch ? toHex(decodeFetch(m.data).k) : null,
            sentAtLastByte: null,
          };
          requests.push(r);
          const list = requests;
          c.mux.get(m.streamId)?.on('stream:data', () => (r.sentAtLastByte = list.length));
          if (intercept?.(m, (x) => send(x, hop))) return true;
        }
        return send(m, hop);
      };
    });
  });

  after(async () => {
    await client?.stop();
    await net?.stop();
  });

  it('a get spreads its FETCHes over three circuits to forwarders, never its holder, pipelined on each; two gets share none; all closed; the count is padded to a class', async () => {
    const content = new ContentClient(client);
    try {
      // 18 data blocks: a get needs the root and 18 blocks, Class(19) = 20, so one check block pads it.
      const a = patternBytes(18 * BLOCK_PAYLOAD_MAX - 100, 1);
      const b = patternBytes(18 * BLOCK_PAYLOAD_MAX - 100, 2);
      const links = [await content.put(a), await content.put(b)];
      const used: Set<ClientCircuit>[] = [];
      for (const [i, link] of links.entries()) {
        requests = [];
        expect(sha256(await content.get(link))).to.equal(sha256(i === 0 ? a : b));
        const fetches = requests.filter((r) => r.command === 'FETCH');
        expect(fetches).to.have.length(requestClass(19));
        // The root, then data block 0 alone (content.md §8.2 "Order"): every byte of its answer was in before any
        // other block was asked for, so the first byte's round trip shared the path with no other answer of the get.
        requests = [];
        const block0 = toHex((await content.open(link)).blocks()[1]!.rk);
        expect(fetches[1]!.rk, "the get's first block request is block 0").to.equal(block0);
        expect(fetches[1]!.sentAtLastByte, 'requests out when block 0 was in').to.equal(2);
        const circuits = new Set(fetches.map((r) => r.circuit));
        expect(circuits.size, 'three circuits for the get').to.equal(3);
        // After the root and block 0, the other 18 blocks go out at once (CONTENT_FETCHES_PER_CIRCUIT on each of three
        // circuits allows 24), not a few at a time; no circuit carries more than a forwarder takes (MAX_FORWARDS_PER_CIRCUIT).
        expect(Math.max(...fetches.map((r) => r.open)), 'FETCHes in flight at once').to.equal(Math.min(requestClass(19) - 2, 3 * CONTENT_FETCHES_PER_CIRCUIT));
        expect(Math.max(...fetches.map((r) => r.onCircuit)), 'on one circuit').to.be.at.most(MAX_FORWARDS_PER_CIRCUIT);
        expect(new Set([...circuits].map(lastHop)).size, 'to three forwarders').to.equal(3);
        expect(
          fetches.every((r) => r.holder !== null && r.holder !== lastHop(r.circuit)),
          "each FETCH names its holder, never the circuit's last hop",
        ).to.equal(true);
        // The get returns once its data blocks are in; a padding check block still in flight keeps its circuit until
        // it settles (content.md §8.2), so wait for each circuit's close, bounded.
        expect(await allClosed(circuits), 'closed once the get and its requests ended').to.equal(true);
        used.push(circuits);
      }
      expect([...used[0]!].filter((c) => used[1]!.has(c))).to.deep.equal([]);
    } finally {
      content.close();
    }
  });

  it("a holder that lacks block 0 holds back a get's other requests for its own answer only, not the next holder's", async () => {
    const content = new ContentClient(client);
    try {
      const data = patternBytes(18 * BLOCK_PAYLOAD_MAX - 100, 5);
      const link = await content.put(data);
      const block0 = toHex((await content.open(link)).blocks()[1]!.rk);
      let block0Asked = 0;
      let othersAsked = 0;
      /** Block 0's later requests, sent once another block was asked for. */
      const held: (() => void)[] = [];
      intercept = (m, send) => {
        if (m.command !== RelayCommand.FETCH) return false;
        const f = decodeFetch(m.data);
        if (toHex(f.k) === block0) {
          // The first holder asked answers that it lacks the block (it is asked for a key nobody stored); the next
          // holder's request waits until the get's other requests have gone out.
          if (++block0Asked === 1) {
            send({ ...m, data: encodeFetch({ ...f, k: new Uint8Array(32).fill(0xa5) }) });
            return true;
          }
          if (othersAsked > 0) return false;
          held.push(() => send(m));
          return true;
        }
        if (block0Asked > 0 && othersAsked++ === 0) for (const release of held.splice(0)) release();
        return false;
      };
      // On code that waited for block 0's whole fetch, its second request (held) never went out: the get never ended.
      expect(sha256(await content.get(link))).to.equal(sha256(data));
      expect(block0Asked, 'block 0 asked of a second holder').to.be.at.least(2);
      expect(othersAsked, "the get's other requests").to.equal(requestClass(19) - 2);
    } finally {
      intercept = null;
      content.close();
    }
  });

  it(`a holder that stalls block 0 holds back a get's other requests for CONTENT_LEAD_ALONE_MS at most, not for its timeout`, async () => {
    const content = new ContentClient(client);
    try {
      const data = patternBytes(18 * BLOCK_PAYLOAD_MAX - 100, 6);
      const link = await content.put(data);
      const block0 = toHex((await content.open(link)).blocks()[1]!.rk);
      let block0Asked = 0;
      let othersAsked = 0;
      /** Block 0's first request, sent once another block was asked for. */
      let held: (() => void) | null = null;
      intercept = (m, send) => {
        if (m.command !== RelayCommand.FETCH) return false;
        if (toHex(decodeFetch(m.data).k) === block0) {
          if (++block0Asked > 1 || othersAsked > 0) return false;
          held = () => send(m);
          return true;
        }
        if (block0Asked > 0 && othersAsked++ === 0) held?.();
        return false;
      };
      expect(sha256(await content.get(link))).to.equal(sha256(data));
      // On code that waited for block 0's whole fetch, its first request timed out and a second holder was asked
      // before any other block.
      expect(block0Asked, 'block 0 asked once: its first answer came').to.equal(1);
      expect(othersAsked, "the get's other requests").to.equal(requestClass(19) - 2);
    } finally {
      intercept = null;
      content.close();
    }
  });

  it('a put uses a circuit for new requests no longer than circuitDirtinessMs, then another; all closed when it ends', async () => {
    const limit = 1000;
    now = 0;
    const content = new ContentClient(client, { now: () => now, circuitDirtinessMs: limit });
    try {
      requests = [];
      const data = patternBytes(18 * BLOCK_PAYLOAD_MAX, 3);
      // Each acknowledged block moves the clock on by 0.4 s: the put lasts some 11 s of its clock.
      const link = await content.put(data, { onStored: () => (now += 400) });
      const stores = requests.filter((r) => r.command === 'STORE');
      const byCircuit = new Map<ClientCircuit, number[]>();
      for (const r of stores) byCircuit.set(r.circuit, [...(byCircuit.get(r.circuit) ?? []), r.at]);
      const spans = [...byCircuit.values()].map((t) => Math.max(...t) - Math.min(...t));
      expect(Math.max(...spans), 'no circuit took a request after its dirtiness limit').to.be.below(limit);
      expect(byCircuit.size, 'circuits replaced as they got dirty').to.be.greaterThan(3);
      expect(
        stores.every((r) => r.holder !== null && r.holder !== lastHop(r.circuit)),
        "each STORE names its holder, never the circuit's last hop",
      ).to.equal(true);
      expect(await allClosed(byCircuit.keys()), 'closed when the put ended').to.equal(true);
      expect(sha256(await content.get(link))).to.equal(sha256(data));
    } finally {
      content.close();
    }
  });

  it('a get takes circuits built ahead while the put before it ran, never one the put used; close() leaves none open', async () => {
    const content = new ContentClient(client);
    // Which operation was running when each circuit's build started (newCircuit called), and every build.
    let phase: 'put' | 'get' | 'after' = 'put';
    const startedIn = new Map<ClientCircuit, string>();
    const builds: { at: string; p: Promise<ClientCircuit> }[] = [];
    const newCircuit = client.newCircuit.bind(client);
    client.newCircuit = (o?: NewCircuitOptions): Promise<ClientCircuit> => {
      const at = phase;
      const p = newCircuit(o);
      builds.push({ at, p });
      void p.then((c) => startedIn.set(c, at)).catch(() => undefined);
      return p;
    };
    try {
      requests = [];
      const data = patternBytes(4 * BLOCK_PAYLOAD_MAX, 4);
      const link = await content.put(data);
      const putCircuits = new Set(requests.map((r) => r.circuit));
      requests = [];
      phase = 'get';
      expect(sha256(await content.get(link))).to.equal(sha256(data));
      phase = 'after';
      const getCircuits = new Set(requests.filter((r) => r.command === 'FETCH').map((r) => r.circuit));
      expect(getCircuits.size).to.be.greaterThan(0);
      expect(
        [...getCircuits].map((c) => startedIn.get(c)),
        'built while the put ran, before the get started',
      ).to.deep.equal([...getCircuits].map(() => 'put'));
      expect(
        [...getCircuits].filter((c) => putCircuits.has(c)),
        'none the put used',
      ).to.deep.equal([]);
      expect(builds.filter((b) => b.at === 'get').length, 'three more built ahead at the get').to.be.at.least(3);
      content.close();
      const built = (await Promise.allSettled(builds.map((b) => b.p))).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(await allClosed(built), 'every circuit of the client closed after close()').to.equal(true);
    } finally {
      delete (client as { newCircuit?: unknown }).newCircuit;
      content.close();
    }
  });
});
