/**
 * The hidden service: the endpoint's side of a rendezvous (specs/rendezvous.md §4.2, specs/messaging.md §8.4). Opened
 * introductions wait in a bounded queue by proof-of-work effort (the oldest of the lowest effort dropped first) and are answered a few at a time: a circuit to the
 * initiator's rendezvous point, RENDEZVOUS1, and the initiator joined as a virtual hop. The rendezvous circuit is then
 * served: its one message stream becomes a conversation (handed to the Messenger), streams to hidden TCP services
 * are joined to local connections made by an injected ServiceConnector (so this module needs no node:net), and a
 * circuit with no open stream for `serviceCircuitIdleMs` is closed.
 *
 * So a flood of valid introductions from whoever knows the address costs a bounded queue, at most
 * maxConcurrentRendezvous circuit builds at once and at most maxServiceCircuits open circuits — not a circuit each.
 */
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { concatBytes } from '../../protocol/bytes.js';
import { AlliumError, LimitError } from '../../protocol/errors.js';
import { ntorServer } from '../../protocol/ntor.js';
import type { RatchetSession } from '../../protocol/ratchet.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { encodeRv } from '../../protocol/rendezvous-messages.js';
import { decodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { Shutdown } from '../../net/abort.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { MuxStream } from '../../net/stream-mux.js';
import type { CircuitSource } from '../client.js';
import type { IntroductionLoad, PendingIntroduction } from './endpoint.js';
import { MESSAGE_STREAM, REPLY_TIMEOUT_MS, SERVICE_STREAM, type EndpointLimits } from './limits.js';
import { asAlliumError, type ServiceConnector, type ServiceTarget } from './types.js';

export interface HiddenServiceOptions {
  readonly limits: EndpointLimits;
  /** Hidden TCP services: port → local host:port. */
  readonly services?: Record<number, ServiceTarget>;
  /** Makes the local connections (none: streams to services are refused with CONNECT_REFUSED). */
  readonly connectService?: ServiceConnector;
}

export interface HiddenServiceEvents {
  /**
   * The initiator opened the message stream of a rendezvous circuit (accepted): its handshake claims it is `peer`,
   * which holds once a frame on the stream decrypts.
   */
  messageStream(peer: string, circuit: ClientCircuit, stream: MuxStream, session: RatchetSession): void;
  error(e: AlliumError): void;
  /** The queue dropped an introduction or holds half its bound: the endpoint may raise its effort early (§4.3). */
  loaded?(): void;
}

export class HiddenService {
  /** Introductions waiting to be answered, highest effort first, then oldest first (at most maxPendingIntroductions). */
  private readonly queue: PendingIntroduction[] = [];
  private load = { peak: 0, dropped: 0 };
  /** Introductions being answered now (at most maxConcurrentRendezvous). */
  private answering = 0;
  /** Open rendezvous circuits initiators reach us on (at most maxServiceCircuits). */
  private readonly circuits = new Set<ClientCircuit>();
  private closed = false;
  /** Aborted by close(): rendezvous circuits being built and local connections being made stop. */
  private readonly shutdown = new Shutdown();

  constructor(
    private readonly client: CircuitSource,
    private readonly identity: Identity,
    private readonly options: HiddenServiceOptions,
    private readonly on: HiddenServiceEvents,
  ) {}

  /** Rendezvous circuits open now. */
  get openCircuits(): number {
    return this.circuits.size;
  }

  /**
   * Queues an opened introduction to be answered, highest proof-of-work effort first and oldest first among equal
   * efforts (rendezvous.md §4.3); past maxPendingIntroductions the oldest of the lowest effort waiting is dropped.
   */
  enqueue(p: PendingIntroduction): void {
    if (this.closed) return;
    let at = this.queue.length;
    while (at > 0 && this.queue[at - 1]!.effort < p.effort) at--;
    this.queue.splice(at, 0, p);
    if (this.queue.length > this.options.limits.maxPendingIntroductions) {
      const lowest = this.queue[this.queue.length - 1]!.effort;
      this.queue.splice(
        this.queue.findIndex((q) => q.effort === lowest),
        1,
      );
      this.load.dropped++;
      this.on.error(
        new LimitError('MAX_PENDING_INTRODUCTIONS', 'introductions arrive faster than they are answered: the oldest of the lowest effort was dropped'),
      );
    }
    this.load.peak = Math.max(this.load.peak, this.queue.length);
    const loaded = this.load.dropped > 0 || this.queue.length * 2 >= this.options.limits.maxPendingIntroductions;
    this.answer();
    if (loaded) this.on.loaded?.();
  }

  /** How loaded the queue was since the last call (for the suggested effort, endpoint.ts nextEffort); starts afresh. */
  takeLoad(): IntroductionLoad {
    const load = { ...this.load, peak: Math.max(this.load.peak, this.queue.length), capacity: this.options.limits.maxPendingIntroductions };
    this.load = { peak: this.queue.length, dropped: 0 };
    return load;
  }

  /**
   * Answers queued introductions in queue order (highest effort, then oldest), while fewer than maxConcurrentRendezvous are being answered and
   * fewer than maxServiceCircuits rendezvous circuits are open. One whose initiator has stopped waiting is dropped.
   */
  private answer(): void {
    const { maxConcurrentRendezvous, maxServiceCircuits } = this.options.limits;
    while (!this.closed && this.queue.length > 0 && this.answering < maxConcurrentRendezvous && this.answering + this.circuits.size < maxServiceCircuits) {
      const next = this.queue.shift()!;
      if (Date.now() - next.at > REPLY_TIMEOUT_MS) continue;
      this.answering++;
      void this.meetInitiator(next).finally(() => {
        this.answering--;
        this.answer();
      });
    }
  }

  /** Meets the initiator of an introduction at its rendezvous point (rendezvous.md §4.2) and serves the circuit. */
  private async meetInitiator(p: PendingIntroduction): Promise<void> {
    try {
      const circuit = await this.shutdown.run({}, (signal) => this.client.newCircuit({ last: p.rp, exitPort: null, signal }));
      if (this.closed) return circuit.close();
      circuit.setPurpose('setup');
      const s = crypto().x25519(p.ip.enc.secretKey, p.x);
      const { keys, Y, auth } = ntorServer(s, p.ip.enc, this.identity.publicKey, p.x, (n) => crypto().random(n));
      circuit.send({ command: RelayCommand.RENDEZVOUS1, streamId: 0, data: encodeRv('rendezvous1', { c: p.cookie, h: concatBytes(Y, auth) }) });
      circuit.addVirtualHop({ forward: keys.backward, backward: keys.forward, binding: keys.binding });
      circuit.setPurpose('service'); // the initiator, our virtual last hop, opens streams to us
      this.serve(circuit, p.peer, p.session);
    } catch (e) {
      if (!this.closed) this.on.error(asAlliumError(e, 'introduction failed'));
    }
  }

  /**
   * Serves a rendezvous circuit: takes the streams the initiator opens (at most maxServiceStreamsPerCircuit at once,
   * and one message stream in the circuit's life: its session serves one conversation), and closes the circuit once
   * it has had no open stream for serviceCircuitIdleMs (from the rendezvous, or from its last stream's end).
   */
  private serve(circuit: ClientCircuit, peer: string, session: RatchetSession): void {
    const { serviceCircuitIdleMs, maxServiceStreamsPerCircuit } = this.options.limits;
    const served = { messages: false };
    let idle: ReturnType<typeof setTimeout> | null = null;
    const stopIdle = (): void => {
      if (idle) clearTimeout(idle);
      idle = null;
    };
    const startIdle = (): void => {
      stopIdle();
      if (circuit.mux.size > 0 || circuit.state !== 'open') return;
      idle = setTimeout(() => circuit.close(), serviceCircuitIdleMs);
      (idle as { unref?: () => void }).unref?.();
    };
    this.circuits.add(circuit);
    circuit.once('circuit:close', () => {
      stopIdle();
      this.circuits.delete(circuit);
      this.answer();
    });
    circuit.mux.on('mux:begin', (stream, data) => {
      stopIdle();
      stream.once('stream:end', startIdle);
      // The new stream is already counted.
      if (circuit.mux.size > maxServiceStreamsPerCircuit) return circuit.mux.reset(stream, EndReason.RESOURCE_LIMIT);
      this.onBegin(circuit, stream, data, peer, session, served);
    });
    startIdle();
  }

  private onBegin(circuit: ClientCircuit, stream: MuxStream, data: Uint8Array, peer: string, session: RatchetSession, served: { messages: boolean }): void {
    let target;
    try {
      target = decodeBegin(data);
    } catch {
      return circuit.mux.reset(stream, EndReason.MISC);
    }
    if (target.a === MESSAGE_STREAM) {
      if (served.messages) return circuit.mux.reset(stream, EndReason.RESOURCE_LIMIT);
      served.messages = true;
      circuit.mux.accept(stream);
      this.on.messageStream(peer, circuit, stream, session);
      return;
    }
    const service = target.a === SERVICE_STREAM ? this.options.services?.[target.p] : undefined;
    if (!service) return circuit.mux.reset(stream, EndReason.EXIT_POLICY);
    this.connectLocal(circuit, stream, service);
  }

  /** Joins `stream` to a new connection to the local service, or refuses it (CONNECT_REFUSED). */
  private connectLocal(circuit: ClientCircuit, stream: MuxStream, service: ServiceTarget): void {
    const connect = this.options.connectService;
    if (!connect) return circuit.mux.reset(stream, EndReason.CONNECT_REFUSED);
    // A stream that ends (or whose circuit closes) before the connection is made takes the connection with it.
    const ended = new AbortController();
    const offEnd = stream.once('stream:end', () => ended.abort());
    const scope = this.shutdown.scope(ended.signal);
    const settled = (): void => {
      offEnd();
      scope.dispose();
    };
    connect(service, { signal: scope.signal }).then(
      (conn) => {
        settled();
        if (stream.state === 'closed' || scope.signal.aborted) return conn.close();
        circuit.mux.accept(stream);
        conn.attach(stream);
      },
      () => {
        settled();
        if (stream.state !== 'closed') circuit.mux.reset(stream, EndReason.CONNECT_REFUSED);
      },
    );
  }

  /** Drops waiting introductions and closes every rendezvous circuit. */
  close(): void {
    this.closed = true;
    this.shutdown.abort();
    this.queue.length = 0;
    for (const c of [...this.circuits]) c.close();
  }
}
