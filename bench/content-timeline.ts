/**
 * npm run bench:content-timeline — where one content get's time goes (issue 18), beside a plain 3-hop stream of the
 * same bytes on the same network. 10 relay processes on 127.0.0.1 (k = 3), the client in this process; a warm-up put
 * and get of 1 MiB (so forwarders hold their circuits to holders and circuits wait built ahead, as in bench:content),
 * then a put of the large file and one traced get of it.
 *
 * The trace wraps the client's circuit source: it sees each content circuit built (ahead or for the operation), each
 * FETCH sent, its FETCHED and its DATA, so it prints, in milliseconds from the get's start: when each circuit the
 * get used was ready, the manifest's round trip, the first block requested and the first byte returned; requests in
 * flight per circuit and in total (time-weighted), idle gaps (nothing in flight, or nothing returned); per request
 * the time from FETCH to FETCHED (the forward, the holder's read and the way back) and from FETCHED to its last byte
 * (the transfer, shared with the requests beside it); CPU seconds of the client and of each relay by its role on
 * the get's circuits (guard, middle, forwarder; holders are every relay's share of the rest). And the first byte's
 * phases (issue 18: start to the manifest's FETCH, its round trip, the decode to the first block's FETCH, the wait for
 * data block 0 — where it was among the block requests, how many were answered before it — and its hand-over), found
 * by block 0's routing key (read with open() after the get), with their medians over the runs.
 *
 *   flags: --relays N (10)  --mib N (10)  --runs N (1: traced gets, each with a plain stream after it)
 *          --fetch-concurrency N (the client's default: FETCHes in flight per read)  --relay-prof DIR (relays write
 *          V8 CPU profiles there; the client's: run with node --cpu-prof --import tsx)  --repair-interval MS (1000, as
 *          bench:content; relays check their blocks' copies that often: after each put the get waits until their
 *          passes have gone quiet, bench/lib/repair-quiet.ts, and the wait is printed)
 *
 * The get's circuits are those its FETCHes went on, three (CONTENT_CIRCUITS_PER_OPERATION); the open() that finds
 * block 0's key after it is another operation, on circuits of its own, and is left out of the get's figures.
 */
import { createServer } from 'node:http';
import { initCrypto } from '../crypto/index.js';
import { AlliumClient, type CircuitSource, SINGLE_HOST_CLIENT } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import type { ClientCircuit } from '../net/circuit.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { startNetwork } from '../cli/local-network.js';
import { cpuSeconds } from './lib/proc.js';
import { describeQuiet, repairQuiet } from './lib/repair-quiet.js';
import { parseFlags } from './lib/options.js';
import { median, percentile } from './lib/stats.js';
import { decodeFetch } from '../protocol/content-messages.js';
import { toHex } from '../protocol/bytes.js';

const flags = parseFlags(
  process.argv.slice(2),
  { relays: 'number', mib: 'number', runs: 'number', 'fetch-concurrency': 'number', 'relay-prof': 'string', 'repair-interval': 'number' },
  'npm run bench:content-timeline -- [--relays N] [--mib N] [--runs N] [--fetch-concurrency N] [--relay-prof DIR] [--repair-interval MS]',
);
const SIZE = (flags.mib ?? 10) * 1024 * 1024;
const runs = flags.runs ?? 1;

function data(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

interface Req {
  circuit: number;
  rk: string;
  sent: number;
  fetched: number | null;
  first: number | null;
  last: number | null;
  bytes: number;
}
interface Built {
  circuit: ClientCircuit;
  /** performance.now() when it was asked for and when it was ready (absolute: a circuit built ahead predates t0). */
  asked: number;
  ready: number;
}

let t0 = performance.now();
const now = (): number => performance.now() - t0;
const built: Built[] = [];
let reqs: Req[] = [];
/** The first byte's phases of each traced get. */
const phases: Record<string, number[]> = {};

/** Every circuit the content client builds, watched: FETCHes sent on it and what comes back on their streams. */
function traced(source: AlliumClient): CircuitSource {
  return {
    directory: source.directory,
    async newCircuit(o) {
      const asked = performance.now();
      const c = await source.newCircuit(o);
      built.push({ circuit: c, asked, ready: performance.now() });
      const open = c.mux.open.bind(c.mux);
      const streams = new Map<number, ReturnType<typeof open>>();
      c.mux.open = () => {
        const s = open();
        streams.set(s.id, s);
        return s;
      };
      const send = c.send.bind(c);
      c.send = (msg, hop) => {
        const s = streams.get(msg.streamId);
        if (msg.command === RelayCommand.FETCH && s) {
          streams.delete(msg.streamId);
          const r: Req = { circuit: c.number, rk: toHex(decodeFetch(msg.data).k), sent: now(), fetched: null, first: null, last: null, bytes: 0 };
          reqs.push(r);
          s.on('stream:reply', () => (r.fetched = now()));
          s.on('stream:data', (d) => {
            r.first ??= now();
            r.last = now();
            r.bytes += d.length;
          });
        }
        return send(msg, hop);
      };
      return c;
    },
  };
}

await initCrypto();
const net = await startNetwork(flags.relays ?? 10, {
  exits: 1,
  timing: { repair_interval: flags['repair-interval'] ?? 1000 },
  ...(flags['relay-prof'] ? { process: { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${flags['relay-prof']}`] } } : {}),
});
const stream = data(SIZE, 99);
const http = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Length': stream.length });
  res.end(stream);
});
await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
const httpPort = (http.address() as { port: number }).port;
const client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
await client.start();
const content = new ContentClient(traced(client), flags['fetch-concurrency'] ? { fetchConcurrency: flags['fetch-concurrency'] } : {});
const nick = new Map(net.relays.map((r, i) => [r.fingerprint, flags['relay-prof'] ? `r${i} (pid ${r.pid})` : `r${i}`]));
const relayCpu = (): Map<string, number> => new Map(net.relays.map((r) => [r.fingerprint, cpuSeconds(r.pid)]));
const ms = (x: number): string => x.toFixed(1);
const dist = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `median ${ms(percentile(s, 50))}, p10 ${ms(percentile(s, 10))}, p90 ${ms(percentile(s, 90))}, max ${ms(s[s.length - 1]!)}` : '-';
};

try {
  for (const c of [content]) for await (const _ of c.getStream(await c.put(data(1024 * 1024, 1)))) void _;
  for (let run = 0; run < runs; run++) {
    const link = await content.put(data(SIZE, run + 7));
    // The relays' repair passes after the put (every holder checks the new blocks at the others), waited out so that
    // the get does not share their CPU: what they spent, with no request of ours.
    console.log(`\nafter the put, no request: ${describeQuiet(await repairQuiet(net.relays))}`);
    // The get, traced.
    reqs = [];
    const cpu0 = relayCpu();
    const ccpu0 = process.cpuUsage();
    t0 = performance.now();
    const us0 = process.hrtime.bigint() / 1000n;
    const yields: [number, number][] = [];
    let got = 0;
    for await (const chunk of content.getStream(link)) {
      got += chunk.length;
      yields.push([now(), got]);
    }
    const total = now();
    const ccpu = process.cpuUsage(ccpu0);
    const cpu1 = relayCpu();
    if (got !== SIZE) throw new Error(`got ${got} of ${SIZE}`);
    // The get's requests end here: open() below is an operation of its own (content.md §8.2), on circuits of its own
    // (one built ahead during the get), and its manifest FETCH is not the get's.
    const getReqs = reqs;
    reqs = [];
    // The first byte's phases (issue 18): where the time to the first byte went, block 0 found by its routing key.
    const opened = await content.open(link);
    reqs = getReqs;
    const block0 = toHex(opened.blocks()[1]!.rk);
    const i0 = reqs.findIndex((r) => r.rk === block0);
    if (i0 > 0) {
      const r = reqs[i0]!;
      const m = reqs[0]!;
      const ph: [string, number][] = [
        ['start → manifest FETCH', m.sent],
        ['manifest FETCH → its last byte', (m.last ?? m.fetched ?? 0) - m.sent],
        ['manifest in → first block FETCH', reqs[1]!.sent - (m.last ?? m.fetched ?? 0)],
        ['first block FETCH → block 0 FETCH', r.sent - reqs[1]!.sent],
        ['block 0 FETCH → its FETCHED', (r.fetched ?? 0) - r.sent],
        ['block 0 FETCHED → its last byte', (r.last ?? 0) - (r.fetched ?? 0)],
        ['block 0 in → first byte out', yields[0]![0] - (r.last ?? 0)],
        ['first byte out', yields[0]![0]],
        ['block 0: place among the block requests', i0],
        ['block requests answered in full before block 0', reqs.slice(1).filter((q) => q !== r && q.last !== null && q.last < (r.last ?? Infinity)).length],
      ];
      for (const [k, v] of ph) (phases[k] ??= []).push(v);
      console.log(`  first byte: ${ph.map(([k, v]) => `${k} ${ms(v)}`).join('; ')}`);
    }
    // The circuits the get used: those its requests went on.
    const used = new Set(reqs.map((r) => r.circuit));
    const circuits = built.filter((b) => used.has(b.circuit.number));
    console.log(`\n(monotonic window of the get, µs: ${us0} ${process.hrtime.bigint() / 1000n})`);
    console.log(
      `get ${SIZE / 1048576} MiB: ${ms(total)} ms, ${(SIZE / 1e6 / (total / 1000)).toFixed(2)} MB/s; ${reqs.length} FETCHes on ${used.size} circuits`,
    );
    for (const b of circuits) {
      const n = reqs.filter((r) => r.circuit === b.circuit.number).length;
      // Asked for before the get began: built ahead (while an earlier operation ran); else built by the get.
      const ahead = b.asked < t0;
      console.log(
        `  circuit ${b.circuit.number}: ${ahead ? 'built ahead' : 'built for the get'}, ready at ${ms(b.ready - t0)} (asked ${ms(b.asked - t0)}), ${n} requests`,
      );
    }
    const first = reqs[0]!;
    console.log(`  manifest: FETCH at ${ms(first.sent)}, FETCHED ${ms(first.fetched ?? NaN)}, last byte ${ms(first.last ?? NaN)}`);
    const second = reqs[1];
    if (second) console.log(`  first block FETCH at ${ms(second.sent)}; first byte out at ${ms(yields[0]![0])}; last byte out at ${ms(total)}`);
    // In flight over time (time-weighted), and gaps with nothing in flight / nothing returned.
    const edges: [number, number, number][] = [];
    for (const r of reqs) edges.push([r.sent, 1, r.circuit], [r.last ?? r.fetched ?? total, -1, r.circuit]);
    edges.sort((a, b) => a[0] - b[0]);
    let inFlight = 0;
    let lastT = edges[0]?.[0] ?? 0;
    let area = 0;
    let peak = 0;
    let idle = 0;
    const per = new Map<number, number>();
    const perArea = new Map<number, number>();
    for (const [t, d, c] of edges) {
      const dt = t - lastT;
      area += inFlight * dt;
      if (inFlight === 0) idle += dt;
      for (const [k, v] of per) perArea.set(k, (perArea.get(k) ?? 0) + v * dt);
      lastT = t;
      inFlight += d;
      per.set(c, (per.get(c) ?? 0) + d);
      peak = Math.max(peak, inFlight);
    }
    const span = lastT - (edges[0]?.[0] ?? 0);
    console.log(
      `  in flight: mean ${(area / span).toFixed(1)} (peak ${peak}); per circuit ${[...perArea.values()].map((a) => (a / span).toFixed(1)).join(' / ')}; nothing in flight ${ms(idle)} ms`,
    );
    let gap = 0;
    let gapAt = 0;
    for (let i = 1; i < yields.length; i++) {
      const g = yields[i]![0] - yields[i - 1]![0];
      if (g > gap) [gap, gapAt] = [g, yields[i - 1]![1]];
    }
    console.log(`  longest wait between bytes out: ${ms(gap)} ms (after ${(gapAt / 1048576).toFixed(2)} MiB)`);
    const blocks = reqs.slice(1).filter((r) => r.fetched !== null && r.last !== null);
    console.log(`  FETCH → FETCHED (forward + holder + way back): ${dist(blocks.map((r) => r.fetched! - r.sent))}`);
    console.log(`  FETCHED → last byte (transfer, shared): ${dist(blocks.map((r) => r.last! - r.fetched!))}`);
    console.log(`  FETCH → last byte: ${dist(blocks.map((r) => r.last! - r.sent))}`);
    // CPU: the client, and each relay by role on the get's circuits.
    const role = new Map<string, string>();
    for (const b of circuits)
      b.circuit.path.forEach((d, i) => role.set(d.fingerprint, [role.get(d.fingerprint), ['guard', 'middle', 'forwarder'][i]].filter(Boolean).join('+')));
    console.log(`  CPU: client ${ms((ccpu.user + ccpu.system) / 1000)} ms`);
    const rows = [...cpu1].map(([fp, s]) => [fp, (s - cpu0.get(fp)!) * 1000] as const).sort((a, b) => b[1] - a[1]);
    for (const [fp, c] of rows) console.log(`       ${nick.get(fp)} ${role.get(fp) ?? 'holder only'}: ${ms(c)} ms`);
    console.log(`       all relays: ${ms(rows.reduce((a, [, c]) => a + c, 0))} ms`);

    // The plain stream, the same bytes over one 3-hop circuit.
    const p0 = relayCpu();
    const pc0 = process.cpuUsage();
    const s = await client.connect('127.0.0.1', httpPort, { isolation: `timeline-${run}` });
    const ts = performance.now();
    let n = 0;
    let firstPlain = 0;
    await new Promise<void>((resolve) => {
      s.on('stream:data', (d) => {
        firstPlain ||= performance.now() - ts;
        n += d.length;
        s.consumed(1);
      });
      s.on('stream:end', () => resolve());
      s.write(new TextEncoder().encode('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
    });
    const plainMs = performance.now() - ts;
    const pc = process.cpuUsage(pc0);
    const p1 = relayCpu();
    const relaysPlain = [...p1].reduce((a, [fp, v]) => a + (v - p0.get(fp)!) * 1000, 0);
    console.log(
      `plain 3-hop stream of ${(n / 1048576).toFixed(1)} MiB: ${ms(plainMs)} ms, ${(n / 1e6 / (plainMs / 1000)).toFixed(2)} MB/s, first byte ${ms(firstPlain)} ms; CPU client ${ms((pc.user + pc.system) / 1000)} ms, relays ${ms(relaysPlain)} ms`,
    );
  }
  if (runs > 1) {
    console.log(`\nfirst byte of a ${SIZE / 1048576} MiB get, medians of ${runs} runs (ms):`);
    for (const [k, v] of Object.entries(phases)) console.log(`  ${k}: ${ms(median(v))}  (${v.map(ms).join(', ')})`);
  }
} finally {
  content.close();
  await client.stop();
  http.close();
  // SIGTERM first: a relay killed with SIGKILL (net.stop) writes no CPU profile.
  if (flags['relay-prof']) await Promise.all(net.relays.map((r) => r.kill('SIGTERM')));
  await net.stop();
}
process.exit(0);
