/**
 * Relay metrics in Prometheus text format (docs/operator-guide.md §Metrics, whose table a test keeps equal to this
 * file), one registry per relay so several relays can run in one process (tests, benchmarks). Served on a separate
 * local port by relay/relay.ts.
 *
 * - Every labelled series whose label values are known in advance exists from the start at 0, so a rate() or an
 *   alert sees it before the first event.
 * - `allium_drops_total` counts refusals and losses only; routine events have counters of their own (rate-limit
 *   pauses, content fetches by result, re-replication).
 * - The process: Node's standard process_* and nodejs_* series (memory, CPU, file descriptors, event-loop lag,
 *   garbage collection), and allium_build_info.
 */
import client from 'prom-client';
import { ALLIUM_VERSION } from './version.js';

/** Handshake results known in advance (error codes are added as they happen). */
const HANDSHAKE_RESULTS = ['ok', 'closed', 'wrong_path', 'stopping', 'max_links', 'max_links_per_ip', 'handshake_rate'];
/** Drop reasons with fixed names (others carry an error code: descriptor_<code>, consensus_<code>). */
export const DROP_REASONS = [
  'oom_link_closed',
  'circuit_limit',
  'relay_unknown_circuit',
  'link_queue_full',
  'link_closed',
  'extend_timeout',
  'extend_unreachable',
  'dial_failed',
  'control_send_failed',
  'stream_limit',
  'service_not_offered',
  'exit_policy',
  'exit_resolve_failed',
  'exit_connection_limit',
  'store_quota',
  'store_stale',
  'store_invalid',
  'intro_limit',
  'introduce_unknown',
  'rendezvous_limit',
  'rendezvous_unknown_cookie',
  'rendezvous_second_registration',
  'introduce_rate',
  'introduce_pow_rate',
  'exit_resolve_limit',
  'dial_refused_address',
  'answer_deferred_dropped',
  'control_send_congested',
  'dial_limit',
  'link_evicted_idle',
  'inbound_neighbour_limit',
  'gossip_not_neighbour',
  'gossip_summary_unsolicited',
  'gossip_give_capped',
  'intro_limit_evicted',
  'circuit_backlog',
  'circuit_idle',
  'circuit_limit_block',
  'content_stream_limit',
  'exit_block_limit',
  'exit_circuit_limit',
  'exit_idle',
  'oom_circuit_destroyed',
  'store_pending_limit',
  'stream_stalled',
  'rendezvous_limit_evicted',
  'content_forward_limit',
  'mailbox_store_limit',
];

export class RelayMetrics {
  readonly registry = new client.Registry();
  readonly links: client.Gauge<'kind'>;
  readonly circuits: client.Gauge;
  readonly cellsIn: client.Counter;
  readonly cellsOut: client.Counter;
  /** Link padding frames sent to clients that asked (specs/link.md §4.4), and those the budget skipped. */
  readonly paddingFrames: client.Counter;
  readonly paddingSkipped: client.Counter;
  readonly circuitPaddingCells: client.Counter;
  readonly circuitPaddingRefused: client.Counter<'reason'>;
  readonly circuitPaddingReceived: client.Counter;
  readonly linkBytes: client.Counter<'direction'>;
  /** allium_link_bytes_total{direction="in"} */
  readonly bytesIn: client.Counter.Internal;
  /** allium_link_bytes_total{direction="out"} */
  readonly bytesOut: client.Counter.Internal;
  readonly drops: client.Counter<'reason'>;
  readonly rateLimitPauses: client.Counter;
  readonly fetches: client.Counter<'result'>;
  readonly forwards: client.Counter<'result'>;
  readonly errors: client.Counter<'code'>;
  readonly handshakes: client.Counter<'result'>;
  readonly directorySize: client.Gauge;
  readonly consensusRelays: client.Gauge<'flag'>;
  readonly consensusHeads: client.Counter<'result'>;
  readonly storeOpen: client.Gauge;
  readonly storeBytes: client.Gauge;
  readonly storeBlocks: client.Gauge;
  readonly storeQuota: client.Gauge;
  readonly gossipBytes: client.Counter<'direction'>;
  readonly gossipDescriptors: client.Counter<'result'>;
  readonly gossipPulls: client.Counter<'event'>;
  readonly circuitsBuilt: client.Counter<'role'>;
  readonly replicated: client.Counter;
  readonly departures: client.Counter;
  readonly repairPasses: client.Counter;
  readonly repairChecked: client.Counter;
  readonly exitConnections: client.Gauge;
  readonly linkBufferedBytes: client.Gauge;
  readonly linkBufferedBytesMax: client.Gauge;
  readonly streamBufferedBytes: client.Gauge;
  readonly exitPendingResolves: client.Gauge;
  readonly buildInfo: client.Gauge<'version' | 'node'>;

  constructor(labels: Record<string, string> = {}, o: { processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels(labels);
    const r = [this.registry];
    this.buildInfo = new client.Gauge({
      name: 'allium_build_info',
      help: 'Always 1; the labels say which Allium and which Node run',
      labelNames: ['version', 'node'],
      registers: r,
    });
    this.buildInfo.set({ version: ALLIUM_VERSION, node: process.versions.node }, 1);
    this.links = new client.Gauge({ name: 'allium_links', help: 'Open links by peer kind', labelNames: ['kind'], registers: r });
    this.circuits = new client.Gauge({ name: 'allium_circuits', help: 'Open circuits through this relay', registers: r });
    this.cellsIn = new client.Counter({ name: 'allium_cells_in_total', help: 'Cells received (not counting padding)', registers: r });
    this.cellsOut = new client.Counter({ name: 'allium_cells_out_total', help: 'Cells sent (not counting padding)', registers: r });
    this.paddingFrames = new client.Counter({ name: 'allium_link_padding_frames_total', help: 'Link padding frames sent to clients that asked', registers: r });
    this.paddingSkipped = new client.Counter({
      name: 'allium_link_padding_skipped_total',
      help: 'Link padding frames not sent because link_padding_budget was spent',
      registers: r,
    });
    this.circuitPaddingCells = new client.Counter({
      name: 'allium_circuit_padding_cells_total',
      help: 'DROP cells sent by circuit padding machines (specs/padding.md)',
      registers: r,
    });
    this.circuitPaddingRefused = new client.Counter({
      name: 'allium_circuit_padding_refused_total',
      help: 'Padding machine requests refused, and machines ended by a spent budget, by reason',
      labelNames: ['reason'],
      registers: r,
    });
    this.circuitPaddingReceived = new client.Counter({
      name: 'allium_circuit_padding_received_total',
      help: 'DROP cells addressed to this relay (a client half of a padding machine), discarded',
      registers: r,
    });
    this.linkBytes = new client.Counter({
      name: 'allium_link_bytes_total',
      help: 'Link bytes (frames on the wire), by direction',
      labelNames: ['direction'],
      registers: r,
    });
    this.bytesIn = this.linkBytes.labels({ direction: 'in' });
    this.bytesOut = this.linkBytes.labels({ direction: 'out' });
    this.drops = new client.Counter({
      name: 'allium_drops_total',
      help: 'Links, circuits, streams or messages refused or lost, by reason',
      labelNames: ['reason'],
      registers: r,
    });
    this.rateLimitPauses = new client.Counter({
      name: 'allium_rate_limit_pauses_total',
      help: "Times a link's reads were paused by bandwidth_rate or cells_per_second_per_link",
      registers: r,
    });
    this.fetches = new client.Counter({
      name: 'allium_fetches_total',
      help: 'Content FETCH requests answered, by result: found, missing, invalid',
      labelNames: ['result'],
      registers: r,
    });
    this.forwards = new client.Counter({
      name: 'allium_content_forwards_total',
      help: 'STORE and FETCH requests forwarded to a holder (content.md §8.3), by result: answered, unknown, unreachable (not asked), failed (asked, no answer), refused',
      labelNames: ['result'],
      registers: r,
    });
    this.errors = new client.Counter({ name: 'allium_errors_total', help: 'Protocol and peer errors, by error code', labelNames: ['code'], registers: r });
    this.handshakes = new client.Counter({ name: 'allium_handshakes_total', help: 'Link handshakes by result', labelNames: ['result'], registers: r });
    this.directorySize = new client.Gauge({ name: 'allium_directory_relays', help: 'Relays in this relay directory view', registers: r });
    this.consensusRelays = new client.Gauge({
      name: 'allium_consensus_relays',
      help: 'Relays the consensus held lists, in all (flag="all") and with each flag',
      labelNames: ['flag'],
      registers: r,
    });
    this.consensusHeads = new client.Counter({
      name: 'allium_consensus_heads_total',
      help: 'Consensus heads neighbours offered, by result: verified (decoded and its signatures checked), held (the bytes of the head held or being fetched: not checked again)',
      labelNames: ['result'],
      registers: r,
    });
    for (const result of ['verified', 'held']) this.consensusHeads.inc({ result }, 0);
    this.storeOpen = new client.Gauge({
      name: 'allium_store_open',
      help: '1 while the content store takes new items and the descriptor lists store; 0 when full',
      registers: r,
    });
    this.storeOpen.set(1);
    this.storeBytes = new client.Gauge({ name: 'allium_store_bytes', help: 'Bytes of content blocks stored', registers: r });
    this.storeBlocks = new client.Gauge({ name: 'allium_store_blocks', help: 'Content blocks stored', registers: r });
    this.storeQuota = new client.Gauge({
      name: 'allium_store_quota_bytes',
      help: 'storage_quota: bytes the content store may hold (0: no store)',
      registers: r,
    });
    this.gossipBytes = new client.Counter({
      name: 'allium_gossip_bytes_total',
      help: 'Directory gossip payload bytes',
      labelNames: ['direction'],
      registers: r,
    });
    this.gossipDescriptors = new client.Counter({
      name: 'allium_gossip_descriptors_total',
      help: 'Descriptors received whole in relay gossip, by result: new (added), known (already held), refused',
      labelNames: ['result'],
      registers: r,
    });
    this.gossipPulls = new client.Counter({
      name: 'allium_gossip_pulls_total',
      help: 'Announced descriptors asked for, by event: asked, retried (another announcer), abandoned, dropped (too many pending), evicted (for a neighbour below its fair share)',
      labelNames: ['event'],
      registers: r,
    });
    this.replicated = new client.Counter({ name: 'allium_replicated_total', help: 'Content items copied to another holder by re-replication', registers: r });
    this.departures = new client.Counter({
      name: 'allium_holder_departures_total',
      help: 'Holders left out of placement after staying unreachable for the departure grace',
      registers: r,
    });
    this.repairPasses = new client.Counter({ name: 'allium_repair_passes_total', help: 'Replication passes completed (content.md §6.2)', registers: r });
    this.repairChecked = new client.Counter({
      name: 'allium_repair_checked_total',
      help: 'Items a replication pass checked at their other holders (not yet checked under the current generation, or whose transfers failed before)',
      registers: r,
    });
    this.linkBufferedBytes = new client.Gauge({
      name: 'allium_link_buffered_bytes',
      help: 'Bytes held by all links (cells and socket queued to send, CONTROL messages being reassembled), at the last memory check',
      registers: r,
    });
    this.linkBufferedBytesMax = new client.Gauge({
      name: 'allium_link_buffered_bytes_max',
      help: 'Bytes held by the fullest link, at the last memory check',
      registers: r,
    });
    this.streamBufferedBytes = new client.Gauge({
      name: 'allium_stream_buffered_bytes',
      help: 'Bytes held for streams at their last hop (queues towards clients, exit socket buffers), at the last memory check',
      registers: r,
    });
    this.exitConnections = new client.Gauge({ name: 'allium_exit_connections', help: 'TCP connections the exit holds open or is connecting', registers: r });
    this.exitPendingResolves = new client.Gauge({ name: 'allium_exit_pending_resolves', help: 'DNS lookups the exit has outstanding', registers: r });
    this.circuitsBuilt = new client.Counter({
      name: 'allium_circuits_created_total',
      help: 'Circuit hops created at this relay, by position',
      labelNames: ['role'],
      registers: r,
    });

    // Known label values start at 0.
    for (const kind of ['relay', 'client']) this.links.set({ kind }, 0);
    for (const direction of ['in', 'out']) {
      this.linkBytes.inc({ direction }, 0);
      this.gossipBytes.inc({ direction }, 0);
    }
    for (const result of HANDSHAKE_RESULTS) this.handshakes.inc({ result }, 0);
    for (const reason of DROP_REASONS) this.drops.inc({ reason }, 0);
    for (const result of ['found', 'missing', 'invalid']) this.fetches.inc({ result }, 0);
    for (const result of ['answered', 'unknown', 'unreachable', 'failed', 'refused']) this.forwards.inc({ result }, 0);
    for (const result of ['new', 'known', 'refused']) this.gossipDescriptors.inc({ result }, 0);
    for (const event of ['asked', 'retried', 'abandoned', 'dropped']) this.gossipPulls.inc({ event }, 0);
    for (const role of ['entry', 'middle', 'last']) this.circuitsBuilt.inc({ role }, 0);

    if (o.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
