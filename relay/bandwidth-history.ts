/**
 * The relay's bandwidth history (status page): bytes in and out per sampling interval (one second), for the last
 * HISTORY_SAMPLES samples, from the running totals of its link accounting.
 */

/** Samples kept: five minutes at one a second. */
export const HISTORY_SAMPLES = 300;

export interface BandwidthSample {
  /** When the sample was taken (ms). */
  t: number;
  in: number;
  out: number;
}

export class BandwidthHistory {
  readonly samples: BandwidthSample[] = [];
  private last = { in: 0, out: 0 };

  constructor(
    /** The running totals, read fresh (relay/link-accounting.ts after a sweep). */
    private readonly totals: () => { in: number; out: number },
    private readonly now: () => number,
    private readonly max = HISTORY_SAMPLES,
  ) {}

  /** Takes one sample: the bytes since the last one. */
  sample(): void {
    const t = this.totals();
    this.samples.push({ t: this.now(), in: Math.max(0, t.in - this.last.in), out: Math.max(0, t.out - this.last.out) });
    this.last = t;
    if (this.samples.length > this.max) this.samples.shift();
  }
}
