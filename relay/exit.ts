/**
 * Exit streams (specs/streams.md §3): a BEGIN addressed to the last hop of a circuit opens a TCP connection if the
 * relay's exit policy allows the destination (checked again after name resolution, on the address actually
 * dialed). Refusals and failures answer with END and a reason the client maps to a SOCKS reply code.
 *
 * Names are resolved by c-ares (node:dns Resolver), with a per-try timeout and two tries, never by getaddrinfo on
 * libuv's four pool threads, which a few black-holed names would stall. A lookup is pending until its queries end;
 * pending lookups count against the connection cap and against limits of their own, per relay and per circuit.
 *
 * A stream holds its place from BEGIN until its connection has closed (specs/streams.md §3.1): at most
 * MAX_EXIT_STREAMS_PER_CIRCUIT per circuit and, for circuits whose previous hop is a client (one-hop circuits),
 * MAX_EXIT_STREAMS_PER_CLIENT_BLOCK per address block of that client, so one circuit or one network cannot take the
 * exit's connections. A connection that carries no data either way for EXIT_IDLE_TIMEOUT_MS is closed (`maintain`).
 * What its sockets buffer (data for a destination that reads slowly, data read and not yet queued) is reported per
 * circuit (`bufferedBytes`) and counted against max_queue_bytes with the stream queues.
 *
 * Safe logging: destinations are never logged at info level or above.
 */
import { promises as dns } from 'node:dns';
import { connect, isIP, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { policyAllows, type ExitPolicy } from '../protocol/exit-policy.js';
import { isAlliumError } from '../protocol/errors.js';
import { decodeBegin, EndReason, endReasonOf } from '../protocol/stream-messages.js';
import type { StreamMux, MuxStream } from '../net/stream-mux.js';
import { pipeSocket } from '../net/pipe-socket.js';
import { within } from '../net/abort.js';
import type { CircuitHop } from './circuits.js';
import type { RelayMetrics } from './metrics.js';
import { addressKeys } from '../protocol/address-block.js';
import type { LastHopService } from './streams.js';

/** Exit streams (connecting, connected or resolving) of one circuit (specs/limits.md). */
export const MAX_EXIT_STREAMS_PER_CIRCUIT = 128;
/** Exit streams of circuits whose previous hop is a client link from one /24 or /48. */
export const MAX_EXIT_STREAMS_PER_CLIENT_BLOCK = 256;
/** Time an exit connection may carry no data, either way, before it is closed. */
export const EXIT_IDLE_TIMEOUT_MS = 10 * 60_000;

export const PRIVATE_REJECT_LINES = [
  'reject 0.0.0.0/8:*',
  'reject 127.0.0.0/8:*',
  'reject 10.0.0.0/8:*',
  'reject 172.16.0.0/12:*',
  'reject 192.168.0.0/16:*',
  'reject 169.254.0.0/16:*',
  'reject 100.64.0.0/10:*',
  'reject [::1]/128:*',
  'reject [fc00::]/7:*',
  'reject [fe80::]/10:*',
  'reject [::]/128:*',
];

/**
 * Where an exit's streams go: name lookups and TCP connections. The default is the system's (c-ares lookups with the
 * deadlines below, node:net sockets); the simulator's reaches no destination.
 */
export interface ExitNetwork {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  connect(target: { host: string; port: number }): Socket;
}

export interface ExitOptions {
  policy: ExitPolicy;
  /** Lookups and connections (default: the system's; `dnsServers` and `resolveTimeoutMs` apply to that only). */
  network?: ExitNetwork;
  metrics: RelayMetrics;
  log: Logger;
  /** TCP connect deadline (default 10 s). */
  connectTimeoutMs?: number;
  /** Connections open or connecting plus lookups pending (default 4096). */
  maxExitConnections?: number;
  /** DNS servers, "ip", "ip:port" or "[ipv6]:port" (default: the system's, from /etc/resolv.conf). */
  dnsServers?: readonly string[];
  /** Deadline of one lookup, ms (default 5000); each query gets a third of it per try, two tries. */
  resolveTimeoutMs?: number;
  /** Lookups pending at once, for the relay and for one circuit (defaults 256 and 16). */
  maxPendingResolves?: number;
  maxPendingResolvesPerCircuit?: number;
  /** Exit streams per circuit (default MAX_EXIT_STREAMS_PER_CIRCUIT). */
  maxStreamsPerCircuit?: number;
  /** Exit streams of one-hop circuits from one client address block (default MAX_EXIT_STREAMS_PER_CLIENT_BLOCK). */
  maxStreamsPerClientBlock?: number;
  /** Silence after which a connection is closed (default EXIT_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** The clock of the idle timeout (the reactor's). */
  now?: () => number;
}

/** An exit connection, for the idle timeout. */
interface Connection {
  readonly socket: Socket;
  readonly stream: MuxStream;
  readonly mux: StreamMux;
  connected: boolean;
  lastData: number;
}

/** The exit service: opens TCP connections for BEGIN (registered with relay/streams.ts). */
export class ExitService implements LastHopService {
  private connections = 0;
  private pending = 0;
  private readonly pendingByCircuit = new WeakMap<CircuitHop, number>();
  /** Streams holding a place, per circuit and per client block (from BEGIN until the connection closed). */
  private readonly streamsByCircuit = new WeakMap<CircuitHop, number>();
  private readonly streamsByBlock = new Map<string, number>();
  private readonly sockets = new Map<Socket, Connection>();
  private readonly byCircuit = new Map<CircuitHop, Set<Connection>>();
  private readonly network: ExitNetwork;
  private readonly resolveTimeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly o: ExitOptions) {
    this.now = o.now ?? Date.now;
    this.resolveTimeoutMs = o.resolveTimeoutMs ?? 5000;
    this.network = o.network ?? systemExitNetwork(this.resolveTimeoutMs, o.dnsServers ?? []);
  }

  get openConnections(): number {
    return this.connections;
  }

  /** Lookups whose queries have not ended yet. */
  get pendingResolves(): number {
    return this.pending;
  }

  private gauges(): void {
    this.o.metrics.exitConnections.set(this.connections);
    this.o.metrics.exitPendingResolves.set(this.pending);
  }

  /**
   * Resolves `name` to one address (the first IPv4, else the first IPv6), holding a pending slot for the relay and
   * for `hop` until the queries end: released before the address is handed on, or, when the deadline answered
   * first, when c-ares gives up (about the same time: its tries are sized to the deadline). Rejects at the deadline
   * at the latest.
   */
  private resolve(hop: CircuitHop, name: string): Promise<string> {
    this.pending++;
    this.pendingByCircuit.set(hop, (this.pendingByCircuit.get(hop) ?? 0) + 1);
    this.gauges();
    const queries = Promise.allSettled([this.network.resolve4(name), this.network.resolve6(name)]).then(([a, aaaa]) => {
      this.pending--;
      const n = (this.pendingByCircuit.get(hop) ?? 1) - 1;
      if (n > 0) this.pendingByCircuit.set(hop, n);
      else this.pendingByCircuit.delete(hop);
      this.gauges();
      const address = (a.status === 'fulfilled' ? a.value[0] : undefined) ?? (aaaa.status === 'fulfilled' ? aaaa.value[0] : undefined);
      if (address === undefined) throw new Error('no address');
      return address;
    });
    queries.catch(() => undefined); // a lookup that outlived its deadline ends unobserved
    return within(queries, { timeoutMs: this.resolveTimeoutMs, timeoutMessage: 'lookup deadline' });
  }

  /** Handles a BEGIN (the StreamOpener for RelayCommand.BEGIN). */
  open = (hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): void => {
    void this.onBegin(hop, mux, s, data);
  };

  /**
   * Takes a place for a stream of `hop`: null when the circuit, or the client block it comes from, has its limit
   * (the drop reason is counted); else the function that gives the place back, once.
   */
  private takePlace(hop: CircuitHop): (() => void) | null {
    const onCircuit = this.streamsByCircuit.get(hop) ?? 0;
    if (onCircuit >= (this.o.maxStreamsPerCircuit ?? MAX_EXIT_STREAMS_PER_CIRCUIT)) {
      this.o.metrics.drops.inc({ reason: 'exit_circuit_limit' });
      return null;
    }
    // A circuit whose previous hop is a client's link began at that client: its address block is known here.
    const remote = hop.isEntry ? hop.prev.link.socket.remoteAddress : null;
    const block = hop.isEntry ? (remote ? addressKeys(remote).block : `link ${hop.prev.link.id}`) : null;
    if (block !== null && (this.streamsByBlock.get(block) ?? 0) >= (this.o.maxStreamsPerClientBlock ?? MAX_EXIT_STREAMS_PER_CLIENT_BLOCK)) {
      this.o.metrics.drops.inc({ reason: 'exit_block_limit' });
      return null;
    }
    this.streamsByCircuit.set(hop, onCircuit + 1);
    if (block !== null) this.streamsByBlock.set(block, (this.streamsByBlock.get(block) ?? 0) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const c = (this.streamsByCircuit.get(hop) ?? 1) - 1;
      if (c > 0) this.streamsByCircuit.set(hop, c);
      else this.streamsByCircuit.delete(hop);
      if (block === null) return;
      const b = (this.streamsByBlock.get(block) ?? 1) - 1;
      if (b > 0) this.streamsByBlock.set(block, b);
      else this.streamsByBlock.delete(block);
    };
  }

  private async onBegin(hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): Promise<void> {
    let target;
    try {
      target = decodeBegin(data);
    } catch (e) {
      this.o.metrics.errors.inc({ code: isAlliumError(e) ? e.code : 'ERR_SCHEMA' });
      return mux.reset(s, isAlliumError(e) ? endReasonOf(e) : EndReason.MISC);
    }
    const release = this.takePlace(hop);
    if (!release) return mux.reset(s, EndReason.RESOURCE_LIMIT);
    let connecting = false;
    try {
      connecting = await this.connectStream(hop, mux, s, target, release);
    } finally {
      if (!connecting) release();
    }
  }

  /** Resolves and connects; returns true once a socket exists (it gives the stream's place back when it closes). */
  private async connectStream(hop: CircuitHop, mux: StreamMux, s: MuxStream, target: { a: string; p: number }, release: () => void): Promise<boolean> {
    // Lookups still pending hold a place too: otherwise BEGINs waiting on slow names would all pass this check and
    // then all connect.
    if (this.connections + this.pending >= (this.o.maxExitConnections ?? 4096)) {
      this.o.metrics.drops.inc({ reason: 'exit_connection_limit' });
      mux.reset(s, EndReason.RESOURCE_LIMIT);
      return false;
    }
    let address = target.a.replace(/^\[|\]$/g, '');
    if (!isIP(address)) {
      if (this.pending >= (this.o.maxPendingResolves ?? 256) || (this.pendingByCircuit.get(hop) ?? 0) >= (this.o.maxPendingResolvesPerCircuit ?? 16)) {
        this.o.metrics.drops.inc({ reason: 'exit_resolve_limit' });
        mux.reset(s, EndReason.RESOURCE_LIMIT);
        return false;
      }
      try {
        address = await this.resolve(hop, address);
      } catch {
        this.o.metrics.drops.inc({ reason: 'exit_resolve_failed' });
        mux.reset(s, EndReason.RESOLVE_FAILED);
        return false;
      }
      // The lookup's slot is released: the connection takes one of its own, if there is still room. Nothing runs
      // between this check and the count below, so lookups that end together cannot overshoot the cap.
      if (this.connections + this.pending >= (this.o.maxExitConnections ?? 4096)) {
        this.o.metrics.drops.inc({ reason: 'exit_connection_limit' });
        mux.reset(s, EndReason.RESOURCE_LIMIT);
        return false;
      }
    }
    if (s.state === 'closed') return false;
    if (!policyAllows(this.o.policy, address, target.p)) {
      this.o.metrics.drops.inc({ reason: 'exit_policy' });
      mux.reset(s, EndReason.EXIT_POLICY);
      return false;
    }
    this.connections++;
    this.gauges();
    const socket = this.network.connect({ host: address, port: target.p });
    const conn: Connection = { socket, stream: s, mux, connected: false, lastData: this.now() };
    this.sockets.set(socket, conn);
    let mine = this.byCircuit.get(hop);
    if (!mine) this.byCircuit.set(hop, (mine = new Set()));
    mine.add(conn);
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), this.o.connectTimeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      conn.connected = true;
      conn.lastData = this.now();
      if (s.state === 'closed') return void socket.destroy();
      mux.accept(s);
      pipeSocket(s, socket);
      socket.on('data', () => void (conn.lastData = this.now()));
      s.on('stream:data', () => void (conn.lastData = this.now()));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!conn.connected) mux.reset(s, endReasonFor(err.code));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      this.connections--;
      this.gauges();
      this.sockets.delete(socket);
      mine.delete(conn);
      if (mine.size === 0 && this.byCircuit.get(hop) === mine) this.byCircuit.delete(hop);
      release();
    });
    s.on('stream:end', () => {
      if (!conn.connected) socket.destroy();
    });
    return true;
  }

  /**
   * Closes every connection that has carried no data, either way, for the idle timeout (specs/streams.md §3.1); its
   * stream ends with TIMEOUT. Also a connection whose stream ended but whose destination never closes its side.
   */
  maintain(now: number): void {
    const idle = this.o.idleTimeoutMs ?? EXIT_IDLE_TIMEOUT_MS;
    for (const c of [...this.sockets.values()]) {
      if (!c.connected || now - c.lastData < idle) continue;
      this.o.metrics.drops.inc({ reason: 'exit_idle' });
      c.mux.reset(c.stream, EndReason.TIMEOUT);
      c.socket.destroy();
    }
  }

  /**
   * Bytes the sockets of `hop`'s streams hold in the process: written and not yet taken by the kernel (a destination
   * that does not read), and read and not yet handed on.
   */
  bufferedBytes(hop: CircuitHop): number {
    let n = 0;
    for (const c of this.byCircuit.get(hop) ?? []) n += c.socket.writableLength + c.socket.readableLength;
    return n;
  }

  /** Closes every exit connection (shutdown). */
  closeAll(): void {
    for (const s of this.sockets.keys()) s.destroy();
  }
}

/** The system's lookups (c-ares, a third of the deadline per try, two tries) and TCP connections. */
function systemExitNetwork(resolveTimeoutMs: number, dnsServers: readonly string[]): ExitNetwork {
  const resolver = new dns.Resolver({ timeout: Math.max(50, Math.floor(resolveTimeoutMs / 3)), tries: 2 });
  if (dnsServers.length) resolver.setServers([...dnsServers]);
  return { resolve4: (name) => resolver.resolve4(name), resolve6: (name) => resolver.resolve6(name), connect: (target) => connect(target) };
}

export function endReasonFor(code: string | undefined): EndReason {
  switch (code) {
    case 'ECONNREFUSED':
      return EndReason.CONNECT_REFUSED;
    case 'EHOSTUNREACH':
      return EndReason.HOST_UNREACHABLE;
    case 'ENETUNREACH':
      return EndReason.NET_UNREACHABLE;
    case 'ETIMEDOUT':
      return EndReason.TIMEOUT;
    case 'ENOTFOUND':
      return EndReason.RESOLVE_FAILED;
    default:
      return EndReason.MISC;
  }
}
