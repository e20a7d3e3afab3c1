/**
 * A Messenger's message mode (specs/mix.md §8): one MixClient over the link the AlliumClient keeps to its mix gateway
 * (a guard that is a mix relay, mix.md §8.1), with the mix address derived from the identity, and the messages boxed
 * under the pair's key (protocol/mix-message.ts) so that the recipient knows who wrote and no one else can tell.
 *
 * The link is the client's: when it closes, the next cell the MixClient would send reopens it (to the same gateway;
 * a gateway that changed is reported as ERR_MIX_UNREACHABLE, since the published card names the old one). Boxes that
 * do not open are counted (`rejected`) and reported, never delivered.
 */
import type { Identity } from '../../protocol/address.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { CellCommand } from '../../protocol/cell.js';
import type { CardMixAddress } from '../../protocol/contact-card.js';
import { openMixMessage, sealMixMessage, mixSecretsOf } from '../../protocol/mix-message.js';
import type { AbortOptions } from '../../net/abort.js';
import type { Link } from '../../net/link.js';
import { crypto } from '../../crypto/index.js';
import { MIX_DELAY_MEAN_MS, MIX_LAYERS, MIX_POLL_RATE, MIX_SEND_RATE, MixClient, type MixClientInit, type MixClientStats } from './mix-mode.js';
import type { MessengerHost, MessengerMixSettings } from './types.js';

export interface MessengerMixHandlers {
  /** A message that opened: its sender's identity key, id and body. */
  message(from: Uint8Array, id: Uint8Array, body: Uint8Array): void;
  error(e: AlliumError): void;
}

export class MessengerMix {
  private mix: MixClient | null = null;
  private link: Link | null = null;
  private gateway: Uint8Array | null = null;
  private starting: Promise<void> | null = null;
  private reopening: Promise<void> | null = null;
  private closed = false;
  /** Message-mode messages that did not open (forged, damaged, not for us): dropped. */
  rejected = 0;

  constructor(
    private readonly host: MessengerHost,
    private readonly identity: Identity,
    private readonly settings: MessengerMixSettings,
    private readonly on: MessengerMixHandlers,
  ) {}

  /** The mean time from send() to the recipient's poll collecting it (mix.md §8.3). */
  get expectedLatencyMs(): number {
    const s = this.settings;
    return Math.round(
      (s.cover === false ? 0 : 1000 / (s.sendRate ?? MIX_SEND_RATE)) +
        (MIX_LAYERS + 2) * (s.delayMeanMs ?? MIX_DELAY_MEAN_MS) +
        1000 / (s.pollRate ?? MIX_POLL_RATE),
    );
  }

  /** Our mix address once running (mix.md §8.1). */
  get address(): CardMixAddress | undefined {
    return this.mix?.address;
  }

  get running(): boolean {
    return this.mix !== null && !this.closed;
  }

  get stats(): Readonly<MixClientStats> | undefined {
    return this.mix?.stats;
  }

  /** Opens the gateway link and starts the streams (idempotent). Throws ERR_MIX_UNREACHABLE, the dial's errors. */
  start(options: AbortOptions = {}): Promise<void> {
    this.starting ??= (async () => {
      if (!this.host.mixGateway || !this.host.mixRelays) throw new AlliumError('ERR_MIX_UNREACHABLE', 'this host offers no mix gateway');
      const g = await this.host.mixGateway(options);
      if (this.closed) return;
      this.gateway = g.identity;
      this.attach(g.link);
      const { inboxSecret, keys } = mixSecretsOf(this.identity);
      const init: MixClientInit = { gateway: g.identity, inboxSecret, keys, ...this.settings };
      const relays = this.host.mixRelays.bind(this.host);
      this.mix = new MixClient({ send: (kind, body) => this.sendCell(kind, body), mixes: () => relays() }, init);
      this.mix.on('mix:message', (data) => this.onData(data));
      this.mix.start();
    })();
    this.starting.catch(() => (this.starting = null));
    return this.starting;
  }

  /**
   * Boxes `body` for `to` (its identity key and mix address) and queues it for the payload stream. Throws
   * ERR_MIX_UNREACHABLE (not running), LimitError MAX_MIX_MESSENGER_BYTES, ERR_LIMIT (MAX_MIX_SEND_QUEUE waiting).
   */
  send(toKey: Uint8Array, to: CardMixAddress, id: Uint8Array, body: Uint8Array): void {
    if (!this.mix || this.closed) throw new AlliumError('ERR_MIX_UNREACHABLE', 'message mode is not running');
    this.mix.send(to, sealMixMessage(this.identity, toKey, id, body));
  }

  close(): void {
    this.closed = true;
    this.mix?.stop();
  }

  private onData(data: Uint8Array): void {
    let m: ReturnType<typeof openMixMessage>;
    try {
      m = openMixMessage(this.identity, data);
    } catch (e) {
      this.rejected++;
      this.on.error(isAlliumError(e) ? e : new AlliumError('ERR_MESSAGE_AUTH', 'message-mode message refused', { cause: e }));
      return;
    }
    this.on.message(m.from, m.id, m.body);
  }

  private attach(link: Link): void {
    if (this.link === link) return;
    this.link = link;
    link.on('link:cell', (cell) => {
      if (cell.circId === 0 && cell.command === CellCommand.MIX_MAIL && this.link === link) this.mix?.onMail(cell.body);
    });
  }

  /** Whether the cell was handed to the link: false puts a real message back at the head of the queue (mix.md §5.1). */
  private sendCell(kind: 'packet' | 'poll', body: Uint8Array): boolean {
    const link = this.link;
    if (link?.isOpen) {
      try {
        link.sendCell(0, kind === 'packet' ? CellCommand.MIX : CellCommand.MIX_POLL, body);
        return true;
      } catch {
        /* closed under us: reopen below */
      }
    }
    // Nothing leaves in this slot (as when the gateway is out of the consensus); the link comes back for the next.
    if (this.closed || this.reopening || !this.host.mixGateway) return false;
    this.reopening = this.host
      .mixGateway()
      .then((g) => {
        if (this.closed) return;
        if (!this.gateway || !crypto().equal(g.identity, this.gateway))
          throw new AlliumError('ERR_MIX_UNREACHABLE', 'the mix gateway changed: the card names the old one');
        this.attach(g.link);
      })
      .catch((e: unknown) => this.on.error(isAlliumError(e) ? e : new AlliumError('ERR_MIX_UNREACHABLE', 'the mix gateway cannot be reached', { cause: e })))
      .finally(() => (this.reopening = null));
    return false;
  }
}
