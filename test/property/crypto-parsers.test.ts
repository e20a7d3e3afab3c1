/**
 * The parsers behind cryptographic checks are total too: processOnion on arbitrary headers (and on headers whose MAC
 * verifies around an arbitrary routing slot), and both relay-cell unwraps on arbitrary bodies, return a value or
 * throw an AlliumError with a documented code, quickly.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { seededRandom } from '../../crypto/drbg.js';
import { concatBytes, fromHex, toHex } from '../../protocol/bytes.js';
import { CELL_BODY_LEN, ONION_BETA_LEN, ONION_HEADER_LEN, ONION_SLOT_LEN } from '../../protocol/constants.js';
import { processOnion, SLOT_EXTEND, SLOT_TERMINAL } from '../../protocol/onion.js';
import { ClientCircuitCrypto, RelayHopCrypto } from '../../protocol/relay-crypto.js';
import { bytesAround, bytesOf } from '../helpers/arbitraries.js';
import { craftHeader, noReplay, testRelays, type TestRelay } from '../helpers/circuit.js';
import { total } from '../helpers/total.js';

/** X25519 points of small order (libsodium's list, which it refuses): 0, 1, two of order 8, p-1, p, p+1. */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(fromHex);

describe('property: cryptographic parsers are total', () => {
  let relay: TestRelay;
  before(() => {
    relay = testRelays(1, 'property/crypto-parsers')[0]!;
  });
  const ctx = () => ({ identity: relay.identity, onionKeys: [relay.onionKey], replay: noReplay });

  it('processOnion on arbitrary headers (and small-order X) fails with ERR_ONION_MAC, ERR_BAD_POINT or ERR_BAD_LENGTH', () => {
    const smallX = fc.tuple(fc.constantFrom(...SMALL_ORDER), fc.nat({ max: 1 }), bytesOf(ONION_HEADER_LEN - 32)).map(([x, top, rest]) => {
      const X = Uint8Array.from(x);
      X[31]! |= top << 7;
      return concatBytes(X, rest);
    });
    const input = fc.oneof(bytesOf(ONION_HEADER_LEN), smallX, bytesAround([ONION_HEADER_LEN]));
    fc.assert(
      fc.property(input, (h) => {
        const r = total(() => processOnion(h, ctx()), ['ERR_ONION_MAC', 'ERR_BAD_POINT', 'ERR_BAD_LENGTH']);
        expect(r.ok).to.equal(false);
        const X = Uint8Array.from(h.subarray(0, 32));
        X[31]! &= 0x7f; // X25519 ignores the top bit
        if (h.length === ONION_HEADER_LEN && SMALL_ORDER.some((p) => toHex(p) === toHex(X))) {
          expect(r).to.deep.equal({ ok: false, code: 'ERR_BAD_POINT' });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('processOnion past a valid MAC: the routing slot decides extend, terminal or ERR_ONION_SLOT', () => {
    const slotBody = fc.oneof(bytesOf(95), fc.uint8Array({ minLength: 95, maxLength: 95 }));
    const extendSlot = fc
      .tuple(
        fc.oneof(fc.constant<Uint8Array | null>(null), fc.uint8Array({ minLength: 32, maxLength: 32 })),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        bytesOf(15),
      )
      .map(([next, xg, reserved]) => ({ next, rest: concatBytes(xg, reserved) }));
    const plain = fc
      .tuple(
        fc.oneof(
          fc.tuple(fc.constantFrom(0, SLOT_EXTEND, SLOT_TERMINAL, 3, 255), slotBody).map(([cmd, body]) => concatBytes(Uint8Array.of(cmd), body)),
          extendSlot.map((e) => concatBytes(Uint8Array.of(SLOT_EXTEND), e.next ?? relay.identity, e.rest)),
        ),
        fc.uint8Array({ minLength: ONION_BETA_LEN - ONION_SLOT_LEN, maxLength: ONION_BETA_LEN - ONION_SLOT_LEN }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
      )
      .map(([slot, rest, x]) => ({ plain: concatBytes(slot, rest), x }));
    fc.assert(
      fc.property(plain, ({ plain, x }) => {
        const { header, tail } = craftHeader(relay, plain, x);
        const slot = plain.subarray(0, ONION_SLOT_LEN);
        const zero = (from: number) => slot.subarray(from).every((b) => b === 0);
        const r = total(() => processOnion(header, ctx()), ['ERR_ONION_SLOT']);
        if (slot[0] === SLOT_TERMINAL && zero(1)) expect(r.ok && r.value.kind).to.equal('terminal');
        else if (slot[0] === SLOT_EXTEND && zero(81) && toHex(slot.subarray(1, 33)) !== toHex(relay.identity)) {
          expect(r.ok && r.value.kind).to.equal('extend');
          if (r.ok && r.value.kind === 'extend') {
            expect(toHex(r.value.next)).to.equal(toHex(slot.subarray(1, 33)));
            expect(toHex(r.value.header)).to.equal(toHex(concatBytes(slot.subarray(33, 81), plain.subarray(ONION_SLOT_LEN), tail)));
          }
        } else expect(r).to.deep.equal({ ok: false, code: 'ERR_ONION_SLOT' });
      }),
      { numRuns: 300 },
    );
  });

  it('RelayHopCrypto.unwrapForward and ClientCircuitCrypto.unwrapBackward on arbitrary bodies', () => {
    const rnd = seededRandom('property/crypto-parsers/keys');
    const keys = [0, 1, 2].map(() => ({ forward: rnd(32), backward: rnd(32), binding: rnd(32) }));
    const hop = new RelayHopCrypto(keys[0]!);
    const client = new ClientCircuitCrypto(keys);
    fc.assert(
      fc.property(bytesAround([CELL_BODY_LEN]), (body) => {
        const a = total(() => hop.unwrapForward(Uint8Array.from(body)), ['ERR_RELAY_MAC', 'ERR_BAD_LENGTH']);
        const b = total(() => client.unwrapBackward(Uint8Array.from(body)), ['ERR_RELAY_MAC', 'ERR_BAD_LENGTH']);
        expect(a.ok || b.ok).to.equal(false);
      }),
      { numRuns: 500 },
    );
    // failed cells did not move the counters: the real first cell still verifies
    const sent = new ClientCircuitCrypto(keys).wrapForward(new Uint8Array(891), 0);
    expect(hop.unwrapForward(sent)).to.equal('mine');
  });
});
