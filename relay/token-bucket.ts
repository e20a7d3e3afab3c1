/**
 * Token buckets for the relay's rate limits (bandwidth rate/burst, handshakes per second, cells per link).
 * `take` never blocks: it says how long to wait when the bucket is short.
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

  get available(): number {
    this.refill();
    return this.tokens;
  }
}
