/**
 * A folder as a site's files, and the publisher's state between editions (specs/content.md §10.4). Node only.
 *
 * The walk follows no symbolic link and skips names that start with '.'. The state of a site — its name, key file,
 * convergence secret, edition and the root of each file by SHA-256 — is one JSON file in the client's state
 * directory, `sites/<id>.json`, where `<id>` is a hash of the folder's absolute path; its insert journal is
 * `sites/<id>.journal` beside it.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fromHex, toHex } from '../protocol/bytes.js';
import type { BlockRef } from '../protocol/chk.js';
import { ConfigError } from '../protocol/errors.js';
import { checkSitePath, MAX_SITE_ENTRIES } from '../protocol/site-manifest.js';
import { mediaTypeOf } from './media-types.js';
import type { SiteSource } from './site.js';

/** The files of a folder, as site sources (read lazily; hashed now). Throws ERR_CONFIG naming a bad file. */
export function folderSources(dir: string): SiteSource[] {
  const root = resolve(dir);
  let st;
  try {
    st = lstatSync(root);
  } catch {
    throw new ConfigError(`${dir}: no such folder`);
  }
  if (!st.isDirectory()) throw new ConfigError(`${dir}: not a folder`);
  const out: SiteSource[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const path = relative(root, p).split(sep).join('/');
        try {
          checkSitePath(path);
        } catch (err) {
          throw new ConfigError(`${p}: cannot be part of a site (${(err as Error).message})`);
        }
        const bytes = readFileSync(p);
        out.push({
          path,
          type: mediaTypeOf(path),
          size: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          read: async () => new Uint8Array(await readFile(p)),
        });
        if (out.length > MAX_SITE_ENTRIES) throw new ConfigError(`${dir}: more than ${MAX_SITE_ENTRIES} files`);
      }
    }
  };
  walk(root);
  if (out.length === 0) throw new ConfigError(`${dir}: no files to publish (names starting with "." are skipped)`);
  return out;
}

export interface SiteState {
  v: 1;
  dir: string;
  /** Name under the publisher's key; null for a site published with `put DIR`. */
  name: string | null;
  key: string | null;
  /**
   * Hex run secret of a publish in progress (content.md §10.4): drawn when a run starts with an empty journal, kept
   * while the journal exists so a resumed run makes the same blocks, null once the edition is published (or with
   * --convergent).
   */
  secret: string | null;
  edition: number | null;
  link: string | null;
  /** Root (hex rk | dk) by SHA-256 of each file put. */
  files: Record<string, string>;
}

/** Where a folder's state and journal live. */
export function siteStatePaths(stateDir: string, dir: string): { state: string; journal: string } {
  const id = createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 32);
  return { state: join(stateDir, 'sites', `${id}.json`), journal: join(stateDir, 'sites', `${id}.journal`) };
}

export function loadSiteState(stateDir: string, dir: string): SiteState | null {
  const { state } = siteStatePaths(stateDir, dir);
  if (!existsSync(state)) return null;
  try {
    const s = JSON.parse(readFileSync(state, 'utf8')) as SiteState;
    if (s.v !== 1 || typeof s.files !== 'object') return null;
    return s;
  } catch {
    return null;
  }
}

/** Writes a file whole or not at all (a temporary file renamed over it). */
export function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 1) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

export function saveSiteState(stateDir: string, s: SiteState): void {
  writeJsonAtomic(siteStatePaths(stateDir, s.dir).state, s);
}

export function previousFiles(s: SiteState | null): Map<string, BlockRef> {
  const m = new Map<string, BlockRef>();
  for (const [sha, ref] of Object.entries(s?.files ?? {})) {
    if (!/^[0-9a-f]{128}$/.test(ref)) continue;
    const b = fromHex(ref);
    m.set(sha, { rk: b.slice(0, 32), dk: b.slice(32) });
  }
  return m;
}

export function filesRecord(files: ReadonlyMap<string, BlockRef>, keep: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [sha, ref] of files) if (keep.has(sha)) out[sha] = toHex(ref.rk) + toHex(ref.dk);
  return out;
}
