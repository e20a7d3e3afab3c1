/**
 * Persistent entry guards (specs/path.md §3), in the spirit of Tor's guard-spec: a client keeps a few entry relays
 * for months, so a malicious relay gets to be its entry only if it was chosen once, not on every circuit.
 *
 * - Sampled with probability proportional to bandwidth; kept `lifetime` (randomised between 60 and 120 days).
 * - A guard that fails is marked unreachable and retried after a back-off; the next guard serves meanwhile.
 * - A guard that leaves the directory is kept (it may come back) until its lifetime ends.
 * Storage is injected: a JSON file in Node, memory or IndexedDB in browsers.
 */
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { weightedPick } from './path.js';

export interface GuardRecord {
  fingerprint: string;
  addedAt: number;
  expiresAt: number;
  failedAt: number | null;
}

export interface GuardStorage {
  load(): Promise<GuardRecord[] | null>;
  save(records: GuardRecord[]): Promise<void>;
}

const DAY = 24 * 3600 * 1000;
export const GUARD_COUNT = 3;
export const GUARD_RETRY_MS = 60_000;

export class GuardSet {
  private records: GuardRecord[] = [];

  constructor(
    private readonly storage: GuardStorage | null,
    /** Uniform in [0, 1): the CSPRNG unless a seeded source is given (simulator, tests). */
    private readonly random: () => number = () => crypto().uniform(),
  ) {}

  async load(): Promise<void> {
    this.records = (await this.storage?.load()) ?? [];
  }

  private async save(): Promise<void> {
    await this.storage?.save(this.records);
  }

  get all(): readonly GuardRecord[] {
    return this.records;
  }

  /**
   * Drops expired guards and samples new ones until GUARD_COUNT are listed. Returns the usable guards in order
   * (present in the directory and not failed recently).
   */
  async refresh(directory: readonly Descriptor[], now: number): Promise<Descriptor[]> {
    const before = this.records.length;
    this.records = this.records.filter((r) => r.expiresAt > now);
    let changed = this.records.length !== before;
    const byFp = new Map(directory.map((d) => [d.fingerprint, d]));
    const present = (): number => this.records.filter((r) => byFp.has(r.fingerprint)).length;
    while (present() < GUARD_COUNT) {
      const taken = new Set(this.records.map((r) => r.fingerprint));
      const pick = weightedPick(
        directory.filter((d) => !taken.has(d.fingerprint)),
        this.random,
      );
      if (!pick) break;
      const lifetime = (60 + Math.floor(this.random() * 60)) * DAY;
      this.records.push({ fingerprint: pick.fingerprint, addedAt: now, expiresAt: now + lifetime, failedAt: null });
      changed = true;
    }
    if (changed) await this.save();
    return this.usable(directory, now);
  }

  usable(directory: readonly Descriptor[], now: number): Descriptor[] {
    const byFp = new Map(directory.map((d) => [d.fingerprint, d]));
    const out: Descriptor[] = [];
    for (const r of this.records) {
      const d = byFp.get(r.fingerprint);
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

  async markSucceeded(fingerprint: string): Promise<void> {
    const r = this.records.find((x) => x.fingerprint === fingerprint);
    if (r && r.failedAt !== null) {
      r.failedAt = null;
      await this.save();
    }
  }
}
