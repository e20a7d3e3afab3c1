/**
 * cbor-x (a development dependency only) as an independent encoder of the CBOR profile: protocol/cbor-encode.ts
 * must write exactly what cbor-x writes with the options Allium used before it had its own encoder, for every value
 * of the model, and both must be what the strict decoder reads back.
 */
import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import fc from 'fast-check';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { toHex } from '../../protocol/bytes.js';
import { cborValue } from '../helpers/arbitraries.js';

const cborX = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
  pack: false,
  useFloat32: 0,
} as ConstructorParameters<typeof Encoder>[0]);

const textEncoder = new TextEncoder();

/** What cbor-x needs to write the profile: map keys in the profile's order, numbers beyond 32 bits as bigints. */
function forCborX(v: unknown): unknown {
  if (typeof v === 'number') return v > 0xffffffff || v < -0x100000000 ? BigInt(v) : Object.is(v, -0) ? 0 : v;
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(forCborX);
  const keys = Object.keys(v).sort((a, b) => {
    const x = textEncoder.encode(a);
    const y = textEncoder.encode(b);
    if (x.length !== y.length) return x.length - y.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  });
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = forCborX((v as Record<string, unknown>)[k]);
  return out;
}

describe('crosscheck with cbor-x: the CBOR encoder', () => {
  it('writes what cbor-x writes, byte for byte, for any value of the model (2,000 values)', () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        const ours = encodeCbor(v);
        expect(toHex(ours)).to.equal(toHex(cborX.encode(forCborX(v))));
        expect(toHex(encodeCbor(decodeCbor(ours, ours.length)))).to.equal(toHex(ours));
      }),
      { numRuns: 2000, seed: 19 },
    );
  });

  it('agrees at every head-size boundary, for integers, strings, byte strings, arrays and maps', () => {
    for (const n of [0, 1, 23, 24, 255, 256, 65535, 65536, 70000]) {
      const values: unknown[] = ['x'.repeat(n), new Uint8Array(n), Array.from({ length: Math.min(n, 300) }, () => 0)];
      if (n <= 300) values.push(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));
      for (const v of values) expect(toHex(encodeCbor(v))).to.equal(toHex(cborX.encode(forCborX(v))));
    }
    for (const i of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      for (const v of [i, -i, -i - 1].filter(Number.isSafeInteger)) expect(toHex(encodeCbor(v)), String(v)).to.equal(toHex(cborX.encode(forCborX(v))));
    }
  });
});
