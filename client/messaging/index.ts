/**
 * Messaging and hidden services, for every platform (docs/developer-guide.md §Messaging): the Messenger and its
 * types. Hidden TCP services need a ServiceConnector; the Node entry (./node.ts, `allium/client`) gives one over
 * node:net by default, and the browser bundle has none.
 */
export { createIdentity, formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
export { MAX_MAILBOX_MESSAGE_BYTES, MAX_MAILBOX_TTL_MS } from '../../protocol/mailbox.js';
export { MAX_LIVE_MESSAGE_BYTES } from '../../protocol/message-frames.js';
export { Messenger } from './messenger.js';
export {
  MAX_CONCURRENT_RENDEZVOUS,
  MAX_CONVERSATIONS,
  MAX_LISTEN_QUEUE,
  MAX_PENDING_INTRODUCTIONS,
  MAX_SERVICE_CIRCUITS,
  MAX_SERVICE_STREAMS_PER_CIRCUIT,
  SERVICE_CIRCUIT_IDLE_MS,
  type EndpointLimits,
} from './limits.js';
export {
  createClientAuthKey,
  type ClientAuthKey,
  type ConnectOptions,
  type IncomingMessage,
  type ListenOptions,
  type MessengerEvents,
  type MessengerHost,
  type MessengerOptions,
  type SendOptions,
  type SendReceipt,
  type ServiceConnection,
  type ServiceConnector,
  type ServiceTarget,
} from './types.js';
