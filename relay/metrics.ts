/**
 * Relay metrics in Prometheus text format (docs/operator-guide.md §Metrics), one registry per relay so several
 * relays can run in one process (tests, benchmarks). Served on a separate local port by relay/relay.ts.
 */
import client from 'prom-client';

export class RelayMetrics {
  readonly registry = new client.Registry();
  readonly links: client.Gauge<'kind'>;
  readonly circuits: client.Gauge;
  readonly cellsIn: client.Counter;
  readonly cellsOut: client.Counter;
  readonly bytesIn: client.Counter;
  readonly bytesOut: client.Counter;
  readonly drops: client.Counter<'reason'>;
  readonly errors: client.Counter<'code'>;
  readonly handshakes: client.Counter<'result'>;
  readonly directorySize: client.Gauge;
  readonly consensusRelays: client.Gauge<'flag'>;
  readonly storeOpen: client.Gauge;
  readonly storeBytes: client.Gauge;
  readonly storeBlocks: client.Gauge;
  readonly gossipBytes: client.Counter<'direction'>;
  readonly gossipDescriptors: client.Counter<'result'>;
  readonly gossipPulls: client.Counter<'event'>;
  readonly circuitsBuilt: client.Counter<'role'>;
  readonly replicated: client.Counter;
  readonly departures: client.Counter;

  constructor(labels: Record<string, string> = {}) {
    this.registry.setDefaultLabels(labels);
    const r = [this.registry];
    this.links = new client.Gauge({ name: 'allium_links', help: 'Open links by peer kind', labelNames: ['kind'], registers: r });
    this.circuits = new client.Gauge({ name: 'allium_circuits', help: 'Open circuits through this relay', registers: r });
    this.cellsIn = new client.Counter({ name: 'allium_cells_in_total', help: 'Cells received (not counting padding)', registers: r });
    this.cellsOut = new client.Counter({ name: 'allium_cells_out_total', help: 'Cells sent (not counting padding)', registers: r });
    this.bytesIn = new client.Counter({ name: 'allium_bytes_in_total', help: 'Link bytes received', registers: r });
    this.bytesOut = new client.Counter({ name: 'allium_bytes_out_total', help: 'Link bytes sent', registers: r });
    this.drops = new client.Counter({ name: 'allium_drops_total', help: 'Links, circuits or messages dropped, by reason', labelNames: ['reason'], registers: r });
    this.errors = new client.Counter({ name: 'allium_errors_total', help: 'Protocol and peer errors, by error code', labelNames: ['code'], registers: r });
    this.handshakes = new client.Counter({ name: 'allium_handshakes_total', help: 'Link handshakes by result', labelNames: ['result'], registers: r });
    this.directorySize = new client.Gauge({ name: 'allium_directory_relays', help: 'Relays in this relay directory view', registers: r });
    this.consensusRelays = new client.Gauge({ name: 'allium_consensus_relays', help: 'Relays the consensus held lists, in all (flag="all") and with each flag', labelNames: ['flag'], registers: r });
    this.storeOpen = new client.Gauge({ name: 'allium_store_open', help: '1 while the content store takes new items and the descriptor lists store; 0 when full', registers: r });
    this.storeOpen.set(1);
    this.storeBytes = new client.Gauge({ name: 'allium_store_bytes', help: 'Bytes of content blocks stored', registers: r });
    this.storeBlocks = new client.Gauge({ name: 'allium_store_blocks', help: 'Content blocks stored', registers: r });
    this.gossipBytes = new client.Counter({ name: 'allium_gossip_bytes_total', help: 'Directory gossip payload bytes', labelNames: ['direction'], registers: r });
    this.gossipDescriptors = new client.Counter({
      name: 'allium_gossip_descriptors_total',
      help: 'Descriptors received whole in relay gossip, by result: new (added), known (already held), refused',
      labelNames: ['result'],
      registers: r,
    });
    this.gossipPulls = new client.Counter({
      name: 'allium_gossip_pulls_total',
      help: 'Announced descriptors asked for, by event: asked, retried (another announcer), abandoned, dropped (too many pending)',
      labelNames: ['event'],
      registers: r,
    });
    this.replicated = new client.Counter({ name: 'allium_replicated_total', help: 'Content items copied to another holder by re-replication', registers: r });
    this.departures = new client.Counter({ name: 'allium_holder_departures_total', help: 'Holders left out of placement after staying unreachable for the departure grace', registers: r });
    this.circuitsBuilt = new client.Counter({ name: 'allium_circuits_created_total', help: 'Circuit hops created at this relay, by position', labelNames: ['role'], registers: r });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
