/** File storage for the Node client: the cached directory and the guard list in a data directory (mode 0700/0600). */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCbor, encodeCbor } from '../protocol/cbor.js';
import type { DirectoryCache } from './directory.js';
import type { GuardRecord, GuardStorage } from './guards.js';
import type { ClientStorage } from './client.js';

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

export function fileStorage(dir: string): ClientStorage {
  const ready = mkdir(dir, { recursive: true, mode: 0o700 });
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
  return { directory, guards };
}
