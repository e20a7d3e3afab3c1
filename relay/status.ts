/**
 * The relay's status: everything the status page (relay/status-page.ts, served by relay/admin.ts), the heartbeat
 * (relay/heartbeat.ts) and `npm start` show, gathered from the relay node's parts and its metrics. Counts, public
 * relay data and this relay's own figures only: nothing about any client or circuit.
 */
import { ALLIUM_VERSION } from './version.js';
import { consensusStatus } from './consensus-placement.js';
import type { BandwidthSample } from './bandwidth-history.js';
import type { RelayConfig } from './config.js';
import type { RelayNode } from './node.js';

/** A prom-client metric as status reads it: its values with their labels. */
interface Readable {
  get(): Promise<{ values: { value: number; labels: Partial<Record<string, string | number>> }[] }>;
}

/** A metric's total, and its values summed per value of `label`. */
async function sum(m: Readable, label?: string): Promise<{ total: number; by: Record<string, number> }> {
  const v = await m.get();
  const by: Record<string, number> = {};
  let total = 0;
  for (const x of v.values) {
    total += x.value;
    if (label) by[String(x.labels[label] ?? '')] = (by[String(x.labels[label] ?? '')] ?? 0) + x.value;
  }
  return { total, by };
}

export interface StatusSource {
  config: RelayConfig;
  node: RelayNode;
  /** When the relay started, and its clock. */
  startedAt: number;
  now: number;
  /** Bytes per second over the last minutes (relay/bandwidth-history.ts). */
  history: readonly BandwidthSample[];
}

/** Everything the status page shows (also a handy API for tests and tools). */
export async function relayStatus(s: StatusSource): Promise<Record<string, unknown>> {
  const { node, config } = s;
  const metrics = node.metrics;
  const links = await sum(metrics.links, 'kind');
  const neighbours = new Set(node.overlay.neighbours());
  const st = node.store?.stats();
  const fingerprint = node.identity.fingerprint;
  const bytes = node.accounting.totals; // as of the last reading: the bandwidth history takes one every second
  return {
    version: ALLIUM_VERSION,
    nickname: config.nickname,
    fingerprint,
    bridge: config.bridge,
    uptimeSeconds: Math.floor((s.now - s.startedAt) / 1000),
    links: { relay: links.by['relay'] ?? 0, client: links.by['client'] ?? 0 },
    circuits: node.reactor?.size ?? 0,
    cells: { in: (await sum(metrics.cellsIn)).total, out: (await sum(metrics.cellsOut)).total },
    bytes: { in: bytes.in, out: bytes.out },
    history: s.history,
    drops: (await sum(metrics.drops, 'reason')).by,
    errors: (await sum(metrics.errors, 'code')).by,
    store: {
      blocks: st?.blocks ?? 0,
      records: st?.records ?? 0,
      bytes: st?.bytes ?? 0,
      quota: st?.quota ?? 0,
      replicated: node.replicator?.pushed ?? 0,
      generation: node.replicator?.generation() ?? '',
    },
    consensus: consensusStatus(node.overlay.consensus.current, fingerprint),
    authority: node.authority?.service.status() ?? null,
    directory: node.directory.all().map((d) => ({
      nickname: d.nick,
      fingerprint: d.fingerprint,
      address: d.addr,
      caps: d.caps,
      exit: d.exit.some((l) => l.startsWith('accept')),
      neighbour: neighbours.has(d.fingerprint),
    })),
    neighbours: [...neighbours],
  };
}
