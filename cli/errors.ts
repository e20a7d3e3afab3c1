/**
 * How the `allium` command ends on an error: one line on standard error, `allium: <what went wrong>`, never a stack
 * trace (ALLIUM_DEBUG=1 adds it for an unexpected error), and an exit status that says which kind of failure it was.
 * The table is printed by `allium --help` and in docs/operator-guide.md ("Signals and exit codes").
 */
import { isAlliumError } from '../protocol/errors.js';
import { errnoText } from '../net/listen.js';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3, NOT_FOUND: 4 } as const;

/** The exit status table, as `allium --help` shows it. */
export const EXIT_CODES_HELP = `Exit status:
  0  success (or stopped by SIGTERM/SIGINT)
  1  runtime failure: an address in use, a permission denied, an unexpected error
  2  usage or configuration error: a bad flag, key, value, line or link (nothing was started)
  3  network unreachable: no relay or bridge answered
  4  not found: the content asked for does not exist (every holder asked said so)`;

/** The exit status for an error (see EXIT_CODES_HELP). */
export function exitCodeFor(e: unknown): number {
  if (!isAlliumError(e)) return EXIT.FAILURE;
  if (e.kind === 'config') return EXIT.USAGE;
  if (e.code === 'ERR_UNREACHABLE') return EXIT.UNREACHABLE;
  if (e.code === 'ERR_NOT_FOUND') return EXIT.NOT_FOUND;
  return EXIT.FAILURE;
}

/** The one line for an error, without the "allium: " prefix. */
export function describeError(e: unknown): string {
  if (isAlliumError(e)) return e.message;
  const n = e as NodeJS.ErrnoException | null;
  if (n && typeof n === 'object' && typeof n.code === 'string' && (n.path || n.syscall)) {
    return `${n.syscall ?? 'system call'}${n.path ? ` ${n.path}` : ''}: ${errnoText(n.code)}`;
  }
  const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return `unexpected error: ${message} (this is a bug: please report it; ALLIUM_DEBUG=1 prints the stack trace)`;
}

/** Prints the error's line and exits with its status. */
export function fail(e: unknown): never {
  process.stderr.write(`allium: ${describeError(e)}\n`);
  if (process.env['ALLIUM_DEBUG'] && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(exitCodeFor(e));
}
