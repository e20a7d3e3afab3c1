/**
 * Files as block trees (specs/content.md §3), encoded and decoded in memory: byte-exact round trips at the size
 * boundaries and across several segments, convergent and random keys, and erasure recovery up to m missing blocks
 * per segment (ERR_NOT_FOUND beyond).
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { BLOCK_LEN, BLOCK_PAYLOAD_MAX, blockPlaintext, decryptBlock, encryptBlock, parseBlockPlaintext, BlockType, type BlockRef } from '../../protocol/chk.js';
import { crypto } from '../../crypto/index.js';
import { isAlliumError, LimitError } from '../../protocol/errors.js';
import {
  decodeFile,
  encodeFile,
  MAX_MANIFEST_BYTES,
  openFile,
  READ_AHEAD,
  readFile,
  SEGMENT_DATA,
  type BlockFetcher,
  type EncodedBlock,
} from '../../protocol/file-codec.js';

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Encoded {
  root: BlockRef;
  blocks: EncodedBlock[];
  store: Map<string, Uint8Array>;
}

async function encode(chunks: Iterable<Uint8Array>, mode: 'convergent' | 'random' = 'convergent', convergenceSecret?: Uint8Array): Promise<Encoded> {
  const gen = encodeFile(chunks, convergenceSecret ? { mode, convergenceSecret } : { mode });
  const blocks: EncodedBlock[] = [];
  let step = await gen.next();
  while (!step.done) {
    blocks.push(step.value);
    step = await gen.next();
  }
  const store = new Map(blocks.map((b) => [toHex(b.ref.rk), b.stored] as const));
  return { root: step.value, blocks, store };
}

async function decode(root: BlockRef, store: Map<string, Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of decodeFile(root, async (ref) => store.get(toHex(ref.rk)) ?? null)) parts.push(p);
  return Buffer.concat(parts);
}

/** The segments listed in a (direct) root manifest: [k, m, refs]. */
async function segmentsOf(e: Encoded): Promise<{ k: number; m: number; refs: BlockRef[] }[]> {
  const { decodeCbor } = await import('../../protocol/cbor.js');
  const plain = parseBlockPlaintext(decryptBlock(e.root, e.store.get(toHex(e.root.rk))!));
  expect(plain.type).to.equal(BlockType.MANIFEST);
  const man = decodeCbor(plain.payload, plain.payload.length) as { segs: [number, number, Uint8Array][] };
  return man.segs.map(([k, m, r]) => ({
    k,
    m,
    refs: Array.from({ length: r.length / 64 }, (_, i) => ({ rk: r.slice(i * 64, i * 64 + 32), dk: r.slice(i * 64 + 32, i * 64 + 64) })),
  }));
}

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

describe('protocol/file-codec', function () {
  this.timeout(60_000);

  for (const size of [0, 1, BLOCK_PAYLOAD_MAX, BLOCK_PAYLOAD_MAX + 1, 2 * BLOCK_PAYLOAD_MAX + 5]) {
    it(`round trips ${size} bytes byte-exact`, async () => {
      const data = pattern(size, size + 1);
      const e = await encode([data]);
      for (const b of e.blocks) expect(b.stored.length).to.equal(BLOCK_LEN);
      const expectedBlocks = size <= BLOCK_PAYLOAD_MAX ? 1 : Math.ceil(size / BLOCK_PAYLOAD_MAX) + Math.ceil(Math.ceil(size / BLOCK_PAYLOAD_MAX) / 2) + 1;
      expect(e.blocks).to.have.length(expectedBlocks);
      expect(toHex(e.blocks.at(-1)!.ref.rk)).to.equal(toHex(e.root.rk)); // the root comes last
      expect(sha(await decode(e.root, e.store))).to.equal(sha(data));
    });
  }

  it('round trips several segments given as odd-sized chunks, the last segment short', async () => {
    const nData = 2 * SEGMENT_DATA + 5;
    const data = pattern(nData * BLOCK_PAYLOAD_MAX - 1234, 77);
    const chunks: Uint8Array[] = [];
    for (let off = 0, step = 1; off < data.length; off += step, step = (step * 7 + 13) % 50_000) chunks.push(data.subarray(off, off + step));
    const e = await encode(chunks);
    const segs = await segmentsOf(e);
    expect(segs.map((s) => [s.k, s.m])).to.deep.equal([
      [32, 16],
      [32, 16],
      [5, 3],
    ]);
    expect(e.blocks).to.have.length(nData + 16 + 16 + 3 + 1);
    expect(sha(await decode(e.root, e.store))).to.equal(sha(data));
    // The same bytes in one chunk give the same blocks.
    expect(toHex((await encode([data])).root.rk)).to.equal(toHex(e.root.rk));
  });

  it('convergent keys: same data, same root; a convergence secret or random keys give different roots', async () => {
    const data = pattern(3 * BLOCK_PAYLOAD_MAX, 5);
    const a = await encode([data]);
    const b = await encode([data]);
    expect(toHex(a.root.rk)).to.equal(toHex(b.root.rk));
    expect(toHex(a.root.dk)).to.equal(toHex(b.root.dk));
    const s1 = await encode([data], 'convergent', new Uint8Array(32).fill(1));
    const s2 = await encode([data], 'convergent', new Uint8Array(32).fill(2));
    expect(new Set([a, s1, s2].map((x) => toHex(x.root.rk))).size).to.equal(3);
    const r1 = await encode([data], 'random');
    const r2 = await encode([data], 'random');
    expect(new Set([a, r1, r2].map((x) => toHex(x.root.rk))).size).to.equal(3);
    // No data block is shared between random encodings either (no confirmation attack on any block).
    const rks = (x: Encoded): Set<string> => new Set(x.blocks.map((bl) => toHex(bl.ref.rk)));
    expect([...rks(r1)].filter((k) => rks(r2).has(k))).to.deep.equal([]);
    expect(sha(await decode(r1.root, r1.store))).to.equal(sha(data));
    expect(sha(await decode(s2.root, s2.store))).to.equal(sha(data));
  });

  it('rebuilds a segment missing up to m of its blocks, refuses with ERR_NOT_FOUND beyond', async () => {
    const data = pattern(SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 10 * BLOCK_PAYLOAD_MAX, 9);
    const e = await encode([data]);
    const segs = await segmentsOf(e);
    expect(segs.map((s) => [s.k, s.m])).to.deep.equal([
      [32, 16],
      [10, 5],
    ]);
    // Exactly m missing from every segment: data blocks first (the hard case), then a mix.
    const store = new Map(e.store);
    for (const s of segs) {
      const drop = [...s.refs.keys()].filter((i) => i % 2 === 0).slice(0, s.m);
      for (const i of drop) store.delete(toHex(s.refs[i]!.rk));
    }
    expect(sha(await decode(e.root, store))).to.equal(sha(data));
    // A damaged block counts as missing, not as content.
    const tampered = new Map(store);
    const victim = toHex(segs[1]!.refs[1]!.rk);
    const copy = Uint8Array.from(tampered.get(victim)!);
    copy[100]! ^= 1;
    tampered.set(victim, copy);
    expect(await codeOf(decode(e.root, tampered))).to.equal('ERR_NOT_FOUND');
    // m + 1 missing from one segment.
    const worse = new Map(store);
    worse.delete(victim);
    expect(await codeOf(decode(e.root, worse))).to.equal('ERR_NOT_FOUND');
    // The first m data blocks of a segment all gone: rebuilt from the remaining data blocks and every check block.
    const firstGone = new Map(e.store);
    const s1 = segs[1]!;
    for (let i = 0; i < s1.m; i++) firstGone.delete(toHex(s1.refs[i]!.rk));
    expect(sha(await decode(e.root, firstGone))).to.equal(sha(data));
  });

  it('a missing root is ERR_NOT_FOUND; a damaged root is ERR_CONTENT_TAMPERED', async () => {
    const e = await encode([pattern(100, 1)]);
    expect(await codeOf(decode(e.root, new Map()))).to.equal('ERR_NOT_FOUND');
    const bad = Uint8Array.from(e.store.get(toHex(e.root.rk))!);
    bad[0]! ^= 0x80;
    expect(await codeOf(decode(e.root, new Map([[toHex(e.root.rk), bad]])))).to.equal('ERR_CONTENT_TAMPERED');
    // A block under the right routing key but the wrong decryption key: tampered, never garbage bytes.
    const wrongKey = { rk: e.root.rk, dk: new Uint8Array(32).fill(7) };
    expect(await codeOf(decode(wrongKey, e.store))).to.equal('ERR_CONTENT_TAMPERED');
  });

  it('a fetcher that checked its blocks against their routing keys (`checked`) has none hashed again by the reader; a wrong key is still refused', async () => {
    const e = await encode([pattern(3 * BLOCK_PAYLOAD_MAX + 9, 5)]);
    const fetch: BlockFetcher = Object.assign(async (ref: BlockRef) => e.store.get(toHex(ref.rk)) ?? null, { checked: true });
    const c = crypto();
    const hash = c.hash.bind(c);
    let hashed = 0;
    c.hash = (outLen, input, key) => {
      hashed++;
      return hash(outLen, input, key);
    };
    try {
      const parts: Uint8Array[] = [];
      for await (const p of decodeFile(e.root, fetch)) parts.push(p);
      expect(sha(Buffer.concat(parts))).to.equal(sha(pattern(3 * BLOCK_PAYLOAD_MAX + 9, 5)));
      expect(hashed).to.equal(0);
      // Not hashed, still authenticated: the decryption refuses a block under the wrong decryption key.
      const wrongKey = { rk: e.root.rk, dk: new Uint8Array(32).fill(7) };
      expect(
        await codeOf(
          (async () => {
            for await (const _ of decodeFile(wrongKey, fetch)) void _;
          })(),
        ),
      ).to.equal('ERR_CONTENT_TAMPERED');
    } finally {
      delete (c as { hash?: unknown }).hash;
    }
  });
});

/** A store that counts fetches and the most in flight at once; each fetch answers on a later turn. */
function countingStore(store: Map<string, Uint8Array>): { fetch: BlockFetcher; fetches: () => number; maxInFlight: () => number } {
  let fetches = 0;
  let inFlight = 0;
  let max = 0;
  return {
    fetch: async (ref) => {
      fetches++;
      max = Math.max(max, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return store.get(toHex(ref.rk)) ?? null;
    },
    fetches: () => fetches,
    maxInFlight: () => max,
  };
}

async function outcome(
  root: BlockRef,
  fetch: BlockFetcher,
  options: { maxManifestBytes?: number; concurrency?: number } = {},
): Promise<{ code: string; limit?: string }> {
  try {
    for await (const _ of decodeFile(root, fetch, options)) void _;
    return { code: 'decoded' };
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e instanceof LimitError ? { code: e.code, limit: e.limit } : { code: e.code };
  }
}

/** Stores a block of `type` holding `payload`; returns its reference. */
function put(store: Map<string, Uint8Array>, type: BlockType, payload: Uint8Array): BlockRef {
  const b = encryptBlock(blockPlaintext(type, payload), 'random');
  store.set(toHex(b.ref.rk), b.stored);
  return b.ref;
}

const refsBytes = (refs: readonly BlockRef[]): Uint8Array => Buffer.concat(refs.flatMap((r) => [r.rk, r.dk]));

describe('manifests are bounded before their parts are fetched', () => {
  it('nested indirect manifests claiming 2^32 bytes: ERR_LIMIT (MAX_MANIFEST_BYTES), parts fetched a few at a time', async () => {
    const store = new Map<string, Uint8Array>();
    // Level 2: an indirect manifest of 2^32 bytes whose 131 072 parts all name one block.
    const one = { rk: new Uint8Array(32).fill(1), dk: new Uint8Array(32).fill(2) };
    const level2 = encodeCbor({ v: 1, len: 2 ** 32, parts: refsBytes(Array.from({ length: Math.ceil(2 ** 32 / BLOCK_PAYLOAD_MAX) }, () => one)) });
    // Level 1, the root: an indirect manifest whose parts hold level 2 (8 MiB, under the cap).
    const parts: BlockRef[] = [];
    for (let off = 0; off < level2.length; off += BLOCK_PAYLOAD_MAX)
      parts.push(put(store, BlockType.MANIFEST_PART, level2.subarray(off, off + BLOCK_PAYLOAD_MAX)));
    const root = put(store, BlockType.MANIFEST, encodeCbor({ v: 1, len: level2.length, parts: refsBytes(parts) }));
    const s = countingStore(store);
    const r = await outcome(root, s.fetch);
    expect({ ...r, fetches: s.fetches(), maxInFlight: s.maxInFlight() }).to.deep.equal({
      code: 'ERR_LIMIT',
      limit: 'MAX_MANIFEST_BYTES',
      fetches: 1 + parts.length,
      maxInFlight: 16,
    });
  });

  it('a root claiming more than MAX_MANIFEST_BYTES is refused before any part is fetched', async () => {
    const store = new Map<string, Uint8Array>();
    const part = put(store, BlockType.MANIFEST_PART, new Uint8Array(BLOCK_PAYLOAD_MAX));
    // As many parts as a root holds, all one block, under a length of 2^32 (the most the format allows).
    const root = put(store, BlockType.MANIFEST, encodeCbor({ v: 1, len: 2 ** 32, parts: refsBytes(Array.from({ length: 511 }, () => part)) }));
    const s = countingStore(store);
    expect({ ...(await outcome(root, s.fetch)), fetches: s.fetches() }).to.deep.equal({ code: 'ERR_LIMIT', limit: 'MAX_MANIFEST_BYTES', fetches: 1 });
    expect(MAX_MANIFEST_BYTES).to.equal(64 * 1024 * 1024);
    // A reader that allows less refuses less.
    const small = put(store, BlockType.MANIFEST, encodeCbor({ v: 1, len: 4 * BLOCK_PAYLOAD_MAX, parts: refsBytes([part, part, part, part]) }));
    const t = countingStore(store);
    expect({ ...(await outcome(small, t.fetch, { maxManifestBytes: 3 * BLOCK_PAYLOAD_MAX })), fetches: t.fetches() }).to.deep.equal({
      code: 'ERR_LIMIT',
      limit: 'MAX_MANIFEST_BYTES',
      fetches: 1,
    });
  });

  it('a part count that does not match the length, or a part of the wrong length, is ERR_CONTENT', async () => {
    const store = new Map<string, Uint8Array>();
    const part = put(store, BlockType.MANIFEST_PART, new Uint8Array(BLOCK_PAYLOAD_MAX));
    const tooMany = put(store, BlockType.MANIFEST, encodeCbor({ v: 1, len: 100_000, parts: refsBytes(Array.from({ length: 511 }, () => part)) }));
    const s = countingStore(store);
    expect({ ...(await outcome(tooMany, s.fetch)), fetches: s.fetches() }).to.deep.equal({ code: 'ERR_CONTENT', fetches: 1 });
    const short = put(store, BlockType.MANIFEST_PART, new Uint8Array(100));
    const badPart = put(store, BlockType.MANIFEST, encodeCbor({ v: 1, len: 2 * BLOCK_PAYLOAD_MAX, parts: refsBytes([short, part]) }));
    const t = countingStore(store);
    expect((await outcome(badPart, t.fetch, { concurrency: 1 })).code).to.equal('ERR_CONTENT');
    expect(t.fetches()).to.equal(2);
  });

  it('an honest file with an indirect manifest still decodes, its parts a few at a time', async () => {
    // 12 segments of 32 blocks: the manifest (576 references) needs two parts.
    const data = pattern(12 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX, 99);
    const e = await encode([data], 'random');
    const plain = parseBlockPlaintext(decryptBlock(e.root, e.store.get(toHex(e.root.rk))!));
    expect(plain.type).to.equal(BlockType.MANIFEST);
    const s = countingStore(e.store);
    const parts: Uint8Array[] = [];
    for await (const p of decodeFile(e.root, s.fetch, { concurrency: 4 })) parts.push(p);
    expect(sha(Buffer.concat(parts))).to.equal(sha(data));
    expect(s.maxInFlight()).to.be.at.most(4);
  });
});

describe('file codec: byte ranges (the gateway seeking in a video, specs/content.md §12.3)', () => {
  it('yields exactly bytes [start, end) and fetches only the segments that cover them', async () => {
    const size = 3 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 12_345; // four segments
    const data = pattern(size, 77);
    const e = await encode([data]);
    const fetched = new Set<string>();
    const fetch: BlockFetcher = async (ref) => {
      fetched.add(toHex(ref.rk));
      return e.store.get(toHex(ref.rk)) ?? null;
    };
    const file = await openFile(fetch, e.root);
    expect(file.size).to.equal(size);
    const segs = await segmentsOf(e);
    for (const [start, end] of [
      [0, 1],
      [BLOCK_PAYLOAD_MAX - 1, BLOCK_PAYLOAD_MAX + 1],
      [2 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 5, 2 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 100_000],
      [size - 10, size],
      [0, size],
    ] as const) {
      fetched.clear();
      const parts: Uint8Array[] = [];
      for await (const p of readFile(file, fetch, { start, end })) parts.push(p);
      expect(sha(Buffer.concat(parts)), `${start}-${end}`).to.equal(sha(data.subarray(start, end)));
      const first = Math.floor(start / (SEGMENT_DATA * BLOCK_PAYLOAD_MAX));
      const last = Math.floor((end - 1) / (SEGMENT_DATA * BLOCK_PAYLOAD_MAX));
      segs.forEach((s, i) => {
        const touched = s.refs.slice(0, s.k).some((r) => fetched.has(toHex(r.rk)));
        expect(touched, `segment ${i} for ${start}-${end}`).to.equal(i >= first && i <= last);
      });
    }
  });

  it('refuses a manifest whose size its blocks cannot hold (ERR_CONTENT) before fetching any data block', async () => {
    const e = await encode([pattern(3 * BLOCK_PAYLOAD_MAX, 5)]);
    const segs = await segmentsOf(e);
    const refs = Buffer.concat(segs[0]!.refs.flatMap((r) => [r.rk, r.dk]));
    for (const size of [2 * BLOCK_PAYLOAD_MAX, 3 * BLOCK_PAYLOAD_MAX + 1]) {
      const root = encryptBlock(blockPlaintext(BlockType.MANIFEST, encodeCbor({ v: 1, size, segs: [[3, 2, new Uint8Array(refs)]] })), 'convergent');
      const store = new Map(e.store);
      store.set(toHex(root.ref.rk), root.stored);
      let code = '';
      try {
        await openFile(async (ref) => store.get(toHex(ref.rk)) ?? null, root.ref);
      } catch (err) {
        code = isAlliumError(err) ? err.code : String(err);
      }
      expect(code, `size ${size}`).to.equal('ERR_CONTENT');
    }
  });
});

describe('file codec: reading one segment ahead (specs/content.md §3.4)', () => {
  /** Lets every pending in-memory fetch and its continuations run (no timers: the fetcher never waits on time). */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  };

  it(`asks for the next segment while a block of this one is held back, never more than ${READ_AHEAD} ahead; a read stopped early asks no further`, async () => {
    const e = await encode([pattern(3 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX, 31)]); // three full segments
    const segs = await segmentsOf(e);
    const file = await openFile(async (ref) => e.store.get(toHex(ref.rk)) ?? null, e.root);
    const segmentOf = new Map(segs.flatMap((s, i) => s.refs.map((r) => [toHex(r.rk), i] as const)));
    const held = toHex(segs[0]!.refs[5]!.rk);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const asked: number[] = [];
    const fetch: BlockFetcher = async (ref) => {
      const h = toHex(ref.rk);
      asked.push(segmentOf.get(h)!);
      if (h === held) await gate;
      return e.store.get(h) ?? null;
    };
    const reader = readFile(file, fetch, { concurrency: 4 });
    const first = reader.next();
    await settle();
    const count = (seg: number): number => asked.filter((s) => s === seg).length;
    console.log(`      segment 0's block 5 held back: asked ${count(0)} of segment 0, ${count(1)} of segment 1, ${count(2)} of segment 2`);
    expect(count(0), 'every block of segment 0').to.equal(SEGMENT_DATA);
    expect(count(1), 'segment 1 asked meanwhile').to.equal(SEGMENT_DATA);
    expect(count(2), 'not two segments ahead').to.equal(0);
    release();
    const chunk = await first;
    expect(chunk.done).to.equal(false);
    expect(sha(chunk.value as Uint8Array)).to.equal(sha(pattern(3 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX, 31).subarray(0, BLOCK_PAYLOAD_MAX)));
    // The reader stops after its first chunk: segment 2 is never asked for.
    await reader.return(undefined);
    await settle();
    expect(count(2), 'nothing asked after the read stopped').to.equal(0);
  });

  it("asks each segment's lead (block 0, when the read returns the segment from its start) first, the rest in random order; a range that starts inside a segment has no lead there", async () => {
    const size = 2 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 1234; // three segments, the last of one block
    const bytes = pattern(size, 41);
    const e = await encode([bytes], 'random'); // random keys: a one-block segment's check block is not its data block's twin
    const segs = await segmentsOf(e);
    const file = await openFile(async (ref) => e.store.get(toHex(ref.rk)) ?? null, e.root);
    const where = new Map(segs.flatMap((s, g) => s.refs.map((r, i) => [toHex(r.rk), [g, i] as const] as const)));
    const shuffle = (xs: number[]): number[] => crypto().shuffle(xs);
    const segBytes = SEGMENT_DATA * BLOCK_PAYLOAD_MAX;
    // Starts inside a segment are read with the order left as is (no shuffle), so that a lead would show: the block
    // holding the start asked first told a forwarder holding the manifest where the range starts (review).
    const inOrder = (xs: number[]): number[] => xs;
    for (const start of [0, 0, 0, segBytes, segBytes + 5 * BLOCK_PAYLOAD_MAX + 17, 7 * BLOCK_PAYLOAD_MAX]) {
      const inside = start % segBytes !== 0;
      // A holder that answers one request at a time, in the order asked (as a circuit's answers come back).
      const asked: (readonly [number, number])[] = [];
      let answered = 0;
      let previous: Promise<unknown> = Promise.resolve();
      const fetch: BlockFetcher = (ref) => {
        const h = toHex(ref.rk);
        asked.push(where.get(h)!);
        const turn = previous
          .then(() => new Promise((r) => setImmediate(r)))
          .then(() => {
            answered++;
            return e.store.get(h) ?? null;
          });
        previous = turn;
        return turn;
      };
      const reader = readFile(file, fetch, { concurrency: 24, order: inside ? inOrder : shuffle, pad: { already: 1 }, start });
      const first = await reader.next();
      expect(first.done).to.equal(false);
      const leadSeg = Math.floor(start / segBytes);
      const startBlock = Math.floor((start - leadSeg * segBytes) / BLOCK_PAYLOAD_MAX);
      // The first request: block 0 of the segment, asked as the lead or, inside a segment, as the order has it.
      expect(asked[0], `the first request of a read from ${start}`).to.deep.equal([leadSeg, 0]);
      expect(answered, `answers before the first chunk of a read from ${start}`).to.equal(inside ? startBlock + 1 : 1);
      const parts = [first.value as Uint8Array];
      for await (const p of reader) parts.push(p);
      expect(sha(Buffer.concat(parts))).to.equal(sha(bytes.subarray(start)));
      // Every later segment's first request is its block 0; the rest of each segment in random order.
      for (let g = leadSeg + 1; g < segs.length; g++)
        expect(
          asked.find(([s]) => s === g),
          `segment ${g}`,
        ).to.deep.equal([g, 0]);
    }
  });

  it('yields the first blocks of a segment while a later block of it is held back, then the rest in order', async () => {
    const bytes = pattern(2 * SEGMENT_DATA * BLOCK_PAYLOAD_MAX + 1234, 37);
    const e = await encode([bytes]);
    const segs = await segmentsOf(e);
    const file = await openFile(async (ref) => e.store.get(toHex(ref.rk)) ?? null, e.root);
    const held = toHex(segs[0]!.refs[20]!.rk);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const fetch: BlockFetcher = async (ref) => {
      const h = toHex(ref.rk);
      if (h === held) await gate;
      return e.store.get(h) ?? null;
    };
    const reader = readFile(file, fetch, { concurrency: 8 });
    const early: Uint8Array[] = [];
    // Read until the reader waits for the held block: blocks 0..19 come out without it.
    for (;;) {
      let waiting = true;
      const next = reader.next().finally(() => (waiting = false));
      await settle();
      if (waiting) {
        release();
        const step = await next;
        if (!step.done) early.push(step.value);
        break;
      }
      const step = await next;
      if (step.done) break;
      early.push(step.value);
    }
    expect(early.length, 'blocks yielded before the held one arrived, and it').to.equal(21);
    for await (const p of reader) early.push(p);
    expect(sha(Buffer.concat(early))).to.equal(sha(bytes));
  });
});
