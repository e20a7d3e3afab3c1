/** fast-check arbitraries shared by the property tests (not a test file: mocha only loads *.test.ts). */
import fc from 'fast-check';
import type { CborValue } from '../../protocol/cbor.js';

/** Exactly `len` bytes: random, all zero, or zero with a few non-zero bytes (what padding checks care about). */
export function bytesOf(len: number): fc.Arbitrary<Uint8Array> {
  if (len === 0) return fc.constant(new Uint8Array(0));
  const sparse = fc.array(fc.tuple(fc.nat({ max: len - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const b = new Uint8Array(len);
    for (const [i, v] of edits) b[i] = v;
    return b;
  });
  return fc.oneof(fc.uint8Array({ minLength: len, maxLength: len }), fc.constant(new Uint8Array(len)), sparse);
}

/** Byte strings whose lengths cluster around the given sizes (±spread), plus short arbitrary ones. */
export function bytesAround(sizes: readonly number[], spread = 3): fc.Arbitrary<Uint8Array> {
  const lengths = fc.oneof(fc.nat({ max: 16 }), ...sizes.map((n) => fc.integer({ min: Math.max(0, n - spread), max: n + spread })));
  return lengths.chain(bytesOf);
}

/** Overwrites the first bytes of `base` with `prefix` (to steer a random input past its first check). */
export function withPrefix(base: fc.Arbitrary<Uint8Array>, prefix: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(base, prefix).map(([b, p]) => {
    const out = Uint8Array.from(b);
    out.set(p.subarray(0, out.length));
    return out;
  });
}

/**
 * Text keys for CBOR maps. "__proto__" is left out: it cannot be represented (encodeCbor drops it because
 * canonicalize assigns it as a prototype, and cbor-x renames it to "__proto_" on decoding) — reported separately.
 */
export const cborKey = fc.string({ unit: 'grapheme', maxLength: 6 }).filter((k) => k !== '__proto__');

const interestingInts = fc.constantFrom(
  0,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65536,
  -65537,
  -(2 ** 32),
  -(2 ** 32) - 1,
  Number.MIN_SAFE_INTEGER,
);

/** Any value of the Allium CBOR model (protocol/cbor.ts), nested at most 5 deep. */
export const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 5, depthSize: 'small' },
    fc.oneof(fc.constant(null), fc.boolean(), fc.maxSafeInteger(), fc.integer(), interestingInts),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(cborKey, tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value;
