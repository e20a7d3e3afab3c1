/**
 * A contact book kept in a file (Node only; what `allium/client` exports): written atomically (a temporary file of
 * its own, then a rename), mode 0600, so a crash leaves the old book or the new one, never half of one.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SystemError } from '../../protocol/errors.js';
import type { ContactStorage } from './contacts.js';

/** A file-system refusal as a typed error naming the setting (contactStorage) and the path. */
function systemError(path: string, e: unknown): SystemError {
  const errno = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new SystemError('contactStorage', errno, `contactStorage ${path}: ${errno}`);
}

let writes = 0;

/** A ContactStorage over the file at `path` (its directory is made, mode 0700, if missing). */
export function fileContactStorage(path: string): ContactStorage {
  return {
    async load() {
      try {
        return new Uint8Array(await readFile(path));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw systemError(path, e);
      }
    },
    async save(bytes) {
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        const tmp = `${path}.tmp-${process.pid}-${++writes}`;
        await writeFile(tmp, bytes, { mode: 0o600 });
        await rename(tmp, path);
      } catch (e) {
        throw systemError(path, e);
      }
    },
  };
}
