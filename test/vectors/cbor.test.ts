/** specs/vectors/cbor.json against protocol/cbor.ts. */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor, MAX_CBOR_DEPTH, type CborValue } from '../../protocol/cbor.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Rejected {
  name: string;
  hex: string;
  maxBytes: number;
  error: string;
}
interface CborVectors {
  maxDepth: number;
  valid: { name: string; value: Json; hex: string }[];
  nonCanonical: Rejected[];
  invalid: Rejected[];
}

const V = readVectors<CborVectors>('cbor.json');

/** The vectors' JSON model → a CBOR value: {"$bytes": hex} is a byte string. */
function fromJson(j: Json): CborValue {
  if (Array.isArray(j)) return j.map(fromJson);
  if (j !== null && typeof j === 'object') {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === '$bytes') return hex(j['$bytes'] as string);
    const out: { [k: string]: CborValue } = {};
    for (const k of keys) out[k] = fromJson(j[k]!);
    return out;
  }
  return j;
}

const CBOR_CODES = ['ERR_CBOR_MALFORMED', 'ERR_CBOR_NONCANONICAL', 'ERR_CBOR_DEPTH', 'ERR_CBOR_TOO_LARGE'];

describeEachBinding('vectors: cbor.json', () => {
  it('uses the depth limit of protocol/cbor.ts and only CBOR error codes', () => {
    expect(V.maxDepth).to.equal(MAX_CBOR_DEPTH);
    for (const r of [...V.nonCanonical, ...V.invalid]) expect(CBOR_CODES).to.include(r.error);
  });

  for (const v of V.valid) {
    it(`valid: ${v.name}`, () => {
      const value = fromJson(v.value);
      expect(toHex(encodeCbor(value))).to.equal(v.hex);
      const bytes = hex(v.hex);
      expect(decodeCbor(bytes, bytes.length)).to.deep.equal(value);
    });
  }

  for (const [kind, list] of [
    ['non-canonical', V.nonCanonical],
    ['invalid', V.invalid],
  ] as const) {
    for (const v of list) {
      it(`${kind}: ${v.name} → ${v.error}`, () => {
        expectCode(() => decodeCbor(hex(v.hex), v.maxBytes), v.error);
      });
    }
  }
});
