/**
 * Every parser of untrusted bytes is total: for any input it returns a value or throws an AlliumError with one of
 * its documented codes — never a TypeError or RangeError — and returns quickly. When a decoder accepts an input,
 * re-encoding the value gives the input back (one encoding per value).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { toHex } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import {
  CellCommand,
  controlBody,
  createBody,
  createdBody,
  decodeCell,
  decodeControlBody,
  decodeCreateBody,
  decodeCreatedBody,
  decodeDestroyBody,
  destroyBody,
  encodeCell,
  isLinkLevel,
} from '../../protocol/cell.js';
import { CELL_BODY_LEN, CELL_LEN, ONION_HEADER_LEN, RELAY_PAYLOAD_LEN, REPLY_LEN } from '../../protocol/constants.js';
import { decodeRelayPayload, encodeRelayPayload } from '../../protocol/relay-cell.js';
import { bytesAround, bytesOf, cborValue, withPrefix } from '../helpers/arbitraries.js';
import { total } from '../helpers/total.js';

const RUNS = { numRuns: 400 };
const same = (a: Uint8Array, b: Uint8Array) => expect(toHex(a)).to.equal(toHex(b));

/** A cell header steered towards known commands and both kinds of circuit id. */
const cellHeader = fc
  .tuple(fc.oneof(fc.constant(0), fc.constant(1), fc.nat({ max: 0xffffffff })), fc.oneof(fc.integer({ min: 0, max: 7 }), fc.nat({ max: 255 })))
  .map(([circId, command]) => Uint8Array.of(circId >>> 24, (circId >>> 16) & 0xff, (circId >>> 8) & 0xff, circId & 0xff, command));

/** A body steered past the first fields of the typed decoders. */
const bodyPrefix = fc.oneof(
  fc.uint8Array({ maxLength: 4 }),
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.nat({ max: 1100 })).map(([f, l]) => Uint8Array.of(f, l >> 8, l & 0xff)),
);

describe('property: decoders are total', () => {
  it('decodeCell', () => {
    const input = fc.oneof(withPrefix(bytesOf(CELL_LEN), cellHeader), bytesAround([CELL_LEN]));
    fc.assert(
      fc.property(input, (b) => {
        const r = total(() => decodeCell(b), ['ERR_CELL_SIZE', 'ERR_CELL_COMMAND', 'ERR_CELL_CIRCUIT_ID', 'ERR_CELL_PADDING']);
        if (r.ok) same(encodeCell(r.value), b);
      }),
      RUNS,
    );
  });

  it('decodeCreateBody and decodeCreatedBody', () => {
    const input = bytesAround([ONION_HEADER_LEN, REPLY_LEN, CELL_BODY_LEN]);
    fc.assert(
      fc.property(input, (b) => {
        const c = total(() => decodeCreateBody(b), ['ERR_TRUNCATED', 'ERR_CELL_PADDING']);
        if (c.ok && b.length === CELL_BODY_LEN) same(createBody(c.value), b);
        const d = total(() => decodeCreatedBody(b), ['ERR_TRUNCATED', 'ERR_CELL_PADDING']);
        if (d.ok && b.length === CELL_BODY_LEN) same(createdBody(d.value), b);
      }),
      RUNS,
    );
  });

  it('decodeDestroyBody and decodeControlBody', () => {
    const input = fc.oneof(withPrefix(bytesOf(CELL_BODY_LEN), bodyPrefix), bytesAround([0, 3, CELL_BODY_LEN]));
    fc.assert(
      fc.property(input, (b) => {
        const d = total(() => decodeDestroyBody(b), ['ERR_TRUNCATED', 'ERR_CELL_PADDING', 'ERR_SCHEMA']);
        if (d.ok && b.length === CELL_BODY_LEN) same(destroyBody(d.value), b);
        const c = total(() => decodeControlBody(b), ['ERR_TRUNCATED', 'ERR_CELL_PADDING', 'ERR_SCHEMA', 'ERR_BAD_LENGTH']);
        if (c.ok && b.length === CELL_BODY_LEN) same(controlBody(c.value), b);
      }),
      RUNS,
    );
  });

  it('decodeRelayPayload', () => {
    const prefix = fc
      .tuple(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.nat({ max: 255 })), fc.nat({ max: 0xffff }), fc.oneof(fc.nat({ max: 890 }), fc.nat({ max: 0xffff })))
      .map(([cmd, sid, len]) => Uint8Array.of(cmd, sid >> 8, sid & 0xff, len >> 8, len & 0xff));
    const input = fc.oneof(withPrefix(bytesOf(RELAY_PAYLOAD_LEN), prefix), bytesAround([RELAY_PAYLOAD_LEN]));
    fc.assert(
      fc.property(input, (b) => {
        const r = total(() => decodeRelayPayload(b), ['ERR_BAD_LENGTH', 'ERR_RELAY_COMMAND', 'ERR_RELAY_LENGTH', 'ERR_CELL_PADDING']);
        if (r.ok) same(encodeRelayPayload(r.value), b);
      }),
      RUNS,
    );
  });

  describe('decodeCbor (cap 2048 bytes)', () => {
    const CAP = 2048;
    const CODES = ['ERR_CBOR_MALFORMED', 'ERR_CBOR_NONCANONICAL', 'ERR_CBOR_DEPTH', 'ERR_CBOR_TOO_LARGE'];
    const check = (b: Uint8Array) => {
      const r = total(() => decodeCbor(b, CAP), CODES);
      if (r.ok) same(encodeCbor(r.value), b);
    };

    it('arbitrary bytes, including lengths around the cap', () => {
      fc.assert(fc.property(bytesAround([1, 9, CAP]), check), RUNS);
    });

    it('sequences of CBOR heads with random arguments (lengths, tags, simple values, floats)', () => {
      const head = fc.tuple(fc.nat({ max: 7 }), fc.nat({ max: 31 }), fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([major, info, arg]) => {
        const extra = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
        return Uint8Array.of((major << 5) | info, ...arg.subarray(0, extra));
      });
      const input = fc.array(fc.oneof(head, fc.uint8Array({ maxLength: 4 })), { maxLength: 24 }).map((parts) => Uint8Array.from(parts.flatMap((p) => [...p])));
      fc.assert(fc.property(input, check), { numRuns: 1000 });
    });

    it('valid encodings, mutated (bit flip, truncation, insertion, deletion)', () => {
      const mutated = fc.tuple(cborValue, fc.nat(), fc.nat({ max: 255 }), fc.nat({ max: 3 })).map(([v, at, byte, how]) => {
        const b = encodeCbor(v);
        const i = b.length === 0 ? 0 : at % b.length;
        if (how === 0) return b.map((x, j) => (j === i ? x ^ (1 << (byte % 8)) : x));
        if (how === 1) return b.subarray(0, i);
        if (how === 2) return Uint8Array.from([...b.subarray(0, i), byte, ...b.subarray(i)]);
        return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1)]);
      });
      fc.assert(fc.property(mutated, check), { numRuns: 1000 });
    });

    it('deep nesting far beyond the limit is refused without exhausting the stack', () => {
      for (const depth of [18, 100, 1000, CAP - 1]) {
        const b = new Uint8Array(depth).fill(0x81); // arrays of one element: the deepest nesting per byte
        b[depth - 1] = 0x80;
        expect(total(() => decodeCbor(b, CAP), CODES)).to.deep.equal({ ok: false, code: 'ERR_CBOR_DEPTH' });
      }
    });
  });
});

describe('property: CellCommand table', () => {
  it('every command decodes on the circuit ids it allows', () => {
    for (const command of Object.values(CellCommand)) {
      const linkLevel = isLinkLevel(command);
      const body = command === CellCommand.CONTROL ? controlBody({ first: true, last: true, data: new Uint8Array(0) }) : new Uint8Array(CELL_BODY_LEN);
      expect(decodeCell(encodeCell({ circId: linkLevel ? 0 : 9, command, body })).command).to.equal(command);
    }
  });
});
