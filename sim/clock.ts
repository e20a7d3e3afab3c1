/**
 * The simulator's virtual clock: a discrete-event scheduler that stands in for the process's timers and `Date`
 * while a simulation runs, so the unmodified relay and client code (which calls setTimeout, setInterval,
 * setImmediate and Date.now) runs in virtual time, as fast as the CPU allows and the same way on every run.
 *
 * - Events sit in a binary heap ordered by (time, sequence number): equal times run in the order they were
 *   scheduled, so a run depends on nothing but its inputs. (A linear scan for the next timer, as general-purpose
 *   fake timers do, costs O(timers) per event; with 10,000 relays that is hundreds of thousands.)
 * - After each event the promise jobs it queued run to completion (one real macrotask turn), as they would after a
 *   timer callback in Node, before the next event. Events marked `sync` — message deliveries between relays whose
 *   handlers are synchronous — skip that turn; timers they create inherit the mark. The turn is taken anyway at
 *   least every SYNC_BURST events, so deferred promise jobs run in a bounded amount of virtual time.
 * - Delays are kept exact, fractions of a millisecond included (Node rounds them to whole milliseconds and lifts 0
 *   to 1); `Date.now()` returns whole milliseconds, as it does in Node, and `performance.now()` the exact virtual
 *   time. Measurements of real CPU time in the simulator use process.hrtime, which is left alone.
 */
import { EventHeap } from './heap.js';
import { setLinkFlushScheduler } from '../net/link.js';

type Callback = (...args: unknown[]) => void;

export interface SimEvent {
  at: number;
  seq: number;
  fn: Callback;
  args: unknown[];
  /** Repeat period for setInterval; 0 for one-shot events. */
  interval: number;
  /** The delay asked for (refresh() restarts it). */
  delay: number;
  cancelled: boolean;
  sync: boolean;
}

/** The handle setTimeout and friends return under the virtual clock (the subset of Node's Timeout code uses). */
export class VirtualTimer {
  constructor(
    public event: SimEvent,
    private readonly clock: VirtualClock,
  ) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): this {
    this.event = this.clock.reschedule(this.event);
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.event.seq;
  }
}

const NO_ARGS: unknown[] = [];

/** How many `sync` events may run back to back before pending promise jobs get a turn. */
const SYNC_BURST = 256;

export class VirtualClock {
  private readonly heap = new EventHeap<SimEvent>();
  private seq = 0;
  private t: number;
  private current: SimEvent | null = null;
  private installed: (() => void) | null = null;
  /** Events run so far (for progress reports and benchmarks). */
  eventsRun = 0;
  /** Errors thrown by event callbacks: the simulation reports them rather than dying on the first. */
  readonly errors: unknown[] = [];

  constructor(startMs = 3_600_000) {
    this.t = startMs;
  }

  /** Virtual time in milliseconds (fractional). */
  get now(): number {
    return this.t;
  }

  get pending(): number {
    return this.heap.size;
  }

  /** Schedules `fn` after `delayMs` virtual milliseconds. `sync` marks a callback that queues no promise jobs. */
  schedule(delayMs: number, fn: Callback, args: unknown[] = NO_ARGS, interval = 0, sync = this.current?.sync ?? false): SimEvent {
    const d = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const e: SimEvent = { at: this.t + d, seq: this.seq++, fn, args, interval, delay: d, cancelled: false, sync };
    this.heap.push(e);
    return e;
  }

  cancel(e: SimEvent | undefined | null): void {
    if (e) e.cancelled = true;
  }

  /** Cancels `e` and schedules a copy from now (Timeout.refresh()). */
  reschedule(e: SimEvent): SimEvent {
    if (e.cancelled) return e;
    const copy: SimEvent = { ...e, at: this.t + (e.delay || 0), seq: this.seq++ };
    e.cancelled = true;
    this.heap.push(copy);
    return copy;
  }

  /**
   * Runs events up to virtual time `until` (inclusive), then sets the clock to `until`. `stop` is consulted after
   * each event; when it returns true the run ends there (the clock stays at that event's time).
   */
  async runUntil(until: number, stop?: () => boolean): Promise<void> {
    let burst = 0;
    while (this.heap.size > 0 && this.heap.peek()!.at <= until) {
      const e = this.heap.pop();
      if (e.cancelled) continue;
      if (e.at > this.t) this.t = e.at;
      if (e.interval > 0) {
        // setInterval: the same event goes back in the heap for its next run (clearInterval marks it cancelled).
        e.at = this.t + e.interval;
        e.seq = this.seq++;
        this.heap.push(e);
      }
      this.current = e;
      try {
        e.fn(...e.args);
      } catch (err) {
        this.errors.push(err);
      }
      this.current = null;
      this.eventsRun++;
      if (!e.sync || ++burst >= SYNC_BURST) {
        burst = 0;
        await macrotask();
      }
      if (stop?.()) return;
    }
    await macrotask();
    if (until > this.t) this.t = until;
  }

  /** Runs for `ms` virtual milliseconds. */
  runFor(ms: number, stop?: () => boolean): Promise<void> {
    return this.runUntil(this.t + ms, stop);
  }

  /**
   * Runs until `p` settles (or `limitMs` of virtual time pass, which rejects). Used to await real async code such
   * as a client start or a content fetch in virtual time.
   */
  async waitFor<T>(p: Promise<T>, limitMs = 24 * 3_600_000): Promise<T> {
    let done = false;
    let value: T | undefined;
    let error: unknown = null;
    let failed = false;
    p.then(
      (v) => {
        done = true;
        value = v;
      },
      (e: unknown) => {
        done = true;
        failed = true;
        error = e;
      },
    );
    await macrotask();
    if (!done) await this.runUntil(this.t + limitMs, () => done);
    if (!done) throw new Error(`simulation: no result within ${limitMs} ms of virtual time`);
    if (failed) throw error;
    return value as T;
  }

  /** Replaces the global timers and Date with this clock's; returns a function that restores them. */
  install(): () => void {
    if (this.installed) return this.installed;
    const g = globalThis as unknown as Record<string, unknown>;
    const saved = {
      setTimeout: g['setTimeout'],
      clearTimeout: g['clearTimeout'],
      setInterval: g['setInterval'],
      clearInterval: g['clearInterval'],
      setImmediate: g['setImmediate'],
      clearImmediate: g['clearImmediate'],
      Date: g['Date'],
    };
    const clear = (h: unknown): void => {
      if (h instanceof VirtualTimer) h.event.cancelled = true;
    };
    g['setTimeout'] = (fn: Callback, ms?: number, ...args: unknown[]) => new VirtualTimer(this.schedule(ms ?? 0, fn, args.length ? args : NO_ARGS), this);
    g['setInterval'] = (fn: Callback, ms?: number, ...args: unknown[]) => {
      const period = Number.isFinite(ms) && (ms as number) > 0 ? (ms as number) : 1;
      return new VirtualTimer(this.schedule(period, fn, args, period), this);
    };
    g['setImmediate'] = (fn: Callback, ...args: unknown[]) => new VirtualTimer(this.schedule(0, fn, args), this);
    // Links frame their cells at the end of a task with a microtask; here, where message deliveries run back to back
    // without a turn for promise jobs, as an event at the same virtual time instead.
    setLinkFlushScheduler((fn) => void this.schedule(0, fn));
    g['clearTimeout'] = clear;
    g['clearInterval'] = clear;
    g['clearImmediate'] = clear;
    const RealDate = saved.Date as DateConstructor;
    const now = (): number => Math.floor(this.t);
    const VirtualDate = function (this: unknown, ...args: unknown[]): unknown {
      if (!new.target) return new RealDate(now()).toString();
      return args.length === 0 ? new RealDate(now()) : new (RealDate as unknown as new (...a: unknown[]) => Date)(...args);
    } as unknown as DateConstructor;
    Object.setPrototypeOf(VirtualDate, RealDate);
    (VirtualDate as unknown as { prototype: Date }).prototype = RealDate.prototype;
    (VirtualDate as unknown as { now: () => number }).now = now;
    g['Date'] = VirtualDate;
    // performance.now(): the exact virtual time (the in-memory sockets schedule with it).
    const perf = globalThis.performance as unknown as Record<string, unknown>;
    perf['now'] = () => this.t;
    this.installed = () => {
      Object.assign(g, saved);
      setLinkFlushScheduler(null);
      delete perf['now'];
      this.installed = null;
    };
    return this.installed;
  }
}

/** The real setImmediate, captured before any clock is installed: one turn lets queued promise jobs finish. */
const realSetImmediate = globalThis.setImmediate;
function macrotask(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}
