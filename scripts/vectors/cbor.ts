/**
 * specs/vectors/cbor.json: Allium's deterministic CBOR (protocol/cbor.ts, specs/README.md §CBOR).
 *
 * The expected hex of every valid case is written here by hand from RFC 8949 (Appendix A and §4.2.1), not taken
 * from the encoder, and generation stops if the code disagrees. Each rejected input names the one code the profile
 * requires (specs/README.md §CBOR "Strict decoding"), and generation stops if the decoder gives another.
 */
import { isDeepStrictEqual } from 'node:util';
import { fromHex, toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor, MAX_CBOR_DEPTH, type CborValue } from '../../protocol/cbor.js';
import { check, errorCodeOf, expectCode, VECTORS_VERSION, type VectorFile } from './common.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Byte strings become {"$bytes": hex}; no map in the vectors has a "$bytes" key. */
export function cborToJson(v: CborValue): Json {
  if (v instanceof Uint8Array) return { $bytes: toHex(v) };
  if (Array.isArray(v)) return v.map(cborToJson);
  if (v !== null && typeof v === 'object') {
    if ('$bytes' in v) throw new Error('a vector map may not use the key "$bytes"');
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) out[k] = cborToJson(x);
    return out;
  }
  return v;
}

const hexOf = (s: string): string => toHex(utf8(s));
const len = (major: number, n: number): string => {
  const m = major << 5;
  if (n < 24) return (m | n).toString(16).padStart(2, '0');
  if (n < 0x100) return (m | 24).toString(16) + n.toString(16).padStart(2, '0');
  if (n < 0x10000) return (m | 25).toString(16) + n.toString(16).padStart(4, '0');
  return (m | 26).toString(16) + n.toString(16).padStart(8, '0');
};
const nested = (levels: number): CborValue => (levels === 1 ? [] : [nested(levels - 1)]);

function validCases(): [string, CborValue, string][] {
  const s24 = 'abcdefghijklmnopqrstuvwx';
  const s256 = 'z'.repeat(256);
  const b24 = Uint8Array.from({ length: 24 }, (_, i) => i);
  const b300 = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const a25 = Array.from({ length: 25 }, (_, i) => i);
  return [
    ['0', 0, '00'],
    ['1', 1, '01'],
    ['23 (largest one-byte integer)', 23, '17'],
    ['24', 24, '1818'],
    ['255', 255, '18ff'],
    ['256', 256, '190100'],
    ['65535', 65535, '19ffff'],
    ['65536', 65536, '1a00010000'],
    ['2^32 - 1', 0xffffffff, '1affffffff'],
    ['2^32 (an 8-byte integer, never a float)', 2 ** 32, '1b0000000100000000'],
    ['a millisecond timestamp', 1_700_000_000_000, '1b0000018bcfe56800'],
    ['2^53 - 1 (largest safe integer)', Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    ['-1', -1, '20'],
    ['-24', -24, '37'],
    ['-25', -25, '3818'],
    ['-256', -256, '38ff'],
    ['-257', -257, '390100'],
    ['-65537', -65537, '3a00010000'],
    ['-2^32', -(2 ** 32), '3affffffff'],
    ['-2^32 - 1', -(2 ** 32) - 1, '3b0000000100000000'],
    ['-(2^53 - 1) (smallest safe integer)', Number.MIN_SAFE_INTEGER, '3b001ffffffffffffe'],
    ['false', false, 'f4'],
    ['true', true, 'f5'],
    ['null', null, 'f6'],
    ['empty text', '', '60'],
    ['"a"', 'a', '6161'],
    ['"IETF"', 'IETF', '6449455446'],
    ['"ü" (two UTF-8 bytes)', 'ü', '62c3bc'],
    ['"水" (three UTF-8 bytes)', '水', '63e6b0b4'],
    ['"😀" (four UTF-8 bytes)', '😀', '64f09f9880'],
    ['text of 24 bytes', s24, '7818' + hexOf(s24)],
    ['text of 256 bytes', s256, '790100' + hexOf(s256)],
    ['empty bytes', new Uint8Array(0), '40'],
    ['bytes 01020304', Uint8Array.of(1, 2, 3, 4), '4401020304'],
    ['bytes of 24', b24, '5818' + toHex(b24)],
    ['bytes of 300', b300, '59012c' + toHex(b300)],
    ['empty array', [], '80'],
    ['[1, 2, 3]', [1, 2, 3], '83010203'],
    ['[1, [2, 3], [4, 5]]', [1, [2, 3], [4, 5]], '8301820203820405'],
    ['array of 25', a25, '9819' + a25.map((i) => len(0, i)).join('')],
    ['empty map', {}, 'a0'],
    ['{"a": 1, "b": [2, 3]}', { a: 1, b: [2, 3] }, 'a26161016162820203'],
    ['keys sorted shorter first, then bytewise', { b: 1, aa: 3, a: 2, '': 4 }, 'a4' + '6004' + '616102' + '616201' + '62616103'],
    ['a one-byte key sorts before a two-byte key', { é: 1, z: 2 }, 'a2' + '617a02' + '62c3a901'],
    [
      'a map with bytes, null and a nested map',
      { t: 'dir-get', at: { n: 5 }, key: Uint8Array.of(0xde, 0xad), after: null },
      'a4' + '6174' + '67' + hexOf('dir-get') + '626174' + 'a1616e05' + '636b6579' + '42dead' + '656166746572' + 'f6',
    ],
    [`${MAX_CBOR_DEPTH + 1} nested arrays (the deepest accepted)`, nested(MAX_CBOR_DEPTH + 1), '81'.repeat(MAX_CBOR_DEPTH) + '80'],
  ];
}

type Rejected = [name: string, hex: string, expected: string, maxBytes?: number];
const NC = 'ERR_CBOR_NONCANONICAL';
const MAL = 'ERR_CBOR_MALFORMED';

/** Values of the model written in a form other than their one encoding. */
function nonCanonicalCases(): Rejected[] {
  return [
    ['map keys unsorted', 'a2616201616102', NC],
    ['map keys in plain lexicographic order (RFC 8949 sorts shorter keys first)', 'a262616101616202', NC],
    ['duplicate map key', 'a2616101616102', NC],
    ['integer 5 with a one-byte argument (1805)', '1805', NC],
    ['integer 5 with a two-byte argument', '190005', NC],
    ['integer 5 with a four-byte argument', '1a00000005', NC],
    ['integer 5 with an eight-byte argument', '1b0000000000000005', NC],
    ['integer 255 with a two-byte argument', '1900ff', NC],
    ['integer 2^32 - 1 with an eight-byte argument', '1b00000000ffffffff', NC],
    ['integer -1 with a one-byte argument (3800)', '3800', NC],
    ['array length 1 with a one-byte argument', '980101', NC],
    ['array length 1 with a two-byte argument', '99000101', NC],
    ['map length 1 with a one-byte argument', 'b801616101', NC],
    ['text length 1 with a one-byte argument', '780161', NC],
    ['bytes length 1 with a one-byte argument', '580100', NC],
    ['a map key with a non-shortest length', 'a1780161' + '01', NC],
    ['a non-shortest length is reported before the truncation after it', '58030102', NC],
    ['the first problem in input order decides: unsorted keys before a truncation', 'a3616201616102' + '61', NC],
  ];
}

/** Inputs that are not one well-formed item of the data model, or exceed a cap. */
function invalidCases(): Rejected[] {
  const deep = (n: number): string => '81'.repeat(n - 1) + '80';
  // the value-sharing bomb: level l is a shared array of 4 references to level l - 1 (tags 28 and 29)
  const shared = (levels: number): string => {
    let h = 'd81c' + '8100';
    for (let l = 1; l <= levels; l++) h += 'd81c84' + ('d81d' + (l - 1).toString(16).padStart(2, '0')).repeat(4);
    return len(4, levels + 1) + h;
  };
  return [
    ['empty input', '', MAL],
    ['half float 1.5', 'f93e00', MAL],
    ['single float 1.5', 'fa3fc00000', MAL],
    ['double float 1.5', 'fb3ff8000000000000', MAL],
    ['integer 1 as a half float', 'f93c00', MAL],
    ['integer 1 as a single float', 'fa3f800000', MAL],
    ['integer 2^32 as a double float', 'fb41f0000000000000', MAL],
    ['zero as a negative half float', 'f98000', MAL],
    ['NaN', 'f97e00', MAL],
    ['Infinity', 'f97c00', MAL],
    ['undefined', 'f7', MAL],
    ['simple value 16', 'f0', MAL],
    ['simple value 255', 'f8ff', MAL],
    ['simple value 20 written in two bytes', 'f814', MAL],
    ['tag 1 (epoch date)', 'c11a514b67b0', MAL],
    ['tag 0 (date string)', 'c074' + hexOf('2013-03-21T20:04:00Z'), MAL],
    ['tag 2 (bignum 2^64)', 'c249010000000000000000', MAL],
    ['tag 3 (negative bignum -1)', 'c34100', MAL],
    ['tag 24 (embedded CBOR)', 'd8184101', MAL],
    ['tag 64 (typed array)', 'd8404100', MAL],
    ['tag 258 (set)', 'd9010280', MAL],
    ['tag 259 (map with any keys)', 'd90103a0', MAL],
    ['tag 28 (shareable) around an array', 'd81c8100', MAL],
    ['tag 29 (shared reference) inside an array', '82d81c8100d81d00', MAL],
    ['a value-sharing bomb of 9 levels (140 bytes; ~4^9 nodes if expanded)', shared(9), MAL],
    ['a tag inside a map value', 'a16161c100', MAL],
    ['indefinite-length array', '9f01ff', MAL],
    ['indefinite-length map', 'bf616101ff', MAL],
    ['indefinite-length text', '7f6161ff', MAL],
    ['indefinite-length bytes', '5f4100ff', MAL],
    ['indefinite-length array nested in a definite one', '819fff', MAL],
    ['integer 2^53 (beyond the safe range)', '1b0020000000000000', MAL],
    ['integer -(2^53) - 1 (beyond the safe range)', '3b0020000000000000', MAL],
    ['integer 2^64 - 1', '1bffffffffffffffff', MAL],
    ['text that is not UTF-8', '62c328', MAL],
    ['text with a UTF-8 encoded surrogate', '63eda080', MAL],
    ['text with an overlong UTF-8 encoding of "/"', '62c0af', MAL],
    ['integer map key 1', 'a10102', MAL],
    ['null as a map key', 'a1f601', MAL],
    ['false as a map key', 'a1f401', MAL],
    ['an array as a map key', 'a18001', MAL],
    ['a byte string as a map key', 'a1410001', MAL],
    ['a map as a map key', 'a1a001', MAL],
    ['the map key "__proto__"', 'a1' + '69' + hexOf('__proto__') + 'a0', MAL],
    ['truncated text', '6261', MAL],
    ['truncated array', '8201', MAL],
    ['truncated map', 'a16161', MAL],
    ['truncated four-byte argument', '1a0000', MAL],
    ['truncated eight-byte argument', '1b00000000', MAL],
    ['truncated bytes', '430102', MAL],
    ['lone break code', 'ff', MAL],
    ['reserved additional information 28', '1c', MAL],
    ['reserved additional information 30 on an array', '9e', MAL],
    ['trailing bytes after a complete item', '0101', MAL],
    ['array length 2^31 - 1 in six bytes', '9a7fffffff00', MAL],
    ['array length 2^32 + 1 (more items than bytes)', '9b0000000100000001' + '00', MAL],
    ['map of 2^32 - 1 pairs in six bytes', 'baffffffff' + '00', MAL],
    ['map of 3 pairs with 4 bytes left (a pair needs at least two)', 'a3' + '6161' + '01' + '02', MAL],
    ['bytes length 2^31 - 1 in five bytes', '5a7fffffff', MAL],
    [`${MAX_CBOR_DEPTH + 2} nested arrays`, deep(MAX_CBOR_DEPTH + 2), 'ERR_CBOR_DEPTH'],
    [`${MAX_CBOR_DEPTH + 2} nested maps`, 'a16161'.repeat(MAX_CBOR_DEPTH + 1) + 'a0', 'ERR_CBOR_DEPTH'],
    ['1000 nested arrays', deep(1000), 'ERR_CBOR_DEPTH', 4096],
    ['65 bytes of text with a cap of 64', '7841' + '61'.repeat(65), 'ERR_CBOR_TOO_LARGE', 64],
    ['a one-byte value with a cap of 0', '00', 'ERR_CBOR_TOO_LARGE', 0],
  ];
}

const DEFAULT_MAX = 1024;

function rejected(kind: string, cases: Rejected[]): object[] {
  return cases.map(([name, hex, expected, maxBytes = DEFAULT_MAX]) => {
    const bytes = fromHex(hex);
    const error = expectCode(
      errorCodeOf(() => decodeCbor(bytes, maxBytes), name),
      expected,
      `cbor ${kind} "${name}"`,
    );
    return { name, hex, maxBytes, error };
  });
}

export function cborFile(): VectorFile {
  const valid = validCases().map(([name, value, hex]) => {
    const enc = toHex(encodeCbor(value));
    check(enc === hex, `cbor valid "${name}" encodes to ${hex} (got ${enc})`);
    const bytes = fromHex(hex);
    const back = decodeCbor(bytes, bytes.length);
    check(isDeepStrictEqual(back, value), `cbor "${name}" decodes to its value`);
    return { name, value: cborToJson(value), hex };
  });
  return {
    description:
      'Deterministic CBOR (protocol/cbor.ts; RFC 8949 §4.2.1 core deterministic encoding restricted to the Allium model: ' +
      'null, booleans, safe integers, UTF-8 text, byte strings, arrays, maps with text keys). ' +
      'Values are JSON with byte strings written {"$bytes": hex}. "valid": encodeCbor(value) is hex and decodeCbor(hex, ' +
      'its own length) is value. "nonCanonical" and "invalid": decodeCbor(hex, maxBytes) throws "error". ' +
      `Nesting: the root is depth 0 and at most depth ${MAX_CBOR_DEPTH} is allowed, so ${MAX_CBOR_DEPTH + 1} nested arrays decode.`,
    version: VECTORS_VERSION,
    maxDepth: MAX_CBOR_DEPTH,
    valid,
    nonCanonical: rejected('nonCanonical', nonCanonicalCases()),
    invalid: rejected('invalid', invalidCases()),
  };
}
