/**
 * The relay's TLS certificate and key (tls_cert, tls_key): read and checked at start, and read again without a
 * restart when they change on disk — an ACME client replaces them every few weeks — checked at most once a minute by
 * modification time, or at once on a reload (SIGHUP). A pair that does not load keeps the one in use.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { ConfigError, isAlliumError } from '../protocol/errors.js';

/** How often the files' modification times are looked at. */
export const TLS_CHECK_INTERVAL_MS = 60_000;

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
  /** The later of the two files' modification times. */
  mtime: number;
  /** When they were last looked at (0: never). */
  checked: number;
}

/** Reads and checks a certificate and key (ERR_CONFIG naming the key when unreadable, not PEM, or not a pair). */
export function loadTlsFiles(certPath: string, keyPath: string): TlsPair {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
  } catch {
    throw new ConfigError(`tls_cert: cannot read ${certPath}`);
  }
  try {
    key = readFileSync(keyPath);
  } catch {
    throw new ConfigError(`tls_key: cannot read ${keyPath}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new ConfigError(`tls_cert/tls_key: not a usable PEM certificate and matching key (${(e as Error).message})`);
  }
  return { cert, key, mtime: Math.max(statSync(certPath).mtimeMs, statSync(keyPath).mtimeMs), checked: 0 };
}

/** A certificate pair in use by a server, reloaded when its files change. */
export class TlsReloader {
  private server: HttpsServer | null = null;

  constructor(
    /** Where the files are (read at every check: a reload may name others). */
    private readonly paths: () => { cert: string; key: string },
    private pair: TlsPair,
    private readonly log: Logger,
  ) {}

  /** The pair in use. */
  get current(): TlsPair {
    return this.pair;
  }

  /** The server whose secure context is replaced on a reload. */
  serve(server: HttpsServer): void {
    this.server = server;
  }

  /**
   * Reads the files again if they changed since they were loaded (looked at no more than once a minute unless
   * `force`) and hands the server the new pair. False when changed files could not be loaded (the old pair stays).
   */
  check(now: number, force = false): boolean {
    const t = this.pair;
    if (!this.server || (!force && now - t.checked < TLS_CHECK_INTERVAL_MS)) return true;
    t.checked = now;
    const { cert, key } = this.paths();
    try {
      const mtime = Math.max(statSync(cert).mtimeMs, statSync(key).mtimeMs);
      if (!force && mtime === t.mtime) return true;
      const next = loadTlsFiles(cert, key);
      this.server.setSecureContext({ cert: next.cert, key: next.key });
      this.pair = { ...next, checked: now };
      this.log.info('reloaded the TLS certificate');
      return true;
    } catch (e) {
      this.log.warn({ code: isAlliumError(e) ? e.code : 'unknown' }, 'TLS certificate files changed but could not be loaded; keeping the old ones');
      return false;
    }
  }
}
