/**
 * Exit streams (specs/streams.md §3): a BEGIN addressed to the last hop of a circuit opens a TCP connection if the
 * relay's exit policy allows the destination (checked again after name resolution, on the address actually
 * dialed). Refusals and failures answer with END and a reason the client maps to a SOCKS reply code.
 *
 * Names are resolved by c-ares (node:dns Resolver), with a per-try timeout and two tries, never by getaddrinfo on
 * libuv's four pool threads, which a few black-holed names would stall. A lookup is pending until its queries end;
 * pending lookups count against the connection cap and against limits of their own, per relay and per circuit.
 *
 * Safe logging: destinations are never logged at info level or above.
 */
import { promises as dns } from 'node:dns';
import { connect, isIP, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { policyAllows, type ExitPolicy } from '../protocol/exit-policy.js';
import { isAlliumError } from '../protocol/errors.js';
import { decodeBegin, EndReason } from '../protocol/stream-messages.js';
import type { StreamMux, MuxStream } from '../net/stream-mux.js';
import { pipeSocket } from '../net/pipe-socket.js';
import type { CircuitHop } from './circuits.js';
import type { RelayMetrics } from './metrics.js';

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

export interface ExitOptions {
  policy: ExitPolicy;
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
}

/** The exit service: opens TCP connections for BEGIN (registered with relay/streams.ts). */
export class ExitService {
  private connections = 0;
  private pending = 0;
  private readonly pendingByCircuit = new WeakMap<CircuitHop, number>();
  private readonly sockets = new Set<Socket>();
  private readonly resolver: dns.Resolver;
  private readonly resolveTimeoutMs: number;

  constructor(private readonly o: ExitOptions) {
    this.resolveTimeoutMs = o.resolveTimeoutMs ?? 5000;
    this.resolver = new dns.Resolver({ timeout: Math.max(50, Math.floor(this.resolveTimeoutMs / 3)), tries: 2 });
    if (o.dnsServers?.length) this.resolver.setServers([...o.dnsServers]);
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
    const queries = Promise.allSettled([this.resolver.resolve4(name), this.resolver.resolve6(name)]).then(([a, aaaa]) => {
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('lookup deadline')), this.resolveTimeoutMs);
    });
    return Promise.race([queries, deadline]).finally(() => clearTimeout(timer));
  }

  /** Handles a BEGIN (the StreamOpener for RelayCommand.BEGIN). */
  open = (hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): void => {
    void this.onBegin(hop, mux, s, data);
  };

  private async onBegin(hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): Promise<void> {
    let target;
    try {
      target = decodeBegin(data);
    } catch (e) {
      this.o.metrics.errors.inc({ code: isAlliumError(e) ? e.code : 'ERR_SCHEMA' });
      return mux.reset(s, EndReason.MISC);
    }
    // Lookups still pending hold a place too: otherwise BEGINs waiting on slow names would all pass this check and
    // then all connect.
    if (this.connections + this.pending >= (this.o.maxExitConnections ?? 4096)) {
      this.o.metrics.drops.inc({ reason: 'exit_connection_limit' });
      return mux.reset(s, EndReason.RESOURCE_LIMIT);
    }
    let address = target.a.replace(/^\[|\]$/g, '');
    if (!isIP(address)) {
      if (this.pending >= (this.o.maxPendingResolves ?? 256) || (this.pendingByCircuit.get(hop) ?? 0) >= (this.o.maxPendingResolvesPerCircuit ?? 16)) {
        this.o.metrics.drops.inc({ reason: 'exit_resolve_limit' });
        return mux.reset(s, EndReason.RESOURCE_LIMIT);
      }
      try {
        address = await this.resolve(hop, address);
      } catch {
        this.o.metrics.drops.inc({ reason: 'exit_resolve_failed' });
        return mux.reset(s, EndReason.RESOLVE_FAILED);
      }
      // The lookup's slot is released: the connection takes one of its own, if there is still room.
      if (this.connections + this.pending >= (this.o.maxExitConnections ?? 4096)) {
        this.o.metrics.drops.inc({ reason: 'exit_connection_limit' });
        return mux.reset(s, EndReason.RESOURCE_LIMIT);
      }
    }
    if (s.state === 'closed') return;
    if (!policyAllows(this.o.policy, address, target.p)) {
      this.o.metrics.drops.inc({ reason: 'exit_policy' });
      return mux.reset(s, EndReason.EXIT_POLICY);
    }
    this.connections++;
    this.gauges();
    const socket = connect({ host: address, port: target.p });
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), this.o.connectTimeoutMs ?? 10_000);
    let connected = false;
    socket.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      if (s.state === 'closed') return void socket.destroy();
      mux.accept(s);
      pipeSocket(s, socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected) mux.reset(s, endReasonFor(err.code));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      this.connections--;
      this.gauges();
      this.sockets.delete(socket);
    });
    s.on('stream:end', () => {
      if (!connected) socket.destroy();
    });
  }

  /** Closes every exit connection (shutdown). */
  closeAll(): void {
    for (const s of this.sockets) s.destroy();
  }
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
