/**
 * Relay processes on this machine: `allium relay --config FILE --ready-file FILE` as a child process, waited for
 * until its ready file appears, and read through its metrics endpoint. The one launcher of the devnet (`npm start`),
 * the tests' networks (test/helpers/network.ts) and the benchmarks (bench/lib/), so all three start relays the same
 * way. It does not choose a configuration: callers write the config file (relay/config.ts SINGLE_HOST_NETWORK is what
 * a network on one machine needs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { stringify } from 'smol-toml';

/** How the relay process runs. */
export interface RelayLaunch {
  /** Node arguments that run the `allium` command line: a script, or a loader and a script (default: `bin`). */
  entry?: readonly string[];
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: readonly string[];
  /** Extra environment variables (e.g. NODE_EXTRA_CA_CERTS for a test certificate). */
  env?: Readonly<Record<string, string>>;
  /** Give up after this long without the ready file (default 60 s). */
  startTimeoutMs?: number;
}

/** What `--ready-file` holds (cli/relay-command.ts). */
export interface RelayReadyInfo {
  readonly fingerprint: string;
  readonly address: string;
  readonly bootstrap: string;
  readonly bridge: string | null;
  readonly metrics: string;
  readonly admin: string | null;
}

export interface RelayProcess extends RelayReadyInfo {
  readonly proc: ChildProcess;
  readonly dataDir: string;
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  readonly logs: () => string;
  /** Sends `signal` (default SIGTERM) unless it already exited; resolves with its exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resident memory of the process now (Linux /proc). */
  rssBytes(): number;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** The folder of this package's package.json (a checkout, or node_modules/allium when installed). */
export function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The package's command line, bin/allium.js (which runs the compiled dist/). */
export const INSTALLED_ENTRY: readonly string[] = [join(packageRoot(), 'bin', 'allium.js')];

/**
 * How a relay process is started so that it keeps a small footprint (issue 18: RSS at rest and after a transfer).
 * Both must be in place before node starts, so they belong to whoever launches it: this launcher, and the operator's
 * service manager (contrib/allium-relay.service sets the same two).
 *
 * - MALLOC_ARENA_MAX=2: glibc gives every thread that allocates its own malloc arena (up to 8 per core), and each
 *   keeps the pages it once used; a relay's allocations (OpenSSL, libuv, SQLite, V8's off-heap buffers) are few and
 *   made mostly by the main thread, so two arenas suffice.
 * - --v8-pool-size=1: one V8 worker thread instead of node's four, for concurrent marking and sweeping and
 *   background compilation; a relay's heap is tens of MB, and each thread has a stack and an arena of its own.
 *
 * Together they take 4-6 MB off a relay's resident set at rest (6 relays, one network, measured side by side), and
 * bench:bulk-cpu shows no cost per MiB beyond noise. An environment variable the caller sets wins over these.
 */
export const RELAY_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
export const RELAY_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1'];

/** Every relay process started here; killed when this process exits, so none outlives its parent. */
const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** Writes `config` as `relay.toml` in `dataDir` (which must exist) and starts a relay process with it. */
export async function spawnRelay(dataDir: string, config: Record<string, unknown>, launch: RelayLaunch = {}): Promise<RelayProcess> {
  const configFile = join(dataDir, 'relay.toml');
  const readyFile = join(dataDir, 'ready.json');
  writeFileSync(configFile, stringify({ ...config, data_dir: dataDir }));
  // The caller's flags after the defaults: node takes the last of a flag given twice.
  const argv = [
    ...RELAY_NODE_FLAGS,
    ...(launch.nodeArgs ?? []),
    ...(launch.entry ?? INSTALLED_ENTRY),
    'relay',
    '--config',
    configFile,
    '--ready-file',
    readyFile,
  ];
  const env = { ...RELAY_PROCESS_ENV, ...process.env, ...launch.env };
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  spawned.add(proc);
  proc.once('exit', () => spawned.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + (launch.startTimeoutMs ?? 60_000);
  while (!existsSync(readyFile)) {
    if (proc.exitCode !== null) throw new RelayStartError(`relay exited early (${proc.exitCode})`, out);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new RelayStartError('relay did not start in time', out);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const info = JSON.parse(readFileSync(readyFile, 'utf8')) as RelayReadyInfo;
  return {
    proc,
    dataDir,
    fingerprint: info.fingerprint,
    address: info.address,
    bootstrap: info.bootstrap,
    metrics: info.metrics,
    bridge: info.bridge ?? null,
    admin: info.admin ?? null,
    pid: proc.pid!,
    logs: () => out,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    rssBytes() {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    metric: (name, labels = {}) => readMetric(info.metrics, name, labels),
  };
}

/** A relay process that did not start; `output` is what it wrote. */
export class RelayStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}:\n${output}`);
    this.name = 'RelayStartError';
  }

  /** The line that says why (the command line's one-line error, or the last line written). */
  get reason(): string {
    const lines = this.output.split('\n');
    return (lines.find((l) => l.startsWith('allium:')) ?? lines.filter((l) => l.trim()).pop() ?? '').trim();
  }
}

/** The sum of a metric's series whose labels include `labels`, scraped from a Prometheus text endpoint. */
export async function readMetric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** A free TCP port on 127.0.0.1 (closed again at once, so another process may take it first; good enough locally). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
