/**
 * CBOR inputs shaped like attacks on decoders, each a function of a size parameter so a test can grow it and watch
 * the decoder's time and memory (test/property/bounds.test.ts), and seed the fuzz corpora (test/fuzz/).
 * Not a test file: mocha only loads *.test.ts.
 */

/** A CBOR head of major type `major` with argument `n`, in its shortest form. */
export function head(major: number, n: number): number[] {
  const m = major << 5;
  if (n < 24) return [m | n];
  if (n < 0x100) return [m | 24, n];
  if (n < 0x10000) return [m | 25, n >> 8, n & 0xff];
  if (n < 0x1_0000_0000) return [m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const out = [m | 27];
  for (let i = 7n; i >= 0n; i--) out.push(Number((BigInt(n) >> (8n * i)) & 0xffn));
  return out;
}

/**
 * The value-sharing bomb: `levels` shared arrays (tag 28), each holding `k` references (tag 29) to the one before,
 * inside one outer array. About 3 + 3·k bytes per level describe k^levels nodes to a decoder that expands shared
 * values.
 */
export function sharingBomb(levels: number, k: number): Uint8Array {
  const out: number[] = [...head(4, levels + 1), 0xd8, 0x1c, 0x81, 0x00];
  for (let l = 1; l <= levels; l++) {
    out.push(0xd8, 0x1c, ...head(4, k));
    for (let i = 0; i < k; i++) out.push(0xd8, 0x1d, ...head(0, l - 1));
  }
  return Uint8Array.from(out);
}

/** n nested one-element arrays around 0: the deepest nesting per byte. */
export function deepArrays(n: number): Uint8Array {
  const b = new Uint8Array(n + 1).fill(0x81);
  b[n] = 0x00;
  return b;
}

/** n nested one-entry maps {"a": …} around 0. */
export function deepMaps(n: number): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(0xa1, 0x61, 0x61);
  out.push(0x00);
  return Uint8Array.from(out);
}

/** An array that claims n items, holding as many zero bytes as `fill` says (a count larger than the input). */
export function claimedArray(n: number, fill: number): Uint8Array {
  return Uint8Array.from([...head(4, n), ...new Array<number>(fill).fill(0)]);
}

/** An array of n zeros: the most items per byte a well-formed input can hold. */
export function flatArray(n: number): Uint8Array {
  return Uint8Array.from([...head(4, n), ...new Array<number>(n).fill(0)]);
}

/** A map of n distinct keys in deterministic order ("a", "b", …, then longer keys), each mapped to 0. */
export function wideMap(n: number): Uint8Array {
  const keys: Uint8Array[] = [];
  for (let i = 0; keys.length < n; i++) keys.push(new TextEncoder().encode(i.toString(36)));
  keys.sort((a, b) => a.length - b.length || Buffer.compare(a, b));
  const out: number[] = [...head(5, n)];
  for (const k of keys) out.push(...head(3, k.length), ...k, 0x00);
  return Uint8Array.from(out);
}

/** n tags (tag 1) wrapped around 0, and n indefinite-length arrays opened: what a tag-following decoder walks. */
export function nestedTags(n: number): Uint8Array {
  return Uint8Array.from([...new Array<number>(n).fill(0xc1), 0x00]);
}
export function indefiniteArrays(n: number): Uint8Array {
  return Uint8Array.from([...new Array<number>(n).fill(0x9f), 0x00, ...new Array<number>(n).fill(0xff)]);
}

/** Every shape at roughly `bytes` bytes of input. */
export function shapesOfSize(bytes: number): Record<string, Uint8Array> {
  // shallow enough for any depth cap (15 levels), wide enough to explode: k^15 nodes from about 45·k bytes
  const levels = Math.max(1, Math.min(15, Math.floor((bytes - 10) / 6)));
  const k = Math.max(1, Math.floor((bytes - 10 - 5 * levels) / (3 * levels)));
  return {
    'sharing bomb': sharingBomb(levels, Math.min(k, 255)),
    'nested arrays': deepArrays(bytes - 1),
    'nested maps': deepMaps(Math.floor((bytes - 1) / 3)),
    'count beyond the input': claimedArray(2 ** 31, bytes - 5),
    'flat array': flatArray(bytes - 5),
    'wide map': wideMap(Math.floor(bytes / 5)),
    'nested tags': nestedTags(bytes - 1),
    'indefinite arrays': indefiniteArrays(Math.floor((bytes - 1) / 2)),
  };
}
