/**
 * Opening links. `openLink` waits for the handshake and returns the open link, or throws: ERR_LINK_AUTH when the
 * relay is not who the caller expected, ERR_UNREACHABLE when no connection could be made (including an HTTP answer
 * other than the upgrade: a relay that does not accept the upgrade token answers like a web server's miss),
 * ERR_TIMEOUT, ERR_ABORTED. The WebSocket factory is injected: Node passes one over `ws` (net/ws-node.ts), browsers
 * the native WebSocket.
 *
 * The first handshake message is made before the connection: its authenticated head goes into the URL as the upgrade
 * token (specs/link.md §2.6), so the relay can check it before upgrading and answer with msg2 at once.
 */
import { AbortedError, AlliumError, isAlliumError } from '../protocol/errors.js';
import { LinkInitiator, UPGRADE_TOKEN_PARAM } from '../protocol/link-handshake.js';
import { Link, type LinkOptions, type LinkSetup } from './link.js';
import type { LinkSocket } from './socket.js';

/** Opens a WebSocket to `url`; resolves when it is open. */
export type SocketFactory = (url: string, signal?: AbortSignal) => Promise<LinkSocket>;

/** `url` with the upgrade token set (any earlier token replaced). */
export function withUpgradeToken(url: string, token: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AlliumError('ERR_CONFIG', 'relay address is not a URL');
  }
  u.searchParams.set(UPGRADE_TOKEN_PARAM, token);
  return u.toString();
}

export async function openLink(
  connect: SocketFactory,
  url: string,
  setup: Extract<LinkSetup, { role: 'initiator' }>,
  options: LinkOptions & { signal?: AbortSignal } = {},
): Promise<Link> {
  const { signal, ...linkOptions } = options;
  if (signal?.aborted) throw new AbortedError();
  const init: ConstructorParameters<typeof LinkInitiator>[0] = {
    responder: setup.responder,
    now: (linkOptions.now ?? Date.now)(),
    ...(setup.identity ? { identity: setup.identity } : {}),
    ...(setup.psk ? { psk: setup.psk } : {}),
  };
  const initiator = setup.initiator ?? new LinkInitiator(init);
  let socket: LinkSocket;
  try {
    socket = await connect(withUpgradeToken(url, initiator.upgradeToken()), signal);
  } catch (e) {
    if (isAlliumError(e)) throw e;
    throw new AlliumError('ERR_UNREACHABLE', `could not connect to relay`, { cause: e });
  }
  const link = new Link(socket, { ...setup, initiator }, linkOptions);
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
