/**
 * The Allium client library (docs/developer-guide.md): bootstrap, a cross-checked directory, persistent guards,
 * circuits built in one round trip with a learned timeout and retries on other relays, a small pool of pre-built
 * circuits, and streams with isolation. Runs in Node and in browsers: sockets and storage are injected.
 *
 * Bootstrap tries entries in stages (specs/directory.md §6.4): the bootstrap lines, relays of the cached directory,
 * the configured bridges, then relay addresses learned earlier (expired cached descriptors), stopping at the first
 * stage that answers. A client that got in through bridges — or that is told to use only bridges, the default when
 * it has any — is in *bridge mode*: every circuit starts at a bridge, the directory comes through bridges, and no
 * public relay is ever dialed directly.
 *
 * Why one file of ~750 lines: AlliumClient is one state machine (new → starting → running → stopped) whose bootstrap,
 * directory refreshes, circuit builds and stream opens share its links, dials in flight, guards, failed-relay
 * exclusions and shutdown; cut apart, each piece would need all of that state passed back in. What has no state of
 * its own lives beside it: bootstrap lines (bootstrap.ts), paths (path.ts), the directory and its fetches
 * (directory.ts, directory-fetch.ts, cross-check.ts), guards (guards.ts), the build timeout (build-timeout.ts).
 */
import { crypto } from '../crypto/index.js';
import { PaddingMachineId } from '../protocol/circuit-padding.js';
import { fingerprintOf } from '../crypto/keys.js';
import { verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { AbortedError, AlliumError, isAlliumError, throwIfAborted } from '../protocol/errors.js';
import { normalizeHost } from '../protocol/hostname.js';
import { linkPaddingOf, type LinkPaddingMode } from '../protocol/link-padding.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { encodeBegin, EndReason } from '../protocol/stream-messages.js';
import { explainDialFailure, openLink, type SocketFactory } from '../net/dial.js';
import { Emitter } from '../net/emitter.js';
import type { Link, LinkOptions } from '../net/link.js';
import type { MuxStream } from '../net/stream-mux.js';
import { settleWithin, Shutdown, signalOption, within, type AbortOptions } from '../net/abort.js';
import { BuildTimeout } from './build-timeout.js';
import { buildCircuit, CircuitTable, type ClientCircuit } from './circuit.js';
import {
  ClientDirectory,
  fetchBridgeDescriptor,
  fetchFromRelay,
  type ConsensusConflict,
  type DirectoryCache,
  type RefreshResult,
  type ViewConflict,
} from './directory.js';
import { GuardSet, N_PRIMARY, type GuardStorage, type PathBiasEvent } from './guards.js';
import { VANGUARD_MIN_RELAYS, VanguardSet, type VanguardStorage } from './vanguards.js';
import type { PathBiasReaction } from './path-bias.js';
import { CLIENT_CREATES_PER_SECOND, CreatePacer } from './create-pacer.js';
import { DirectoryView } from '../protocol/view.js';
import { allowsExit, choosePath, choosePathWithFallbacks, compatible, networkOf, weightedPick } from './path.js';
import { authoritiesFor, NoEntryError, parseBootstrap, parseBridgeLine, type BootstrapLine, type BridgeLine } from './bootstrap.js';

export interface ClientStorage {
  directory?: DirectoryCache;
  guards?: GuardStorage;
  /** The second-layer guards of endpoint circuits (specs/path.md §3.2), kept beside the guards. */
  vanguards?: VanguardStorage;
}

/**
 * Client options for a network whose relays all run on one host under relay/config.ts's SINGLE_HOST_NETWORK limits
 * (tests, benchmarks, the local devnet): relays share an address block, and allow 10,000 CREATEs a second per link.
 */
export const SINGLE_HOST_CLIENT = { enforceDistinctSubnets: false, createsPerSecond: 10_000 } as const satisfies Partial<ClientOptions>;

export interface ClientOptions {
  /**
   * "ws://host:port/path FINGERPRINT" lines of relays to bootstrap through; a relay under directory authorities
   * prints "… FINGERPRINT authorities=A1+A2+…" (specs/directory.md §6.7), which also sets `authorities` when unset,
   * provided every line names the same set (a mix of lines with and without authorities is ERR_CONFIG then). Whoever
   * supplies these lines chooses the client's directory: take them from the network's operators.
   */
  bootstrap: readonly string[];
  socketFactory: SocketFactory;
  storage?: ClientStorage;
  /** Hops per circuit, 1..8 (default 3). */
  hops?: number;
  /** Keep relays of one /16 apart (default true; test networks on one address turn it off). */
  enforceDistinctSubnets?: boolean;
  /** Pre-built circuits kept ready (default 2). */
  poolSize?: number;
  /** Relays asked for the directory and cross-checked (default 3). */
  directorySources?: number;
  /** Milliseconds a circuit takes new streams after its first one (default 600,000: ten minutes). */
  circuitDirtinessMs?: number;
  linkOptions?: LinkOptions;
  /**
   * Link padding on every link the client opens (specs/link.md §4.4): 'auto' (default) pads both directions of an
   * idle link with a frame every 1.5–9.5 s, 'reduced' every 9–14 s (metered links), 'off' none.
   */
  linkPadding?: LinkPaddingMode;
  /**
   * Circuit padding (specs/padding.md): every circuit of three hops or more negotiates a machine with its middle hop
   * (default true: SLOTS, which adds padding and never delays a real cell). 'schedule' negotiates SCHEDULE instead
   * (padding.md §4.4): real cells are held to a schedule for a circuit's first seconds, so that whatever it carries —
   * streams, content, introductions, rendezvous, messages — those seconds look alike at the guard, at a cost in
   * latency stated in docs/shape-audit.md (opt-in until that cost is within issue-level latency goals). false: none.
   */
  circuitPadding?: boolean | 'schedule';
  /**
   * Which machine circuit padding negotiates, and whether it sends the circuit's round trip (so the machine's first
   * slots scale with it, padding.md §4.4). Defaults: as circuitPadding says. Only for measuring what a machine
   * costs (npm run bench:shape-cost); never set it for real use.
   */
  circuitPaddingMachine?: { machine: PaddingMachineId; rtt: boolean };
  /**
   * Vanguards for endpoint circuits (specs/path.md §3.2; default true). false builds them as ordinary circuits, which
   * only measures what the defence costs (npm run bench:messaging -- --defences-off-too); never set it for real use.
   */
  endpointVanguards?: boolean;
  /** Pin entry relays by fingerprint (instead of sampled guards), as Tor's EntryNodes. */
  entryRelays?: readonly string[];
  /**
   * Fingerprints of directory authorities whose signed consensus the client requires. Unset or empty: those the
   * bootstrap lines name, else none. A bootstrap line naming another set, or two naming different sets, is ERR_CONFIG
   * (specs/directory.md §6.7). `AlliumClient.authorities` is the set in use.
   */
  authorities?: readonly string[];
  /**
   * What to do about a guard whose circuits fail far too often (specs/path.md §3.1): "avoid" (the default) stops
   * using it; "warn" only reports it (`client:path-bias`).
   */
  pathBias?: PathBiasReaction;
  /** Bridge lines ("bridge wss://host/path FINGERPRINT secret=SECRET") of unlisted relays to enter through. */
  bridges?: readonly string[];
  /**
   * 'always' (the default when bridges are given): enter only through bridges; no public relay is ever contacted
   * directly. 'fallback': try the bootstrap relays and the cached directory first, the bridges only when none of
   * those answers (then relay addresses learned earlier).
   */
  useBridges?: 'always' | 'fallback';
  /**
   * CREATEs a second this client sends on one entry link, with ten seconds' worth at once (specs/path.md §3.3):
   * builds beyond it wait rather than meet the entry's per-link limit. Default CLIENT_CREATES_PER_SECOND (9), under
   * the relays' default of 10; a network whose relays allow more (a single-host test network) may set more.
   */
  createsPerSecond?: number;
  now?: () => number;
}

/** A bootstrap stage (client:bootstrap): what was tried, and how many answered. */
export interface BootstrapStage {
  readonly stage: 'bootstrap' | 'cache' | 'bridges' | 'learned' | 'widen';
  readonly tried: number;
  readonly reached: number;
}

export type ClientEvents = {
  'client:ready': [];
  /** A guard's circuits fail far more often than the network explains (specs/path.md §3.1). */
  'client:path-bias': [PathBiasEvent];
  /** Directory sources disagree (without authorities), or two consensuses were signed for one time (§6.5, §7.3). */
  'client:directory-conflict': [{ divergent: readonly string[]; conflict: ViewConflict | null; consensusConflict: ConsensusConflict | null }];
  'client:bootstrap': [BootstrapStage];
  'client:circuit': [ClientCircuit];
  'client:progress': [string];
};

export interface ConnectOptions extends AbortOptions {
  /** Streams with different isolation keys never share a circuit (SOCKS username:password, listener port). */
  isolation?: string;
}

/** What newCircuit() builds (every field optional; see newCircuit). */
export interface NewCircuitOptions extends AbortOptions {
  /** An exit that allows this port (null or absent: any last hop). */
  exitPort?: number | null;
  /** An exit whose policy allows this address. */
  exitAddress?: string;
  /** Forces the last hop (a content holder, an introduction or rendezvous point). */
  last?: Descriptor;
  /** Hops for this circuit (default: ClientOptions.hops). */
  hops?: number;
  /**
   * An endpoint circuit (specs/path.md §3.2): the second hop is one of the client's vanguards and a fresh middle
   * follows it, so the circuit has one hop more than `hops`. Endpoints (hidden services, messaging identities) set
   * it on every circuit they build in that role.
   */
  vanguards?: boolean;
}

/** Opens streams to `*.allium` addresses for AlliumClient.connect (a Messenger registers one). */
export type AddressConnector = (address: string, port: number, options?: AbortOptions) => Promise<MuxStream>;

/** A mix relay as message mode uses it (specs/mix.md §8.1): its identity, and its descriptor's onion key as mix key. */
export interface MixRelay {
  readonly identity: Uint8Array;
  readonly mixKey: Uint8Array;
}

/** The client's mix gateway (specs/mix.md §8.1) and the link it keeps to it. */
export interface MixGatewayLink {
  readonly identity: Uint8Array;
  readonly link: Link;
}

/**
 * What ContentClient, Messenger and the mailboxes use of a client: its directory and circuits to a chosen last hop.
 * AlliumClient is one; a test can give a stand-in.
 */
export interface CircuitSource {
  readonly directory: Pick<ClientDirectory, 'view' | 'get'>;
  newCircuit(options?: NewCircuitOptions): Promise<ClientCircuit>;
}

/** Error thrown when the exit ended a stream before it connected; `reason` is the END reason. */
export class StreamError extends AlliumError {
  constructor(readonly reason: EndReason) {
    super(reason === EndReason.EXIT_POLICY ? 'ERR_EXIT_POLICY' : 'ERR_STREAM_FAILED', `stream refused by the exit (reason ${reason})`);
    this.name = 'StreamError';
  }
}

/** Entries dialed at once while bootstrapping. */
const DIAL_CONCURRENCY = 4;
/** A relay that failed a build is avoided this long (path.md §5, "failed-relay exclusion" in specs/limits.md). */
const FAILED_RELAY_EXCLUSION_MS = 60_000;
/** Cached relays, and learned addresses, tried at most per bootstrap. */
const MAX_STAGE_TRIES = 12;
/** stop() waits this long for relays to answer the closing handshake of its links, then drops the connections. */
const LINK_CLOSE_GRACE_MS = 2_000;
/** A stream the exit has not connected after this long is reset (ERR_TIMEOUT). */
const STREAM_CONNECT_TIMEOUT_MS = 60_000;

function shuffle<T>(list: T[]): T[] {
  return crypto().shuffle(list);
}

export class AlliumClient extends Emitter<ClientEvents> {
  readonly directory: ClientDirectory;
  readonly guards: GuardSet;
  /** Second-layer guards of endpoint circuits (specs/path.md §3.2). */
  readonly vanguards: VanguardSet;
  readonly buildTimeout = new BuildTimeout();
  private readonly table = new CircuitTable();
  private readonly links = new Map<string, Link>();
  /** The CREATE pacer of each open link a circuit was built on (specs/path.md §3.3); gone with its link. */
  private readonly pacers = new WeakMap<Link, CreatePacer>();
  private readonly dialing = new Map<string, Promise<Link>>();
  private readonly circuits = new Set<ClientCircuit>();
  private readonly pool: ClientCircuit[] = [];
  private readonly bootstrap: BootstrapLine[];
  private readonly bridges: BridgeLine[];
  private readonly bridgeByFp = new Map<string, BridgeLine>();
  /** Verified bridge descriptors (bridge mode), by fingerprint. */
  private readonly bridgeDescriptors = new Map<string, Descriptor>();
  private bridgeModeOn = false;
  private readonly hops: number;
  private readonly now: () => number;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private filling = false;
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  /** Aborted by stop(): every dial, build, refresh and stream open the client started is tied to it. */
  private readonly shutdown = new Shutdown();
  /** Work in flight that stop() waits for (each settles soon after the shutdown signal fires). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Every link this client opened whose socket has not closed yet (stop() waits for them). */
  private readonly sockets = new Set<Link>();
  /** Relays that failed a build lately (fingerprint → when), avoided for FAILED_RELAY_EXCLUSION_MS (path.md §5). */
  private readonly failed = new Map<string, number>();

  /** The directory authorities whose consensus the client requires (configured, or named by its bootstrap lines). */
  readonly authorities: readonly string[];

  constructor(private readonly o: ClientOptions) {
    super();
    this.bootstrap = o.bootstrap.map(parseBootstrap);
    this.authorities = authoritiesFor(this.bootstrap, o.authorities);
    this.bridges = (o.bridges ?? []).map(parseBridgeLine);
    for (const b of this.bridges) this.bridgeByFp.set(fingerprintOf(b.identity), b);
    this.hops = o.hops ?? 3;
    // A bad rate fails here, not at the first build (create-pacer.ts checks it again).
    if (o.createsPerSecond !== undefined) new CreatePacer(o.createsPerSecond).close();
    this.now = o.now ?? Date.now;
    this.directory = new ClientDirectory(o.storage?.directory, new Set(this.authorities));
    this.vanguards = new VanguardSet(o.storage?.vanguards ?? null, undefined, { enforceDistinctSubnets: o.enforceDistinctSubnets ?? true });
    this.guards = new GuardSet(o.storage?.guards ?? null, undefined, {
      pathBiasReaction: o.pathBias ?? 'avoid',
      onPathBias: (e) => {
        this.emit('client:path-bias', e);
        this.emit(
          'client:progress',
          `guard ${e.fingerprint.slice(0, 8)}: ${e.successes} of ${e.attempts} circuits built (path bias: ${e.level})${e.disabled ? '; no longer used' : ''}`,
        );
      },
    });
  }

  get openCircuits(): number {
    return this.circuits.size;
  }

  /** True once the client entered through bridges: every circuit starts at a bridge (see the file comment). */
  get bridgeMode(): boolean {
    return this.bridgeModeOn;
  }

  /**
   * Connects to an entry (the stages above), fetches and cross-checks the directory, picks guards, fills the pool.
   * Rejects with NoEntryError (ERR_UNREACHABLE) when no stage answers, ERR_DIRECTORY when the directory cannot be
   * established, ERR_ABORTED. After a failure start() may be called again.
   */
  start(options: AbortOptions = {}): Promise<void> {
    if (this.state !== 'new') return Promise.resolve();
    this.state = 'starting';
    return this.run(options, async (signal) => {
      try {
        await this.startInner(signal);
      } catch (e) {
        for (const l of this.links.values()) l.close();
        this.links.clear();
        this.bridgeModeOn = false;
        if (this.state === 'starting') this.state = 'new';
        throw e;
      }
    });
  }

  /**
   * Runs `f` under a signal that fires when the caller's does or stop() runs, and keeps the call in the set stop()
   * waits for: the promise returned is the caller's own, so it has settled by the time stop() resolves.
   */
  private run<T>(options: AbortOptions, f: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const p = this.shutdown.run(options, f);
    this.inFlight.add(p);
    const forget = (): void => void this.inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async startInner(signal: AbortSignal): Promise<void> {
    await this.guards.load();
    await this.vanguards.load();
    const cached = await this.directory.loadCache(this.now());
    if (cached) this.emit('client:progress', `loaded ${cached} relays from the cached directory`);
    const want = this.o.directorySources ?? 3;
    const onlyBridges = this.bridges.length > 0 && (this.o.useBridges ?? 'always') === 'always';
    type Entry = { url: string; identity: Uint8Array };
    const stages: { stage: BootstrapStage['stage']; label: (n: number) => string; entries: Entry[] }[] = [];
    const s = (n: number): string => (n === 1 ? '' : 'es');
    const bridgeStage = { stage: 'bridges' as const, label: (n: number) => `bridge${n === 1 ? '' : 's'}`, entries: this.bridges };
    if (onlyBridges) stages.push(bridgeStage);
    else {
      const seen = new Set(this.bootstrap.map((b) => fingerprintOf(b.identity)));
      const fromCache = shuffle(this.directory.all().filter((d) => !seen.has(d.fingerprint))).slice(0, MAX_STAGE_TRIES);
      stages.push({ stage: 'bootstrap', label: (n) => `bootstrap relay${n === 1 ? '' : 's'}`, entries: this.bootstrap });
      stages.push({
        stage: 'cache',
        label: (n) => `relay${n === 1 ? '' : 's'} from the cached directory`,
        entries: fromCache.map((d) => ({ url: d.addr, identity: d.id })),
      });
      if (this.bridges.length) stages.push(bridgeStage);
      stages.push({
        stage: 'learned',
        label: (n) => `relay address${s(n)} learned earlier`,
        entries: this.directory.learnedAddresses().slice(0, MAX_STAGE_TRIES),
      });
    }
    const sources: Link[] = [];
    const triedRelays = new Set<string>();
    const triedBridges = new Set<string>();
    let lastError: unknown = undefined;
    for (const st of stages) {
      // Bridges and learned addresses are fallbacks: only when no public relay answered.
      if ((st.stage === 'bridges' || st.stage === 'learned') && sources.length > 0) break;
      if (st.entries.length === 0) continue;
      this.emit(
        'client:progress',
        `trying ${st.entries.length} ${st.label(st.entries.length)}${sources.length === 0 && st !== stages[0] ? ' (nothing reachable so far)' : ''}`,
      );
      const isBridge = st.stage === 'bridges';
      for (const e of st.entries) (isBridge ? triedBridges : triedRelays).add(`${e.url} ${fingerprintOf(e.identity)}`);
      // Say which configured entry failed and why; entries from the cache or learned addresses are many and routine.
      const report =
        st.stage === 'bootstrap'
          ? (e: Entry, err: unknown) =>
              this.emit('client:progress', `bootstrap relay ${e.url} (${fingerprintOf(e.identity).slice(0, 8)}): ${explainDialFailure(err)}`)
          : st.stage === 'bridges'
            ? (e: Entry, err: unknown) => this.emit('client:progress', `bridge ${fingerprintOf(e.identity).slice(0, 8)}: ${explainDialFailure(err)}`)
            : undefined;
      const r = await this.reach(st.entries, want - sources.length, signal, report);
      if (r.lastError !== undefined) lastError = r.lastError;
      sources.push(...r.links);
      this.emit('client:bootstrap', { stage: st.stage, tried: st.entries.length, reached: r.links.length });
      this.emit('client:progress', `${st.label(st.entries.length)}: ${r.links.length} of ${st.entries.length} reachable`);
      if (isBridge && r.links.length > 0) {
        this.bridgeModeOn = true;
        break;
      }
      if (sources.length >= want) break;
    }
    if (sources.length === 0) throw new NoEntryError(triedRelays.size, triedBridges.size, lastError);
    if (!this.bridgeModeOn && sources.length < want) sources.push(...(await this.widenSources(sources, want, signal)));
    if (this.bridgeModeOn) {
      await this.refreshBridgeDescriptors(sources, signal);
      if (this.bridgeDescriptors.size === 0) throw new AlliumError('ERR_DIRECTORY', 'no bridge gave a valid bridge descriptor');
      this.emit('client:progress', `bridge mode: entering through ${this.bridgeDescriptors.size} bridge${this.bridgeDescriptors.size === 1 ? '' : 's'}`);
    }
    const r = await this.checkedRefresh(sources, signal);
    this.emit(
      'client:progress',
      r.sources === 1
        ? `directory: ${r.accepted.length} relays from 1 source only: not cross-checked (no other relay answered)`
        : `directory: ${r.accepted.length} relays from ${r.sources} sources (${r.rejected.length} not confirmed by a majority)`,
    );
    if (r.consensus) {
      const c = r.consensus;
      this.emit(
        'client:progress',
        `consensus of ${c.count} relays signed by ${c.signers.length} of ${this.authorities.length} authorities, valid until ${new Date(c.validUntil).toISOString()}; ${this.directory.all().length} usable`,
      );
    }
    if (!this.bridgeModeOn) await this.guards.refresh(this.guardView(), this.now());
    await this.refreshVanguards();
    throwIfAborted(signal); // stop() ran meanwhile
    this.state = 'running';
    this.refreshTimer = setInterval(() => void this.refreshDirectory(), 10 * 60_000);
    (this.refreshTimer as { unref?: () => void }).unref?.();
    this.emit('client:ready');
    this.fillPool();
  }

  /**
   * Dials `entries` (bridges by their lines) with a few in flight at once, until `need` links are open or every
   * entry was tried. Links beyond `need` that open anyway are kept too.
   */
  private async reach(
    entries: readonly { url: string; identity: Uint8Array }[],
    need: number,
    signal?: AbortSignal,
    report?: (entry: { url: string; identity: Uint8Array }, err: unknown) => void,
  ): Promise<{ links: Link[]; lastError: unknown }> {
    const links: Link[] = [];
    let lastError: unknown = undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length && links.length < need) {
        const e = entries[next++]!;
        throwIfAborted(signal);
        try {
          const link = await this.linkTo(e.identity, e.url, signal);
          if (!links.includes(link)) links.push(link);
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          lastError = err;
          report?.(e, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DIAL_CONCURRENCY, entries.length) }, worker));
    return { links, lastError };
  }

  /**
   * The `widen` stage (specs/directory.md §6.4): with fewer than `directorySources` sources open — one bootstrap
   * line and no cache, typically — the client asks the sources it has which relays exist, dials others of them (the
   * link handshake proves each one's identity), and fetches the directory from all before it trusts any of it. A
   * lying first source can still list only its own relays, which then agree; an honest one gains a cross-check.
   */
  private async widenSources(sources: readonly Link[], want: number, signal?: AbortSignal): Promise<Link[]> {
    const have = new Set(sources.map((l) => (l.peer?.identity ? fingerprintOf(l.peer.identity) : '')));
    const listed = await Promise.allSettled(sources.map((l) => fetchFromRelay(l, 0, signalOption(signal))));
    throwIfAborted(signal);
    const now = this.now();
    const candidates = new Map<string, { url: string; identity: Uint8Array }>();
    for (const r of listed) {
      if (r.status !== 'fulfilled') continue;
      for (const raw of r.value.raws) {
        try {
          const d = verifyDescriptor(raw, now);
          if (!have.has(d.fingerprint)) candidates.set(d.fingerprint, { url: d.addr, identity: d.id });
        } catch {
          /* invalid or expired: not a source */
        }
      }
    }
    const entries = shuffle([...candidates.values()]).slice(0, MAX_STAGE_TRIES);
    if (entries.length === 0) return [];
    this.emit('client:progress', `widening: asking ${entries.length} more of the relays listed for the directory, to cross-check it`);
    const r = await this.reach(entries, want - sources.length, signal);
    this.emit('client:bootstrap', { stage: 'widen', tried: entries.length, reached: r.links.length });
    return r.links;
  }

  /** Bridge mode: asks each bridge link for its bridge's descriptor (kept while valid). */
  private async refreshBridgeDescriptors(links: readonly Link[], signal?: AbortSignal): Promise<void> {
    await Promise.all(
      links.map(async (link) => {
        const id = link.peer?.identity;
        if (!id || !this.bridgeByFp.has(fingerprintOf(id))) return;
        try {
          const d = await fetchBridgeDescriptor(link, id, this.now, signalOption(signal));
          this.bridgeDescriptors.set(d.fingerprint, d);
        } catch (e) {
          if (e instanceof AbortedError) throw e;
          this.emit('client:progress', `bridge ${fingerprintOf(id).slice(0, 8)}: no valid bridge descriptor (${isAlliumError(e) ? e.code : 'error'})`);
        }
      }),
    );
    const now = this.now();
    for (const [fp, d] of this.bridgeDescriptors) if (d.exp <= now) this.bridgeDescriptors.delete(fp);
  }

  /** Bridge mode: open links to the bridges (up to directorySources), for refreshes. */
  private async bridgeLinks(signal?: AbortSignal): Promise<Link[]> {
    const r = await this.reach(this.bridges, this.o.directorySources ?? 3, signal);
    return r.links;
  }

  /**
   * Re-fetches the directory from fresh, diverse sources (specs/directory.md §6.3) — relays drawn by weight from
   * the directory's sources (the Dir flag with a consensus), one per network, not the guards — or in bridge mode
   * from the bridges. Links opened only for this are closed afterwards.
   */
  refreshDirectory(options: AbortOptions = {}): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    return this.run(options, (signal) => this.refreshWith(signal));
  }

  private async refreshWith(signal: AbortSignal): Promise<void> {
    const opened: Link[] = [];
    try {
      const links = this.bridgeModeOn ? await this.bridgeLinks(signal) : await this.freshSources(this.o.directorySources ?? 3, new Set(), opened, signal);
      if (links.length === 0) return;
      if (this.bridgeModeOn) await this.refreshBridgeDescriptors(links, signal);
      await this.checkedRefresh(links, signal, opened);
      if (!this.bridgeModeOn) await this.guards.refresh(this.guardView(), this.now());
      await this.refreshVanguards();
    } catch {
      /* keep the current view */
    } finally {
      this.closeSourceLinks(opened);
    }
  }

  /** The entry relays circuits start at: the pinned relays, the bridges, or the usable guards. */
  private entries(now: number): Descriptor[] {
    if (this.bridgeModeOn) return [...this.bridgeDescriptors.values()];
    const pinned = this.o.entryRelays?.map((f) => f.toLowerCase());
    return pinned ? this.directory.all().filter((d) => pinned.includes(d.fingerprint)) : this.guards.usable(this.guardView(), now);
  }

  /** Updates the vanguards (specs/path.md §3.2) against the directory; returns them. */
  private refreshVanguards(): Promise<Descriptor[]> {
    const now = this.now();
    // Apart from the primary entries only: a client pinned to every relay (entryRelays) still has vanguards.
    return this.vanguards.refresh(this.guardView(), now, this.entries(now).slice(0, N_PRIMARY));
  }

  /** Flags and weights for guard sampling (protocol/view.ts). */
  private guardView(): { relays: readonly Descriptor[]; weights: ClientDirectory['view'] } {
    return { relays: this.directory.all(), weights: this.directory.view };
  }

  /**
   * A refresh, and when the sources disagree (without authorities: some source's view differs markedly from the
   * majority's), a second one with up to three more fresh sources drawn from everything the first returned, so
   * that two colluding sources of three are outvoted (specs/directory.md §6.5). Reports the conflict.
   */
  private async checkedRefresh(links: readonly Link[], signal?: AbortSignal, opened: Link[] = []): Promise<RefreshResult> {
    let r = await this.directory.refresh(links, this.now, signalOption(signal));
    if (r.divergent.length > 0 && !this.bridgeModeOn) {
      // Never one already asked, including the sources that disagreed.
      const asked = new Set(links.map((l) => (l.peer?.identity ? fingerprintOf(l.peer.identity) : '')));
      const more = await this.freshSources(3, asked, opened, signal, [...this.directory.store.all(), ...r.seen]);
      if (more.length > 0) r = await this.directory.refresh([...links, ...more], this.now, signalOption(signal));
    }
    if (r.divergent.length > 0 || r.conflict || r.consensusConflict) {
      this.emit('client:directory-conflict', { divergent: r.divergent, conflict: r.conflict, consensusConflict: r.consensusConflict });
      this.emit(
        'client:progress',
        `directory sources disagree: ${r.divergent.length} of ${r.sources} gave a view unlike the majority's${r.consensusConflict ? '; two consensuses were signed for one time' : ''}`,
      );
    }
    return r;
  }

  /**
   * Up to `n` directory sources (specs/directory.md §6.3): relays of `pool` (default: the usable directory) eligible
   * as sources, drawn by weight one network at a time, never a guard nor one in `skip`; dialed unless a link is open.
   * Newly opened links are appended to `opened`.
   */
  private async freshSources(n: number, skip: ReadonlySet<string>, opened: Link[], signal?: AbortSignal, pool?: readonly Descriptor[]): Promise<Link[]> {
    const view = this.directory.view;
    const guards = new Set(this.guards.all.map((g) => g.fingerprint));
    const seen = new Set<string>();
    let candidates = (pool ?? this.directory.all()).filter((d) => {
      if (seen.has(d.fingerprint)) return false;
      seen.add(d.fingerprint);
      return !skip.has(d.fingerprint) && !guards.has(d.fingerprint) && (pool !== undefined || view.dirEligible(d));
    });
    const out: Link[] = [];
    const subnets = this.o.enforceDistinctSubnets ?? true;
    // Drawn by weight: the consensus's, or claims capped as without authorities (a made-up claim buys nothing).
    const weights = pool ? new DirectoryView(pool, null) : view;
    while (out.length < n && candidates.length > 0) {
      const d = weightedPick(candidates, () => crypto().uniform(), 'middle', weights);
      if (!d) break;
      candidates = candidates.filter((x) => x !== d && (!subnets || networkOf(x) !== networkOf(d)));
      const wasOpen = this.links.get(d.fingerprint)?.isOpen ?? false;
      try {
        const link = await this.linkTo(d.id, d.addr, signal);
        out.push(link);
        if (!wasOpen) opened.push(link);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
      }
    }
    return out;
  }

  /** Closes links opened only to ask for the directory, unless a circuit now starts there. */
  private closeSourceLinks(opened: readonly Link[]): void {
    const inUse = new Set([...this.circuits].map((c) => c.path[0]?.fingerprint));
    for (const l of opened) {
      const fp = l.peer?.identity ? fingerprintOf(l.peer.identity) : '';
      if (!inUse.has(fp) && !this.guards.all.some((g) => g.fingerprint === fp)) l.close();
    }
  }

  /** Pads a new link both ways (specs/link.md §4.4): our direction here, the relay's on our `padding` request. */
  private startPadding(link: Link): void {
    const p = linkPaddingOf(this.o.linkPadding ?? 'auto');
    if (!p) return;
    try {
      link.sendControl({ t: 'padding', lo: p.lo, hi: p.hi });
    } catch {
      return; // closed already
    }
    link.setPadding(p);
  }

  /**
   * An open link to a relay, dialing it if needed. A bridge is always dialed at its bridge line's address with its
   * secret; in bridge mode nothing else is dialed at all.
   */
  private linkTo(identity: Uint8Array, url: string, signal?: AbortSignal): Promise<Link> {
    const fp = fingerprintOf(identity);
    const have = this.links.get(fp);
    if (have?.isOpen) return Promise.resolve(have);
    const inFlight = this.dialing.get(fp);
    if (inFlight) return inFlight;
    const bridge = this.bridgeByFp.get(fp);
    if (this.bridgeModeOn && !bridge) return Promise.reject(new AlliumError('ERR_INTERNAL', 'bridge mode: refusing to dial a public relay directly'));
    const opts: LinkOptions & AbortOptions = { ...this.o.linkOptions, ...signalOption(signal) };
    const setup = bridge ? { role: 'initiator' as const, responder: identity, psk: bridge.secret } : { role: 'initiator' as const, responder: identity };
    const p = openLink(this.o.socketFactory, bridge ? bridge.url : url, setup, opts).then(
      (link) => {
        this.dialing.delete(fp);
        this.sockets.add(link);
        void link.socketClosed.then(() => this.sockets.delete(link));
        if (this.state === 'stopped') {
          // stop() ran while this dial was in flight: never keep a link past stop().
          link.close();
          throw new AbortedError('client stopped');
        }
        this.links.set(fp, link);
        this.table.attach(link);
        this.startPadding(link);
        link.once('link:close', () => {
          if (this.links.get(fp) === link) this.links.delete(fp);
        });
        return link;
      },
      (e: unknown) => {
        this.dialing.delete(fp);
        throw e;
      },
    );
    this.dialing.set(fp, p);
    return p;
  }

  /**
   * Builds a circuit. `exitPort` selects an exit that allows the port (null: any last hop); `last` forces the last
   * hop. Retries up to 3 times on other relays; each try gets the learned build timeout.
   */
  newCircuit(options: NewCircuitOptions = {}): Promise<ClientCircuit> {
    if (this.state !== 'running') return Promise.reject(new AbortedError('client is not running'));
    return this.run(options, (signal) => this.build(options, signal));
  }

  /** newCircuit() under `signal` (the caller's and the shutdown signal). */
  private async build(options: NewCircuitOptions, signal: AbortSignal): Promise<ClientCircuit> {
    let lastErr: unknown = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      throwIfAborted(signal);
      if (this.state !== 'running') throw new AbortedError('client stopped');
      const now = this.now();
      // Exclusions end after FAILED_RELAY_EXCLUSION_MS, and so do their entries.
      for (const [fp, t] of this.failed) if (now - t >= FAILED_RELAY_EXCLUSION_MS) this.failed.delete(fp);
      const exclude = new Set(this.failed.keys());
      let guards: Descriptor[];
      let hops = options.hops ?? this.hops;
      if (this.bridgeModeOn) {
        guards = await this.usableBridges(exclude, signal);
        for (const g of guards) exclude.delete(g.fingerprint);
        hops = Math.max(2, hops); // the bridge, then at least the last hop: never a public relay first
      } else guards = this.entries(now);
      const pathOptions: Parameters<typeof choosePath>[1] & { exclude: Set<string> } = {
        hops,
        exitPort: options.exitPort === undefined ? null : options.exitPort,
        guards,
        enforceDistinctSubnets: this.o.enforceDistinctSubnets ?? true,
        exclude,
        weights: this.directory.view,
      };
      if (options.exitAddress) pathOptions.exitAddress = options.exitAddress;
      if (options.last) pathOptions.last = options.last;
      if (options.vanguards && (this.o.endpointVanguards ?? true) && this.directory.all().length >= VANGUARD_MIN_RELAYS) {
        // An endpoint circuit: its second hop from the vanguards, refreshed first when one expired (path.md §3.2).
        pathOptions.vanguards = this.vanguards.stale(this.guardView(), now) ? await this.refreshVanguards() : this.vanguards.current(this.guardView());
        pathOptions.hops = Math.max(2, hops);
      }
      const enforce = pathOptions.enforceDistinctSubnets ?? true;
      const last = options.last;
      // Avoiding relays that failed recently is a preference (specs/path.md §5): when it leaves no path, relays
      // that failed are tried again rather than failing every build until their exclusion ends. When the imposed
      // last hop is the only usable guard (the other failed or left), one more guard is sampled, bounded by the
      // sample's size, rather than no circuit to that relay until a guard returns (specs/path.md §3) — and the path
      // through it avoids the failed relays again. Only then: a last hop merely related to every guard (a family it
      // declares itself, a network it chose) must not choose which relays this client samples next.
      const path = await choosePathWithFallbacks(this.directory.all(), pathOptions, async () => {
        if (!last || this.bridgeModeOn || this.o.entryRelays || !pathOptions.guards.every((g) => g.fingerprint === last.fingerprint)) return false;
        if (!(await this.guards.sampleFitting(this.guardView(), now, (d) => compatible([last], d, enforce)))) return false;
        pathOptions.guards = this.entries(now);
        return true;
      });
      if (path instanceof AlliumError) throw path;
      const entry = path[0]!;
      if (this.bridgeModeOn && !this.bridgeByFp.has(entry.fingerprint)) throw new AlliumError('ERR_INTERNAL', 'bridge mode: a path must start at a bridge');
      let link: Link;
      try {
        link = await this.linkTo(entry.id, entry.addr, signal);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        lastErr = e;
        this.failed.set(entry.fingerprint, now);
        await this.guards.markFailed(entry.fingerprint, now);
        continue;
      }
      // Paced per entry link (specs/path.md §3.3): a burst of builds waits here instead of being refused. A link that
      // closes meanwhile, or between the build's turn and its CREATE, sends the build to its next try (no CREATE was
      // sent: nothing for path bias to count against the guard).
      try {
        await this.pacerOf(link).take(signal);
        if (!link.isOpen) throw new AlliumError('ERR_LINK_CLOSED', 'the entry link closed before the build could send its CREATE');
      } catch (e) {
        if (!isAlliumError(e) || e.code !== 'ERR_LINK_CLOSED') throw e;
        lastErr = e;
        continue;
      }
      const started = this.now();
      // Path bias counts builds through a sampled guard whose link opened (specs/path.md §3.1).
      const viaGuard = !this.bridgeModeOn && !this.o.entryRelays && path.length > 1 && this.guards.all.some((g) => g.fingerprint === entry.fingerprint);
      try {
        const circuit = await buildCircuit(link, this.table, path, { timeoutMs: this.buildTimeout.current, signal });
        if (this.state !== 'running') {
          // stop() ran while this circuit was being built: never keep one past stop().
          circuit.close();
          throw new AbortedError('client stopped');
        }
        const buildMs = this.now() - started;
        this.buildTimeout.record(buildMs);
        await this.guards.markSucceeded(entry.fingerprint, this.now());
        if (viaGuard) await this.guards.recordBuild(entry.fingerprint, true, this.now());
        this.circuits.add(circuit);
        circuit.once('circuit:close', () => {
          this.circuits.delete(circuit);
          const i = this.pool.indexOf(circuit);
          if (i >= 0) this.pool.splice(i, 1);
          if (this.state === 'running') this.fillPool();
        });
        if ((this.o.circuitPadding ?? true) !== false && path.length >= 3) {
          // Not awaited: the circuit is usable at once; a refusal (a relay's budget) leaves it unpadded.
          // The build was one round trip through the whole path: the machine's first slots scale with it.
          const m =
            this.o.circuitPaddingMachine ??
            (this.o.circuitPadding === 'schedule' ? { machine: PaddingMachineId.SCHEDULE, rtt: true } : { machine: PaddingMachineId.SLOTS, rtt: false });
          circuit.startPadding(m.machine, m.rtt ? { rttMs: buildMs } : {}).catch(() => undefined);
        }
        this.emit('client:circuit', circuit);
        return circuit;
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        lastErr = e;
        if (isAlliumError(e) && e.code === 'ERR_TIMEOUT') this.buildTimeout.recordTimeout();
        // Blame (specs/path.md §5): a hop past the entry that reports it could not reach the next relay gets that
        // relay avoided for a minute. Whatever the entry does or reports — DESTROY, a closed link, a timeout, a
        // relay it "could not reach" — excludes nobody: it counts against the entry in path bias, so destroying
        // circuits whose last hop it dislikes does not steer this client towards the last hops it likes.
        const failedAfter = (e as { failedAfter?: number }).failedAfter;
        if (failedAfter !== undefined && failedAfter >= 2 && path[failedAfter]) this.failed.set(path[failedAfter]!.fingerprint, now);
        if (viaGuard) await this.guards.recordBuild(entry.fingerprint, false, this.now());
      }
    }
    throw isAlliumError(lastErr) ? lastErr : new AlliumError('ERR_UNREACHABLE', 'could not build a circuit', { cause: lastErr });
  }

  /** The CREATE pacer of `link`, made on its first build and closed (its waiting builds aborted) with it. */
  private pacerOf(link: Link): CreatePacer {
    let p = this.pacers.get(link);
    if (!p) {
      const pacer = (p = new CreatePacer(this.o.createsPerSecond ?? CLIENT_CREATES_PER_SECOND));
      this.pacers.set(link, pacer);
      if (link.isOpen) link.once('link:close', () => pacer.close());
      else pacer.close();
    }
    return p;
  }

  /**
   * Bridge mode: the bridges to start circuits at, those that failed recently last. Re-fetches descriptors when none
   * is valid any more. Throws ERR_UNREACHABLE when no bridge has a valid descriptor.
   */
  private async usableBridges(exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<Descriptor[]> {
    const valid = (): Descriptor[] => [...this.bridgeDescriptors.values()].filter((d) => d.exp > this.now());
    if (valid().length === 0) await this.refreshBridgeDescriptors(await this.bridgeLinks(signal), signal);
    const list = valid();
    if (list.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no bridge reachable');
    return [...list.filter((d) => !exclude.has(d.fingerprint)), ...list.filter((d) => exclude.has(d.fingerprint))];
  }

  /** Keeps `poolSize` general-purpose exit circuits ready. */
  private fillPool(): void {
    const size = this.o.poolSize ?? 2;
    if (this.filling || this.state !== 'running' || this.pool.length >= size) return;
    if (!this.directory.all().some((d) => d.exit.some((l) => l.startsWith('accept')))) return;
    this.filling = true;
    this.newCircuit({ exitPort: 443 })
      .catch(() => this.newCircuit({ exitPort: 80 }))
      .then(
        (c) => {
          this.filling = false;
          if (this.state === 'running') {
            this.pool.push(c);
            this.fillPool();
          } else c.close();
        },
        () => {
          this.filling = false;
        },
      );
  }

  private usable(c: ClientCircuit, isolation: string, port: number): boolean {
    if (c.state !== 'open') return false;
    if (c.isolation !== null && c.isolation !== isolation) return false;
    if (c.dirtySince !== null && this.now() - c.dirtySince > (this.o.circuitDirtinessMs ?? 600_000)) return false;
    const exit = c.path[c.path.length - 1]!;
    return allowsExit(exit, port);
  }

  /** A circuit for a stream to `port` under `isolation`: one already bound to it, a pooled one, or a new one. */
  async circuitFor(port: number, isolation: string, options: AbortOptions = {}): Promise<ClientCircuit> {
    for (const c of this.circuits) if (c.isolation === isolation && this.usable(c, isolation, port)) return c;
    const pooled = this.pool.findIndex((c) => this.usable(c, isolation, port));
    let circuit: ClientCircuit;
    if (pooled >= 0) {
      circuit = this.pool.splice(pooled, 1)[0]!;
      this.fillPool();
    } else {
      circuit = await this.newCircuit({ exitPort: port, ...signalOption(options.signal) });
    }
    circuit.isolation = isolation;
    circuit.dirtySince ??= this.now();
    return circuit;
  }

  /**
   * Opens a stream to host:port through an exit (host resolved at the exit), or to a hidden service when the host
   * is an `.allium` address. Throws ERR_ADDRESS_FORMAT for a host name it refuses (specs/streams.md §6.4), StreamError
   * with the exit's END reason when refused, ERR_TIMEOUT, ERR_ABORTED, or a circuit error.
   */
  connect(rawHost: string, port: number, options: ConnectOptions = {}): Promise<MuxStream> {
    // Every decision below is made on the normalised name (specs/streams.md §6.4): `x.allium.` or `X.ALLIUM` sent to
    // an exit as an ordinary name would leak the hidden address to public DNS.
    let name: ReturnType<typeof normalizeHost>;
    try {
      name = normalizeHost(rawHost);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.state === 'stopped') return Promise.reject(new AbortedError('client stopped'));
    return this.run(options, (signal) => this.openStream(name.host, name.kind === 'hidden', port, options.isolation ?? '', signal));
  }

  /** connect() under `signal` (the caller's and the shutdown signal). */
  private async openStream(host: string, hidden: boolean, port: number, isolation: string, signal: AbortSignal): Promise<MuxStream> {
    if (hidden) {
      if (!this.addressConnector) throw new AlliumError('ERR_UNREACHABLE', 'no messenger attached: .allium addresses need a Messenger on this client');
      return this.addressConnector(host, port, { signal });
    }
    const circuit = await this.circuitFor(port, isolation, { signal });
    return await settleWithin<MuxStream>(
      (done) => {
        const s = circuit.mux.open();
        const offC = s.once('stream:connected', () => done(null, s));
        const offE = s.once('stream:end', (reason) => done(new StreamError(reason)));
        if (!circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: host, p: port }) })) circuit.mux.reset(s, EndReason.MISC);
        return (err) => {
          offC();
          offE();
          // Timed out or aborted: the stream is reset at both ends (an END from the exit needs nothing more).
          if (err && !(err instanceof StreamError)) circuit.mux.reset(s, err.code === 'ERR_TIMEOUT' ? EndReason.TIMEOUT : EndReason.MISC);
        };
      },
      { timeoutMs: STREAM_CONNECT_TIMEOUT_MS, timeoutMessage: 'stream did not connect in time', signal },
    );
  }

  /**
   * Stops the client: aborts every dial, circuit build, directory refresh and stream open it started (they reject
   * with ERR_ABORTED), stops its timers, closes every circuit and link, and resolves once nothing it started is still
   * running. Idempotent; a stopped client does not start again.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.shutdown.abort();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    for (const c of [...this.circuits]) c.close();
    for (const l of this.links.values()) l.close();
    this.links.clear();
    this.pool.length = 0;
    await Promise.allSettled([...this.inFlight]);
    // Every link is closed now; its socket goes once the relay answers the close, or is dropped after a grace.
    const closing = [...this.sockets].map((l) => l.socketClosed);
    await within(Promise.all(closing), { timeoutMs: LINK_CLOSE_GRACE_MS, timeoutMessage: 'relays did not answer the close' }).catch(async () => {
      for (const l of this.sockets) l.terminate();
      await Promise.all(closing);
    });
  }

  private addressConnector: AddressConnector | null = null;

  /** Routes connections to `*.allium` addresses (hidden services) through a Messenger (client/messaging/). */
  useAddressConnector(fn: AddressConnector): void {
    this.addressConnector = fn;
  }

  /** The listed relays whose descriptors say `"mix"` (specs/mix.md §8.1), with their onion keys as mix keys. */
  mixRelays(): MixRelay[] {
    return this.directory
      .all()
      .filter((d) => d.caps.includes('mix'))
      .map((d) => ({ identity: d.id, mixKey: d.onion }));
  }

  private mixGatewayFp: string | null = null;

  /**
   * The client's mix gateway and a link to it (specs/mix.md §8.1): the first usable guard that is a mix relay (the
   * one chosen before while it stays usable); else one more guard sampled as guards are (Guard flag, guard weight,
   * kept and persisted in the guard sample) among the mix relays. Throws ERR_MIX_UNREACHABLE (no mix relay can be a
   * gateway, or bridge or pinned-entry mode), the dial's errors, ERR_ABORTED.
   */
  async mixGateway(options: AbortOptions = {}): Promise<MixGatewayLink> {
    if (this.state !== 'running') throw new AbortedError('client is not running');
    if (this.bridgeModeOn || this.o.entryRelays)
      throw new AlliumError('ERR_MIX_UNREACHABLE', 'message mode keeps a guard as its gateway: not with bridges or pinned entries');
    const now = this.now();
    const usable = this.guards.usable(this.guardView(), now).filter((d) => d.caps.includes('mix'));
    let d = usable.find((x) => x.fingerprint === this.mixGatewayFp) ?? usable[0] ?? null;
    d ??= await this.guards.sampleFitting(this.guardView(), now, (x) => x.caps.includes('mix'));
    if (!d) throw new AlliumError('ERR_MIX_UNREACHABLE', 'no relay of the directory can be a mix gateway');
    this.mixGatewayFp = d.fingerprint;
    const link = await this.linkTo(d.id, d.addr, options.signal);
    return { identity: d.id, link };
  }

  /**
   * A link to the listed mix relay `identity` (specs/mix.md §8.6: a former mix gateway whose inbox the messenger
   * still polls). Throws ERR_MIX_UNREACHABLE (not a listed mix relay), the dial's errors, ERR_ABORTED.
   */
  async mixLink(identity: Uint8Array, options: AbortOptions = {}): Promise<Link> {
    if (this.state !== 'running') throw new AbortedError('client is not running');
    const d = this.directory.all().find((x) => x.caps.includes('mix') && crypto().equal(x.id, identity));
    if (!d) throw new AlliumError('ERR_MIX_UNREACHABLE', 'the former mix gateway is not a listed mix relay');
    return this.linkTo(d.id, d.addr, options.signal);
  }

  /** Open circuits (status displays). */
  listCircuits(): ClientCircuit[] {
    return [...this.circuits];
  }
}
