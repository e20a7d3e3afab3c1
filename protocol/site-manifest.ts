/**
 * Site manifests and edition hints (specs/content.md §10–§11), in the spirit of Hyphanet's freesite manifests and
 * USK date hints. Pure: no I/O, no clock (times are passed in).
 *
 *   SiteManifest = "allium-site/1\n" | CBOR { "v": 1, "idx": path, "files": [[path, type, rk|dk, size], …], ? "note" }
 *
 * A reader refuses a manifest that is too long, has too many entries, a path that is not a site path (§10.2), paths
 * out of order or nested inside a file, a media type outside the grammar, or a default document that is not an
 * entry. Every check is linear in the manifest's length.
 *
 * Edition hints: each edition is also published under hint names for the day, month and year of its publication,
 * so a reader asks a fixed set of further holders (whose positions move daily) for the newest edition.
 */
import { z } from 'zod';
import { concatBytes, utf8 } from './bytes.js';
import { decodeCbor, encodeCbor, validate, zBytes, zUint } from './cbor.js';
import type { BlockRef } from './chk.js';
import { parseLink } from './content-link.js';
import { LimitError, ProtocolError } from './errors.js';
import { MAX_FILE_SIZE } from './file-codec.js';
import { createRecord, openRecord, type SskKey } from './ssk.js';

export const SITE_MAGIC = utf8('allium-site/1\n');
export const MAX_SITE_MANIFEST_BYTES = 8 * 1024 * 1024;
export const MAX_SITE_ENTRIES = 10_000;
export const MAX_SITE_PATH_BYTES = 512;
export const MAX_SITE_SEGMENT_BYTES = 255;
export const MAX_SITE_PATH_DEPTH = 32;
export const MAX_SITE_NOTE = 1024;
export const MAX_MEDIA_TYPE = 128;

export interface SiteEntry {
  /** A site path (content.md §10.2). */
  readonly path: string;
  /** A media type (lower case, optional charset). */
  readonly type: string;
  /** The file's root block. */
  readonly ref: BlockRef;
  readonly size: number;
}

export interface SiteManifest {
  /** The default document: one of the entries' paths. */
  readonly idx: string;
  /** In strictly ascending order of their paths' UTF-8 bytes. */
  readonly files: readonly SiteEntry[];
  readonly note?: string;
}

const manifestSchema = z.strictObject({
  v: z.literal(1),
  idx: z.string(),
  files: z.array(z.tuple([z.string(), z.string(), zBytes(64), zUint(MAX_FILE_SIZE)])).min(1),
  note: z.string().max(MAX_SITE_NOTE).optional(),
});

const TOKEN = '[a-z0-9!#$&^_.+-]{1,64}';
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:;charset=${TOKEN})?$`);
const FORBIDDEN_IN_SEGMENT = /[\u0000-\u001f\u007f\\]|\p{Cs}/u;
const enc = new TextEncoder();

const bad = (what: string): never => {
  throw new ProtocolError('ERR_SITE_MANIFEST', what);
};

/**
 * Checks a site path (content.md §10.2) and returns its UTF-8 bytes. Throws ERR_LIMIT (MAX_SITE_PATH_BYTES,
 * MAX_SITE_PATH_DEPTH) or ERR_SITE_MANIFEST.
 */
export function checkSitePath(path: string): Uint8Array {
  if (path.length > MAX_SITE_PATH_BYTES) throw new LimitError('MAX_SITE_PATH_BYTES', `a site path is at most ${MAX_SITE_PATH_BYTES} bytes`);
  const bytes = enc.encode(path);
  if (bytes.length > MAX_SITE_PATH_BYTES) throw new LimitError('MAX_SITE_PATH_BYTES', `a site path is at most ${MAX_SITE_PATH_BYTES} bytes`);
  if (bytes.length === 0) bad('an empty site path');
  const segments = path.split('/');
  if (segments.length > MAX_SITE_PATH_DEPTH) throw new LimitError('MAX_SITE_PATH_DEPTH', `a site path has at most ${MAX_SITE_PATH_DEPTH} segments`);
  for (const s of segments) {
    if (s.length === 0) bad('a site path with an empty segment');
    if (s === '.' || s === '..') bad('a site path with a dot segment');
    if (FORBIDDEN_IN_SEGMENT.test(s)) bad('a site path with a control character, backslash or lone surrogate');
    if (enc.encode(s).length > MAX_SITE_SEGMENT_BYTES) bad(`a site path segment longer than ${MAX_SITE_SEGMENT_BYTES} bytes`);
  }
  return bytes;
}

/** True when `type` is a media type a manifest may carry. */
export function isMediaType(type: string): boolean {
  return type.length <= MAX_MEDIA_TYPE && MEDIA_TYPE.test(type);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The §10.1/§10.3 checks shared by the encoder and the decoder. */
function checkManifest(m: SiteManifest): void {
  if (m.files.length > MAX_SITE_ENTRIES) throw new LimitError('MAX_SITE_ENTRIES', `a site has at most ${MAX_SITE_ENTRIES} files`);
  if (m.files.length === 0) bad('a site with no file');
  if (m.note !== undefined && m.note.length > MAX_SITE_NOTE) bad(`a note longer than ${MAX_SITE_NOTE} characters`);
  let previous: Uint8Array | null = null;
  const paths = new Set<string>();
  for (const f of m.files) {
    const bytes = checkSitePath(f.path);
    if (!isMediaType(f.type)) bad('an entry whose media type is not type/subtype[;charset=x] in lower case');
    if (f.size > MAX_FILE_SIZE || !Number.isSafeInteger(f.size) || f.size < 0) bad('an entry size out of range');
    if (previous && compareBytes(previous, bytes) >= 0) bad('site paths out of order, or repeated');
    previous = bytes;
    paths.add(f.path);
  }
  for (const f of m.files) {
    for (let i = f.path.indexOf('/'); i >= 0; i = f.path.indexOf('/', i + 1)) {
      if (paths.has(f.path.slice(0, i))) bad('a site path inside a path that is a file');
    }
  }
  if (!paths.has(m.idx)) bad('the default document is not one of the files');
}

/** Encodes a manifest (sorting is the caller's: entries must already be in order). Throws as the decoder would. */
export function encodeSiteManifest(m: SiteManifest): Uint8Array {
  checkManifest(m);
  const body: Record<string, unknown> = {
    v: 1,
    idx: m.idx,
    files: m.files.map((f) => [f.path, f.type, concatBytes(f.ref.rk, f.ref.dk), f.size]),
  };
  if (m.note !== undefined) body['note'] = m.note;
  const out = concatBytes(SITE_MAGIC, encodeCbor(body));
  if (out.length > MAX_SITE_MANIFEST_BYTES) throw new LimitError('MAX_SITE_MANIFEST_BYTES', `a site manifest is at most ${MAX_SITE_MANIFEST_BYTES} bytes`);
  return out;
}

/** Sorts entries into manifest order (ascending UTF-8 bytes of the path). */
export function sortSiteEntries<T extends { path: string }>(entries: readonly T[]): T[] {
  return entries
    .map((e) => ({ e, k: enc.encode(e.path) }))
    .sort((a, b) => compareBytes(a.k, b.k))
    .map((x) => x.e);
}

/** True when the bytes start with the site manifest's magic (the first block of a file is enough to tell). */
export function hasSiteMagic(bytes: Uint8Array): boolean {
  if (bytes.length < SITE_MAGIC.length) return false;
  for (let i = 0; i < SITE_MAGIC.length; i++) if (bytes[i] !== SITE_MAGIC[i]) return false;
  return true;
}

/**
 * Decodes an untrusted site manifest (content.md §10.3). Throws ERR_LIMIT (MAX_SITE_MANIFEST_BYTES,
 * MAX_SITE_ENTRIES, MAX_SITE_PATH_BYTES, MAX_SITE_PATH_DEPTH), ERR_SITE_MANIFEST, ERR_SCHEMA or ERR_CBOR_*.
 */
export function decodeSiteManifest(bytes: Uint8Array): SiteManifest {
  if (bytes.length > MAX_SITE_MANIFEST_BYTES) throw new LimitError('MAX_SITE_MANIFEST_BYTES', `a site manifest is at most ${MAX_SITE_MANIFEST_BYTES} bytes`);
  if (!hasSiteMagic(bytes)) bad('not a site manifest (no magic)');
  const value = decodeCbor(bytes.subarray(SITE_MAGIC.length), MAX_SITE_MANIFEST_BYTES);
  const files = (value as { files?: unknown } | null)?.files;
  if (Array.isArray(files) && files.length > MAX_SITE_ENTRIES) throw new LimitError('MAX_SITE_ENTRIES', `a site has at most ${MAX_SITE_ENTRIES} files`);
  const m = validate(manifestSchema, value, 'site manifest');
  const out: SiteManifest = {
    idx: m.idx,
    files: m.files.map(([path, type, ref, size]) => ({ path, type, ref: { rk: ref.slice(0, 32), dk: ref.slice(32, 64) }, size })),
    ...(m.note !== undefined ? { note: m.note } : {}),
  };
  checkManifest(out);
  return out;
}

// --- edition hints (content.md §11) ---------------------------------------------------------------------------------

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** The hint periods of a time (milliseconds since the epoch, UTC): day, month, year. */
export function editionPeriods(nowMs: number): string[] {
  const d = new Date(nowMs);
  const y = pad(d.getUTCFullYear(), 4);
  const m = pad(d.getUTCMonth() + 1);
  return [`d${y}-${m}-${pad(d.getUTCDate())}`, `m${y}-${m}`, `y${y}`];
}

/** The hint name of a period: the name, a NUL (which no link name has), "hint/" and the period. */
export function hintName(name: string, period: string): string {
  return `${name}\u0000hint/${period}`;
}

/** The key of a period's hint: the link's publisher and secret, under the hint name (so it too needs the secret). */
export function hintKey(k: SskKey, period: string): SskKey {
  return { publisher: k.publisher, secret: k.secret, name: hintName(k.name, period) };
}

/** The records a publisher stores for edition `edition` of `k` at time `nowMs`: one per period. */
export function createEditionHints(
  secretKey: Uint8Array,
  k: SskKey,
  edition: number,
  target: string,
  nowMs: number,
  random?: (n: number) => Uint8Array,
): { period: string; rk: Uint8Array; bytes: Uint8Array }[] {
  return editionPeriods(nowMs).map((period) => ({ period, ...createRecord(secretKey, hintKey(k, period), edition, target, random) }));
}

/**
 * Opens an untrusted hint record: a record of (publisher, secret, HintName(name, period)) whose target is a CHK
 * link. Throws ERR_SIGNATURE, ERR_CONTENT_TAMPERED, ERR_CONTENT, ERR_CBOR_*, ERR_SCHEMA or ERR_SITE_MANIFEST.
 */
export function openEditionHint(k: SskKey, period: string, bytes: Uint8Array): { edition: number; target: string } {
  const r = openRecord(hintKey(k, period), bytes);
  let link;
  try {
    link = parseLink(r.target);
  } catch {
    return bad('an edition hint whose target is not a link');
  }
  if (link.type !== 'chk') bad('an edition hint whose target is not a CHK link');
  return r;
}
