/**
 * The deterministic encoder of Allium's CBOR profile (specs/README.md §CBOR), the counterpart of cbor-strict.ts.
 *
 *     item   = head [payload]
 *     head   = u8(major << 5 | info), info < 24 holding the argument itself, else 24, 25, 26 or 27 followed by
 *              the argument in 1, 2, 4 or 8 bytes, big-endian: always the shortest that holds it
 *     null 0xf6, false 0xf4, true 0xf5
 *     integer n ≥ 0: major 0, argument n;   n < 0: major 1, argument −1 − n          (safe integers only)
 *     bytes: major 2, text: major 3 (UTF-8), argument = length in bytes, then the bytes
 *     array: major 4, argument = item count, then the items
 *     map: major 5, argument = pair count, then (text key, value) pairs, keys sorted by their encodings as
 *          RFC 8949 §4.2.1 sorts them (shorter first, then bytewise)
 *
 * Anything outside the model (floats, unsafe integers, undefined, bigints, class instances, the key "__proto__",
 * nesting deeper than MAX_CBOR_DEPTH) is a bug of the caller: ERR_INTERNAL (ERR_CBOR_DEPTH for the depth). Pure
 * code with no dependency: the library needs no CBOR package at all (test/crosscheck/cbor-x.test.ts checks it
 * against cbor-x byte for byte).
 */
import { AlliumError, LimitError } from './errors.js';
import { MAX_CBOR_DEPTH } from './cbor-strict.js';

const textEncoder = new TextEncoder();

function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * A growable output buffer. One is shared by every call (encoding is synchronous and never re-enters itself), so
 * its storage is allocated once and grows to the largest message; each result is a copy of what was written.
 */
class Writer {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** The shortest head for `major` and the non-negative safe integer `arg`. */
  head(major: number, arg: number): void {
    this.room(9);
    const m = major << 5;
    if (arg < 24) this.buf[this.pos++] = m | arg;
    else if (arg <= 0xff) {
      this.buf[this.pos++] = m | 24;
      this.buf[this.pos++] = arg;
    } else if (arg <= 0xffff) {
      this.buf[this.pos++] = m | 25;
      this.view.setUint16(this.pos, arg);
      this.pos += 2;
    } else if (arg <= 0xffffffff) {
      this.buf[this.pos++] = m | 26;
      this.view.setUint32(this.pos, arg);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = m | 27;
      this.view.setUint32(this.pos, Math.floor(arg / 0x1_0000_0000));
      this.view.setUint32(this.pos + 4, arg % 0x1_0000_0000);
      this.pos += 8;
    }
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A text string: head and UTF-8 bytes (the head's size known only once the bytes are). */
  text(s: string): void {
    let ascii = s.length < 24;
    for (let i = 0; ascii && i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) {
      // the common case: short ASCII keys and values, one byte per character and a one-byte head
      this.room(1 + s.length);
      this.buf[this.pos++] = 0x60 | s.length;
      for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
      return;
    }
    const e = textEncoder.encode(s);
    this.head(3, e.length);
    this.bytes(e);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const shared = new Writer();

const bad = (what: string): never => {
  throw new AlliumError('ERR_INTERNAL', `cannot encode ${what} as Allium CBOR`);
};

function write(w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_CBOR_DEPTH) throw new LimitError('MAX_CBOR_DEPTH', `nesting deeper than ${MAX_CBOR_DEPTH}`, 'ERR_CBOR_DEPTH');
  if (v === null) return w.byte(0xf6);
  if (v === false) return w.byte(0xf4);
  if (v === true) return w.byte(0xf5);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return bad('non-integer or unsafe number');
    return v >= 0 ? w.head(0, v) : w.head(1, -1 - v); // -0 is 0 here: (-0 >= 0)
  }
  if (typeof v === 'string') return w.text(v);
  if (v instanceof Uint8Array) {
    w.head(2, v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v) write(w, x, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return bad(`object of type ${(v as object).constructor?.name ?? 'unknown'}`);
    const keys = sortedKeys(v);
    w.head(5, keys.length);
    for (const k of keys) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) return bad('undefined');
      if (k === '__proto__') return bad('the map key "__proto__"');
      w.text(k);
      write(w, x, depth + 1);
    }
    return;
  }
  return bad(typeof v);
}

/** The keys of a map in the profile's order. */
function sortedKeys(v: object): string[] {
  const keys = Object.keys(v);
  if (keys.length < 2) return keys;
  const enc = new Map<string, Uint8Array>();
  const bytesOf = (k: string): Uint8Array => {
    let e = enc.get(k);
    if (!e) enc.set(k, (e = textEncoder.encode(k)));
    return e;
  };
  return keys.sort((a, b) => compareKeyBytes(bytesOf(a), bytesOf(b)));
}

/** The one deterministic encoding of `value`. */
export function encodeCanonicalCbor(value: unknown): Uint8Array {
  shared.reset();
  try {
    write(shared, value, 0);
    return shared.result();
  } finally {
    shared.reset();
  }
}
