/**
 * What a relay checks before it makes a key or contacts the network: every address it will listen on (listen,
 * metrics, admin) can be bound now, the data directory is a directory it can create or write (and the key files in
 * it readable), and the content store's SQLite package loads. Each failure is one line naming the setting, e.g.
 *
 *     metrics 127.0.0.1:9101: address already in use          (SystemError, ERR_SYSTEM)
 *     data_dir /var/lib/allium: is a file, not a directory    (ConfigError, ERR_CONFIG)
 *
 * `allium relay --verify-config` runs the same checks and stops there.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, SystemError } from '../protocol/errors.js';
import { errnoText, probeListen } from '../net/listen.js';
import { parseHostPort, type RelayConfig } from './config.js';
import { loadSqlite } from './sqlite.js';

const KEY_FILES = ['identity.key', 'onion-keys.json', 'bridge.secret', 'store.sqlite'];

function denied(setting: string, dir: string, what: string, code = 'EACCES'): SystemError {
  return new SystemError(setting, code, `${setting} ${dir}: ${what}`);
}

/**
 * Checks that `dir` is, or can be created as, a directory this process can write. `setting` names it in errors
 * (data_dir, --data-dir). Throws ConfigError for a file in the way, SystemError for a permission.
 */
export function checkDataDir(dir: string, setting = 'data_dir', files: readonly string[] = KEY_FILES): void {
  const abs = resolve(dir);
  if (existsSync(abs)) {
    const st = statSync(abs);
    if (!st.isDirectory()) throw new ConfigError(`${setting} ${dir}: is a file, not a directory`);
    try {
      accessSync(abs, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw denied(
        setting,
        dir,
        `${errnoText((e as NodeJS.ErrnoException).code)} (this process, uid ${process.getuid?.() ?? '?'}, must be able to write there)`,
        (e as NodeJS.ErrnoException).code,
      );
    }
    if (typeof process.getuid === 'function' && st.uid !== process.getuid() && (st.mode & 0o777) !== 0o700 && process.getuid() !== 0) {
      throw denied(setting, dir, 'owned by another user, so its mode cannot be made 0700: use a directory of your own', 'EPERM');
    }
    for (const f of files) {
      const p = join(abs, f);
      if (!existsSync(p)) continue;
      try {
        accessSync(p, constants.R_OK | constants.W_OK);
      } catch (e) {
        throw denied(setting, join(dir, f), errnoText((e as NodeJS.ErrnoException).code), (e as NodeJS.ErrnoException).code);
      }
    }
    return;
  }
  // Not there yet: the nearest existing ancestor must be a directory we can create it in.
  let parent = dirname(abs);
  while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
  if (!statSync(parent).isDirectory()) throw new ConfigError(`${setting} ${dir}: ${parent} is a file, not a directory`);
  try {
    accessSync(parent, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw denied(setting, dir, `cannot create it: ${errnoText((e as NodeJS.ErrnoException).code)} in ${parent}`, (e as NodeJS.ErrnoException).code);
  }
}

/** The addresses a relay will listen on, with their settings. */
export function relayListeners(cfg: RelayConfig): { setting: string; host: string; port: number }[] {
  const out = [{ setting: 'listen', ...parseHostPort(cfg.listen, 'listen') }];
  if (cfg.metrics) out.push({ setting: 'metrics', ...parseHostPort(cfg.metrics, 'metrics') });
  if (cfg.admin) out.push({ setting: 'admin', ...parseHostPort(cfg.admin, 'admin') });
  return out;
}

/** Every check above for a relay's configuration. Makes nothing (no directory, no key, no socket left open). */
export async function preflightRelay(cfg: RelayConfig): Promise<void> {
  checkDataDir(cfg.data_dir);
  if (cfg.storage_quota > 0 && !cfg.bridge) loadSqlite();
  const seen = new Set<string>();
  for (const l of relayListeners(cfg)) {
    const key = `${l.host}:${l.port}`;
    if (l.port !== 0 && seen.has(key)) throw new ConfigError(`${l.setting} ${cfg[l.setting as 'listen']}: the same address as another listener`);
    seen.add(key);
    await probeListen(l.host, l.port, l.setting);
  }
}
