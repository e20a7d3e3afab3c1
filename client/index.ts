/**
 * allium/client — the client library (docs/developer-guide.md).
 *
 *   import { initCrypto, AlliumClient, ContentClient, nodeSocketFactory } from 'allium/client';
 */
export { initCrypto } from '../crypto/index.js';
export { AlliumClient, type ClientOptions } from './node-client.js';
export {
  StreamError,
  type ConnectOptions,
  type ClientStorage,
  type BootstrapStage,
  type NewCircuitOptions,
  type CircuitSource,
  type MixGatewayLink,
  type MixRelay,
} from './client.js';
export type { AbortOptions } from '../net/abort.js';
export { NoEntryError, parseBridgeLine, type BridgeLine } from './bootstrap.js';
export { ContentClient, type PutOptions, type GetOptions } from './content.js';
export { startSocksServer, SocksReply, type SocksServerOptions } from './socks.js';
export { fileStorage, defaultStateDir } from './storage-node.js';
export { nodeSocketFactory, createNodeSocketFactory, type NodeSocketOptions } from '../net/ws-node.js';
export { fromBrowserWebSocket } from '../net/socket.js';
export { IdentityKey } from '../crypto/keys.js';
export { AlliumError, type ErrorCode, type ErrorKind } from '../protocol/errors.js';
export { parseLink, formatLink } from '../protocol/content-link.js';
export type { MuxStream } from '../net/stream-mux.js';
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
  type ServiceTarget,
  ContactBook,
  AttachmentDownload,
  memoryContactStorage,
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
  fileContactStorage,
  fileGroupStorage,
  memoryGroupStorage,
  type GroupStorage,
  MixClient,
  MAX_MIX_MESSAGE,
  MAX_MIX_MESSENGER_BYTES,
  type MixAddress,
  type MixClientInit,
  type MixClientStats,
  type MixRelayInfo,
  type MessengerMixSettings,
  type CardMixAddress,
  tcpServiceConnector,
} from './messaging/node.js';
export {
  publishSite,
  readSite,
  siteStatus,
  type SiteSource,
  type PublishSiteOptions,
  type PublishSiteResult,
  type OpenedSite,
  type SiteStatus,
} from './site.js';
export { folderSources } from './site-folder.js';
export { openInsertJournal, type InsertJournal } from './insert-journal.js';
export { startGateway, type Gateway, type GatewayOptions, type GatewayComponents } from './gateway/server.js';
export { memoryBookmarkStorage, type BookmarkStorage } from './gateway/bookmarks.js';
export { fileBookmarkStorage } from './gateway/storage-node.js';
export { filterHtml, filterCss, filterSvg } from './content-filter/index.js';
