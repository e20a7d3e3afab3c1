/**
 * Structured logging through pino. Safe logging (specs/../SECURITY.md §Logging): at info level and above, never a
 * key, a content key or link, a client address, or anything tying a circuit to a stream or destination. Relay peers
 * appear by fingerprint prefix; clients not at all.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'allium', destination?: NodeJS.WritableStream): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination(2));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A relay fingerprint shortened for logs. */
export function shortFp(fp: string): string {
  return fp.slice(0, 8);
}
