/**
 * Delivery of incoming messages to the application (specs/messaging.md §8.3–§8.4): every listen() call has a queue of
 * at most `maxListenQueue` messages; a source (a conversation, the mailbox) hands over its next message only once
 * every listen() call running has taken the last, so a reader that does not keep up stops the senders rather than
 * filling our memory. A message whose id was emitted lately from the same peer is a copy (sent again after its
 * acknowledgement was lost, or the offline copy of one that also arrived live) and is dropped.
 */
import type { AbortOptions } from '../../net/abort.js';
import { RECENT_ID_PEERS, RECENT_IDS_PER_PEER } from './limits.js';
import type { IncomingMessage } from './types.js';

interface Queued {
  readonly m: IncomingMessage;
  /** Called when this queue's application took the message (or the queue closed). */
  readonly taken: () => void;
}

/** The messages one listen() call has not taken yet. */
export class ListenQueue {
  readonly items: Queued[] = [];
  private wake: (() => void) | null = null;

  constructor(private readonly owner: Delivery) {}

  /** A message arrived, or the listen() call or the delivery closed: a waiting take() looks again. */
  poke(): void {
    this.wake?.();
  }

  /** Yields the messages as they come, until the delivery closes or `options.signal` aborts. */
  async *take(options: AbortOptions = {}): AsyncGenerator<IncomingMessage> {
    const { signal } = options;
    const poke = (): void => this.poke();
    signal?.addEventListener('abort', poke);
    try {
      for (;;) {
        while (this.items.length) {
          const { m, taken } = this.items.shift()!;
          taken();
          this.owner.roomFreed();
          yield m;
        }
        if (this.owner.closed || signal?.aborted) return;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      signal?.removeEventListener('abort', poke);
    }
  }

  /** Leaves the delivery: messages still waiting count as taken. */
  close(): void {
    this.owner.remove(this);
    for (const { taken } of this.items.splice(0)) taken();
    this.owner.roomFreed();
  }
}

export class Delivery {
  closed = false;
  /** The queues of the listen() calls running now. */
  private readonly queues = new Set<ListenQueue>();
  /** Messages waiting for room in a full queue, each with a test of whether its source has gone. */
  private readonly roomWaiters = new Set<{ resolve: () => void; gone: () => boolean }>();
  /** peer address → ids of messages from it emitted lately (oldest first), to drop copies. */
  private readonly recentIds = new Map<string, Set<string>>();

  /** `emitted` is called for each message handed over (the Messenger's 'message:received'). */
  constructor(
    private readonly maxListenQueue: number,
    private readonly emitted: (m: IncomingMessage) => void,
  ) {}

  /** A queue for a new listen() call: every message received from now on waits in it until taken. */
  openQueue(): ListenQueue {
    const q = new ListenQueue(this);
    this.queues.add(q);
    return q;
  }

  /** @internal ListenQueue.close(). */
  remove(q: ListenQueue): void {
    this.queues.delete(q);
  }

  /**
   * Hands an incoming message to the application: waits while a listen() queue is full, then emits it unless it is a
   * copy, and resolves once every listen() call running took it (at once when none runs). Resolves false for a copy,
   * and when the delivery closed or the source went (`gone`) first.
   */
  async receive(m: IncomingMessage, gone: () => boolean): Promise<boolean> {
    while (!this.closed && !gone() && [...this.queues].some((q) => q.items.length >= this.maxListenQueue)) {
      await new Promise<void>((resolve) => {
        for (const w of this.roomWaiters) {
          if (!w.gone()) continue;
          this.roomWaiters.delete(w);
          w.resolve();
        }
        this.roomWaiters.add({ resolve, gone });
      });
    }
    if (this.closed || gone() || !this.isNew(m)) return false;
    const queues = [...this.queues];
    let holds = queues.length;
    const taken = new Promise<void>((resolve) => {
      const take = (): void => void (--holds === 0 && resolve());
      for (const q of queues) {
        q.items.push({ m, taken: take });
        q.poke();
      }
      if (holds === 0) resolve();
    });
    this.emitted(m);
    await taken;
    return true;
  }

  /** Lets messages waiting for room in the queues try again. */
  roomFreed(): void {
    const waiting = [...this.roomWaiters];
    this.roomWaiters.clear();
    for (const w of waiting) w.resolve();
  }

  /** False when `m`'s id was emitted lately from the same peer; otherwise remembers it. */
  private isNew(m: IncomingMessage): boolean {
    if (m.id === undefined) return true;
    let ids = this.recentIds.get(m.from);
    if (ids)
      this.recentIds.delete(m.from); // re-inserted below: the map is kept in order of last use
    else ids = new Set();
    this.recentIds.set(m.from, ids);
    if (this.recentIds.size > RECENT_ID_PEERS) this.recentIds.delete(this.recentIds.keys().next().value!);
    if (ids.has(m.id)) return false;
    ids.add(m.id);
    if (ids.size > RECENT_IDS_PER_PEER) ids.delete(ids.values().next().value!);
    return true;
  }

  /** Ends every listen() call and releases every waiting source (their messages are not emitted). */
  close(): void {
    this.closed = true;
    for (const q of this.queues) q.poke();
    this.roomFreed();
  }
}
