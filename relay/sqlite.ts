/**
 * better-sqlite3, loaded when a relay opens its content store, and only then.
 *
 * It is an optional peer dependency of the package: an app that embeds only the client never installs it (it
 * compiles SQLite where no prebuilt binary is reachable, over a minute of an install). A relay that stores content
 * needs it; without it the relay stops at start with a configuration error that says how to install it, before it
 * makes keys or joins the network (relay/preflight.ts).
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../protocol/errors.js';

export type SqliteDatabase = BetterSqlite3.Database;
type SqliteConstructor = typeof BetterSqlite3;

/** What to run to get it (the package and its version range, as package.json names it). */
export const SQLITE_INSTALL = 'npm install better-sqlite3@^12';

let loaded: SqliteConstructor | null = null;

/** Why better-sqlite3 cannot be used here ("is not installed", "does not load (…)"), or null when it can. */
export function sqliteUnavailable(): string | null {
  if (loaded) return null;
  const require = createRequire(import.meta.url);
  try {
    loaded = require('better-sqlite3') as SqliteConstructor;
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'MODULE_NOT_FOUND' ? 'is not installed' : `does not load (${(e as Error).message.split('\n')[0]})`;
  }
}

/** The better-sqlite3 constructor. Throws ERR_CONFIG naming the install command when it cannot be loaded. */
export function loadSqlite(): SqliteConstructor {
  const why = sqliteUnavailable();
  if (why !== null || !loaded) {
    throw new ConfigError(
      `storage_quota: the content store needs the better-sqlite3 package, which ${why}: run "${SQLITE_INSTALL}" where allium is installed, or set storage_quota = 0 (no content store)`,
    );
  }
  return loaded;
}
