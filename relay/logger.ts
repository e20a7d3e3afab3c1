/**
 * Structured logging through pino. Safe logging (specs/../SECURITY.md §Logging): at info level and above, never a
 * key, a content key or link, a client address, or anything tying a circuit to a stream or destination. Relay peers
 * appear by fingerprint prefix; clients not at all.
 *
 * Logs go to standard error: JSON lines (one object per line, for journald and log collectors), or readable lines
 * (relay/log-format.ts) when standard error is a terminal and the format is "auto", or always with "pretty".
 */
import { pino, type Logger } from 'pino';
import { formatLogLine, wantsPretty } from './log-format.js';

export type { Logger };
export type LogFormat = 'auto' | 'json' | 'pretty';

export function createLogger(level: string, name = 'allium', destination?: NodeJS.WritableStream, format: LogFormat = 'auto'): Logger {
  const options = { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (destination) return pino(options, destination);
  if (wantsPretty(format, !!process.stderr.isTTY)) {
    const color = !!process.stderr.isTTY && !process.env['NO_COLOR'];
    return pino(options, { write: (line: string) => void process.stderr.write(formatLogLine(line, color)) });
  }
  return pino(options, pino.destination(2));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A relay fingerprint shortened for logs. */
export function shortFp(fp: string): string {
  return fp.slice(0, 8);
}
