/**
 * The circuit build timeout, learned from observed build times (specs/path.md §4), in the spirit of Tor's
 * circuit-build-timeout: until enough builds are seen, a generous default; then about twice the 80th percentile of
 * the recent builds, never below a floor. Timeouts widen it again, so a slow network is not mistaken for failure.
 */
export const DEFAULT_BUILD_TIMEOUT_MS = 60_000;
export const MIN_BUILD_TIMEOUT_MS = 1_500;
const WINDOW = 100;
const MIN_SAMPLES = 10;

export class BuildTimeout {
  private readonly samples: number[] = [];
  private timeouts = 0;

  record(ms: number): void {
    this.samples.push(ms);
    if (this.samples.length > WINDOW) this.samples.shift();
    this.timeouts = Math.max(0, this.timeouts - 1);
  }

  recordTimeout(): void {
    this.timeouts++;
  }

  get current(): number {
    if (this.samples.length < MIN_SAMPLES) return DEFAULT_BUILD_TIMEOUT_MS;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const p80 = sorted[Math.floor(sorted.length * 0.8)]!;
    const learned = Math.max(MIN_BUILD_TIMEOUT_MS, p80 * 2);
    return Math.min(DEFAULT_BUILD_TIMEOUT_MS, learned * 2 ** Math.min(5, this.timeouts));
  }

  get sampleCount(): number {
    return this.samples.length;
  }
}
