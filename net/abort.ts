/**
 * The one async contract (docs/developer-guide.md §Cancellation): every async public call of the client library and
 * of net/ takes `options?: AbortOptions` and rejects with ERR_ABORTED when the signal fires; a long-lived object
 * aborts what it started when it stops. These helpers are the one place where a signal, a deadline and a request
 * answered by callback are joined, so that each timer and listener is removed once, whatever settles first.
 *
 * - `Shutdown`: what a long-lived object's stop() aborts; `scope(signal)` gives each call a signal that fires when
 *   the caller's does or the object stops, without leaving a listener per call on anything long-lived.
 * - `anySignal`: a signal that fires when any of several does, detached from them again by `dispose()`.
 * - `deadline`: a caller's signal plus `timeoutMs`, whose abort becomes ERR_TIMEOUT.
 * - `settleWithin`: a request answered by callback, settled once by its answer, its timeout or the signal.
 * - `within`: a promise raced against a timeout (and a signal), the timer cleared whichever wins, and what the
 *   promise yields too late handed to `onLate` (a link opened after its deadline is closed, not leaked).
 *
 * Nothing here reads a clock other than the global timers (the simulator's virtual clock replaces them).
 */
import { AbortedError, AlliumError, isAlliumError, TimeoutError } from '../protocol/errors.js';

/**
 * Called on every signal made here. A call's signal is shared by each request it runs at once (a content fetch asks
 * a dozen holders), and Node warns past 10 abort listeners on one signal; the Node socket factory (net/ws-node.ts)
 * sets this to lift that limit, as net/ may not import node:events (browsers bundle it).
 */
let onNewSignal: ((signal: AbortSignal) => void) | null = null;

/** Registers what is done to every signal made here (see onNewSignal). */
export function onSignalCreated(f: (signal: AbortSignal) => void): void {
  onNewSignal = f;
}

/** What every async public call takes last. */
export interface AbortOptions {
  /** Aborts the call: it rejects with ERR_ABORTED, and what it started is undone (streams reset, circuits closed). */
  signal?: AbortSignal;
}

/** `{ signal }`, or `{}` when there is none (options are built this way under exactOptionalPropertyTypes). */
export function signalOption(signal: AbortSignal | undefined): AbortOptions {
  return signal ? { signal } : {};
}

/** A signal linked to others; `dispose()` detaches it (call it once the work it guards is done). */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * A signal that aborts as soon as any of `signals` does (at once if one already has). Unlike AbortSignal.any it can
 * be detached: a shutdown signal that lives as long as its client holds no listener of a call that has finished.
 */
export function anySignal(...signals: (AbortSignal | undefined)[]): LinkedSignal {
  const parents = signals.filter((s): s is AbortSignal => s !== undefined);
  const ctl = new AbortController();
  onNewSignal?.(ctl.signal);
  const abort = (): void => {
    dispose();
    ctl.abort();
  };
  const dispose = (): void => {
    for (const s of parents) s.removeEventListener('abort', abort);
  };
  if (parents.some((s) => s.aborted)) ctl.abort();
  else for (const s of parents) s.addEventListener('abort', abort, { once: true });
  return { signal: ctl.signal, dispose };
}

/**
 * The shutdown of a long-lived object (a client, a messenger): `abort()` in its stop()/close() aborts every scope
 * handed out since. Scopes are kept in a set rather than as listeners on one signal, so a client with hundreds of
 * calls in flight holds no pile of abort listeners (and Node warns of none).
 */
export class Shutdown {
  private readonly ctl = new AbortController();
  private readonly scopes = new Set<AbortController>();

  /** Aborted once abort() ran. */
  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  get aborted(): boolean {
    return this.ctl.signal.aborted;
  }

  /**
   * A signal for one call: it aborts when the object shuts down or `signal` (the caller's) aborts, whichever comes
   * first. `dispose()` once the call is done.
   */
  scope(signal?: AbortSignal): LinkedSignal {
    const ctl = new AbortController();
    onNewSignal?.(ctl.signal);
    const abort = (): void => {
      dispose();
      ctl.abort();
    };
    const dispose = (): void => {
      this.scopes.delete(ctl);
      signal?.removeEventListener('abort', abort);
    };
    if (this.aborted || signal?.aborted) ctl.abort();
    else {
      this.scopes.add(ctl);
      signal?.addEventListener('abort', abort, { once: true });
    }
    return { signal: ctl.signal, dispose };
  }

  /** Runs `f` under a scope of `options.signal`, disposed when `f` settles. */
  async run<T>(options: AbortOptions, f: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const s = this.scope(options.signal);
    try {
      return await f(s.signal);
    } finally {
      s.dispose();
    }
  }

  /** Aborts every scope (idempotent). */
  abort(): void {
    if (this.aborted) return;
    this.ctl.abort();
    const scopes = [...this.scopes];
    this.scopes.clear();
    for (const c of scopes) c.abort();
  }
}

/** A combined signal for a call's `signal` and `timeoutMs` (see `deadline`). */
export interface Deadline {
  /** Aborts when the caller's signal does or the time runs out (undefined: neither can happen). */
  readonly signal: AbortSignal | undefined;
  /** Turns the ERR_ABORTED the timeout caused into ERR_TIMEOUT; any other error is returned as it is. */
  wrap(e: unknown): unknown;
  /** Stops the timer and detaches from the caller's signal. */
  clear(): void;
}

/** A deadline of `timeoutMs` (none when undefined) on top of `signal`; `what` names the call in ERR_TIMEOUT. */
export function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined, what: string): Deadline {
  if (timeoutMs === undefined) return { signal, wrap: (e) => e, clear: () => undefined };
  const linked = anySignal(signal);
  const ctl = new AbortController();
  onNewSignal?.(ctl.signal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = (): void => ctl.abort();
  if (linked.signal.aborted) ctl.abort();
  linked.signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    wrap: (e) => (timedOut && !signal?.aborted && isAlliumError(e) && e.kind === 'aborted' ? new TimeoutError(`${what} timed out after ${timeoutMs} ms`) : e),
    clear: () => {
      clearTimeout(timer);
      linked.signal.removeEventListener('abort', onAbort);
      linked.dispose();
    },
  };
}

/** Settles a request started by `settleWithin`: with an error, or with null and the answer. */
export type Settle<T> = (err: AlliumError | null, value?: T) => void;

export interface SettleOptions extends AbortOptions {
  /** The answer must come within this long … */
  timeoutMs: number;
  /** … or the request fails with ERR_TIMEOUT and this message. */
  timeoutMessage: string;
}

/**
 * Runs one request whose answer comes by callback. `start(settle)` begins it and may return its cleanup; the request
 * settles once, with the first of: `settle(err, value)`, the timeout (TimeoutError), the signal (AbortedError). The
 * cleanup runs exactly once with the error (null on success), whether the request settled before `start` returned
 * or later. An already aborted signal rejects at once and `start` is never called.
 */
export function settleWithin<T>(start: (settle: Settle<T>) => ((err: AlliumError | null) => void) | void, options: SettleOptions): Promise<T> {
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    let cleanup: ((err: AlliumError | null) => void) | undefined;
    let settled: { err: AlliumError | null } | null = null;
    const timer = setTimeout(() => finish(new TimeoutError(options.timeoutMessage)), options.timeoutMs);
    const onAbort = (): void => finish(new AbortedError());
    signal?.addEventListener('abort', onAbort, { once: true });
    function finish(err: AlliumError | null, value?: T): void {
      if (settled) return;
      settled = { err };
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cleanup?.(err);
      if (err) reject(err);
      else resolve(value as T);
    }
    let c: ((err: AlliumError | null) => void) | void;
    try {
      c = start(finish);
    } catch (e) {
      finish(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'request failed to start', { cause: e }));
      return;
    }
    if (!c) return;
    if (settled) c((settled as { err: AlliumError | null }).err);
    else cleanup = c;
  });
}

export interface WithinOptions<T> extends SettleOptions {
  /** Receives what `work` resolves with after the call already failed (timeout, abort), to release it. */
  onLate?: (value: T) => void;
  /** The timer does not keep the process alive (a background check that must not delay a shutdown). */
  unref?: boolean;
}

/**
 * `work`, or ERR_TIMEOUT (`timeoutMessage`) once `timeoutMs` passed first, or ERR_ABORTED once the signal fired first.
 * `work`'s own rejection passes through as it is; the timer and the listener are gone once the call settles.
 */
export function within<T>(work: Promise<T>, options: WithinOptions<T>): Promise<T> {
  const { signal, onLate } = options;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(() => reject(new TimeoutError(options.timeoutMessage))), options.timeoutMs);
    if (options.unref) (timer as { unref?: () => void }).unref?.();
    const onAbort = (): void => void finish(() => reject(new AbortedError()));
    function finish(settle: () => void): boolean {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
      return true;
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        if (!finish(() => resolve(v))) onLate?.(v);
      },
      (e: unknown) => void finish(() => reject(e)),
    );
  });
}
