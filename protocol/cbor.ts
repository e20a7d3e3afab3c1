/**
 * The one CBOR wrapper (specs/README.md §CBOR): deterministic encoding, strict decoding.
 *
 * Allowed values: null, booleans, safe integers, text strings, byte strings (Uint8Array), arrays, and maps with text
 * keys. No floats, tags, undefined, records or indefinite lengths. Encoding sorts map keys as RFC 8949 §4.2.1 does
 * (shorter first, then bytewise) and uses the shortest headers. Decoding refuses input longer than the caller's cap,
 * nesting deeper than MAX_CBOR_DEPTH, and anything that does not re-encode to exactly the same bytes
 * (ERR_CBOR_NONCANONICAL), so every value has one encoding and signatures over encodings are unambiguous.
 */
import { Decoder, Encoder } from 'cbor-x';
import { z } from 'zod';
import { AlliumError, LimitError, ProtocolError } from './errors.js';

export const MAX_CBOR_DEPTH = 16;

export type CborValue = null | boolean | number | string | Uint8Array | CborValue[] | { [key: string]: CborValue };

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
  pack: false,
  useFloat32: 0,
} as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Decoder>[0]);

function compareKeys(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  if (ea.length !== eb.length) return ea.length - eb.length;
  for (let i = 0; i < ea.length; i++) if (ea[i] !== eb[i]) return ea[i]! - eb[i]!;
  return 0;
}

/** Checks the value model and returns a copy with sorted map keys and plain Uint8Arrays. */
function canonicalize(v: unknown, depth: number, strictDecode: boolean): CborValue {
  if (depth > MAX_CBOR_DEPTH) throw new LimitError('MAX_CBOR_DEPTH', `nesting deeper than ${MAX_CBOR_DEPTH}`, 'ERR_CBOR_DEPTH');
  const bad = (what: string): never => {
    if (strictDecode) throw new ProtocolError('ERR_CBOR_MALFORMED', `CBOR ${what} not allowed`);
    throw new AlliumError('ERR_INTERNAL', `cannot encode ${what} as Allium CBOR`);
  };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) bad('non-integer or unsafe number');
    // cbor-x writes a number outside the 32-bit range as a float64; as a bigint it gets the 8-byte integer header
    if (!strictDecode && (v > 0xffffffff || v < -0x100000000)) return BigInt(v) as unknown as CborValue;
    return Object.is(v, -0) ? 0 : v;
  }
  if (typeof v === 'bigint' && strictDecode) {
    // cbor-x decodes every 8-byte integer header to a bigint; the re-encoding check refuses non-minimal ones
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) bad('unsafe integer');
    return Number(v);
  }
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.length);
  if (Array.isArray(v)) return v.map((x) => canonicalize(x, depth + 1, strictDecode));
  if (typeof v === 'object' && v !== null) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) bad(`object of type ${(v as object).constructor?.name ?? 'unknown'}`);
    const out: { [k: string]: CborValue } = {};
    for (const k of Object.keys(v).sort(compareKeys)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) bad('undefined');
      out[k] = canonicalize(x, depth + 1, strictDecode);
    }
    return out;
  }
  return bad(typeof v);
}

/** Deterministic CBOR encoding of an Allium value. */
export function encodeCbor(value: unknown): Uint8Array {
  const b = encoder.encode(canonicalize(value, 0, false));
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Strict decoding of untrusted bytes. Throws only AlliumErrors. */
export function decodeCbor(bytes: Uint8Array, maxBytes: number): CborValue {
  if (bytes.length > maxBytes) throw new LimitError('cbor input', `${bytes.length} bytes > ${maxBytes}`, 'ERR_CBOR_TOO_LARGE');
  if (bytes.length === 0) throw new ProtocolError('ERR_CBOR_MALFORMED', 'empty CBOR input');
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (e) {
    // a stack overflow means deep nesting; other RangeErrors are truncated input (a DataView read past the end)
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw new LimitError('MAX_CBOR_DEPTH', 'CBOR nesting too deep', 'ERR_CBOR_DEPTH');
    throw new ProtocolError('ERR_CBOR_MALFORMED', 'CBOR could not be decoded', { cause: e });
  }
  const value = canonicalize(raw, 0, true);
  let again: Uint8Array;
  try {
    again = encodeCbor(value);
  } catch (e) {
    throw new ProtocolError('ERR_CBOR_MALFORMED', 'CBOR value outside the Allium model', { cause: e });
  }
  if (!sameBytes(again, bytes)) throw new ProtocolError('ERR_CBOR_NONCANONICAL', 'CBOR is not in deterministic encoding');
  return value;
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
