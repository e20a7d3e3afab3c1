/**
 * npm run bench:shape-cost — what a circuit padding machine costs in latency (issue 17's padding against issue 18's
 * latency goals, specs/padding.md §4.4). One network of relay processes on 127.0.0.1 (4 relays, 2 exits) and a web
 * server; clients in this process that differ only in their circuit padding, taking turns sample by sample:
 *
 *   off          no circuit padding
 *   slots        SLOTS (padding only, never holds a real cell)
 *   schedule     SCHEDULE with its tabled slot durations (no round trip sent)
 *   schedule-rtt SCHEDULE with the circuit's build time sent, so its early and middle slots scale with it (default)
 *
 * Per sample and client, on a circuit built on demand (a fresh isolation key): the first byte of a 1-byte response
 * (from connect() to the first DATA), then the whole of a --bulk-kib response on another fresh circuit, and a
 * request on the first circuit --late-ms after it was built (a later exchange inside the machine's run). Link
 * padding is off for every client, so the rows differ by circuit padding alone.
 *
 *   --samples N    samples per client (default 10, quick 5)
 *   --bulk-kib N   size of the bulk response (default 1024)
 *   --late-ms MS   when the later request goes (default 3000; 0: skip it)
 *   --delay MS     a delaying forwarder in front of every relay and the web server, MS per direction (default 0)
 *   --only a,b     only these clients
 *   --quick
 *
 * Prints figures only; speed is never asserted. The machine is shared: compare rows of one run, never across runs.
 */
import { AlliumClient, SINGLE_HOST_CLIENT } from '../client/client.js';
import { initCrypto } from '../crypto/index.js';
import type { MuxStream } from '../net/stream-mux.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { sleep } from '../cli/local-network.js';
import { PaddingMachineId } from '../protocol/circuit-padding.js';
import { table } from './harness.js';
import { compiledRuntime } from './lib/compiled.js';
import { startHttpTarget } from './lib/http-target.js';
import { startBenchNetwork } from './lib/network.js';
import { parseFlags } from './lib/options.js';
import { machineLine } from './lib/proc.js';
import { progress } from './lib/results.js';
import { fmt, summarize } from './lib/stats.js';

const flags = parseFlags(
  process.argv.slice(2),
  { quick: 'boolean', samples: 'number', 'bulk-kib': 'number', 'late-ms': 'number', delay: 'number', only: 'string' },
  'npm run bench:shape-cost -- [--samples N] [--bulk-kib N] [--late-ms MS] [--delay MS] [--only off,slots,schedule,schedule-rtt] [--quick]',
);
const samples = flags.samples ?? (flags.quick ? 5 : 10);
const bulkBytes = (flags['bulk-kib'] ?? 1024) * 1024;
const lateMs = flags['late-ms'] ?? 3000;
const delayMs = flags.delay ?? 0;

type Arm = 'off' | 'slots' | 'schedule' | 'schedule-rtt';
const ARMS: Record<Arm, Partial<ConstructorParameters<typeof AlliumClient>[0]>> = {
  off: { circuitPadding: false },
  slots: { circuitPaddingMachine: { machine: PaddingMachineId.SLOTS, rtt: false } },
  schedule: { circuitPaddingMachine: { machine: PaddingMachineId.SCHEDULE, rtt: false } },
  'schedule-rtt': { circuitPaddingMachine: { machine: PaddingMachineId.SCHEDULE, rtt: true } },
};
const arms = (flags.only?.split(',').map((s) => s.trim()) ?? Object.keys(ARMS)) as Arm[];
for (const a of arms) if (!(a in ARMS)) throw new Error(`unknown client ${a}`);

/** Sends an HTTP GET on `s`; resolves with ms to the first byte and to `bytes` of body (or the stream's end). */
function get(s: MuxStream, path: string, t0: number): Promise<{ first: number; last: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path}: no whole response in 60 s (first byte ${fmt(first)} ms, ${got} bytes)`)), 60_000);
    let first = NaN;
    let got = 0;
    let header = -1;
    let want = Infinity;
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      resolve({ first, last: performance.now() - t0, bytes: got });
    };
    s.on('stream:data', (d) => {
      s.consumed(1);
      if (Number.isNaN(first)) first = performance.now() - t0;
      if (header < 0) {
        chunks.push(Buffer.from(d));
        const all = Buffer.concat(chunks);
        const at = all.indexOf('\r\n\r\n');
        if (at < 0) return;
        header = at + 4;
        const len = /content-length:\s*(\d+)/i.exec(all.subarray(0, at).toString('latin1'));
        if (len) want = Number(len[1]);
        got = all.length - header;
      } else got += d.length;
      if (got >= want) done();
    });
    s.on('stream:end', () => (header < 0 ? reject(new Error(`${path}: no response`)) : done()));
    s.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`));
  });
}

async function main(): Promise<void> {
  await initCrypto();
  const http = await startHttpTarget(bulkBytes);
  const rt = await compiledRuntime();
  progress(`starting 6 relay processes${delayMs ? ` behind a ${delayMs} ms forwarder` : ''}`);
  const net = await startBenchNetwork({ n: 6, exits: 2, runtime: rt, httpPort: http.port, delayMs });
  const clients = new Map<Arm, AlliumClient>();
  const rows = new Map<string, number[]>();
  const add = (arm: Arm, what: string, v: number): void => {
    const k = `${what}\u0000${arm}`;
    rows.set(k, [...(rows.get(k) ?? []), v]);
  };
  try {
    for (const arm of arms) {
      const c = new AlliumClient({
        bootstrap: [net.bootstrap],
        socketFactory: nodeSocketFactory,
        ...SINGLE_HOST_CLIENT,
        poolSize: 0,
        linkPadding: 'off',
        ...ARMS[arm],
      } as ConstructorParameters<typeof AlliumClient>[0]);
      await c.start();
      // Warm up: the links to the guards open.
      for (let i = 0; i < 3; i++) (await c.newCircuit({ exitPort: net.httpPort })).close();
      clients.set(arm, c);
    }
    let n = 0;
    for (let i = 0; i < samples; i++) {
      for (const arm of arms) {
        progress(`sample ${i + 1}/${samples}: ${arm}`);
        const c = clients.get(arm)!;
        const t0 = performance.now();
        const s = await c.connect('127.0.0.1', net.httpPort, { isolation: `ttfb-${arm}-${i}-${n++}` });
        const built = performance.now() - t0;
        const r = await get(s, '/1', t0);
        progress(`  ${arm}: first byte ${fmt(r.first)} ms`);
        add(arm, 'first byte, fresh circuit (connect → first DATA), ms', r.first);
        add(arm, 'stream open on a fresh circuit (connect() resolves), ms', built);
        const t1 = performance.now();
        const b = await get(await c.connect('127.0.0.1', net.httpPort, { isolation: `bulk-${arm}-${i}-${n++}` }), '/bulk', t1);
        progress(`  ${arm}: bulk ${fmt(b.last)} ms, ${b.bytes} bytes`);
        if (b.bytes >= bulkBytes) add(arm, `${bulkBytes / 1024} KiB on a fresh circuit (connect → last byte), ms`, b.last);
        if (lateMs > 0) {
          await sleep(Math.max(0, lateMs - (performance.now() - t0)));
          const t2 = performance.now();
          const again = await c.connect('127.0.0.1', net.httpPort, { isolation: `ttfb-${arm}-${i}-${n - 2}` });
          const l = await get(again, '/1', t2);
          add(arm, `first byte, stream on that circuit ${lateMs / 1000} s after its build, ms`, l.first);
        }
      }
    }
  } finally {
    for (const c of clients.values()) await c.stop().catch(() => undefined);
    await net.stop();
    await http.close();
  }
  const whats = [...new Set([...rows.keys()].map((k) => k.split('\u0000')[0]!))];
  const out: string[][] = [['', ...arms.map((a) => `${a} median (p90)`)]];
  for (const w of whats) {
    out.push([
      w,
      ...arms.map((a) => {
        const s = summarize(rows.get(`${w}\u0000${a}`) ?? []);
        return s.n ? `${fmt(s.median)} (${fmt(s.p90)})` : '—';
      }),
    ]);
  }
  console.log(`\n== bench:shape-cost — ${machineLine()} ==`);
  console.log(
    `6 relay processes (tsc output), clients in this process taking turns, ${samples} samples each${delayMs ? `, ${delayMs} ms one-way delay on every link` : ''}; link padding off`,
  );
  console.log(table(out, new Set(arms.map((_, i) => i + 1))));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
