/**
 * Runs the `allium` command as a process, as an operator would (the compiled build when it is fresh, else the
 * sources through tsx: test/helpers/network.ts), and collects its exit status and output.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { DEFAULT_ENTRY } from './network.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runAllium(
  args: string[],
  o: { env?: Record<string, string>; timeoutMs?: number; uid?: number; gid?: number; cwd?: string } = {},
): Promise<CliResult> {
  const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } };
  if (o.uid !== undefined) options.uid = o.uid;
  if (o.gid !== undefined) options.gid = o.gid;
  if (o.cwd !== undefined) options.cwd = o.cwd;
  const child = spawn(process.execPath, [...DEFAULT_ENTRY, ...args], options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`allium ${args.join(' ')} did not exit within ${o.timeoutMs ?? 60_000} ms:\n${stdout}\n${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one line an error printed: stderr must be exactly one line, with no stack trace. */
export function oneLine(r: CliResult): string {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  if (lines.length !== 1 || /^\s+at /m.test(r.stderr)) throw new Error(`expected one line on stderr, got:\n${r.stderr}`);
  return lines[0]!;
}

export interface RunningAllium {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Long-running commands still alive when the test process exits are killed. */
const alive = new Set<import('node:child_process').ChildProcess>();
process.once('exit', () => {
  for (const c of alive) c.kill('SIGKILL');
});

/** Starts `allium …` and returns at once: for long-running commands (relay, client) read while they run. */
export function spawnAllium(args: string[], o: { env?: Record<string, string> } = {}): RunningAllium {
  const child = spawn(process.execPath, [...DEFAULT_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
