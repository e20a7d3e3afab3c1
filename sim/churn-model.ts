/**
 * Content under churn: a model of the repair policy of relay/replication.ts and specs/content.md §6.2, run over
 * hours of virtual time with hundreds of relays and thousands of blocks. It keeps each rule of the real code:
 *
 * - Placement: a block's holders are the k store relays nearest its routing key among the relays in the directory
 *   (protocol/placement.ts, via the equivalent sim/placement-index.ts).
 * - The directory: a relay that leaves says nothing; it stays listed until its last descriptor expires
 *   (descriptor_lifetime after its last renewal, renewals every descriptor_renew). A relay that joins is listed at
 *   once (a flood takes under a second, sim/experiments/convergence.ts, against hours here). Every relay sees the
 *   same directory.
 * - The placement generation changes whenever the listed set does (a join or an expiry).
 * - Every repair_interval each relay makes a pass, unless its previous pass is still running: up to `batch` (32)
 *   blocks not checked under the current generation, in routing-key order (the store's primary-key order, which
 *   its LIMIT query follows); for each, every other holder gets a head-only FETCH and, lacking the block, a STORE.
 *   A transfer to a holder that is listed but gone fails after the dial deadline (10 s), and leaves the block
 *   unchecked, to be tried again next pass. A block whose transfers all worked is marked with the generation read
 *   at the start of the pass.
 * - Transfers cost time on the relay making them: a link and a one-hop circuit the first time (three round trips,
 *   kept afterwards), a round trip per head-only FETCH, a round trip plus 32 KiB at the path's bandwidth per STORE;
 *   the pass occupies the relay for their sum. A pass's transfers take effect when the pass starts (they complete
 *   within its duration, seconds, or minutes with dead holders, against lifetimes of hours).
 * - A relay keeps every copy it has (replica or cache; quotas are never reached here) and pushes cache copies to
 *   the holders like replicas. Clients do not read during the run, so there is no repair on fetch (§6.3) and no
 *   spreading of popular blocks (§6.4): the relays' own repair alone is measured.
 *
 * Churn: relays leave after exponential lifetimes (rate `churnPerHour`) and as many new relays join, so N stays
 * constant. Files are 32 data blocks and 16 Reed-Solomon parity blocks (protocol/file-codec.ts: a segment of k
 * data blocks gets ceil(k/2) parity blocks, any k of them rebuild it) plus a root block.
 *
 * Departures: as built, the other holders of a departed relay's items notice it within about four passes (a first
 * failed probe, then three repair intervals of grace: relay/replication.ts) and place without it from then on; the
 * model drops it from placement at that moment, or when its last descriptor expires if that comes first. The
 * variant `expiry-only` learns of departures only from descriptor expiry (the policy before probing); the variant
 * `instant-removal` drops a relay the moment it leaves: what the policy would do if departures were known at once.
 */
import { positionOf } from '../protocol/placement.js';
import { EventQueue } from './event-queue.js';
import { PlacementIndex } from './placement-index.js';
import { draw, Rng, type Distribution } from './random.js';

export interface ChurnOptions {
  seed: number;
  relays: number;
  k: number;
  files: number;
  /** Fraction of relays leaving per hour (each relay's lifetime is exponential with mean 1 / churnPerHour hours). */
  churnPerHour: number;
  hours: number;
  variant?: 'as-built' | 'expiry-only' | 'instant-removal';
  dataPerFile?: number;
  parityPerFile?: number;
  descriptorLifetimeMs?: number;
  descriptorRenewMs?: number;
  repairIntervalMs?: number;
  batch?: number;
  /** A pass goes on taking batches until this much time is spent (0: one batch per pass, the policy before). */
  budgetMs?: number;
  /** Items checked at once. */
  parallel?: number;
  deadDialMs?: number;
  latencyMs?: Distribution;
  bandwidth?: Distribution;
  sampleEveryMs?: number;
}

export interface ChurnSample {
  hour: number;
  /** Blocks with at least one live copy anywhere. */
  durable: number;
  /** Blocks a client finds: some current holder (by the directory) is up and has it. */
  retrievable: number;
  /** Files retrievable with parity (root and 32 of the 48 segment blocks). */
  filesWithParity: number;
  /** Files retrievable if they had no parity blocks (root and all 32 data blocks). */
  filesWithoutParity: number;
}

export interface ChurnResult {
  options: Required<Omit<ChurnOptions, 'latencyMs' | 'bandwidth'>>;
  blocks: number;
  samples: ChurnSample[];
  lostBlocks: number;
  departures: number;
  /** Repair STOREs per relay per hour. */
  storesPerRelayHour: number;
  /** Passes that met a listed but departed holder, as a fraction of passes that checked anything. */
  passesBlocked: number;
  /** Mean length of a pass that checked anything (s). */
  meanPassSeconds: number;
}

const BLOCK_BYTES = 32 * 1024;
const HOUR = 3_600_000;

class ModelRelay {
  alive = true;
  listed = true;
  busyUntil = 0;
  /** Block ids held, in routing-key order. */
  readonly items: number[] = [];
  readonly has = new Set<number>();
  /** Generation each held block was last checked under. */
  readonly checked = new Map<number, number>();
  /** Holders this relay has a link and circuit to. */
  readonly circuits = new Set<ModelRelay>();
  constructor(
    readonly id: number,
    readonly pos: Uint8Array,
    readonly joinedAt: number,
    readonly renewPhase: number,
    readonly bandwidth: number,
  ) {}
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export function runChurn(o: ChurnOptions): ChurnResult {
  const opt = {
    variant: 'as-built' as 'as-built' | 'expiry-only' | 'instant-removal',
    dataPerFile: 32,
    parityPerFile: 16,
    descriptorLifetimeMs: 3 * HOUR,
    descriptorRenewMs: HOUR,
    repairIntervalMs: 60_000,
    batch: 32,
    budgetMs: 45_000,
    parallel: 4,
    deadDialMs: 10_000,
    sampleEveryMs: 10 * 60_000,
    ...o,
  };
  const latency: Distribution = o.latencyMs ?? { kind: 'lognormal', median: 35, sigma: 0.6, min: 2, max: 400 };
  const bandwidth: Distribution = o.bandwidth ?? { kind: 'lognormal', median: 12_500_000, sigma: 1, min: 250_000, max: 1_250_000_000 };
  const rng = new Rng(o.seed);
  const q = new EventQueue();
  const index = new PlacementIndex<ModelRelay>();
  let gen = 0;
  let nextId = 0;
  const relays = new Set<ModelRelay>();
  // Blocks: routing keys (uniform: the hash of an encrypted block) and the relays holding a copy.
  const perFile = 1 + opt.dataPerFile + opt.parityPerFile;
  const blockCount = o.files * perFile;
  const rk: Uint8Array[] = [];
  const copies: Set<ModelRelay>[] = [];
  for (let b = 0; b < blockCount; b++) {
    rk.push(rng.bytes(32));
    copies.push(new Set());
  }
  let lost = 0;
  let departures = 0;
  let stores = 0;
  let passes = 0;
  let blockedPasses = 0;
  let passTime = 0;

  const rtt = (): number => 2 * draw(latency, rng);

  const addCopy = (r: ModelRelay, b: number): void => {
    if (r.has.has(b)) return;
    r.has.add(b);
    copies[b]!.add(r);
    // Keep items in routing-key order (the store's primary key).
    const items = r.items;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(rk[items[mid]!]!, rk[b]!) < 0) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, b);
  };

  const holders = (b: number): ModelRelay[] => index.nearest(rk[b]!, opt.k);

  const pass = (r: ModelRelay): void => {
    if (!r.alive) return;
    q.at(q.now + opt.repairIntervalMs, () => pass(r));
    if (q.now < r.busyUntil) return; // the previous pass is still running: tick() returns at once
    const g = gen;
    let cost = 0;
    let checkedAny = false;
    let blocked = false;
    let taken = 0;
    for (const b of [...r.items]) {
      // As relay/replication.ts: batches of `batch` keys, `parallel` items at a time, until the pass's budget is spent.
      if (taken >= opt.batch && (opt.budgetMs <= 0 || cost / opt.parallel >= opt.budgetMs)) break;
      if (r.checked.get(b) === g) continue;
      taken++;
      checkedAny = true;
      let ok = true;
      for (const h of holders(b)) {
        if (h === r) continue;
        if (!h.alive) {
          cost += opt.deadDialMs;
          ok = false;
          blocked = true;
          r.circuits.delete(h);
          continue;
        }
        if (!r.circuits.has(h)) {
          cost += 3 * rtt();
          r.circuits.add(h);
        }
        cost += rtt();
        if (!h.has.has(b)) {
          cost += rtt() + (BLOCK_BYTES * 1000) / Math.min(r.bandwidth, h.bandwidth);
          addCopy(h, b);
          stores++;
        }
      }
      if (ok) r.checked.set(b, g);
    }
    if (checkedAny) {
      passes++;
      passTime += cost / opt.parallel;
      if (blocked) blockedPasses++;
    }
    cost /= opt.parallel;
    r.busyUntil = q.now + cost;
  };

  const unlist = (r: ModelRelay): void => {
    if (!r.listed) return;
    r.listed = false;
    index.remove(r.pos, r);
    gen++;
  };

  const join = (at: number, initial: boolean): ModelRelay => {
    const id = rng.bytes(32);
    const r = new ModelRelay(nextId++, positionOf(id), at, initial ? rng.next() * opt.descriptorRenewMs : at, draw(bandwidth, rng));
    relays.add(r);
    index.add(r.pos, r);
    gen++;
    const life = rng.exponential(HOUR / o.churnPerHour);
    q.at(at + life, () => depart(r));
    q.at(at + (initial ? rng.next() : 1) * opt.repairIntervalMs, () => pass(r));
    return r;
  };

  const depart = (r: ModelRelay): void => {
    r.alive = false;
    departures++;
    relays.delete(r);
    for (const b of r.has) {
      const c = copies[b]!;
      c.delete(r);
      if (c.size === 0) lost++;
    }
    if (opt.variant === 'instant-removal') unlist(r);
    else {
      // Listed until the last descriptor it published expires.
      const since = (q.now - r.renewPhase) % opt.descriptorRenewMs;
      const lastPub = q.now - (since < 0 ? since + opt.descriptorRenewMs : since);
      const expiry = lastPub + opt.descriptorLifetimeMs;
      const noticed = opt.variant === 'as-built' ? q.now + (rng.next() + 3) * opt.repairIntervalMs : Number.POSITIVE_INFINITY;
      q.at(Math.max(q.now, Math.min(expiry, noticed)), () => unlist(r));
    }
    join(q.now, false);
  };

  for (let i = 0; i < o.relays; i++) join(0, true);
  // Every block starts at its k holders, as a client's put stores it.
  for (let b = 0; b < blockCount; b++) for (const h of holders(b)) addCopy(h, b);

  const samples: ChurnSample[] = [];
  const sample = (): void => {
    const retrievable = new Uint8Array(blockCount);
    let durable = 0;
    let found = 0;
    for (let b = 0; b < blockCount; b++) {
      if (copies[b]!.size > 0) durable++;
      if (holders(b).some((h) => h.alive && h.has.has(b))) {
        retrievable[b] = 1;
        found++;
      }
    }
    let withParity = 0;
    let withoutParity = 0;
    for (let f = 0; f < o.files; f++) {
      const base = f * perFile;
      if (!retrievable[base]) continue;
      let data = 0;
      let all = 0;
      for (let i = 1; i < perFile; i++) {
        if (!retrievable[base + i]) continue;
        all++;
        if (i <= opt.dataPerFile) data++;
      }
      if (all >= opt.dataPerFile) withParity++;
      if (data === opt.dataPerFile) withoutParity++;
    }
    samples.push({
      hour: q.now / HOUR,
      durable: durable / blockCount,
      retrievable: found / blockCount,
      filesWithParity: withParity / o.files,
      filesWithoutParity: withoutParity / o.files,
    });
  };
  sample();
  for (let t = opt.sampleEveryMs; t <= o.hours * HOUR + 1; t += opt.sampleEveryMs) {
    q.runUntil(t);
    sample();
  }
  const { latencyMs: _l, bandwidth: _b, ...rest } = opt as typeof opt & { latencyMs?: unknown; bandwidth?: unknown };
  return {
    options: rest as ChurnResult['options'],
    blocks: blockCount,
    samples,
    lostBlocks: lost,
    departures,
    storesPerRelayHour: stores / o.relays / o.hours,
    passesBlocked: passes ? blockedPasses / passes : 0,
    meanPassSeconds: passes ? passTime / passes / 1000 : 0,
  };
}
