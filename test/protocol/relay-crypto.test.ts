/** protocol/relay-crypto.ts: counters, circuit size, argument checks, the counter limit and wipe(). */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { toHex } from '../../protocol/bytes.js';
import { CELL_BODY_LEN, MAX_HOPS, RELAY_PAYLOAD_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { ClientCircuitCrypto, MAX_CELLS_PER_DIRECTION, payloadOf, RelayHopCrypto, relayHopSlabs, SLAB_SLOTS } from '../../protocol/relay-crypto.js';
import { refUnwrapForward, refWrapBackward } from '../helpers/relay-crypto-ref.js';
import { expectCode } from '../helpers/vectors.js';

/** The counter of one direction key, reached through the private fields (to test the limit without 2^48 cells). */
type Internals = { fwd: { counter: number }[]; bwd: { counter: number }[] };
function setCounters(o: RelayHopCrypto | ClientCircuitCrypto, n: number): void {
  if (o instanceof RelayHopCrypto) {
    const r = o as unknown as { fwdCount: number; bwdCount: number };
    if (typeof r.fwdCount !== 'number' || typeof r.bwdCount !== 'number') throw new Error('the private fields of relay-crypto.ts changed; update this test');
    r.fwdCount = r.bwdCount = n;
    expect(o.counters).to.deep.equal({ forward: n, backward: n });
    return;
  }
  const x = o as unknown as Internals;
  for (const d of [x.fwd, x.bwd].flat()) {
    if (typeof d?.counter !== 'number') throw new Error('the private fields of relay-crypto.ts changed; update this test');
    d.counter = n;
  }
}

describe('protocol/relay-crypto', () => {
  let keys: HopKeys[];
  let payload: Uint8Array;
  before(() => {
    const r = seededRandom('protocol/relay-crypto');
    keys = Array.from({ length: MAX_HOPS + 1 }, () => ({ forward: r(32), backward: r(32), binding: r(32) }));
    payload = r(RELAY_PAYLOAD_LEN);
  });
  const relays = (n: number) => keys.slice(0, n).map((k) => new RelayHopCrypto(k));

  it('wrapForwardInto a reused buffer, whatever it holds, gives the bytes wrapForward gives, and the relays accept them', () => {
    const fresh = new ClientCircuitCrypto(keys.slice(0, 3), { random: seededRandom('into') });
    const reused = new ClientCircuitCrypto(keys.slice(0, 3), { random: seededRandom('into') });
    const rs = relays(3);
    const body = new Uint8Array(CELL_BODY_LEN);
    for (const target of [2, 0, 1, 2]) {
      body.fill(0xa5 + target);
      const want = toHex(fresh.wrapForward(payload, target));
      expect(toHex(reused.wrapForwardInto(body, payload, target))).to.equal(want);
      expect(toHex(reused.lastForwardTag)).to.equal(toHex(fresh.lastForwardTag));
      for (let j = 0; j <= target; j++) expect(rs[j]!.unwrapForward(body)).to.equal(j === target ? 'mine' : 'forward');
      expect(toHex(payloadOf(body))).to.equal(toHex(payload));
    }
    expectCode(() => reused.wrapForwardInto(new Uint8Array(CELL_BODY_LEN - 1), payload, 0), 'ERR_BAD_LENGTH');
  });

  it('counts cells per hop and direction; a cell for hop 1 leaves later hops’ counters alone', () => {
    const client = new ClientCircuitCrypto(keys.slice(0, 3));
    const rs = relays(3);
    for (const target of [0, 2, 0, 1]) {
      const body = client.wrapForward(payload, target);
      for (let j = 0; j <= target; j++) expect(rs[j]!.unwrapForward(body)).to.equal(j === target ? 'mine' : 'forward');
    }
    expect(rs.map((r) => r.counters.forward)).to.deep.equal([4, 2, 1]);
    const b = rs[1]!.originateBackward(payload);
    rs[0]!.wrapBackward(b);
    expect(client.unwrapBackward(b)).to.equal(1);
    expect(rs.map((r) => r.counters)).to.deep.equal([
      { forward: 4, backward: 1 },
      { forward: 2, backward: 1 },
      { forward: 1, backward: 0 },
    ]);
  });

  it('grows to MAX_HOPS hops and no further (ERR_ONION_PATH)', () => {
    expectCode(() => new ClientCircuitCrypto([]), 'ERR_ONION_PATH');
    expectCode(() => new ClientCircuitCrypto(keys.slice(0, MAX_HOPS + 1)), 'ERR_ONION_PATH');
    const client = new ClientCircuitCrypto(keys.slice(0, 1));
    for (let i = 1; i < MAX_HOPS; i++) client.addHop(keys[i]!);
    expect(client.length).to.equal(MAX_HOPS);
    expectCode(() => client.addHop(keys[MAX_HOPS]!), 'ERR_ONION_PATH');
    const body = client.wrapForward(payload, MAX_HOPS - 1);
    relays(MAX_HOPS).forEach((r, j) => expect(r.unwrapForward(body)).to.equal(j === MAX_HOPS - 1 ? 'mine' : 'forward'));
    expect(toHex(payloadOf(body))).to.equal(toHex(payload));
  });

  it('checks sizes and targets', () => {
    const client = new ClientCircuitCrypto(keys.slice(0, 2));
    const [r] = relays(1);
    expectCode(() => client.wrapForward(payload.subarray(1), 0), 'ERR_BAD_LENGTH');
    expectCode(() => client.wrapForward(payload, 2), 'ERR_INTERNAL');
    expectCode(() => client.wrapForward(payload, -1), 'ERR_INTERNAL');
    expectCode(() => r!.unwrapForward(new Uint8Array(CELL_BODY_LEN + 1)), 'ERR_BAD_LENGTH');
    expectCode(() => r!.wrapBackward(new Uint8Array(CELL_BODY_LEN - 1)), 'ERR_BAD_LENGTH');
    expectCode(() => r!.originateBackward(new Uint8Array(RELAY_PAYLOAD_LEN + 1)), 'ERR_BAD_LENGTH');
    expectCode(() => client.unwrapBackward(new Uint8Array(0)), 'ERR_BAD_LENGTH');
  });

  it('a backward cell that no hop originated gives ERR_RELAY_NOT_RECOGNIZED', () => {
    const rs = relays(3);
    const body = new Uint8Array(CELL_BODY_LEN);
    for (let j = 2; j >= 0; j--) rs[j]!.wrapBackward(body); // every layer unmasked, as if from a fourth hop
    expectCode(() => new ClientCircuitCrypto(keys.slice(0, 3)).unwrapBackward(body), 'ERR_RELAY_NOT_RECOGNIZED');
  });

  it('large counters use the big-endian 64-bit nonce of the spec (checked against the reference)', () => {
    for (const n of [2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, MAX_CELLS_PER_DIRECTION - 1]) {
      const client = new ClientCircuitCrypto(keys.slice(0, 1));
      const [relay] = relays(1);
      setCounters(client, n);
      setCounters(relay!, n);
      const body = client.wrapForward(payload, 0);
      const ref = refUnwrapForward(keys[0]!.forward, n, body);
      expect(relay!.unwrapForward(body)).to.equal('mine');
      expect(ref.result).to.equal('mine');
      expect(toHex(body)).to.equal(toHex(ref.body));
      const back = relay!.originateBackward(payload);
      const start = new Uint8Array(CELL_BODY_LEN);
      start.set(payload, 128);
      expect(toHex(back)).to.equal(toHex(refWrapBackward(keys[0]!.backward, n, start, true)));
    }
  });

  it(`after ${MAX_CELLS_PER_DIRECTION} cells a direction refuses with ERR_RELAY_COUNTER`, () => {
    const client = new ClientCircuitCrypto(keys.slice(0, 1));
    const [relay] = relays(1);
    setCounters(client, MAX_CELLS_PER_DIRECTION - 1);
    setCounters(relay!, MAX_CELLS_PER_DIRECTION - 1);
    expect(relay!.unwrapForward(client.wrapForward(payload, 0))).to.equal('mine');
    expectCode(() => client.wrapForward(payload, 0), 'ERR_RELAY_COUNTER');
    expectCode(() => relay!.unwrapForward(new Uint8Array(CELL_BODY_LEN)), 'ERR_RELAY_COUNTER');
    const b = relay!.originateBackward(payload);
    expect(client.unwrapBackward(b)).to.equal(0);
    expectCode(() => relay!.originateBackward(payload), 'ERR_RELAY_COUNTER');
  });

  it('after wipe() every operation throws ERR_KEY_WIPED', () => {
    const client = new ClientCircuitCrypto(keys.slice(0, 2));
    const rs = relays(2);
    const body = client.wrapForward(payload, 1);
    const back = rs[0]!.originateBackward(payload);
    client.wipe();
    for (const r of rs) r.wipe();
    expectCode(() => client.wrapForward(payload, 0), 'ERR_KEY_WIPED');
    expectCode(() => client.unwrapBackward(back), 'ERR_KEY_WIPED');
    expectCode(() => rs[0]!.unwrapForward(body), 'ERR_KEY_WIPED');
    expectCode(() => rs[1]!.wrapBackward(new Uint8Array(CELL_BODY_LEN)), 'ERR_KEY_WIPED');
    expectCode(() => rs[1]!.originateBackward(payload), 'ERR_KEY_WIPED');
  });

  it('keeps a relay hop in a slot of a shared slab: wipe() zeroes the slot and gives it back, and empty slabs are given back but one', () => {
    type Slot = { slab: { mem: Uint8Array } | null; off: number };
    const before = relayHopSlabs();
    const n = 2 * SLAB_SLOTS + 10;
    const hops = Array.from({ length: n }, (_, i) => new RelayHopCrypto(keys[i % keys.length]!));
    expect(relayHopSlabs().slots).to.equal(before.slots + n);
    const slots = hops.map((h) => {
      const x = h as unknown as Slot;
      if (!x.slab || typeof x.off !== 'number') throw new Error('the private fields of relay-crypto.ts changed; update this test');
      return { mem: x.slab.mem, off: x.off };
    });
    // Each hop's keys and binding are its own, and it works as a hop.
    hops.forEach((h, i) => expect(toHex(h.binding)).to.equal(toHex(keys[i % keys.length]!.binding)));
    const client = new ClientCircuitCrypto(keys.slice(0, 1));
    expect(hops[0]!.unwrapForward(client.wrapForward(payload, 0))).to.equal('mine');
    const tag = toHex(hops[0]!.lastForwardTag);
    expect(tag).to.equal(toHex(client.lastForwardTag));
    expect(new Set(slots.map((s) => `${slots.findIndex((t) => t.mem === s.mem)}:${s.off}`)).size).to.equal(n);
    for (const h of hops) h.wipe();
    for (const { mem, off } of slots) expect(mem.subarray(off, off + 128).every((b) => b === 0)).to.equal(true);
    expect(relayHopSlabs().slots).to.equal(before.slots);
    expect(relayHopSlabs().slabs).to.be.at.most(before.slabs + 1);
    // Wiped: the views read zeros (the slot is another hop's by now), and every operation throws.
    expect(hops[0]!.binding.every((b) => b === 0)).to.equal(true);
    expect(hops[0]!.lastForwardTag.every((b) => b === 0)).to.equal(true);
    expectCode(() => hops[0]!.wrapBackward(new Uint8Array(CELL_BODY_LEN)), 'ERR_KEY_WIPED');
    hops[0]!.wipe(); // twice is harmless
    expect(relayHopSlabs().slots).to.equal(before.slots);
  });

  it("a binding read from a hop stays that hop's after wipe(), when its slot goes to another hop", () => {
    const a = new RelayHopCrypto(keys[0]!);
    const kept = a.binding;
    a.wipe();
    // The slot just freed is the next one taken.
    const b = new RelayHopCrypto(keys[1]!);
    try {
      expect(toHex(b.binding)).to.equal(toHex(keys[1]!.binding));
      // Before, `kept` was a view into the slab and now read keys[1]'s binding.
      expect(toHex(kept)).to.equal(toHex(keys[0]!.binding));
      expect(a.binding.every((x) => x === 0)).to.equal(true);
    } finally {
      b.wipe();
    }
  });
});
