/**
 * Forwarding STORE and FETCH one hop to the holder (specs/content.md §8.3). A client's content circuit ends at a
 * store relay, the forwarder; each request names its holder in `f`. The forwarder checks the holder is a relay of
 * its directory other than itself (else `unknown`; a holder whose store is full still serves what it has), takes a slot under its bounds (else `refused`), and sends the
 * request, without `f`, on its one-hop circuit to the holder over a relay link — the circuit its repair uses (§6.2),
 * shared by every client it forwards for — then hands back the holder's answer. `unreachable` only when it could not
 * ask: its circuit to the holder failed or the forward was given up before the request went out. Once the request
 * has gone to the holder, whatever goes wrong — no answer within CONTENT_FORWARD_TIMEOUT_MS, the holder ending the
 * stream, a malformed answer, or the holder itself answering `refused`, `unknown` or `unreachable` — is `failed`, and
 * the client's stream is ended with END HOST_UNREACHABLE: a closed stream on an open circuit, which the client takes
 * as the holder not answering and does not send through another forwarder (§8.2 "Retries"). So only this relay's
 * own answers (`unknown`, `refused`, `unreachable`) can make a client ask the same holder again elsewhere; nothing the
 * holder does can.
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
import { AlliumError, TimeoutError } from '../protocol/errors.js';
import { within } from '../net/abort.js';
import type { ContentKind, ContentStatus } from '../protocol/content-messages.js';
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { fetchItemInto, NOT_ASKED, storeItem, type FetchSink } from '../net/content-requests.js';
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
   * was passed on, `missing`, `unreachable` (the holder was not asked, and found() was not called), or `failed` (it
   * was asked and gave no whole answer, before or after found()): the client's stream must be ended with
   * HOST_UNREACHABLE, never answered `unreachable`.
   */
  fetch(
    slot: ForwardSlot,
    kind: ContentKind,
    rk: Uint8Array,
    head: boolean,
    signal: AbortSignal,
    sink: FetchSink,
  ): Promise<ForwardOutcome<'found' | 'missing'>> {
    return this.run(slot, signal, (c, s, timeoutMs) => fetchItemInto(c, kind, rk, sink, { head, signal: s, timeoutMs }));
  }

  /**
   * Stores at the slot's holder: its status, `unreachable` (not asked) or `failed` (asked, and no answer that may be
   * passed on: the holder's own `refused`, `unknown` or `unreachable` is `failed`, so that it cannot make the client
   * send the item through another forwarder).
   */
  store(slot: ForwardSlot, kind: ContentKind, rk: Uint8Array, bytes: Uint8Array, cache: boolean, signal: AbortSignal): Promise<ForwardOutcome<ContentStatus>> {
    return this.run(slot, signal, async (c, s, timeoutMs) => {
      const status = await storeItem(c, kind, rk, bytes, { cache, signal: s, timeoutMs });
      if (NOT_ASKED.has(status)) throw new AlliumError('ERR_UNREACHABLE', `the holder answered ${status} itself`);
      return status;
    });
  }

  /**
   * Runs one request on the circuit to the slot's holder within the forward timeout, and releases the slot:
   * `unreachable` when it could not be sent (no circuit to the holder, or given up first), `failed` when it was sent
   * and no answer came back. The timeout runs from the forward's start: what waiting for the circuit took is taken
   * off the request's own (net/content-requests.ts), so the one timer of the request bounds the rest, and the
   * caller's signal is passed on as it is (no combined signal and no second timer per forward).
   */
  private async run<T>(
    slot: ForwardSlot,
    signal: AbortSignal,
    f: (c: ClientCircuit, s: AbortSignal, timeoutMs: number) => Promise<T>,
  ): Promise<ForwardOutcome<T>> {
    const start = Date.now();
    let asked = false;
    try {
      const circuit = await within(this.o.circuitTo(slot.holder), { signal, timeoutMs: this.timeoutMs, timeoutMessage: 'content forward timed out' });
      const left = this.timeoutMs - (Date.now() - start);
      if (left <= 0) throw new TimeoutError('content forward timed out');
      // fetchItemInto and storeItem send the request at once when the circuit is open and the signal is not aborted.
      asked = circuit.state === 'open' && !signal.aborted;
      const out = await f(circuit, signal, left);
      this.o.metrics.forwards.inc({ result: 'answered' });
      return out;
    } catch (e) {
      const result = asked ? 'failed' : 'unreachable';
      this.o.metrics.forwards.inc({ result });
      this.o.log.debug({ err: e, result }, 'content forward failed');
      return result;
    } finally {
      slot.release();
    }
  }
}

/**
 * A forward's end: the holder's answer, `unreachable` (the holder was not asked: answered so, and the client may ask
 * it through another forwarder) or `failed` (it was asked: the client's stream is ended with HOST_UNREACHABLE).
 */
export type ForwardOutcome<T> = T | 'unreachable' | 'failed';
