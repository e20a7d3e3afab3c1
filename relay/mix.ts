/**
 * A relay's mix (specs/mix.md §4): opens mix packets with the relay's onion keys, refuses replays (one Bloom filter
 * per key, protocol/replay-filter.ts), holds each packet for the delay its sender chose (relay/mix-queue.ts) and
 * then forwards it to the next relay, files it in an inbox, or forgets it (drop cover). Answers a client's poll of
 * its inbox with exactly MIX_POLL_BATCH cells, mail or dummies alike.
 *
 * Transport-agnostic: `L` is whatever identifies the link a packet came in on (net/link.ts Link in the relay, a
 * simulated peer in the shape audit); the node wires `forward` and `sendMail` to its links. Every table is bounded
 * (limits.md §Message mode) and every refusal is counted through `onDrop`; none is reported on the wire (a mix
 * packet has no way back, and its bytes are the sender's, not the link peer's).
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { toHex } from '../protocol/bytes.js';
import { isAlliumError } from '../protocol/errors.js';
import { decodeMixPollBody, mixMailBody } from '../protocol/mix-cells.js';
import { MIX_PAYLOAD_LEN, mixInbox, processMixPacket } from '../protocol/mix-packet.js';
import type { ReplayGuard } from '../protocol/onion.js';
import { DelayQueue } from './mix-queue.js';
import { TokenBucket } from './token-bucket.js';

/** Packets held in the delay queue at most (specs/limits.md MAX_MIX_QUEUE). */
export const MAX_MIX_QUEUE = 20_000;
/** Packets held that arrived on one link (MAX_MIX_QUEUE_PER_LINK). */
export const MAX_MIX_QUEUE_PER_LINK = 2_000;
/** Packets held that arrived on the client links of one address block (/24, /48) together (MAX_MIX_QUEUE_PER_BLOCK). */
export const MAX_MIX_QUEUE_PER_BLOCK = 5_000;
/** Inboxes a gateway holds (MAX_MIX_INBOXES). */
export const MAX_MIX_INBOXES = 10_000;
/** Payloads held per inbox (MAX_MIX_INBOX_PACKETS); the oldest goes first. */
export const MAX_MIX_INBOX_PACKETS = 64;
/** Payloads held in all inboxes (MAX_MIX_INBOX_TOTAL). */
export const MAX_MIX_INBOX_TOTAL = 20_000;
/** Life of a held payload (MIX_INBOX_TTL). */
export const MIX_INBOX_TTL_MS = 3_600_000;
/** MIX_MAIL cells in answer to every poll (MIX_POLL_BATCH). */
export const MIX_POLL_BATCH = 2;
/** Polls answered per link and second, and the burst (MIX_POLLS_PER_SECOND_PER_LINK). */
export const MIX_POLLS_PER_SECOND_PER_LINK = 5;
export const MIX_POLL_BURST = 10;

export type MixDropReason =
  | 'mix_mac'
  | 'mix_replay'
  | 'mix_slot'
  | 'mix_malformed'
  | 'mix_queue_full'
  | 'mix_queue_link'
  | 'mix_queue_block'
  | 'mix_forward_failed'
  | 'mix_inboxes_full'
  | 'mix_inbox_total'
  | 'mix_inbox_overflow'
  | 'mix_inbox_expired'
  | 'mix_poll_rate';

export interface MixLimits {
  maxQueue?: number;
  maxQueuePerLink?: number;
  maxQueuePerBlock?: number;
  maxInboxes?: number;
  maxInboxPackets?: number;
  maxInboxTotal?: number;
  inboxTtlMs?: number;
  pollsPerSecond?: number;
  pollBurst?: number;
}

export interface MixNodeOptions<L> extends MixLimits {
  readonly identity: Uint8Array;
  /** Usable mix keys (the relay's onion keys), current first. */
  readonly keys: () => readonly KeyPair[];
  /** Replay tags per key: a filter of its own, apart from the setup onions' (specs/mix.md §2.3). */
  readonly replay: ReplayGuard;
  /** Sends a MIX cell to the relay `next`, opening a link if need be; a rejection drops the packet. */
  readonly forward: (next: Uint8Array, packet: Uint8Array) => void | Promise<void>;
  /** Sends one MIX_MAIL cell on the link a poll came from. */
  readonly sendMail: (link: L, body: Uint8Array) => void;
  readonly onDrop?: (reason: MixDropReason) => void;
  /** The address block (/24, /48) a client link comes from; null for relay links and links without an address. */
  readonly blockOf?: (link: L) => string | null;
  readonly now?: () => number;
  /** Dummy payloads; default the CSPRNG. */
  readonly random?: (n: number) => Uint8Array;
}

type Held<L> = { readonly from: L; readonly block: string | null } & (
  | { readonly kind: 'forward'; readonly next: Uint8Array; readonly packet: Uint8Array }
  | { readonly kind: 'deliver'; readonly inbox: string; readonly payload: Uint8Array }
  | { readonly kind: 'drop' }
);

export interface MixStats {
  received: number;
  forwarded: number;
  delivered: number;
  dropCover: number;
  polls: number;
  mailSent: number;
  dropped: number;
}

export class MixNode<L> {
  readonly stats: MixStats = { received: 0, forwarded: 0, delivered: 0, dropCover: 0, polls: 0, mailSent: 0, dropped: 0 };
  private readonly queue: DelayQueue<Held<L>>;
  private readonly perLink = new Map<L, number>();
  /** Packets held per address block of client links: many links from one block share one bound. */
  private readonly perBlock = new Map<string, number>();
  private readonly pollRate = new Map<L, TokenBucket>();
  private readonly inboxes = new Map<string, { payload: Uint8Array; at: number }[]>();
  private inboxTotal = 0;
  private readonly now: () => number;
  private readonly random: (n: number) => Uint8Array;
  private readonly l: Required<MixLimits>;

  constructor(private readonly o: MixNodeOptions<L>) {
    this.now = o.now ?? Date.now;
    this.random = o.random ?? ((n) => crypto().random(n));
    this.l = {
      maxQueue: o.maxQueue ?? MAX_MIX_QUEUE,
      maxQueuePerLink: o.maxQueuePerLink ?? MAX_MIX_QUEUE_PER_LINK,
      maxQueuePerBlock: o.maxQueuePerBlock ?? MAX_MIX_QUEUE_PER_BLOCK,
      maxInboxes: o.maxInboxes ?? MAX_MIX_INBOXES,
      maxInboxPackets: o.maxInboxPackets ?? MAX_MIX_INBOX_PACKETS,
      maxInboxTotal: o.maxInboxTotal ?? MAX_MIX_INBOX_TOTAL,
      inboxTtlMs: o.inboxTtlMs ?? MIX_INBOX_TTL_MS,
      pollsPerSecond: o.pollsPerSecond ?? MIX_POLLS_PER_SECOND_PER_LINK,
      pollBurst: o.pollBurst ?? MIX_POLL_BURST,
    };
    this.queue = new DelayQueue(this.now, (h) => this.release(h));
  }

  /** Packets in the delay queue. */
  get queued(): number {
    return this.queue.size;
  }

  /** Packets held in the delay queue that arrived on `link`. */
  queuedFrom(link: L): number {
    return this.perLink.get(link) ?? 0;
  }

  get inboxPackets(): number {
    return this.inboxTotal;
  }

  private drop(reason: MixDropReason): void {
    this.stats.dropped++;
    this.o.onDrop?.(reason);
  }

  /** A MIX cell's body from `from` (specs/mix.md §2.3, §4.2). */
  onPacket(from: L, packet: Uint8Array): void {
    this.stats.received++;
    const held = this.perLink.get(from) ?? 0;
    // Bounds before the X25519: a flood costs the relay a map lookup per cell once its share is full.
    if (this.queue.size >= this.l.maxQueue) return this.drop('mix_queue_full');
    if (held >= this.l.maxQueuePerLink) return this.drop('mix_queue_link');
    const block = this.o.blockOf?.(from) ?? null;
    const inBlock = block === null ? 0 : (this.perBlock.get(block) ?? 0);
    if (block !== null && inBlock >= this.l.maxQueuePerBlock) return this.drop('mix_queue_block');
    let r;
    try {
      r = processMixPacket(packet, { identity: this.o.identity, keys: this.o.keys(), replay: this.o.replay });
    } catch (e) {
      if (!isAlliumError(e)) throw e;
      return this.drop(
        e.code === 'ERR_MIX_MAC' ? 'mix_mac' : e.code === 'ERR_MIX_REPLAY' ? 'mix_replay' : e.code === 'ERR_MIX_SLOT' ? 'mix_slot' : 'mix_malformed',
      );
    }
    this.perLink.set(from, held + 1);
    if (block !== null) this.perBlock.set(block, inBlock + 1);
    if (r.kind === 'forward') this.queue.push(r.delayMs, { kind: 'forward', from, block, next: r.next, packet: r.packet });
    else if (r.kind === 'deliver') this.queue.push(r.delayMs, { kind: 'deliver', from, block, inbox: toHex(r.inbox), payload: r.payload });
    else this.queue.push(r.delayMs, { kind: 'drop', from, block });
  }

  private release(h: Held<L>): void {
    const n = this.perLink.get(h.from);
    if (n !== undefined) {
      if (n <= 1) this.perLink.delete(h.from);
      else this.perLink.set(h.from, n - 1);
    }
    if (h.block !== null) {
      // Counted until the packet leaves, whether or not its link is still open: a block cannot reset its share by
      // reconnecting.
      const b = this.perBlock.get(h.block) ?? 0;
      if (b <= 1) this.perBlock.delete(h.block);
      else this.perBlock.set(h.block, b - 1);
    }
    if (h.kind === 'drop') {
      this.stats.dropCover++;
      return;
    }
    if (h.kind === 'deliver') return this.deposit(h.inbox, h.payload);
    this.stats.forwarded++;
    try {
      const p = this.o.forward(h.next, h.packet);
      if (p) p.catch(() => this.drop('mix_forward_failed'));
    } catch {
      this.drop('mix_forward_failed');
    }
  }

  private deposit(inbox: string, payload: Uint8Array): void {
    let box = this.inboxes.get(inbox);
    if (!box) {
      if (this.inboxes.size >= this.l.maxInboxes) return this.drop('mix_inboxes_full');
      this.inboxes.set(inbox, (box = []));
    }
    if (box.length >= this.l.maxInboxPackets) {
      box.shift();
      this.inboxTotal--;
      this.drop('mix_inbox_overflow');
    } else if (this.inboxTotal >= this.l.maxInboxTotal) {
      if (box.length === 0) this.inboxes.delete(inbox);
      return this.drop('mix_inbox_total');
    }
    box.push({ payload, at: this.now() });
    this.inboxTotal++;
    this.stats.delivered++;
  }

  /** A MIX_POLL cell's body from a client link: exactly MIX_POLL_BATCH MIX_MAIL cells back (specs/mix.md §4.3). */
  onPoll(from: L, body: Uint8Array): void {
    let bucket = this.pollRate.get(from);
    if (!bucket) this.pollRate.set(from, (bucket = new TokenBucket(this.l.pollsPerSecond, this.l.pollBurst, this.now)));
    if (!bucket.tryTake(1)) return this.drop('mix_poll_rate');
    let secret: Uint8Array;
    try {
      secret = decodeMixPollBody(body);
    } catch {
      return this.drop('mix_malformed');
    }
    this.stats.polls++;
    const id = toHex(mixInbox(secret));
    const box = this.inboxes.get(id);
    for (let i = 0; i < MIX_POLL_BATCH; i++) {
      const item = box?.shift();
      if (item) {
        this.inboxTotal--;
        this.stats.mailSent++;
      }
      this.o.sendMail(from, mixMailBody(item !== undefined, item ? item.payload : this.random(MIX_PAYLOAD_LEN)));
    }
    if (box && box.length === 0) this.inboxes.delete(id);
  }

  /** Forgets what is counted against a closed link; its packets still leave on time (specs/mix.md §4.2). */
  onLinkClosed(link: L): void {
    this.perLink.delete(link);
    this.pollRate.delete(link);
  }

  /** Drops payloads older than MIX_INBOX_TTL (the relay's housekeeping calls it). */
  sweep(): void {
    const cutoff = this.now() - this.l.inboxTtlMs;
    for (const [id, box] of this.inboxes) {
      while (box.length > 0 && box[0]!.at <= cutoff) {
        box.shift();
        this.inboxTotal--;
        this.drop('mix_inbox_expired');
      }
      if (box.length === 0) this.inboxes.delete(id);
    }
  }

  stop(): void {
    this.queue.stop();
    this.inboxes.clear();
    this.inboxTotal = 0;
    this.perLink.clear();
    this.perBlock.clear();
    this.pollRate.clear();
  }
}
