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
import { signalOption, type AbortOptions } from './abort.js';
import { Link, type LinkOptions, type LinkSetup } from './link.js';
import type { LinkSocket } from './socket.js';

/** Opens a WebSocket to `url`; resolves when it is open, rejects with ERR_ABORTED when the signal fires first. */
export type SocketFactory = (url: string, options?: AbortOptions) => Promise<LinkSocket>;

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
  options: LinkOptions & AbortOptions = {},
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
    socket = await connect(withUpgradeToken(url, initiator.upgradeToken()), signalOption(signal));
  } catch (e) {
    if (isAlliumError(e)) throw e;
    throw new AlliumError('ERR_UNREACHABLE', `could not connect to relay`, { cause: e });
  }
  const link = new Link(socket, { ...setup, initiator }, linkOptions);
  return new Promise<Link>((resolve, reject) => {
    // Aborted: the connection is dropped, and the call rejects once its socket is gone (nothing outlives it).
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      link.terminate(new AbortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const offOpen = link.once('link:open', () => {
      offClose();
      signal?.removeEventListener('abort', onAbort);
      resolve(link);
    });
    const offClose = link.once('link:close', (err) => {
      offOpen();
      signal?.removeEventListener('abort', onAbort);
      const error = err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed during the handshake');
      if (aborted) void link.socketClosed.then(() => reject(error));
      else reject(error);
    });
    if (signal?.aborted) onAbort(); // aborted while the socket was opening
  });
}

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens at that address (connection refused)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out (a firewall, or nothing at that address)',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ENOTFOUND: 'the host name was not found',
  EAI_AGAIN: 'the host name could not be resolved',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed and not trusted here',
  SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate is not trusted here',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate is not trusted here',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is for another name',
};

/**
 * Why a dial to a relay failed, in words an operator can act on (for "bootstrap relay … failed: …" lines). Never
 * includes key material; the relay's address is the caller's to add.
 */
export function explainDialFailure(e: unknown): string {
  if (!isAlliumError(e)) return 'failed';
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  switch (e.code) {
    case 'ERR_UNREACHABLE': {
      if (cause?.code && CONNECT_ERRORS[cause.code]) return CONNECT_ERRORS[cause.code]!;
      const http = /Unexpected server response: (\d+)/.exec(cause?.message ?? '');
      if (http) {
        return `a web server answers there with HTTP ${http[1]}, not an upgrade: the path is wrong, or the relay there is probe-resistant (a bridge) and this fingerprint is not its own`;
      }
      return cause?.code ? `could not connect (${cause.code})` : 'could not connect';
    }
    case 'ERR_LINK_CLOSED':
    case 'ERR_LINK_PROBE':
    case 'ERR_LINK_AUTH':
    case 'ERR_LINK_HANDSHAKE':
      return 'a relay answers there, but not as this fingerprint: the link handshake failed (a wrong fingerprint, or another relay at that address)';
    case 'ERR_LINK_CLOCK':
      return 'its clock and ours differ by more than the allowed skew (check NTP on both sides)';
    case 'ERR_LINK_VERSION':
      return 'it speaks no link protocol version in common with us (an upgrade needed on one side)';
    case 'ERR_TIMEOUT':
      return 'no answer within the handshake timeout';
    case 'ERR_ABORTED':
      return 'aborted';
    case 'ERR_DIAL_REFUSED':
      return 'the address is loopback, private or otherwise not public, which relays do not dial unless allow_private_addresses is set (for a test network on one machine or a private network)';
    default:
      return `${e.code}: ${e.message}`;
  }
}
