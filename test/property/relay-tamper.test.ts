/**
 * The relay-cell layer detects tampering (specs/relay-crypto.md §7): a bit flipped anywhere in a forward body fails
 * the first hop's tag (it covers the whole body); a backward body fails at the client; replayed, dropped and
 * reordered cells shift the counter and fail the next honest hop.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { seededRandom } from '../../crypto/drbg.js';
import { toHex } from '../../protocol/bytes.js';
import { CELL_BODY_LEN, MAX_HOPS, RELAY_PAYLOAD_LEN, RELAY_TAG_AREA_LEN, RELAY_TAG_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { ClientCircuitCrypto, payloadOf, RelayHopCrypto } from '../../protocol/relay-crypto.js';
import { expectCode } from '../helpers/vectors.js';

let KEYS: HopKeys[] = [];
let PAYLOAD: Uint8Array = new Uint8Array(RELAY_PAYLOAD_LEN);

const relaysFor = (n: number) => KEYS.slice(0, n).map((k) => new RelayHopCrypto(k));
const clientFor = (n: number) => new ClientCircuitCrypto(KEYS.slice(0, n));
const flipped = (body: Uint8Array, byte: number, bit: number) => {
  const b = Uint8Array.from(body);
  b[byte]! ^= 1 << bit;
  return b;
};

/** Runs a forward body through fresh relays; returns where it failed (hop index) or -1 if it arrived intact. */
function forwardFailsAt(n: number, target: number, body: Uint8Array): number {
  const relays = relaysFor(n);
  for (let j = 0; j <= target; j++) {
    try {
      const r = relays[j]!.unwrapForward(body);
      expect(r).to.equal(j === target ? 'mine' : 'forward');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('ERR_RELAY_MAC');
      return j;
    }
  }
  expect(toHex(payloadOf(body))).to.equal(toHex(PAYLOAD));
  return -1;
}

/** A backward body originated at hop `origin` of an n-hop circuit, wrapped by every earlier hop (fresh counters). */
function backwardBody(n: number, origin: number): Uint8Array {
  const relays = relaysFor(n);
  const body = relays[origin]!.originateBackward(PAYLOAD);
  for (let j = origin - 1; j >= 0; j--) relays[j]!.wrapBackward(body);
  return body;
}

describe('property: relay-cell tampering', () => {
  before(() => {
    const rnd = seededRandom('property/relay-tamper');
    KEYS = Array.from({ length: MAX_HOPS }, () => ({ forward: rnd(32), backward: rnd(32), binding: rnd(32) }));
    PAYLOAD = rnd(RELAY_PAYLOAD_LEN);
  });

  it('forward: flipping one bit at every byte position of one cell fails at the first hop', () => {
    const sent = clientFor(3).wrapForward(PAYLOAD, 2);
    expect(forwardFailsAt(3, 2, Uint8Array.from(sent))).to.equal(-1);
    for (let i = 0; i < CELL_BODY_LEN; i++) expect(forwardFailsAt(3, 2, flipped(sent, i, (i * 5) % 8)), `byte ${i}`).to.equal(0);
  });

  it('forward: any bit of any cell on any circuit fails at the first hop', () => {
    const arb = fc
      .record({
        n: fc.integer({ min: 1, max: MAX_HOPS }),
        target: fc.nat(),
        byte: fc.nat({ max: CELL_BODY_LEN - 1 }),
        bit: fc.nat({ max: 7 }),
        skip: fc.nat({ max: 3 }),
      })
      .map((r) => ({ ...r, target: r.target % r.n }));
    fc.assert(
      fc.property(arb, ({ n, target, byte, bit, skip }) => {
        // the cell is the (skip+1)-th on the circuit, so counters other than 0 are covered too
        const client = clientFor(n);
        const relays = relaysFor(n);
        for (let s = 0; s < skip; s++) {
          const b = client.wrapForward(PAYLOAD, target);
          for (let j = 0; j <= target; j++) relays[j]!.unwrapForward(b);
        }
        const body = flipped(client.wrapForward(PAYLOAD, target), byte, bit);
        expectCode(() => relays[0]!.unwrapForward(body), 'ERR_RELAY_MAC');
      }),
      { numRuns: 300 },
    );
  });

  it('backward: with the origin at hop 8 of 8, a bit flipped at any byte position fails at the client', () => {
    const body = backwardBody(MAX_HOPS, MAX_HOPS - 1);
    expect(clientFor(MAX_HOPS).unwrapBackward(Uint8Array.from(body))).to.equal(MAX_HOPS - 1);
    for (let i = 0; i < CELL_BODY_LEN; i++) expectCode(() => clientFor(MAX_HOPS).unwrapBackward(flipped(body, i, (i * 3) % 8)), 'ERR_RELAY_MAC');
  });

  it('backward: tag slots up to the origin and the payload are authenticated; later slots are never read', () => {
    const arb = fc
      .record({ n: fc.integer({ min: 1, max: MAX_HOPS }), origin: fc.nat(), byte: fc.nat({ max: CELL_BODY_LEN - 1 }), bit: fc.nat({ max: 7 }) })
      .map((r) => ({ ...r, origin: r.origin % r.n }));
    fc.assert(
      fc.property(arb, ({ n, origin, byte, bit }) => {
        const body = flipped(backwardBody(n, origin), byte, bit);
        const authenticated = byte < RELAY_TAG_LEN * (origin + 1) || byte >= RELAY_TAG_AREA_LEN;
        if (authenticated) expectCode(() => clientFor(n).unwrapBackward(body), 'ERR_RELAY_MAC');
        else {
          // Slots beyond the origin's are key stream the client discards (specs/relay-crypto.md §7.3, point 4).
          expect(clientFor(n).unwrapBackward(body)).to.equal(origin);
          expect(toHex(payloadOf(body))).to.equal(toHex(PAYLOAD));
        }
      }),
      { numRuns: 300 },
    );
  });

  describe('replay, drop and reorder', () => {
    const three = () => {
      const client = clientFor(3);
      return { client, cells: [0, 1, 2].map(() => client.wrapForward(PAYLOAD, 2)) };
    };
    const deliver = (relays: RelayHopCrypto[], body: Uint8Array, upTo = 2) => {
      for (let j = 0; j <= upTo; j++) relays[j]!.unwrapForward(body);
    };

    it('forward: a replayed cell fails at the first hop', () => {
      const { cells } = three();
      const relays = relaysFor(3);
      const copy = Uint8Array.from(cells[0]!);
      deliver(relays, cells[0]!);
      expectCode(() => relays[0]!.unwrapForward(copy), 'ERR_RELAY_MAC');
    });

    it('forward: a dropped or reordered cell fails at the first hop', () => {
      const { cells } = three();
      const relays = relaysFor(3);
      expectCode(() => relays[0]!.unwrapForward(Uint8Array.from(cells[1]!)), 'ERR_RELAY_MAC');
      deliver(relays, cells[0]!);
      expectCode(() => relays[0]!.unwrapForward(Uint8Array.from(cells[2]!)), 'ERR_RELAY_MAC');
    });

    it('forward: a cell dropped between hops 1 and 2 fails at hop 2', () => {
      const { cells } = three();
      const relays = relaysFor(3);
      relays[0]!.unwrapForward(cells[0]!); // hop 1 processes it, then the link to hop 2 loses it
      relays[0]!.unwrapForward(cells[1]!);
      expectCode(() => relays[1]!.unwrapForward(cells[1]!), 'ERR_RELAY_MAC');
    });

    it('backward: replayed, dropped and reordered cells fail at the client', () => {
      const relays = relaysFor(3);
      const b = [0, 1, 2].map(() => {
        const body = relays[2]!.originateBackward(PAYLOAD);
        relays[1]!.wrapBackward(body);
        relays[0]!.wrapBackward(body);
        return body;
      });
      expectCode(() => clientFor(3).unwrapBackward(Uint8Array.from(b[1]!)), 'ERR_RELAY_MAC'); // b[0] dropped
      const client = clientFor(3);
      expect(client.unwrapBackward(Uint8Array.from(b[0]!))).to.equal(2);
      expectCode(() => client.unwrapBackward(Uint8Array.from(b[0]!)), 'ERR_RELAY_MAC'); // replay
      expectCode(() => client.unwrapBackward(Uint8Array.from(b[2]!)), 'ERR_RELAY_MAC'); // b[2] before b[1]
      expect(client.unwrapBackward(Uint8Array.from(b[1]!))).to.equal(2);
    });
  });
});
