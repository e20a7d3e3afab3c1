/**
 * Private messaging and hidden services (docs/developer-guide.md §Messaging; specs/messaging.md, specs/rendezvous.md):
 * an identity listens at an address; anyone with the address reaches it through an introduction point and a
 * rendezvous point, each over its own circuit, so neither side learns where the other is and no relay sees both
 * ends. When the recipient is not listening, a message is sealed to it and left in its mailbox in the overlay, and
 * the recipient collects it when it listens again.
 *
 *   const alice = new Messenger(client, createIdentity());
 *   for await (const m of alice.listen()) console.log(m.from, m.data, m.offline);
 *   const r = await bob.send(alice.address, bytes);  // r.status: 'delivered' (acknowledged) or 'stored-offline'
 *   const stream = await bob.connect(address, 80);     // a hidden TCP service
 *
 * Live messages are acknowledged end to end: send() reports 'delivered' only once the recipient's Messenger has
 * received and emitted the message. A message whose conversation is lost before the acknowledgement comes is sent
 * again over a new rendezvous, then left in the mailbox, always under the same message id, and the recipient drops
 * copies of an id it has already emitted (specs/messaging.md §8.2–§8.3).
 *
 * Client authorisation: an endpoint listening with `authorizedClients` (X25519 public keys from
 * createClientAuthKey()) publishes a descriptor only those clients can read; others get ERR_CLIENT_AUTH.
 *
 * This is the facade; the parts are: endpoint.ts (introduction points, publishing), service.ts (answering
 * introductions, serving rendezvous circuits, hidden TCP services through an injected connector), rendezvous.ts (the
 * initiator's side), conversation.ts (one conversation's frames and acknowledgements), delivery.ts (listen() queues
 * and copies), and client/mailbox.ts (offline messages). It keeps the conversations on file by peer.
 *
 * Why ~430 lines: the facade's public calls (listen, send, connect, checkMailbox) and their documentation are most of
 * it; the rest is the table of conversations by peer, which send() and the hidden service's accepted streams share.
 */
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { AbortedError, AlliumError, isAlliumError, throwIfAborted } from '../../protocol/errors.js';
import { decodeAttachment, encodeAttachment, MAX_ATTACHMENT_BYTES, type Attachment } from '../../protocol/attachment.js';
import { decodeCard, encodeCard, formatCard, parseCard } from '../../protocol/contact-card.js';
import { HELLO_PREKEYS, MESSAGE_ID_LEN, type FrameContent } from '../../protocol/message-frames.js';
import { safetyNumber } from '../../protocol/safety-number.js';
import type { RatchetSession } from '../../protocol/ratchet.js';
import { deadline, Shutdown, signalOption, type AbortOptions } from '../../net/abort.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { Emitter } from '../../net/emitter.js';
import type { MuxStream } from '../../net/stream-mux.js';
import { ContentClient } from '../content.js';
import { MailboxCollector, MailboxSender, MAX_MAILBOX_PAIRS, type MailboxPairs } from '../mailbox.js';
import { PrekeyOwner, PrekeyPublishers } from '../prekeys.js';
import { AttachmentDownload, uploadAttachment, type AttachmentProgress, type FileInput } from './attachments.js';
import { ContactBook, type CardInput, type Contact } from './contacts.js';
import { Conversation } from './conversation.js';
import { Delivery } from './delivery.js';
import { Devices, type DeviceListInfo } from './devices.js';
import { Endpoint } from './endpoint.js';
import { Group, Groups, type CreateGroupOptions } from './groups.js';
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_POLL_MS,
  endpointLimits,
  LIVE_ATTEMPTS,
  MAX_OFFLINE_PEERS,
  MESSAGE_STREAM,
  OFFLINE_RECHECK_MS,
  SERVICE_STREAM,
  type EndpointLimits,
} from './limits.js';
import { meetEndpoint, openStream, openStreamEarly, RendezvousAhead, type Meeting } from './rendezvous.js';
import { CONTENT_AHEAD_LIFETIME_MS } from '../content-circuits.js';
import { HiddenService } from './service.js';
import {
  asAlliumError,
  type ClientAuthKey,
  type ConnectOptions,
  type FileReceipt,
  type IncomingMessage,
  type ListenOptions,
  type MessengerEvents,
  type MessengerHost,
  type MessengerOptions,
  type SendFileOptions,
  type SendOptions,
  type SendReceipt,
} from './types.js';
import { endpointCircuits } from './endpoint-circuits.js';
import { MessengerMix, type MessengerMixAckStats } from './messenger-mix.js';
import type { MixClientStats } from './mix-mode.js';
import type { CardMixAddress } from '../../protocol/contact-card.js';
import { MAX_MIX_MESSENGER_BYTES } from '../../protocol/mix-message.js';

export class Messenger extends Emitter<MessengerEvents> {
  readonly address: string;
  private readonly limits: EndpointLimits;
  /** Introduction points and the published descriptor. */
  private readonly endpoint: Endpoint;
  /** Answers introductions and serves rendezvous circuits. */
  private readonly service: HiddenService;
  /** Hands incoming messages to listen() calls and events. */
  private readonly delivery: Delivery;
  /** Looks up other endpoints' descriptors (other circuits, so holders cannot link our lookups to our endpoint). */
  private readonly lookups: ContentClient;
  /** A circuit to a rendezvous point built ahead, for sends as our identity only (specs/rendezvous.md §4.1). */
  private readonly rendezvousAhead: RendezvousAhead;
  /** Attachments: their blocks are stored and fetched over circuits of their own. */
  private readonly files: ContentClient;
  private readonly maxAttachmentBytes: number;
  /** The contact book: each contact's identity key, verified or changed (specs/messaging.md §11.3). */
  readonly contacts: ContactBook;
  /** The groups we are in (specs/messaging.md §13); their envelopes travel through deliver() as frames of kind 4. */
  private readonly groupTable: Groups;
  /**
   * Our person's devices and the device lists of others (specs/messaging.md §14): link(), unlink(),
   * requestHistory(); send() goes to every device of a person whose list we hold. Envelopes are frames of kind 5.
   */
  readonly devices: Devices;
  private readonly outbox: MailboxSender;
  private readonly inbox: MailboxCollector;
  /** Our prekeys (specs/messaging.md §9.6), when there is storage to keep them across restarts. */
  private readonly prekeys: PrekeyOwner | null;
  /** The circuits prekey records are published over (the endpoint role's). */
  private readonly asEndpoint: ReturnType<typeof endpointCircuits>;
  /**
   * peer address → the conversation send() uses (being built, or open). An entry goes when its conversation closes
   * or fails to build; at most maxConversations, the longest filed unfiled first.
   */
  private readonly conversations = new Map<string, Promise<Conversation>>();
  /**
   * Pairs (specs/messaging.md §9.1): peers that authenticated a conversation with us, by address, most recent last; at
   * most MAX_MAILBOX_PAIRS. Their per-contact inboxes are read, as contacts' are, in case they hold us as a contact.
   */
  private readonly pairs = new Map<string, Uint8Array>();
  /** The contacts the last collection read from the book: used when the book cannot be read (§9.5). */
  private lastContacts: Contact[] = [];
  /** peer address → until when sends to it go straight to its mailbox. */
  private readonly offlineUntil = new Map<string, number>();
  /** Every open conversation (ours and those peers opened to us), closed with the messenger. */
  private readonly live = new Set<Conversation>();
  private listening: Promise<void> | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  /** Reads the inboxes of version 2 groups while listening. */
  private groupPollTimer: ReturnType<typeof setInterval> | null = null;
  /** Deposits and collection of version 2 groups (specs/messaging.md §13.9), over circuits of their own. */
  private readonly groupContent: ContentClient;
  private closed = false;
  /** Message mode (specs/mix.md §8), when `messageMode: 'mix'`. */
  private readonly mixMode: MessengerMix | null;
  /** Aborted by close(): every rendezvous, send, mailbox pass and listen() the messenger runs stops. */
  private readonly shutdown = new Shutdown();

  /**
   * `client`: the directory and circuits to use (an AlliumClient; connections it makes to `*.allium` addresses are
   * routed through this messenger). `options.connectService` reaches hidden TCP services (the Node entry gives one).
   */
  constructor(
    private readonly client: MessengerHost,
    readonly identity: Identity = createIdentity(),
    private readonly options: MessengerOptions = {},
  ) {
    super();
    this.address = formatAddress(identity.publicKey);
    this.limits = endpointLimits(options.limits);
    this.delivery = new Delivery(this.limits.maxListenQueue, (m) => this.emit('message:received', m));
    const contentOptions = options.directContentForMeasurement ? { directForMeasurement: true } : {};
    this.lookups = new ContentClient(client, contentOptions);
    this.rendezvousAhead = new RendezvousAhead(client, CONTENT_AHEAD_LIFETIME_MS);
    this.files = new ContentClient(client, contentOptions);
    this.maxAttachmentBytes = options.maxAttachmentBytes ?? MAX_ATTACHMENT_BYTES;
    this.contacts = new ContactBook(options.contactStorage, options.maxContacts !== undefined ? { maxContacts: options.maxContacts } : {});
    this.contacts.on('contact:added', (c) => this.emit('contact:added', c));
    this.contacts.on('contact:identity-changed', (c) => this.emit('contact:identity-changed', c));
    this.contacts.on('contact:verified', (c) => this.emit('contact:verified', c));
    this.contacts.on('contact:removed', (n) => this.emit('contact:removed', n));
    this.groupContent = new ContentClient(client, contentOptions);
    this.groupTable = new Groups(
      {
        identity,
        // To every device of the member's person, when we hold its list (specs/messaging.md §13.8).
        sendEnvelope: (to, envelope, o) => this.devices.toMember(to, envelope, o, crypto().random(MESSAGE_ID_LEN)),
        member: () => this.devices.groupMember(),
        // A member's linked device sends as the member (specs/messaging.md §13.8).
        personOf: (device) => this.devices.personOfDevice(device),
        introduce: (to, o) => this.devices.announceMissing(to, o),
        emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => void)(event, ...args),
        error: (e) => this.emit('endpoint:error', e),
      },
      {
        ...(options.groupStorage ? { storage: options.groupStorage } : {}),
        ...(options.groupLimits ? { limits: options.groupLimits } : {}),
        inbox: {
          content: this.groupContent,
          ...(options.groupInbox?.ttlMs !== undefined ? { ttlMs: options.groupInbox.ttlMs } : {}),
          ...(options.groupInbox?.epochWaitMs !== undefined ? { epochWaitMs: options.groupInbox.epochWaitMs } : {}),
          ...(options.groupInbox?.epochAskMs !== undefined ? { epochAskMs: options.groupInbox.epochAskMs } : {}),
          ...(options.groupInbox?.epochCheckMs !== undefined ? { epochCheckMs: options.groupInbox.epochCheckMs } : {}),
        },
      },
    );
    this.devices = new Devices(
      {
        identity,
        deliver: (to, data, o, content, id) => this.deliver(to, data, o, content, id),
        contacts: async (o) => (await this.contacts.list(o)).map((c) => c.address),
        groupMembers: () => [...new Set(this.groupTable.list().flatMap((g) => (g.isActive ? g.members : [])))],
        emit: (event, ...args) => {
          // A person's devices changed: in its groups, its devices get our key again (specs/messaging.md §13.8).
          if (event === 'devices:changed') this.groupTable.devicesChanged(parseAddress((args[0] as DeviceListInfo).person));
          (this.emit as (e: string, ...a: unknown[]) => void)(event, ...args);
        },
        error: (e) => this.emit('endpoint:error', e),
      },
      options.devices,
      options.deviceStorage,
    );
    // Whom we must never write version 2 items (§9.6): kept with our prekeys, so a restart does not forget it.
    this.outbox = new MailboxSender(client, identity, contentOptions, { publishers: new PrekeyPublishers(identity, options.prekeyStorage) });
    // Circuits in the endpoint role take their second hop from the vanguards (specs/path.md §3.2): anyone with the
    // address can make us build them. Lookups and sends, as an initiator, are ordinary circuits.
    const asEndpoint = endpointCircuits(client);
    this.asEndpoint = asEndpoint;
    this.prekeys = options.prekeyStorage ? new PrekeyOwner(identity, options.prekeyStorage) : null;
    const prekeys = this.prekeys;
    this.inbox = new MailboxCollector(asEndpoint, identity, {
      pairs: () => this.pairKeys(),
      content: contentOptions,
      ...(prekeys ? { prekeys: { lookup: (id, kind) => prekeys.lookup(id, kind), opened: (id) => prekeys.opened(id) } } : {}),
    });
    const endpointOptions: ConstructorParameters<typeof Endpoint>[2] = {};
    if (options.introPoints !== undefined) endpointOptions.introPoints = options.introPoints;
    if (options.republishMs !== undefined) endpointOptions.republishMs = options.republishMs;
    if (options.introPointLifetimeMs !== undefined) endpointOptions.introPointLifetimeMs = options.introPointLifetimeMs;
    if (options.maxIntroductionsPerPoint !== undefined) endpointOptions.maxIntroductionsPerPoint = options.maxIntroductionsPerPoint;
    if (options.authorizedClients !== undefined) endpointOptions.authorizedClients = options.authorizedClients;
    if (options.introPow !== undefined) endpointOptions.introPow = options.introPow;
    if (options.directContentForMeasurement) endpointOptions.directContentForMeasurement = true;
    this.endpoint = new Endpoint(asEndpoint, identity, endpointOptions, {
      introduced: (p) => this.service.enqueue(p),
      published: (revision) => this.emit('endpoint:published', revision),
      error: (e) => this.emit('endpoint:error', e),
      load: () => this.service.takeLoad(),
    });
    const serviceOptions = {
      limits: this.limits,
      ...(options.services ? { services: options.services } : {}),
      ...(options.connectService ? { connectService: options.connectService } : {}),
    };
    this.service = new HiddenService(asEndpoint, identity, serviceOptions, {
      // The handshake only claims who `peer` is: the stream becomes our conversation with that peer once a frame on
      // it authenticates (specs/messaging.md §8). Until then an impostor's stream can neither take our messages to
      // the peer nor block them.
      messageStream: (peer, circuit, stream, session) => void this.conversation(peer, circuit, stream, session, (conv) => this.bindAuthenticated(peer, conv)),
      error: (e) => this.emit('endpoint:error', e),
      loaded: () => this.endpoint.loadSeen(true),
    });
    client.useAddressConnector?.((address, port, o) => this.connect(address, port, o));
    this.mixMode =
      options.messageMode === 'mix'
        ? new MessengerMix(
            client,
            identity,
            options.mix ?? {},
            {
              message: (from, id, body) => {
                // Copies of an id (a retransmission whose acknowledgement was lost) are dropped here (mix.md §8.5).
                const m: IncomingMessage = { from: formatAddress(from), data: body, seq: 0, offline: false, id: toHex(id) };
                void this.delivery.receive(this.devices.incoming(m), () => this.closed);
              },
              mixAddressOf: async (from) => (await this.contacts.byAddress(formatAddress(from)))?.mix,
              mixContacts: async () => (await this.contacts.list()).flatMap((c) => (c.mix ? [{ key: c.key, mix: c.mix }] : [])),
              isContact: async (from) => (await this.contacts.byAddress(formatAddress(from))) !== undefined,
              // An address box (mix.md §8.6) newer than the last applied updates the record as a version 3 card of the
              // same key would; an older one changes nothing.
              addressChanged: (from, mix, seq) => this.contacts.setMix(from, mix, seq),
              delivered: (to, id) => this.emit('message:delivered', { status: 'delivered', to: formatAddress(to), seq: 0, id: toHex(id) }),
              failed: (to, id, error, body) => {
                // A message in fragments to a contact found since not to read them (mix.md §8.4): over circuits, under
                // its id, when the application chose so, as a first send() would go; 'message:delivered' or
                // 'message:failed' follows from there.
                if (body && this.options.mixFallback === 'circuits' && !this.closed) {
                  void this.devices.send(formatAddress(to), body, {}, 'data', id).catch(() => undefined);
                  return;
                }
                this.emit('message:failed', { to: formatAddress(to), error });
              },
              // Our address box was never acknowledged (mix.md §8.6): the contact may not be able to reach us.
              addressUnacknowledged: (to) => void this.addressUnacknowledged(formatAddress(to)),
              error: (e) => this.emit('endpoint:error', e),
            },
            options.mixStorage,
          )
        : null;
  }

  // ------------------------------------------------------------------ message mode (specs/mix.md §8)

  /**
   * Starts message mode (`messageMode: 'mix'`; startListening() does it first): opens the link to the mix gateway
   * (a guard that is a mix relay, kept as guards are) and starts the cover streams; from then on card() carries our
   * mix address. Idempotent. Throws ERR_CONFIG (not created with `messageMode: 'mix'`), ERR_MIX_UNREACHABLE (no mix
   * relay can be our gateway), the dial's errors, ERR_ABORTED.
   */
  async startMessageMode(options: AbortOptions = {}): Promise<void> {
    if (this.closed) throw new AbortedError('messenger closed');
    if (!this.mixMode) throw new AlliumError('ERR_CONFIG', "message mode needs messageMode: 'mix'");
    await this.mixMode.start(options);
  }

  /** 'contact:address-unacknowledged' for `address`, with its name in the book if it is there (specs/mix.md §8.6). */
  private async addressUnacknowledged(address: string): Promise<void> {
    let name: string | undefined;
    try {
      name = (await this.contacts.byAddress(address))?.name;
    } catch {
      name = undefined; // the book cannot be read: the event names the address alone
    }
    if (!this.closed) this.emit('contact:address-unacknowledged', { address, ...(name !== undefined ? { name } : {}) });
  }

  /** Our mix address (specs/mix.md §8.1) once message mode runs; what card() publishes. */
  get mixAddress(): CardMixAddress | undefined {
    return this.mixMode?.address;
  }

  /**
   * Message mode's counters: the MixClient's (real, drop and loop packets sent, loops returned, polls, mail), `rejected`,
   * message-mode messages dropped because they did not open under the pair's key (forged or damaged), and the
   * acknowledgements' (specs/mix.md §8.5): acknowledgements sent and received, retransmissions, messages given up,
   * `pending`, messages awaiting their acknowledgement now, and `waiting`, boxes queued for a slot of the payload
   * stream (acknowledgements included).
   */
  get mixStats():
    | (Readonly<MixClientStats> & Readonly<MessengerMixAckStats> & { readonly rejected: number; readonly pending: number; readonly waiting: number })
    | undefined {
    const m = this.mixMode;
    const s = m?.stats;
    return m && s ? { ...s, ...m.acks, rejected: m.rejected, pending: m.unacknowledged, waiting: m.waiting } : undefined;
  }

  /** send() in message mode: through the mixes, or (mixFallback: 'circuits') as without it, or ERR_MIX_UNREACHABLE. */
  private async sendMixed(address: string, data: Uint8Array, options: SendOptions): Promise<SendReceipt | null> {
    const mix = this.mixMode!;
    const key = parseAddress(address);
    const to = formatAddress(key);
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      throwIfAborted(options.signal);
      const contact = await this.contacts.byAddress(to, options.signal ? { signal: options.signal } : {});
      // A message over MAX_MIX_MESSENGER_BYTES to a contact whose messenger is known not to read fragments (mix.md
      // §8.4): over circuits when the application chose so, else MixClient refuses it (ERR_LIMIT).
      const unfragmentable = data.length > MAX_MIX_MESSENGER_BYTES && mix.readsFragments(key) === false;
      if (unfragmentable && this.options.mixFallback === 'circuits') return null;
      if (!contact?.mix || !mix.running) {
        if (this.options.mixFallback === 'circuits') return null;
        throw new AlliumError(
          'ERR_MIX_UNREACHABLE',
          !mix.running ? 'message mode is not running (startMessageMode())' : 'the recipient gave no mix address (a version 3 card)',
        );
      }
      const id = crypto().random(MESSAGE_ID_LEN);
      mix.send(key, contact.mix, id, data);
      return { status: 'mixed' as const, to, id: toHex(id), expectedLatencyMs: mix.expectedLatencyMs };
    } catch (e) {
      const error = asAlliumError(e, 'send failed');
      this.emit('message:failed', { to: address, error });
      throw error;
    }
  }

  // ------------------------------------------------------------------ listening (the endpoint side)

  /**
   * Starts listening: keeps introduction points and a published descriptor, collects offline messages, and yields
   * incoming messages (live and offline) until close() or the signal aborts.
   */
  async *listen(options: ListenOptions = {}): AsyncGenerator<IncomingMessage> {
    // At most maxListenQueue messages wait here; each source (a conversation, the mailbox) hands over its next
    // message only once the application has taken the last (specs/messaging.md §8.4).
    const queue = this.delivery.openQueue();
    try {
      await this.startListening(options);
      yield* queue.take(signalOption(options.signal));
    } finally {
      queue.close();
    }
  }

  /**
   * Establishes introduction points, publishes the descriptor (and, with `prekeyStorage`, the prekey records) and
   * starts collecting offline messages (idempotent). Throws ERR_UNREACHABLE when no introduction point can be established, ERR_ABORTED.
   */
  startListening(options: ListenOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new AbortedError('messenger closed'));
    if (options.authorizedClients) this.endpoint.setAuthorizedClients(options.authorizedClients);
    this.listening ??= (async () => {
      // A listening messenger may send at any time: its first lookup finds its circuits built (content.md §8.2).
      void this.prepare();
      if (this.mixMode) await this.mixMode.start(signalOption(options.signal));
      await this.endpoint.start(signalOption(options.signal));
      // Our prekeys, so strangers' offline messages to us get forward secrecy (§9.6): listening waits for them, but a
      // failure ('endpoint:error') does not stop it; senders that find no record write version 2 items.
      if (this.prekeys && !this.closed) await this.publishPrekeys(signalOption(options.signal)).catch(() => undefined);
      if (this.options.offline?.collect !== false && !this.closed) {
        this.pollTimer = setInterval(() => void this.checkMailbox().catch(() => undefined), this.options.offline?.pollMs ?? DEFAULT_POLL_MS);
        (this.pollTimer as { unref?: () => void }).unref?.();
        void this.checkMailbox().catch(() => undefined);
      }
      if (!this.closed) {
        this.groupPollTimer = setInterval(() => void this.checkGroups().catch(() => undefined), this.options.groupInbox?.pollMs ?? DEFAULT_POLL_MS);
        (this.groupPollTimer as { unref?: () => void }).unref?.();
        void this.checkGroups().catch(() => undefined);
      }
    })();
    this.listening.catch(() => (this.listening = null));
    return this.listening;
  }

  /**
   * Builds ahead what this messenger's first send() to a new endpoint waits for: the circuits of its descriptor
   * lookups (specs/content.md §8.2 "Started") and one to a rendezvous point (specs/rendezvous.md §4.1), its own,
   * used by no other messenger (nor by connect(), which meets as throwaway identities) and carrying nothing until a
   * lookup or a send takes them. startListening() does it. Resolves once they are built or failed (never rejects);
   * unused, they close CONTENT_AHEAD_LIFETIME after their build and are not replaced.
   */
  prepare(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return Promise.all([this.lookups.buildAhead(), this.rendezvousAhead.start()]).then(() => undefined);
  }

  /**
   * Collects offline messages now (listening does this on start and every `offline.pollMs`). They arrive as
   * 'message:received' events with `offline: true`. Resolves with the number delivered.
   */
  async checkMailbox(options: AbortOptions = {}): Promise<number> {
    if (this.closed) throw new AbortedError('messenger closed');
    const scope = this.shutdown.scope(options.signal);
    try {
      await this.prekeys?.load({ signal: scope.signal });
      this.prekeys?.beginPass();
      const n = await this.inbox.collect(
        (m) => {
          if (this.closed) return false;
          if (m.group) return this.groupEnvelope(formatAddress(m.from), m.data);
          if (m.device) return this.deviceEnvelope(formatAddress(m.from), m.data);
          let attachment: Attachment | undefined;
          if (m.attachment) {
            try {
              attachment = decodeAttachment(m.data);
            } catch (e) {
              this.emit('endpoint:error', asAlliumError(e, 'attachment descriptor refused'));
              return false; // never deliverable: deleted like a copy
            }
          }
          const incoming: IncomingMessage = {
            from: formatAddress(m.from),
            data: m.data,
            seq: m.n,
            offline: true,
            id: m.id,
            sentAt: m.t,
            ...(attachment ? { attachment } : {}),
          };
          return this.delivery.receive(this.devices.incoming(incoming), () => this.closed);
        },
        (e) => this.emit('endpoint:error', e),
        { signal: scope.signal },
      );
      // One-time prekeys that opened items are rolled over (at most hourly) and the records published again without
      // them; retired ones past their grace are wiped; stale records are refreshed (§9.6).
      if (this.prekeys && (await this.prekeys.endPass({ signal: scope.signal }))) await this.publishPrekeys({ signal: scope.signal });
      this.emit('mailbox:checked', n);
      return n;
    } catch (e) {
      const err = asAlliumError(e, 'mailbox collection failed');
      if (err.code !== 'ERR_ABORTED') this.emit('endpoint:error', err);
      throw err;
    } finally {
      scope.dispose();
    }
  }

  /**
   * Publishes our prekey records (specs/messaging.md §9.6) over endpoint-role circuits of their own; emits
   * 'prekeys:published'. Errors are reported as 'endpoint:error' and thrown.
   */
  private async publishPrekeys(options: AbortOptions = {}): Promise<void> {
    if (!this.prekeys) return;
    const scope = this.shutdown.scope(options.signal);
    const content = new ContentClient(this.asEndpoint, this.options.directContentForMeasurement ? { directForMeasurement: true } : {});
    try {
      const n = await this.prekeys.publish(content, { signal: scope.signal });
      this.emit('prekeys:published', n);
    } catch (e) {
      const err = asAlliumError(e, 'prekey publication failed');
      if (err.code !== 'ERR_ABORTED') this.emit('endpoint:error', err);
      throw err;
    } finally {
      content.close();
      scope.dispose();
    }
  }

  /** Changes who may read our descriptor, and republishes it when listening. */
  async setAuthorizedClients(keys: readonly Uint8Array[], options: AbortOptions = {}): Promise<void> {
    this.endpoint.setAuthorizedClients(keys);
    if (this.listening) {
      await this.listening;
      await this.endpoint.republish(options);
    }
  }

  /** A conversation on an accepted or opened message stream, closed with the messenger. */
  private conversation(
    peer: string,
    circuit: ClientCircuit,
    stream: MuxStream,
    session: RatchetSession,
    onAuthenticated?: (c: Conversation) => void,
  ): Conversation {
    const conv: Conversation = new Conversation(
      peer,
      circuit,
      stream,
      session,
      (m): Promise<boolean> =>
        m.group
          ? this.groupEnvelope(m.from, m.data)
          : m.deviceEnvelope
            ? this.deviceEnvelope(m.from, m.data)
            : this.delivery.receive(this.devices.incoming(m), () => conv.closed),
      (e) => this.emit('endpoint:error', e),
      this.options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
      onAuthenticated,
      // Our hello says whether we publish prekeys, as our card does (§8.1, §11.1); the peer's is remembered.
      { flags: this.prekeys ? HELLO_PREKEYS : 0, taken: (flags) => void this.peerHello(peer, flags) },
    );
    this.live.add(conv);
    const forget = (): void => void this.live.delete(conv);
    stream.once('stream:end', forget);
    circuit.once('circuit:close', forget);
    return conv;
  }

  /**
   * The hello of a conversation with `peer` (specs/messaging.md §8.1; it decrypted, so it is the peer's word): one with
   * PREKEYS makes the peer known to publish prekeys for good — in our memory of publishers (kept with our prekey
   * storage) and, for a contact with this key, its record's mark — so no offline item to it is ever version 2 (§9.6).
   * Errors are reported.
   */
  private async peerHello(peer: string, flags: number): Promise<void> {
    if ((flags & HELLO_PREKEYS) === 0 || this.closed) return;
    try {
      const key = parseAddress(peer);
      await this.outbox.saidPublishes(key);
      await this.contacts.markPrekeys(key); // no contact with this key: nothing to mark
    } catch (e) {
      this.emit('endpoint:error', asAlliumError(e, 'prekeys of a peer not remembered'));
    }
  }

  /**
   * A group envelope from `from` (specs/messaging.md §13.2), once our device state is read: on a linked device the
   * group table stands for our person (§13.8). Refusals are reported; the envelope is taken as handled.
   */
  private async groupEnvelope(from: string, data: Uint8Array): Promise<boolean> {
    await this.devices.load().catch((e: unknown) => this.emit('endpoint:error', asAlliumError(e, 'device state not read')));
    await this.groupTable.receive(from, data);
    return true;
  }

  /** A device envelope from `from` (specs/messaging.md §14.2); a refusal is reported, and the envelope taken as handled. */
  private deviceEnvelope(from: string, data: Uint8Array): Promise<boolean> {
    return this.devices.receive(from, data).then(
      () => true,
      (e: unknown) => {
        this.emit('endpoint:error', asAlliumError(e, 'device envelope refused'));
        return true;
      },
    );
  }

  /**
   * A conversation the peer opened has authenticated: our replies to the peer go over it, unless one of ours that
   * can send is still open.
   */
  private bindAuthenticated(peer: string, conv: Conversation): void {
    if (this.closed || conv.closed) return;
    this.offlineUntil.delete(peer);
    this.pair(peer);
    const have = this.conversations.get(peer);
    const mine = Promise.resolve(conv);
    if (!have) {
      this.file(peer, mine, conv);
      return;
    }
    void have.then(
      (c) => {
        if (!c.canSend && this.conversations.get(peer) === have && conv.canSend) this.file(peer, mine, conv);
      },
      () => undefined,
    );
  }

  /** Records `peer` as a pair: both sides of an authenticated conversation do (specs/messaging.md §9.1). */
  private pair(peer: string): void {
    this.pairs.delete(peer); // re-inserted last
    this.pairs.set(peer, parseAddress(peer));
    if (this.pairs.size > MAX_MAILBOX_PAIRS) this.pairs.delete(this.pairs.keys().next().value!);
  }

  /**
   * The identity keys whose per-contact inboxes a collection reads (specs/messaging.md §9.5): every contact, most
   * recently added first, and apart from them the pairs that are not contacts, most recent first (at most
   * MAX_MAILBOX_PAIRS), which only take the room contacts leave. A contact book that cannot be read is reported
   * ('endpoint:error', the book's error) and the last list read stands in for it: a failing book never makes the
   * collection stop reading contacts' inboxes.
   */
  private async pairKeys(): Promise<MailboxPairs> {
    let contacts: Contact[];
    try {
      contacts = await this.contacts.list();
      this.lastContacts = contacts;
    } catch (e) {
      const err = asAlliumError(e, 'contact book not read');
      this.emit('endpoint:error', err);
      contacts = this.lastContacts;
    }
    const known = new Set(contacts.map((c) => c.address));
    const others = [...this.pairs].reverse().filter(([a]) => !known.has(a));
    return {
      contacts: [...contacts].sort((a, b) => b.added - a.added).map((c) => c.key),
      others: others.slice(0, MAX_MAILBOX_PAIRS).map(([, k]) => k),
    };
  }

  /**
   * Files `p` as the conversation with `peer`; `conv`, once known, is unfiled when it closes. At maxConversations
   * the entry filed longest ago makes room (its conversation stays open; a send to that peer builds a new one).
   */
  private file(peer: string, p: Promise<Conversation>, conv?: Conversation): void {
    this.conversations.delete(peer); // re-inserted last
    if (this.conversations.size >= this.limits.maxConversations) this.conversations.delete(this.conversations.keys().next().value!);
    this.conversations.set(peer, p);
    conv?.onClosed(() => {
      if (this.conversations.get(peer) === p) this.conversations.delete(peer);
    });
  }

  // ------------------------------------------------------------------ sending (the initiator side)

  /** Meets the endpoint at `address` (rendezvous.ts) as `as`. */
  private rendezvous(address: string, signal: AbortSignal, as: Identity, clientAuth: ClientAuthKey | undefined): Promise<Meeting> {
    // The rendezvous circuit built ahead serves our identity's sends, never connect()'s throwaway identities.
    const rendezvousAhead = as === this.identity ? this.rendezvousAhead : undefined;
    return meetEndpoint(this.client, this.lookups, address, { signal, as, clientAuth, rendezvousAhead });
  }

  /** The conversation send() uses with `key`: the one on file if it can send, else a new one (filed). */
  private conversationWith(key: string, signal: AbortSignal, clientAuth: ClientAuthKey | undefined): Promise<Conversation> {
    const have = this.conversations.get(key);
    if (have) {
      return have.then(
        (c) => {
          if (c.canSend) return c;
          // Closed, or (never filed here, but checked all the same) a session that cannot encrypt: build our own.
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
        () => {
          if (this.conversations.get(key) === have) this.conversations.delete(key);
          return this.conversationWith(key, signal, clientAuth);
        },
      );
    }
    const p: Promise<Conversation> = (async () => {
      const { circuit, session } = await this.rendezvous(key, signal, this.identity, clientAuth);
      if (this.closed) {
        circuit.close();
        throw new AbortedError('messenger closed');
      }
      // The conversation takes our first message before CONNECTED: it goes right after BEGIN (optimistic data,
      // specs/streams.md §2.8). A refusal fails what was written with the refusal's error (conversation.ts); no
      // answer in time, or `signal` while we wait, closes the conversation.
      const { stream, connected } = openStreamEarly(circuit, MESSAGE_STREAM, 1, { signal });
      const conv = this.conversation(key, circuit, stream, session);
      connected.catch((e: unknown) => conv.close(asAlliumError(e, 'message stream not opened')));
      conv.onClosed(() => {
        if (this.conversations.get(key) === p) this.conversations.delete(key);
      });
      return conv;
    })();
    this.file(key, p);
    p.catch(() => {
      if (this.conversations.get(key) === p) this.conversations.delete(key);
    });
    return p;
  }

  /**
   * Sends a message to an address. When the endpoint is listening: over an end-to-end session (double ratchet,
   * padded, in order), status 'delivered' once the recipient's Messenger acknowledges that it received and emitted
   * the message. A conversation lost before the acknowledgement (circuit or stream closed, or `ackTimeoutMs` without
   * one) is rebuilt once with a new rendezvous and the message sent again under the same id; the recipient drops
   * copies. When the endpoint is not listening (no descriptor, or the rendezvous fails), or the rebuilt conversation
   * is lost too, the message is sealed to the recipient and left in its mailbox, status 'stored-offline' (unless
   * `offline: 'never'`). Throws ERR_ADDRESS_* (bad address), ERR_CLIENT_AUTH (the endpoint requires a client key
   * we lack), ERR_UNREACHABLE, ERR_LINK_CLOSED (no acknowledgement, `offline: 'never'`), ERR_TIMEOUT, ERR_ABORTED,
   * ERR_LIMIT (too large: MAX_LIVE_MESSAGE_BYTES live, MAX_MAILBOX_MESSAGE_BYTES offline), ERR_PREKEYS_UNAVAILABLE,
   * and, offline, the contact book's errors (a book that cannot be read: never taken for one without the recipient,
   * specs/messaging.md §9.6). After ERR_TIMEOUT or ERR_ABORTED the message may still arrive (once).
   */
  send(address: string, data: Uint8Array, options: SendOptions = {}): Promise<SendReceipt> {
    if (this.mixMode) {
      return this.sendMixed(address, data, options).then((r) => r ?? this.devices.send(address, data, options, 'data', crypto().random(MESSAGE_ID_LEN)));
    }
    // To every device of a person whose list we hold, and a copy to our sibling devices (specs/messaging.md §14.5).
    return this.devices.send(address, data, options, 'data', crypto().random(MESSAGE_ID_LEN));
  }

  /** send(), for application data, an attachment descriptor or a group envelope (`content`), under the message id `id`. */
  private async deliver(address: string, data: Uint8Array, options: SendOptions, content: FrameContent, id: Uint8Array): Promise<SendReceipt> {
    const scope = this.shutdown.scope(options.signal);
    const dl = deadline(scope.signal, options.timeoutMs, 'send');
    const signal = dl.signal ?? scope.signal;
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      throwIfAborted(signal);
      const identityKey = parseAddress(address);
      const to = formatAddress(identityKey);
      const mode = options.offline ?? 'auto';
      // One id (`id`) for every copy of this message: each live attempt and the offline one.
      const knownOffline = mode === 'auto' && (this.offlineUntil.get(to) ?? 0) > Date.now() && !this.conversations.has(to);
      if (mode !== 'only' && !knownOffline) {
        try {
          const seq = await this.sendLive(to, id, data, content, signal, options.clientAuth ?? this.options.clientAuth);
          const receipt = { status: 'delivered' as const, to, seq, id: toHex(id) };
          this.offlineUntil.delete(to);
          this.pair(to);
          this.emit('message:delivered', receipt);
          return receipt;
        } catch (e) {
          if (mode === 'never' || !fallsBackToMailbox(e)) throw e;
          const now = Date.now();
          if (this.offlineUntil.size >= MAX_OFFLINE_PEERS) for (const [k, t] of this.offlineUntil) if (t <= now) this.offlineUntil.delete(k);
          this.offlineUntil.set(to, now + OFFLINE_RECHECK_MS);
        }
      }
      // A book that cannot be read fails the send: taking a contact for a stranger would write to its first-contact
      // inbox, as version 2 when its record is withheld (specs/messaging.md §9.6).
      const contact = await this.contacts.byAddress(to, { signal });
      const deposit: Parameters<MailboxSender['deposit']>[2] = {
        id,
        signal,
        attachment: content === 'attachment',
        group: content === 'group',
        device: content === 'device',
        // Per-contact inbox for a contact only: the contact book is kept on both sides, pairs only in memory (§9.1).
        pairwise: contact !== undefined,
        // Its card said it publishes prekeys: sealed to them, or not sent (§9.6, §11.1).
        publishesPrekeys: contact?.prekeys === true,
      };
      // A record found for a contact not yet marked marks it (§11.3): never evicted, unlike the memory of publishers.
      if (contact && !contact.prekeys) deposit.onPrekeyRecord = (o) => this.contacts.markPrekeys(identityKey, o);
      const ttl = options.ttlMs ?? this.options.offline?.ttlMs;
      if (ttl !== undefined) deposit.ttlMs = ttl;
      const r = await this.outbox.deposit(identityKey, data, deposit);
      const receipt = { status: 'stored-offline' as const, to, id: r.id, expires: r.expires };
      this.emit('message:stored-offline', receipt);
      return receipt;
    } catch (e) {
      const error = asAlliumError(dl.wrap(e), 'send failed');
      this.emit('message:failed', { to: address, error });
      throw error;
    } finally {
      dl.clear();
      scope.dispose();
    }
  }

  /**
   * Hands a message to the conversation with `to` (built if need be) and resolves with its number there once the
   * peer acknowledges it. A conversation lost first is replaced (a new rendezvous) and the message sent again, up to
   * LIVE_ATTEMPTS conversations in all; then the last loss is thrown (ERR_LINK_CLOSED or ERR_TIMEOUT), as are the
   * errors of building a conversation.
   */
  private async sendLive(
    to: string,
    id: Uint8Array,
    data: Uint8Array,
    content: FrameContent,
    signal: AbortSignal,
    clientAuth: ClientAuthKey | undefined,
  ): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const conv = await this.conversationWith(to, signal, clientAuth);
      try {
        return await conv.send(id, data, { signal, content });
      } catch (e) {
        if (this.closed) throw new AbortedError('messenger closed');
        const lost = isAlliumError(e) && (e.code === 'ERR_LINK_CLOSED' || e.code === 'ERR_TIMEOUT');
        if (!lost || attempt >= LIVE_ATTEMPTS) throw e;
      }
    }
  }

  // ------------------------------------------------------------------ attachments (specs/messaging.md §12)

  /**
   * Sends a file: stores it in the content store with random keys (progress as 'attachment:progress' events and
   * `onProgress`), then sends its descriptor — where the blocks are, the key, size, media type and name — as a
   * message, live or to the mailbox as send() does. The recipient's IncomingMessage has `attachment`; it fetches the
   * file with download(). Throws LimitError MAX_ATTACHMENT_BYTES (larger than `maxAttachmentBytes`: nothing is
   * stored), the content store's errors (ERR_UNREACHABLE, ERR_QUOTA), and send()'s. `timeoutMs` covers both parts.
   */
  async sendFile(address: string, file: FileInput, options: SendFileOptions = {}): Promise<FileReceipt> {
    const scope = this.shutdown.scope(options.signal);
    const dl = deadline(scope.signal, options.timeoutMs, 'sendFile');
    const signal = dl.signal ?? scope.signal;
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      const to = formatAddress(parseAddress(address));
      const id = crypto().random(MESSAGE_ID_LEN);
      const idHex = toHex(id);
      let attachment: Attachment;
      try {
        attachment = await uploadAttachment(
          this.files,
          file,
          this.maxAttachmentBytes,
          (done, total) => this.progress({ id: idHex, direction: 'upload', done, total }, options.onProgress),
          { signal },
        );
      } catch (e) {
        const error = asAlliumError(dl.wrap(e), 'attachment upload failed');
        this.emit('message:failed', { to, error });
        throw error;
      }
      const sendOptions: SendOptions = { signal };
      if (options.offline !== undefined) sendOptions.offline = options.offline;
      if (options.ttlMs !== undefined) sendOptions.ttlMs = options.ttlMs;
      if (options.clientAuth !== undefined) sendOptions.clientAuth = options.clientAuth;
      const receipt = await this.devices.send(to, encodeAttachment(attachment), sendOptions, 'attachment', id);
      return { ...receipt, attachment };
    } catch (e) {
      throw asAlliumError(dl.wrap(e), 'sendFile failed');
    } finally {
      dl.clear();
      scope.dispose();
    }
  }

  /**
   * A download of a received attachment (nothing is fetched until read() or bytes()). Reading it again after an
   * abort or a failure resumes it: no block already fetched is fetched again. Progress: the download's
   * 'download:progress' events, this messenger's 'attachment:progress', and `onProgress`.
   */
  download(message: Pick<IncomingMessage, 'attachment' | 'id'>, options: { onProgress?: (p: AttachmentProgress) => void } = {}): AttachmentDownload {
    if (!message.attachment) throw new AlliumError('ERR_CONFIG', 'this message carries no attachment');
    return new AttachmentDownload(this.files, message.attachment, message.id ?? '', this.maxAttachmentBytes, (p) => this.progress(p, options.onProgress));
  }

  private progress(p: AttachmentProgress, onProgress: ((p: AttachmentProgress) => void) | undefined): void {
    this.emit('attachment:progress', p);
    onProgress?.(p);
  }

  // ------------------------------------------------------------------ groups (specs/messaging.md §13)

  /**
   * Creates a group of us (its admin) and `members` (addresses): each gets the signed roster and our sender key over
   * its pairwise session (live, else its mailbox), and answers with its own. With `delivery: 'inbox'` (version 2,
   * specs/messaging.md §13.9) each gets the roster and the group's epoch instead, and every message is one deposit in
   * the group inbox, which members read while listening (`groupInbox.pollMs`) or on checkGroups(). Resolves once every member was reached
   * or failed. Events: 'group:message', 'group:member-added', 'group:member-removed', 'group:key-updated'. Throws
   * ERR_ADDRESS_* (a bad address), LimitError MAX_GROUP_MEMBERS or MAX_GROUPS, ERR_ABORTED.
   */
  async createGroup(name: string, members: readonly string[], options: CreateGroupOptions = {}): Promise<Group> {
    if (this.closed) throw new AbortedError('messenger closed');
    const scope = this.shutdown.scope(options.signal);
    try {
      await this.devices.load({ signal: scope.signal });
      return await this.groupTable.create(name, members, { signal: scope.signal, ...(options.delivery ? { delivery: options.delivery } : {}) });
    } finally {
      scope.dispose();
    }
  }

  /**
   * Reads the group inbox of every version 2 group we are in now (listening does it on start and every
   * `groupInbox.pollMs`): each message arrives once as 'group:message'. Resolves with the number emitted. Throws
   * ERR_ABORTED; a group whose pass fails is reported ('endpoint:error') and the others are read.
   */
  async checkGroups(options: AbortOptions = {}): Promise<number> {
    if (this.closed) throw new AbortedError('messenger closed');
    const scope = this.shutdown.scope(options.signal);
    try {
      await this.devices.load({ signal: scope.signal });
      return await this.groupTable.collect({ signal: scope.signal });
    } finally {
      scope.dispose();
    }
  }

  /**
   * Reads the groups kept in `groupStorage` (once; receiving or creating a group does it first) and resolves with
   * every group. Throws ERR_MESSAGE_AUTH (state sealed under another identity, or changed), ERR_CBOR_*, ERR_SCHEMA,
   * and what the storage throws.
   */
  async loadGroups(options: AbortOptions = {}): Promise<Group[]> {
    return this.groupTable.load(options);
  }

  /**
   * Reads the device state kept in `deviceStorage` (once; linking, sending and receiving do it first): our person
   * and the device lists we hold (specs/messaging.md §14.9). Resolves with our person's devices. Throws as
   * loadGroups() does, and ERR_SIGNATURE for a stored list that does not verify.
   */
  async loadDevices(options: AbortOptions = {}): Promise<DeviceListInfo | undefined> {
    await this.devices.load(options);
    return this.devices.list();
  }

  /** The group with id `id` (hex), if we are (or were) in it (after a restart: once loadGroups() resolved). */
  group(id: string): Group | undefined {
    return this.groupTable.get(id);
  }

  /** Every group we are (or were) in. */
  get groups(): Group[] {
    return this.groupTable.list();
  }

  // ------------------------------------------------------------------ contacts (specs/messaging.md §11)

  /**
   * Our address card as text ("allium:contact/…"), with the name we suggest (default none). With prekey storage it
   * says we publish prekeys (a version 2 card, §11.1), so contacts never write us offline items without them.
   */
  card(name = ''): string {
    return formatCard(this.identity.publicKey, name, this.cardFlags());
  }

  /** Our address card as bytes: the payload of a QR code in byte mode. */
  cardBytes(name = ''): Uint8Array {
    return encodeCard(this.identity.publicKey, name, this.cardFlags());
  }

  /** PREKEYS with prekey storage; the mix address once message mode runs (a version 3 card, specs/mix.md §8.1). */
  private cardFlags(): { prekeys: boolean; mix?: CardMixAddress } {
    const mix = this.mixMode?.address;
    return { prekeys: this.prekeys !== null, ...(mix ? { mix } : {}) };
  }

  /**
   * The safety number of this identity and a peer's (a card, an address, or an identity key): 60 digits in groups
   * of 5, the same on both sides. Compare it over a channel you trust, then contacts.markVerified().
   */
  safetyNumber(peer: CardInput): string {
    let key: Uint8Array;
    if (typeof peer === 'string') key = parseCard(peer).key;
    else if (peer instanceof Uint8Array)
      key = peer.length === 32 ? peer : decodeCard(peer).key; // a card is 38 bytes or more
    else key = peer.key;
    if (!crypto().edIsValidPoint(key)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
    return safetyNumber(this.identity.publicKey, key);
  }

  /**
   * Opens a stream to a hidden TCP service `port` at `address`. The service does not learn who connects: each
   * connection uses a fresh throwaway identity, not this messenger's. Throws as send() does (without the mailbox),
   * and ERR_EXIT_POLICY when the endpoint serves no such port.
   */
  async connect(address: string, port: number, options: ConnectOptions = {}): Promise<MuxStream> {
    const scope = this.shutdown.scope(options.signal);
    const dl = deadline(scope.signal, options.timeoutMs, 'connect');
    const signal = dl.signal ?? scope.signal;
    try {
      if (this.closed) throw new AbortedError('messenger closed');
      const { circuit } = await this.rendezvous(address, signal, createIdentity(), options.clientAuth ?? this.options.clientAuth);
      try {
        return await openStream(circuit, SERVICE_STREAM, port, { signal });
      } catch (e) {
        circuit.close();
        throw e;
      }
    } catch (e) {
      throw dl.wrap(e);
    } finally {
      dl.clear();
      scope.dispose();
    }
  }

  /**
   * Stops listening and closes every conversation: aborts every send, connect, rendezvous and mailbox pass in flight
   * (ERR_ABORTED), ends every listen() call, and stops the messenger's timers. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shutdown.abort();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.groupPollTimer) clearInterval(this.groupPollTimer);
    this.groupPollTimer = null;
    this.mixMode?.close();
    this.endpoint.close();
    this.service.close();
    for (const p of this.conversations.values()) void p.then((c) => c.close(new AbortedError('messenger closed'))).catch(() => undefined);
    this.conversations.clear();
    for (const c of this.live) c.close(new AbortedError('messenger closed'));
    this.live.clear();
    this.lookups.close();
    this.rendezvousAhead.close();
    this.files.close();
    this.groupContent.close();
    this.outbox.close();
    this.delivery.close();
    this.devices.close();
  }
}

/**
 * Errors after which send() leaves the message in the mailbox: the endpoint is not there, did not answer, or the
 * conversation was lost (twice) before it acknowledged the message.
 */
function fallsBackToMailbox(e: unknown): boolean {
  return (
    isAlliumError(e) &&
    (e.code === 'ERR_UNREACHABLE' ||
      e.code === 'ERR_TIMEOUT' ||
      e.code === 'ERR_HANDSHAKE_AUTH' ||
      e.code === 'ERR_LINK_CLOSED' ||
      e.code === 'ERR_STREAM_FAILED')
  );
}
