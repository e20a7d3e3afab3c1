/**
 * Second-layer guards for endpoint circuits (specs/path.md §3.2), after Tor's proposal 333 (vanguards-lite): an
 * endpoint — which anyone with its address can make build a circuit to a relay of their choosing — takes the second
 * hop of every such circuit from a small set of relays it keeps for days, so introductions no longer hand an
 * adversary a fresh draw next to its guard.
 *
 * - L2_COUNT vanguards, each drawn by middle-position weight among the eligible relays (in the view; Fast and Stable
 *   with a consensus), not related (family, network) to another vanguard of the set nor to the client's guards.
 * - Each keeps its own lifetime of 1 + 11·max(U₁, U₂) days; one that expires or stops being eligible is replaced at
 *   the next refresh, with no grace period.
 * - The set is stored (a JSON file in Node, beside the guards) so that a restart does not draw a new one.
 *
 * What it does not do: the full vanguards design's third layer, and the vanguards add-on's bandwidth and
 * rendezvous-overuse checks. Choosing a vanguard for a path is choosePath's part (client/path.ts).
 */
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { Flag, hasFlag } from '../protocol/flags.js';
import { networkOf, sameFamily, weightedPick } from './path.js';
import type { GuardView } from './guards.js';

export interface VanguardRecord {
  fingerprint: string;
  /** When it was chosen. */
  addedAt: number;
  /** When it leaves the set. */
  expiresAt: number;
}

export interface VanguardStorage {
  load(): Promise<VanguardRecord[] | null>;
  save(records: VanguardRecord[]): Promise<void>;
}

const DAY = 24 * 3600 * 1000;
/** Vanguards kept (proposal 333: four). */
export const L2_COUNT = 4;
export const L2_LIFETIME_MIN_DAYS = 1;
export const L2_LIFETIME_MAX_DAYS = 12;
/**
 * Below this many relays in the directory endpoint circuits are ordinary ones (specs/path.md §3.2): a vanguard path
 * needs four distinct relays besides the guards' exclusions, and in so small a network the guard is one of a handful.
 */
export const VANGUARD_MIN_RELAYS = 2 * L2_COUNT;

export interface VanguardSetOptions {
  /** Keep vanguards of one network apart (default true; test networks on one address turn it off). */
  enforceDistinctSubnets?: boolean;
}

const NO_WEIGHTS = {};
const eligibleCache = new WeakMap<readonly Descriptor[], WeakMap<object, Map<string, Descriptor>>>();

function related(a: Descriptor, b: Descriptor, subnets: boolean): boolean {
  return a.fingerprint === b.fingerprint || sameFamily(a, b) || (subnets && networkOf(a) === networkOf(b));
}

export class VanguardSet {
  private records: VanguardRecord[] = [];

  constructor(
    private readonly storage: VanguardStorage | null,
    /** Uniform in [0, 1): the CSPRNG unless a seeded source is given (simulator, tests). */
    private readonly random: () => number = () => crypto().uniform(),
    private readonly options: VanguardSetOptions = {},
  ) {}

  async load(): Promise<void> {
    const loaded = (await this.storage?.load()) ?? [];
    this.records = loaded.filter(
      (r) => r && typeof r.fingerprint === 'string' && Number.isFinite(r.addedAt) && Number.isFinite(r.expiresAt) && r.expiresAt > r.addedAt,
    );
  }

  get all(): readonly VanguardRecord[] {
    return this.records;
  }

  /** Eligible vanguards: in the view and, with a consensus, Fast and Stable; of middle weight above 0. */
  private eligible(view: GuardView): Map<string, Descriptor> {
    // Views are immutable: the same relays with the same weights give the same answer (simulations share them).
    const byWeights = eligibleCache.get(view.relays);
    const key = view.weights ?? NO_WEIGHTS;
    const have = byWeights?.get(key);
    if (have) return have;
    const w = view.weights;
    const out = new Map<string, Descriptor>();
    for (const d of view.relays) {
      if (w?.flagged && !hasFlag(w.flags(d), Flag.FAST | Flag.STABLE)) continue;
      if (w && w.weight(d, 'middle') <= 0) continue;
      out.set(d.fingerprint, d);
    }
    if (byWeights) byWeights.set(key, out);
    else eligibleCache.set(view.relays, new WeakMap([[key, out]]));
    return out;
  }

  /** A lifetime of 1 + 11·max(U₁, U₂) days (proposal 333's distribution: 1 to 12 days, 8⅓ on average). */
  private lifetime(): number {
    const u = Math.max(this.random(), this.random());
    return Math.floor((L2_LIFETIME_MIN_DAYS + (L2_LIFETIME_MAX_DAYS - L2_LIFETIME_MIN_DAYS) * u) * DAY);
  }

  /**
   * Drops vanguards whose lifetime ended or that are no longer eligible, and draws new ones until L2_COUNT are held
   * (fewer when the directory has no more relays to give). `guards` are the client's entry relays: no vanguard is
   * related to one. Saves the set when it changed; returns the vanguards, in the view's descriptors.
   */
  async refresh(view: GuardView, now: number, guards: readonly Descriptor[]): Promise<Descriptor[]> {
    const eligible = this.eligible(view);
    const subnets = this.options.enforceDistinctSubnets ?? true;
    const before = this.records.length;
    this.records = this.records.filter((r) => r.expiresAt > now && eligible.has(r.fingerprint));
    let changed = this.records.length !== before;
    while (this.records.length < L2_COUNT) {
      const held = this.records.map((r) => eligible.get(r.fingerprint)!);
      const candidates = [...eligible.values()].filter((d) => !held.some((v) => related(v, d, subnets)) && !guards.some((g) => related(g, d, subnets)));
      const pick = weightedPick(candidates, this.random, 'middle', view.weights);
      if (!pick) break;
      this.records.push({ fingerprint: pick.fingerprint, addedAt: now, expiresAt: now + this.lifetime() });
      changed = true;
    }
    if (changed) await this.storage?.save(this.records);
    return this.records.map((r) => eligible.get(r.fingerprint)!);
  }

  /** The vanguards held, as the view's descriptors (those it no longer lists left out; refresh() replaces them). */
  current(view: GuardView): Descriptor[] {
    const eligible = this.eligible(view);
    return this.records.flatMap((r) => eligible.get(r.fingerprint) ?? []);
  }

  /** Whether refresh() would change the set now: a vanguard expired, left the view, or the set is short. */
  stale(view: GuardView, now: number): boolean {
    if (this.records.length < L2_COUNT) return true;
    const eligible = this.eligible(view);
    return this.records.some((r) => r.expiresAt <= now || !eligible.has(r.fingerprint));
  }
}
