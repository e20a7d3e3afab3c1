/**
 * The content service of a store relay (specs/content.md §8): STORE and FETCH streams at the last hop of a
 * circuit. The relay never learns who asks (the request came through a circuit) and cannot read what it holds.
 * Kinds: CHK blocks, updatable-key records, endpoint descriptors and mailbox slots (specs/messaging.md §9).
 *
 * Bounded (specs/content.md §8.1): at most MAX_CONTENT_STREAMS_PER_CIRCUIT STORE and FETCH streams open on one
 * circuit, so a FETCH flood cannot make the relay queue an item per stream for a thousand streams a circuit; further
 * ones are refused with END RESOURCE_LIMIT. A STORE reserves its `n` bytes (one buffer, filled as DATA arrives) out
 * of MAX_PENDING_STORE_BYTES for the relay until it ends; a STORE that does not fit is answered STORED `refused`.
 * Mailbox STOREs are also rate-bounded per circuit and per previous-hop link (token buckets, specs/limits.md
 * MAILBOX_STORES_PER_CIRCUIT / MAILBOX_STORES_PER_PEER): beyond them STORED `refused`, before any byte is reserved.
 * A STORE without `f` from a relay link may be a forward, on the one circuit a forwarder shares among all the clients
 * it forwards for: it is charged to the link's bucket only. The buckets hang off the circuit and the link in weak
 * maps, so they go when their owner does.
 *
 * A request naming a holder in `f` is forwarded to it (specs/content.md §8.3, relay/content-forward.ts): a STORE's
 * bytes are collected here under the same reservation, then passed on; the holder's answer comes back on the stream.
 */
import type { Logger } from 'pino';
import { BLOCK_LEN } from '../protocol/chk.js';
import { decodeFetch, decodeStore, encodeFetched, encodeStored, type ContentKind, type ContentStatus } from '../protocol/content-messages.js';
import { AbortedError, isAlliumError } from '../protocol/errors.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { MAX_RECORD_BYTES } from '../protocol/ssk.js';
import { MAX_ENDPOINT_DESCRIPTOR_BYTES } from '../protocol/endpoint-descriptor.js';
import { MAX_MAILBOX_ITEM_BYTES } from '../protocol/mailbox.js';
import { EndReason } from '../protocol/stream-messages.js';
import type { FetchSink } from '../net/content-requests.js';
import type { MuxStream, StreamMux } from '../net/stream-mux.js';
import type { BlockStore } from './block-store.js';
import type { CircuitHop } from './circuits.js';
import type { Link } from '../net/link.js';
import { LinkRole } from '../protocol/link-handshake.js';
import { TokenBucket } from './token-bucket.js';
import type { ContentForwarder, ForwardSlot } from './content-forward.js';
import type { RelayMetrics } from './metrics.js';

const STORE_TIMEOUT_MS = 30_000;
/**
 * The reason a forward's signal aborts with when the client's stream ends: one shared error, as abort() without a
 * reason builds a DOMException (with its stack) for every request forwarded.
 */
const STREAM_ENDED = new AbortedError('the content stream ended');
/** STORE and FETCH streams open at once on one circuit (specs/limits.md); clients use 8 at most. */
export const MAX_CONTENT_STREAMS_PER_CIRCUIT = 16;

/** Bytes of STOREs whose data is still arriving, over all circuits (specs/limits.md). */
export const MAX_PENDING_STORE_BYTES = 64 * 1024 * 1024;

/** Mailbox STOREs one circuit may make: a burst, then a rate per second (specs/limits.md). */
export const MAILBOX_STORES_PER_CIRCUIT = { burst: 64, perSecond: 1 };
/** Mailbox STOREs over all circuits from one previous-hop link (a middle relay, or a client on a one-hop circuit). */
export const MAILBOX_STORES_PER_PEER = { burst: 1024, perSecond: 32 };

export interface ContentServiceOptions {
  /** Default MAX_CONTENT_STREAMS_PER_CIRCUIT. */
  maxStreamsPerCircuit?: number;
  /** Default MAX_PENDING_STORE_BYTES. */
  maxPendingStoreBytes?: number;
  /** Default MAILBOX_STORES_PER_CIRCUIT. */
  mailboxStoresPerCircuit?: { burst: number; perSecond: number };
  /** Default MAILBOX_STORES_PER_PEER. */
  mailboxStoresPerPeer?: { burst: number; perSecond: number };
  /** The clock of the rate bounds (default Date.now). */
  now?: () => number;
  /** Forwards requests that name a holder (content.md §8.3); without it they are answered `unknown`. */
  forwarder?: ContentForwarder;
}
const MAX_ITEM_BYTES: Record<ContentKind, number> = {
  block: BLOCK_LEN,
  record: MAX_RECORD_BYTES,
  endpoint: MAX_ENDPOINT_DESCRIPTOR_BYTES,
  mailbox: MAX_MAILBOX_ITEM_BYTES,
};

export class ContentService {
  /** Content streams open per circuit. */
  private readonly open = new WeakMap<CircuitHop, number>();
  private readonly maxStreamsPerCircuit: number;
  private readonly maxPendingStoreBytes: number;
  private pendingStore = 0;
  private readonly mailboxPerCircuit = new WeakMap<CircuitHop, TokenBucket>();
  private readonly mailboxPerPeer = new WeakMap<Link, TokenBucket>();
  private readonly mailboxLimits: { circuit: { burst: number; perSecond: number }; peer: { burst: number; perSecond: number } };
  private readonly now: () => number;
  private readonly forwarder: ContentForwarder | null;
  /** FETCH requests answered: reads, and head-only checks (other relays' repair probes). For status and the simulator. */
  readonly fetched = { reads: 0, heads: 0 };

  constructor(
    readonly store: BlockStore,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
    private readonly onStored?: (rk: Uint8Array, kind: 'block' | 'record') => void,
    options: ContentServiceOptions = {},
  ) {
    this.maxStreamsPerCircuit = options.maxStreamsPerCircuit ?? MAX_CONTENT_STREAMS_PER_CIRCUIT;
    this.maxPendingStoreBytes = options.maxPendingStoreBytes ?? MAX_PENDING_STORE_BYTES;
    this.mailboxLimits = {
      circuit: options.mailboxStoresPerCircuit ?? MAILBOX_STORES_PER_CIRCUIT,
      peer: options.mailboxStoresPerPeer ?? MAILBOX_STORES_PER_PEER,
    };
    this.now = options.now ?? Date.now;
    this.forwarder = options.forwarder ?? null;
    this.updateGauges();
  }

  /**
   * Takes one mailbox STORE from the circuit's and the previous-hop link's buckets; false when either is empty (then
   * neither is charged). A link with no bucket yet gets a full one. `named`: the STORE names a holder (`f`), so this
   * circuit is a client's.
   */
  private admitMailboxStore(hop: CircuitHop, named: boolean): boolean {
    const bucket = <K extends object>(map: WeakMap<K, TokenBucket>, key: K, l: { burst: number; perSecond: number }): TokenBucket => {
      let b = map.get(key);
      if (!b) map.set(key, (b = new TokenBucket(l.perSecond, l.burst, this.now)));
      return b;
    };
    // Without `f` from a relay link: perhaps a forwarder's shared circuit (content.md §8.3), so the link's bucket only.
    const perCircuit = named || hop.prev.link.peer?.role !== LinkRole.RELAY;
    const circuit = perCircuit ? bucket(this.mailboxPerCircuit, hop, this.mailboxLimits.circuit) : null;
    const peer = bucket(this.mailboxPerPeer, hop.prev.link, this.mailboxLimits.peer);
    if ((circuit && circuit.available < 1) || peer.available < 1) return false;
    circuit?.tryTake(1);
    peer.tryTake(1);
    return true;
  }

  /**
   * Counts a new content stream on `hop` until it ends; false (the stream refused with END RESOURCE_LIMIT) when the
   * circuit already has its limit open.
   */
  private admit(hop: CircuitHop, mux: StreamMux, s: MuxStream): boolean {
    const n = this.open.get(hop) ?? 0;
    if (n >= this.maxStreamsPerCircuit) {
      this.metrics.drops.inc({ reason: 'content_stream_limit' });
      mux.reset(s, EndReason.RESOURCE_LIMIT);
      return false;
    }
    this.open.set(hop, n + 1);
    s.once('stream:end', () => {
      const left = (this.open.get(hop) ?? 1) - 1;
      if (left > 0) this.open.set(hop, left);
      else this.open.delete(hop);
    });
    return true;
  }

  /** Bytes reserved by STOREs whose data is still arriving. */
  get pendingStoreBytes(): number {
    return this.pendingStore;
  }

  /** After every STORE and repair pass: from the store's in-memory counts, never a scan of the store. */
  updateGauges(): void {
    const held = this.store.held;
    this.metrics.storeBytes.set(held.bytes);
    this.metrics.storeBlocks.set(held.blocks);
    this.metrics.storeQuota.set(this.store.quota);
  }

  /** Sends the reply, then END: after queued data on an accepted stream, at once on a refused one. */
  private finish(mux: StreamMux, s: MuxStream, command: RelayCommand, reply: Uint8Array): void {
    mux.reply(s, command, reply);
    if (s.state === 'open') s.end(EndReason.DONE);
    else mux.reset(s, EndReason.DONE);
  }

  /** STORE opener. */
  onStore = (hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): void => {
    if (!this.admit(hop, mux, s)) return;
    let req;
    try {
      req = decodeStore(data);
    } catch {
      return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: 'invalid' }));
    }
    const max = MAX_ITEM_BYTES[req.t];
    if (req.n > max || (req.t === 'block' && req.n !== BLOCK_LEN)) return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: 'invalid' }));
    if (req.t === 'mailbox' && !this.admitMailboxStore(hop, req.f !== undefined)) {
      this.metrics.drops.inc({ reason: 'mailbox_store_limit' });
      return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: 'refused' }));
    }
    if (this.pendingStore + req.n > this.maxPendingStoreBytes) {
      this.metrics.drops.inc({ reason: 'store_pending_limit' });
      return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: 'refused' }));
    }
    let slot: ForwardSlot | null = null;
    if (req.f) {
      const admitted = this.forwarder ? this.forwarder.admit(hop, req.f) : 'unknown';
      if (typeof admitted === 'string') return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: admitted }));
      slot = admitted;
    }
    const abort = new AbortController();
    // The item's bytes are reserved now and held in one buffer until the stream ends, whatever arrives.
    this.pendingStore += req.n;
    let bytes: Uint8Array | null = new Uint8Array(req.n);
    let got = 0;
    const timer = setTimeout(() => mux.reset(s, EndReason.TIMEOUT), STORE_TIMEOUT_MS);
    s.once('stream:end', () => {
      clearTimeout(timer);
      this.pendingStore -= req.n;
      bytes = null;
      slot?.release();
      abort.abort(STREAM_ENDED);
    });
    mux.acceptQuietly(s);
    s.on('stream:data', (chunk) => {
      s.consumed(1);
      if (!bytes) return; // answered already
      if (got + chunk.length > req.n) {
        clearTimeout(timer);
        bytes = null;
        return this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: 'invalid' }));
      }
      bytes.set(chunk, got);
      got += chunk.length;
      if (got < req.n) return;
      clearTimeout(timer);
      const item = bytes;
      bytes = null;
      if (slot) {
        void this.forwarder!.store(slot, req.t, req.k, item, req.c, abort.signal).then((status) => {
          if (s.state === 'closed') return;
          // Asked, and no answer: a closed stream, never `unreachable`, which the client would send elsewhere (§8.2).
          if (status === 'failed') return s.end(EndReason.HOST_UNREACHABLE);
          this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: status }));
        });
        return;
      }
      let status: ContentStatus;
      try {
        if (req.t === 'block') status = this.store.putBlock(req.k, item, req.c ? 'cache' : 'replica') === 'stored' ? 'ok' : 'exists';
        else if (req.t === 'endpoint') status = this.store.putEndpoint(req.k, item) === 'stored' ? 'ok' : 'exists';
        else if (req.t === 'mailbox') {
          const r = this.store.putMailbox(req.k, item);
          status = r === 'stored' ? 'ok' : r;
        } else status = this.store.putRecord(req.k, item).result === 'stored' ? 'ok' : 'exists';
      } catch (e) {
        const code = isAlliumError(e) ? e.code : 'ERR_INTERNAL';
        status = code === 'ERR_QUOTA' ? 'quota' : code === 'ERR_RECORD_STALE' ? 'stale' : 'invalid';
        this.metrics.drops.inc({ reason: `store_${status}` });
        if (code === 'ERR_INTERNAL') this.log.error({ err: e }, 'store failed');
      }
      this.updateGauges();
      this.finish(mux, s, RelayCommand.STORED, encodeStored({ s: status }));
    });
  };

  /** FETCH opener. */
  onFetch = (hop: CircuitHop, mux: StreamMux, s: MuxStream, data: Uint8Array): void => {
    if (!this.admit(hop, mux, s)) return;
    let req;
    try {
      req = decodeFetch(data);
    } catch {
      this.metrics.fetches.inc({ result: 'invalid' });
      return this.finish(mux, s, RelayCommand.FETCHED, encodeFetched({ s: 'invalid', n: 0 }));
    }
    if (req.f) return this.forwardFetch(hop, mux, s, req.f, req.t, req.k, req.h);
    if (req.h) this.fetched.heads++;
    else this.fetched.reads++;
    const item =
      req.t === 'block'
        ? this.store.getBlock(req.k, req.h ? 'check' : 'fetch')
        : req.t === 'endpoint'
          ? this.store.getEndpoint(req.k)
          : req.t === 'mailbox'
            ? this.store.getMailbox(req.k)
            : this.store.getRecord(req.k);
    if (!item) {
      this.metrics.fetches.inc({ result: 'missing' });
      return this.finish(mux, s, RelayCommand.FETCHED, encodeFetched({ s: 'missing', n: 0 }));
    }
    this.metrics.fetches.inc({ result: 'found' });
    mux.acceptQuietly(s);
    mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: 'found', n: item.length }));
    if (!req.h && item.length > 0) s.write(item); // an expired mailbox slot is found, with nothing to send
    s.end(EndReason.DONE);
  };

  /**
   * A FETCH naming a holder: forwarded, and the holder's answer streamed back as it arrives (content.md §8.3): its
   * FETCHED `found` and each DATA cell go on at once. A holder that was asked and failed — before or after `found`,
   * or by answering `refused`, `unknown` or `unreachable` itself — has the client's stream ended with END
   * HOST_UNREACHABLE, which the client takes as the holder not answering and does not retry elsewhere (§8.2); only
   * a holder this relay could not ask is answered `unreachable`.
   */
  private forwardFetch(hop: CircuitHop, mux: StreamMux, s: MuxStream, f: Uint8Array, kind: ContentKind, rk: Uint8Array, head: boolean): void {
    const slot = this.forwarder ? this.forwarder.admit(hop, f) : 'unknown';
    if (typeof slot === 'string') return this.finish(mux, s, RelayCommand.FETCHED, encodeFetched({ s: slot, n: 0 }));
    const abort = new AbortController();
    s.once('stream:end', () => {
      slot.release();
      abort.abort(STREAM_ENDED);
    });
    mux.acceptQuietly(s);
    let replied = false;
    const sink: FetchSink = {
      found: (n) => {
        if (s.state === 'closed') return;
        replied = true;
        mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: 'found', n }));
      },
      // The chunk is a view the holder's circuit may reuse once this returns: writeView copies only what cannot go
      // out at once (at most n bytes queue here).
      data: (chunk) => void (s.state !== 'closed' && s.writeView(chunk)),
    };
    void this.forwarder!.fetch(slot, kind, rk, head, abort.signal, sink).then((status) => {
      if (s.state === 'closed') return; // the client gave up
      if (replied) return s.end(status === 'found' ? EndReason.DONE : EndReason.HOST_UNREACHABLE);
      if (status === 'failed') return s.end(EndReason.HOST_UNREACHABLE);
      mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: status, n: 0 }));
      s.end(EndReason.DONE);
    });
  }
}
