/**
 * The relay-process network bench:circuit measures: `n` relays (the last `exits` allow exits to 127.0.0.1) started
 * with test/helpers/network.ts, either directly on 127.0.0.1 or, for the latency mode, each published behind a
 * delaying forwarder so every link carries a fixed one-way delay. Waits until every directory is full and every
 * relay has a link to every other, so circuit builds never wait for a link to open.
 */
import { createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { startNetwork, startRelay, sleep, type LocalNetwork as TestNetwork } from '../../cli/local-network.js';
import { readMetric, type RelayProcess } from '../../cli/relay-process.js';
import { startChild, type Child } from './children.js';
import type { Runtime } from './compiled.js';

/** Relay defaults (relay/config.ts), except maintenance every second so the overlay links form quickly. */
export const BENCH_TIMING = { gossip_interval: 300_000, maintenance_interval: 1_000, descriptor_lifetime: 3 * 3600_000, descriptor_renew: 3600_000 };

const EXIT_POLICY = ['accept 127.0.0.1:*', 'accept [::1]:*', 'reject *:*'];

export interface BenchNetwork extends TestNetwork {
  /** The delaying forwarder (latency mode), whose ports stand in front of every relay and the web server. */
  readonly delay: Child<{ ports: number[] }> | null;
  /** Port clients should use to reach the web server (its forwarder port in latency mode). */
  readonly httpPort: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitMesh(relays: readonly RelayProcess[], timeoutMs: number): Promise<void> {
  const n = relays.length;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dirs = await Promise.all(relays.map((r) => r.metric('allium_directory_relays')));
    const links = await Promise.all(relays.map((r) => r.metric('allium_links', { kind: 'relay' })));
    if (dirs.every((d) => d === n) && links.every((l) => l >= n - 1)) return;
    if (Date.now() > deadline) throw new Error(`relay network not meshed: directories ${dirs.join(',')}, relay links ${links.join(',')}`);
    await sleep(100);
  }
}

export async function startBenchNetwork(o: {
  n: number;
  exits: number;
  runtime: Runtime;
  httpPort: number;
  nodeArgs?: string[];
  delayMs?: number;
}): Promise<BenchNetwork> {
  const launch = { entry: [o.runtime.cli], nodeArgs: [...o.runtime.loaderArgs, ...(o.nodeArgs ?? [])] };
  if (!o.delayMs) {
    const net = await startNetwork(o.n, { exits: o.exits, timing: BENCH_TIMING, process: launch });
    await waitMesh(net.relays, 60_000);
    return {
      ...net,
      delay: null,
      httpPort: o.httpPort,
      async stop() {
        await gracefulStop(net.relays);
        await net.stop();
      },
    };
  }
  const listen = await Promise.all(Array.from({ length: o.n }, () => freePort()));
  const delay = await startChild<{ ports: number[] }>(o.runtime, 'delay-main', ['--delay', String(o.delayMs), ...listen.map(String), String(o.httpPort)]);
  const relays: RelayProcess[] = [];
  const policy = (i: number): string[] => (i >= o.n - o.exits ? EXIT_POLICY : ['reject *:*']);
  const start = (i: number, bootstrap: string[]): Promise<RelayProcess> =>
    startRelay({
      nickname: `r${i}`,
      listen: `127.0.0.1:${listen[i]}`,
      bootstrap,
      exitPolicy: policy(i),
      timing: BENCH_TIMING,
      extra: { public_address: `ws://127.0.0.1:${delay.info.ports[i]}/allium` },
      process: launch,
    });
  try {
    relays.push(await start(0, []));
    relays.push(...(await Promise.all(Array.from({ length: o.n - 1 }, (_, i) => start(i + 1, [relays[0]!.bootstrap])))));
    await waitMesh(relays, 120_000);
  } catch (e) {
    await Promise.all(relays.map((r) => r.kill('SIGKILL')));
    await delay.stop();
    throw e;
  }
  return {
    relays,
    bootstrap: relays[0]!.bootstrap,
    authorities: [],
    delay,
    httpPort: delay.info.ports[o.n]!,
    async stop() {
      await gracefulStop(relays);
      for (const r of relays) rmSync(r.dataDir, { recursive: true, force: true });
      await delay.stop();
    },
  };
}

/** SIGTERM (so profilers started with --cpu-prof write their files), SIGKILL after 5 s. */
async function gracefulStop(relays: readonly RelayProcess[]): Promise<void> {
  await Promise.all(
    relays.map(async (r) => {
      const t = setTimeout(() => void r.kill('SIGKILL'), 5000);
      await r.kill('SIGTERM');
      clearTimeout(t);
    }),
  );
}

export async function metricOf(r: RelayProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  return readMetric(r.metrics, name, labels);
}
