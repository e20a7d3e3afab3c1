/**
 * The public types of messaging (docs/developer-guide.md §Messaging): what a Messenger takes, emits and returns, and
 * what it needs of its client and of the host it runs on (a connector to local TCP services, injected so that the
 * library carries no node:net into browsers).
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import type { Attachment } from '../../protocol/attachment.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import type { AbortOptions } from '../../net/abort.js';
import type { MixClientInit } from './mix-mode.js';
import type { Link } from '../../net/link.js';
import type { MuxStream } from '../../net/stream-mux.js';
import type { AddressConnector, CircuitSource, MixGatewayLink, MixRelay } from '../client.js';
import type { AttachmentProgress } from './attachments.js';
import type { Contact, ContactStorage, IdentityChange } from './contacts.js';
import type { DeviceEvents, DeviceLimits, DeviceReceipt } from './device-types.js';
import type { GroupEvents, GroupLimits } from './groups.js';
import type { GroupStorage } from './group-store.js';
import type { EndpointLimits } from './limits.js';

/** What a Messenger uses of its client: directory and circuits, and (optionally) routing of `.allium` connects. */
export interface MessengerHost extends CircuitSource {
  /** Registers the Messenger for AlliumClient.connect() to `*.allium` addresses (AlliumClient has it). */
  useAddressConnector?(connector: AddressConnector): void;
  /** Message mode (specs/mix.md §8.1): the mix gateway and the link to it (AlliumClient has it). */
  mixGateway?(options?: AbortOptions): Promise<MixGatewayLink>;
  /** Message mode: the mix relays of the directory (AlliumClient has it). */
  mixRelays?(): readonly MixRelay[];
  /**
   * Message mode (specs/mix.md §8.6): a link to the listed mix relay `identity` (a former gateway whose inbox is
   * drained). Throws ERR_MIX_UNREACHABLE when it is no listed mix relay (AlliumClient has it).
   */
  mixLink?(identity: Uint8Array, options?: AbortOptions): Promise<Link>;
}

/** A local TCP service behind a hidden service port. */
export interface ServiceTarget {
  readonly host: string;
  readonly port: number;
}

/** A connection to a local service, made by a ServiceConnector. */
export interface ServiceConnection {
  /** Joins the connection to the accepted stream, both ways, until either ends. */
  attach(stream: MuxStream): void;
  /** Drops the connection. */
  close(): void;
}

/**
 * Connects to a local service. Resolves once connected; rejects when it cannot be reached (the stream is then refused
 * with CONNECT_REFUSED). The signal fires when the stream ends first: the connector drops what it started.
 */
export type ServiceConnector = (target: ServiceTarget, options?: AbortOptions) => Promise<ServiceConnection>;

/** An X25519 key pair for client authorisation: give the public half to the endpoint, keep the pair. */
export type ClientAuthKey = KeyPair;

/** A new client-authorisation key pair. */
export function createClientAuthKey(): ClientAuthKey {
  return crypto().x25519Keypair();
}

export interface IncomingMessage {
  /** The sender's address (authenticated by the session handshake, or by its signature for offline messages). */
  readonly from: string;
  readonly data: Uint8Array;
  /**
   * The sender's message number: in a live conversation 0, 1, 2, … (acknowledgements are not counted; a message sent
   * again over a new conversation gets that conversation's number); for an offline message, the sender's count of
   * offline messages to us (it restarts with the sender's process; `sentAt` orders across restarts).
   */
  readonly seq: number;
  /** True for a message collected from the mailbox (the sender found us not listening). */
  readonly offline: boolean;
  /**
   * The message id (hex, 16 random bytes chosen by the sender): the same for every copy of one message, live or
   * offline, and the `id` of the sender's receipt. A copy of an id already emitted is dropped (within the limits of
   * specs/messaging.md §8.3), so applications see each id once.
   */
  readonly id?: string;
  /** Offline messages: the sender's clock when it sent. */
  readonly sentAt?: number;
  /**
   * A file sent with sendFile() (specs/messaging.md §12): its size, media type and name, and where its blocks are.
   * `data` is then the encoded descriptor. Fetch it with Messenger.download().
   */
  readonly attachment?: Attachment;
  /**
   * Internal: `data` is a group envelope (specs/messaging.md §13.2). The messenger hands it to its groups and never
   * emits it as a message; group messages arrive as 'group:message' events.
   */
  readonly group?: true;
  /**
   * Internal: `data` is a device envelope (specs/messaging.md §14.2), handled by the messenger's devices and never
   * emitted as a message.
   */
  readonly deviceEnvelope?: true;
  /**
   * The address of the device that sent the message, when it is one of the sender's linked devices
   * (specs/messaging.md §14.5): `from` is then the person's address (its primary's), this the device's.
   */
  readonly device?: string;
}

/**
 * What happened to a message given to send(). Sent to a person with several devices (specs/messaging.md §14.5), the
 * receipt is the best of its devices' ('delivered' if one acknowledged it) and `devices` says what each made of it.
 */
export type SendReceipt = (
  | {
      /**
       * Acknowledged end to end: the recipient's Messenger received the message over a live session and emitted it
       * ('message:received'; the application may not have read it yet: this is no read receipt).
       */
      readonly status: 'delivered';
      readonly to: string;
      /** The message's number in the conversation that delivered it (IncomingMessage.seq at the recipient). */
      readonly seq: number;
      /** The message id (hex), which the recipient sees too (IncomingMessage.id). */
      readonly id: string;
    }
  | {
      /**
       * Handed to message mode (specs/mix.md §8.3): boxed under the pair's key and queued for the payload stream,
       * through the mixes to the recipient's gateway. The recipient acknowledges it through the mixes (§8.5):
       * 'message:delivered' follows with this id (seq 0), or 'message:failed' with ERR_MIX_UNACKNOWLEDGED once it
       * was sent again MIX_MAX_RETRANSMITS times without an acknowledgement; a message in fragments whose recipient's
       * messenger showed meanwhile that it does not read them fails at its retransmission with ERR_LIMIT, or with
       * mixFallback: 'circuits' goes over circuits under this id (§8.4).
       */
      readonly status: 'mixed';
      readonly to: string;
      readonly id: string;
      /** The mean time until the recipient's poll can collect it, at this messenger's settings (2,400 ms by default). */
      readonly expectedLatencyMs: number;
    }
  | {
      /**
       * Sealed to the recipient and left in its mailbox, to be collected when it listens. When a live attempt came
       * first and its acknowledgement never arrived, the recipient may already have the message: it then drops the
       * offline copy, which carries the same id.
       */
      readonly status: 'stored-offline';
      readonly to: string;
      readonly id: string;
      /** When relays drop it if it has not been collected (Unix ms). */
      readonly expires: number;
    }
) & {
  /** Sent to a person whose device list we hold: what each of its devices made of the message. */
  readonly devices?: readonly DeviceReceipt[];
};

/**
 * `signal` stops the send (ERR_ABORTED). A message already handed to a conversation may still arrive: an aborted or
 * timed out send does not say it did not.
 */
export interface SendOptions extends AbortOptions {
  /** Fail with ERR_TIMEOUT after this long (waiting for the acknowledgement included). */
  timeoutMs?: number;
  /**
   * 'auto' (default): a live session if the endpoint can be reached, else the mailbox (also when two conversations
   * were lost before the recipient acknowledged); 'never': live only (ERR_UNREACHABLE when not listening,
   * ERR_LINK_CLOSED or ERR_TIMEOUT when no acknowledgement came); 'only': straight to the mailbox.
   */
  offline?: 'auto' | 'never' | 'only';
  /** Life of an offline message (default and maximum MAX_MAILBOX_TTL_MS, 7 days). */
  ttlMs?: number;
  /** Our key for an endpoint that requires client authorisation (default: MessengerOptions.clientAuth). */
  clientAuth?: ClientAuthKey;
}

/** sendFile(): send()'s options, and progress of the upload. */
export interface SendFileOptions extends SendOptions {
  onProgress?: (p: AttachmentProgress) => void;
}

/** What sendFile() resolves with: the message's receipt, and the descriptor the recipient got. */
export type FileReceipt = SendReceipt & { readonly attachment: Attachment };

export interface ConnectOptions extends AbortOptions {
  /** Fail with ERR_TIMEOUT after this long. */
  timeoutMs?: number;
  clientAuth?: ClientAuthKey;
}

export interface ListenOptions extends AbortOptions {
  /** Only these X25519 public keys may read our descriptor (replaces MessengerOptions.authorizedClients). */
  authorizedClients?: readonly Uint8Array[];
}

/** The MixClient settings a Messenger passes on (rates, mean delay, cover); the defaults are specs/mix.md §5.1's. */
export type MessengerMixSettings = Pick<MixClientInit, 'cover' | 'sendRate' | 'loopRate' | 'pollRate' | 'delayMeanMs'>;

export interface MessengerOptions {
  /**
   * 'mix': message mode (specs/mix.md §8), opt-in: send() to a contact whose card gave a mix address goes through
   * the mixes with cover traffic, and our card() carries our mix address once startMessageMode() (or
   * startListening()) has run. 'circuits' (default): no message mode.
   */
  messageMode?: 'circuits' | 'mix';
  /**
   * In message mode, a send() to a recipient without a mix address: 'refuse' (default) throws ERR_MIX_UNREACHABLE;
   * 'circuits' sends it as without message mode (live or mailbox), giving up the cover for that message.
   */
  mixFallback?: 'refuse' | 'circuits';
  /** Message mode's rates, mean delay and cover (default: specs/mix.md §5.1's); for tests and measurements. */
  mix?: MessengerMixSettings;
  /**
   * Where message mode keeps its gateway and the former gateways it drains, sealed under a key derived from the
   * identity (specs/mix.md §8.6; default: nowhere, and a restart within MIX_INBOX_TTL of a gateway change loses the
   * old inbox's mail). In Node, fileGroupStorage(dir) (a directory of its own).
   */
  mixStorage?: GroupStorage;
  /** Introduction points to keep (default 3). */
  introPoints?: number;
  /** Re-publish the descriptor this often (default 10 minutes) and whenever an introduction point is lost. */
  republishMs?: number;
  /** Replace an introduction point after this long (default 18 h) … */
  introPointLifetimeMs?: number;
  /** … or after this many introductions through it (default 16384). */
  maxIntroductionsPerPoint?: number;
  /**
   * Give the introduction points the seeds proofs of work are solved under, so introductions that paid pass a flood
   * that did not (specs/rendezvous.md §3.2; default true). false only measures the defence (npm run audit:shape).
   */
  introPow?: boolean;
  /**
   * Measurement only (npm run bench:messaging -- --defences-off-too): every content request of this messenger —
   * descriptor lookups and publication, mailbox deposits and collection, attachments — goes straight to its holder,
   * as ContentOptions.directForMeasurement, without content forwarding's protections (specs/content.md §8.2–§8.3).
   * Default false; never set it for real use.
   */
  directContentForMeasurement?: boolean;
  /** Hidden TCP services: port → local host:port to connect to (through `connectService`). */
  services?: Record<number, ServiceTarget>;
  /**
   * How a hidden service reaches its local TCP services. The Node entry (`allium/client`) gives one over node:net by
   * default; without one (the browser), a stream to a service is refused as one to a service that is down.
   */
  connectService?: ServiceConnector;
  /** Client authorisation: only these X25519 public keys can find the endpoint (at most 32). */
  authorizedClients?: readonly Uint8Array[];
  /** Our client-authorisation key for endpoints that require one. */
  clientAuth?: ClientAuthKey;
  /**
   * A conversation whose peer acknowledges nothing for this long while messages wait for acknowledgement is closed,
   * and those messages are sent again over a new one (default 30 s).
   */
  ackTimeoutMs?: number;
  /**
   * Largest attachment sent or downloaded (default MAX_ATTACHMENT_BYTES, 100 MiB; specs/limits.md). Larger:
   * LimitError MAX_ATTACHMENT_BYTES, before anything is stored or fetched.
   */
  maxAttachmentBytes?: number;
  /** Where the contact book is kept (default: memory). In Node, fileContactStorage(path). */
  contactStorage?: ContactStorage;
  /** Contacts the book holds (default MAX_CONTACTS, 10 000). */
  maxContacts?: number;
  /**
   * Where group state is kept, sealed under a key derived from the identity (default: nowhere; it lives as long as the messenger). In
   * Node, fileGroupStorage(dir). A restarted messenger with the same identity and storage takes its groups back.
   */
  groupStorage?: GroupStorage;
  /** Bounds on groups and what members can make us hold (defaults: the constants of the same names, specs/limits.md). */
  groupLimits?: Partial<GroupLimits>;
  /**
   * Where device state is kept — our person, the link we accepted, every device list we hold — sealed under a key
   * derived from the identity (default: nowhere; it lives as long as the messenger). In Node, fileGroupStorage(dir)
   * (a directory of its own). A restarted messenger with the same identity and storage keeps its linked devices.
   */
  deviceStorage?: GroupStorage;
  /**
   * Where prekey secrets are kept (specs/messaging.md §9.6), sealed under a key derived from the identity (default:
   * nowhere, and then no prekeys are published: first-contact offline messages to us have no forward secrecy). In
   * Node, fileGroupStorage(dir) (a directory of its own). With it, listening publishes prekey records, and offline
   * messages from strangers are sealed to prekeys whose secrets are deleted after use.
   */
  prekeyStorage?: GroupStorage;
  /** Device lists held and history kept (defaults: MAX_DEVICE_LISTS, MAX_HISTORY_*, specs/limits.md). */
  devices?: Partial<DeviceLimits>;
  /** What initiators can make this endpoint hold (defaults: the constants of the same names, specs/limits.md). */
  limits?: Partial<EndpointLimits>;
  /**
   * Groups of delivery 'inbox' (specs/messaging.md §13.9): while listening, their group inboxes are read every
   * `pollMs` (default 60 s) and on start; checkGroups() reads them at once. `ttlMs`: the life of a deposit (default and
   * maximum 7 days).
   */
  groupInbox?: {
    pollMs?: number;
    ttlMs?: number;
    /** How long a group send waits for the epoch of a new roster before ERR_TIMEOUT (default 10 minutes). */
    epochWaitMs?: number;
    /** How long a member holds a new roster without its epoch before it asks an admin for it, and between asks
     * (default 60 s; specs/messaging.md §13.9). */
    epochAskMs?: number;
    /** How often a member holding its roster's epoch asks an admin whether it missed a later roster and epoch, on a
     * pass over the inbox (default 6 hours; specs/messaging.md §13.9). */
    epochCheckMs?: number;
  };
  /** Offline mailboxes. */
  offline?: {
    /** Collect offline messages while listening (default true). */
    collect?: boolean;
    /** Look for new offline messages this often while listening (default 60 s). */
    pollMs?: number;
    /** Default life of messages we leave offline (default 7 days). */
    ttlMs?: number;
  };
}

export type MessengerEvents = {
  'message:received': [IncomingMessage];
  /** A message was acknowledged by the recipient: over a live session, or through the mixes (message mode, seq 0). */
  'message:delivered': [Extract<SendReceipt, { status: 'delivered' }>];
  /** A message was left in the recipient's mailbox. */
  'message:stored-offline': [Extract<SendReceipt, { status: 'stored-offline' }>];
  /**
   * send() failed (it also throws the error), or a message-mode message was never acknowledged
   * (ERR_MIX_UNACKNOWLEDGED) or could not be sent again in fragments (ERR_LIMIT, specs/mix.md §8.4).
   */
  'message:failed': [{ to: string; error: AlliumError }];
  /** A mailbox collection pass finished, with the number of messages it delivered. */
  'mailbox:checked': [number];
  'endpoint:published': [number];
  /** Prekey records were published (specs/messaging.md §9.6), with how many of them some holder accepted. */
  'prekeys:published': [number];
  'endpoint:error': [AlliumError];
  /** Bytes of an attachment stored (sendFile) or fetched (a download) so far. */
  'attachment:progress': [AttachmentProgress];
  /** A contact was added to the book. */
  'contact:added': [Contact];
  /**
   * A card for a known contact name came with another identity key: the book now holds the new key with `changed`
   * set and `verified` cleared. Warn the user, and ask them to compare safety numbers again.
   */
  'contact:identity-changed': [IdentityChange];
  /** A contact's key was marked verified. */
  'contact:verified': [Contact];
  /**
   * Message mode (specs/mix.md §8.6): our address box to this contact (its address, and its name in the book) was
   * given up unacknowledged after its retransmissions. The contact may not be able to reach us in message mode (its
   * record may hold an older mix address, or none): tell the user, and give the contact a new card.
   */
  'contact:address-unacknowledged': [{ address: string; name?: string }];
  'contact:removed': [string];
} & GroupEvents &
  DeviceEvents;

/** `e` as an AlliumError (ERR_INTERNAL with `what` for anything else), as events report errors. */
export function asAlliumError(e: unknown, what: string): AlliumError {
  return isAlliumError(e) ? e : new AlliumError('ERR_INTERNAL', what, { cause: e });
}
