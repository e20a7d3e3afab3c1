/**
 * Systematic Reed-Solomon erasure coding over GF(2^8) (specs/content.md §3.2).
 *
 * The field uses the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D) with generator 2. The coding matrix is the
 * (k+m)×k Vandermonde matrix V[r][c] = r^c, multiplied by the inverse of its top k×k square, so the first k rows
 * are the identity (data shards pass through) and any k rows are invertible: any k of the k+m shards rebuild the
 * data. This is the construction Backblaze published, and test/protocol/reed-solomon.test.ts checks our output
 * against its published test vector. (Two WebAssembly builds of a Rust library were tried first; both reconstructed
 * wrong data for some erasure patterns, so this one is ours and property-tested.)
 */
import { AlliumError } from './errors.js';

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

function gfInv(a: number): number {
  if (a === 0) throw new AlliumError('ERR_INTERNAL', 'inverse of zero in GF(256)');
  return EXP[255 - LOG[a]!]!;
}

function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a]! * n) % 255]!;
}

type Matrix = number[][];

function identity(n: number): Matrix {
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === c ? 1 : 0)));
}

function multiply(a: Matrix, b: Matrix): Matrix {
  const n = b[0]!.length;
  return a.map((row) =>
    Array.from({ length: n }, (_, c) => {
      let v = 0;
      for (let i = 0; i < row.length; i++) v ^= gfMul(row[i]!, b[i]![c]!);
      return v;
    }),
  );
}

/** Gauss-Jordan inversion; throws for a singular matrix (cannot happen for rows of the coding matrix). */
function invert(m: Matrix): Matrix {
  const n = m.length;
  const a = m.map((row, r) => [...row, ...identity(n)[r]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot]![col] === 0) pivot++;
    if (pivot === n) throw new AlliumError('ERR_INTERNAL', 'singular matrix');
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const inv = gfInv(a[col]![col]!);
    a[col] = a[col]!.map((v) => gfMul(v, inv));
    for (let r = 0; r < n; r++) {
      if (r === col || a[r]![col] === 0) continue;
      const f = a[r]![col]!;
      a[r] = a[r]!.map((v, c) => v ^ gfMul(f, a[col]![c]!));
    }
  }
  return a.map((row) => row.slice(n));
}

const matrixCache = new Map<string, Matrix>();

/** The (k+m)×k systematic coding matrix. */
export function codingMatrix(k: number, m: number): Matrix {
  const key = `${k}/${m}`;
  let c = matrixCache.get(key);
  if (!c) {
    if (k < 1 || m < 0 || k + m > 256) throw new AlliumError('ERR_INTERNAL', 'k + m must be at most 256');
    const v: Matrix = Array.from({ length: k + m }, (_, r) => Array.from({ length: k }, (_, col) => gfPow(r, col)));
    c = multiply(v, invert(v.slice(0, k)));
    matrixCache.set(key, c);
  }
  return c;
}

/** out ^= coef · input, bytewise in GF(256). */
function mulAddInto(out: Uint8Array, input: Uint8Array, coef: number): void {
  if (coef === 0) return;
  if (coef === 1) {
    for (let i = 0; i < out.length; i++) out[i]! ^= input[i]!;
    return;
  }
  const table = new Uint8Array(256);
  const lc = LOG[coef]!;
  for (let x = 1; x < 256; x++) table[x] = EXP[lc + LOG[x]!]!;
  for (let i = 0; i < out.length; i++) out[i]! ^= table[input[i]!]!;
}

function combine(rows: Matrix, inputs: readonly Uint8Array[], shardLen: number): Uint8Array[] {
  return rows.map((row) => {
    const out = new Uint8Array(shardLen);
    row.forEach((coef, j) => mulAddInto(out, inputs[j]!, coef));
    return out;
  });
}

/** The m parity shards of k data shards (all `shardLen` bytes). */
export function rsEncode(data: readonly Uint8Array[], m: number, shardLen: number): Uint8Array[] {
  const k = data.length;
  for (const d of data) if (d.length !== shardLen) throw new AlliumError('ERR_INTERNAL', 'shard length');
  return combine(codingMatrix(k, m).slice(k), data, shardLen);
}

/**
 * The k data shards from any k present shards of k + m (`shards[i]` null when missing).
 * Throws ERR_NOT_FOUND when fewer than k are present.
 */
export function rsReconstruct(shards: readonly (Uint8Array | null)[], k: number, shardLen: number): Uint8Array[] {
  const m = shards.length - k;
  const presentIdx = shards.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
  if (presentIdx.length < k) throw new AlliumError('ERR_NOT_FOUND', 'too few blocks of a segment survive to rebuild it');
  if (shards.slice(0, k).every((s) => s !== null)) return shards.slice(0, k) as Uint8Array[];
  const use = presentIdx.slice(0, k);
  const full = codingMatrix(k, m);
  const decode = invert(use.map((i) => full[i]!));
  const inputs = use.map((i) => shards[i]!);
  const out: Uint8Array[] = [];
  for (let d = 0; d < k; d++) out.push(shards[d] ?? combine([decode[d]!], inputs, shardLen)[0]!);
  return out;
}
