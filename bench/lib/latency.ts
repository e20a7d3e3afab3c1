/**
 * bench:circuit --latency MS: circuit build time, first byte and bulk through one circuit when every hop has MS of
 * one-way delay, to show what one round trip per circuit (Allium's setup onion) buys over one round trip per hop
 * (Tor's telescoping), and what the windows let through per round trip (specs/streams.md §4.6).
 *
 * The preferred way: a network namespace of our own (ip netns add), loopback up, `tc qdisc add dev lo root netem
 * delay MS`, and this benchmark re-run inside it (--latency-inner), so every packet between any two processes waits
 * MS. When the kernel has no netem (or no namespaces), the relays publish addresses of a delaying TCP forwarder
 * (bench/lib/delay-main.ts) instead: every link and the exit's connection to the web server wait MS per direction,
 * while the SOCKS hop from curl to the client is direct. The output says which was used and why.
 */
import { spawnSync } from 'node:child_process';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { sleep } from '../../cli/local-network.js';
import { table } from '../harness.js';
import { sequentialBuilds } from './builds.js';
import { startChild, type Child } from './children.js';
import type { Runtime } from './compiled.js';
import { curl } from './curl.js';
import { startHttpTarget } from './http-target.js';
import { startBenchNetwork, type BenchNetwork } from './network.js';
import { machineLine } from './proc.js';
import { progress, writeResults } from './results.js';
import { fmt, fmtMinMax, summarize, type Summary } from './stats.js';

/** Tor's loopback anchor (shared/anchors/tor-local/RESULTS.md, run 2): median 3-hop build 19.3 ms with no delay. */
const TOR_LOOPBACK_BUILD_MS = 19.3;

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error.message) : ''}`.trim() };
}

/** Tries to make a namespace with a delayed loopback; returns its name, or why it cannot. */
function makeNetns(delayMs: number): { name: string } | { reason: string } {
  for (const tool of ['ip', 'tc']) if (!sh('sh', ['-c', `command -v ${tool}`]).ok) return { reason: `${tool} is not installed (apt-get install -y iproute2)` };
  const name = `allium-bench-${process.pid}`;
  const add = sh('ip', ['netns', 'add', name]);
  if (!add.ok) return { reason: `ip netns add failed: ${add.out}` };
  const steps: [string, string[]][] = [
    ['ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']],
    ['ip', ['netns', 'exec', name, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', `${delayMs}ms`]],
  ];
  for (const [cmd, args] of steps) {
    const r = sh(cmd, args);
    if (!r.ok) {
      sh('ip', ['netns', 'del', name]);
      return { reason: `${args.slice(3).join(' ')} failed: ${r.out}` };
    }
  }
  return { name };
}

export async function latencyMode(rt: Runtime, o: { delayMs: number; inner: boolean; quick: boolean; json: boolean }): Promise<void> {
  if (!o.inner) {
    const ns = makeNetns(o.delayMs);
    if ('name' in ns) {
      progress(`running inside network namespace ${ns.name} (netem delay ${o.delayMs} ms on lo)`);
      try {
        const args = [...process.execArgv, process.argv[1]!, '--latency-inner', String(o.delayMs)];
        if (o.quick) args.push('--quick');
        if (rt.relays === 'tsx') args.push('--tsx');
        if (rt.relays === 'modules') args.push('--modules');
        if (!o.json) args.push('--no-json');
        const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, ...args], { stdio: 'inherit' });
        if (r.status !== 0) throw new Error(`the run inside the namespace failed (${r.status ?? r.signal})`);
      } finally {
        sh('ip', ['netns', 'del', ns.name]);
      }
      return;
    }
    console.log(`latency mode: netem on a namespace's loopback is not available here — ${ns.reason}.`);
    console.log(`Using the userspace fallback instead: a delaying TCP forwarder in front of every relay and the web server (${o.delayMs} ms each way).\n`);
  }
  await measure(rt, o);
}

async function measure(rt: Runtime, o: { delayMs: number; inner: boolean; quick: boolean; json: boolean }): Promise<void> {
  const d = o.delayMs;
  const how = o.inner
    ? `netem delay ${d} ms on lo in a private network namespace (every packet)`
    : `delaying forwarder, ${d} ms per direction on every link and on exit → web server`;
  const bulkMiB = o.quick ? 16 : 64;
  const http = await startHttpTarget(bulkMiB * 1024 * 1024);
  progress(`starting 6 relay processes with ${d} ms links`);
  const net: BenchNetwork = await startBenchNetwork({ n: 6, exits: 2, runtime: rt, httpPort: http.port, delayMs: o.inner ? 0 : d });
  let client: AlliumClient | null = null;
  let socks: Child<{ socksPort: number }> | null = null;
  try {
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start();
    progress('warming up (opens the links to the guards)');
    await sequentialBuilds(client, net.httpPort, 5);
    const n = o.quick ? 10 : 30;
    progress(`timing ${n} sequential builds`);
    const builds = summarize(await sequentialBuilds(client, net.httpPort, n));
    await client.stop();
    client = null;
    socks = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0']);
    const port = socks.info.socksPort;
    await curl(http.url('/1', net.httpPort), { socksPort: port, user: 'existing' });
    const existing: number[] = [];
    const fresh: number[] = [];
    const m = o.quick ? 5 : 15;
    progress(`first byte: ${m} samples each, existing and fresh circuit`);
    for (let i = 0; i < m; i++) {
      const e = await curl(http.url('/1', net.httpPort), { socksPort: port, user: 'existing' });
      if (e.code === 200) existing.push(e.ttfb * 1000);
      const f = await curl(http.url('/1', net.httpPort), { socksPort: port, user: `fresh-${i}-${Date.now()}` });
      if (f.code === 200) fresh.push(f.ttfb * 1000);
      await sleep(50);
    }
    // Bulk through one circuit under the same delay: what the circuit's windows let through per round trip.
    const bulkRounds = o.quick ? 2 : 3;
    const bulk: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < bulkRounds; i++) {
      progress(`bulk ${bulkMiB} MiB: round ${i + 1}/${bulkRounds} (through the delayed web server port directly, then through 3 hops)`);
      const d0 = await curl(http.url('/bulk', net.httpPort), { timeoutS: 300 });
      if (d0.code === 200 && d0.bytes === http.bulkBytes) direct.push(d0.speed / 1e6);
      const b = await curl(http.url('/bulk', net.httpPort), { socksPort: port, user: `bulk-${i}-${Date.now()}`, timeoutS: 300 });
      if (b.code === 200 && b.bytes === http.bulkBytes) bulk.push(b.speed / 1e6);
    }
    const ex = summarize(existing);
    const fr = summarize(fresh);
    const bu = summarize(bulk);
    const di = summarize(direct);
    const r = (label: string, s: Summary, expect: string): string[] => [
      label,
      `${fmt(s.median)} ms`,
      `${fmt(s.p90)} ms`,
      fmtMinMax(s, ' ms'),
      String(s.n),
      expect,
    ];
    // One-way delays on the critical path (d each). A build crosses client→guard→middle→exit and back: 6d. Tor's
    // telescoping build waits for CREATE2 (2d), then EXTEND2 to the middle (4d), then to the exit (6d): 12d. With the
    // forwarder a stream costs BEGIN and CONNECTED (6d), then the request and response (6d + exit↔server 2d); with
    // netem every local hop (curl↔SOCKS, TCP handshakes) waits too, so the first-byte rows have no simple formula.
    const expectStream = (extra: number): string =>
      o.inner ? 'more than the forwarder formula: every local hop waits too' : `${14 + extra} × ${d} = ${(14 + extra) * d} ms`;
    const out: string[] = [];
    out.push(`== bench:circuit --latency ${d} — ${machineLine()} ==`);
    out.push(`6 relay processes (${rt.label}); ${how}.`);
    out.push('Build rows: client library in this process, links already open. First-byte rows: separate client process, curl through SOCKS5.');
    out.push('');
    const rows: string[][] = [['', 'median', 'p90', 'min–max', 'n', 'critical path if only the delay counted']];
    rows.push(r('3-hop circuit build', builds, `6 × ${d} = ${6 * d} ms (one round trip through 3 hops)`));
    rows.push(r('first byte, existing circuit', ex, expectStream(0)));
    rows.push(r('first byte, fresh circuit', fr, expectStream(6)));
    const mb = (label: string, v: Summary, expect: string): string[] => [
      label,
      `${fmt(v.median)} MB/s`,
      `${fmt(v.p90)} MB/s`,
      fmtMinMax(v, ' MB/s'),
      String(v.n),
      expect,
    ];
    rows.push(mb(`bulk ${bulkMiB} MiB through 3 hops`, bu, `one stream: at most STREAM_WINDOW (886 KB) per round trip (≥ 6d = ${6 * d} ms)`));
    rows.push(mb(`bulk ${bulkMiB} MiB direct (one TCP connection, same web server delay)`, di, ''));
    out.push(table(rows, new Set([1, 2, 3, 4])));
    out.push('');
    out.push(
      `Tor builds a 3-hop circuit in three round trips (CREATE2, then EXTEND2 twice): 2d + 4d + 6d = 12 × ${d} = ${12 * d} ms of delay, ` +
        `about ${fmt(12 * d + TOR_LOOPBACK_BUILD_MS)} ms with its loopback build time (${TOR_LOOPBACK_BUILD_MS} ms, RESULTS.md) added — estimated, not measured here.`,
    );
    out.push(
      `Allium: ${fmt(builds.median)} ms = ${fmt(builds.median / (12 * d + TOR_LOOPBACK_BUILD_MS))} × that estimate; the delay alone would be ${6 * d} ms, ` +
        `so processing and scheduling add ${fmt(builds.median - 6 * d)} ms.`,
    );
    if (!o.inner) {
      out.push(
        `First byte with the same delays: a stream costs both designs 14d = ${14 * d} ms on an existing circuit; on a fresh one Tor adds its 12d build ` +
          `(26d = ${26 * d} ms) where Allium adds 6d (20d = ${20 * d} ms) — delay only, estimated for Tor.`,
      );
    }
    console.log(out.join('\n'));
    if (o.json)
      console.log(
        `results written to ${writeResults('circuit-latency', { ...o, method: o.inner ? 'netem' : 'forwarder' }, { builds, existing: ex, fresh: fr, bulkMBs: bu, directMBs: di, bulkMiB })}`,
      );
  } finally {
    await client?.stop();
    await socks?.stop();
    await net.stop();
    await http.close();
  }
}
