/**
 * Exit streams (specs/streams.md §3): a BEGIN addressed to the last hop of a circuit opens a TCP connection if the
 * relay's exit policy allows the destination (checked again after name resolution, on the address actually
 * dialed). Refusals and failures answer with END and a reason the client maps to a SOCKS reply code.
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
  connectTimeoutMs?: number;
  maxExitConnections?: number;
}

/** The exit service: opens TCP connections for BEGIN (registered with relay/streams.ts). */
export class ExitService {
  private connections = 0;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly o: ExitOptions) {}

  get openConnections(): number {
    return this.connections;
  }

  /** Handles a BEGIN (the StreamOpener for RelayCommand.BEGIN). */
  open = (hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): void => {
    void this.onBegin(hop, mux, s, data);
  };

  private async onBegin(_hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): Promise<void> {
    let target;
    try {
      target = decodeBegin(data);
    } catch (e) {
      this.o.metrics.errors.inc({ code: isAlliumError(e) ? e.code : 'ERR_SCHEMA' });
      return mux.reset(s, EndReason.MISC);
    }
    if (this.connections >= (this.o.maxExitConnections ?? 4096)) {
      this.o.metrics.drops.inc({ reason: 'exit_connection_limit' });
      return mux.reset(s, EndReason.RESOURCE_LIMIT);
    }
    let address = target.a.replace(/^\[|\]$/g, '');
    if (!isIP(address)) {
      try {
        address = (await dns.lookup(address)).address;
      } catch {
        this.o.metrics.drops.inc({ reason: 'exit_resolve_failed' });
        return mux.reset(s, EndReason.RESOLVE_FAILED);
      }
    }
    if (s.state === 'closed') return;
    if (!policyAllows(this.o.policy, address, target.p)) {
      this.o.metrics.drops.inc({ reason: 'exit_policy' });
      return mux.reset(s, EndReason.EXIT_POLICY);
    }
    this.connections++;
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
