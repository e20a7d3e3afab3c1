/**
 * npm run bench:circuit — circuits end to end (issue 4): a local network of relay processes (4 relays and 2 exits
 * allowing 127.0.0.1) and a web server on 127.0.0.1, measured from the outside like Tor's loopback anchor.
 *
 *   --quick            fewer samples and rounds
 *   --builds N         sequential builds timed (default 100, quick 30)
 *   --rounds N         bulk rounds (default 5, quick 2)
 *   --ttfb N           first-byte samples per row (default 30, quick 20)
 *   --latency MS       instead: build time and first byte with MS of one-way delay on every link
 *   --rest S           relay RSS "at rest": sampled S seconds after the mesh forms, nothing sent in between and no
 *                      forced garbage collection, what an operator's idle relay shows (default 60; 0 skips the row)
 *   --modules          start relays from the tsc output (dist/cli/allium.js) instead of as installed (bin/allium.js
 *                      running the bundle, dist/bundle/: the default), for comparison; the client runs from tsc output
 *   --tsx              run relays and the client process through tsx, as a checkout does
 *   --relay-node-args "…"  extra node flags for every relay process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p")
 *   --tor FILE|DIR     print these results beside a run of the real-Tor anchor (shared/anchors/tor-local; DIR: its
 *                      newest bench-*.json, e.g. /tmp/tor-local-results)
 *   --no-json          skip writing bench/results/circuit-<timestamp>.json
 *   --no-bridge        skip the bridge rows (a circuit whose entry is a bridge behind nginx with TLS)
 *   --rate-only        only the circuits-per-second rows (the in-process client, builds kept in flight over one link):
 *                      the network and the closed loop, nothing else; --in-flight K (repeatable as a comma list, default
 *                      1,8,64,256) picks the rows, --rate-rounds N the rounds per row (default 1 quick, 3 otherwise)
 *   --first-byte-only  only the first-byte rows (direct, existing circuit, fresh circuit; with --defences-off-too their
 *                      on/off table too): the network and the client process, nothing else, so a run takes seconds
 *   --defences-off-too also measure build time, first byte and bulk with the client's defences off (link padding,
 *                      circuit padding), taking turns with the defaults run by run, and print the cost of the
 *                      defences (bench/lib/onoff.ts); every other row is still measured with the defaults only
 *
 * Where the clients are: circuit build times and builds per second use the client library in this process (links
 * already open; this process shares the machine's 2 cores with the relays). Build time is AlliumClient.newCircuit
 * (path choice and the one-round-trip build); builds per second keep K buildCircuit calls in flight over one link
 * to the client's guard, on paths chosen as the client chooses them, without the client's learned timeout (which
 * under overload sets relays aside and would measure the policy rather than the relays). Every curl row goes
 * through a separate client process (bench/lib/client-main.ts: the client library and its SOCKS5 listener,
 * pre-built pool off), so the relays, the client, curl and the web server are all separate processes, as with Tor.
 *
 * Bridge rows: one more relay process, an unlisted bridge listening on 127.0.0.1 behind nginx (TLS, the location of
 * contrib/nginx-allium.conf), and clients that know only its bridge line, so every circuit's entry is the bridge and
 * every link to it runs WebSocket over TLS through nginx: build time (in-process client) and bulk MB/s (client
 * process and curl), printed beside the plain rows. Left out, with a note, when nginx is not installed.
 */
import { spawnSync } from 'node:child_process';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../client/client.js';
import { FRAME_LEN } from '../protocol/link-handshake.js';
import type { LinkPaddingMode } from '../protocol/link-padding.js';
import type { Link } from '../net/link.js';
import type { ClientCircuit } from '../client/circuit.js';
import { initCrypto } from '../crypto/index.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { sleep } from '../cli/local-network.js';
import { type RelayProcess } from '../cli/relay-process.js';
import { table } from './harness.js';
import { startChild, type Child } from './lib/children.js';
import { benchRuntime, type Runtime } from './lib/compiled.js';
import { curl } from './lib/curl.js';
import { startHttpTarget, type HttpTarget } from './lib/http-target.js';
import { metricOf, startBenchNetwork, type BenchNetwork } from './lib/network.js';
import { parseFlags } from './lib/options.js';
import { CpuWindow, machineLine, rssBytes } from './lib/proc.js';
import { progress, writeResults } from './lib/results.js';
import { fmt, fmtMinMax, KiB, MiB, summarize, verdict, type Summary } from './lib/stats.js';
import { latencyMode } from './lib/latency.js';
import { closedLoopBuilds, sequentialBuilds, timedBuild } from './lib/builds.js';
import { retainedPerHop } from './lib/retained.js';
import { loadTor, torComparison } from './lib/tor.js';
import { startBridgeBehindNginx, type BridgeSetup } from './lib/bridge.js';
import { createNodeSocketFactory } from '../net/ws-node.js';
import { OnOff, sidesOf } from './lib/onoff.js';

const USAGE =
  'usage: npm run bench:circuit -- [--quick] [--builds N] [--rounds N] [--ttfb N] [--latency MS] [--rest S] [--modules | --tsx] [--relay-node-args "FLAGS"] [--tor FILE|DIR] [--no-json] [--no-bridge] [--defences-off-too] [--first-byte-only] [--rate-only [--in-flight K,…] [--rate-rounds N]]';
const flags = parseFlags(
  process.argv.slice(2),
  {
    quick: 'boolean',
    builds: 'number',
    rounds: 'number',
    ttfb: 'number',
    latency: 'number',
    rest: 'number',
    tsx: 'boolean',
    modules: 'boolean',
    'relay-node-args': 'string',
    tor: 'string',
    'no-json': 'boolean',
    'no-bridge': 'boolean',
    'defences-off-too': 'boolean',
    'first-byte-only': 'boolean',
    'rate-only': 'boolean',
    'in-flight': 'string',
    'rate-rounds': 'number',
    'latency-inner': 'number',
  },
  USAGE,
);
const quick = flags.quick ?? false;
export const opts = {
  quick,
  builds: flags.builds ?? (quick ? 30 : 100),
  rounds: flags.rounds ?? (quick ? 2 : 5),
  ttfb: flags.ttfb ?? (quick ? 20 : 30),
  inFlight: flags['in-flight']?.split(',').map(Number) ?? [1, 8, 64, 256],
  rateRounds: flags['rate-rounds'] ?? (quick ? 1 : 3),
  idleCircuits: 512,
  relays: 6,
  exits: 2,
  bulkBytes: 64 * MiB,
  /** Seconds after the mesh forms at which the at-rest RSS is sampled (issue 18). */
  restSeconds: flags.rest ?? 60,
  runtime: { tsx: flags.tsx, modules: flags.modules },
  relayNodeArgs: flags['relay-node-args']?.split(/\s+/).filter(Boolean) ?? [],
  defencesOffToo: flags['defences-off-too'] ?? false,
};
/** The client's defences turned off, for --defences-off-too (vanguards, proof of work, forwarding: not on these paths). */
const DEFENCES_OFF = { linkPadding: 'off', circuitPadding: false } as const;

const GOALS = { buildMs: 9, freshTtfbMs: 25, bulkMBs: 20, cpuMsPerMiB: 7, circuitsPerS: 1000, rssIdle: 64e6, rssAfter: 96e6, perCircuit: 2 * KiB };

const ms = (s: Summary): string => `${fmt(s.median)} ms`;
const row = (label: string, s: Summary, unit: string, goal = '', v = ''): string[] => [
  label,
  `${fmt(s.median)}${unit}`,
  `${fmt(s.p90)}${unit}`,
  fmtMinMax(s, unit),
  String(s.n),
  goal,
  v,
];

async function rssSample(relays: readonly RelayProcess[]): Promise<number[]> {
  const samples: number[][] = relays.map(() => []);
  for (let i = 0; i < 3; i++) {
    relays.forEach((r, j) => samples[j]!.push(rssBytes(r.pid)));
    await sleep(300);
  }
  return samples.map((s) => summarize(s).median);
}

// --- circuits from the in-process client ---------------------------------------------------------------------------

/** Opens `count` circuits (64 in flight) and keeps them; RSS of every relay before and after. */
async function openCircuits(client: AlliumClient, port: number, count: number): Promise<ClientCircuit[]> {
  const held: ClientCircuit[] = [];
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
      try {
        held.push((await timedBuild(client, port)).circuit);
      } catch {
        /* counted by what is held */
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return held;
}

/**
 * Relay memory per idle circuit: `count` circuits are opened and closed first, so the relays' heaps have grown to
 * what building that many takes; then `count` circuits are opened and held (state A), and `count` more (state B).
 * Per relay, (RSS in B − RSS in A) / (circuits in B − circuits in A): both states hold building garbage of the same
 * size, so it cancels, but RSS still moves in whole pages and with the garbage collector, so read it as ±1–2 KiB.
 */
async function idleCircuits(
  client: AlliumClient,
  net: BenchNetwork,
  port: number,
  count: number,
): Promise<{
  perRelay: { circuits: number; deltaBytes: number }[];
  clientDeltaBytes: number;
  built: number;
}> {
  for (const c of await openCircuits(client, port, count)) c.close();
  await sleep(2000);
  const circuitsNow = (): Promise<number[]> => Promise.all(net.relays.map((r) => metricOf(r, 'allium_circuits')));
  const held = await openCircuits(client, port, count);
  await sleep(3000);
  const rssA = await rssSample(net.relays);
  const circA = await circuitsNow();
  const clientA = process.memoryUsage().rss;
  const more = await openCircuits(client, port, count);
  await sleep(3000);
  const rssB = await rssSample(net.relays);
  const circB = await circuitsNow();
  const clientDeltaBytes = process.memoryUsage().rss - clientA;
  const built = more.filter((c) => c.state === 'open').length;
  for (const c of [...held, ...more]) c.close();
  return { perRelay: net.relays.map((_, i) => ({ circuits: circB[i]! - circA[i]!, deltaBytes: rssB[i]! - rssA[i]! })), clientDeltaBytes, built };
}

/**
 * --defences-off-too: `opts.builds` sequential builds by `client` (the defaults), each paired with one by a second
 * client with the defences off, the two taking turns in alternating order; returns the defaults' build times.
 */
async function pairedBuilds(client: AlliumClient, net: BenchNetwork, port: number, onOff: OnOff): Promise<number[]> {
  const off = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, ...DEFENCES_OFF });
  await off.start();
  const on: number[] = [];
  try {
    progress('defences off: warming up a second client (20 builds)');
    await sequentialBuilds(off, port, 20);
    progress(`timing ${opts.builds} sequential 3-hop builds, each beside one with the defences off (taking turns)`);
    for (let i = 0; i < opts.builds; i++) {
      for (const side of sidesOf(i)) {
        const { ms, circuit } = await timedBuild(side === 'on' ? client : off, port);
        circuit.close();
        onOff.add('3-hop circuit build (newCircuit, links open), ms', side, ms);
        if (side === 'on') on.push(ms);
        await sleep(20);
      }
    }
  } finally {
    await off.stop();
  }
  return on;
}

// --- curl rows through the client process --------------------------------------------------------------------------

interface BulkRound {
  round: number;
  directMBs: number;
  alliumMBs: number;
  ratio: number;
  ok: boolean;
  path: { relay: number; role: string; cpuMsPerMiB: number; bytesOut: number }[];
  clientCpuMsPerMiB: number;
  otherCores: number;
  /** Padding bytes the entry sent during the transfer, per byte it sent (the client's link is busy). */
  entryPaddingShare: number;
}

async function bulkRound(round: number, net: BenchNetwork, client: Child<{ socksPort: number }>, http: HttpTarget): Promise<BulkRound> {
  const user = `bulk-${round}-${Date.now()}`;
  const roles = ['entry', 'middle', 'last'];
  const built0 = await Promise.all(net.relays.map((r) => Promise.all(roles.map((role) => metricOf(r, 'allium_circuits_created_total', { role })))));
  // Build the circuit first (a 1-byte fetch), so the window holds only the transfer.
  await curl(http.url('/1', net.httpPort), { socksPort: client.info.socksPort, user });
  const built1 = await Promise.all(net.relays.map((r) => Promise.all(roles.map((role) => metricOf(r, 'allium_circuits_created_total', { role })))));
  const role = (i: number): string => roles[built1[i]!.findIndex((v, j) => v > built0[i]![j]!)] ?? '?';
  const direct = await curl(http.url('/bulk'));
  const out0 = await Promise.all(net.relays.map((r) => metricOf(r, 'allium_link_bytes_total', { direction: 'out' })));
  const pad0 = await Promise.all(net.relays.map((r) => metricOf(r, 'allium_link_padding_frames_total')));
  const w = new CpuWindow([...net.relays.map((r) => r.pid), client.pid, process.pid]);
  const via = await curl(http.url('/bulk', net.httpPort), { socksPort: client.info.socksPort, user });
  const cpu = w.end();
  const out1 = await Promise.all(net.relays.map((r) => metricOf(r, 'allium_link_bytes_total', { direction: 'out' })));
  const pad1 = await Promise.all(net.relays.map((r) => metricOf(r, 'allium_link_padding_frames_total')));
  const mib = http.bulkBytes / MiB;
  const entry = roles.indexOf('entry');
  const entryRelay = net.relays.findIndex((_, i) => role(i) === roles[entry]);
  const path = net.relays
    .map((r, i) => ({ relay: i, role: role(i), cpuMsPerMiB: (cpu.cpu.get(r.pid)! * 1000) / mib, bytesOut: out1[i]! - out0[i]! }))
    .filter((p) => p.bytesOut >= http.bulkBytes)
    .sort((a, b) => roles.indexOf(a.role) - roles.indexOf(b.role));
  const ok = via.code === 200 && via.bytes === http.bulkBytes && direct.bytes === http.bulkBytes;
  return {
    round,
    directMBs: direct.speed / 1e6,
    alliumMBs: via.speed / 1e6,
    ratio: via.speed / direct.speed,
    ok,
    path,
    clientCpuMsPerMiB: (cpu.cpu.get(client.pid)! * 1000) / mib,
    otherCores: cpu.otherCores,
    entryPaddingShare: entryRelay < 0 ? NaN : ((pad1[entryRelay]! - pad0[entryRelay]!) * FRAME_LEN) / Math.max(1, out1[entryRelay]! - out0[entryRelay]!),
  };
}

/**
 * Link padding on an idle client (specs/link.md §4.4): a fresh client in this process, its links open and nothing
 * sent for `seconds`; padding frames each way per second on its links, for each mode.
 */
async function idlePadding(net: BenchNetwork, seconds: number): Promise<{ mode: LinkPaddingMode; outBps: number; inBps: number }[]> {
  const res: { mode: LinkPaddingMode; outBps: number; inBps: number }[] = [];
  for (const mode of ['auto', 'reduced', 'off'] as const) {
    progress(`link padding, idle client (${mode}): ${seconds} s with its links open and nothing sent`);
    const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, linkPadding: mode });
    await c.start();
    try {
      const links = [...(c as unknown as { links: Map<string, Link> }).links.values()];
      const before = links.map((l) => ({ out: l.stats.paddingFramesOut, in: l.stats.paddingFramesIn }));
      await sleep(seconds * 1000);
      const out = links.reduce((a, l, i) => a + l.stats.paddingFramesOut - before[i]!.out, 0);
      const inn = links.reduce((a, l, i) => a + l.stats.paddingFramesIn - before[i]!.in, 0);
      res.push({ mode, outBps: (out * FRAME_LEN) / seconds / links.length, inBps: (inn * FRAME_LEN) / seconds / links.length });
    } finally {
      await c.stop();
    }
  }
  return res;
}

// --- a bridge behind nginx with TLS as the entry -------------------------------------------------------------------

interface BridgeRuns {
  builds: Summary;
  bulk: { round: number; directMBs: number; alliumMBs: number; ok: boolean }[];
}

/** Build times and bulk rounds with clients that know only the bridge line (so the bridge is every circuit's entry). */
async function bridgeRuns(setup: BridgeSetup, rt: Runtime, http: HttpTarget): Promise<BridgeRuns> {
  const client = new AlliumClient({
    bootstrap: [],
    bridges: [setup.line],
    socketFactory: createNodeSocketFactory({ ca: setup.cert.pem }),
    ...SINGLE_HOST_CLIENT,
    poolSize: 0,
  });
  await client.start();
  let builds: Summary;
  try {
    progress('bridge behind nginx + TLS: warming up (20 builds)');
    await sequentialBuilds(client, http.port, 20);
    progress(`bridge behind nginx + TLS: timing ${opts.builds} sequential 3-hop builds whose entry is the bridge`);
    builds = summarize(await sequentialBuilds(client, http.port, opts.builds));
  } finally {
    await client.stop();
  }
  const child = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bridge', setup.line, '--tls-ca', setup.cert.cert, '--pool', '0']);
  const bulk: BridgeRuns['bulk'] = [];
  try {
    for (let r = 0; r < opts.rounds; r++) {
      progress(`bridge behind nginx + TLS: bulk ${opts.bulkBytes / MiB} MiB, round ${r + 1}/${opts.rounds}`);
      const user = `bridge-bulk-${r}-${Date.now()}`;
      await curl(http.url('/1', http.port), { socksPort: child.info.socksPort, user });
      const direct = await curl(http.url('/bulk'));
      const via = await curl(http.url('/bulk', http.port), { socksPort: child.info.socksPort, user });
      bulk.push({ round: r, directMBs: direct.speed / 1e6, alliumMBs: via.speed / 1e6, ok: via.code === 200 && via.bytes === http.bulkBytes });
    }
  } finally {
    await child.stop();
  }
  return { builds, bulk };
}

/** First-byte samples, `opts.ttfb` each of direct, existing circuit and fresh circuit, interleaved (and defences off). */
async function firstByteSamples(
  http: HttpTarget,
  socks: number,
  socksOffPort: number | null,
  onOff: OnOff,
): Promise<{ ttfb: { direct: number[]; existing: number[]; fresh: number[] }; ttfbFail: number }> {
  const ttfb = { direct: [] as number[], existing: [] as number[], fresh: [] as number[] };
  let ttfbFail = 0;
  progress(`first byte: ${opts.ttfb} samples each of direct, existing circuit, fresh circuit (interleaved)`);
  for (let i = 0; i < opts.ttfb; i++) {
    for (const side of socksOffPort !== null ? sidesOf(i) : (['on'] as const)) {
      if (side === 'off') {
        const port = socksOffPort!;
        const e = await curl(http.url('/1'), { socksPort: port, user: 'existing' });
        const f = await curl(http.url('/1'), { socksPort: port, user: `fresh-${i}-${Date.now()}` });
        onOff.add('first byte, 1 B, existing circuit, ms', 'off', e.code === 200 ? e.ttfb * 1000 : NaN);
        onOff.add('first byte, 1 B, fresh circuit (built on demand), ms', 'off', f.code === 200 ? f.ttfb * 1000 : NaN);
        continue;
      }
      const d = await curl(http.url('/1'));
      const e = await curl(http.url('/1'), { socksPort: socks, user: 'existing' });
      const f = await curl(http.url('/1'), { socksPort: socks, user: `fresh-${i}-${Date.now()}` });
      for (const [k, r] of [
        ['direct', d],
        ['existing', e],
        ['fresh', f],
      ] as const) {
        if (r.code === 200) ttfb[k].push(r.ttfb * 1000);
        else ttfbFail++;
      }
      if (socksOffPort !== null) {
        onOff.add('first byte, 1 B, existing circuit, ms', 'on', e.code === 200 ? e.ttfb * 1000 : NaN);
        onOff.add('first byte, 1 B, fresh circuit (built on demand), ms', 'on', f.code === 200 ? f.ttfb * 1000 : NaN);
      }
    }
  }
  return { ttfb, ttfbFail };
}

/** The circuits-per-second rows: for each K of `opts.inFlight`, K builds kept in flight, `opts.rateRounds` rounds. */
async function rateRows(client: AlliumClient, port: number, net: BenchNetwork): Promise<RateRow[]> {
  const concurrency: RateRow[] = [];
  for (const k of opts.inFlight) {
    const total = quick ? Math.max(2 * k, 64) : Math.max(4 * k, 200);
    const rates: number[] = [];
    const lat: number[] = [];
    const relayCpu: number[] = [];
    const clientCpu: number[] = [];
    let failed = 0;
    for (let r = 0; r < opts.rateRounds; r++) {
      progress(`builds per second: ${k} in flight, ${total} builds, round ${r + 1}`);
      const w = new CpuWindow([...net.relays.map((p) => p.pid), process.pid]);
      const res = await closedLoopBuilds(client, port, k, total);
      const cpu = w.end().cpu;
      const built = Math.max(1, res.latency.length);
      relayCpu.push((net.relays.reduce((a, p) => a + cpu.get(p.pid)!, 0) * 1000) / built);
      clientCpu.push((cpu.get(process.pid)! * 1000) / built);
      rates.push(res.rate);
      lat.push(...res.latency);
      failed += res.failed;
      await sleep(300);
    }
    concurrency.push({ k, rate: summarize(rates), latency: summarize(lat), relayCpuMs: summarize(relayCpu), clientCpuMs: summarize(clientCpu), failed, total });
  }
  return concurrency;
}

interface RateRow {
  k: number;
  rate: Summary;
  latency: Summary;
  /** CPU time per circuit built: every relay process together, and this process (the client library). */
  relayCpuMs: Summary;
  clientCpuMs: Summary;
  failed: number;
  total: number;
}

/** --rate-only: the in-process client and the circuits-per-second rows, nothing else. */
async function rateOnly(net: BenchNetwork, http: HttpTarget): Promise<void> {
  const client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
  await client.start();
  try {
    progress('warming up: 20 builds (opens the links to the guards)');
    await sequentialBuilds(client, http.port, 20);
    const builds = summarize(await sequentialBuilds(client, http.port, opts.builds));
    const rows: string[][] = [['', 'median', 'p90', 'min–max', 'n', 'goal', '']];
    rows.push(row('3-hop circuit build (newCircuit, links open)', builds, ' ms'));
    const from = process.hrtime.bigint() / 1000n;
    const rates = await rateRows(client, http.port, net);
    // Monotonic microseconds, the clock of a --cpu-prof profile's timestamps: the window to read profiles over.
    progress(`circuits-per-second window, monotonic µs: ${from}–${process.hrtime.bigint() / 1000n}`);
    for (const c of rates) {
      rows.push(row(`circuits built per second, ${c.k} in flight (${c.total} builds/round${c.failed ? `, ${c.failed} failed` : ''})`, c.rate, '/s'));
      rows.push(row(`  per-circuit build time at ${c.k} in flight`, c.latency, ' ms'));
      rows.push(row(`  CPU per circuit, all relays together`, c.relayCpuMs, ' ms'));
      rows.push(row(`  CPU per circuit, this process (the client)`, c.clientCpuMs, ' ms'));
    }
    console.log([`== bench:circuit --rate-only — ${machineLine()} ==`, table(rows, new Set([1, 2, 3, 4]))].join('\n'));
  } finally {
    await client.stop();
  }
}

/** --first-byte-only: the client process (and one with the defences off) and the first-byte rows, nothing else. */
async function firstByteOnly(rt: Runtime, net: BenchNetwork, http: HttpTarget): Promise<void> {
  progress('starting the SOCKS client process (pre-built pool off)');
  const on = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0']);
  let off: Child<{ socksPort: number }> | null = null;
  try {
    if (opts.defencesOffToo) off = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0', '--defences-off']);
    for (const c of off ? [on, off] : [on]) {
      await curl(http.url('/1'), { socksPort: c.info.socksPort, user: 'existing' });
      await curl(http.url('/1'), { socksPort: c.info.socksPort, user: 'existing' });
    }
    const onOff = new OnOff();
    const { ttfb, ttfbFail } = await firstByteSamples(http, on.info.socksPort, off?.info.socksPort ?? null, onOff);
    const rows: string[][] = [['', 'median', 'p90', 'min–max', 'n', 'goal', '']];
    const fresh = summarize(ttfb.fresh);
    rows.push(row('first byte, 1 B, direct (no Allium)', summarize(ttfb.direct), ' ms'));
    rows.push(row('first byte, 1 B, existing circuit', summarize(ttfb.existing), ' ms'));
    rows.push(row('first byte, 1 B, fresh circuit (built on demand)', fresh, ' ms', '≤ 25 ms', verdict(fresh.median, '<=', GOALS.freshTtfbMs)));
    const out = [`== bench:circuit --first-byte-only — ${machineLine()} ==`, table(rows, new Set([1, 2, 3, 4]))];
    if (ttfbFail) out.push(`first-byte failures: ${ttfbFail}`);
    if (off) out.push('', "With the client's defences off (link padding, circuit padding), taking turns with the defaults:", onOff.table());
    console.log(out.join('\n'));
  } finally {
    await off?.stop();
    await on.stop();
  }
}

// --- main ----------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await initCrypto();
  const startedAt = performance.now();
  const rt: Runtime = await benchRuntime(opts.runtime, progress);
  if (flags.latency !== undefined || flags['latency-inner'] !== undefined) {
    await latencyMode(rt, { delayMs: flags.latency ?? flags['latency-inner']!, inner: flags['latency-inner'] !== undefined, quick, json: !flags['no-json'] });
    return;
  }
  const curlVersion = spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'curl';
  const http = await startHttpTarget(opts.bulkBytes);
  progress(`starting ${opts.relays} relay processes (${opts.exits} exits) and waiting for a full mesh`);
  const net = await startBenchNetwork({ n: opts.relays, exits: opts.exits, runtime: rt, httpPort: http.port, nodeArgs: opts.relayNodeArgs });
  const meshAt = performance.now();
  if (flags['first-byte-only'] || flags['rate-only']) {
    try {
      if (flags['rate-only']) await rateOnly(net, http);
      else await firstByteOnly(rt, net, http);
    } finally {
      await net.stop();
      await http.close();
    }
    return;
  }
  let client: AlliumClient | null = null;
  let socksClient: Child<{ socksPort: number }> | null = null;
  let socksOff: Child<{ socksPort: number }> | null = null;
  try {
    await sleep(2000);
    // At start: V8's young generation is still as large as start-up and the mesh made it. At rest: what an idle
    // relay shows later on (V8's memory reducer has had its chance; nothing is forced).
    const rssIdle = await rssSample(net.relays);
    let rssRest: number[] | null = null;
    if (opts.restSeconds > 0) {
      progress(`relay RSS at rest: nothing sent until ${opts.restSeconds} s after the mesh formed`);
      await sleep(Math.max(0, meshAt + opts.restSeconds * 1000 - performance.now()));
      rssRest = await rssSample(net.relays);
    }

    // In-process client: build time and builds per second.
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start();
    progress('warming up: 20 builds (opens the links to the guards)');
    await sequentialBuilds(client, http.port, 20);
    progress(
      `memory per idle circuit: ${opts.idleCircuits} circuits opened and closed (heap warm-up), then ${opts.idleCircuits} held, then ${opts.idleCircuits} more`,
    );
    const idle = await idleCircuits(client, net, http.port, opts.idleCircuits);
    const onOff = new OnOff();
    let builds: Summary;
    if (!opts.defencesOffToo) {
      progress(`timing ${opts.builds} sequential 3-hop builds`);
      builds = summarize(await sequentialBuilds(client, http.port, opts.builds));
    } else {
      builds = summarize(await pairedBuilds(client, net, http.port, onOff));
    }
    const concurrency = await rateRows(client, http.port, net);
    await client.stop();
    client = null;
    const padIdle = await idlePadding(net, quick ? 15 : 60);

    // Client process: first byte and bulk.
    progress('starting the SOCKS client process (pre-built pool off)');
    socksClient = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0']);
    const socks = socksClient.info.socksPort;
    await curl(http.url('/1'), { socksPort: socks, user: 'existing' });
    await curl(http.url('/1'), { socksPort: socks, user: 'existing' });
    if (opts.defencesOffToo) {
      progress('defences off: starting a second SOCKS client process (link and circuit padding off)');
      socksOff = await startChild<{ socksPort: number }>(rt, 'client-main', ['--bootstrap', net.bootstrap, '--pool', '0', '--defences-off']);
      await curl(http.url('/1'), { socksPort: socksOff.info.socksPort, user: 'existing' });
      await curl(http.url('/1'), { socksPort: socksOff.info.socksPort, user: 'existing' });
    }
    const { ttfb, ttfbFail } = await firstByteSamples(http, socks, socksOff?.info.socksPort ?? null, onOff);
    const bulk: BulkRound[] = [];
    const bulkOff: BulkRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      for (const side of opts.defencesOffToo ? sidesOf(r) : (['on'] as const)) {
        progress(
          `bulk ${opts.bulkBytes / MiB} MiB: round ${r + 1}/${opts.rounds} (direct, then through a 3-hop circuit${opts.defencesOffToo ? `; defences ${side}` : ''})`,
        );
        const b = await bulkRound(r, net, side === 'on' ? socksClient : socksOff!, http);
        (side === 'on' ? bulk : bulkOff).push(b);
        if (!opts.defencesOffToo) continue;
        onOff.add(`bulk ${opts.bulkBytes / MiB} MiB through 3 hops, MB/s`, side, b.ok ? b.alliumMBs : NaN);
        onOff.add('  ratio Allium / direct, within each round', side, b.ok ? b.ratio : NaN);
        onOff.add('relay CPU per MiB, median of the path, ms', side, b.ok ? summarize(b.path.map((p) => p.cpuMsPerMiB)).median : NaN);
        onOff.add('client process CPU per MiB, ms', side, b.ok ? b.clientCpuMsPerMiB : NaN);
      }
    }
    await socksOff?.stop();
    socksOff = null;
    await sleep(1000);
    const rssAfter = await rssSample(net.relays);
    await socksClient.stop();
    socksClient = null;
    progress(`retained memory per circuit hop: ${opts.idleCircuits} circuits held through 3 relays in this process`);
    const retained = await retainedPerHop(rt, http.port, opts.idleCircuits);
    let bridge: BridgeRuns | null = null;
    let bridgeNote = flags['no-bridge'] ? 'bridge rows skipped (--no-bridge)' : '';
    if (!flags['no-bridge']) {
      progress('bridge behind nginx + TLS: starting nginx and a bridge relay process');
      const setup = await startBridgeBehindNginx(net, rt, opts.relayNodeArgs);
      if (!setup) bridgeNote = 'bridge rows skipped: nginx is not installed (Debian package nginx-light)';
      else {
        try {
          bridge = await bridgeRuns(setup, rt, http);
        } finally {
          await setup.stop();
        }
      }
    }

    // --- report ---
    const okBulk = bulk.filter((b) => b.ok);
    const cpuAll = summarize(okBulk.flatMap((b) => b.path.map((p) => p.cpuMsPerMiB)));
    const cpuBy = (role: string): Summary => summarize(okBulk.flatMap((b) => b.path.filter((p) => p.role === role).map((p) => p.cpuMsPerMiB)));
    const alliumMBs = summarize(okBulk.map((b) => b.alliumMBs));
    const directMBs = summarize(okBulk.map((b) => b.directMBs));
    const ratio = summarize(okBulk.map((b) => b.ratio));
    const ttfbS = { direct: summarize(ttfb.direct), existing: summarize(ttfb.existing), fresh: summarize(ttfb.fresh) };
    const c256 = concurrency.find((c) => c.k === 256);
    const withCircuits = idle.perRelay.filter((p) => p.circuits >= 50);
    const perCircuit = summarize(withCircuits.map((p) => p.deltaBytes / p.circuits));
    const aggPerCircuit = withCircuits.reduce((a, p) => a + p.deltaBytes, 0) / withCircuits.reduce((a, p) => a + p.circuits, 0);
    const idleS = summarize(rssIdle);
    const restS = rssRest ? summarize(rssRest) : null;
    const afterS = summarize(rssAfter);

    const out: string[] = [];
    out.push(`== bench:circuit ${quick ? '(quick) ' : ''}— ${machineLine()} ==`);
    out.push(
      `${opts.relays} relay processes (${opts.relays - opts.exits} relays, ${opts.exits} exits accepting 127.0.0.1:*), relays run from ${rt.label}, relay defaults except maintenance every 1 s; all on 127.0.0.1, every relay linked to every other.`,
      `Web server: Node http in this process. Build rows: the client library IN THIS PROCESS (its CPU competes with the relays for the cores): build time = newCircuit,`,
      `circuits/s = K buildCircuit calls kept in flight over one link to the client's guard (closed loop, no learned timeout). curl rows: a SEPARATE client process`,
      `(SOCKS5, pre-built pool off) — relays, client, curl and server are all separate processes. ${curlVersion}.`,
      '',
    );
    const rows: string[][] = [['', 'median', 'p90', 'min–max', 'n', 'goal', '']];
    rows.push(row('3-hop circuit build (newCircuit, links open)', builds, ' ms', '≤ 9 ms', verdict(builds.median, '<=', GOALS.buildMs)));
    const bridgeOk = bridge ? bridge.bulk.filter((b) => b.ok) : [];
    const bridgeMBs = summarize(bridgeOk.map((b) => b.alliumMBs));
    if (bridge) rows.push(row('  same, entry = a bridge behind nginx + TLS', bridge.builds, ' ms'));
    rows.push(row('first byte, 1 B, direct (no Allium)', ttfbS.direct, ' ms'));
    rows.push(row('first byte, 1 B, existing circuit', ttfbS.existing, ' ms'));
    rows.push(row('first byte, 1 B, fresh circuit (built on demand)', ttfbS.fresh, ' ms', '≤ 25 ms', verdict(ttfbS.fresh.median, '<=', GOALS.freshTtfbMs)));
    rows.push(row(`bulk ${opts.bulkBytes / MiB} MiB through 3 hops, MB/s`, alliumMBs, '', '≥ 20 MB/s', verdict(alliumMBs.median, '>=', GOALS.bulkMBs)));
    if (bridge) rows.push(row(`  same, entry = a bridge behind nginx + TLS, MB/s`, bridgeMBs, ''));
    rows.push(row(`bulk ${opts.bulkBytes / MiB} MiB direct, MB/s`, directMBs, ''));
    rows.push(row('  ratio Allium / direct, within each round', ratio, ''));
    rows.push(row('relay CPU per MiB, each relay on the path', cpuAll, ' ms', '≤ 7 ms', verdict(cpuAll.median, '<=', GOALS.cpuMsPerMiB)));
    for (const role of ['entry', 'middle', 'last']) rows.push(row(`  ${role === 'last' ? 'exit' : role}`, cpuBy(role), ' ms'));
    rows.push(row('client process CPU per MiB', summarize(okBulk.map((b) => b.clientCpuMsPerMiB)), ' ms'));
    rows.push(
      row(
        'link padding, busy client: entry padding bytes per byte sent, %',
        summarize(okBulk.map((b) => b.entryPaddingShare * 100)),
        ' %',
        '≤ 10 %',
        verdict(summarize(okBulk.map((b) => b.entryPaddingShare * 100)).median, '<=', 10),
      ),
    );
    for (const p of padIdle)
      rows.push([`link padding, idle client (${p.mode}), B/s per link out / in`, `${p.outBps.toFixed(0)} / ${p.inBps.toFixed(0)}`, '', '', '1', '', '']);
    rows.push(row('other tenants during bulk (cores)', summarize(okBulk.map((b) => b.otherCores)), ''));
    for (const c of concurrency) {
      const g = c.k === 256 ? ['≥ 1,000/s', verdict(c.rate.median, '>=', GOALS.circuitsPerS)] : ['', ''];
      rows.push(
        row(`circuits built per second, ${c.k} in flight (${c.total} builds/round${c.failed ? `, ${c.failed} failed` : ''})`, c.rate, '/s', g[0], g[1]),
      );
      rows.push(row(`  per-circuit build time at ${c.k} in flight`, c.latency, ' ms'));
    }
    rows.push(row('relay RSS idle at start, 2 s after the mesh (per relay)', summarize(rssIdle.map((x) => x / 1e6)), ' MB'));
    if (rssRest && restS)
      rows.push(
        row(
          `relay RSS idle at rest, ${opts.restSeconds} s after the mesh (per relay)`,
          summarize(rssRest.map((x) => x / 1e6)),
          ' MB',
          '≤ 64 MB',
          verdict(restS.median, '<=', GOALS.rssIdle),
        ),
      );
    rows.push(row('relay RSS after bulk (per relay)', summarize(rssAfter.map((x) => x / 1e6)), ' MB', '≤ 96 MB', verdict(afterS.median, '<=', GOALS.rssAfter)));
    rows.push(
      row(
        `relay memory per idle circuit (RSS, ${idle.built} more circuits held; relays with ≥ 50)`,
        summarize(withCircuits.map((p) => p.deltaBytes / p.circuits / KiB)),
        ' KiB',
        '≤ 2 KiB',
        verdict(perCircuit.median, '<=', GOALS.perCircuit),
      ),
    );
    rows.push([
      `relay memory retained per idle circuit hop (heap + external after GC, ${retained.hops} hops)`,
      `${fmt(retained.bytesPerHop / KiB)} KiB`,
      '',
      '',
      '',
      '≤ 2 KiB',
      verdict(retained.bytesPerHop, '<=', GOALS.perCircuit),
    ]);
    out.push(table(rows, new Set([1, 2, 3, 4])));
    out.push('');
    out.push(
      `retained per hop: ${fmt(retained.heapPerHop)} B JS heap + ${fmt(retained.externalPerHop)} B external (3 relays in this process, circuits held by a client process; RSS moves by MBs with V8's heap sizing, hence this row)`,
    );
    out.push(
      `memory per idle circuit, all relays together: ${fmt(aggPerCircuit / KiB)} KiB (per relay, RSS delta / circuits added: ${idle.perRelay.map((p) => `${fmt(p.deltaBytes / 1e6)} MB/${p.circuits}`).join(', ')}); ` +
        `client process (this one): ${fmt(idle.clientDeltaBytes / idle.built / KiB)} KiB per circuit`,
    );
    out.push('bulk rounds (relay CPU ms per MiB on the path, entry → middle → exit):');
    for (const b of bulk) {
      out.push(
        `  round ${b.round + 1}: ${fmt(b.alliumMBs)} MB/s vs direct ${fmt(b.directMBs)} MB/s${b.ok ? '' : ' (INCOMPLETE, not counted)'}; ` +
          `path ${b.path.map((p) => `r${p.relay} ${fmt(p.cpuMsPerMiB)}`).join(' → ')}; client ${fmt(b.clientCpuMsPerMiB)} ms/MiB; other tenants ${fmt(b.otherCores)} cores`,
      );
    }
    if (ttfbFail) out.push(`first-byte failures: ${ttfbFail}`);
    if (bridge) {
      out.push(
        `bridge behind nginx + TLS (entry of every circuit; nginx and the bridge are 2 more processes on the same cores): build ${fmt(bridge.builds.median)} ms vs ${fmt(builds.median)} ms plain ` +
          `(×${fmt(bridge.builds.median / builds.median)}); bulk ${fmt(bridgeMBs.median)} MB/s vs ${fmt(alliumMBs.median)} MB/s plain (×${fmt(bridgeMBs.median / alliumMBs.median)})` +
          `${bridgeOk.length < bridge.bulk.length ? `; ${bridge.bulk.length - bridgeOk.length} bulk rounds INCOMPLETE, not counted` : ''}`,
      );
    }
    if (bridgeNote) out.push(bridgeNote);
    out.push('');
    const goals: string[][] = [['goal (issue 4)', 'measured (median)', 'verdict']];
    goals.push(['3-hop build ≤ 9 ms', ms(builds), verdict(builds.median, '<=', GOALS.buildMs)]);
    goals.push(['fresh-circuit first byte ≤ 25 ms', ms(ttfbS.fresh), verdict(ttfbS.fresh.median, '<=', GOALS.freshTtfbMs)]);
    goals.push(['bulk ≥ 20 MB/s', `${fmt(alliumMBs.median)} MB/s`, verdict(alliumMBs.median, '>=', GOALS.bulkMBs)]);
    goals.push(['≤ 7 ms CPU per MiB per relay', ms(cpuAll), verdict(cpuAll.median, '<=', GOALS.cpuMsPerMiB)]);
    goals.push(['≥ 1,000 circuits/s with 256 in flight', `${fmt(c256?.rate.median ?? NaN)}/s`, verdict(c256?.rate.median ?? NaN, '>=', GOALS.circuitsPerS)]);
    goals.push([
      `RSS per relay ≤ 64 MB idle${restS ? ` at rest (${opts.restSeconds} s)` : ' (at start: no --rest)'} / ≤ 96 MB after bulk (issue 18; medians)`,
      `${fmt((restS ?? idleS).median / 1e6)} / ${fmt(afterS.median / 1e6)} MB (at start ${fmt(idleS.median / 1e6)} MB)`,
      restS ? verdict(Math.max(restS.median / GOALS.rssIdle, afterS.median / GOALS.rssAfter), '<=', 1) : verdict(afterS.median, '<=', GOALS.rssAfter),
    ]);
    goals.push(['≤ 2 KiB per idle circuit (RSS delta, noisy)', `${fmt(perCircuit.median / KiB)} KiB`, verdict(perCircuit.median, '<=', GOALS.perCircuit)]);
    goals.push([
      '≤ 2 KiB per idle circuit (retained per hop, after GC)',
      `${fmt(retained.bytesPerHop / KiB)} KiB`,
      verdict(retained.bytesPerHop, '<=', GOALS.perCircuit),
    ]);
    out.push(table(goals, new Set()));
    if (opts.defencesOffToo) {
      out.push('');
      out.push(
        'What the defences cost (client: link padding auto and circuit padding on, the defaults, against both off), same run and network, taking turns run by run:',
      );
      out.push(onOff.table());
      out.push(
        'on / off above 1 for times and CPU, below 1 for MB/s, is the cost; "paired" is the median of the ratios of the pairs measured back to back. Vanguards, proof of work and content forwarding are not on these paths (bench:messaging --defences-off-too).',
      );
    }
    out.push(`(${((performance.now() - startedAt) / 1000).toFixed(0)} s; MB = 10^6 bytes, MiB = 2^20)`);
    if (flags.tor) {
      const most = Math.max(...idle.perRelay.map((q) => q.circuits));
      const guard = idle.perRelay.find((p) => p.circuits === most);
      out.push('');
      out.push(
        torComparison(loadTor(flags.tor), {
          build: builds,
          ttfbExisting: ttfbS.existing,
          ttfbFresh: ttfbS.fresh,
          bulk: alliumMBs,
          relayCpu: cpuAll,
          clientCpu: summarize(okBulk.map((b) => b.clientCpuMsPerMiB)),
          otherCores: summarize(okBulk.map((b) => b.otherCores)),
          rate: new Map(concurrency.map((c) => [c.k, c.rate])),
          rssIdle: summarize(rssIdle.map((x) => x / 1e6)),
          rssAfter: summarize(rssAfter.map((x) => x / 1e6)),
          perCircuitKiB: guard ? guard.deltaBytes / guard.circuits / KiB : NaN,
        }),
      );
    }
    console.log(out.join('\n'));
    if (!flags['no-json']) {
      const file = writeResults('circuit', opts, {
        builds,
        concurrency,
        ttfb: ttfbS,
        ttfbFail,
        bulk,
        padIdle,
        alliumMBs,
        directMBs,
        ratio,
        cpuAll,
        rssIdle,
        rssRest,
        restSeconds: opts.restSeconds,
        rssAfter,
        idle,
        aggPerCircuit,
        retained,
        bridge,
        ...(opts.defencesOffToo ? { defencesOff: { bulk: bulkOff, samples: onOff.toJSON(), rows: onOff.rows() } } : {}),
      });
      console.log(`results written to ${file}`);
    }
  } finally {
    await client?.stop();
    await socksClient?.stop();
    await socksOff?.stop();
    await net.stop();
    await http.close();
  }
}

await main();
process.exit(0);
