/**
 * One circuit as a relay sees it (specs/circuits.md §3.3): its previous side (link, circuit id), the next side once
 * the onion named a next relay, the hop's relay-cell layer, and the state the reactor keeps for it. What handlers
 * keep for a circuit (a stream multiplexer, a rendezvous registration) they keep in their own tables keyed by the
 * hop, typed there; nothing hangs on the hop under a string key.
 *
 * Also the interface through which endpoint handlers (streams, rendezvous, echo) plug into the reactor.
 */
import type { RelayHop } from '../protocol/onion.js';
import type { RelayHopCrypto } from '../protocol/relay-crypto.js';
import type { RelayMessage } from '../protocol/relay-cell.js';
import { LinkRole } from '../protocol/link-handshake.js';
import type { Link } from '../net/link.js';
import type { CircuitBacklog } from './circuit-backlog.js';

export interface Side {
  readonly link: Link;
  readonly circId: number;
}

/**
 * An extension in progress (the CREATE sent to the next hop, not yet answered): called once, with the next hop's
 * reply, or with null and the status to put in this hop's reply slot (specs/circuits.md §5.2).
 */
export type Extension = (reply: Uint8Array | null, status: number) => void;

/** One circuit as this relay sees it. */
export class CircuitHop {
  next: Side | null = null;
  crypto: RelayHopCrypto | null = null;
  pending: RelayHop | null = null;
  state: 'building' | 'open' | 'closed' = 'building';
  lastActivity: number;
  /** RELAY_EARLY cells seen from the previous side. */
  earlyCount = 0;
  /** The extension waiting for the next hop's CREATED (null when none is in progress). */
  extension: Extension | null = null;
  /** A binding set in place of the crypto's (tests that run a hop without a handshake). */
  private bindingSet: Uint8Array | null = null;
  /** A circuit joined to this one at a rendezvous point: forward cells not for us continue on it. */
  splicedWith: CircuitHop | null = null;
  /** The pool and address block this circuit is counted in (specs/circuits.md §7.1). */
  admittedIn: string | null = null;
  /**
   * The running padding machine's ear (relay/circuit-padding.ts, specs/padding.md §2): the reactor tells it of every
   * cell sent towards the client that is not its own padding, every cell from the client's side, and every DROP
   * addressed here. Null while no machine runs.
   */
  padding: ((event: 'nonpadding-sent' | 'nonpadding-received' | 'padding-received') => void) | null = null;
  /**
   * A running machine that holds real cells (specs/padding.md §2.1): given each encrypted cell body about to go
   * towards the client, returns true if it keeps it (a copy) to send on its schedule. Null while none holds.
   */
  holdBackward: ((body: Uint8Array) => boolean) | null = null;
  /**
   * Its cells still held by congested links, towards the previous and towards the next side: null until a link is
   * congested while it sends (fields of the hop, not an object of their own, as an idle circuit never needs one).
   */
  backlogPrev: CircuitBacklog | null = null;
  backlogNext: CircuitBacklog | null = null;

  constructor(
    readonly id: number,
    readonly prev: Side,
    readonly createdAt: number,
  ) {
    this.lastActivity = createdAt;
  }

  /**
   * The hop's binding value from the handshake (both ends know it; rendezvous and introduction use it): kept with
   * the hop's keys (protocol/relay-crypto.ts) and wiped with them, so null once the circuit closed.
   */
  get binding(): Uint8Array | null {
    if (this.bindingSet) return this.bindingSet;
    return this.state === 'closed' || !this.crypto ? null : this.crypto.binding;
  }

  set binding(b: Uint8Array | null) {
    this.bindingSet = b;
  }

  /** True when the previous side is a client (this relay is the entry). */
  get isEntry(): boolean {
    return this.prev.link.peer?.role === LinkRole.CLIENT;
  }

  /** True when no hop follows this one: relay messages addressed here come from the end of the circuit. */
  get isLast(): boolean {
    return this.next === null;
  }

  /** True while an extension waits for the next hop's answer. */
  get extending(): boolean {
    return this.extension !== null;
  }
}

/** Handles relay messages addressed to this hop (BEGIN, DATA, STORE, ESTABLISH_INTRO, …). */
export interface CircuitEndpointHandler {
  /** Returns true if it handled the command. Throwing an AlliumError tears the circuit down with its destroyReason. */
  deliver(circuit: CircuitHop, message: RelayMessage): boolean;
  /** The circuit closed; free whatever is attached to it. */
  closed(circuit: CircuitHop): void;
  /**
   * True while the handler holds something on the circuit that silence does not end — an open stream, an
   * introduction key or a cookie: the idle timeout spares it (specs/circuits.md §7.3).
   */
  holds?(circuit: CircuitHop): boolean;
  /** Periodic housekeeping (the relay's maintenance interval), with the reactor's clock. */
  maintain?(now: number): void;
}
