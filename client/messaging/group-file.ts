/**
 * Group state kept in a directory (Node only; what `allium/client` exports): one file per record (`<name>.group`),
 * each written atomically (a temporary file of its own, then a rename), mode 0600 in a directory of mode 0700, so a
 * crash leaves the old record or the new one, never half of one. The records are sealed (group-store.ts): the files
 * alone read nothing.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, SystemError } from '../../protocol/errors.js';
import type { GroupStorage } from './group-store.js';

const SUFFIX = '.group';
const NAME = /^[0-9a-z-]{1,80}$/;

/** A file-system refusal as a typed error naming the setting (groupStorage) and the path. */
function systemError(path: string, e: unknown): SystemError {
  const errno = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new SystemError('groupStorage', errno, `groupStorage ${path}: ${errno}`);
}

let writes = 0;

/** A GroupStorage over the directory `dir` (made, mode 0700, on the first save). */
export function fileGroupStorage(dir: string): GroupStorage {
  return {
    async load() {
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith(SUFFIX) && NAME.test(n.slice(0, -SUFFIX.length)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw systemError(dir, e);
      }
      const out: Array<[string, Uint8Array]> = [];
      for (const n of names.sort()) {
        try {
          out.push([n.slice(0, -SUFFIX.length), new Uint8Array(await readFile(join(dir, n)))]);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw systemError(join(dir, n), e);
        }
      }
      return out;
    },
    async save(name, bytes) {
      if (!NAME.test(name)) throw new ConfigError(`groupStorage: not a record name: ${name.slice(0, 16)}`);
      const path = join(dir, name + SUFFIX);
      try {
        if (!bytes) return await rm(path, { force: true });
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const tmp = `${path}.tmp-${process.pid}-${++writes}`;
        await writeFile(tmp, bytes, { mode: 0o600 });
        await rename(tmp, path);
      } catch (e) {
        throw systemError(path, e);
      }
    },
  };
}
