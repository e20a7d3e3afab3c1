/**
 * Test networks of real relay processes on 127.0.0.1: each relay is `node bin/allium.js relay` with its own data
 * directory and config file, started by the test and stopped by it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'smol-toml';

const ROOT = resolve(import.meta.dirname, '..', '..');
// The TypeScript sources through tsx, never bin/allium.js: that prefers dist/ when a build exists (the packaging test
// leaves one), and tests must run the code in the checkout, not a stale build.
const SOURCE_CLI = join(ROOT, 'cli', 'allium.ts');
const TSX = import.meta.resolve('tsx');

export interface RelayProcessOptions {
  dataDir?: string;
  bootstrap?: string[];
  exitPolicy?: string[];
  nickname?: string;
  timing?: Record<string, number>;
  extra?: Record<string, unknown>;
  listen?: string;
  /** How the relay process runs (benchmarks: compiled JS, profiler flags). Default: the sources through tsx. */
  process?: RelayLaunch;
}

export interface RelayLaunch {
  /** Script that takes the `allium` command line (default: cli/allium.ts through tsx, whatever dist/ holds). */
  entry?: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
}

export interface RelayProcess {
  readonly proc: ChildProcess;
  readonly dataDir: string;
  readonly fingerprint: string;
  readonly address: string;
  readonly bootstrap: string;
  readonly metrics: string;
  /** Status page URL when the relay was started with `admin` in its config. */
  readonly admin: string | null;
  readonly pid: number;
  readonly logs: () => string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  rssBytes(): number;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** Every relay process a test started; killed when the test process exits, so no relay outlives its test run. */
const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export const FAST_TIMING = {
  gossip_interval: 1000,
  maintenance_interval: 250,
  descriptor_lifetime: 30_000,
  descriptor_renew: 10_000,
};

export function tempDir(prefix = 'allium-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startRelay(o: RelayProcessOptions = {}): Promise<RelayProcess> {
  const dataDir = o.dataDir ?? tempDir('allium-relay-');
  const readyFile = join(dataDir, 'ready.json');
  rmSync(readyFile, { force: true });
  const config = {
    nickname: o.nickname ?? 'test',
    listen: o.listen ?? '127.0.0.1:0',
    data_dir: dataDir,
    bootstrap: o.bootstrap ?? [],
    exit_policy: o.exitPolicy ?? ['reject *:*'],
    exit_reject_private: false,
    metrics: '127.0.0.1:0',
    log_level: 'info',
    max_links_per_ip: 4096,
    ...o.extra,
    timing: { ...FAST_TIMING, ...o.timing },
  };
  const configFile = join(dataDir, 'relay.toml');
  writeFileSync(configFile, stringify(config));
  const entry = o.process?.entry ? [o.process.entry] : ['--import', TSX, SOURCE_CLI];
  const argv = [...(o.process?.nodeArgs ?? []), ...entry, 'relay', '--config', configFile, '--ready-file', readyFile];
  const proc = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env },
  });
  spawned.add(proc);
  proc.once('exit', () => spawned.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!existsSync(readyFile)) {
    if (proc.exitCode !== null) throw new Error(`relay exited early (${proc.exitCode}):\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`relay did not start:\n${out}`);
    }
    await sleep(25);
  }
  const info = JSON.parse(readFileSync(readyFile, 'utf8')) as { fingerprint: string; address: string; bootstrap: string; metrics: string; admin: string | null };
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    dataDir,
    fingerprint: info.fingerprint,
    address: info.address,
    bootstrap: info.bootstrap,
    metrics: info.metrics,
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
    async metric(name, labels = {}) {
      return readMetric(info.metrics, name, labels);
    },
  };
}

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

export interface TestNetwork {
  relays: RelayProcess[];
  bootstrap: string;
  stop(): Promise<void>;
}

/** Starts `n` relays (the first is the bootstrap; the last `exits` allow exits to 127.0.0.1) and waits until
 * every relay's directory holds all of them. */
export async function startNetwork(
  n: number,
  o: { exits?: number; timing?: Record<string, number>; extra?: Record<string, unknown>; process?: RelayLaunch } = {},
): Promise<TestNetwork> {
  const exits = o.exits ?? 0;
  const policy = (i: number): string[] => (i >= n - exits ? ['accept 127.0.0.1:*', 'accept [::1]:*', 'reject *:*'] : ['reject *:*']);
  const launch = o.process ? { process: o.process } : {};
  const first = await startRelay({ nickname: 'r0', exitPolicy: policy(0), timing: o.timing ?? {}, extra: o.extra ?? {}, ...launch });
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, (_, i) =>
      startRelay({ nickname: `r${i + 1}`, bootstrap: [first.bootstrap], exitPolicy: policy(i + 1), timing: o.timing ?? {}, extra: o.extra ?? {}, ...launch }),
    ),
  );
  const relays = [first, ...rest];
  await waitFor(async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((x) => x === n), 30_000);
  return {
    relays,
    bootstrap: first.bootstrap,
    async stop() {
      await Promise.all(relays.map((r) => r.kill('SIGKILL')));
      for (const r of relays) rmSync(r.dataDir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
