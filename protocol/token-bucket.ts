/**
 * Token buckets: the relay's rate limits (bandwidth rate/burst, handshakes per second, CREATEs and cells per link) and
 * the client's CREATE pacer (client/create-pacer.ts, specs/path.md §3.3). Pure: the clock (milliseconds, default
 * Date.now) is injected, and nothing here waits — `take` and `msUntil` say how long to wait when the bucket is short.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSecond);
      this.last = t;
    }
  }

  /** Takes n tokens if available. */
  tryTake(n: number): boolean {
    this.refill();
    if (this.tokens >= n) {
      this.tokens -= n;
      return true;
    }
    return false;
  }

  /** Takes n tokens, going into debt if needed; returns milliseconds until the debt is repaid (0 if none). */
  take(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.ratePerSecond) * 1000);
  }

  /** Milliseconds until the bucket holds n tokens (0 if it does now); takes none. */
  msUntil(n: number): number {
    this.refill();
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.ratePerSecond) * 1000);
  }

  get available(): number {
    this.refill();
    return this.tokens;
  }
}
