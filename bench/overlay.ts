/**
 * npm run bench:overlay — the relay overlay (issue 3): how fast a directory converges, what gossip costs once it
 * has, and what a relay process holds in memory, idle and per idle client link.
 *
 *   --quick          1 run per size, 30 s gossip window, 1 RSS run (default 3 runs, 300 s window, 3 RSS runs)
 *   --runs N         convergence runs per size
 *   --sizes 10,50    network sizes (default 10,50,100)
 *   --window S       gossip measurement window in seconds
 *   --links N        client links opened for the per-link RSS figure (default 1000)
 *   --modules        run the measured relay process from the tsc output (dist/cli/) instead of as installed
 *                    (bin/allium.js running the bundle: the default)
 *   --tsx            run the measured relay process through tsx, as a checkout does
 *   --no-json        skip writing bench/results/overlay-<timestamp>.json
 *
 * Convergence and gossip use in-process relays (relay/relay.ts) talking over real WebSockets on 127.0.0.1, with the
 * relay defaults (gossip every 300 s with jitter, descriptors renewed hourly) except max_links_per_ip, raised
 * because every relay shares one address. RSS is measured on a real relay process (/proc/PID/status VmRSS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initCrypto } from '../crypto/index.js';
import { parseFingerprint } from '../crypto/keys.js';
import { encodeControl, type ControlMessage } from '../protocol/control.js';
import { CONTROL_DATA_MAX } from '../protocol/cell.js';
import { FRAME_CELLS, FRAME_LEN } from '../protocol/link-handshake.js';
import { openLink } from '../net/dial.js';
import type { Link } from '../net/link.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { Relay } from '../relay/relay.js';
import { silentLogger } from '../relay/logger.js';
import { sleep, startRelay } from '../cli/local-network.js';
import { table } from './harness.js';
import { benchRuntime, tsxRuntime, type Runtime } from './lib/compiled.js';
import { parseFlags } from './lib/options.js';
import { machineLine, rssBytes } from './lib/proc.js';
import { progress, writeResults } from './lib/results.js';
import { fmt, fmtMinMax, KiB, summarize, verdict, type Summary } from './lib/stats.js';

const USAGE = 'usage: npm run bench:overlay -- [--quick] [--runs N] [--sizes 10,50,100] [--window S] [--links N] [--modules | --tsx] [--no-json]';
const flags = parseFlags(
  process.argv.slice(2),
  { quick: 'boolean', runs: 'number', sizes: 'string', window: 'number', links: 'number', tsx: 'boolean', modules: 'boolean', 'no-json': 'boolean' },
  USAGE,
);
const quick = flags.quick ?? false;
const opts = {
  quick,
  runs: flags.runs ?? (quick ? 1 : 3),
  sizes: (flags.sizes ?? '10,50,100').split(',').map(Number),
  windowS: flags.window ?? (quick ? 30 : 300),
  links: flags.links ?? 1000,
  rssRuns: quick ? 1 : 3,
  runtime: { tsx: flags.tsx, modules: flags.modules },
};

/** The relay defaults this bench keeps (relay/config.ts). */
const DEFAULT_GOSSIP_S = 300;
const DEFAULT_RENEW_S = 3600;
/** A run that has not converged by then is reported as such (and the median taken over the runs that did). */
const CONVERGE_LIMIT_S = 120;
const GOALS = { convergeS: 10, gossipBytesPerMin: 2 * 1000, rssIdle: 80 * 1e6, perLink: 16 * KiB };

// --- in-process networks ---------------------------------------------------------------------------------------------

type OverlayInternals = {
  send(link: Link, m: ControlMessage): void;
  sendDigest(link: Link): void;
  relayLinks: Map<string, Set<Link>>;
};

interface MessageCount {
  messages: number;
  payload: number;
  frames: number;
}

interface Net {
  readonly relays: Relay[];
  readonly dirs: string[];
  /** Gossip messages sent, by type, since counting began (instrumented at the overlay's send). */
  readonly sent: Map<string, MessageCount>;
  counting: boolean;
  stop(): Promise<void>;
}

function relayConfig(dir: string, bootstrap: string[]): ConstructorParameters<typeof Relay>[0] {
  return {
    listen: '127.0.0.1:0',
    data_dir: dir,
    bootstrap,
    log_level: 'silent',
    max_links_per_ip: 4096,
    max_links_per_block: 4096,
    max_inbound_neighbours_per_block: 4096,
    handshakes_per_second_per_ip: 10_000,
    handshakes_per_second_per_block: 10_000,
    allow_private_addresses: true,
  };
}

/** Frames a control message of `bytes` takes when no other cell shares its frames. */
function framesFor(bytes: number): number {
  return Math.ceil(Math.max(1, Math.ceil(bytes / CONTROL_DATA_MAX)) / FRAME_CELLS);
}

function instrument(net: Net, relay: Relay): void {
  const ov = relay.overlay as unknown as OverlayInternals;
  const send = ov.send.bind(ov);
  ov.send = (link, m) => {
    if (net.counting && link.isOpen && m.t.startsWith('gossip')) {
      const n = encodeControl(m).length;
      const c = net.sent.get(m.t) ?? { messages: 0, payload: 0, frames: 0 };
      c.messages++;
      c.payload += n;
      c.frames += framesFor(n);
      net.sent.set(m.t, c);
    }
    send(link, m);
  };
}

/** Starts relay 0, then N−1 relays at once, each bootstrapping through relay 0; resolves when every directory holds N. */
async function converge(n: number): Promise<{ net: Net; startedS: number; convergedS: number }> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'allium-overlay-'));
  const dirs = Array.from({ length: n }, (_, i) => path.join(base, `r${i}`));
  const first = new Relay(relayConfig(dirs[0]!, []), { log: silentLogger() });
  await first.start();
  const net: Net = {
    relays: [first],
    dirs: [base],
    sent: new Map(),
    counting: false,
    async stop() {
      await Promise.all(this.relays.map((r) => r.stop()));
      rmSync(base, { recursive: true, force: true });
    },
  };
  instrument(net, first);
  const rest = dirs.slice(1).map((d) => new Relay(relayConfig(d, [first.bootstrapLine]), { log: silentLogger() }));
  net.relays.push(...rest);
  const t0 = performance.now();
  await Promise.all(
    rest.map(async (r) => {
      await r.start();
      instrument(net, r);
    }),
  );
  const startedS = (performance.now() - t0) / 1000;
  const deadline = t0 + CONVERGE_LIMIT_S * 1000;
  while (!net.relays.every((r) => r.directory.size === n)) {
    if (performance.now() > deadline) {
      const sizes = summarize(net.relays.map((r) => r.directory.size));
      progress(`${n} relays did not converge in ${CONVERGE_LIMIT_S} s (directory sizes ${sizes.min}–${sizes.max}); counted as not converged`);
      return { net, startedS, convergedS: NaN };
    }
    await sleep(10);
  }
  return { net, startedS, convergedS: (performance.now() - t0) / 1000 };
}

async function counterValue(c: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }): Promise<number> {
  return (await c.get()).values.reduce((a, v) => a + v.value, 0);
}

/** Gossip payload bytes (both directions, as allium_gossip_bytes_total counts) and link bytes out, whole network. */
async function networkBytes(net: Net): Promise<{ gossip: number; gossipOut: number; linkOut: number }> {
  let gossip = 0;
  let gossipOut = 0;
  let linkOut = 0;
  for (const r of net.relays) {
    r.node.accounting.sweep();
    gossip += await counterValue(r.metrics.gossipBytes);
    gossipOut += (await r.metrics.gossipBytes.get()).values.filter((v) => v.labels['direction'] === 'out').reduce((a, v) => a + v.value, 0);
    linkOut += (await r.metrics.linkBytes.get()).values.filter((v) => v.labels['direction'] === 'out').reduce((a, v) => a + v.value, 0);
  }
  return { gossip, gossipOut, linkOut };
}

function totals(sent: Map<string, MessageCount>): MessageCount {
  const t = { messages: 0, payload: 0, frames: 0 };
  for (const c of sent.values()) {
    t.messages += c.messages;
    t.payload += c.payload;
    t.frames += c.frames;
  }
  return t;
}

interface GossipResult {
  readonly n: number;
  readonly windowS: number;
  readonly settleS: number;
  readonly window: {
    payloadPerRelayMin: number;
    linkBytesPerRelayMin: number;
    gossipFramesPerRelayMin: number;
    digests: number;
    expectedDigests: number;
    byType: Record<string, MessageCount>;
  };
  readonly exchange: { payload: number; messages: number; frames: number; linkBytes: number };
  readonly renewal: { payload: Summary; messages: Summary; frames: Summary; linkBytes: Summary; settleMs: Summary };
  readonly neighbours: Summary;
  readonly steady: { payloadPerRelayMin: number; wirePerRelayMin: number; exchangePart: number; renewalPart: number };
}

/**
 * Converged directories come before a settled overlay: each relay first links only to relay 0, then its maintenance
 * (every 5 s) dials up to overlay_degree neighbours, and every new relay link opens with a digest exchange. Waits
 * until every relay has its neighbours and no link has opened for two maintenance intervals.
 */
async function settle(net: Net): Promise<number> {
  const t0 = performance.now();
  const want = Math.min(8, net.relays.length - 1);
  let last = -1;
  let stableSince = performance.now();
  while (performance.now() - t0 < 120_000) {
    const links = net.relays.reduce((a, r) => a + r.linkCount, 0);
    if (links !== last) {
      last = links;
      stableSince = performance.now();
    }
    if (net.relays.every((r) => r.overlay.neighbourCount >= want) && performance.now() - stableSince > 10_000) break;
    await sleep(250);
  }
  return (performance.now() - t0) / 1000;
}

async function measureGossip(net: Net, windowS: number): Promise<GossipResult> {
  const n = net.relays.length;
  progress(`gossip: waiting for the overlay of ${n} relays to settle`);
  const settleS = await settle(net);
  const neighbours = summarize(net.relays.map((r) => r.overlay.neighbourCount));

  // 1. A window at the defaults.
  progress(`gossip: ${windowS} s window on ${n} converged relays (gossip_interval ${DEFAULT_GOSSIP_S} s)`);
  net.sent.clear();
  net.counting = true;
  const b0 = await networkBytes(net);
  await sleep(windowS * 1000);
  const b1 = await networkBytes(net);
  net.counting = false;
  const perMin = (x: number): number => (x / n) * (60 / windowS);
  const byType = Object.fromEntries(net.sent);
  const windowTotals = totals(net.sent);
  const window = {
    payloadPerRelayMin: perMin(b1.gossip - b0.gossip),
    linkBytesPerRelayMin: perMin(b1.linkOut - b0.linkOut),
    gossipFramesPerRelayMin: perMin(windowTotals.frames * FRAME_LEN),
    digests: net.sent.get('gossip-digest')?.messages ?? 0,
    // Ticks are 0.5–1.5 × the interval apart, the first that long after start: count what the window could hold.
    expectedDigests: (n * windowS) / DEFAULT_GOSSIP_S,
    byType,
  };

  // 2. One anti-entropy exchange between relays that agree: relay 1 sends its digest to one neighbour.
  const a = net.relays[1]!;
  const ov = a.overlay as unknown as OverlayInternals;
  const link = [...ov.relayLinks.values()].flatMap((s) => [...s]).find((l) => l.isOpen)!;
  net.sent.clear();
  net.counting = true;
  const e0 = await networkBytes(net);
  ov.sendDigest(link);
  await sleep(500);
  const e1 = await networkBytes(net);
  net.counting = false;
  const ex = totals(net.sent);
  const exchange = { payload: e1.gossipOut - e0.gossipOut, messages: ex.messages, frames: ex.frames, linkBytes: e1.linkOut - e0.linkOut };

  // 3. One descriptor renewal flooding the network (each relay renews hourly by default).
  const renewals: { payload: number; messages: number; frames: number; linkBytes: number; settleMs: number }[] = [];
  for (const k of [2, Math.floor(n / 2), n - 1]) {
    const r = net.relays[k]!;
    net.sent.clear();
    net.counting = true;
    const f0 = await networkBytes(net);
    const t0 = performance.now();
    await sleep(5); // a new publication time
    r.publishDescriptor();
    const pub = r.descriptor!.pub;
    const deadline = t0 + 30_000;
    while (!net.relays.every((x) => x.directory.get(r.fingerprint)?.pub === pub)) {
      if (performance.now() > deadline) throw new Error('a renewed descriptor did not reach every relay in 30 s');
      await sleep(5);
    }
    const settleMs = performance.now() - t0;
    await sleep(500); // floods still in flight to relays that already have it
    const f1 = await networkBytes(net);
    net.counting = false;
    const t = totals(net.sent);
    renewals.push({ payload: f1.gossipOut - f0.gossipOut, messages: t.messages, frames: t.frames, linkBytes: f1.linkOut - f0.linkOut, settleMs });
  }
  const renewal = {
    payload: summarize(renewals.map((x) => x.payload)),
    messages: summarize(renewals.map((x) => x.messages)),
    frames: summarize(renewals.map((x) => x.frames)),
    linkBytes: summarize(renewals.map((x) => x.linkBytes)),
    settleMs: summarize(renewals.map((x) => x.settleMs)),
  };

  // Steady state per relay per minute, counting what a relay sends and receives (as the metric does): each relay
  // opens 60/interval exchanges a minute and answers as many; each of the N relays' hourly renewals costs the
  // network `renewal` bytes sent, which are received once too.
  const exchangePart = 2 * (60 / DEFAULT_GOSSIP_S) * exchange.payload;
  const renewalPart = (2 * renewal.payload.median * (60 / DEFAULT_RENEW_S) * n) / n;
  const wire = 2 * (60 / DEFAULT_GOSSIP_S) * exchange.frames * FRAME_LEN + (2 * renewal.frames.median * FRAME_LEN * (60 / DEFAULT_RENEW_S) * n) / n;
  return {
    n,
    windowS,
    settleS,
    window,
    exchange,
    renewal,
    neighbours,
    steady: { payloadPerRelayMin: exchangePart + renewalPart, wirePerRelayMin: wire, exchangePart, renewalPart },
  };
}

// --- RSS of a relay process ------------------------------------------------------------------------------------------

const DEFAULT_TIMING = { gossip_interval: 300_000, maintenance_interval: 5_000, descriptor_lifetime: 3 * 3600_000, descriptor_renew: 3600_000 };

async function sampleRss(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(rssBytes(pid));
    await sleep(400);
  }
  return summarize(xs).median;
}

interface RssRun {
  readonly idle: number;
  readonly withLinks: number;
  readonly links: number;
  readonly perLink: number;
}

async function measureRss(rt: Runtime, links: number): Promise<RssRun> {
  const relay = await startRelay({
    nickname: 'rss',
    timing: DEFAULT_TIMING,
    extra: {
      log_level: 'warn',
      max_links_per_ip: links + 64,
      max_links_per_block: links + 64,
      max_inbound_neighbours_per_block: 4096,
      handshakes_per_second: 2000,
    },
    process: { entry: [rt.cli], nodeArgs: [...rt.loaderArgs] },
  });
  const opened: Link[] = [];
  try {
    await sleep(3000);
    const idle = await sampleRss(relay.pid);
    if (links === 0) return { idle, withLinks: NaN, links: 0, perLink: NaN };
    const responder = parseFingerprint(relay.fingerprint);
    let next = 0;
    let failures = 0;
    const worker = async (): Promise<void> => {
      while (next < links) {
        next++;
        try {
          opened.push(await openLink(nodeSocketFactory, relay.address, { role: 'initiator', responder }));
        } catch {
          failures++;
          next--;
          if (failures > 200) throw new Error('could not open the client links');
          await sleep(50);
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    await sleep(3000);
    const withLinks = await sampleRss(relay.pid);
    const open = opened.filter((l) => l.isOpen).length;
    return { idle, withLinks, links: open, perLink: (withLinks - idle) / open };
  } finally {
    for (const l of opened) l.close();
    await relay.kill('SIGKILL');
    rmSync(relay.dataDir, { recursive: true, force: true });
  }
}

// --- main ----------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await initCrypto();
  const started = performance.now();
  const out: string[] = [];
  out.push(`== bench:overlay ${quick ? '(quick) ' : ''}— ${machineLine()} ==`);
  out.push(
    'Convergence and gossip: in-process relays (relay/relay.ts) in this one Node process, over real WebSockets on 127.0.0.1,',
    'relay defaults (gossip_interval 300 s ±50%, descriptors renewed hourly, overlay_degree 8), max_links_per_ip raised (one address).',
    '',
  );

  // Convergence.
  const conv = new Map<number, { converged: number[]; started: number[] }>();
  let kept: Net | null = null;
  const largest = Math.max(...opts.sizes);
  for (const n of opts.sizes) conv.set(n, { converged: [], started: [] });
  for (let run = 0; run < opts.runs; run++) {
    for (const n of opts.sizes) {
      progress(`convergence: ${n} relays, run ${run + 1}/${opts.runs}`);
      const { net, startedS, convergedS } = await converge(n);
      conv.get(n)!.converged.push(convergedS);
      conv.get(n)!.started.push(startedS);
      if (n === largest && run === opts.runs - 1) kept = net;
      else await net.stop();
      await sleep(500);
    }
  }
  const convRows: string[][] = [['relays', 'converged: median', 'p90', 'min–max', 'all start() done: median', 'runs']];
  const convResults: Record<string, { converged: Summary; started: Summary }> = {};
  for (const n of opts.sizes) {
    const c = summarize(conv.get(n)!.converged);
    const s = summarize(conv.get(n)!.started);
    convResults[n] = { converged: c, started: s };
    const failed = conv.get(n)!.converged.filter((x) => !Number.isFinite(x)).length;
    convRows.push([
      String(n),
      `${fmt(c.median * 1000)} ms`,
      `${fmt(c.p90 * 1000)} ms`,
      fmtMinMax({ ...c, min: c.min * 1000, max: c.max * 1000 }, ' ms'),
      `${fmt(s.median * 1000)} ms`,
      failed ? `${c.n} (+${failed} not converged in ${CONVERGE_LIMIT_S} s)` : String(c.n),
    ]);
  }
  out.push('Directory convergence: relay 0 up, then N−1 relays started at once, each bootstrapping via relay 0; until every directory holds N');
  out.push(table(convRows, new Set([1, 2, 3, 4, 5])));
  out.push('');

  // Gossip.
  const g = await measureGossip(kept!, opts.windowS);
  await kept!.stop();
  const kb = (x: number): string => `${fmt(x / 1000)} KB`;
  out.push(
    `Gossip once converged, ${g.n} relays, after the overlay settled (${fmt(g.settleS)} s: every relay has its neighbours, no new link for 10 s); ` +
      `relay neighbours median ${fmt(g.neighbours.median)}, ${fmtMinMax(g.neighbours)} (relay 0 is everyone's bootstrap)`,
  );
  out.push(
    `payload = allium_gossip_bytes_total (CBOR control messages, sent + received); link bytes = 4112-byte link messages (WebSocket/TCP headers not counted)`,
  );
  const byType = Object.entries(g.window.byType)
    .map(([t, c]) => `${t.replace('gossip-', '')} ${c.messages}`)
    .join(', ');
  const gRows: string[][] = [['', 'per relay per minute', 'goal < 2 KB payload', 'notes']];
  gRows.push([
    `measured: ${g.windowS} s window at the defaults`,
    `${kb(g.window.payloadPerRelayMin)} payload, ${kb(g.window.gossipFramesPerRelayMin)} gossip frames, ${kb(g.window.linkBytesPerRelayMin)} all link bytes`,
    verdict(g.window.payloadPerRelayMin, '<', GOALS.gossipBytesPerMin),
    `messages sent: ${byType || 'none'}; ${g.window.digests} digests vs ~${fmt(g.window.expectedDigests)} at steady state (first tick 150–450 s after start)`,
  ]);
  gRows.push([
    'steady state at the defaults (derived below)',
    `${kb(g.steady.payloadPerRelayMin)} payload, ${kb(g.steady.wirePerRelayMin)} link bytes`,
    verdict(g.steady.payloadPerRelayMin, '<', GOALS.gossipBytesPerMin),
    `anti-entropy ${kb(g.steady.exchangePart)} + hourly renewals ${kb(g.steady.renewalPart)}`,
  ]);
  out.push(table(gRows, new Set()));
  out.push(
    `one anti-entropy exchange between agreeing relays: ${g.exchange.messages} message, ${g.exchange.payload} B payload, ${g.exchange.frames} link message (${g.exchange.frames * FRAME_LEN} B; measured link bytes ${g.exchange.linkBytes})`,
  );
  out.push(
    `one descriptor renewal flooding ${g.n} relays: median ${kb(g.renewal.payload.median)} payload sent in ${fmt(g.renewal.messages.median)} messages = ${fmt(g.renewal.frames.median)} link messages (${kb(g.renewal.frames.median * FRAME_LEN)}; measured link bytes ${kb(g.renewal.linkBytes.median)}), everyone has it after ${fmt(g.renewal.settleMs.median)} ms`,
  );
  out.push(
    `per relay per minute at gossip interval I s and renewal interval R s = 2·(60/I)·${g.exchange.payload} B + 2·(60/R)·${fmt(g.renewal.payload.median)} B payload; link bytes 2·(60/I)·${FRAME_LEN} + 2·(60/R)·${fmt(g.renewal.frames.median)}·${FRAME_LEN}`,
  );
  out.push('');

  // RSS.
  const rt = await benchRuntime(opts.runtime, progress);
  const runs: RssRun[] = [];
  for (let i = 0; i < opts.rssRuns; i++) {
    progress(`RSS: relay process, idle then ${opts.links} client links, run ${i + 1}/${opts.rssRuns}`);
    runs.push(await measureRss(rt, opts.links));
  }
  let tsxIdle: number | null = null;
  if (rt.kind === 'compiled') {
    progress('RSS: the same relay run through tsx (as a checkout runs it)');
    tsxIdle = (await measureRss(tsxRuntime(), 0)).idle;
  }
  const idle = summarize(runs.map((r) => r.idle));
  const withLinks = summarize(runs.map((r) => r.withLinks));
  const perLink = summarize(runs.map((r) => r.perLink));
  const rssRows: string[][] = [['relay process RSS (VmRSS)', 'median', 'min–max', 'goal', '']];
  rssRows.push([
    `idle, ${rt.label}`,
    `${fmt(idle.median / 1e6)} MB`,
    fmtMinMax({ ...idle, min: idle.min / 1e6, max: idle.max / 1e6 }, ' MB'),
    '< 80 MB',
    verdict(idle.median, '<', GOALS.rssIdle),
  ]);
  if (tsxIdle !== null) rssRows.push(['idle, through tsx (checkout; not the goal figure)', `${fmt(tsxIdle / 1e6)} MB`, '', '', '']);
  rssRows.push([
    `with ${runs[0]!.links} idle client links`,
    `${fmt(withLinks.median / 1e6)} MB`,
    fmtMinMax({ ...withLinks, min: withLinks.min / 1e6, max: withLinks.max / 1e6 }, ' MB'),
    '',
    '',
  ]);
  rssRows.push([
    'per extra idle link',
    `${fmt(perLink.median / KiB)} KiB`,
    fmtMinMax({ ...perLink, min: perLink.min / KiB, max: perLink.max / KiB }, ' KiB'),
    '< 16 KB',
    verdict(perLink.median, '<', GOALS.perLink),
  ]);
  out.push(`Relay process memory: a real relay process (allium relay, ${rt.label}), relay defaults, ${opts.rssRuns} run(s); links opened from this process`);
  out.push(table(rssRows, new Set([1])));
  out.push('');

  const c100 = convResults[largest]?.converged.median ?? NaN;
  const goalRows: string[][] = [['goal (issue 3)', 'measured', 'verdict']];
  const notConverged = conv.get(largest)!.converged.filter((x) => !Number.isFinite(x)).length;
  goalRows.push([
    `${largest} relays converge < 10 s`,
    notConverged ? `${fmt(c100)} s median of the runs that did; ${notConverged} did not in ${CONVERGE_LIMIT_S} s` : `${fmt(c100)} s`,
    largest < 100 ? 'n/a (no 100-relay run)' : notConverged ? 'MISS' : verdict(c100, '<', GOALS.convergeS),
  ]);
  goalRows.push([
    'converged gossip < 2 KB per relay per minute (steady state, payload)',
    kb(g.steady.payloadPerRelayMin),
    verdict(g.steady.payloadPerRelayMin, '<', GOALS.gossipBytesPerMin),
  ]);
  goalRows.push(['  the same counted in link bytes', kb(g.steady.wirePerRelayMin), verdict(g.steady.wirePerRelayMin, '<', GOALS.gossipBytesPerMin)]);
  goalRows.push(['relay RSS idle < 80 MB', `${fmt(idle.median / 1e6)} MB`, verdict(idle.median, '<', GOALS.rssIdle)]);
  goalRows.push(['< 16 KB per extra idle link', `${fmt(perLink.median / KiB)} KiB`, verdict(perLink.median, '<', GOALS.perLink)]);
  out.push(table(goalRows, new Set()));
  out.push(`(${((performance.now() - started) / 1000).toFixed(0)} s; MB = 10^6 bytes, KB = 10^3, KiB = 1024)`);
  console.log(out.join('\n'));
  if (!flags['no-json']) {
    const file = writeResults('overlay', opts, { convergence: convResults, gossip: g, rss: { runtime: rt.kind, runs, idle, withLinks, perLink, tsxIdle } });
    console.log(`results written to ${file}`);
  }
}

await main();
process.exit(0);
