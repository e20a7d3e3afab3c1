/**
 * Opening links. `openLink` waits for the handshake and returns the open link, or throws: ERR_LINK_AUTH when the
 * relay is not who the caller expected, ERR_UNREACHABLE when no connection could be made, ERR_TIMEOUT, ERR_ABORTED.
 * The WebSocket factory is injected: Node passes one over `ws` (net/ws-node.ts), browsers the native WebSocket.
 */
import { AbortedError, AlliumError, isAlliumError } from '../protocol/errors.js';
import { Link, type LinkOptions, type LinkSetup } from './link.js';
import type { LinkSocket } from './socket.js';

/** Opens a WebSocket to `url`; resolves when it is open. */
export type SocketFactory = (url: string, signal?: AbortSignal) => Promise<LinkSocket>;

export async function openLink(
  connect: SocketFactory,
  url: string,
  setup: Extract<LinkSetup, { role: 'initiator' }>,
  options: LinkOptions & { signal?: AbortSignal } = {},
): Promise<Link> {
  const { signal, ...linkOptions } = options;
  if (signal?.aborted) throw new AbortedError();
  let socket: LinkSocket;
  try {
    socket = await connect(url, signal);
  } catch (e) {
    if (isAlliumError(e)) throw e;
    throw new AlliumError('ERR_UNREACHABLE', `could not connect to relay`, { cause: e });
  }
  const link = new Link(socket, setup, linkOptions);
  return new Promise<Link>((resolve, reject) => {
    const onAbort = (): void => link.close(new AbortedError());
    signal?.addEventListener('abort', onAbort, { once: true });
    const offOpen = link.once('link:open', () => {
      offClose();
      signal?.removeEventListener('abort', onAbort);
      resolve(link);
    });
    const offClose = link.once('link:close', (err) => {
      offOpen();
      signal?.removeEventListener('abort', onAbort);
      reject(err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed during the handshake'));
    });
  });
}
