/**
 * The one CBOR wrapper (specs/README.md §CBOR): deterministic encoding, strict decoding.
 *
 * Allowed values: null, booleans, safe integers, text strings, byte strings (Uint8Array), arrays, and maps with text
 * keys. No floats, tags, undefined, records or indefinite lengths. Encoding (cbor-encode.ts) sorts map keys as
 * RFC 8949 §4.2.1 does (shorter first, then bytewise) and uses the shortest headers. Decoding never uses a
 * general-purpose CBOR library: untrusted bytes go to our own strict decoder of the profile (cbor-strict.ts), whose
 * time and memory are linear in the input for every input, and which accepts exactly the one encoding of each
 * value, so signatures over encodings are unambiguous.
 */
import { z } from 'zod';
import { encodeCanonicalCbor } from './cbor-encode.js';
import { decodeStrictCbor, MAX_CBOR_DEPTH, type CborValue } from './cbor-strict.js';
import { ProtocolError } from './errors.js';

export { MAX_CBOR_DEPTH, type CborValue };

/** Deterministic CBOR encoding of an Allium value (protocol/cbor-encode.ts). */
export function encodeCbor(value: unknown): Uint8Array {
  return encodeCanonicalCbor(value);
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
