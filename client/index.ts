/**
 * allium/client — the client library (docs/developer-guide.md).
 *
 *   import { initCrypto, AlliumClient, ContentClient, nodeSocketFactory } from 'allium/client';
 */
export { initCrypto } from '../crypto/index.js';
export { AlliumClient, StreamError, type ClientOptions, type ConnectOptions, type ClientStorage } from './client.js';
export { ContentClient, type PutOptions, type GetOptions } from './content.js';
export { startSocksServer, SocksReply } from './socks.js';
export { fileStorage } from './storage-node.js';
export { nodeSocketFactory } from '../net/ws-node.js';
export { fromBrowserWebSocket } from '../net/socket.js';
export { IdentityKey } from '../crypto/keys.js';
export { AlliumError, type ErrorCode, type ErrorKind } from '../protocol/errors.js';
export { parseLink, formatLink } from '../protocol/content-link.js';
export type { MuxStream } from '../net/stream-mux.js';
export { Messenger, createIdentity, formatAddress, parseAddress, type IncomingMessage, type MessengerOptions, type Identity } from './messaging.js';
