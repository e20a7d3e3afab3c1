/**
 * Files as trees of blocks (specs/content.md §3), in the spirit of Hyphanet's splitfiles.
 *
 * - A file of at most BLOCK_PAYLOAD_MAX bytes lives inside its root block (INLINE).
 * - Larger files are cut into DATA blocks, grouped in segments of up to SEGMENT_DATA blocks; each segment gets
 *   ceil(k/2) Reed-Solomon CHECK blocks computed over the block plaintexts, so any k of its n blocks rebuild it.
 * - The manifest lists every segment's block references:
 *     CBOR { "v": 1, "size": bytes, "segs": [ [k, m, refs (n × 64 bytes: rk | dk)] ... ] }
 *   If it fits one block it is the root (MANIFEST); otherwise it is cut into MANIFEST_PART blocks and the root is
 *     CBOR { "v": 1, "len": manifest bytes, "parts": refs (64 bytes each) }
 *   (an indirect manifest; recursion handles any size).
 * No file name, type or other metadata is stored.
 */
import { z } from 'zod';
import { concatBytes } from './bytes.js';
import { decodeCbor, encodeCbor, validate, zBytes, zUint } from './cbor.js';
import {
  BLOCK_PAYLOAD_MAX,
  BLOCK_PLAIN_LEN,
  BlockType,
  blockPlaintext,
  decryptBlock,
  encryptBlock,
  parseBlockPlaintext,
  type BlockRef,
  type KeyMode,
} from './chk.js';
import { AlliumError, LimitError, ProtocolError } from './errors.js';
import { encodeParity, reconstruct } from './erasure.js';
import { RequestQueue } from './request-queue.js';

export const SEGMENT_DATA = 32;
export const MAX_FILE_SIZE = 2 ** 40;
/**
 * Largest manifest a reader assembles from MANIFEST_PART blocks (reader's policy, specs/limits.md MAX_MANIFEST_BYTES):
 * 64 MiB lists about 21 000 full segments, a file of some 22 GB. The format allows 2^32.
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Blocks a reader fetches at once (segments and manifest parts) unless told otherwise. */
const DEFAULT_DECODE_CONCURRENCY = 16;
/** Segments a reader fetches beyond the one it is yielding (content.md §3.4): one, so at most two are held. */
export const READ_AHEAD = 1;

const refsBytes = (refs: readonly BlockRef[]): Uint8Array => concatBytes(...refs.flatMap((r) => [r.rk, r.dk]));
function refsOf(b: Uint8Array): BlockRef[] {
  if (b.length % 64 !== 0) throw new ProtocolError('ERR_CONTENT', 'reference list length');
  const out: BlockRef[] = [];
  for (let i = 0; i < b.length; i += 64) out.push({ rk: b.slice(i, i + 32), dk: b.slice(i + 32, i + 64) });
  return out;
}

const manifestSchema = z.strictObject({
  v: z.literal(1),
  size: zUint(MAX_FILE_SIZE),
  segs: z.array(z.tuple([zUint(SEGMENT_DATA), zUint(SEGMENT_DATA), zBytes()])).max(2 ** 24),
});
const indirectSchema = z.strictObject({ v: z.literal(1), len: zUint(2 ** 32), parts: zBytes() });

export type ManifestPayload =
  | { readonly kind: 'manifest'; readonly size: number; readonly segs: readonly (readonly [number, number, BlockRef[]])[] }
  | { readonly kind: 'indirect'; readonly len: number; readonly parts: readonly BlockRef[] };

/**
 * Decodes the payload of a MANIFEST block (specs/content.md §4): a manifest, or an indirect manifest naming the
 * parts whose concatenation is one. Pure; throws ERR_CBOR_*, ERR_SCHEMA or ERR_CONTENT.
 */
export function decodeManifestPayload(payload: Uint8Array): ManifestPayload {
  const value = decodeCbor(payload, payload.length);
  if (value !== null && typeof value === 'object' && 'segs' in value) {
    const m = validate(manifestSchema, value, 'manifest');
    return { kind: 'manifest', size: m.size, segs: m.segs.map(([k, mm, refs]) => [k, mm, refsOf(refs)] as const) };
  }
  const ind = validate(indirectSchema, value, 'indirect manifest');
  return { kind: 'indirect', len: ind.len, parts: refsOf(ind.parts) };
}

export interface EncodedBlock {
  readonly ref: BlockRef;
  readonly stored: Uint8Array;
}

export interface EncodeOptions {
  mode: KeyMode;
  convergenceSecret?: Uint8Array;
}

/**
 * Encodes a file given as an async iterable of chunks. Yields every block to store (data and check blocks as
 * segments fill, manifest blocks at the end); the last block yielded is the root.
 */
export async function* encodeFile(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, o: EncodeOptions): AsyncGenerator<EncodedBlock, BlockRef> {
  const enc = (type: BlockType, payload: Uint8Array): EncodedBlock => encryptBlock(blockPlaintext(type, payload), o.mode, o.convergenceSecret);
  const segs: [number, number, Uint8Array][] = [];
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let plains: Uint8Array[] = [];
  let segRefs: BlockRef[] = [];
  let size = 0;
  let first: Uint8Array | null = null; // held back until we know the file is larger than one block

  async function* flushSegment(): AsyncGenerator<EncodedBlock> {
    if (plains.length === 0) return;
    const k = plains.length;
    const m = Math.ceil(k / 2);
    const parity = await encodeParity(plains, m, BLOCK_PLAIN_LEN);
    for (const p of parity) {
      const b = encryptBlock(p, o.mode, o.convergenceSecret);
      segRefs.push(b.ref);
      yield b;
    }
    segs.push([k, m, refsBytes(segRefs)]);
    plains = [];
    segRefs = [];
  }

  function* emitData(payload: Uint8Array): Generator<EncodedBlock> {
    const plain = blockPlaintext(BlockType.DATA, payload);
    const b = encryptBlock(plain, o.mode, o.convergenceSecret);
    plains.push(plain);
    segRefs.push(b.ref);
    yield b;
  }

  for await (const chunk of source) {
    size += chunk.length;
    if (size > MAX_FILE_SIZE) throw new AlliumError('ERR_LIMIT', 'file too large');
    pending.push(chunk);
    pendingLen += chunk.length;
    while (pendingLen >= BLOCK_PAYLOAD_MAX + (first === null ? 1 : 0)) {
      // One chunk left (the usual case inside a large chunk): take a view, or every block would copy the rest of
      // the chunk and a whole-file put would take time quadratic in its size.
      const all = pending.length === 1 ? pending[0]! : concatBytes(...pending);
      const payload = all.slice(0, BLOCK_PAYLOAD_MAX);
      pending = [all.subarray(BLOCK_PAYLOAD_MAX)];
      pendingLen = all.length - BLOCK_PAYLOAD_MAX;
      if (first === null) {
        first = payload;
        continue;
      }
      if (first.length) {
        yield* emitData(first);
        first = new Uint8Array(0);
      }
      yield* emitData(payload);
      if (plains.length === SEGMENT_DATA) yield* flushSegment();
    }
  }
  const rest = concatBytes(...pending);
  if (first === null) {
    // Small file: inline in the root.
    const root = enc(BlockType.INLINE, rest);
    yield root;
    return root.ref;
  }
  if (first.length) yield* emitData(first);
  if (rest.length) yield* emitData(rest);
  yield* flushSegment();

  let manifest = encodeCbor({ v: 1, size, segs });
  let type: BlockType = BlockType.MANIFEST;
  for (;;) {
    if (manifest.length <= BLOCK_PAYLOAD_MAX) {
      const root = enc(type, manifest);
      yield root;
      return root.ref;
    }
    const parts: BlockRef[] = [];
    for (let off = 0; off < manifest.length; off += BLOCK_PAYLOAD_MAX) {
      const b = enc(BlockType.MANIFEST_PART, manifest.subarray(off, off + BLOCK_PAYLOAD_MAX));
      parts.push(b.ref);
      yield b;
    }
    manifest = encodeCbor({ v: 1, len: manifest.length, parts: refsBytes(parts) });
    type = BlockType.MANIFEST;
  }
}

/**
 * Fetches one stored block by reference (any holder); null when every holder answered that it does not have it.
 * Throws when it cannot tell (ERR_UNREACHABLE: some holder could not be asked) or was aborted.
 */
export type BlockFetcher = ((ref: BlockRef) => Promise<Uint8Array | null>) & {
  /**
   * True when the fetcher returns only blocks it verified against their routing key (verifyStoredBlock): the reader
   * then does not hash them again, only decrypts them (content.md §3.4).
   */
  readonly checked?: boolean;
};

export interface DecodeProgress {
  (doneBytes: number, totalBytes: number): void;
}

async function fetchPlain(fetch: BlockFetcher, ref: BlockRef): Promise<Uint8Array | null> {
  const stored = await fetch(ref);
  return stored ? decryptBlock(ref, stored, fetch.checked === true) : null;
}

/**
 * Fetches the parts of an indirect manifest, `concurrency` at a time, each checked as it arrives: a MANIFEST_PART
 * of exactly the length its place requires (the manifest is cut into BLOCK_PAYLOAD_MAX-byte parts, content.md §3.3).
 */
async function fetchParts(fetch: BlockFetcher, parts: readonly BlockRef[], len: number, concurrency: number): Promise<Uint8Array> {
  const out = new Uint8Array(len);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < parts.length && !failed) {
      const i = next++;
      try {
        const p = await fetchPlain(fetch, parts[i]!);
        if (!p) throw new AlliumError('ERR_NOT_FOUND', 'a manifest block is missing');
        const parsed = parseBlockPlaintext(p);
        if (parsed.type !== BlockType.MANIFEST_PART) throw new ProtocolError('ERR_CONTENT', 'expected a manifest part');
        const want = Math.min(BLOCK_PAYLOAD_MAX, len - i * BLOCK_PAYLOAD_MAX);
        if (parsed.payload.length !== want) throw new ProtocolError('ERR_CONTENT', 'manifest length mismatch');
        out.set(parsed.payload, i * BLOCK_PAYLOAD_MAX);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, parts.length) }, worker));
  return out;
}

/** Reader's bounds on a manifest. */
export interface ManifestLimits {
  /** Largest manifest assembled from parts (default MAX_MANIFEST_BYTES). */
  maxManifestBytes?: number;
  /** Parts fetched at once (default 16). */
  concurrency?: number;
}

/** A file whose manifest was read: its size and segments (or its inline bytes), and the manifest blocks read. */
export interface OpenedFile {
  readonly size: number;
  /** The whole file, when it lives inside its root block (INLINE). */
  readonly inline: Uint8Array | null;
  /** [k, m, refs]: k data block refs then m check block refs. */
  readonly segs: readonly (readonly [number, number, readonly BlockRef[]])[];
  /** The root and every MANIFEST_PART block read to assemble the manifest. */
  readonly manifestBlocks: readonly BlockRef[];
}

/**
 * Reads a file's manifest (content.md §3.4): the root, then the parts of indirect manifests, each level checked
 * before any of its parts is fetched. Checks that the segments' data blocks hold exactly `size` bytes with every
 * block full but the last. Throws ERR_NOT_FOUND (no root), ERR_CONTENT, ERR_LIMIT (MAX_MANIFEST_BYTES), ERR_SCHEMA.
 */
export async function openFile(fetch: BlockFetcher, root: BlockRef, limits: ManifestLimits = {}): Promise<OpenedFile> {
  const maxBytes = limits.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  const concurrency = Math.max(1, limits.concurrency ?? DEFAULT_DECODE_CONCURRENCY);
  const plain = await fetchPlain(fetch, root);
  if (!plain) throw new AlliumError('ERR_NOT_FOUND', 'no holder has the root block');
  const manifestBlocks: BlockRef[] = [root];
  let { type, payload } = parseBlockPlaintext(plain);
  if (type === BlockType.INLINE) return { size: payload.length, inline: payload, segs: [], manifestBlocks };
  for (let depth = 0; depth < 8; depth++) {
    if (type !== BlockType.MANIFEST) throw new ProtocolError('ERR_CONTENT', 'root block is not a manifest');
    const m = decodeManifestPayload(payload);
    if (m.kind === 'manifest') {
      let blocks = 0;
      for (const [k, mm, refs] of m.segs) {
        if (k < 1 || refs.length !== k + mm) throw new ProtocolError('ERR_CONTENT', 'segment reference count');
        blocks += k;
      }
      // Every data block is full but the file's last one (content.md §3.1), which holds 1..BLOCK_PAYLOAD_MAX bytes.
      if (m.size > blocks * BLOCK_PAYLOAD_MAX || (blocks > 0 && m.size <= (blocks - 1) * BLOCK_PAYLOAD_MAX) || (blocks === 0 && m.size !== 0)) {
        throw new ProtocolError('ERR_CONTENT', 'file size does not match its manifest');
      }
      return { size: m.size, inline: null, segs: m.segs, manifestBlocks };
    }
    // Everything is checked before a part is fetched: the length against the reader's cap, the part count against
    // the length. Parts then come a few at a time, into one buffer of that length.
    if (m.len > maxBytes) throw new LimitError('MAX_MANIFEST_BYTES', `a manifest of ${m.len} bytes is larger than this reader takes (${maxBytes})`);
    if (m.parts.length !== Math.ceil(m.len / BLOCK_PAYLOAD_MAX)) throw new ProtocolError('ERR_CONTENT', 'manifest part count does not match its length');
    payload = await fetchParts(fetch, m.parts, m.len, concurrency);
    manifestBlocks.push(...m.parts);
    type = BlockType.MANIFEST;
  }
  throw new ProtocolError('ERR_CONTENT', 'manifest nested too deeply');
}

/** Every block of an opened file: manifest blocks, then each segment's data and check blocks. */
export function fileBlocks(file: OpenedFile): BlockRef[] {
  return [...file.manifestBlocks, ...file.segs.flatMap(([, , refs]) => refs)];
}

/**
 * Class(n) of specs/content.md §8.2: the number of blocks a fetch that needs `n` asks for, `n` rounded up to one of 8
 * classes per doubling above 8 (at most 12.5 % more), so that files of one class give the same request count.
 */
export function requestClass(n: number): number {
  if (n <= 8) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/**
 * How many check blocks of each segment pad a fetch of `segs` (those a read covers) to Class(already + their data
 * blocks), spread as evenly as their check blocks allow (content.md §8.2).
 */
export function paddingPlan(segs: readonly (readonly [number, number, ...unknown[]])[], already: number): number[] {
  const needed = already + segs.reduce((n, [k]) => n + k, 0);
  let extra = requestClass(needed) - needed;
  const plan: number[] = segs.map(() => 0);
  while (extra > 0) {
    let added = false;
    for (let i = 0; i < segs.length && extra > 0; i++) {
      if (plan[i]! < segs[i]![1]) {
        plan[i]!++;
        extra--;
        added = true;
      }
    }
    if (!added) break;
  }
  return plan;
}

export interface ReadOptions {
  /** Blocks fetched at once (default 16). */
  concurrency?: number;
  /**
   * Pads the read's requests to a size class with check blocks (content.md §8.2); `already` counts requests the
   * operation made before (the manifest blocks read to open the file). Default: no padding.
   */
  pad?: { already: number };
  /**
   * Puts the block indices of a segment, but its lead, in the order they are fetched (default: as they are; the
   * client shuffles). The lead, the data block holding the first byte read from the segment, is always fetched first.
   */
  order?: (indices: number[]) => number[];
  /** First byte to yield (default 0). */
  start?: number;
  /** One past the last byte to yield (default the file's size). */
  end?: number;
  onProgress?: DecodeProgress;
}

/**
 * Yields bytes [start, end) of an opened file, in order, fetching only the segments that cover them. Missing data
 * blocks are rebuilt from check blocks; a segment with fewer than k surviving blocks fails with ERR_NOT_FOUND, or
 * ERR_UNREACHABLE when some of its holders could not be asked. Every data block must be full but the file's last
 * (ERR_CONTENT).
 */
export async function* readFile(file: OpenedFile, fetch: BlockFetcher, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
  const start = Math.max(0, options.start ?? 0);
  const end = Math.min(file.size, options.end ?? file.size);
  const total = Math.max(0, end - start);
  if (file.inline) {
    const out = file.inline.subarray(start, Math.max(start, end));
    options.onProgress?.(out.length, total);
    if (out.length) yield out;
    return;
  }
  if (total === 0) return;
  const limit = options.concurrency ?? DEFAULT_DECODE_CONCURRENCY;
  const lastBlockLen = file.size - (Math.ceil(file.size / BLOCK_PAYLOAD_MAX) - 1) * BLOCK_PAYLOAD_MAX;
  let done = 0;
  const order = options.order ?? ((x: number[]): number[] => x);
  // The segments the range covers, in order, and the check blocks that pad their fetch to a class.
  const segments: { index: number; k: number; m: number; refs: readonly BlockRef[]; segStart: number; segLen: number }[] = [];
  for (let i = 0, offset = 0; i < file.segs.length; i++) {
    const [k, m, refs] = file.segs[i]!;
    const segLen = Math.min(k * BLOCK_PAYLOAD_MAX, file.size - offset);
    const segStart = offset;
    offset += segLen;
    if (segStart + segLen <= start) continue;
    if (segStart >= end) break;
    segments.push({ index: i, k, m, refs, segStart, segLen });
  }
  const plan = options.pad
    ? paddingPlan(
        segments.map((g) => file.segs[g.index]!),
        options.pad.already,
      )
    : segments.map(() => 0);
  // Requests of every segment being read share `limit` places, the earliest segment first; the next segment's
  // requests start while this one's last are in flight (READ_AHEAD), so its slowest block does not idle the rest.
  const queue = new RequestQueue(limit);
  /**
   * One segment being read: `first[i]` is data block i as soon as its first fetch settles (null when that fetch did
   * not give it), `all` every data block once the segment is complete, rebuilt when blocks were missing. A reader
   * yields a block as soon as it and those before it are in, so the first bytes go out while later blocks arrive.
   */
  const segmentRead = (pos: number): { first: Promise<Uint8Array | null>[]; all: Promise<Uint8Array[]> } => {
    const { k, m, refs } = segments[pos]!;
    const shards: (Uint8Array | null)[] = new Array(k + m).fill(null);
    const settlers: ((v: Uint8Array | null) => void)[] = [];
    const failers: ((e: unknown) => void)[] = [];
    const first = Array.from(
      { length: k },
      (_, i) =>
        new Promise<Uint8Array | null>((resolve, reject) => {
          settlers[i] = resolve;
          failers[i] = reject;
        }),
    );
    for (const p of first) p.catch(() => undefined); // awaited in turn; those after a failure are not
    // Why a block is missing when it could not be had: told apart so that a segment lost for want of holders is
    // reported as unreachable, not as content nobody stored.
    let unreachable: AlliumError | null = null;
    const fetchOne = async (i: number): Promise<void> => {
      try {
        const stored = await fetch(refs[i]!);
        if (stored) shards[i] = decryptBlock(refs[i]!, stored, fetch.checked === true);
      } catch (e) {
        if (e instanceof AlliumError && e.code === 'ERR_ABORTED') throw e;
        if (e instanceof AlliumError && e.code === 'ERR_UNREACHABLE') unreachable ??= e;
        shards[i] = null;
      }
      if (i < k) settlers[i]!(shards[i] ?? null);
    };
    const fetchInto = async (idx: number[]): Promise<void> => {
      await Promise.all(idx.map((i) => queue.run(pos, () => fetchOne(i))));
    };
    const whole = async (): Promise<Uint8Array[]> => {
      // The lead — block 0, when the read returns the segment from its first byte — first, then the other data blocks
      // and the padding's check blocks in one random order (content.md §8.2 "Order"): answers come back about in the
      // order asked, and the lead is what the reader yields first. Further check blocks only for what is missing.
      const checks = order(Array.from({ length: m }, (_, i) => k + i));
      const pad = plan[pos] ?? 0;
      const { segStart } = segments[pos]!;
      // A read that starts inside the segment (a range) asks in one random order with no lead: its lead would tell a
      // forwarder that holds the manifest where in the segment the range starts (to the block).
      const lead = start <= segStart ? 0 : -1;
      const rest = order([...Array.from({ length: k }, (_, i) => i).filter((i) => i !== lead), ...checks.slice(0, pad)]);
      await fetchInto(lead < 0 ? rest : [lead, ...rest]);
      let missing = Math.max(0, k - shards.filter((s) => s !== null).length);
      let checkIdx = pad;
      while (missing > 0 && checkIdx < m) {
        const batch: number[] = [];
        while (batch.length < missing && checkIdx < m) batch.push(checks[checkIdx++]!);
        await fetchInto(batch);
        missing = Math.max(0, k - shards.filter((s) => s !== null).length);
      }
      if (missing > 0 && unreachable) {
        throw new AlliumError(
          'ERR_UNREACHABLE',
          `a segment cannot be rebuilt: ${missing} of its ${k} blocks missing, some holders unreachable (${(unreachable as AlliumError).message})`,
        );
      }
      return reconstruct(shards, k, BLOCK_PLAIN_LEN);
    };
    const all = whole();
    // A block whose first fetch never ran (the read stopped, or failed) settles with the segment.
    all.then(
      (data) => data.forEach((d, i) => settlers[i]!(d)),
      (e: unknown) => failers.forEach((f) => f(e)),
    );
    all.catch(() => undefined); // awaited below when needed; a segment read ahead and then not needed fails silently
    return { first, all };
  };
  const started: ReturnType<typeof segmentRead>[] = [];
  const startUpTo = (last: number): void => {
    while (started.length <= Math.min(last, segments.length - 1)) started.push(segmentRead(started.length));
  };
  try {
    for (let pos = 0; pos < segments.length; pos++) {
      startUpTo(pos + READ_AHEAD);
      const seg = started[pos]!;
      const { segStart, segLen, k } = segments[pos]!;
      let at = segStart;
      for (let i = 0; i < k; i++) {
        // A block wholly before the range (not the file's last, so full) is not waited for: it is fetched only to
        // rebuild the segment's other blocks, and the range's first bytes go out as soon as the lead is in.
        if (at + BLOCK_PAYLOAD_MAX <= start) {
          at += BLOCK_PAYLOAD_MAX;
          continue;
        }
        // The block as first fetched, else (missing or damaged) once the segment is rebuilt.
        const plain = (await seg.first[i]!) ?? (await seg.all)[i]!;
        const { type, payload } = parseBlockPlaintext(plain);
        if (type !== BlockType.DATA) throw new ProtocolError('ERR_CONTENT', 'expected a data block');
        const isLast = at + BLOCK_PAYLOAD_MAX >= file.size;
        if (payload.length !== (isLast ? lastBlockLen : BLOCK_PAYLOAD_MAX)) throw new ProtocolError('ERR_CONTENT', 'file size does not match its manifest');
        const from = Math.max(start, at) - at;
        const to = Math.min(end, at + payload.length) - at;
        at += payload.length;
        if (to > from) {
          done += to - from;
          options.onProgress?.(done, total);
          yield from === 0 && to === payload.length ? payload : payload.subarray(from, to);
        }
      }
      if (at !== segStart + segLen) throw new ProtocolError('ERR_CONTENT', 'file size does not match its manifest');
    }
  } finally {
    queue.close(); // a read that stopped early starts no more requests; those in flight settle unread
  }
}

/**
 * Decodes a file, segment by segment, yielding its bytes in order (openFile, then readFile). A manifest longer than
 * `maxManifestBytes` (default MAX_MANIFEST_BYTES) is refused before any of its parts is fetched (ERR_LIMIT).
 */
export async function* decodeFile(
  root: BlockRef,
  fetch: BlockFetcher,
  options: { concurrency?: number; maxManifestBytes?: number; onProgress?: DecodeProgress } = {},
): AsyncGenerator<Uint8Array> {
  const limits: ManifestLimits = {};
  if (options.concurrency !== undefined) limits.concurrency = options.concurrency;
  if (options.maxManifestBytes !== undefined) limits.maxManifestBytes = options.maxManifestBytes;
  const file = await openFile(fetch, root, limits);
  const read: ReadOptions = {};
  if (options.concurrency !== undefined) read.concurrency = options.concurrency;
  if (options.onProgress) read.onProgress = options.onProgress;
  yield* readFile(file, fetch, read);
}
