/**
 * The circuits content requests travel on (specs/content.md §8.2): a FETCH gets a circuit built for it alone, with
 * the holder as its last hop, destroyed once the request settles; the STOREs of one operation to one holder share a
 * circuit, which takes new requests for at most `dirtinessMs` after its first (CONTENT_CIRCUIT_DIRTINESS, 10 min)
 * and is closed when the operation ends. Nothing is shared between operations, nor with any other user of the
 * CircuitSource: what the guard sees of a fetch is then the same for every file of a size class, and a holder never
 * receives two FETCHes on one circuit.
 *
 * What it does not do: end circuits anywhere but at the holder (forwarding one more hop is left to a proposal), or
 * pool circuits built in advance (a circuit's last hop is the holder, known only with the request).
 */
import type { Descriptor } from '../protocol/descriptor.js';
import type { ClientCircuit } from '../net/circuit.js';
import type { CircuitSource } from './client.js';

/** CONTENT_CIRCUIT_DIRTINESS (specs/limits.md): a STORE circuit takes new requests this long after its first. */
export const CONTENT_CIRCUIT_DIRTINESS_MS = 10 * 60_000;

export interface ContentCircuitsOptions {
  /** The clock the dirtiness limit is read from (default Date.now). */
  now?: () => number;
  /** How long a STORE circuit takes new requests after its first (default CONTENT_CIRCUIT_DIRTINESS_MS). */
  dirtinessMs?: number;
}

/** A STORE circuit of one operation to one holder. */
interface Shared {
  readonly built: Promise<ClientCircuit>;
  circuit: ClientCircuit | null;
  failed: boolean;
  /** When it took its first request (dirtiness starts then). */
  since: number;
  users: number;
  retired: boolean;
}

/** Every content circuit of one ContentClient, so that close() reaches each. */
export class ContentCircuits {
  private readonly live = new Set<Promise<ClientCircuit>>();
  private closed = false;
  readonly now: () => number;
  readonly dirtinessMs: number;

  constructor(
    private readonly source: CircuitSource,
    options: ContentCircuitsOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.dirtinessMs = options.dirtinessMs ?? CONTENT_CIRCUIT_DIRTINESS_MS;
  }

  /** A new circuit whose last hop is `holder`, closed by close() if it is still open then. */
  build(holder: Descriptor, signal: AbortSignal): Promise<ClientCircuit> {
    const p = this.source.newCircuit({ last: holder, exitPort: null, signal });
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

  /**
   * Runs `f` on a circuit to `holder` built for this one request and closes the circuit once `f` settles. A build
   * that fails rejects; `f`'s errors pass through.
   */
  async once<T>(holder: Descriptor, signal: AbortSignal, f: (c: ClientCircuit) => Promise<T>): Promise<T> {
    const c = await this.build(holder, signal);
    try {
      return await f(c);
    } finally {
      c.close();
    }
  }

  /** The STORE circuits of a new operation; the caller closes them when the operation ends. */
  operation(): StoreCircuits {
    return new StoreCircuits(this);
  }

  /** Closes every content circuit, open or being built. */
  close(): void {
    this.closed = true;
    for (const p of this.live) void p.then((c) => c.close()).catch(() => undefined);
    this.live.clear();
  }
}

/** The STORE circuits of one operation: one per holder at a time, replaced once dirty, all closed by close(). */
export class StoreCircuits {
  private readonly byHolder = new Map<string, Shared>();
  private readonly all = new Set<Shared>();

  constructor(private readonly circuits: ContentCircuits) {}

  /** Runs `f` on this operation's circuit to `holder` (built, or rebuilt if closed, failed or dirty). */
  async with<T>(holder: Descriptor, signal: AbortSignal, f: (c: ClientCircuit) => Promise<T>): Promise<T> {
    const s = this.current(holder, signal);
    s.users++;
    try {
      return await f(await s.built);
    } finally {
      s.users--;
      if (s.retired && s.users === 0) this.drop(s);
    }
  }

  private current(holder: Descriptor, signal: AbortSignal): Shared {
    const now = this.circuits.now();
    let s = this.byHolder.get(holder.fingerprint);
    if (s && (s.failed || s.circuit?.state === 'closed' || now - s.since >= this.circuits.dirtinessMs)) {
      s.retired = true;
      this.byHolder.delete(holder.fingerprint);
      if (s.users === 0) this.drop(s);
      s = undefined;
    }
    if (!s) {
      const shared: Shared = { built: this.circuits.build(holder, signal), circuit: null, failed: false, since: now, users: 0, retired: false };
      shared.built.then(
        (c) => (shared.circuit = c),
        () => (shared.failed = true),
      );
      this.byHolder.set(holder.fingerprint, shared);
      this.all.add(shared);
      s = shared;
    }
    return s;
  }

  private drop(s: Shared): void {
    this.all.delete(s);
    void s.built.then((c) => c.close()).catch(() => undefined);
  }

  /** Ends the operation: closes its circuits. */
  close(): void {
    for (const s of this.all) this.drop(s);
    this.byHolder.clear();
  }
}
