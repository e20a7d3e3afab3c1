/**
 * allium/browser — the client library for web pages (docs/developer-guide.md, "In the browser"): the same client as
 * allium/client without the Node-only parts (the `ws` socket factory, file storage, the SOCKS5 server). Built by
 * scripts/build-browser.ts into one ES module, dist/browser/allium.js, with libsodium in WebAssembly.
 *
 *   import { initCrypto, AlliumClient, Messenger, browserSocketFactory, browserStorage } from 'allium/browser';
 *
 * Groups work as in Node; their state at rest goes to `browserGroupStorage()` (localStorage) where allium/client has
 * `fileGroupStorage()`, and without a `groupStorage` it lives as long as the messenger.
 *
 * Hidden TCP services (`MessengerOptions.services`) need a `connectService` (a ServiceConnector): allium/client gives
 * one over node:net; in the bundle there is none unless the page passes its own, and a connection is refused.
 */
import { AbortedError, AlliumError } from '../protocol/errors.js';
import type { SocketFactory } from '../net/dial.js';
import { fromBrowserWebSocket, type LinkSocket } from '../net/socket.js';

export { initCrypto } from '../crypto/index.js';
export {
  AlliumClient,
  StreamError,
  type ClientOptions,
  type ConnectOptions,
  type ClientStorage,
  type NewCircuitOptions,
  type CircuitSource,
  type MixGatewayLink,
  type MixRelay,
} from './client.js';
export type { AbortOptions } from '../net/abort.js';
export { ContentClient, type PutOptions, type GetOptions } from './content.js';
export {
  Messenger,
  createIdentity,
  createClientAuthKey,
  formatAddress,
  parseAddress,
  MAX_LIVE_MESSAGE_BYTES,
  MAX_MAILBOX_MESSAGE_BYTES,
  MAX_MAILBOX_TTL_MS,
  type IncomingMessage,
  type MessengerOptions,
  type MessengerEvents,
  type Identity,
  type ClientAuthKey,
  type SendOptions,
  type SendReceipt,
  type ConnectOptions as MessengerConnectOptions,
  type ListenOptions,
  type MessengerHost,
  type ServiceConnector,
  type ServiceConnection,
  ContactBook,
  AttachmentDownload,
  memoryContactStorage,
  memoryGroupStorage,
  type GroupStorage,
  Group,
  MAX_GROUP_MEMBERS,
  MAX_GROUP_MESSAGE_BYTES,
  MAX_GROUP_NAME_BYTES,
  type GroupEvents,
  type GroupIncoming,
  type GroupKeyUpdate,
  type GroupLimits,
  type GroupMemberChange,
  type GroupSendReport,
  type CreateGroupOptions,
  type GroupDelivery,
  formatCard,
  parseCard,
  encodeCard,
  decodeCard,
  safetyNumber,
  sameSafetyNumber,
  MAX_ATTACHMENT_BYTES,
  type Attachment,
  type AttachmentProgress,
  type CardInput,
  type Contact,
  type ContactCard,
  type ContactStorage,
  type FileInput,
  type FileReceipt,
  type IdentityChange,
  type SendFileOptions,
  MixClient,
  MAX_MIX_MESSAGE,
  MAX_MIX_MESSENGER_BYTES,
  type MixAddress,
  type MixClientInit,
  type MixClientStats,
  type MixRelayInfo,
  type MessengerMixSettings,
  type CardMixAddress,
  type ServiceTarget,
} from './messaging/index.js';
export { browserStorage, browserGroupStorage, memoryStore, type KeyValueStore } from './storage-browser.js';
export { fromBrowserWebSocket, type LinkSocket } from '../net/socket.js';
export type { SocketFactory } from '../net/dial.js';
export { IdentityKey } from '../crypto/keys.js';
export { AlliumError, type ErrorCode, type ErrorKind } from '../protocol/errors.js';
export { parseLink, formatLink } from '../protocol/content-link.js';
export type { MuxStream } from '../net/stream-mux.js';

/**
 * Opens relay links with the browser's WebSocket. Resolves once the socket is open; rejects with ERR_UNREACHABLE
 * when it cannot connect (the browser does not say why: refused, bad certificate, mixed content) and ERR_ABORTED
 * when `signal` fires first.
 */
export const browserSocketFactory: SocketFactory = (url, { signal } = {}) =>
  new Promise<LinkSocket>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      return reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay', { cause: e }));
    }
    const done = (): void => {
      ws.removeEventListener('open', onOpen);
      ws.removeEventListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const onOpen = (): void => {
      done();
      resolve(fromBrowserWebSocket(ws));
    };
    const onError = (): void => {
      done();
      reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay'));
    };
    const onAbort = (): void => {
      done();
      ws.close();
      reject(new AbortedError());
    };
    ws.addEventListener('open', onOpen);
    ws.addEventListener('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
