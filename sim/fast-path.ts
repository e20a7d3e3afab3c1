/**
 * Guard sampling and path selection for tens of thousands of leaf clients: the same choices as GuardSet.refresh
 * (client/guards.ts) and choosePath (client/path.ts) make, from the same random numbers, in O(log N) per pick
 * instead of O(N).
 *
 * The real functions filter and scan the whole directory for every pick: 20 to 40 ms per client at 10,000 relays,
 * over half an hour for 50,000 clients. Here the directory's bandwidth weights are summed once, and each pick finds
 * the first relay whose running total passes random() × total by binary search, skipping excluded relays by
 * correcting the totals. Weights are integers, so every total is exact and a pick lands on the relay the linear scan
 * would. Experiments check the equivalence on their first clients (same random stream into both, identical guards
 * and paths required) and test/sim/stand-ins.test.ts checks it too.
 *
 * Scope: three-hop paths, directories without declared families, and the /16 rule off (the simulator's large runs
 * turn it off: its cost is reported instead).
 */
import { GUARD_LIFETIME_MIN_DAYS, GUARD_LIFETIME_SPREAD_DAYS, N_PRIMARY, type GuardRecord } from '../client/guards.js';
import { allowsExit } from '../client/path.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';
import { AlliumError } from '../protocol/errors.js';

const DAY = 24 * 3600 * 1000;

/** Weighted picks over a fixed list, with a few entries excluded per pick. */
class WeightedList {
  /** prefix[j] = total weight of entries 0..j. */
  private readonly prefix: Float64Array;
  readonly total: number;
  private readonly position = new Map<Descriptor, number>();

  constructor(readonly list: readonly Descriptor[]) {
    this.prefix = new Float64Array(list.length);
    let acc = 0;
    list.forEach((d, i) => {
      acc += Math.max(1, d.bw);
      this.prefix[i] = acc;
      this.position.set(d, i);
    });
    this.total = acc;
  }

  weight(i: number): number {
    return this.prefix[i]! - (i > 0 ? this.prefix[i - 1]! : 0);
  }

  indexOf(d: Descriptor): number {
    return this.position.get(d) ?? -1;
  }

  /** weightedPick(list without `excluded` indices, random): the same entry, in O(log N). */
  pick(random: () => number, excluded: readonly number[] = []): Descriptor | undefined {
    const ex = [...new Set(excluded)].filter((i) => i >= 0).sort((a, b) => a - b);
    if (ex.length >= this.list.length) return undefined;
    let total = this.total;
    for (const i of ex) total -= this.weight(i);
    const r = random() * total;
    // The first j (not excluded) with prefix[j] − (excluded weight up to j) > r.
    const adjusted = (j: number): number => {
      let s = this.prefix[j]!;
      for (const i of ex) if (i <= j) s -= this.weight(i);
      return s;
    };
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (adjusted(mid) > r) hi = mid;
      else lo = mid + 1;
    }
    // An excluded entry has no width: move on to the next one that is not.
    let j = lo;
    while (ex.includes(j) && j < this.list.length - 1) j++;
    if (ex.includes(j)) {
      j = lo;
      while (ex.includes(j) && j > 0) j--;
    }
    return this.list[j];
  }
}

export class FastPaths {
  private readonly all: WeightedList;
  private readonly exits = new Map<number, WeightedList>();
  private readonly byFp = new Map<string, Descriptor>();

  constructor(readonly directory: readonly Descriptor[]) {
    for (const d of directory) {
      if (d.family.length > 0) throw new AlliumError('ERR_INTERNAL', 'FastPaths: directories with declared families are not supported');
      this.byFp.set(d.fingerprint, d);
    }
    this.all = new WeightedList(directory);
  }

  private exitList(port: number): WeightedList {
    let l = this.exits.get(port);
    if (!l) this.exits.set(port, (l = new WeightedList(this.directory.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, port)))));
    return l;
  }

  /** GuardSet.refresh() of an empty guard list (no consensus): the N_PRIMARY records it would create. */
  sampleGuards(random: () => number, now: number): GuardRecord[] {
    const records: GuardRecord[] = [];
    while (records.length < N_PRIMARY) {
      const taken = records.map((r) => this.all.indexOf(this.byFp.get(r.fingerprint)!));
      const pick = this.all.pick(random, taken);
      if (!pick) break;
      const lifetime = (GUARD_LIFETIME_MIN_DAYS + Math.floor(random() * GUARD_LIFETIME_SPREAD_DAYS)) * DAY;
      records.push({
        fingerprint: pick.fingerprint,
        addedAt: now,
        expiresAt: now + lifetime,
        confirmedAt: null,
        unlistedSince: null,
        failedAt: null,
        disabledAt: null,
      });
    }
    return records;
  }

  /** GuardSet.usable(): the records' relays present in the directory and not failed in the last minute. */
  usable(records: readonly GuardRecord[], now: number, retryMs = 60_000): Descriptor[] {
    const out: Descriptor[] = [];
    for (const r of records) {
      const d = this.byFp.get(r.fingerprint);
      if (d && (r.failedAt === null || now - r.failedAt > retryMs)) out.push(d);
    }
    return out;
  }

  /** choosePath(directory, { hops: 3, exitPort, guards, last, exclude, enforceDistinctSubnets: false }). */
  choose(o: { exitPort: number | null; guards: readonly Descriptor[]; last?: Descriptor; exclude?: ReadonlySet<string> }, random: () => number): Descriptor[] {
    const exclude = o.exclude ?? new Set<string>();
    const excludedAll = [...exclude].map((fp) => this.all.indexOf(this.byFp.get(fp)!)).filter((i) => i >= 0);
    const pickLast = (also: Descriptor | null): Descriptor | undefined => {
      if (o.exitPort === null) return this.all.pick(random, also ? [...excludedAll, this.all.indexOf(also)] : excludedAll);
      const ex = this.exitList(o.exitPort);
      const out = [...exclude].map((fp) => ex.indexOf(this.byFp.get(fp)!));
      if (also) out.push(ex.indexOf(also));
      return ex.pick(random, out);
    };
    const noExit = (): AlliumError => new AlliumError('ERR_ONION_PATH', o.exitPort === null ? 'directory is empty' : `no exit allows port ${o.exitPort}`);
    const guards = o.guards.filter((g) => !exclude.has(g.fingerprint));
    let last = o.last;
    let entry: Descriptor | undefined;
    if (guards.length > 0) {
      // choosePath: the first guard for which a last hop exists, the last hop among those compatible with it.
      for (const g of guards) {
        if (last) {
          if (g.fingerprint !== last.fingerprint) entry = g;
        } else {
          const x = pickLast(g);
          if (x) {
            entry = g;
            last = x;
          }
        }
        if (entry) break;
      }
      if (!entry) throw new AlliumError('ERR_ONION_PATH', 'no guard is compatible with the chosen last hop');
    } else {
      if (o.guards.length > 0) throw new AlliumError('ERR_ONION_PATH', 'every guard failed recently');
      last ??= pickLast(null);
      if (!last) throw noExit();
      entry = this.all.pick(random, [...excludedAll, this.all.indexOf(last)]);
    }
    if (!last) throw noExit();
    if (!entry) throw new AlliumError('ERR_ONION_PATH', 'no entry relay compatible with the last hop');
    const middle = this.all.pick(random, [...excludedAll, this.all.indexOf(entry), this.all.indexOf(last!)]);
    if (!middle) throw new AlliumError('ERR_ONION_PATH', 'not enough distinct relays for 3 hops');
    return [entry, middle, last];
  }
}
