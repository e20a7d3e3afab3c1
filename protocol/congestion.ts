/**
 * Circuit congestion control from round-trip times (specs/streams.md §4.6), after Tor's proposal 324 (TOR_VEGAS).
 * Pure: the caller measures each round trip and passes it in; nothing here reads a clock.
 *
 * The sender keeps a congestion window `cwnd` (DATA cells it may have unacknowledged) and `inflight` (sent, not yet
 * acknowledged). Every circuit SENDME acknowledges CIRC_SENDME_INC cells and is one round-trip sample: the time from
 * sending the DATA cell whose tag it echoes to its arrival.
 *
 *   on each sample rtt:
 *       inflight −= inc
 *       min_rtt  = min(min_rtt, rtt)
 *       ewma_rtt = ewma_rtt + (rtt − ewma_rtt) · 2 / (N + 1)       N = max(2, cwnd / inc / 2)
 *       bdp      = cwnd · min_rtt / ewma_rtt                      (cells the path holds without queueing)
 *       queue    = cwnd − bdp                                     (cells waiting in queues along the path)
 *       slow start (until the first queue > gamma):
 *           queue > gamma:  leave slow start; cwnd = bdp + gamma
 *           else if the window was full since the last sample:  cwnd += inc
 *       afterwards, once per cwnd of acknowledged cells:
 *           queue > delta:  cwnd = bdp + delta − inc
 *           queue > beta:   cwnd −= inc
 *           queue < alpha and the window was full:  cwnd += inc
 *       cwnd = clamp(cwnd, cwnd_min, cwnd_max)
 *
 * What it does not do: it never lets cwnd exceed cwnd_max, which a sender sets no higher than the receiver's fixed
 * CIRC_WINDOW (the receiver still enforces that with ERR_SENDME), and it neither sends nor checks SENDMEs itself
 * (protocol/flow.ts does, authenticated by tag).
 */
import { ConfigError } from './errors.js';

/** Tuning of the controller, in DATA cells (specs/limits.md §Streams). */
export interface VegasParams {
  /** Window at the start of a circuit. */
  readonly cwndInit: number;
  readonly cwndMin: number;
  readonly cwndMax: number;
  /** Cells one SENDME acknowledges (CIRC_SENDME_INC) and the step of every change. */
  readonly inc: number;
  /** Grow while the queue estimate is below alpha; shrink by one step above beta; cut to bdp + delta above delta. */
  readonly alpha: number;
  readonly beta: number;
  /** Slow start ends when the queue estimate first exceeds gamma. */
  readonly gamma: number;
  readonly delta: number;
}

export const VEGAS_DEFAULTS: VegasParams = {
  cwndInit: 1000,
  cwndMin: 200,
  cwndMax: 2000,
  inc: 100,
  alpha: 200,
  beta: 400,
  gamma: 400,
  delta: 600,
};

export class VegasController {
  private cwndCells: number;
  private inflightCells = 0;
  private slowStart = true;
  private minRttMs = Infinity;
  private ewmaRttMs = 0;
  /** The window was full (inflight reached cwnd) since the last change: growth is justified. */
  private full = false;
  /** Acknowledged cells since the last steady-state update. */
  private ackedSinceUpdate = 0;

  constructor(private readonly p: VegasParams = VEGAS_DEFAULTS) {
    if (!(p.inc > 0 && p.cwndMin >= p.inc && p.cwndMin <= p.cwndInit && p.cwndInit <= p.cwndMax))
      throw new ConfigError('vegas: need inc ≤ cwnd_min ≤ cwnd_init ≤ cwnd_max');
    if (!(p.alpha <= p.beta && p.beta <= p.delta)) throw new ConfigError('vegas: need alpha ≤ beta ≤ delta');
    this.cwndCells = p.cwndInit;
  }

  get cwnd(): number {
    return this.cwndCells;
  }
  get inflight(): number {
    return this.inflightCells;
  }
  get inSlowStart(): boolean {
    return this.slowStart;
  }
  /** Smallest round trip seen, ms (Infinity before the first sample). */
  get minRtt(): number {
    return this.minRttMs;
  }
  /** Smoothed round trip, ms (0 before the first sample). */
  get ewmaRtt(): number {
    return this.ewmaRttMs;
  }
  /** DATA cells that may be sent now. */
  get available(): number {
    return Math.max(0, this.cwndCells - this.inflightCells);
  }

  /** One DATA cell was sent. */
  onSent(): void {
    this.inflightCells++;
    if (this.inflightCells >= this.cwndCells) this.full = true;
  }

  /** A circuit SENDME acknowledged `inc` cells; `rttMs` is the time from sending the cell it echoes to its arrival. */
  onAck(rttMs: number): void {
    const p = this.p;
    this.inflightCells = Math.max(0, this.inflightCells - p.inc);
    const rtt = Number.isFinite(rttMs) && rttMs > 0 ? rttMs : 0.001;
    this.minRttMs = Math.min(this.minRttMs, rtt);
    const n = Math.max(2, Math.floor(this.cwndCells / p.inc / 2));
    this.ewmaRttMs = this.ewmaRttMs === 0 ? rtt : this.ewmaRttMs + ((rtt - this.ewmaRttMs) * 2) / (n + 1);
    const bdp = Math.floor((this.cwndCells * this.minRttMs) / Math.max(this.ewmaRttMs, this.minRttMs));
    const queue = this.cwndCells - bdp;
    if (this.slowStart) {
      if (queue > p.gamma) {
        this.slowStart = false;
        this.set(bdp + p.gamma);
      } else if (this.full) this.set(this.cwndCells + p.inc);
      return;
    }
    this.ackedSinceUpdate += p.inc;
    if (this.ackedSinceUpdate < this.cwndCells) return;
    this.ackedSinceUpdate = 0;
    if (queue > p.delta) this.set(bdp + p.delta - p.inc);
    else if (queue > p.beta) this.set(this.cwndCells - p.inc);
    else if (queue < p.alpha && this.full) this.set(this.cwndCells + p.inc);
    this.full = this.inflightCells >= this.cwndCells;
  }

  private set(cwnd: number): void {
    const next = Math.min(this.p.cwndMax, Math.max(this.p.cwndMin, Math.round(cwnd)));
    if (next !== this.cwndCells) this.full = this.inflightCells >= next;
    this.cwndCells = next;
  }
}
