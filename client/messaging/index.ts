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
  Group,
  MAX_GROUP_PENDING,
  MAX_GROUP_PENDING_TOTAL,
  MAX_GROUP_SKIPPED,
  MAX_GROUP_SKIPPED_PER_GROUP,
  MAX_GROUPS,
  MAX_GROUPS_PER_INVITER,
  type GroupLimits,
  type GroupEvents,
  type GroupIncoming,
  type GroupKeyUpdate,
  type GroupMemberChange,
  type GroupSendReport,
  type CreateGroupOptions,
  type GroupDelivery,
} from './groups.js';
export { MAX_GROUP_MEMBERS, MAX_GROUP_MESSAGE_BYTES, MAX_GROUP_NAME_BYTES } from '../../protocol/group-messages.js';
export {
  Devices,
  HISTORY_TIMEOUT_MS,
  LINK_ACCEPT_TIMEOUT_MS,
  LINK_CODE_TTL_MS,
  MAX_DEVICE_LISTS,
  type DeviceChange,
  type DeviceEvents,
  type DeviceLimits,
  type DeviceListInfo,
  type DeviceReceipt,
  type HistoryMessage,
  type HistoryProgress,
  type LinkCodeInfo,
  type SyncedMessage,
} from './devices.js';
export { MAX_HISTORY_ENTRIES, MAX_HISTORY_LOG_BYTES } from './device-history.js';
export { decodeLinkCode, MAX_DEVICES, MAX_HISTORY_SYNC_BYTES, MAX_SYNC_DATA_BYTES, parseLinkCode, type LinkCode } from '../../protocol/device-link.js';
export { MAX_GROUP_SKIP } from '../../protocol/sender-key.js';
export { memoryGroupStorage, type GroupStorage } from './group-store.js';
export { attachmentName, attachmentType, decodeAttachment, encodeAttachment, MAX_ATTACHMENT_BYTES, type Attachment } from '../../protocol/attachment.js';
export { decodeCard, encodeCard, formatCard, parseCard, MAX_CARD_NAME_BYTES, type ContactCard } from '../../protocol/contact-card.js';
export {
  MixClient,
  MAX_MIX_MESSAGE,
  MAX_MIX_SEND_QUEUE,
  MIX_DELAY_MEAN_MS,
  MIX_LAYERS,
  MIX_LOOP_RATE,
  MIX_POLL_RATE,
  MIX_SEND_RATE,
  type MixAddress,
  type MixClientComponents,
  type MixClientEvents,
  type MixClientInit,
  type MixClientStats,
  type MixRelayInfo,
} from './mix-mode.js';
export { MAX_MIX_MESSENGER_BYTES } from '../../protocol/mix-message.js';
export type { CardMixAddress } from '../../protocol/contact-card.js';
export { safetyNumber, sameSafetyNumber, SAFETY_ITERATIONS } from '../../protocol/safety-number.js';
export { AttachmentDownload, type AttachmentDownloadEvents, type AttachmentProgress, type FileInput } from './attachments.js';
export {
  ContactBook,
  memoryContactStorage,
  MAX_CONTACTS,
  type CardInput,
  type Contact,
  type ContactBookOptions,
  type ContactEvents,
  type ContactStorage,
  type IdentityChange,
} from './contacts.js';
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
  type FileReceipt,
  type IncomingMessage,
  type ListenOptions,
  type MessengerEvents,
  type MessengerHost,
  type MessengerMixSettings,
  type MessengerOptions,
  type SendFileOptions,
  type SendOptions,
  type SendReceipt,
  type ServiceConnection,
  type ServiceConnector,
  type ServiceTarget,
} from './types.js';
