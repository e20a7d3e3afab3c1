/**
 * Bounded byte reading and writing for wire codecs. The reader refuses to read past its end (ERR_TRUNCATED) and
 * `end()` refuses trailing bytes (ERR_TRAILING_BYTES), so every codec that ends with `r.end()` consumes exactly its
 * input.
 */
import { ProtocolError } from './errors.js';

export class ByteReader {
  private off = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'input',
  ) {}

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) {
      throw new ProtocolError('ERR_TRUNCATED', `${this.what}: needs ${n} more bytes at offset ${this.off}, has ${this.remaining}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const o = this.off;
    const v = ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
    this.off += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.off, 8).getBigUint64(0);
    this.off += 8;
    return v;
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  /** Consumes the rest and requires every byte to be zero (padding). */
  zeros(): void {
    const r = this.rest();
    for (let i = 0; i < r.length; i++) {
      if (r[i] !== 0) throw new ProtocolError('ERR_CELL_PADDING', `${this.what}: non-zero padding at offset ${this.off - r.length + i}`);
    }
  }

  end(): void {
    if (this.remaining !== 0) throw new ProtocolError('ERR_TRAILING_BYTES', `${this.what}: ${this.remaining} trailing bytes`);
  }
}

export class ByteWriter {
  private off = 0;
  readonly buf: Uint8Array;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  get offset(): number {
    return this.off;
  }

  u8(v: number): this {
    this.buf[this.off++] = v;
    return this;
  }

  u16(v: number): this {
    this.buf[this.off++] = (v >>> 8) & 0xff;
    this.buf[this.off++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    new DataView(this.buf.buffer, this.buf.byteOffset + this.off, 4).setUint32(0, v);
    this.off += 4;
    return this;
  }

  u64(v: bigint): this {
    new DataView(this.buf.buffer, this.buf.byteOffset + this.off, 8).setBigUint64(0, v);
    this.off += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }

  /** The whole buffer; unwritten bytes stay zero (padding). */
  done(): Uint8Array {
    return this.buf;
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** True when `a` and `b` hold the same bytes (not constant-time: for public data only). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new ProtocolError('ERR_BAD_LENGTH', 'invalid hex string');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** XOR b into a, in place, over min(a.length, b.length) bytes. */
export function xorInto(a: Uint8Array, b: Uint8Array): void {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) a[i]! ^= b[i]!;
}
