/**
 * A client circuit (specs/circuits.md): built in one round trip with the setup onion (never extended afterwards,
 * §6), carrying streams to its last hop through a StreamMux, torn down with DESTROY.
 *
 * Every backward cell must authenticate at every layer; any failure tears the circuit down (ERR_RELAY_MAC). What
 * the client then accepts is restricted per circuit (specs/relay-crypto.md §6.2): a reply it waits for only from
 * the hop the request went to, DROP and TRUNCATED from any hop, and otherwise only what the circuit's purpose lets
 * its last hop send; anything else destroys the circuit (ERR_RELAY_COMMAND).
 */
import { crypto } from '../crypto/index.js';
import { CELL_BODY_LEN, RELAY_PAYLOAD_LEN } from '../protocol/constants.js';
import { CellCommand, createBody, decodeCreatedBody, decodeDestroyBody, destroyBody, destroyReasonOf, DestroyReason, type Cell } from '../protocol/cell.js';
import { purposeAccepts, type CircuitPurpose } from '../protocol/circuit-purpose.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { AlliumError, CryptoError, isAlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import {
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  PaddingCommand,
  PaddingStatus,
  paddingMachine,
  paddingRttUnits,
  scheduleScale,
  type PaddingMachineId,
} from '../protocol/circuit-padding.js';
import { createOnion, openReply, ReplyStatus, wipeClientOnion, type OnionHop } from '../protocol/onion.js';
import type { HopKeys } from '../protocol/ntor.js';
import { ClientCircuitCrypto, payloadOf } from '../protocol/relay-crypto.js';
import { decodeRelayPayload, encodeRelayPayloadInto, RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { settleWithin, signalOption, type AbortOptions } from './abort.js';
import { ClientPaddingDriver } from './circuit-padding.js';
import { Emitter } from './emitter.js';
import type { Link } from './link.js';
import { StreamMux } from './stream-mux.js';

export type CircuitEvents = {
  'circuit:close': [AlliumError | null];
  /** A relay message from the last hop that the circuit's purpose takes and no built-in handler took (INTRODUCE2). */
  'circuit:message': [number, RelayMessage];
};

const HIGH = 0x80000000;
/** The payload and body of the relay cell being sent (sendRaw): the link copies each cell when it queues it. */
const sendPayload = new Uint8Array(RELAY_PAYLOAD_LEN);
const sendBody = new Uint8Array(CELL_BODY_LEN);

/** Routes cells arriving on a client's links to its circuits. */
export class CircuitTable {
  private readonly byLink = new Map<Link, Map<number, ClientCircuit | PendingBuild>>();

  /**
   * `isTaken` lets a relay that also originates circuits (replication) avoid ids its circuit reactor uses; ids
   * follow the link rule: the side that dialed the link uses the top bit.
   */
  constructor(private readonly isTaken: (link: Link, circId: number) => boolean = () => false) {}

  has(link: Link, circId: number): boolean {
    return this.byLink.get(link)?.has(circId) ?? false;
  }

  attach(link: Link): void {
    if (this.byLink.has(link)) return;
    const t = new Map<number, ClientCircuit | PendingBuild>();
    this.byLink.set(link, t);
    link.on('link:cell', (cell) => t.get(cell.circId)?.onCell(cell));
    link.once('link:close', (err) => {
      this.byLink.delete(link);
      for (const c of [...t.values()]) c.onLinkClosed(err);
    });
  }

  allocate(link: Link, owner: ClientCircuit | PendingBuild): number {
    this.attach(link);
    const t = this.byLink.get(link)!;
    for (;;) {
      const r = new DataView(crypto().random(4).buffer).getUint32(0);
      const id = link.initiatedHere ? (r | HIGH) >>> 0 : r & ~HIGH;
      if (id !== 0 && !t.has(id) && !this.isTaken(link, id)) {
        t.set(id, owner);
        return id;
      }
    }
  }

  set(link: Link, circId: number, owner: ClientCircuit | PendingBuild): void {
    this.byLink.get(link)?.set(circId, owner);
  }

  release(link: Link, circId: number): void {
    this.byLink.get(link)?.delete(circId);
  }

  get count(): number {
    let n = 0;
    for (const t of this.byLink.values()) n += t.size;
    return n;
  }
}

interface PendingBuild {
  onCell(cell: Cell): void;
  onLinkClosed(err: AlliumError | null): void;
}

let nextCircuitNumber = 1;

export class ClientCircuit extends Emitter<CircuitEvents> {
  readonly number = nextCircuitNumber++;
  readonly mux: StreamMux;
  state: 'open' | 'closed' = 'open';
  readonly path: Descriptor[];
  readonly createdAt = Date.now();
  /** Stream isolation key this circuit is bound to (null until first used). */
  isolation: string | null = null;
  dirtySince: number | null = null;
  /** What the last hop may send unasked (specs/relay-crypto.md §6.2); set by the circuit's owner. */
  purpose: CircuitPurpose = 'general';
  /** The client's half of the padding machine negotiated on this circuit, and its hop (specs/padding.md). */
  private padding: { driver: ClientPaddingDriver; hop: number } | null = null;
  /** Padding cells sent by machines stopped earlier on this circuit. */
  private paddingEarlier = 0;
  /** Replies waited for, by command, with the hop each must come from. */
  private readonly waiters = new Map<number, { hop: number; deliver: (m: RelayMessage) => void }>();

  /** Each hop's binding value from its handshake (introduction uses the last hop's). */
  readonly bindings: Uint8Array[];

  constructor(
    readonly link: Link,
    readonly circId: number,
    private readonly cc: ClientCircuitCrypto,
    path: readonly Descriptor[],
    private readonly table: CircuitTable,
    bindings: readonly Uint8Array[] = [],
  ) {
    super();
    this.path = [...path];
    this.bindings = [...bindings];
    this.mux = new StreamMux({
      send: (m) => this.send(m),
      lastSentTag: () => cc.lastForwardTag,
      lastReceivedTag: () => cc.lastBackwardTag,
      congested: () => link.isCongested,
      onDrain: (fn) => link.once('link:drain', fn),
    });
    this.mux.on('mux:error', (err) => this.close(err, destroyReasonOf(err)));
    table.set(link, circId, this);
  }

  get hops(): number {
    return this.cc.length;
  }

  /**
   * Sends a relay message to hop `hop` (default: the last). Returns false if the circuit is closed or full. While the
   * padding machine holds real cells (specs/padding.md §2.1) the cell is encrypted now and sent on its schedule; a
   * SENDME never waits for it (the far end's window would).
   */
  send(msg: RelayMessage, hop = this.cc.length - 1): boolean {
    const body = this.wrap(msg, hop);
    if (!body) return false;
    if (this.padding?.driver.hold(body, msg.command === RelayCommand.SENDME)) return true;
    if (!this.sendBody(body)) return false;
    this.padding?.driver.on('nonpadding-sent');
    return true;
  }

  private sendRaw(msg: RelayMessage, hop: number): boolean {
    const body = this.wrap(msg, hop);
    return body !== null && this.sendBody(body);
  }

  /** The cell body of `msg` encrypted for `hop` (a shared buffer: the link copies it when it queues it). */
  private wrap(msg: RelayMessage, hop: number): Uint8Array | null {
    if (this.state !== 'open') return null;
    try {
      // Every circuit encodes and encrypts in the same two buffers.
      sendPayload.fill(0);
      encodeRelayPayloadInto(sendPayload, 0, msg);
      return this.cc.wrapForwardInto(sendBody, sendPayload, hop);
    } catch (e) {
      this.close(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'send failed', { cause: e }), DestroyReason.RESOURCE_LIMIT);
      return null;
    }
  }

  private sendBody(body: Uint8Array): boolean {
    if (this.state !== 'open') return false;
    try {
      this.link.sendCell(this.circId, CellCommand.RELAY, body);
      return true;
    } catch (e) {
      this.close(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'send failed', { cause: e }), DestroyReason.RESOURCE_LIMIT);
      return false;
    }
  }

  /** Sets what the last hop may send unasked from now on (specs/relay-crypto.md §6.2). */
  setPurpose(purpose: CircuitPurpose): void {
    this.purpose = purpose;
  }

  /**
   * Waits for the reply `command` (rendezvous replies) to a request about to be sent to the last hop. Only
   * that hop may send it, once: the same command from another hop destroys the circuit (ERR_RELAY_COMMAND), and so
   * does one nobody waits for.
   */
  waitFor(command: RelayCommand, timeoutMs: number, options: AbortOptions & { hop?: number } = {}): Promise<RelayMessage> {
    const hop = options.hop ?? this.cc.length - 1;
    return settleWithin<RelayMessage>(
      (done) => {
        if (this.state !== 'open') return done(new AlliumError('ERR_LINK_CLOSED', 'circuit closed'));
        const offClose = this.once('circuit:close', (err) => done(err ?? new AlliumError('ERR_LINK_CLOSED', 'circuit closed')));
        const waiter = { hop, deliver: (m: RelayMessage): void => done(null, m) };
        this.waiters.set(command, waiter);
        return () => {
          offClose();
          if (this.waiters.get(command) === waiter) this.waiters.delete(command);
        };
      },
      { timeoutMs, timeoutMessage: 'no reply on circuit', ...options },
    );
  }

  onCell(cell: Cell): void {
    if (this.state !== 'open') return;
    try {
      if (cell.command === CellCommand.DESTROY) {
        decodeDestroyBody(cell.body);
        this.table.release(this.link, this.circId);
        this.finish(new AlliumError('ERR_LINK_CLOSED', 'circuit destroyed by a relay'));
        return;
      }
      if (cell.command !== CellCommand.RELAY) throw new ProtocolError('ERR_CELL_COMMAND', 'unexpected cell on an open circuit');
      const origin = this.cc.unwrapBackward(cell.body);
      const msg = decodeRelayPayload(payloadOf(cell.body));
      if (this.padding) this.padding.driver.on(msg.command === RelayCommand.DROP && origin === this.padding.hop ? 'padding-received' : 'nonpadding-received');
      // specs/relay-crypto.md §6.2, in its order.
      const waiter = this.waiters.get(msg.command);
      if (waiter) {
        if (origin !== waiter.hop)
          throw new ProtocolError('ERR_RELAY_COMMAND', `a reply (relay command ${msg.command}) from hop ${origin}, not from the hop asked`);
        return waiter.deliver(msg);
      }
      if (msg.command === RelayCommand.DROP) return;
      if (msg.command === RelayCommand.TRUNCATED) return this.close(new AlliumError('ERR_LINK_CLOSED', 'circuit truncated'), DestroyReason.FINISHED);
      if (origin !== this.cc.length - 1) throw new ProtocolError('ERR_RELAY_COMMAND', `relay command ${msg.command} from hop ${origin}, which is not the last`);
      if (!purposeAccepts(this.purpose, msg.command))
        throw new ProtocolError('ERR_RELAY_COMMAND', `relay command ${msg.command} is not taken on a ${this.purpose} circuit`);
      if (this.mux.onMessage(msg)) return;
      this.emit('circuit:message', origin, msg);
    } catch (e) {
      const err = isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'cell handling failed', { cause: e });
      this.close(err, destroyReasonOf(err));
    }
  }

  onLinkClosed(err: AlliumError | null): void {
    this.finish(err ?? new AlliumError('ERR_LINK_CLOSED', 'link to the entry relay closed'));
  }

  /**
   * Adds the peer of a rendezvous as a virtual hop (specs/rendezvous.md §5): from now on the circuit's streams
   * reach the peer, end to end, through the rendezvous point.
   */
  addVirtualHop(keys: HopKeys): void {
    this.cc.addHop(keys, { virtual: true });
    this.bindings.push(Uint8Array.from(keys.binding));
  }

  /**
   * Negotiates padding machine `machine` with hop `hop` (default the second, the middle; specs/padding.md §3) and
   * runs the client's half. Throws LimitError (CIRCUIT_PADDING_BUDGET) when the relay refuses it for a limit,
   * ERR_NOT_FOUND when the hop runs no such machine or none at its position, ERR_TIMEOUT without an answer; the
   * circuit stays usable in every case.
   */
  async startPadding(machine: PaddingMachineId, options: AbortOptions & { hop?: number; timeoutMs?: number; rttMs?: number } = {}): Promise<void> {
    const hop = options.hop ?? Math.min(1, this.cc.length - 1);
    const halves = paddingMachine(machine);
    if (!halves) throw new AlliumError('ERR_NOT_FOUND', `no padding machine ${machine}`);
    if (this.padding) throw new AlliumError('ERR_INTERNAL', 'a padding machine already runs on this circuit');
    // The circuit's round trip, for the machine's slots (padding.md §4.4): both halves scale by the byte sent.
    const rtt = options.rttMs !== undefined ? paddingRttUnits(options.rttMs) : undefined;
    const reply = this.waitFor(RelayCommand.PADDING_NEGOTIATED, options.timeoutMs ?? 30_000, { hop, ...signalOption(options.signal) });
    if (
      !this.sendRaw(
        {
          command: RelayCommand.PADDING_NEGOTIATE,
          streamId: 0,
          data: encodePaddingNegotiate({ command: PaddingCommand.START, machine, ...(rtt !== undefined ? { rtt } : {}) }),
        },
        hop,
      )
    ) {
      reply.catch(() => undefined);
      throw new AlliumError('ERR_LINK_CLOSED', 'circuit closed');
    }
    // The client's half starts with the request, so that the circuit's first cells count towards its first state
    // (padding.md §3): a DROP to the hop is discarded there whatever it answers.
    const driver = new ClientPaddingDriver(
      halves.client,
      () => this.sendRaw({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) }, hop),
      undefined,
      (body) => this.sendBody(body),
      scheduleScale(rtt),
    );
    const run = { driver, hop };
    this.padding = run;
    driver.start();
    const refused = (err: AlliumError): AlliumError => {
      driver.stop();
      if (this.padding === run) this.padding = null;
      this.paddingEarlier += driver.padding;
      return err;
    };
    let answer;
    try {
      answer = decodePaddingNegotiated((await reply).data);
    } catch (e) {
      throw refused(isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', 'padding negotiation failed', { cause: e }));
    }
    if (answer.machine !== machine) throw refused(new ProtocolError('ERR_SCHEMA', 'PADDING_NEGOTIATED names another machine'));
    if (answer.status === PaddingStatus.REFUSED)
      throw refused(new LimitError('CIRCUIT_PADDING_BUDGET', 'the relay refused the padding machine for want of budget'));
    if (answer.status !== PaddingStatus.OK)
      throw refused(new AlliumError('ERR_NOT_FOUND', `hop ${hop} runs no padding machine ${machine} (status ${answer.status})`));
  }

  /**
   * Stops the padding machine on this circuit (STOP to its hop, specs/padding.md §3) and waits for the answer. The
   * relay keeps counting what the circuit used: a later startPadding may be refused.
   */
  async stopPadding(options: AbortOptions & { timeoutMs?: number } = {}): Promise<void> {
    const run = this.padding;
    if (!run) return;
    run.driver.stop();
    this.paddingEarlier += run.driver.padding;
    this.padding = null;
    const reply = this.waitFor(RelayCommand.PADDING_NEGOTIATED, options.timeoutMs ?? 30_000, { hop: run.hop, ...signalOption(options.signal) });
    if (
      !this.sendRaw(
        { command: RelayCommand.PADDING_NEGOTIATE, streamId: 0, data: encodePaddingNegotiate({ command: PaddingCommand.STOP, machine: 0 }) },
        run.hop,
      )
    ) {
      reply.catch(() => undefined);
      throw new AlliumError('ERR_LINK_CLOSED', 'circuit closed');
    }
    const answer = decodePaddingNegotiated((await reply).data);
    if (answer.machine !== 0 || answer.status !== PaddingStatus.OK) throw new ProtocolError('ERR_SCHEMA', 'unexpected answer to STOP');
  }

  /** Padding cells the client's halves of padding machines have sent on this circuit. */
  get paddingSent(): number {
    return this.paddingEarlier + (this.padding?.driver.padding ?? 0);
  }

  /** Tears the circuit down (DESTROY to the entry, which propagates it). */
  close(err: AlliumError | null = null, reason: DestroyReason = DestroyReason.FINISHED): void {
    if (this.state !== 'open') return;
    try {
      this.link.sendCell(this.circId, CellCommand.DESTROY, destroyBody(reason));
    } catch {
      /* link already closed */
    }
    this.table.release(this.link, this.circId);
    this.finish(err);
  }

  private finish(err: AlliumError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.padding?.driver.stop(false);
    this.mux.closeAll();
    this.cc.wipe();
    this.emit('circuit:close', err);
  }
}

/**
 * Builds a circuit over `link` (already open to path[0]) in one round trip. Throws ERR_TIMEOUT, ERR_ABORTED,
 * ERR_HANDSHAKE_AUTH, ERR_HANDSHAKE_FAILED (a hop could not extend; `.hop` says which), ERR_LINK_CLOSED.
 */
export async function buildCircuit(
  link: Link,
  table: CircuitTable,
  path: readonly Descriptor[],
  options: { timeoutMs?: number } & AbortOptions = {},
): Promise<ClientCircuit> {
  const hops: OnionHop[] = path.map((d) => ({ identity: d.id, onionKey: d.onion }));
  const onion = createOnion(hops);
  let circId = 0;
  try {
    const reply = await settleWithin<Uint8Array>(
      (done) => {
        const pending: PendingBuild = {
          onCell(cell) {
            if (cell.command === CellCommand.CREATED) done(null, Uint8Array.from(decodeCreatedBody(cell.body)));
            else if (cell.command === CellCommand.DESTROY)
              done(new AlliumError('ERR_HANDSHAKE_FAILED', `first hop refused the circuit (reason ${decodeDestroyBody(cell.body)})`));
            else done(new ProtocolError('ERR_CELL_COMMAND', 'unexpected cell while building'));
          },
          onLinkClosed(err) {
            done(err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed while building'));
          },
        };
        try {
          circId = table.allocate(link, pending);
          link.sendCell(circId, CellCommand.CREATE, createBody(onion.header));
        } catch (e) {
          done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
        }
        // A build that failed, timed out or was aborted gives its circuit id back (and tells the first hop).
        return (err) => {
          if (!err || !circId) return;
          try {
            link.sendCell(circId, CellCommand.DESTROY, destroyBody(DestroyReason.FINISHED));
          } catch {
            /* closed */
          }
          table.release(link, circId);
        };
      },
      { timeoutMs: options.timeoutMs ?? 60_000, timeoutMessage: 'circuit build timed out', ...signalOption(options.signal) },
    );
    let opened;
    try {
      opened = openReply(onion, reply);
    } catch (e) {
      link.sendCell(circId, CellCommand.DESTROY, destroyBody(DestroyReason.CRYPTO));
      table.release(link, circId);
      throw e instanceof CryptoError || isAlliumError(e) ? e : new AlliumError('ERR_HANDSHAKE_AUTH', 'bad reply');
    }
    if (opened.status !== ReplyStatus.OK) {
      for (const k of opened.hops) crypto().wipe(k.forward, k.backward, k.binding);
      try {
        link.sendCell(circId, CellCommand.DESTROY, destroyBody(DestroyReason.FINISHED));
      } catch {
        /* closed */
      }
      table.release(link, circId);
      const err = new AlliumError('ERR_HANDSHAKE_FAILED', `hop ${opened.hops.length} could not extend the circuit (status ${opened.status})`);
      (err as AlliumError & { failedAfter?: number }).failedAfter = opened.hops.length;
      throw err;
    }
    const cc = new ClientCircuitCrypto(opened.hops);
    const bindings = opened.hops.map((k) => Uint8Array.from(k.binding));
    for (const k of opened.hops) crypto().wipe(k.forward, k.backward, k.binding);
    return new ClientCircuit(link, circId, cc, path, table, bindings);
  } finally {
    wipeClientOnion(onion);
  }
}
