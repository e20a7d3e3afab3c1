/**
 * The strict decoder for Allium's CBOR profile (specs/README.md §CBOR "Strict decoding").
 *
 * Untrusted bytes never reach a general-purpose CBOR library. This decoder reads only the profile's data model
 * (null, booleans, safe integers, UTF-8 text, byte strings, arrays, maps with text keys) in its one deterministic
 * encoding, in a single pass from the first byte to the last:
 *
 *     item   = head [payload]
 *     head   = u8(major << 5 | info) [argument of 0, 1, 2, 4 or 8 bytes when info = 24, 25, 26, 27]
 *     major 0, 1   integer      argument (or −1 − argument), within ±(2^53 − 1)
 *     major 2, 3   bytes, text  argument bytes follow (text: valid UTF-8)
 *     major 4      array        argument items follow
 *     major 5      map          argument (text key, value) pairs follow, keys strictly ascending
 *     major 7      simple       info 20 false, 21 true, 22 null; nothing else
 *     major 6 (tags), info 28–31 (reserved and indefinite lengths), floats and other simple values: refused
 *
 * Why its cost is linear in the input for every input, not only well-formed ones:
 *   - every item consumes at least one byte, so at most n items are read from n bytes;
 *   - a length or count is checked against the bytes that remain before anything is allocated for it (a string of
 *     L bytes needs L, an array of N items at least N, a map of N pairs at least 2N), so no allocation exceeds the
 *     input's size;
 *   - there are no tags, hence no shared values (tags 28/29), no references and nothing decoded twice;
 *   - nesting stops at MAX_CBOR_DEPTH, so recursion is bounded whatever the input;
 *   - key order is checked against the previous key only (the encodings are compared, once each).
 *
 * What it deliberately does not do: accept anything a deterministic encoder would not have written. It reports the
 * first problem it meets in input order: ERR_CBOR_MALFORMED for what is not a well-formed item of the data model,
 * ERR_CBOR_NONCANONICAL for a value of the model written in a form other than its one encoding, ERR_CBOR_DEPTH for
 * nesting beyond the cap. The caller's size cap (ERR_CBOR_TOO_LARGE) is checked before the first byte is read.
 */
import { LimitError, ProtocolError } from './errors.js';

export const MAX_CBOR_DEPTH = 16;

export type CborValue = null | boolean | number | string | Uint8Array | CborValue[] | { [key: string]: CborValue };

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const malformed = (what: string): never => {
  throw new ProtocolError('ERR_CBOR_MALFORMED', `CBOR ${what}`);
};
const nonCanonical = (what: string): never => {
  throw new ProtocolError('ERR_CBOR_NONCANONICAL', `CBOR ${what}`);
};

/** Keys in the profile's order: shorter encodings first, then bytewise (RFC 8949 §4.2.1 for text keys). */
function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

class Reader {
  private pos = 0;
  constructor(private readonly b: Uint8Array) {}

  get remaining(): number {
    return this.b.length - this.pos;
  }

  atEnd(): boolean {
    return this.pos === this.b.length;
  }

  private byte(): number {
    if (this.pos >= this.b.length) malformed('item is truncated');
    return this.b[this.pos++]!;
  }

  /** The argument of a head with additional information `info` (0–27), checked to be in its shortest form. */
  private argument(info: number): number {
    if (info < 24) return info;
    let n: number;
    switch (info) {
      case 24:
        n = this.byte();
        if (n < 24) nonCanonical('argument is not in its shortest form');
        return n;
      case 25:
        n = this.byte() * 0x100 + this.byte();
        if (n < 0x100) nonCanonical('argument is not in its shortest form');
        return n;
      case 26:
        n = ((this.byte() * 0x100 + this.byte()) * 0x100 + this.byte()) * 0x100 + this.byte();
        if (n < 0x10000) nonCanonical('argument is not in its shortest form');
        return n;
      default: {
        // info 27: eight bytes; anything at or above 2^53 is outside the model, and reading the high word first
        // keeps every intermediate a safe integer
        const hi = ((this.byte() * 0x100 + this.byte()) * 0x100 + this.byte()) * 0x100 + this.byte();
        const lo = ((this.byte() * 0x100 + this.byte()) * 0x100 + this.byte()) * 0x100 + this.byte();
        if (hi > 0x1fffff) return Number.POSITIVE_INFINITY; // ≥ 2^53: refused by each caller as out of range
        n = hi * 0x1_0000_0000 + lo;
        if (n <= 0xffffffff) nonCanonical('argument is not in its shortest form');
        return n;
      }
    }
  }

  /** A length or count that needs at least `per` bytes per unit: more than remain is malformed, before allocating. */
  private length(info: number, per: number): number {
    const n = this.argument(info);
    if (n > this.remaining / per) malformed('length exceeds the remaining input');
    return n;
  }

  private bytes(len: number): Uint8Array {
    // a copy, so the value does not alias a buffer the caller may reuse (cells, frames)
    const out = this.b.slice(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** One head: [major, info], refusing what the profile never writes. */
  private head(): [number, number] {
    const h = this.byte();
    const major = h >> 5;
    const info = h & 0x1f;
    if (info === 31) malformed(major === 7 ? 'break code outside an indefinite-length item' : 'indefinite length is not allowed');
    if (info >= 28) malformed('reserved additional information');
    if (major === 6) malformed('tags are not allowed');
    return [major, info];
  }

  item(depth: number): CborValue {
    if (depth > MAX_CBOR_DEPTH) throw new LimitError('MAX_CBOR_DEPTH', `nesting deeper than ${MAX_CBOR_DEPTH}`, 'ERR_CBOR_DEPTH');
    const [major, info] = this.head();
    switch (major) {
      case 0: {
        const n = this.argument(info);
        if (n > Number.MAX_SAFE_INTEGER) malformed('integer outside the safe range');
        return n;
      }
      case 1: {
        const n = this.argument(info);
        if (n >= Number.MAX_SAFE_INTEGER) malformed('integer outside the safe range');
        return -1 - n;
      }
      case 2:
        return this.bytes(this.length(info, 1));
      case 3:
        return this.text(this.length(info, 1));
      case 4: {
        const n = this.length(info, 1);
        const out = new Array<CborValue>(n); // n ≤ the bytes that remain
        for (let i = 0; i < n; i++) out[i] = this.item(depth + 1);
        return out;
      }
      case 5:
        return this.map(this.length(info, 2), depth);
      default:
        // major 7: only false, true and null belong to the model (floats, undefined and other simple values do not)
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        return malformed(info >= 25 ? 'floating-point numbers are not allowed' : 'simple value outside the model');
    }
  }

  private text(len: number): string {
    const start = this.pos;
    this.pos += len;
    // short ASCII text (map keys, names) without the cost of a TextDecoder call
    if (len <= 32) {
      let s = '';
      for (let i = start; i < this.pos; i++) {
        const c = this.b[i]!;
        if (c >= 0x80) {
          s = '';
          break;
        }
        s += String.fromCharCode(c);
        if (i === this.pos - 1) return s;
      }
      if (len === 0) return '';
    }
    const raw = this.b.subarray(start, this.pos);
    try {
      return utf8Strict.decode(raw);
    } catch {
      return malformed('text is not valid UTF-8');
    }
  }

  private map(n: number, depth: number): { [key: string]: CborValue } {
    const out: { [key: string]: CborValue } = {};
    let previous: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      if (depth + 1 > MAX_CBOR_DEPTH) throw new LimitError('MAX_CBOR_DEPTH', `nesting deeper than ${MAX_CBOR_DEPTH}`, 'ERR_CBOR_DEPTH');
      const start = this.pos;
      const [major, info] = this.head();
      if (major !== 3) malformed('map key is not a text string');
      const key = this.text(this.length(info, 1));
      const encoded = this.b.subarray(start, this.pos);
      if (previous !== undefined) {
        const order = compareKeyBytes(previous, encoded);
        if (order === 0) nonCanonical('map key appears twice');
        if (order > 0) nonCanonical('map keys are not in deterministic order');
      }
      // an own property named __proto__ cannot be made by assignment; no Allium message uses it
      if (key === '__proto__') malformed('map key "__proto__" is not allowed');
      previous = encoded;
      out[key] = this.item(depth + 1);
    }
    return out;
  }
}

/**
 * Decodes one item of the profile from untrusted bytes, or throws ERR_CBOR_TOO_LARGE, ERR_CBOR_MALFORMED,
 * ERR_CBOR_NONCANONICAL or ERR_CBOR_DEPTH. Time and memory are linear in `bytes.length` for every input.
 */
export function decodeStrictCbor(bytes: Uint8Array, maxBytes: number): CborValue {
  if (bytes.length > maxBytes) throw new LimitError('cbor input', `${bytes.length} bytes > ${maxBytes}`, 'ERR_CBOR_TOO_LARGE');
  if (bytes.length === 0) malformed('input is empty');
  const r = new Reader(bytes);
  const value = r.item(0);
  if (!r.atEnd()) malformed('trailing bytes after the item');
  return value;
}
