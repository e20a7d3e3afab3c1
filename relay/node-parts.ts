/**
 * The circuit side of a relay node (relay/node.ts): the parts a node has when its links carry cells, made and plugged
 * together in one place. This is the wiring table of the relay — which handler answers which relay command, which
 * part gets which limit from the configuration — and nothing else: it starts no timer and keeps no state of its own.
 *
 *   memory       the out-of-memory handler (relay/memory-guard.ts), told of cells sent into congested links
 *   reactor      the circuit reactor (relay/circuits.ts), with its endpoint handlers, in this order:
 *     streams      last-hop streams (relay/streams.ts): BEGIN to the exit, STORE and FETCH to the content service
 *     rendezvous   introduction and rendezvous points (relay/rendezvous.ts)
 *     echo         capacity measurement by the authorities (relay/measurement.ts)
 *   exit         (relay/exit.ts) when the published exit policy accepts anything
 *   content      (relay/content.ts), its forwarder (relay/content-forward.ts) and the replicator (relay/replication.ts)
 *                when the node has a block store; the forwarder and the replicator share one-hop circuits to holders
 *   authority    reachability tests, measurements and votes (relay/authority.ts) when the relay is an authority
 */
import type { Logger } from 'pino';
import { crypto, type KeyPair } from '../crypto/index.js';
import type { IdentityKey } from '../crypto/keys.js';
import { DestroyReason } from '../protocol/cell.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';
import type { ReplayGuard } from '../protocol/onion.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import type { CircuitTable } from '../net/circuit.js';
import type { Link } from '../net/link.js';
import { createAuthority, type AuthorityParts } from './authority.js';
import type { BlockStore } from './block-store.js';
import { CircuitPaddingService } from './circuit-padding.js';
import { CircuitReactor } from './circuits.js';
import type { RelayConfig } from './config.js';
import { consensusPlacement } from './consensus-placement.js';
import { ContentService } from './content.js';
import { ContentForwarder } from './content-forward.js';
import { ExitService, type ExitNetwork } from './exit.js';
import { EchoService } from './measurement.js';
import { MemoryGuard } from './memory-guard.js';
import type { RelayMetrics } from './metrics.js';
import type { Overlay } from './overlay.js';
import { RendezvousService } from './rendezvous.js';
import { Replicator, replicationTransport } from './replication.js';
import { StreamsHandler } from './streams.js';

/** The parts of a node whose links carry cells. */
export interface CircuitParts {
  memory: MemoryGuard;
  reactor: CircuitReactor;
  streams: StreamsHandler;
  rendezvous: RendezvousService;
  echo: EchoService;
  /** Circuit padding machines at this hop (specs/padding.md). */
  padding: CircuitPaddingService;
  exit: ExitService | null;
  content: ContentService | null;
  replicator: Replicator | null;
  authority: AuthorityParts | null;
}

/** What the circuit parts use of the node that owns them. */
export interface CircuitPartsDeps {
  config: RelayConfig;
  identity: IdentityKey;
  /** The onion keys that may open an onion now (the ring rotates under the node's maintenance). */
  onionKeys: () => readonly KeyPair[];
  /** The onions' replay check, journaled (relay/node.ts). */
  replay: ReplayGuard;
  directory: DirectoryStore;
  overlay: Overlay;
  /** Fingerprints of the directory authorities (echo answers only them). */
  authorities: ReadonlySet<string>;
  /** Circuits the relay builds itself (replication, measurement), kept apart from those it carries. */
  ownCircuits: CircuitTable;
  /** The open links carrying cells (the out-of-memory handler weighs their queues). */
  links: ReadonlySet<Link>;
  store: BlockStore | null;
  /** The published exit policy lines (private ranges refused first). */
  exitPolicyLines: readonly string[];
  exitNetwork?: ExitNetwork | undefined;
  /** Where an authority keeps its history and shared-random state (null: in memory). */
  stateDir: string | null;
  dial: (url: string, identity: Uint8Array) => Promise<Link>;
  now: () => number;
  log: Logger;
  metrics: RelayMetrics;
}

export function createCircuitParts(d: CircuitPartsDeps): CircuitParts {
  const cfg = d.config;
  let streamsRef: StreamsHandler | null = null;
  let reactorRef: CircuitReactor | null = null;
  const memory = new MemoryGuard({
    get maxBytes() {
      return cfg.max_queue_bytes; // reloadable
    },
    links: () => d.links,
    circuits: () => streamsRef?.buffers() ?? [],
    destroy: (hop) => reactorRef?.destroy(hop, DestroyReason.RESOURCE_LIMIT),
    metrics: d.metrics,
    log: d.log,
  });
  const reactor = (reactorRef = new CircuitReactor({
    identity: d.identity,
    onionKeys: d.onionKeys,
    replay: d.replay,
    linkTo: (id) => d.overlay.linkTo(id),
    metrics: d.metrics,
    log: d.log,
    now: d.now,
    originated: (link, id) => d.ownCircuits.has(link, id),
    maxCircuitsPerBlock: cfg.max_circuits_per_block,
    maxCircuitsPerRelayBlock: cfg.max_circuits_per_relay_block,
    createsPerSecondPerLink: cfg.creates_per_second_per_link,
    createsPerSecondPerBlock: cfg.creates_per_second_per_block,
    createsPerSecondPerRelayBlock: cfg.creates_per_second_per_relay_block,
    onCongestedCells: (n) => memory.noteCells(n),
  }));
  const streams = (streamsRef = new StreamsHandler(reactor, d.metrics));
  const rendezvous = new RendezvousService(reactor, d.metrics, d.now);
  const echo = new EchoService(reactor, () => d.authorities);
  reactor.addHandler(streams);
  reactor.addHandler(rendezvous);
  const padding = new CircuitPaddingService(reactor, {
    enabled: () => cfg.circuit_padding,
    budgetBytesPerSecond: cfg.circuit_padding_budget ?? cfg.bandwidth_rate / 20,
    random: () => crypto().uniform(),
    now: d.now,
    metrics: d.metrics,
  });
  reactor.addHandler(echo);
  reactor.addHandler(padding);
  const parts: CircuitParts = { memory, reactor, streams, rendezvous, echo, padding, exit: null, content: null, replicator: null, authority: null };
  const policy = parseExitPolicy(d.exitPolicyLines);
  if (isExitPolicy(policy)) {
    const exit = (parts.exit = new ExitService({
      policy,
      metrics: d.metrics,
      log: d.log,
      dnsServers: cfg.exit_dns_servers,
      resolveTimeoutMs: cfg.timing.exit_resolve_timeout,
      maxPendingResolves: cfg.exit_max_pending_resolves,
      maxPendingResolvesPerCircuit: cfg.exit_max_pending_resolves_per_circuit,
      maxStreamsPerCircuit: cfg.exit_max_streams_per_circuit,
      maxStreamsPerClientBlock: cfg.exit_max_streams_per_client_block,
      now: d.now,
      ...(d.exitNetwork ? { network: d.exitNetwork } : {}),
    }));
    streams.register(RelayCommand.BEGIN, exit.open);
    streams.attach(exit);
  }
  if (d.store) {
    const transport = replicationTransport((id) => d.overlay.linkTo(id), d.ownCircuits);
    const forwarder = new ContentForwarder({
      directory: d.directory,
      self: d.identity.fingerprint,
      circuitTo: transport.circuitTo,
      metrics: d.metrics,
      log: d.log,
    });
    const content = (parts.content = new ContentService(d.store, d.metrics, d.log, undefined, { forwarder }));
    streams.register(RelayCommand.STORE, content.onStore);
    streams.register(RelayCommand.FETCH, content.onFetch);
    parts.replicator = new Replicator({
      store: d.store,
      directory: d.directory,
      identity: d.identity,
      k: cfg.replication_factor,
      ...transport,
      repairIntervalMs: cfg.timing.repair_interval,
      placement: () => consensusPlacement(d.overlay.consensus.current, d.now()),
      metrics: d.metrics,
      log: d.log,
      now: d.now,
    });
  }
  if (cfg.authority) {
    parts.authority = createAuthority({
      config: cfg,
      stateDir: d.stateDir,
      identity: d.identity,
      authorities: d.authorities,
      directory: d.directory,
      overlay: d.overlay,
      dial: d.dial,
      circuits: d.ownCircuits,
      now: d.now,
      log: d.log,
    });
  }
  return parts;
}
