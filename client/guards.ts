/**
 * Entry guards (specs/path.md §3), after Tor's guard-spec and proposal 291: a client enters the network through a
 * few relays it keeps for months, so a malicious relay becomes its entry only if it was sampled, rather than on a
 * fresh draw for every circuit.
 *
 * - A bounded, persistent *sample* of at most SAMPLE_MAX guards, each drawn from the relays the consensus flags
 *   Guard, weighted by their guard-position weight, and kept for a lifetime of 180 to 270 days.
 * - The first N_PRIMARY guards that hold a slot are the *primary* guards: confirmed guards (those a circuit was
 *   built through) first, in the order they were confirmed, then the others in the order they were sampled.
 *   Circuits use the first usable primary guard; the others only when it fails or is unusable for a path.
 * - A guard that leaves the consensus keeps its slot for GRACE_MS before another is sampled in its place, and
 *   stays in the sample (used again if it returns) until it has been unlisted for REMOVE_UNLISTED_AFTER_MS.
 * - A guard whose link cannot be opened is skipped for GUARD_RETRY_MS.
 * - Path bias (client/path-bias.ts): a guard whose circuits fail far too often is reported, and with the reaction
 *   "avoid" disabled.
 *
 * Storage is injected: a JSON file in Node, memory or IndexedDB in browsers. Records of the older format (no
 * `confirmedAt`) load as unconfirmed guards.
 */
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { Flag } from '../protocol/flags.js';
import type { SelectionWeights } from '../protocol/view.js';
import { levelOf, recordAttempt, type PathBiasCounts, type PathBiasLevel, type PathBiasReaction } from './path-bias.js';
import { weightedPick } from './path.js';

export interface GuardRecord {
  fingerprint: string;
  /** When it was sampled. */
  addedAt: number;
  /** When it leaves the sample whatever happens. */
  expiresAt: number;
  /** When a circuit was first built through it (null: not yet). */
  confirmedAt?: number | null;
  /** Since when it has been missing from the directory (or lost the Guard flag); null while listed. */
  unlistedSince?: number | null;
  failedAt: number | null;
  /** Path-bias counts. */
  pb?: PathBiasCounts;
  /** Disabled by path bias: never used again. */
  disabledAt?: number | null;
}

export interface GuardStorage {
  load(): Promise<GuardRecord[] | null>;
  save(records: GuardRecord[]): Promise<void>;
}

const DAY = 24 * 3600 * 1000;
/** Primary guards (proposal 291: two). */
export const N_PRIMARY = 2;
/** Guards sampled at most (guard-spec bounds its sample the same way). */
export const SAMPLE_MAX = 20;
export const GUARD_LIFETIME_MIN_DAYS = 180;
export const GUARD_LIFETIME_SPREAD_DAYS = 90;
/** An unlisted primary guard keeps its slot this long before another is sampled. */
export const GRACE_MS = DAY;
/** An unlisted guard leaves the sample after this long. */
export const REMOVE_UNLISTED_AFTER_MS = 20 * DAY;
export const GUARD_RETRY_MS = 60_000;

/** The directory a refresh reads: the relays, and their flags and weights (protocol/view.ts). */
export interface GuardView {
  readonly relays: readonly Descriptor[];
  readonly weights?: SelectionWeights;
}

export interface PathBiasEvent {
  readonly fingerprint: string;
  readonly level: Exclude<PathBiasLevel, 'ok'>;
  readonly attempts: number;
  readonly successes: number;
  /** The guard was disabled (reaction "avoid", level "extreme"). */
  readonly disabled: boolean;
}

export interface GuardSetOptions {
  /** What to do about a guard at the extreme path-bias level (default "avoid"). */
  pathBiasReaction?: PathBiasReaction;
  /** Called when a guard's path-bias level worsens. */
  onPathBias?: (e: PathBiasEvent) => void;
}

const NO_WEIGHTS = {};
const eligibleCache = new WeakMap<readonly Descriptor[], WeakMap<object, Map<string, Descriptor>>>();

export class GuardSet {
  private records: GuardRecord[] = [];

  constructor(
    private readonly storage: GuardStorage | null,
    /** Uniform in [0, 1): the CSPRNG unless a seeded source is given (simulator, tests). */
    private readonly random: () => number = () => crypto().uniform(),
    private readonly options: GuardSetOptions = {},
  ) {}

  async load(): Promise<void> {
    const loaded = (await this.storage?.load()) ?? [];
    this.records = loaded.map((r) => ({ ...r, confirmedAt: r.confirmedAt ?? null, unlistedSince: r.unlistedSince ?? null, disabledAt: r.disabledAt ?? null }));
  }

  private async save(): Promise<void> {
    await this.storage?.save(this.records);
  }

  get all(): readonly GuardRecord[] {
    return this.records;
  }

  /** Records in preference order: confirmed (by confirmation), then unconfirmed (by sampling). Disabled ones last. */
  private ordered(): GuardRecord[] {
    const live = this.records.filter((r) => !r.disabledAt);
    const confirmed = live.filter((r) => r.confirmedAt != null).sort((a, b) => a.confirmedAt! - b.confirmedAt!);
    const rest = live.filter((r) => r.confirmedAt == null).sort((a, b) => a.addedAt - b.addedAt);
    return [...confirmed, ...rest];
  }

  private eligible(view: GuardView): Map<string, Descriptor> {
    // Views are immutable: the same relays with the same weights give the same guards (simulations share them).
    const byWeights = eligibleCache.get(view.relays);
    const key = view.weights ?? NO_WEIGHTS;
    const have = byWeights?.get(key);
    if (have) return have;
    const flagged = view.weights?.flagged ?? false;
    const out = new Map<string, Descriptor>();
    for (const d of view.relays) if (!flagged || (view.weights!.flags(d) & Flag.GUARD) !== 0) out.set(d.fingerprint, d);
    if (byWeights) byWeights.set(key, out);
    else eligibleCache.set(view.relays, new WeakMap([[key, out]]));
    return out;
  }

  /**
   * Updates the sample against the directory (at start and after every refresh): marks guards listed or not, drops
   * expired ones and those unlisted too long, and samples new guards until N_PRIMARY hold a slot. Returns the usable
   * guards in order.
   */
  async refresh(directory: readonly Descriptor[] | GuardView, now: number): Promise<Descriptor[]> {
    const view: GuardView = Array.isArray(directory) ? { relays: directory } : (directory as GuardView);
    const eligible = this.eligible(view);
    let changed = false;
    for (const r of this.records) {
      const listed = eligible.has(r.fingerprint);
      if (listed && r.unlistedSince != null) {
        r.unlistedSince = null;
        changed = true;
      } else if (!listed && r.unlistedSince == null) {
        r.unlistedSince = now;
        changed = true;
      }
    }
    const before = this.records.length;
    this.records = this.records.filter((r) => r.expiresAt > now && (r.unlistedSince == null || now - r.unlistedSince < REMOVE_UNLISTED_AFTER_MS));
    if (this.records.length !== before) changed = true;
    const holdsSlot = (r: GuardRecord): boolean => r.unlistedSince == null || now - r.unlistedSince < GRACE_MS;
    while (this.ordered().filter(holdsSlot).length < N_PRIMARY) {
      if (this.records.length >= SAMPLE_MAX) {
        if (!this.makeRoom()) break;
      }
      const taken = new Set(this.records.map((r) => r.fingerprint));
      const pick = weightedPick(
        [...eligible.values()].filter((d) => !taken.has(d.fingerprint)),
        this.random,
        'guard',
        view.weights,
      );
      if (!pick) break;
      this.records.push(this.newRecord(pick.fingerprint, now));
      changed = true;
    }
    if (changed) await this.save();
    return this.usable(view, now);
  }

  /**
   * Samples one more guard, among the listed Guard relays not in the sample for which `fits` holds, when the last
   * hop imposed on a path (a content holder, a rendezvous point) is the only usable guard (specs/path.md §3). The sample never passes SAMPLE_MAX: room is made as RefreshGuards makes it
   * (an unlisted guard, else a disabled one), and with none to drop nothing is added. Returns the guard added.
   */
  async sampleFitting(directory: readonly Descriptor[] | GuardView, now: number, fits: (d: Descriptor) => boolean): Promise<Descriptor | null> {
    const view: GuardView = Array.isArray(directory) ? { relays: directory } : (directory as GuardView);
    const eligible = this.eligible(view);
    const taken = new Set(this.records.map((r) => r.fingerprint));
    const pick = weightedPick(
      [...eligible.values()].filter((d) => !taken.has(d.fingerprint) && fits(d)),
      this.random,
      'guard',
      view.weights,
    );
    if (!pick) return null;
    if (this.records.length >= SAMPLE_MAX) {
      if (!this.makeRoom()) return null;
    }
    this.records.push(this.newRecord(pick.fingerprint, now));
    await this.save();
    return pick;
  }

  /** Drops the guard unlisted longest, else a disabled one, to make room in a full sample; false when there is neither. */
  private makeRoom(): boolean {
    const out = [...this.records]
      .filter((r) => r.unlistedSince != null || r.disabledAt)
      .sort((a, b) => (a.unlistedSince ?? a.disabledAt ?? 0) - (b.unlistedSince ?? b.disabledAt ?? 0))[0];
    if (!out) return false;
    this.records.splice(this.records.indexOf(out), 1);
    return true;
  }

  private newRecord(fingerprint: string, now: number): GuardRecord {
    const lifetime = (GUARD_LIFETIME_MIN_DAYS + Math.floor(this.random() * GUARD_LIFETIME_SPREAD_DAYS)) * DAY;
    return { fingerprint, addedAt: now, expiresAt: now + lifetime, confirmedAt: null, unlistedSince: null, failedAt: null, disabledAt: null };
  }

  /**
   * The guards to use, in order: the primary guards that are listed and did not fail in the last GUARD_RETRY_MS,
   * then the other listed guards of the sample (used only when no primary guard fits a path).
   */
  usable(directory: readonly Descriptor[] | GuardView, now: number): Descriptor[] {
    const view: GuardView = Array.isArray(directory) ? { relays: directory } : (directory as GuardView);
    const eligible = this.eligible(view);
    const out: Descriptor[] = [];
    for (const r of this.ordered()) {
      const d = eligible.get(r.fingerprint);
      if (d && (r.failedAt === null || now - r.failedAt > GUARD_RETRY_MS)) out.push(d);
    }
    return out;
  }

  async markFailed(fingerprint: string, now: number): Promise<void> {
    const r = this.records.find((x) => x.fingerprint === fingerprint);
    if (r) {
      r.failedAt = now;
      await this.save();
    }
  }

  /** A circuit was built through the guard: clears a failure and confirms it. */
  async markSucceeded(fingerprint: string, now = Date.now()): Promise<void> {
    const r = this.records.find((x) => x.fingerprint === fingerprint);
    if (r && (r.failedAt !== null || r.confirmedAt == null)) {
      r.failedAt = null;
      r.confirmedAt ??= now;
      await this.save();
    }
  }

  /**
   * Path bias: counts a build attempted through `fingerprint` (its link was open) that succeeded or failed. Reports
   * a worsened level; at the extreme level with reaction "avoid", disables the guard.
   */
  async recordBuild(fingerprint: string, succeeded: boolean, now: number): Promise<PathBiasLevel> {
    const r = this.records.find((x) => x.fingerprint === fingerprint);
    if (!r || r.disabledAt) return 'ok';
    r.pb ??= { attempts: 0, successes: 0 };
    const before = levelOf(r.pb);
    const level = recordAttempt(r.pb, succeeded);
    const rank = { ok: 0, notice: 1, warn: 2, extreme: 3 } as const;
    if (level !== 'ok' && rank[level] > rank[before]) {
      const disable = level === 'extreme' && (this.options.pathBiasReaction ?? 'avoid') === 'avoid';
      if (disable) r.disabledAt = now;
      this.options.onPathBias?.({ fingerprint, level, attempts: r.pb.attempts, successes: r.pb.successes, disabled: disable });
      await this.save();
    } else if (r.pb.attempts % 10 === 0) await this.save();
    return level;
  }
}
