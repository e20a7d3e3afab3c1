/**
 * The circuits content requests travel on (specs/content.md §8.2): each operation (one public call of a
 * ContentClient) has CONTENT_CIRCUITS_PER_OPERATION circuits, built at its first request, each ending at a
 * *forwarder* — a store relay drawn at random — that passes each request one more hop to the holder it names
 * (§8.3). A request goes on the least busy of the operation's circuits whose forwarder is not its holder (ties
 * broken at random), so which circuit carries what does not depend on the file's holders; a circuit takes new
 * requests for at most `dirtinessMs` after its first (CONTENT_CIRCUIT_DIRTINESS, 10 min) and is replaced, like one
 * that failed or closed, by a circuit to a new forwarder. Nothing is shared between operations, nor with any other
 * user of the CircuitSource; an operation's circuits close once it ends and their requests have settled.
 *
 * Circuits built ahead (§8.2): after an operation takes circuits — once its first CONTENT_AHEAD_AFTER_REQUESTS requests
 * have settled, or it ended — the client keeps up to `perOperation` *waiting* circuits to forwarders drawn at random,
 * used by no operation, for the next operation to take at its first request;
 * each waiting circuit is closed CONTENT_AHEAD_LIFETIME after its build if none took it, and replaced then only if an
 * operation took circuits within CONTENT_AHEAD_IDLE.
 *
 * What it does not do: ask a forwarder other than through `f`. In a
 * directory with a single store relay (no forwarder but the holder) a request goes to the holder itself, without
 * `f`, as before forwarding existed.
 *
 * `directForMeasurement` (npm run bench:content only) puts the old way back for comparison: one circuit per holder,
 * ending at it, kept for the client's life and shared by every operation.
 */
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { isStoreRelay } from '../protocol/placement.js';
import type { ClientCircuit } from '../net/circuit.js';
import { Shutdown } from '../net/abort.js';
import { AbortedError, isAlliumError } from '../protocol/errors.js';
import type { ContentStatus } from '../protocol/content-messages.js';
import { NOT_ASKED } from '../net/content-requests.js';
import type { CircuitSource } from './client.js';

/** CONTENT_CIRCUIT_DIRTINESS (specs/limits.md): a content circuit takes new requests this long after its first. */
export const CONTENT_CIRCUIT_DIRTINESS_MS = 10 * 60_000;
/** CONTENT_CIRCUITS_PER_OPERATION (specs/limits.md). */
export const CONTENT_CIRCUITS_PER_OPERATION = 3;
/**
 * CONTENT_AHEAD_LIFETIME (specs/limits.md, content.md §8.2): a circuit built ahead that no operation took is closed this
 * long after its build — inside a forwarder's CIRCUIT_IDLE_TIMEOUT (10 min), which would otherwise reap it silent.
 */
export const CONTENT_AHEAD_LIFETIME_MS = 5 * 60_000;
/**
 * Requests of an operation that settle before the circuits it took are replaced by new ones built ahead (content.md
 * §8.2 "Circuits built ahead"; sooner if it ends): a get's manifest and its first block, the first byte's two round
 * trips, are not sent beside three circuit builds.
 */
export const CONTENT_AHEAD_AFTER_REQUESTS = 2;
/** CONTENT_AHEAD_IDLE (specs/limits.md, content.md §8.2): no circuit is built ahead this long after the last operation. */
export const CONTENT_AHEAD_IDLE_MS = 10 * 60_000;
/**
 * CONTENT_FETCHES_PER_CIRCUIT (specs/limits.md, content.md §8.2): the FETCHes a read keeps in flight per circuit of
 * its operation. Eight items of 32 KiB are some 260 cells, inside a circuit's starting window (1000 cells) and about
 * its smallest (200), so the holders' answers are not held back by SENDMEs; and below a forwarder's
 * MAX_FORWARDS_PER_CIRCUIT (12), which the least-busy spread stays under even when a third of the requests cannot
 * use one of the circuits (its forwarder is their holder).
 */
export const CONTENT_FETCHES_PER_CIRCUIT = 8;

export interface ContentCircuitsOptions {
  /** The clock the dirtiness limit is read from (default Date.now). */
  now?: () => number;
  /** How long a circuit takes new requests after its first (default CONTENT_CIRCUIT_DIRTINESS_MS). */
  dirtinessMs?: number;
  /** Circuits per operation (default CONTENT_CIRCUITS_PER_OPERATION), and the most built ahead. */
  perOperation?: number;
  /** Whether circuits are built ahead of operations (content.md §8.2; default true). */
  ahead?: boolean;
  /** How long a circuit built ahead waits for an operation before it is closed (default CONTENT_AHEAD_LIFETIME_MS). */
  aheadLifetimeMs?: number;
  /** After this long without an operation, none is built ahead (default CONTENT_AHEAD_IDLE_MS; read on `now`). */
  aheadIdleMs?: number;
  /**
   * Measurement only (npm run bench:content): every request goes straight to its holder on one circuit per holder,
   * kept for the client's life, as before content.md §8.2–§8.3 — none of their protections. Default false.
   */
  directForMeasurement?: boolean;
}

/** One circuit of an operation, to one forwarder. */
interface Slot {
  readonly forwarder: Descriptor;
  readonly built: Promise<ClientCircuit>;
  circuit: ClientCircuit | null;
  failed: boolean;
  /** When it took its first request (dirtiness starts then); null before. */
  since: number | null;
  users: number;
  retired: boolean;
}

/** "Not asked" answers after which an operation stops using a forwarder's circuit (content.md §8.2 "Retries"). */
export const MAX_NOT_ASKED_PER_FORWARDER = 2;

/**
 * MAX_BROKEN_FORWARDERS (specs/limits.md, content.md §8.2 "A forwarder gone"): forwarders whose circuit failed that an
 * operation avoids drawing at once, the most recent; an older one is forgotten, so that a middle relay closing circuits
 * cannot steer an operation's draws away from many honest forwarders.
 */
export const MAX_BROKEN_FORWARDERS = 2;

/**
 * CONTENT_REFUSED_ROUNDS (specs/limits.md, content.md §8.2 "Refused everywhere"): rounds of tries a STORE gets after
 * the first when every forwarder it went through answered `refused`, each after one of the operation's requests ended.
 */
export const CONTENT_REFUSED_ROUNDS = 6;
/** CONTENT_REFUSED_DEADLINE (specs/limits.md): no round of CONTENT_REFUSED_ROUNDS starts this long after the first refusal. */
export const CONTENT_REFUSED_DEADLINE_MS = 15_000;
/** CONTENT_REFUSED_PAUSE (specs/limits.md): the wait before such a round when the operation has no other request in flight. */
export const CONTENT_REFUSED_PAUSE_MS = 500;

/** A circuit built ahead, waiting for an operation to take it. */
interface Waiting {
  readonly forwarder: Descriptor;
  readonly built: Promise<ClientCircuit>;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Where a request goes: the circuit, and the holder to name in `f` (null: the circuit ends at the holder). */
export type Route = (circuit: ClientCircuit, forwardTo: Uint8Array | null) => Promise<unknown>;

/** Every content circuit of one ContentClient, so that close() reaches each. */
export class ContentCircuits {
  private readonly live = new Set<Promise<ClientCircuit>>();
  private closed = false;
  readonly now: () => number;
  readonly dirtinessMs: number;
  readonly perOperation: number;
  readonly direct: boolean;
  readonly ahead: boolean;
  readonly aheadLifetimeMs: number;
  readonly aheadIdleMs: number;
  /** Direct mode: the circuit to each holder, by fingerprint. */
  private readonly toHolder = new Map<string, Promise<ClientCircuit>>();
  /** Circuits built ahead that no operation has taken (at most perOperation). */
  private readonly waiting = new Set<Waiting>();
  /** When an operation last took circuits (null: never); building ahead stops aheadIdleMs after it. */
  private lastTaken: number | null = null;
  /**
   * Aborts the builds of circuits ahead at close() (an operation's signal is not theirs): each build has a scope of
   * its own, dropped once it settles, so builds in flight leave no listener on a signal that lives as long as we do.
   */
  private readonly shutdown = new Shutdown();

  constructor(
    readonly source: CircuitSource,
    options: ContentCircuitsOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.dirtinessMs = options.dirtinessMs ?? CONTENT_CIRCUIT_DIRTINESS_MS;
    this.perOperation = Math.max(1, options.perOperation ?? CONTENT_CIRCUITS_PER_OPERATION);
    this.direct = options.directForMeasurement ?? false;
    this.ahead = !this.direct && (options.ahead ?? true);
    this.aheadLifetimeMs = options.aheadLifetimeMs ?? CONTENT_AHEAD_LIFETIME_MS;
    this.aheadIdleMs = options.aheadIdleMs ?? CONTENT_AHEAD_IDLE_MS;
  }

  /** Circuits built ahead and waiting (for tests and logs). */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * Up to `n` waiting circuits, given to an operation (each only ever to this one). The operation calls refill() once
   * its first requests have settled, and as many are built ahead again then (content.md §8.2).
   */
  take(n: number, avoid: readonly string[]): { forwarder: Descriptor; built: Promise<ClientCircuit> }[] {
    if (!this.ahead || this.closed) return [];
    const out: Waiting[] = [];
    for (const w of this.waiting) {
      if (out.length >= n) break;
      if (!avoid.includes(w.forwarder.fingerprint)) out.push(w);
    }
    for (const w of out) {
      this.waiting.delete(w);
      clearTimeout(w.timer);
    }
    this.lastTaken = this.now();
    return out;
  }

  /** Builds circuits ahead up to perOperation again, after an operation took circuits (unless closed or idle). */
  refill(): void {
    if (this.ahead) this.fillAhead();
  }

  /**
   * Builds circuits ahead up to perOperation before any operation (content.md §8.2 "Started"): its owner started (a
   * Messenger listening or prepared), so the first operation finds them ready. One set: when their lifetime ends they
   * are replaced only if an operation took circuits within aheadIdleMs. Resolves once each of them is built or failed.
   */
  buildAhead(): Promise<void> {
    if (!this.ahead || this.closed) return Promise.resolve();
    this.fillAhead(true);
    return Promise.allSettled([...this.waiting].map((w) => w.built)).then(() => undefined);
  }

  /** Builds circuits ahead up to perOperation, unless closed or idle for aheadIdleMs (`started`: an owner's start). */
  private fillAhead(started = false): void {
    if (this.closed) return;
    if (!started && (this.lastTaken === null || this.now() - this.lastTaken >= this.aheadIdleMs)) return;
    while (this.waiting.size < this.perOperation) {
      const forwarder = pickForwarder(
        this.source,
        [...this.waiting].map((w) => w.forwarder.fingerprint),
      );
      if (!forwarder) return;
      // Not an operation's signal: the circuit outlives the operation that caused it. Only close() stops the build.
      const scope = this.shutdown.scope();
      const built = this.build(forwarder, scope.signal);
      built.then(scope.dispose, scope.dispose);
      const timer = setTimeout(() => {
        if (!this.waiting.delete(w)) return;
        void built.then((c) => c.close()).catch(() => undefined);
        this.fillAhead();
      }, this.aheadLifetimeMs);
      (timer as { unref?: () => void }).unref?.();
      const w: Waiting = { forwarder, built, timer };
      this.waiting.add(w);
      const leave = (): void => {
        // Failed or closed before an operation took it: gone, not rebuilt until the next operation takes circuits.
        if (this.waiting.delete(w)) clearTimeout(timer);
      };
      built.then((c) => (c.state === 'closed' ? leave() : c.once('circuit:close', leave)), leave);
    }
  }

  /** Direct mode: the circuit whose last hop is `holder`, built at the first request to it and kept while open. */
  directTo(holder: Descriptor, signal: AbortSignal): Promise<ClientCircuit> {
    const have = this.toHolder.get(holder.fingerprint);
    if (have) {
      return have.then(
        (c) => {
          if (c.state === 'open') return c;
          if (this.toHolder.get(holder.fingerprint) === have) this.toHolder.delete(holder.fingerprint);
          return this.directTo(holder, signal);
        },
        () => {
          if (this.toHolder.get(holder.fingerprint) === have) this.toHolder.delete(holder.fingerprint);
          return this.directTo(holder, signal);
        },
      );
    }
    const p = this.build(holder, signal);
    this.toHolder.set(holder.fingerprint, p);
    return p;
  }

  /** A new circuit whose last hop is `last`, closed by close() if it is still open then. */
  build(last: Descriptor, signal: AbortSignal): Promise<ClientCircuit> {
    const p = this.source.newCircuit({ last, exitPort: null, signal });
    this.live.add(p);
    p.then(
      (c) => {
        if (this.closed) c.close();
        else c.once('circuit:close', () => this.live.delete(p));
      },
      () => this.live.delete(p),
    );
    return p;
  }

  /** The circuits of a new operation; the caller closes them when the operation ends. */
  operation(): OperationCircuits {
    return new OperationCircuits(this);
  }

  /** Closes every content circuit, open or being built. */
  close(): void {
    this.closed = true;
    this.toHolder.clear();
    for (const w of this.waiting) clearTimeout(w.timer);
    this.waiting.clear();
    this.shutdown.abort();
    for (const p of this.live) void p.then((c) => c.close()).catch(() => undefined);
    this.live.clear();
  }
}

/** The circuits of one operation: a few to forwarders, replaced once failed, closed or dirty; all closed by close(). */
export class OperationCircuits {
  private slots: Slot[] = [];
  private readonly all = new Set<Slot>();
  private ended = false;
  /** Forwarders retired for answering "not asked" too often: this operation builds no circuit to them again. */
  private readonly shunned = new Set<string>();
  /**
   * Per holder, the forwarders that answered `unreachable` or `unknown` about it, and how many of those answers were
   * counted toward their retirement (content.md §8.2 "Retries"). Keys and entries are relays of the directory: bounded
   * by its size.
   */
  private readonly couldNotAsk = new Map<string, Map<string, number>>();
  /**
   * The holder that two forwarders of this operation could not ask: gone, or listed still (content.md §8.2 "A holder
   * gone"). At most one per operation, so that two forwarders lying together cannot make every holder gone.
   */
  private gone: string | null = null;
  /**
   * Forwarders whose circuit of this operation could not be built or closed, oldest first: drawn again only when no
   * other is left; at most MAX_BROKEN_FORWARDERS, the oldest forgotten (content.md §8.2 "A forwarder gone").
   */
  private readonly broken = new Set<string>();
  /** Not-asked answers held against each forwarder (content.md §8.2 "Retries"): retired at MAX_NOT_ASKED_PER_FORWARDER. */
  private readonly held = new Map<string, number>();
  /** Requests of this operation in flight, by holder fingerprint. */
  private readonly pending = new Map<string, number>();
  private pendingAll = 0;
  /** Called with the holder's fingerprint each time one of this operation's requests that was asked of a holder ends. */
  private readonly onRequestEnd = new Set<(holder: string) => void>();
  /** Whether it took circuits and has not yet had them replaced ahead (refill()); its requests settled so far. */
  private refillDue = false;
  private settled = 0;

  constructor(private readonly circuits: ContentCircuits) {}

  /**
   * Runs `f` with a circuit for a request to `holder` and the holder's identity to name in `f` (content.md §8.2).
   * A circuit that fails to build rejects; `f`'s errors pass through.
   */
  async with<T>(
    holder: Descriptor,
    signal: AbortSignal,
    f: (c: ClientCircuit, forwardTo: Uint8Array | null, forwarder: string) => Promise<T>,
    avoid?: string,
  ): Promise<T> {
    if (this.circuits.direct) return f(await this.circuits.directTo(holder, signal), null, holder.fingerprint);
    const s = this.pick(holder, signal, avoid);
    s.users++;
    s.since ??= this.circuits.now();
    const fp = holder.fingerprint;
    this.pending.set(fp, (this.pending.get(fp) ?? 0) + 1);
    this.pendingAll++;
    // Whether the request held a slot at its forwarder until it ended: not when the forwarder did not ask.
    let heldSlot = true;
    try {
      const out = await f(await s.built, s.forwarder.fingerprint === holder.fingerprint ? null : holder.id, s.forwarder.fingerprint);
      if (typeof out === 'string' && NOT_ASKED.has(out as ContentStatus)) heldSlot = false;
      return out;
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_UNREACHABLE') heldSlot = false; // fetchItem's "not asked"
      throw e;
    } finally {
      s.users--;
      if (s.retired && s.users === 0) this.drop(s);
      const n = (this.pending.get(fp) ?? 1) - 1;
      if (n > 0) this.pending.set(fp, n);
      else this.pending.delete(fp);
      this.pendingAll--;
      if (++this.settled >= CONTENT_AHEAD_AFTER_REQUESTS) this.refillAhead();
      if (heldSlot) for (const w of [...this.onRequestEnd]) w(fp);
    }
  }

  /**
   * Resolves once one of this operation's requests to `holder` ends — or, when it has none in flight, any of its
   * requests — or CONTENT_REFUSED_PAUSE_MS after the call when it has no request in flight at all; at the latest
   * `maxMs` after the call (content.md §8.2 "Refused everywhere"). Rejects with AbortedError when `signal` aborts.
   */
  afterARequestEnds(holder: Descriptor, signal: AbortSignal, maxMs: number): Promise<void> {
    const toHolder = this.pending.has(holder.fingerprint);
    const wait = this.pendingAll > 0 ? maxMs : Math.min(maxMs, CONTENT_REFUSED_PAUSE_MS);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onRequestEnd.delete(onEnd);
        signal.removeEventListener('abort', onAbort);
      };
      const onEnd = (fp: string): void => {
        if (toHolder && fp !== holder.fingerprint) return;
        done();
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(new AbortedError());
      };
      const timer = setTimeout(
        () => {
          done();
          resolve();
        },
        Math.max(0, wait),
      );
      if (signal.aborted) return onAbort();
      this.onRequestEnd.add(onEnd);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * The circuit for a request to `holder`: the least busy whose forwarder is not the holder (nor `avoid`, a forwarder
   * that just failed this request, when another is open), ties at random.
   */
  private pick(holder: Descriptor, signal: AbortSignal, avoid?: string): Slot {
    const now = this.circuits.now();
    // Replace what failed, closed or got dirty (and fill the operation's circuits at its first request).
    this.slots = this.slots.filter((s) => {
      if (s.failed || s.circuit?.state === 'closed') this.markBroken(s.forwarder.fingerprint);
      const stale = s.failed || s.circuit?.state === 'closed' || (s.since !== null && now - s.since >= this.circuits.dirtinessMs);
      if (stale) this.retire(s);
      return !stale;
    });
    if (!this.ended && this.slots.length < this.circuits.perOperation) {
      // Circuits built ahead first (content.md §8.2): never used by another operation, distinct forwarders.
      const taken = this.circuits.take(this.circuits.perOperation - this.slots.length, this.inUse());
      for (const w of taken) this.slots.push(this.adopt(w.forwarder, w.built));
      // Replaced ahead once CONTENT_AHEAD_AFTER_REQUESTS requests have settled (or the operation ends), not beside them.
      this.refillDue = true;
      if (this.settled >= CONTENT_AHEAD_AFTER_REQUESTS) this.refillAhead();
    }
    while (!this.ended && this.slots.length < this.circuits.perOperation) {
      const f = this.forwarder(this.inUse());
      if (!f) break;
      this.slots.push(this.open(f, signal));
    }
    let eligible = this.slots.filter((s) => s.forwarder.fingerprint !== holder.fingerprint);
    if (eligible.length === 0) {
      // Every circuit ends at this holder: one to another forwarder if the directory has one, else the holder itself.
      const f = this.forwarder([holder.fingerprint, ...this.inUse()]) ?? this.forwarder([holder.fingerprint]) ?? holder;
      const s = this.open(f, signal);
      if (f === holder || this.ended)
        s.retired = true; // a one-off: closed when its request settles
      else this.slots.push(s);
      eligible = [s];
    }
    const elsewhere = eligible.filter((s) => s.forwarder.fingerprint !== avoid);
    if (elsewhere.length > 0) eligible = elsewhere;
    const least = Math.min(...eligible.map((s) => s.users));
    const ties = eligible.filter((s) => s.users === least);
    return ties[crypto().randomInt(ties.length)]!;
  }

  /**
   * An answer from `forwarder` that it did not ask `holder` (`refused`, `unknown`, `unreachable`; content.md §8.2
   * "Retries"); returns whether the request may be tried once more through another forwarder. Counted (`count`) toward
   * the forwarder's retirement: at the MAX_NOT_ASKED_PER_FORWARDER-th its circuit is retired — closed once its
   * requests in flight settle — and the operation builds none to that forwarder again, so that a forwarder that always
   * answers so cannot have every request it gets sent through a second forwarder. But once a second forwarder could
   * not reach the same holder (`unreachable` or `unknown`), the holder is the cause — a relay gone, still in the
   * directory: the holder is *gone* for the operation, the answers about it are no longer held against the forwarders
   * (but one already retired stays retired), and a request to it is not tried through another forwarder. Without
   * this, every request to a dead holder retired one more honest forwarder, until none was left to draw but the dead
   * relay itself. Only the first such holder of the operation is gone: past it, answers count as any other, so that
   * two forwarders lying together about every holder are retired after two answers each, as one alone.
   */
  notAsked(forwarder: string, holder: string, status: ContentStatus, count = true): boolean {
    if (this.gone === holder) return false;
    if (!count) return true;
    // Only the answers of a circuit the operation still uses count (not those of one already retired or replaced).
    const counted = this.slots.some((x) => x.forwarder.fingerprint === forwarder);
    if (this.gone === null && (status === 'unreachable' || status === 'unknown')) {
      const by = this.couldNotAsk.get(holder) ?? new Map<string, number>();
      if (!by.has(forwarder) && by.size > 0) {
        this.gone = holder;
        this.couldNotAsk.clear(); // no other holder becomes gone in this operation
        for (const [f, n] of by) this.forgive(f, n);
        return false;
      }
      by.set(forwarder, (by.get(forwarder) ?? 0) + (counted ? 1 : 0));
      this.couldNotAsk.set(holder, by);
    }
    if (!counted) return true;
    const n = (this.held.get(forwarder) ?? 0) + 1;
    this.held.set(forwarder, n);
    if (n >= MAX_NOT_ASKED_PER_FORWARDER) {
      this.shunned.add(forwarder);
      for (const s of this.slots.filter((x) => x.forwarder.fingerprint === forwarder)) this.retire(s);
      this.slots = this.slots.filter((x) => x.forwarder.fingerprint !== forwarder);
    }
    return true;
  }

  /** Whether `holder` is this operation's holder gone: two of its forwarders could not reach it (see notAsked()). */
  isGone(holder: string): boolean {
    return this.gone === holder;
  }

  /**
   * Takes back `n` answers of `forwarder` held against it. One already retired stays retired: forgiving never makes
   * a forwarder drawn again, so a second forwarder's answer cannot bring back a first one that lied.
   */
  private forgive(forwarder: string, n: number): void {
    const left = Math.max(0, (this.held.get(forwarder) ?? 0) - n);
    if (left > 0) this.held.set(forwarder, left);
    else this.held.delete(forwarder);
  }

  /** Notes that `forwarder`'s circuit failed or closed: the most recent MAX_BROKEN_FORWARDERS are kept. */
  private markBroken(forwarder: string): void {
    this.broken.delete(forwarder);
    this.broken.add(forwarder);
    for (const f of this.broken) {
      if (this.broken.size <= MAX_BROKEN_FORWARDERS) break;
      this.broken.delete(f);
    }
  }

  /** Forwarders not to build or take a circuit to: those of the open circuits and the retired for "not asked". */
  private inUse(): string[] {
    return [...this.slots.map((s) => s.forwarder.fingerprint), ...this.shunned, ...this.broken];
  }

  /**
   * A store relay drawn at random (CSPRNG), not among `avoid` when another exists, else not one whose circuit failed
   * when another exists; null when there is none.
   */
  private forwarder(avoid: readonly string[]): Descriptor | null {
    return pickForwarder(this.circuits.source, avoid, [...this.broken]);
  }

  private open(forwarder: Descriptor, signal: AbortSignal): Slot {
    return this.adopt(forwarder, this.circuits.build(forwarder, signal));
  }

  /** A slot of this operation for a circuit being built (or built) to `forwarder`. */
  private adopt(forwarder: Descriptor, built: Promise<ClientCircuit>): Slot {
    const slot: Slot = { forwarder, built, circuit: null, failed: false, since: null, users: 0, retired: false };
    slot.built.then(
      (c) => (slot.circuit = c),
      () => (slot.failed = true),
    );
    this.all.add(slot);
    return slot;
  }

  private retire(s: Slot): void {
    s.retired = true;
    if (s.users === 0) this.drop(s);
  }

  private drop(s: Slot): void {
    this.all.delete(s);
    void s.built.then((c) => c.close()).catch(() => undefined);
  }

  /** The circuits built ahead, replaced once after each take (content.md §8.2). */
  private refillAhead(): void {
    if (!this.refillDue) return;
    this.refillDue = false;
    this.circuits.refill();
  }

  /** Ends the operation: its circuits close now, or once their requests in flight (repairs) settle. */
  close(): void {
    this.refillAhead();
    this.ended = true;
    for (const s of [...this.all]) this.retire(s);
    this.slots = [];
  }
}

/**
 * A store relay drawn at random (CSPRNG), not among `avoid` when another exists, else not among `broken` when another
 * exists; null when there is none.
 */
function pickForwarder(source: CircuitSource, avoid: readonly string[], broken: readonly string[] = []): Descriptor | null {
  const stores = source.directory.view.relays.filter(isStoreRelay);
  const fresh = stores.filter((d) => !avoid.includes(d.fingerprint));
  const working = stores.filter((d) => !broken.includes(d.fingerprint));
  const from = fresh.length > 0 ? fresh : working.length > 0 ? working : stores;
  if (from.length === 0) return null;
  return from[crypto().randomInt(from.length)]!;
}
