/**
 * Reachability tests and capacity measurements at a directory authority (specs/directory.md §7.4,
 * specs/measurement.md): every relay in the authority's directory is dialled at the address its descriptor gives,
 * and the link handshake must prove its identity; the outcome goes into the relay's history, which flags are earned
 * from. Relays found up are measured in turn (relay/measurement.ts). Both run a few at a time, each relay once per
 * interval, oldest first.
 */
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import type { RelayHistory } from './authority-history.js';

export const TEST_CONCURRENCY = 8;
export const MEASURE_CONCURRENCY = 2;
/** A measurement counts for this many measurement intervals. */
export const MEASUREMENT_VALID_INTERVALS = 5;

export interface ReachabilityOptions {
  directory: DirectoryStore;
  history: RelayHistory;
  /** Dials and proves the identity; resolves with something to close. */
  prove: (d: Descriptor) => Promise<{ close(): void }>;
  /** Measures a relay's capacity (bytes/s); absent: this authority does not measure. */
  measure?: (d: Descriptor) => Promise<number>;
  testIntervalMs: number;
  measureIntervalMs: number;
  now: () => number;
  /** A measurement failed (`failures` in a row); the next is due in `retryMs`. */
  onMeasureFailed?: (d: Descriptor, failures: number, retryMs: number, err: unknown) => void;
}

export class ReachabilityTester {
  private readonly testing = new Set<string>();
  private readonly measuring = new Set<string>();
  /** Latest measurement per relay. */
  private readonly measured = new Map<string, { bw: number; at: number }>();
  /** When each relay's next measurement is due (absent: at once). */
  private readonly nextMeasure = new Map<string, number>();
  /** Failed measurements in a row per relay (specs/measurement.md §3: the retry doubles with each). */
  private readonly measureFailures = new Map<string, number>();
  /** When each relay's latest measurement started: the queue is in this order. */
  private readonly lastTry = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private stopped = false;

  constructor(private readonly o: ReachabilityOptions) {}

  start(): void {
    if (this.timer) return;
    const tick = Math.max(50, Math.min(5_000, Math.floor(this.o.testIntervalMs / 10)));
    this.timer = setInterval(() => this.tick(), tick);
    (this.timer as { unref?: () => void }).unref?.();
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** The measurement of a relay if recent enough (bytes/s), else 0. */
  measurementOf(fp: string): number {
    const m = this.measured.get(fp);
    if (!m || this.o.now() - m.at > MEASUREMENT_VALID_INTERVALS * this.o.measureIntervalMs) return 0;
    return m.bw;
  }

  get measuredCount(): number {
    let n = 0;
    for (const fp of this.measured.keys()) if (this.measurementOf(fp) > 0) n++;
    return n;
  }

  /** A relay's descriptor arrived and is held: test it soon (the first test starts its history). */
  tick(): void {
    if (this.stopped) return;
    const now = this.o.now();
    const due = this.o.directory
      .all()
      .filter((d) => !this.testing.has(d.fingerprint))
      .map((d) => ({ d, last: this.o.history.figures(d.fingerprint, now)?.lastTest ?? -Infinity }))
      .filter((x) => now - x.last >= this.o.testIntervalMs)
      .sort((a, b) => a.last - b.last);
    for (const { d } of due) {
      if (this.testing.size >= TEST_CONCURRENCY) break;
      this.test(d);
    }
    if (!this.o.measure) return;
    this.prune();
    const toMeasure = this.o.directory
      .all()
      .filter((d) => !this.measuring.has(d.fingerprint) && this.o.history.figures(d.fingerprint, now)?.up)
      .filter((d) => now >= (this.nextMeasure.get(d.fingerprint) ?? -Infinity))
      // Oldest attempt first, failed or not: a relay that fails its measurements does not go ahead of the others.
      .map((d) => ({ d, last: this.lastTry.get(d.fingerprint) ?? -Infinity }))
      .sort((a, b) => a.last - b.last);
    for (const { d } of toMeasure) {
      if (this.measuring.size >= MEASURE_CONCURRENCY) break;
      this.measureOne(d);
    }
  }

  private test(d: Descriptor): void {
    this.testing.add(d.fingerprint);
    this.o.prove(d).then(
      (link) => {
        link.close();
        this.done(d, true);
      },
      () => this.done(d, false),
    );
  }

  private done(d: Descriptor, up: boolean): void {
    this.testing.delete(d.fingerprint);
    if (this.stopped) return;
    this.o.history.observe(d.fingerprint, up, this.o.now());
  }

  private measureOne(d: Descriptor): void {
    const fp = d.fingerprint;
    this.measuring.add(fp);
    this.lastTry.set(fp, this.o.now());
    // Until this one ends nothing else is started for the relay; a full interval if it succeeds, less if it fails.
    this.nextMeasure.set(fp, this.o.now() + this.o.measureIntervalMs);
    const ended = (bw: number, err?: unknown): void => {
      this.measuring.delete(fp);
      if (this.stopped) return;
      const now = this.o.now();
      if (bw > 0) {
        this.measured.set(fp, { bw, at: now });
        this.measureFailures.delete(fp);
        this.nextMeasure.set(fp, now + this.o.measureIntervalMs);
        return;
      }
      const failures = (this.measureFailures.get(fp) ?? 0) + 1;
      this.measureFailures.set(fp, failures);
      const wait = Math.min(this.o.measureIntervalMs, this.o.testIntervalMs * 2 ** Math.min(failures - 1, 30));
      this.nextMeasure.set(fp, now + wait);
      this.o.onMeasureFailed?.(d, failures, wait, err);
    };
    this.o.measure!(d).then(
      (bw) => ended(bw),
      (e: unknown) => ended(0, e),
    );
  }

  /** Forgets the schedule of relays no longer in the directory (the tables hold one entry per listed relay). */
  private prune(): void {
    if (this.nextMeasure.size <= this.o.directory.all().length) return;
    const live = new Set(this.o.directory.all().map((d) => d.fingerprint));
    for (const fp of this.nextMeasure.keys()) if (!live.has(fp)) this.nextMeasure.delete(fp);
    for (const fp of this.measureFailures.keys()) if (!live.has(fp)) this.measureFailures.delete(fp);
    for (const fp of this.lastTry.keys()) if (!live.has(fp)) this.lastTry.delete(fp);
  }
}
