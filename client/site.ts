/**
 * Sites (specs/content.md §10–§11): publishing a set of files as a site under a CHK or an updatable key, reading a
 * site's manifest, and counting a site's blocks at their holders.
 *
 *   const r = await publishSite(content, files, { previous, journal, publisher, name })   // r.link, r.edition
 *   const site = await openSite(content, root)                                          // null: not a site
 *   const s = await siteStatus(content, link)                                           // blocks at holders
 *
 * Publishing skips files whose SHA-256 is unchanged since the previous edition (their entries are reused without
 * encoding or sending them: the root recorded then, never a key recomputed from the content), and blocks an insert
 * journal lists (acknowledged by an earlier, interrupted run under the same run secret). Keys are random to anyone
 * without the run secret unless `convergent` (content.md §9, §10.4).
 * Folder walking and state files are the Node shell's (cli/site-state.ts).
 */
import type { IdentityKey } from '../crypto/keys.js';
import { concatBytes, toHex } from '../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX, type BlockRef } from '../protocol/chk.js';
import { formatLink, parseLink } from '../protocol/content-link.js';
import { AlliumError, LimitError, throwIfAborted } from '../protocol/errors.js';
import { SEGMENT_DATA } from '../protocol/file-codec.js';
import {
  decodeSiteManifest,
  encodeSiteManifest,
  hasSiteMagic,
  MAX_SITE_MANIFEST_BYTES,
  SITE_MAGIC,
  sortSiteEntries,
  type SiteEntry,
  type SiteManifest,
} from '../protocol/site-manifest.js';
import type { ContentClient, OpenedContent } from './content.js';
import type { InsertJournal } from './insert-journal.js';
import type { AbortOptions } from '../net/abort.js';

/** A file to publish: its site path, media type, size, SHA-256 (hex) and a way to read it. */
export interface SiteSource {
  readonly path: string;
  readonly type: string;
  readonly size: number;
  readonly sha256: string;
  read(): Promise<Uint8Array>;
}

/** What a publisher remembers of each file it put: by SHA-256, the root it got. */
export type PreviousFiles = ReadonlyMap<string, BlockRef>;

export interface SiteProgress {
  /** Blocks stored or skipped so far, and the estimate of all blocks to go through. */
  readonly doneBlocks: number;
  readonly totalBlocks: number;
  /** The file being put, or 'manifest'. */
  readonly current: string;
}

export interface PublishSiteOptions {
  previous?: PreviousFiles;
  journal?: InsertJournal;
  /**
   * The run secret (content.md §10.4): keys convergent under it, so a run resumed from `journal` with the same secret
   * makes the same blocks, while to anyone without it the keys are random. Without it (and without `convergent`)
   * every block gets a random key, and an interrupted run cannot reuse what it sent.
   */
  convergenceSecret?: Uint8Array;
  /** Plain convergent keys: deduplicated, but open to confirmation attacks (content.md §9). Default false. */
  convergent?: boolean;
  /** Default document (default: index.html, else the first .html, else the first path). */
  index?: string;
  note?: string;
  /** Publish under this updatable key and name; without them the site is a CHK link. */
  publisher?: IdentityKey;
  name?: string;
  now?: () => number;
  onProgress?: (p: SiteProgress) => void;
  signal?: AbortSignal;
}

export interface PublishSiteResult {
  /** The link readers use: allium:ssk/…/NAME, or allium:chk/…/ (a trailing slash marks a site). */
  readonly link: string;
  /** The manifest's own CHK link. */
  readonly manifestLink: string;
  readonly edition: number | null;
  readonly manifest: SiteManifest;
  /** Every file's root by SHA-256, for the next edition. */
  readonly files: Map<string, BlockRef>;
  readonly stats: { files: number; reused: number; blocksStored: number; blocksSkipped: number };
}

/** The number of blocks a file of `size` bytes encodes to (content.md §3; a direct manifest assumed). */
export function blocksFor(size: number): number {
  if (size <= BLOCK_PAYLOAD_MAX) return 1;
  const data = Math.ceil(size / BLOCK_PAYLOAD_MAX);
  const full = Math.floor(data / SEGMENT_DATA);
  const rest = data % SEGMENT_DATA;
  const check = full * (SEGMENT_DATA / 2) + Math.ceil(rest / 2);
  const segs = full + (rest ? 1 : 0);
  const manifestBytes = 16 + segs * 8 + (data + check) * 64;
  return data + check + (manifestBytes <= BLOCK_PAYLOAD_MAX ? 1 : Math.ceil(manifestBytes / BLOCK_PAYLOAD_MAX) + 1);
}

function defaultIndex(paths: readonly string[]): string {
  return paths.find((p) => p === 'index.html') ?? paths.find((p) => /\.html?$/i.test(p)) ?? paths[0]!;
}

const chkLink = (ref: BlockRef): string => formatLink({ type: 'chk', rk: ref.rk, dk: ref.dk, flags: 0 });

/**
 * Publishes files as a site (content.md §10.4): puts each changed file, then the manifest, then (with a publisher
 * and a name) the next edition and its hints. Throws ERR_SITE_MANIFEST or ERR_LIMIT for files that cannot make a
 * site (bad paths, too many), and what put and publish throw (ERR_UNREACHABLE, ERR_QUOTA, ERR_ABORTED…).
 */
export async function publishSite(content: ContentClient, sources: readonly SiteSource[], o: PublishSiteOptions = {}): Promise<PublishSiteResult> {
  if (sources.length === 0) throw new AlliumError('ERR_SITE_MANIFEST', 'a site needs at least one file');
  const sorted = sortSiteEntries(sources);
  const index = o.index ?? defaultIndex(sorted.map((s) => s.path));
  // Checked before anything is sent: a manifest of these paths and types must be valid.
  const zero = { rk: new Uint8Array(32), dk: new Uint8Array(32) };
  encodeSiteManifest({
    idx: index,
    files: sorted.map((s) => ({ path: s.path, type: s.type, ref: zero, size: s.size })),
    ...(o.note !== undefined ? { note: o.note } : {}),
  });

  const toPut = sorted.filter((s) => !o.previous?.has(s.sha256));
  const totalBlocks = toPut.reduce((n, s) => n + blocksFor(s.size), 0) + blocksFor(sorted.length * 200);
  let doneBlocks = 0;
  const stats = { files: sorted.length, reused: sorted.length - toPut.length, blocksStored: 0, blocksSkipped: 0 };
  const tick = (current: string): void => o.onProgress?.({ doneBlocks: ++doneBlocks, totalBlocks: Math.max(totalBlocks, doneBlocks), current });
  const putOptions = (current: string) => {
    const counts = { stored: 0, skipped: 0 };
    return {
      counts,
      options: {
        ...(o.convergent ? { convergent: true } : o.convergenceSecret ? { convergenceSecret: o.convergenceSecret } : {}),
        ...(o.journal ? { skip: (rk: Uint8Array) => o.journal!.has(rk), onStored: (rk: Uint8Array) => o.journal!.add(rk) } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        stats: counts,
        onProgress: () => tick(current),
      },
    };
  };

  const files = new Map<string, BlockRef>(o.previous ?? []);
  const entries: SiteEntry[] = [];
  for (const s of sorted) {
    throwIfAborted(o.signal);
    let ref = files.get(s.sha256);
    if (!ref) {
      const data = await s.read();
      if (data.length !== s.size) throw new AlliumError('ERR_CONFIG', `${s.path} changed while it was being published`);
      const p = putOptions(s.path);
      ref = parseLink(await content.put(data, p.options)) as BlockRef;
      stats.blocksStored += p.counts.stored;
      stats.blocksSkipped += p.counts.skipped;
      files.set(s.sha256, { rk: ref.rk, dk: ref.dk });
    }
    entries.push({ path: s.path, type: s.type, ref: { rk: ref.rk, dk: ref.dk }, size: s.size });
  }
  const manifest: SiteManifest = { idx: index, files: entries, ...(o.note !== undefined ? { note: o.note } : {}) };
  const p = putOptions('manifest');
  const manifestLink = await content.put(encodeSiteManifest(manifest), p.options);
  stats.blocksStored += p.counts.stored;
  stats.blocksSkipped += p.counts.skipped;
  if (o.publisher && o.name !== undefined) {
    const r = await content.publishTarget(o.publisher, o.name, manifestLink, { ...(o.signal ? { signal: o.signal } : {}), ...(o.now ? { now: o.now } : {}) });
    return { link: r.link, manifestLink, edition: r.edition, manifest, files, stats };
  }
  return { link: `${manifestLink}/`, manifestLink, edition: null, manifest, files, stats };
}

/** A site as a reader has it: the manifest and a lookup by path. */
export interface OpenedSite {
  readonly root: BlockRef;
  readonly manifest: SiteManifest;
  entry(path: string): SiteEntry | undefined;
  /** The paths directly under a folder ('' for the root): files and subfolders (with a trailing slash). */
  list(folder: string): string[];
}

function siteOf(root: BlockRef, manifest: SiteManifest): OpenedSite {
  const byPath = new Map(manifest.files.map((f) => [f.path, f]));
  return {
    root,
    manifest,
    entry: (path) => byPath.get(path),
    list(folder) {
      const prefix = folder === '' ? '' : folder.endsWith('/') ? folder : `${folder}/`;
      const out = new Set<string>();
      for (const f of manifest.files) {
        if (!f.path.startsWith(prefix)) continue;
        const rest = f.path.slice(prefix.length);
        const slash = rest.indexOf('/');
        out.add(slash < 0 ? rest : rest.slice(0, slash + 1));
      }
      return [...out];
    },
  };
}

/**
 * Reads a site's manifest from an opened file, or null when the file is not a site (no magic). Throws
 * ERR_LIMIT (MAX_SITE_MANIFEST_BYTES, checked against the size before anything more is fetched),
 * ERR_SITE_MANIFEST, ERR_SCHEMA, ERR_CBOR_* and what fetching throws.
 */
export async function readSite(root: BlockRef, file: OpenedContent, options: AbortOptions = {}): Promise<OpenedSite | null> {
  const { signal } = options;
  if (file.size < SITE_MAGIC.length) return null;
  const head: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of file.read({ start: 0, end: SITE_MAGIC.length, ...(signal ? { signal } : {}) })) {
    head.push(chunk);
    got += chunk.length;
  }
  if (got < SITE_MAGIC.length || !hasSiteMagic(concatBytes(...head))) return null;
  if (file.size > MAX_SITE_MANIFEST_BYTES) throw new LimitError('MAX_SITE_MANIFEST_BYTES', `a site manifest is at most ${MAX_SITE_MANIFEST_BYTES} bytes`);
  const parts: Uint8Array[] = [];
  for await (const chunk of file.read(signal ? { signal } : {})) parts.push(chunk);
  return siteOf(root, decodeSiteManifest(concatBytes(...parts)));
}

/** How many of a site's (or a file's) blocks are at their holders (`allium status`). */
export interface SiteStatus {
  readonly files: number;
  readonly blocks: number;
  /** Blocks held by every one of their holders, by some, by none. */
  readonly atAll: number;
  readonly partial: number;
  readonly missing: number;
  /** Copies found, and copies wanted (blocks × holders). */
  readonly copies: number;
  readonly wanted: number;
}

/** Counts the blocks of a link's file or site at their holders (head-only FETCH, a few blocks at a time). */
export async function siteStatus(
  content: ContentClient,
  link: string,
  o: { signal?: AbortSignal; concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<SiteStatus> {
  const sig = o.signal ? { signal: o.signal } : {};
  const root = await content.rootOf(link.replace(/\/$/, ''), sig);
  const file = await content.open(root, sig);
  const site = await readSite(root, file, sig);
  const blocks = new Map<string, BlockRef>();
  const add = (refs: BlockRef[]): void => refs.forEach((r) => blocks.set(toHex(r.rk), r));
  add(file.blocks());
  if (site) {
    for (const f of site.manifest.files) {
      throwIfAborted(o.signal);
      try {
        add((await content.open(f.ref, sig)).blocks());
      } catch (e) {
        if (e instanceof AlliumError && e.code === 'ERR_ABORTED') throw e;
        blocks.set(toHex(f.ref.rk), f.ref); // its root is not to be had: counted, as missing
      }
    }
  }
  const list = [...blocks.values()];
  let next = 0;
  let done = 0;
  const counts = { atAll: 0, partial: 0, missing: 0, copies: 0, wanted: 0 };
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const r = list[next++]!;
      const { holders, copies } = await content.copiesOf(r.rk, sig);
      counts.copies += copies;
      counts.wanted += holders;
      if (copies === 0) counts.missing++;
      else if (copies >= holders) counts.atAll++;
      else counts.partial++;
      o.onProgress?.(++done, list.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, list.length) }, worker));
  return { files: site ? site.manifest.files.length : 1, blocks: list.length, ...counts };
}

export { chkLink };
