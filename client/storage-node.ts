/**
 * File storage for the Node client: the cached directory, the guard list and the vanguards in a directory (mode 0700, files
 * 0600), and the default state directory every Node client uses unless told otherwise (as Arti keeps its state):
 *
 *     $ALLIUM_STATE_DIR, else $XDG_STATE_HOME/allium, else ~/.local/state/allium
 *
 * Several clients (in one process or several) may share a state directory: each write is atomic (a temporary file
 * of its own, then a rename), and the last one wins.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { decodeCbor, encodeCbor } from '../protocol/cbor.js';
import type { DirectoryCache } from './directory.js';
import type { GuardRecord, GuardStorage } from './guards.js';
import type { VanguardRecord, VanguardStorage } from './vanguards.js';
import type { ClientStorage } from './client.js';

let writes = 0;

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++writes}`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * The default state directory of a Node client: ALLIUM_STATE_DIR, else $XDG_STATE_HOME/allium, else
 * ~/.local/state/allium (the XDG base directory default).
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (env['ALLIUM_STATE_DIR']) return env['ALLIUM_STATE_DIR'];
  const xdg = env['XDG_STATE_HOME'];
  // The XDG spec: a relative path in the variable is invalid and must be ignored.
  if (xdg && xdg.startsWith('/')) return join(xdg, 'allium');
  return join(home, '.local', 'state', 'allium');
}

export function fileStorage(dir: string): ClientStorage {
  const ready = mkdir(dir, { recursive: true, mode: 0o700 });
  // A directory that cannot be made surfaces on the first load or save; never as an unhandled rejection.
  ready.catch(() => undefined);
  const directory: DirectoryCache = {
    async load() {
      await ready;
      try {
        const v = decodeCbor(new Uint8Array(await readFile(join(dir, 'directory.cbor'))), 64 * 1024 * 1024);
        return Array.isArray(v) ? v.filter((x): x is Uint8Array => x instanceof Uint8Array) : null;
      } catch {
        return null;
      }
    },
    async save(raws) {
      await ready;
      await atomicWrite(join(dir, 'directory.cbor'), encodeCbor(raws));
    },
  };
  const guards: GuardStorage = {
    async load() {
      await ready;
      try {
        return JSON.parse(await readFile(join(dir, 'guards.json'), 'utf8')) as GuardRecord[];
      } catch {
        return null;
      }
    },
    async save(records) {
      await ready;
      await atomicWrite(join(dir, 'guards.json'), JSON.stringify(records, null, 1));
    },
  };
  const vanguards: VanguardStorage = {
    async load() {
      await ready;
      try {
        const v: unknown = JSON.parse(await readFile(join(dir, 'vanguards.json'), 'utf8'));
        return Array.isArray(v) ? (v as VanguardRecord[]) : null;
      } catch {
        return null;
      }
    },
    async save(records) {
      await ready;
      await atomicWrite(join(dir, 'vanguards.json'), JSON.stringify(records, null, 1));
    },
  };
  return { directory, guards, vanguards };
}
