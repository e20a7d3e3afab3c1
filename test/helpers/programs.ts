/**
 * System programs some tests need, and the Debian package of each (.ci/run installs them all).
 *
 * A test that needs one calls `needProgram(this, 'chromium')` in its `before` hook (or at the start of the test).
 * When the program is missing, that prints ONE line, always with the same prefix,
 *
 *     skipped: needs chromium (Debian package chromium)
 *
 * and skips: mocha reports the tests as pending, and counts them in the closing "N skipped". `npm test` on a fresh
 * machine therefore passes, naming what it left out, while `.ci/run` fails when it finds such a line.
 *
 * Detection is whether the program exists: its usual absolute paths, then every directory of PATH. For testing the
 * skip path only, ALLIUM_TEST_HIDE_PROGRAMS=chromium,nginx makes the named programs count as missing.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Every skip line for a missing program starts with this (.ci/run greps for it). */
export const MISSING_PROGRAM_PREFIX = 'skipped: needs ';

interface Program {
  /** The Debian package that provides it. */
  readonly debian: string;
  /** Where Debian puts it, tried before PATH. */
  readonly paths: readonly string[];
}

export const PROGRAMS = {
  chromium: { debian: 'chromium', paths: ['/usr/bin/chromium', '/usr/bin/chromium-browser'] },
  nginx: { debian: 'nginx-light', paths: ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'] },
  tshark: { debian: 'tshark', paths: ['/usr/bin/tshark'] },
  dumpcap: { debian: 'tshark', paths: ['/usr/bin/dumpcap'] },
  curl: { debian: 'curl', paths: ['/usr/bin/curl'] },
  openssl: { debian: 'openssl', paths: ['/usr/bin/openssl'] },
  'systemd-analyze': { debian: 'systemd', paths: ['/usr/bin/systemd-analyze'] },
  'systemd-notify': { debian: 'systemd', paths: ['/usr/bin/systemd-notify', '/bin/systemd-notify'] },
  python3: { debian: 'python3', paths: ['/usr/bin/python3'] },
  script: { debian: 'bsdutils', paths: ['/usr/bin/script'] },
} as const satisfies Record<string, Program>;

export type ProgramName = keyof typeof PROGRAMS;

function hidden(name: string): boolean {
  return (process.env['ALLIUM_TEST_HIDE_PROGRAMS'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(name);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of the program, or null when it is not installed. */
export function findProgram(name: ProgramName): string | null {
  if (hidden(name)) return null;
  for (const p of PROGRAMS[name].paths) if (executable(p)) return p;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return null;
}

/** The line printed when a test is skipped for want of `name`. */
export function missingProgramLine(name: ProgramName): string {
  return `${MISSING_PROGRAM_PREFIX}${name} (Debian package ${PROGRAMS[name].debian})`;
}

/**
 * Skips the running hook's suite (or the running test) when any of `names` is missing, printing one line for the
 * first missing one. Returns normally when all are installed.
 */
export function needProgram(ctx: Mocha.Context, ...names: ProgramName[]): void {
  for (const name of names) {
    if (findProgram(name)) continue;
    console.log(`      ${missingProgramLine(name)}`);
    ctx.skip();
  }
}
