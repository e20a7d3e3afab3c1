/**
 * The one CBOR wrapper (specs/README.md §CBOR): deterministic encoding, strict decoding.
 *
 * Allowed values: null, booleans, safe integers, text strings, byte strings (Uint8Array), arrays, and maps with text
 * keys. No floats, tags, undefined, records or indefinite lengths. Encoding (cbor-x, with fixed options) sorts map
 * keys as RFC 8949 §4.2.1 does (shorter first, then bytewise) and uses the shortest headers. Decoding never uses
 * cbor-x: untrusted bytes go to our own strict decoder of the profile (cbor-strict.ts), whose time and memory are
 * linear in the input for every input, and which accepts exactly the one encoding of each value, so signatures over
 * encodings are unambiguous.
 */
import { Encoder } from 'cbor-x';
import { z } from 'zod';
import { decodeStrictCbor, MAX_CBOR_DEPTH, type CborValue } from './cbor-strict.js';
import { AlliumError, LimitError, ProtocolError } from './errors.js';

export { MAX_CBOR_DEPTH, type CborValue };

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
  pack: false,
  useFloat32: 0,
  // Maps are written as plain CBOR maps (canonicalize() hands the encoder Maps, to keep the sorted key order).
  useTag259ForMaps: false,
} as ConstructorParameters<typeof Encoder>[0]);

const textEncoder = new TextEncoder();

function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Checks a value to encode against the model and returns a copy with sorted map keys and plain Uint8Arrays. */
function canonicalize(v: unknown, depth: number): CborValue {
  if (depth > MAX_CBOR_DEPTH) throw new LimitError('MAX_CBOR_DEPTH', `nesting deeper than ${MAX_CBOR_DEPTH}`, 'ERR_CBOR_DEPTH');
  const bad = (what: string): never => {
    throw new AlliumError('ERR_INTERNAL', `cannot encode ${what} as Allium CBOR`);
  };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) bad('non-integer or unsafe number');
    // cbor-x writes a number outside the 32-bit range as a float64; as a bigint it gets the 8-byte integer header
    if (v > 0xffffffff || v < -0x100000000) return BigInt(v) as unknown as CborValue;
    return Object.is(v, -0) ? 0 : v;
  }
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.length);
  if (Array.isArray(v)) return v.map((x) => canonicalize(x, depth + 1));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) bad(`object of type ${(v as object).constructor?.name ?? 'unknown'}`);
    const keys = Object.keys(v).map((k) => ({ k, e: textEncoder.encode(k) }));
    keys.sort((a, b) => compareKeyBytes(a.e, b.e));
    // A Map keeps the sorted order; an object would not: JavaScript lists integer-like keys ("5") before all others,
    // whatever their order of insertion, so {"\x1c": 1, "5": 2} would be written "5" first — not canonical.
    const out = new Map<string, CborValue>();
    for (const { k } of keys) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) bad('undefined');
      if (k === '__proto__') bad('the map key "__proto__"');
      out.set(k, canonicalize(x, depth + 1));
    }
    return out as unknown as CborValue;
  }
  return bad(typeof v);
}

/** Deterministic CBOR encoding of an Allium value. */
export function encodeCbor(value: unknown): Uint8Array {
  const b = encoder.encode(canonicalize(value, 0));
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Strict decoding of untrusted bytes (specs/README.md §CBOR "Strict decoding"). Throws only AlliumErrors:
 * ERR_CBOR_TOO_LARGE, ERR_CBOR_MALFORMED, ERR_CBOR_NONCANONICAL or ERR_CBOR_DEPTH. Whatever it accepts re-encodes
 * to exactly the input (checked by the property tests and the fuzz targets, not again here).
 */
export function decodeCbor(bytes: Uint8Array, maxBytes: number): CborValue {
  return decodeStrictCbor(bytes, maxBytes);
}

/** Decodes and validates against a zod schema; schema failures become ERR_SCHEMA. */
export function decodeMessage<T>(schema: z.ZodType<T>, bytes: Uint8Array, maxBytes: number, what: string): T {
  return validate(schema, decodeCbor(bytes, maxBytes), what);
}

export function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first?.path.length ? first.path.join('.') : '(root)';
    throw new ProtocolError('ERR_SCHEMA', `${what}: invalid field ${where}: ${first?.code ?? 'invalid'}`);
  }
  return r.data;
}

/** Schema helpers for byte strings. */
export const zBytes = (len?: number, max?: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array && (len === undefined || v.length === len) && (max === undefined || v.length <= max), {
    message: len !== undefined ? `expected ${len} bytes` : 'expected bytes',
  });
export const zUint = (max = Number.MAX_SAFE_INTEGER) => z.number().int().min(0).max(max);
