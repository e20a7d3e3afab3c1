/**
 * Experiment (a): directory convergence and gossip cost versus the number of relays.
 *
 * Cold start (N up to 1,000): relays join one after another over ten minutes, each through two relays already
 * running; measured: how long after the last join every relay holds every descriptor, how long a joining relay
 * takes to hold the directory, and how long its descriptor takes to reach every relay. Run over message-level links
 * and, for small N, over real links (full relays) as a check of the stand-in.
 *
 * Steady state (N up to 10,000): a converged network (every directory filled, descriptors published at times spread
 * over the last renewal period) runs the real overlay; after a warm-up, a window measures the gossip bytes per
 * relay and minute (payload: the CBOR of the gossip messages, what the relay's gossip metric counts; wire: the link
 * frames they take), by message type, the time each renewed descriptor takes to reach every relay, and joins of new
 * relays. (Setting up 10,000 relays by a cold start would flood N² descriptors first and hold an address book of N
 * entries per relay, 10⁸ in all: hours and tens of GiB, for a state the steady state starts from anyway.)
 */
import type { Descriptor } from '../../protocol/descriptor.js';
import { lineChart } from '../plot.js';
import type { ExperimentResult, Table } from '../report.js';
import { FullRelay, MessageRelay, type SimRelay } from '../relay-node.js';
import { SimDirectoryStore } from '../directory.js';
import { median, quantile } from '../stats.js';
import { simulate } from '../world.js';

export interface ConvergenceOptions {
  seed: number;
  quick: boolean;
  coldSizes?: number[];
  fullSizes?: number[];
  warmSizes?: number[];
  log?: (line: string) => void;
}

/** Times how long descriptors take to reach every relay. */
class SpreadTracker {
  private readonly live = new Map<Descriptor, { start: number; count: number; target: number }>();
  readonly times: number[] = [];

  track(d: Descriptor, start: number, target: number): void {
    this.live.set(d, { start, count: 0, target });
  }

  arrive(d: Descriptor, now: number): void {
    const e = this.live.get(d);
    if (!e) return;
    if (++e.count >= e.target) {
      this.times.push(now - e.start);
      this.live.delete(d);
    }
  }

  get incomplete(): number {
    return this.live.size;
  }

  clear(): void {
    this.live.clear();
    this.times.length = 0;
  }
}

interface ColdResult {
  n: number;
  tier: 'messages' | 'real links';
  convergedAfterLastJoinMs: number;
  joinerFullMedianMs: number;
  joinerFullP95Ms: number;
  spreadMedianMs: number;
  spreadP95Ms: number;
  /** Gossip payload per relay during the whole join phase (sent, bytes). */
  joinBytesPerRelay: number;
}

async function cold(seed: number, n: number, tier: 'messages' | 'real links', joinSpanMs: number): Promise<ColdResult> {
  return simulate({ seed }, async (w) => {
    const spread = new SpreadTracker();
    let fullCount = 0;
    const joinerDone: number[] = [];
    const relays: SimRelay[] = [];
    const make = (i: number): SimRelay => {
      const host = w.network.addHost();
      if (tier === 'real links') return new FullRelay(w, host, i, { store: true });
      let target = Infinity;
      let startedAt = 0;
      let counted = false;
      const r: MessageRelay = new MessageRelay(w, host, i, { store: true }, (d, _res, now) => {
        spread.arrive(d, now);
        const size = r.directory.size;
        if (size >= target) {
          joinerDone.push(now - startedAt);
          target = Infinity;
        }
        if (size === n && !counted) {
          counted = true;
          fullCount++;
        }
      });
      r.onPublish = () => {
        startedAt = w.now;
        target = running();
      };
      return r;
    };
    const running = (): number => relays.filter((r) => r.alive).length;
    for (let i = 0; i < n; i++) relays.push(make(i));
    for (let i = 0; i < n; i++) {
      const r = relays[i]!;
      const boot = i === 0 ? [] : [relays[w.rng.int(i)]!, relays[w.rng.int(i)]!];
      const prev = r.onPublish;
      r.onPublish = (d) => {
        prev?.(d);
        spread.track(d, w.now, i + 1);
      };
      r.start(boot);
      if (i < n - 1) await w.run(joinSpanMs / n);
    }
    const lastJoin = w.now;
    const converged = (): boolean => (tier === 'messages' ? fullCount === n : relays.every((r) => r.directory.size === n));
    let convergedAt = NaN;
    const step = tier === 'messages' ? 3_600_000 : 1000;
    while (w.now - lastJoin < 3_600_000) {
      await w.run(step, () => converged());
      if (converged()) {
        convergedAt = w.now;
        break;
      }
    }
    if (tier === 'real links') {
      // Spread and joiner times are tracked for message-level relays only; real-link relays report convergence.
      for (const r of relays) (r as FullRelay).dispose();
    }
    const bytes = relays.reduce((s, r) => s + r.metrics.gossipBytes.get('out'), 0) / n;
    return {
      n,
      tier,
      convergedAfterLastJoinMs: convergedAt - lastJoin,
      joinerFullMedianMs: median(joinerDone),
      joinerFullP95Ms: quantile(joinerDone, 0.95),
      spreadMedianMs: median(spread.times),
      spreadP95Ms: quantile(spread.times, 0.95),
      joinBytesPerRelay: bytes,
    };
  });
}

interface WarmResult {
  n: number;
  windowMin: number;
  payloadPerRelayMin: number;
  wirePerRelayMin: number;
  byType: Record<string, { messages: number; payloadPerRelayMin: number }>;
  renewals: number;
  renewalSpreadMedianMs: number;
  renewalSpreadP99Ms: number;
  renewalSpreadMaxMs: number;
  joins: number;
  joinFullMedianMs: number;
  joinFullMaxMs: number;
  setupSeconds: number;
}

async function warm(seed: number, n: number, windowMs: number, joins: number, log: (s: string) => void): Promise<WarmResult> {
  return simulate({ seed }, async (w) => {
    const t0 = process.hrtime.bigint();
    const spread = new SpreadTracker();
    const relays: MessageRelay[] = [];
    const joinerFull: number[] = [];
    const joinerTargets = new Map<MessageRelay, { target: number; start: number }>();
    const onChange = (r: () => MessageRelay) => (d: Descriptor, _res: unknown, now: number) => {
      spread.arrive(d, now);
      const jt = joinerTargets.get(r());
      if (jt && r().directory.size >= jt.target) {
        joinerFull.push(now - jt.start);
        joinerTargets.delete(r());
      }
    };
    const create = (i: number): MessageRelay => {
      let self: MessageRelay | null = null;
      self = new MessageRelay(
        w,
        w.network.addHost(),
        i,
        { store: true },
        onChange(() => self!),
      );
      return self;
    };
    for (let i = 0; i < n; i++) relays.push(create(i));
    // A converged network: descriptors published at times spread over a renewal period that ends just as the
    // measured window begins, so renewals arrive at their steady rate from then on (and not during the warm-up).
    const template = new SimDirectoryStore(w.verifyCache);
    const renew = relays[0]!.config.timing.descriptor_renew;
    const warmup = relays[0]!.config.timing.gossip_interval / 2;
    for (const r of relays) template.add(r.signDescriptor(Math.floor(w.now + warmup - renew + w.rng.next() * renew)), w.now);
    for (const r of relays) r.directory.copyFrom(template);
    let running = 0;
    const trackRenewals = (r: SimRelay): void => {
      r.onPublish = (d) => spread.track(d, w.now, running);
    };
    for (const r of relays) {
      trackRenewals(r);
      r.startConverged();
      running++;
    }
    const setupSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    log(`  warm N=${n}: set up in ${setupSeconds.toFixed(1)} s; warming up`);
    // Warm-up: every relay's first anti-entropy round falls 150-450 s after its start, so from 150 s on rounds
    // happen at their steady rate.
    await w.run(warmup);
    log(`  warm N=${n}: warm-up done, ${w.network.traffic.messagesOut} messages (link openings' digests)`);
    spread.clear();
    w.network.traffic.reset();
    for (const r of relays) r.host.traffic.reset();
    const start = w.now;
    const joinTimes = Array.from({ length: joins }, () => start + w.rng.next() * windowMs * 0.6).sort((a, b) => a - b);
    const joiners: MessageRelay[] = [];
    for (const jt of joinTimes) {
      await w.run(jt - w.now);
      const j = create(relays.length + joiners.length);
      joiners.push(j);
      running++;
      joinerTargets.set(j, { target: running, start: w.now });
      trackRenewals(j);
      const live = relays.filter((r) => r.alive);
      j.start([w.rng.pick(live), w.rng.pick(live)]);
    }
    const slice = windowMs / 10;
    while (w.now < start + windowMs - 1) {
      await w.run(Math.min(slice, start + windowMs - w.now));
      log(
        `  warm N=${n}: ${((w.now - start) / 60_000).toFixed(1)} of ${(windowMs / 60_000).toFixed(0)} min, ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(0)} s`,
      );
    }
    log(`  warm N=${n}: ${w.network.traffic.messagesOut} messages in the window, ${w.clock.eventsRun} events in all`);
    const minutes = windowMs / 60_000;
    const members = n + joiners.length;
    let payload = 0;
    let wire = 0;
    for (const r of [...relays, ...joiners]) {
      payload += r.host.traffic.payloadOut;
      wire += r.host.traffic.wireOut;
    }
    const byType: WarmResult['byType'] = {};
    for (const [t, [count, bytes]] of [...w.network.traffic.byType].sort()) byType[t] = { messages: count, payloadPerRelayMin: bytes / members / minutes };
    return {
      n,
      windowMin: minutes,
      payloadPerRelayMin: payload / members / minutes,
      wirePerRelayMin: wire / members / minutes,
      byType,
      renewals: spread.times.length,
      renewalSpreadMedianMs: median(spread.times),
      renewalSpreadP99Ms: quantile(spread.times, 0.99),
      renewalSpreadMaxMs: Math.max(...spread.times),
      joins: joiners.length,
      joinFullMedianMs: median(joinerFull),
      joinFullMaxMs: joinerFull.length ? Math.max(...joinerFull) : NaN,
      setupSeconds,
    };
  });
}

function sec(ms: number): number {
  return ms / 1000;
}

export async function convergence(o: ConvergenceOptions): Promise<ExperimentResult> {
  const log = o.log ?? (() => undefined);
  const coldSizes = o.coldSizes ?? (o.quick ? [10, 30, 100] : [10, 30, 100, 300, 1000]);
  const fullSizes = o.fullSizes ?? (o.quick ? [10, 30] : [10, 30, 100]);
  const warmSizes = o.warmSizes ?? (o.quick ? [10, 30, 100, 300] : [10, 30, 100, 300, 1000, 3000, 10000]);
  const joinSpanMs = 10 * 60_000;
  const colds: ColdResult[] = [];
  for (const n of coldSizes) {
    log(`cold start, message-level links, N=${n}`);
    colds.push(await cold(o.seed, n, 'messages', joinSpanMs));
  }
  for (const n of fullSizes) {
    log(`cold start, real links, N=${n}`);
    colds.push(await cold(o.seed, n, 'real links', joinSpanMs));
  }
  const warms: WarmResult[] = [];
  for (const n of warmSizes) {
    // Flooding costs N² deliveries per renewal period: the largest networks get shorter windows.
    const windowMs = (o.quick ? 5 : n >= 10000 ? 1 : n >= 3000 ? 5 : 20) * 60_000;
    log(`steady state, N=${n}, window ${windowMs / 60_000} min`);
    warms.push(await warm(o.seed, n, windowMs, n >= 10 ? 3 : 1, log));
  }
  const coldTable: Table = {
    title: 'Cold start: N relays join over 10 minutes, each through two running relays',
    columns: [
      'N',
      'links',
      'all views complete after last join (s)',
      'joiner holds directory, median (s)',
      'p95 (s)',
      'new descriptor reaches all, median (s)',
      'p95 (s)',
      'gossip sent per relay during joins (KiB)',
    ],
    rows: colds.map((c) => [
      c.n,
      c.tier,
      sec(c.convergedAfterLastJoinMs),
      c.tier === 'messages' ? sec(c.joinerFullMedianMs) : '–',
      c.tier === 'messages' ? sec(c.joinerFullP95Ms) : '–',
      c.tier === 'messages' ? sec(c.spreadMedianMs) : '–',
      c.tier === 'messages' ? sec(c.spreadP95Ms) : '–',
      c.joinBytesPerRelay / 1024,
    ]),
  };
  const warmTable: Table = {
    title: 'Steady state: gossip cost per relay and propagation of renewed descriptors',
    columns: [
      'N',
      'window (min)',
      'gossip payload sent (KiB/relay/min)',
      'link bytes sent (KiB/relay/min)',
      'renewals',
      'renewal reaches all, median (s)',
      'p99 (s)',
      'max (s)',
      'joins',
      'joiner holds directory, median (s)',
    ],
    rows: warms.map((r) => [
      r.n,
      r.windowMin,
      r.payloadPerRelayMin / 1024,
      r.wirePerRelayMin / 1024,
      r.renewals,
      sec(r.renewalSpreadMedianMs),
      sec(r.renewalSpreadP99Ms),
      sec(r.renewalSpreadMaxMs),
      r.joins,
      sec(r.joinFullMedianMs),
    ]),
  };
  const types = [...new Set(warms.flatMap((r) => Object.keys(r.byType)))].sort();
  const typeTable: Table = {
    title: 'Steady state: gossip payload by message type (KiB/relay/min)',
    columns: ['N', ...types],
    rows: warms.map((r) => [r.n, ...types.map((t) => (r.byType[t]?.payloadPerRelayMin ?? 0) / 1024)]),
  };
  const plots: Record<string, string> = {
    'convergence-time.svg': lineChart({
      title: 'Directory convergence versus N',
      xLabel: 'relays (N)',
      yLabel: 'seconds',
      logX: true,
      logY: true,
      series: [
        {
          name: 'cold: all views complete',
          points: colds.filter((c) => c.tier === 'messages').map((c) => [c.n, Math.max(0.01, sec(c.convergedAfterLastJoinMs))]),
        },
        {
          name: 'cold, real links',
          points: colds.filter((c) => c.tier === 'real links').map((c) => [c.n, Math.max(0.01, sec(c.convergedAfterLastJoinMs))]),
          dashed: true,
        },
        { name: 'renewal reaches all (median)', points: warms.map((r) => [r.n, sec(r.renewalSpreadMedianMs)]) },
        { name: 'renewal reaches all (p99)', points: warms.map((r) => [r.n, sec(r.renewalSpreadP99Ms)]) },
        { name: 'joiner holds directory', points: warms.map((r) => [r.n, sec(r.joinFullMedianMs)]) },
      ],
    }),
    'gossip-cost.svg': lineChart({
      title: 'Gossip cost per relay versus N (steady state)',
      xLabel: 'relays (N)',
      yLabel: 'KiB per relay per minute (sent)',
      logX: true,
      logY: true,
      series: [
        { name: 'link bytes (frames)', points: warms.map((r) => [r.n, r.wirePerRelayMin / 1024]) },
        { name: 'gossip payload', points: warms.map((r) => [r.n, r.payloadPerRelayMin / 1024]) },
        ...types.map((t) => ({ name: t, points: warms.map((r) => [r.n, (r.byType[t]?.payloadPerRelayMin ?? 0) / 1024] as [number, number]), dashed: true })),
      ],
    }),
  };
  return {
    name: 'convergence',
    title: '(a) Directory convergence and gossip cost versus N',
    seed: o.seed,
    quick: o.quick,
    params: { coldSizes, fullSizes, warmSizes, joinSpanMs },
    tables: [coldTable, warmTable, typeTable],
    plots,
    notes: [],
  };
}
