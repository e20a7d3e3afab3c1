/**
 * Paces the CREATEs a client sends on one entry link (specs/path.md §3.3), so that its own bursts never meet the
 * entry relay's per-link CREATE limit (specs/circuits.md §7.2, `CREATES_PER_SECOND_PER_LINK`: 10 a second, burst
 * 100). A refused CREATE fails the build, and a build through a guard that fails counts against that guard in path
 * bias (specs/path.md §3.1): without pacing, a client that opens many circuits at once — a mailbox pass reading
 * several inboxes and epochs, a site fetched file by file — would fail its own operations and, over time, count an
 * honest guard as biased. The pacer keeps a token bucket a margin below the relay's default, full when the link opens
 * (the relay's bucket for a link starts full too, at its first CREATE), and builds beyond it wait their turn, in
 * order, instead of being sent to be refused.
 *
 * Only the client's own builds wait here: the queue holds at most the builds this client has in flight.
 */
import { AbortedError, AlliumError } from '../protocol/errors.js';
import { TokenBucket } from '../protocol/token-bucket.js';

/** CREATEs a second a client sends on one entry link by default: the relays' default limit (10) less a tenth. */
export const CLIENT_CREATES_PER_SECOND = 9;
/** Seconds of `rate` a fresh link may send at once (the relays' burst is ten seconds' worth). */
export const CLIENT_CREATE_BURST_SECONDS = 10;

export class CreatePacer {
  private readonly bucket: TokenBucket;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  readonly burst: number;

  constructor(
    readonly ratePerSecond: number,
    now: () => number = () => performance.now(),
  ) {
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0)
      throw new AlliumError('ERR_CONFIG', `createsPerSecond must be a positive number (got ${ratePerSecond})`);
    this.burst = Math.max(1, ratePerSecond * CLIENT_CREATE_BURST_SECONDS);
    this.bucket = new TokenBucket(ratePerSecond, this.burst, now);
  }

  /** Builds waiting for a token. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves when this link may send one more CREATE (at once while the bucket holds one); rejects on `signal`. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortedError('aborted'));
    if (this.waiting.length === 0 && this.bucket.tryTake(1)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const entry = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          if (this.waiting.length === 0 && this.timer) {
            clearTimeout(this.timer);
            this.timer = null;
          }
          reject(new AbortedError('aborted'));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
      this.arm();
    });
  }

  /**
   * The link closed: every waiting build gets ERR_LINK_CLOSED (not ERR_ABORTED, which is its caller's or the
   * client's own abort), so that it tries again on a new link.
   */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.waiting.splice(0)) {
      w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(new AlliumError('ERR_LINK_CLOSED', 'the entry link closed while the build waited for its turn'));
    }
  }

  private arm(): void {
    if (this.timer || this.waiting.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      while (this.waiting.length > 0 && this.bucket.tryTake(1)) {
        const w = this.waiting.shift()!;
        w.signal?.removeEventListener('abort', w.onAbort);
        w.resolve();
      }
      this.arm();
    }, this.bucket.msUntil(1));
  }
}
