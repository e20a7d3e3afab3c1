/**
 * Relay metrics for simulated relays: the members of relay/metrics.ts the relay components update, as plain
 * counters the experiments read directly (a prom-client registry per relay would cost more memory than the relay
 * it describes when there are 10,000 of them). Metrics only observe: replacing them changes no behaviour.
 */
import type { RelayMetrics } from '../relay/metrics.js';

export class Counter {
  total = 0;
  readonly byLabel = new Map<string, number>();

  inc(labels?: Record<string, string | number> | number, n?: number): void {
    let amount = 1;
    let key = '';
    if (typeof labels === 'number') amount = labels;
    else {
      if (labels) for (const k in labels) key = String(labels[k]);
      if (n !== undefined) amount = n;
    }
    this.total += amount;
    if (key) this.byLabel.set(key, (this.byLabel.get(key) ?? 0) + amount);
  }

  dec(labels?: Record<string, string | number> | number, n?: number): void {
    const amount = typeof labels === 'number' ? labels : (n ?? 1);
    this.inc(typeof labels === 'object' ? labels : undefined, -amount);
  }

  set(labels?: Record<string, string | number> | number, v?: number): void {
    this.total = typeof labels === 'number' ? labels : (v ?? 0);
  }

  get(label: string): number {
    return this.byLabel.get(label) ?? 0;
  }
}

export class SimMetrics {
  readonly links = new Counter();
  readonly circuits = new Counter();
  readonly cellsIn = new Counter();
  readonly cellsOut = new Counter();
  readonly bytesIn = new Counter();
  readonly bytesOut = new Counter();
  readonly drops = new Counter();
  readonly errors = new Counter();
  readonly handshakes = new Counter();
  readonly directorySize = new Counter();
  readonly consensusRelays = new Counter();
  readonly consensusHeads = new Counter();
  readonly storeBytes = new Counter();
  readonly storeBlocks = new Counter();
  readonly storeQuota = new Counter();
  readonly fetches = new Counter();
  readonly rateLimitPauses = new Counter();
  readonly gossipBytes = new Counter();
  readonly circuitsBuilt = new Counter();
  readonly replicated = new Counter();
  readonly departures = new Counter();
  readonly repairPasses = new Counter();
  readonly repairChecked = new Counter();
  readonly storeOpen = new Counter();
  readonly exitConnections = new Counter();
  readonly exitPendingResolves = new Counter();
  readonly linkBufferedBytes = new Counter();
  readonly linkBufferedBytesMax = new Counter();
  readonly streamBufferedBytes = new Counter();
  readonly gossipDescriptors = new Counter();
  readonly gossipPulls = new Counter();
  readonly forwards = new Counter();
  readonly paddingFrames = new Counter();
  readonly paddingSkipped = new Counter();
  readonly circuitPaddingCells = new Counter();
  readonly circuitPaddingRefused = new Counter();
  readonly circuitPaddingReceived = new Counter();

  /** This object where the relay components expect their prom-client metrics. */
  get asRelayMetrics(): RelayMetrics {
    return this as unknown as RelayMetrics;
  }
}

/**
 * The members of RelayMetrics the relay's parts update, each of which SimMetrics must have: a metric added to
 * relay/metrics.ts fails to compile here until it is added above (or named below, if no part updates it).
 */
type Updated = Exclude<keyof RelayMetrics, 'registry' | 'text' | 'contentType' | 'linkBytes' | 'buildInfo'>;
const _complete: Record<Updated, Counter> = new SimMetrics();
void _complete;
