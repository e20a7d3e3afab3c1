/**
 * Message padding (specs/messaging.md §6): a padded message's length reveals only its bucket.
 *
 *   buckets = PAD_UNIT · 2^k for k = 0..6          886, 1772, 3544, 7088, 14176, 28352, 56704 bytes
 *   padded  = len u32 | plaintext | 0^(bucket − overhead − 4 − len)
 *
 * `overhead` is what the layer above adds after padding (a ratchet message adds RATCHET_OVERHEAD), so that the
 * finished message is exactly a bucket long. The bucket is the smallest one that fits.
 *
 * Why these buckets. PAD_UNIT is RELAY_DATA_LEN, the data in one relay cell: padding inside the last cell costs no
 * bandwidth, since cells are fixed-size anyway, so nothing finer is worth having. Above one cell, powers of two give
 * 7 buckets in all: a message reveals less than 3 bits, at most 2× overhead, and most chat messages fit the first
 * bucket, where overhead is free. (Padmé, from the PURBs paper, would waste at most 12%, but below 8 cells it
 * rounds nothing, so it would give the exact cell count of short messages: hiding matters more here.) Messages
 * over the largest bucket are refused: large payloads travel as content (chk links), not as messages.
 *
 * Unpadding is strict: the length must be a bucket, the length field must fit, and every padding byte must be
 * zero (ERR_PADDING), so each plaintext has exactly one padded form.
 */
import { RELAY_DATA_LEN } from './constants.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { AlliumError, LimitError, ProtocolError } from './errors.js';

export const PAD_UNIT = RELAY_DATA_LEN;
/** The largest bucket is PAD_UNIT · 2^PAD_MAX_EXPONENT. */
export const PAD_MAX_EXPONENT = 6;
export const PAD_MAX_BUCKET = PAD_UNIT << PAD_MAX_EXPONENT; // 56704
export const PAD_HEADER_LEN = 4;

/** The bucket sizes, smallest first. */
export const PAD_BUCKETS: readonly number[] = Array.from({ length: PAD_MAX_EXPONENT + 1 }, (_, k) => PAD_UNIT << k);

function checkOverhead(overhead: number): void {
  if (!Number.isSafeInteger(overhead) || overhead < 0 || overhead + PAD_HEADER_LEN > PAD_UNIT) {
    throw new AlliumError('ERR_INTERNAL', 'padding overhead out of range');
  }
}

/** The most plaintext bytes that can be padded with this overhead. */
export function maxPaddable(overhead = 0): number {
  checkOverhead(overhead);
  return PAD_MAX_BUCKET - overhead - PAD_HEADER_LEN;
}

/** The length pad() gives a plaintext of `len` bytes (the bucket less the overhead). */
export function paddedLength(len: number, overhead = 0): number {
  checkOverhead(overhead);
  const need = len + PAD_HEADER_LEN + overhead;
  const bucket = PAD_BUCKETS.find((b) => b >= need);
  if (bucket === undefined) throw new LimitError('PAD_MAX_BUCKET', `message of ${len} bytes does not fit the largest bucket`);
  return bucket - overhead;
}

/** Pads a plaintext to its bucket less `overhead`. Throws ERR_LIMIT (PAD_MAX_BUCKET) when it does not fit. */
export function pad(plaintext: Uint8Array, overhead = 0): Uint8Array {
  return padTo(plaintext, paddedLength(plaintext.length, overhead));
}

/** Strips padding. Throws ERR_PADDING unless `padded` is exactly what pad() makes with this overhead. */
export function unpad(padded: Uint8Array, overhead = 0): Uint8Array {
  checkOverhead(overhead);
  if (!PAD_BUCKETS.includes(padded.length + overhead)) throw new ProtocolError('ERR_PADDING', 'padded length is not a bucket');
  const body = unpadExact(padded);
  if (paddedLength(body.length, overhead) !== padded.length) throw new ProtocolError('ERR_PADDING', 'message padded to a larger bucket than it needs');
  return body;
}

/**
 * The same layout padded to a length the caller fixes (for structures whose size is set by something other than
 * their content, such as endpoint descriptors). Throws ERR_INTERNAL when the plaintext does not fit.
 */
export function padTo(plaintext: Uint8Array, length: number): Uint8Array {
  if (plaintext.length + PAD_HEADER_LEN > length) throw new AlliumError('ERR_INTERNAL', 'plaintext does not fit the padded length');
  return new ByteWriter(length).u32(plaintext.length).bytes(plaintext).done();
}

/** Strips padTo()'s padding: the length field must fit and every padding byte must be zero (ERR_PADDING). */
export function unpadExact(padded: Uint8Array): Uint8Array {
  if (padded.length < PAD_HEADER_LEN) throw new ProtocolError('ERR_PADDING', 'padded message shorter than its header');
  const r = new ByteReader(padded, 'padded message');
  const len = r.u32();
  if (len > r.remaining) throw new ProtocolError('ERR_PADDING', 'length field beyond the padded message');
  const body = r.bytes(len);
  const rest = r.rest();
  let acc = 0;
  for (let i = 0; i < rest.length; i++) acc |= rest[i]!;
  if (acc !== 0) throw new ProtocolError('ERR_PADDING', 'non-zero padding');
  return body.slice();
}
