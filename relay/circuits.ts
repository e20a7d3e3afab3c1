/**
 * The circuit reactor: what a relay does with CREATE, CREATED, RELAY and DESTROY cells (specs/circuits.md §3.3,
 * specs/cells.md §6, specs/relay-crypto.md §5).
 *
 * A relay is one hop of many circuits. For each it knows the previous side (link, circuit id) and, when the onion
 * named a next relay, the next side. A built circuit never gains a hop: EXTEND is withdrawn (specs/circuits.md §6).
 * Forward cells lose this hop's layer and go on, or are delivered here; backward cells gain this hop's layer and go
 * back. Any cell that fails its tag, arrives in the wrong state or from the wrong side tears the
 * circuit down in both directions; a closed link tears down every circuit on it and tells the other side.
 *
 * What peers can make it hold is bounded (specs/circuits.md §7.1): circuits per relay, per link, and per address block
 * of the previous hop (a pool for client links, a larger one for relay links); CREATEs are rate limited per client
 * link and per address block before their onion costs an X25519 per onion key (§7.2); a circuit that ends here
 * and has been silent for CIRCUIT_IDLE_TIMEOUT_MS, with no handler holding anything on it (a stream, a
 * registration), is destroyed by `maintain()` (§7.3). Cells are forwarded without holding them back, but a circuit whose cells pile up in a
 * congested link — more than MAX_CIRCUIT_BACKLOG_CELLS of them still held there — is destroyed (specs/link.md §4.2),
 * and cells sent into congested links are reported (`onCongestedCells`) so the out-of-memory check runs before the
 * next maintenance pass when they add up.
 *
 * Not here: streams and exits (relay/exit.ts), content (relay/content), rendezvous (relay/rendezvous) — they plug in
 * through `CircuitEndpointHandler` for relay messages addressed to this hop.
 *
 * Why this file is above ~400 lines: the reactor is one state machine over one circuit table — CREATE admission,
 * forwarding in both directions, teardown on either side and the idle sweep all move the same entries and must
 * release the same counts. What is separable already is apart: the per-block counts and CREATE rates
 * (relay/circuit-admission.ts), the hop state (relay/circuit-hop.ts), the backlog (relay/circuit-backlog.ts), and
 * everything addressed to this hop (the endpoint handlers).
 */
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import type { IdentityKey } from '../crypto/keys.js';
import {
  CellCommand,
  MAX_RELAY_EARLY,
  createBody,
  createdBody,
  decodeCreateBody,
  decodeCreatedBody,
  decodeDestroyBody,
  destroyBody,
  destroyReasonOf,
  DestroyReason,
  type Cell,
} from '../protocol/cell.js';
import { CELL_BODY_LEN, RELAY_TAG_AREA_LEN } from '../protocol/constants.js';
import { AlliumError, isAlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import { processOnion, ReplyStatus, type ReplayGuard } from '../protocol/onion.js';
import { RelayHopCrypto, payloadOf } from '../protocol/relay-crypto.js';
import { decodeRelayPayload, encodeRelayPayloadInto, RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import type { Link } from '../net/link.js';
import type { KeyPair } from '../crypto/index.js';
import type { RelayMetrics } from './metrics.js';
import { CircuitAdmission, type CircuitAdmissionLimits } from './circuit-admission.js';
import { CircuitBacklog } from './circuit-backlog.js';
import { CircuitHop, type CircuitEndpointHandler, type Extension, type Side } from './circuit-hop.js';

export { CircuitHop, type CircuitEndpointHandler, type Side } from './circuit-hop.js';
export {
  CREATES_PER_SECOND_PER_BLOCK,
  CREATES_PER_SECOND_PER_LINK,
  CREATES_PER_SECOND_PER_RELAY_BLOCK,
  MAX_CIRCUITS_PER_BLOCK,
  MAX_CIRCUITS_PER_RELAY_BLOCK,
} from './circuit-admission.js';

/** Circuits a relay carries (specs/limits.md). */
export const MAX_CIRCUITS = 65_536;
/** Circuit ids in use on one link. */
export const MAX_CIRCUITS_PER_LINK = 16_384;
/** Silence after which a circuit that ends here, and on which nothing is held, is destroyed. */
export const CIRCUIT_IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * Cells of one circuit, in one direction, that a congested link may hold (specs/link.md §4.2): above the 2000 DATA
 * cells a window lets an honest circuit have in flight, with room for the cells that are not flow-controlled.
 */
export const MAX_CIRCUIT_BACKLOG_CELLS = 2500;

export interface CircuitReactorOptions extends CircuitAdmissionLimits {
  identity: IdentityKey;
  onionKeys: () => readonly KeyPair[];
  replay: ReplayGuard;
  /** Opens or reuses a link to a relay; rejects with ERR_UNREACHABLE. */
  linkTo: (identity: Uint8Array) => Promise<Link>;
  metrics: RelayMetrics;
  log: Logger;
  now?: () => number;
  /** Circuits at most (default MAX_CIRCUITS), per link (MAX_CIRCUITS_PER_LINK). */
  maxCircuits?: number;
  maxCircuitsPerLink?: number;
  /** Silence after which an idle circuit ending here is destroyed (CIRCUIT_IDLE_TIMEOUT_MS). */
  circuitIdleTimeoutMs?: number;
  /** Cells of one circuit and direction a congested link may hold (MAX_CIRCUIT_BACKLOG_CELLS). */
  maxCircuitBacklogCells?: number;
  /** Told of every cell sent into a congested link (the out-of-memory handler counts them). */
  onCongestedCells?: (cells: number) => void;
  /** True for circuit ids of circuits this relay originated (they are handled by their own table). */
  originated?: (link: Link, circId: number) => boolean;
  /** How long the next hop may take to answer CREATE before the extension fails (specs/limits.md). */
  extendTimeoutMs?: number;
}

/** Which side of `hop` the circuit id `circId` on `link` names (one of its two, as byLink holds it). */
function sideOf(hop: CircuitHop, link: Link, circId: number): 'prev' | 'next' {
  return hop.prev.link === link && hop.prev.circId === circId ? 'prev' : 'next';
}

/** Circuit ids: the side that opened a link uses ids with the top bit set, the other side ids without. */
const HIGH = 0x80000000;
/** The body of a cell this relay originates, from encoding to the link's queue (sendBackward). */
const originBody = new Uint8Array(CELL_BODY_LEN);

export class CircuitReactor {
  /**
   * Every circuit by link and circuit id, one entry per side. The entry is the hop itself: which side of it a cell
   * came from follows from the link and id (sideOf), so a circuit costs no object per side here.
   */
  private readonly byLink = new Map<Link, Map<number, CircuitHop>>();
  private readonly handlers: CircuitEndpointHandler[] = [];
  private nextHopId = 1;
  private count = 0;
  private readonly now: () => number;
  private readonly maxCircuits: number;
  private readonly maxPerLink: number;
  private readonly extendTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  /** Circuits per address block and CREATE rates (specs/circuits.md §7.1, §7.2). */
  private readonly admission: CircuitAdmission;

  constructor(private readonly o: CircuitReactorOptions) {
    this.now = o.now ?? Date.now;
    this.maxCircuits = o.maxCircuits ?? MAX_CIRCUITS;
    this.maxPerLink = o.maxCircuitsPerLink ?? MAX_CIRCUITS_PER_LINK;
    this.extendTimeoutMs = o.extendTimeoutMs ?? 20_000;
    this.idleTimeoutMs = o.circuitIdleTimeoutMs ?? CIRCUIT_IDLE_TIMEOUT_MS;
    this.admission = new CircuitAdmission(o, this.now);
  }

  /** Circuits counted for the address block of `link`'s peer (tests, status). */
  circuitsFromBlockOf(link: Link): number {
    return this.admission.circuitsFromBlockOf(link);
  }

  get size(): number {
    return this.count;
  }

  addHandler(h: CircuitEndpointHandler): void {
    this.handlers.push(h);
  }

  /** Every circuit, for the out-of-memory handler and status pages. */
  *circuits(): Generator<CircuitHop> {
    const seen = new Set<CircuitHop>();
    for (const m of this.byLink.values()) {
      for (const hop of m.values()) {
        if (seen.has(hop)) continue;
        seen.add(hop);
        yield hop;
      }
    }
  }

  private table(link: Link): Map<number, CircuitHop> {
    let t = this.byLink.get(link);
    if (!t) this.byLink.set(link, (t = new Map()));
    return t;
  }

  private allocCircId(link: Link, weOpened: boolean): number {
    const t = this.table(link);
    for (let tries = 0; tries < 64; tries++) {
      const r = new DataView(crypto().random(4).buffer).getUint32(0);
      const id = weOpened ? (r | HIGH) >>> 0 : r & ~HIGH;
      if (id !== 0 && !t.has(id) && !this.o.originated?.(link, id)) return id;
    }
    throw new AlliumError('ERR_LIMIT', 'no free circuit id on link');
  }

  /** Entry point for every circuit cell arriving on a link. */
  onCell(link: Link, cell: Cell): void {
    if (this.o.originated?.(link, cell.circId)) return; // a circuit this relay built itself (replication)
    const hop = this.byLink.get(link)?.get(cell.circId);
    const side = hop && sideOf(hop, link, cell.circId);
    try {
      switch (cell.command) {
        case CellCommand.CREATE:
          if (hop) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'CREATE for a circuit id in use');
          return this.onCreate(link, cell);
        case CellCommand.CREATED:
          if (!hop || side !== 'next' || hop.state !== 'building') throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'unexpected CREATED');
          return this.onCreated(hop, cell);
        case CellCommand.RELAY:
        case CellCommand.RELAY_EARLY:
          if (!hop) return void this.o.metrics.drops.inc({ reason: 'relay_unknown_circuit' });
          return this.onRelay(hop, side!, cell.body, cell.command === CellCommand.RELAY_EARLY);
        case CellCommand.DESTROY:
          if (!hop) return;
          decodeDestroyBody(cell.body);
          return this.onDestroy(hop, side!);
        default:
          throw new ProtocolError('ERR_CELL_COMMAND', 'unexpected cell command');
      }
    } catch (e) {
      const err = isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'circuit cell handling failed', { cause: e });
      this.o.metrics.errors.inc({ code: err.code });
      if (hop) this.destroy(hop, destroyReasonOf(err));
      else if (cell.circId !== 0) this.trySend(link, cell.circId, CellCommand.DESTROY, destroyBody(destroyReasonOf(err)));
      if (err.kind === 'internal') this.o.log.error({ err }, 'circuit cell handling failed');
    }
  }

  private onCreate(link: Link, cell: Cell): void {
    const header = decodeCreateBody(cell.body);
    const perLink = this.byLink.get(link)?.size ?? 0;
    const admitted = this.count >= this.maxCircuits || perLink >= this.maxPerLink ? 'circuit_limit' : this.admission.admit(link);
    if (typeof admitted === 'string') {
      this.o.metrics.drops.inc({ reason: admitted });
      this.trySend(link, cell.circId, CellCommand.DESTROY, destroyBody(DestroyReason.RESOURCE_LIMIT));
      return;
    }
    let result;
    try {
      result = processOnion(header, { identity: this.o.identity.publicKey, onionKeys: this.o.onionKeys(), replay: this.o.replay });
    } catch (e) {
      const err = isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'onion processing failed', { cause: e });
      this.o.metrics.errors.inc({ code: err.code });
      this.trySend(link, cell.circId, CellCommand.DESTROY, destroyBody(destroyReasonOf(err)));
      return;
    }
    const hop = new CircuitHop(this.nextHopId++, { link, circId: cell.circId }, this.now());
    hop.crypto = new RelayHopCrypto(result.hop.keys);
    this.table(link).set(cell.circId, hop);
    this.count++;
    this.admission.count(hop, admitted.key);
    this.o.metrics.circuits.set(this.count);
    this.o.metrics.circuitsBuilt.inc({ role: hop.isEntry ? 'entry' : result.kind === 'terminal' ? 'last' : 'middle' });
    if (result.kind === 'terminal') {
      this.sendCreated(hop, result.hop.reply(null));
      result.hop.wipe();
      return;
    }
    hop.pending = result.hop;
    this.extend(hop, result.next, result.header, (reply, status) => {
      const pending = hop.pending!;
      hop.pending = null;
      this.sendCreated(hop, pending.reply(reply, status));
      pending.wipe();
    });
  }

  /**
   * Opens the next hop: a link to `identity`, then CREATE with `header`. Calls `done(reply, status)` once: with the
   * next hop's reply on success, or (null, status) when it could not be reached or refused.
   */
  private extend(hop: CircuitHop, identity: Uint8Array, header: Uint8Array, done: (reply: Uint8Array | null, status: number) => void): void {
    // The deadline is cleared as soon as the extension ends either way: a pending timer would keep the hop and the
    // onion header alive for the whole timeout after every circuit built through here.
    const finish: Extension = (reply, status) => {
      clearTimeout(timer);
      done(reply, status);
    };
    hop.extension = finish;
    const timer = setTimeout(() => {
      if (hop.state === 'closed' || hop.extension !== finish) return;
      this.o.metrics.drops.inc({ reason: 'extend_timeout' });
      if (hop.next) this.trySend(hop.next.link, hop.next.circId, CellCommand.DESTROY, destroyBody(DestroyReason.TIMEOUT));
      this.extendFailed(hop, ReplyStatus.NEXT_FAILED);
    }, this.extendTimeoutMs);
    (timer as { unref?: () => void }).unref?.();
    this.o.linkTo(identity).then(
      (link) => {
        if (hop.state === 'closed') return;
        if (link.isClosed) return this.extendFailed(hop, ReplyStatus.NEXT_UNREACHABLE);
        const circId = this.allocCircId(link, link.initiatedHere);
        hop.next = { link, circId };
        this.table(link).set(circId, hop);
        if (!this.trySend(link, circId, CellCommand.CREATE, createBody(header))) this.extendFailed(hop, ReplyStatus.NEXT_UNREACHABLE);
      },
      () => {
        this.o.metrics.drops.inc({ reason: 'extend_unreachable' });
        if (hop.state !== 'closed') this.extendFailed(hop, ReplyStatus.NEXT_UNREACHABLE);
      },
    );
  }

  private extendFailed(hop: CircuitHop, status: number): void {
    const done = hop.extension;
    hop.extension = null;
    if (hop.next) {
      this.byLink.get(hop.next.link)?.delete(hop.next.circId);
      hop.next = null;
    }
    done?.(null, status);
  }

  private onCreated(hop: CircuitHop, cell: Cell): void {
    const reply = decodeCreatedBody(cell.body);
    const done = hop.extension;
    hop.extension = null;
    if (!done) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'CREATED without an extension in progress');
    done(Uint8Array.from(reply), ReplyStatus.OK);
  }

  private sendCreated(hop: CircuitHop, reply: Uint8Array): void {
    hop.state = 'open';
    this.trySend(hop.prev.link, hop.prev.circId, CellCommand.CREATED, createdBody(reply));
  }

  private onRelay(hop: CircuitHop, side: 'prev' | 'next', body: Uint8Array, early: boolean): void {
    if (hop.state !== 'open' || !hop.crypto) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'RELAY cell on a circuit that is not open');
    hop.lastActivity = this.now();
    if (early) {
      if (side !== 'prev') throw new ProtocolError('ERR_RELAY_EARLY', 'RELAY_EARLY travelling backward');
      if (++hop.earlyCount > MAX_RELAY_EARLY) throw new ProtocolError('ERR_RELAY_EARLY', 'too many RELAY_EARLY cells on one circuit');
    }
    if (side === 'next') {
      hop.crypto.wrapBackward(body);
      this.sendTowardsClient(hop, body);
      return;
    }
    const verdict = hop.crypto.unwrapForward(body);
    if (verdict === 'forward') {
      hop.padding?.('nonpadding-received');
      const other = hop.splicedWith;
      if (other) {
        // A rendezvous point: the cell is for the peer at the other end; it travels back along the other circuit.
        if (other.state !== 'open' || !other.crypto) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'spliced circuit closed');
        other.crypto.wrapBackward(body);
        this.sendTowardsClient(other, body);
        return;
      }
      if (!hop.next || hop.extending) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'forward cell at the last hop');
      this.send(hop, hop.next, body, early ? CellCommand.RELAY_EARLY : CellCommand.RELAY);
      return;
    }
    const msg = decodeRelayPayload(payloadOf(body));
    if (msg.command !== RelayCommand.DROP) hop.padding?.('nonpadding-received');
    this.deliver(hop, msg);
  }

  private deliver(hop: CircuitHop, msg: RelayMessage): void {
    switch (msg.command) {
      case RelayCommand.DROP:
        // Padding addressed here: the client's half of a machine (specs/padding.md §2), or long-range padding.
        this.o.metrics.circuitPaddingReceived.inc();
        hop.padding?.('padding-received');
        return;
      case RelayCommand.EXTEND:
      case RelayCommand.EXTENDED:
        // Withdrawn (specs/circuits.md §6): a circuit has the hops its onion named; no message adds one.
        throw new ProtocolError('ERR_RELAY_COMMAND', 'EXTEND and EXTENDED are withdrawn');
      case RelayCommand.TRUNCATE:
        if (hop.next) this.trySend(hop.next.link, hop.next.circId, CellCommand.DESTROY, destroyBody(DestroyReason.REQUESTED));
        this.detachNext(hop);
        this.sendBackward(hop, { command: RelayCommand.TRUNCATED, streamId: 0, data: new Uint8Array(0) });
        return;
    }
    for (const h of this.handlers) if (h.deliver(hop, msg)) return;
    throw new ProtocolError('ERR_RELAY_COMMAND', `relay command ${msg.command} not accepted here`);
  }

  /** Sends a relay message from this hop back towards the client. */
  sendBackward(hop: CircuitHop, msg: RelayMessage): boolean {
    if (hop.state !== 'open' || !hop.crypto) return false;
    // The link copies the cell into its frame when it queues it, so one body serves every cell originated here.
    const body = originBody;
    body.fill(0, RELAY_TAG_AREA_LEN);
    encodeRelayPayloadInto(body, RELAY_TAG_AREA_LEN, msg);
    hop.crypto.originateBackwardInPlace(body);
    // A machine's own DROPs are its padding; every other cell towards the client counts as non-padding.
    if (msg.command === RelayCommand.DROP) return this.send(hop, hop.prev, body);
    return this.sendTowardsClient(hop, body);
  }

  /**
   * A real cell (encrypted) towards the client: held by a machine that holds the circuit's cells (specs/padding.md
   * §2.1), or sent, the machine told.
   */
  private sendTowardsClient(hop: CircuitHop, body: Uint8Array): boolean {
    if (hop.holdBackward?.(body)) return true;
    if (!this.send(hop, hop.prev, body)) return false;
    hop.padding?.('nonpadding-sent');
    return true;
  }

  /** Sends a cell a padding machine held (its body encrypted when it was held), towards the client. */
  sendHeldBackward(hop: CircuitHop, body: Uint8Array): boolean {
    if (hop.state !== 'open') return false;
    return this.send(hop, hop.prev, body);
  }

  /** Whether the link towards the client is congested (handlers stop reading their sources). */
  backwardCongested(hop: CircuitHop): boolean {
    return hop.prev.link.isCongested;
  }

  private send(hop: CircuitHop, side: Side, body: Uint8Array, command: CellCommand = CellCommand.RELAY): boolean {
    try {
      side.link.sendCell(side.circId, command, body);
      this.account(hop, side);
      return true;
    } catch (e) {
      const code = isAlliumError(e) ? e.code : 'ERR_INTERNAL';
      this.o.metrics.drops.inc({ reason: code === 'ERR_LIMIT' ? 'link_queue_full' : 'link_closed' });
      this.destroy(hop, DestroyReason.RESOURCE_LIMIT);
      return false;
    }
  }

  /**
   * Counts a cell just sent on `side` against the circuit's backlog there while the link is congested; past the
   * limit the circuit is destroyed (RESOURCE_LIMIT), the other circuits of the link go on.
   */
  private account(hop: CircuitHop, side: Side): void {
    const prev = side === hop.prev;
    const link = side.link;
    // Over the mark counts cells still queued in the link too: they are written only on its next flush.
    if (!link.isCongested && !link.overHighWater) {
      if (prev) {
        hop.backlogPrev?.clear();
        hop.backlogPrev = null;
      } else {
        hop.backlogNext?.clear();
        hop.backlogNext = null;
      }
      return;
    }
    this.o.onCongestedCells?.(1);
    const backlog = prev ? (hop.backlogPrev ??= new CircuitBacklog()) : (hop.backlogNext ??= new CircuitBacklog());
    if (backlog.add(link) <= (this.o.maxCircuitBacklogCells ?? MAX_CIRCUIT_BACKLOG_CELLS)) return;
    const err = new LimitError('MAX_CIRCUIT_BACKLOG_CELLS', 'cells of one circuit waiting in a congested link');
    this.o.metrics.drops.inc({ reason: 'circuit_backlog' });
    this.o.metrics.errors.inc({ code: err.code });
    this.o.log.debug({ limit: err.limit }, 'circuit destroyed');
    this.destroy(hop, DestroyReason.RESOURCE_LIMIT);
  }

  private trySend(link: Link, circId: number, command: CellCommand, body: Uint8Array): boolean {
    if (body.length !== CELL_BODY_LEN) throw new AlliumError('ERR_INTERNAL', 'cell body size');
    try {
      link.sendCell(circId, command, body);
      return true;
    } catch {
      return false;
    }
  }

  private onDestroy(hop: CircuitHop, side: 'prev' | 'next'): void {
    if (side === 'next' && hop.extending) {
      this.extendFailed(hop, ReplyStatus.NEXT_FAILED);
      return;
    }
    this.destroy(hop, DestroyReason.REQUESTED, side);
  }

  private detachNext(hop: CircuitHop): void {
    if (!hop.next) return;
    this.byLink.get(hop.next.link)?.delete(hop.next.circId);
    hop.next = null;
  }

  /** Tears a circuit down, telling every side except `from` (the side the teardown came from). */
  destroy(hop: CircuitHop, reason: DestroyReason, from?: 'prev' | 'next'): void {
    if (hop.state === 'closed') return;
    hop.state = 'closed';
    if (from !== 'prev') this.trySend(hop.prev.link, hop.prev.circId, CellCommand.DESTROY, destroyBody(reason));
    if (hop.next && from !== 'next') this.trySend(hop.next.link, hop.next.circId, CellCommand.DESTROY, destroyBody(reason));
    this.byLink.get(hop.prev.link)?.delete(hop.prev.circId);
    if (hop.next) this.byLink.get(hop.next.link)?.delete(hop.next.circId);
    hop.crypto?.wipe();
    hop.pending?.wipe();
    hop.backlogPrev = null;
    hop.backlogNext = null;
    hop.extension = null;
    for (const h of this.handlers) h.closed(hop);
    const other = hop.splicedWith;
    hop.splicedWith = null;
    if (other) {
      other.splicedWith = null;
      this.destroy(other, DestroyReason.FINISHED);
    }
    this.count--;
    this.admission.release(hop);
    this.o.metrics.circuits.set(this.count);
  }

  /**
   * Housekeeping, every maintenance interval: destroys (reason FINISHED) each circuit that ends here — no next hop,
   * not spliced — has carried no relay cell for the idle timeout, and on which no handler holds anything; then runs
   * the handlers' own housekeeping. A circuit passing through is left to its last hop, whose DESTROY reaches it.
   */
  maintain(now: number = this.now()): void {
    for (const hop of [...this.circuits()]) {
      if (hop.state !== 'open' || hop.next || hop.splicedWith || now - hop.lastActivity < this.idleTimeoutMs) continue;
      if (this.handlers.some((h) => h.holds?.(hop))) continue;
      this.o.metrics.drops.inc({ reason: 'circuit_idle' });
      this.destroy(hop, DestroyReason.FINISHED);
    }
    for (const h of this.handlers) h.maintain?.(now);
    this.admission.sweep();
  }

  /** A link closed: tear down every circuit on it and tell the other side. */
  onLinkClosed(link: Link): void {
    const t = this.byLink.get(link);
    if (!t) return;
    this.byLink.delete(link);
    for (const [circId, hop] of [...t.entries()]) {
      const side = sideOf(hop, link, circId);
      if (side === 'next' && hop.extending) {
        hop.next = null;
        this.extendFailed(hop, ReplyStatus.NEXT_FAILED);
        continue;
      }
      this.destroy(hop, DestroyReason.LINK_CLOSED, side);
    }
  }

  /** Joins two circuits whose last hop is this relay (a rendezvous point). */
  splice(a: CircuitHop, b: CircuitHop): void {
    if (a.splicedWith || b.splicedWith || a.next || b.next) throw new ProtocolError('ERR_CELL_CIRCUIT_ID', 'circuit cannot be spliced');
    a.splicedWith = b;
    b.splicedWith = a;
  }

  /** Destroys every circuit (shutdown). */
  closeAll(reason: DestroyReason): void {
    for (const hop of [...this.circuits()]) this.destroy(hop, reason);
  }

  /** Reports whether a circuit id is in use on a link (tests). */
  has(link: Link, circId: number): boolean {
    return this.byLink.get(link)?.has(circId) ?? false;
  }
}
