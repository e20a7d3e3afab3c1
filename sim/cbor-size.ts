/**
 * The exact length of a value's Allium CBOR encoding (protocol/cbor.ts: deterministic, shortest headers), computed
 * without encoding. The message-level links of large simulations pass decoded control messages between relays and
 * charge each one the bytes its real encoding has; test/sim/cbor-size.test.ts checks this against encodeCbor.
 */

function headLen(n: number): number {
  if (n < 24) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x100000000) return 5;
  return 9;
}

const textEncoder = new TextEncoder();

export function cborSize(v: unknown): number {
  if (v === null || typeof v === 'boolean') return 1;
  if (typeof v === 'number') return headLen(v < 0 ? -1 - v : v);
  if (typeof v === 'string') {
    const n = asciiOnly(v) ? v.length : textEncoder.encode(v).length;
    return headLen(n) + n;
  }
  if (v instanceof Uint8Array) return headLen(v.length) + v.length;
  if (Array.isArray(v)) {
    let n = headLen(v.length);
    for (const x of v) n += cborSize(x);
    return n;
  }
  if (typeof v === 'object') {
    let n = 0;
    let count = 0;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      n += cborSize(k) + cborSize(x);
      count++;
    }
    return headLen(count) + n;
  }
  throw new Error(`cborSize: cannot size a ${typeof v}`);
}

function asciiOnly(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

const sizes = new WeakMap<object, number>();

/** cborSize of a message object, remembered per object (a message is sized by its sender's metrics, its link and its receiver's metrics). */
export function messageSize(m: object): number {
  let n = sizes.get(m);
  if (n === undefined) sizes.set(m, (n = cborSize(m)));
  return n;
}
