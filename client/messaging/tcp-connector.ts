/**
 * Hidden TCP services in Node: the ServiceConnector that reaches a local service over node:net and joins the
 * connection to the stream with backpressure both ways (net/pipe-socket.ts). The Node entry (`allium/client`, and
 * client/messaging/node.ts) gives it to every Messenger by default; the browser bundle never includes this module.
 */
import { connect as tcpConnect } from 'node:net';
import { AbortedError, AlliumError } from '../../protocol/errors.js';
import type { AbortOptions } from '../../net/abort.js';
import { pipeSocket } from '../../net/pipe-socket.js';
import type { ServiceConnection, ServiceConnector, ServiceTarget } from './types.js';

/**
 * Connects to host:port. Resolves once connected; rejects with ERR_UNREACHABLE (refused, unreachable) or ERR_ABORTED
 * (the signal fired first: the connection attempt is dropped).
 */
export const tcpServiceConnector: ServiceConnector = (target: ServiceTarget, options: AbortOptions = {}) =>
  new Promise<ServiceConnection>((resolve, reject) => {
    const { signal } = options;
    if (signal?.aborted) return reject(new AbortedError());
    const socket = tcpConnect({ host: target.host, port: target.port });
    const onAbort = (): void => {
      socket.destroy();
      reject(new AbortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve({ attach: (stream) => pipeSocket(stream, socket), close: () => void socket.destroy() });
    });
    socket.once('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new AlliumError('ERR_UNREACHABLE', 'hidden service: the local service cannot be reached', { cause: e }));
    });
  });
