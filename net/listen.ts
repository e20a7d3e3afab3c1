/**
 * Listening on a configured address, with the operating system's refusals as SystemErrors that name the setting:
 *
 *     metrics 127.0.0.1:9101: address already in use
 *
 * `probeListen` binds and releases at once, so that a relay (or a client's SOCKS listener) can check every address
 * it will listen on before it makes keys or contacts the network; `listenOn` is the real bind. Node only.
 */
import { createServer, type Server } from 'node:net';
import { SystemError } from '../protocol/errors.js';

const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available (not an address of this machine)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name could not be resolved',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  EISDIR: 'is a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
};

/** The words for a system error code ("address already in use"), or the code itself. */
export function errnoText(code: string | undefined): string {
  return (code && ERRNO_TEXT[code]) ?? code ?? 'failed';
}

/** `host:port` as written in a setting (IPv6 in brackets). */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function refusal(setting: string, host: string, port: number, e: unknown): SystemError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  let text = errnoText(code);
  if ((code === 'EACCES' || code === 'EPERM') && port > 0 && port < 1024) text += ' (ports below 1024 need privileges: use a port of 1024 or above)';
  return new SystemError(setting, code, `${setting} ${formatHostPort(host, port)}: ${text}`);
}

/** Binds `server` to host:port; a refusal becomes a SystemError naming `setting`. */
export function listenOn(server: Server | import('node:http').Server, host: string, port: number, setting: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => reject(refusal(setting, host, port, e));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Checks that host:port can be listened on now (binds, then releases it). Throws a SystemError naming `setting`. */
export async function probeListen(host: string, port: number, setting: string): Promise<void> {
  const server = createServer();
  await listenOn(server, host, port, setting);
  await new Promise<void>((r) => server.close(() => r()));
}
