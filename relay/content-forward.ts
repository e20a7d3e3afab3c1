/**
 * Forwarding STORE and FETCH one hop to the holder (specs/content.md §8.3). A client's content circuit ends at a
 * store relay, the forwarder; each request names its holder in `f`. The forwarder checks the holder is a relay of
 * its directory other than itself (else `unknown`; a holder whose store is full still serves what it has), takes a slot under its bounds (else `refused`), and sends the
 * request, without `f`, on its one-hop circuit to the holder over a relay link — the circuit its repair uses (§6.2),
 * shared by every client it forwards for — then hands back the holder's answer. A holder it cannot reach, or that
 * does not answer within CONTENT_FORWARD_TIMEOUT_MS, is `unreachable`: the client asks the next holder.
 *
 * Bounded: forwards in flight per client circuit (MAX_FORWARDS_PER_CIRCUIT), per holder (MAX_FORWARDS_PER_HOLDER:
 * they share one circuit there, which the holder limits to 16 content streams) and per relay (MAX_FORWARDS). A
 * forwarded request carries no `f`, so the holder serves it itself: one forward per request, never a chain.
 *
 * A FETCH's answer is streamed through: the holder's FETCHED and each DATA cell go on to the client as they arrive,
 * so a forward adds one hop's latency to a fetch, not the time to receive a whole item. A STORE's bytes are collected
 * first (they are reserved out of MAX_PENDING_STORE_BYTES, as at a holder) and then sent on.
 *
 * What it does not do: open more than one circuit per holder, or check a fetched item against its routing key (the
 * client does).
 */
import type { Logger } from 'pino';
import { toHex } from '../protocol/bytes.js';
import type { ContentKind, ContentStatus } from '../protocol/content-messages.js';
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { fetchItemInto, storeItem, type FetchSink } from '../net/content-requests.js';
import type { ClientCircuit } from '../net/circuit.js';
import type { CircuitHop } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

/** Forwards in flight from one client circuit (specs/limits.md). */
export const MAX_FORWARDS_PER_CIRCUIT = 12;
/** Forwards in flight to one holder, on the one circuit to it (specs/limits.md). */
export const MAX_FORWARDS_PER_HOLDER = 12;
/** Forwards in flight at this relay (specs/limits.md). */
export const MAX_FORWARDS = 256;
/** From a forward's start to the holder's full answer (specs/limits.md); inside the client's 30 s. */
export const CONTENT_FORWARD_TIMEOUT_MS = 20_000;

export interface ContentForwarderOptions {
  directory: DirectoryStore;
  /** This relay's fingerprint: a request naming it is `unknown` (it would be its own holder). */
  self: string;
  /** The one-hop circuit to a relay over a relay link (relay/replication.ts replicationTransport). */
  circuitTo: (d: Descriptor) => Promise<ClientCircuit>;
  metrics: RelayMetrics;
  log: Logger;
  /** Default MAX_FORWARDS_PER_CIRCUIT. */
  maxPerCircuit?: number;
  /** Default MAX_FORWARDS_PER_HOLDER. */
  maxPerHolder?: number;
  /** Default MAX_FORWARDS. */
  maxInFlight?: number;
  /** Default CONTENT_FORWARD_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** A slot taken for one forward: release() once it settles (idempotent). */
export interface ForwardSlot {
  readonly holder: Descriptor;
  release(): void;
}

export class ContentForwarder {
  private readonly perCircuit = new WeakMap<CircuitHop, number>();
  private readonly perHolder = new Map<string, number>();
  private inFlight = 0;
  private readonly maxPerCircuit: number;
  private readonly maxPerHolder: number;
  private readonly maxInFlight: number;
  readonly timeoutMs: number;

  constructor(private readonly o: ContentForwarderOptions) {
    this.maxPerCircuit = o.maxPerCircuit ?? MAX_FORWARDS_PER_CIRCUIT;
    this.maxPerHolder = o.maxPerHolder ?? MAX_FORWARDS_PER_HOLDER;
    this.maxInFlight = o.maxInFlight ?? MAX_FORWARDS;
    this.timeoutMs = o.timeoutMs ?? CONTENT_FORWARD_TIMEOUT_MS;
  }

  /** Forwards in flight now (status, tests). */
  get size(): number {
    return this.inFlight;
  }

  /**
   * Checks a forward for `hop` to the relay `f` and takes its slot: `unknown` for a holder that is not in the
   * directory (or is this relay), `refused` at a bound (specs/content.md §8.3 item 2).
   */
  admit(hop: CircuitHop, f: Uint8Array): ForwardSlot | 'unknown' | 'refused' {
    const holder = this.o.directory.get(toHex(f));
    if (!holder || holder.fingerprint === this.o.self) {
      this.o.metrics.forwards.inc({ result: 'unknown' });
      return 'unknown';
    }
    const onCircuit = this.perCircuit.get(hop) ?? 0;
    const toHolder = this.perHolder.get(holder.fingerprint) ?? 0;
    if (onCircuit >= this.maxPerCircuit || toHolder >= this.maxPerHolder || this.inFlight >= this.maxInFlight) {
      this.o.metrics.forwards.inc({ result: 'refused' });
      this.o.metrics.drops.inc({ reason: 'content_forward_limit' });
      return 'refused';
    }
    this.perCircuit.set(hop, onCircuit + 1);
    this.perHolder.set(holder.fingerprint, toHolder + 1);
    this.inFlight++;
    let released = false;
    return {
      holder,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        const c = (this.perCircuit.get(hop) ?? 1) - 1;
        if (c > 0) this.perCircuit.set(hop, c);
        else this.perCircuit.delete(hop);
        const h = (this.perHolder.get(holder.fingerprint) ?? 1) - 1;
        if (h > 0) this.perHolder.set(holder.fingerprint, h);
        else this.perHolder.delete(holder.fingerprint);
      },
    };
  }

  /**
   * Fetches from the slot's holder, handing the item to `sink` as it arrives (content.md §8.3 item 3): the holder's
   * `found` and each DATA chunk are passed on at once, not after the whole item. Resolves with `found` once every byte
   * was passed on, `missing`, or `unreachable` — which, after found(), means the holder failed part-way and the
   * client's stream must be ended without its last bytes.
   */
  fetch(slot: ForwardSlot, kind: ContentKind, rk: Uint8Array, head: boolean, signal: AbortSignal, sink: FetchSink): Promise<ContentStatus> {
    return this.run(slot, signal, (c, s) => fetchItemInto(c, kind, rk, sink, { head, signal: s, timeoutMs: this.timeoutMs }));
  }

  /** Stores at the slot's holder: its status. */
  async store(slot: ForwardSlot, kind: ContentKind, rk: Uint8Array, bytes: Uint8Array, cache: boolean, signal: AbortSignal): Promise<ContentStatus> {
    return this.run(slot, signal, (c, s) => storeItem(c, kind, rk, bytes, { cache, signal: s, timeoutMs: this.timeoutMs }));
  }

  /**
   * Runs one request on the circuit to the slot's holder within the forward timeout, and releases the slot. Any
   * failure to get the holder's answer is `unreachable`.
   */
  private async run<T>(slot: ForwardSlot, signal: AbortSignal, f: (c: ClientCircuit, s: AbortSignal) => Promise<T>): Promise<T | 'unreachable'> {
    const s = AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]);
    try {
      const circuit = await abortable(this.o.circuitTo(slot.holder), s);
      const out = await f(circuit, s);
      this.o.metrics.forwards.inc({ result: 'answered' });
      return out;
    } catch (e) {
      this.o.metrics.forwards.inc({ result: 'unreachable' });
      this.o.log.debug({ err: e }, 'content forward failed');
      return 'unreachable';
    } finally {
      slot.release();
    }
  }
}

/** `p`, or a rejection when `signal` aborts first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
