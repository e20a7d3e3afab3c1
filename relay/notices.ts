/**
 * What a relay tells its operator (docs/operator-guide.md, "Logs"), with Tor's notices as the model:
 *
 *   at start    warnings for a configuration that runs but cannot work as meant: no bootstrap relay (a network of
 *               one), a wildcard or loopback `listen` without `public_address` (an address no one else can dial);
 *               then a reachability self-test: the relay dials its own published address over the real socket and
 *               completes a link handshake with itself (as a client, so it never becomes its own neighbour)
 *   bootstrap   each bootstrap relay that fails, once per distinct reason, with the reason in words
 *               (net/dial.ts explainDialFailure); a warning if none answered after a grace period
 *   joined      "joined: N relays known, M links" once it has a relay link and its directory has settled
 *   heartbeat   relay/heartbeat.ts
 *
 * Relay addresses and fingerprint prefixes are public; nothing here names a client or a circuit.
 */
import type { Logger } from 'pino';
import { fingerprintOf, type IdentityKey } from '../crypto/keys.js';
import { fromHex } from '../protocol/bytes.js';
import { explainDialFailure, openLink } from '../net/dial.js';
import type { Link } from '../net/link.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { namedAuthorities } from '../protocol/bootstrap-line.js';
import { parseBootstrapLine, parseHostPort, type RelayConfig } from './config.js';
import { startHeartbeat, type HeartbeatStatus } from './heartbeat.js';

/** What the notices read from the relay (all public on Relay). */
export interface NoticeSource {
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly address: string;
  readonly identity: IdentityKey;
  readonly bridgeLine: string | null;
  readonly directory: { readonly size: number };
  readonly overlay: { readonly neighbourCount: number };
  /** Relay.status(): the heartbeat reads its counts. */
  status(): Promise<unknown>;
}

/** How the self-test dials (tests inject a failing one). */
export type SelfDial = (url: string, setup: { responder: Uint8Array; psk?: Uint8Array }, handshakeTimeoutMs: number) => Promise<Link>;

const defaultSelfDial: SelfDial = (url, setup, handshakeTimeoutMs) =>
  openLink(nodeSocketFactory, url, { role: 'initiator', ...setup }, { timers: { handshakeTimeoutMs }, signal: AbortSignal.timeout(handshakeTimeoutMs + 5000) });

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** Warnings about the configuration alone (no network needed): each a sentence for the operator. */
export function configWarnings(cfg: RelayConfig, ownFingerprint: string): string[] {
  const out: string[] = [];
  const others = cfg.bootstrap.map(parseBootstrapLine).filter((b) => fingerprintOf(b.identity) !== ownFingerprint);
  if (others.length === 0) {
    out.push(
      cfg.bridge
        ? 'no bootstrap relay: a bridge reaches the network only through its bootstrap relays, so it can serve no one; add a bootstrap line of a public relay'
        : 'no bootstrap relay: this relay starts a network of its own (one relay); to join an existing network, add a bootstrap line its operators give you',
    );
  }
  const named = namedAuthorities(others, cfg.directory_authorities) ?? [];
  if (cfg.directory_authorities.length === 0 && named.length > 0) {
    out.push(
      `the bootstrap lines name ${named.length} directory authorities but directory_authorities is not set: this relay does not follow the network's consensus (its flags, weights and content placement); set directory_authorities = [${named.map((a) => `"${a}"`).join(', ')}]`,
    );
  }
  if (!cfg.public_address) {
    const { host } = parseHostPort(cfg.listen, 'listen');
    if (WILDCARDS.has(host)) {
      out.push(
        `listen is the wildcard address ${cfg.listen} and public_address is not set: the relay publishes that address, which no one else can dial; set public_address to the address others reach it at`,
      );
    } else if (isLoopback(host) && others.some((b) => !isLoopback(new URL(b.url).hostname.replace(/^\[|\]$/g, '')))) {
      out.push(
        `listen is the loopback address ${cfg.listen} and public_address is not set, but the bootstrap relays are elsewhere: the relay publishes a loopback address, which no other machine can dial; set listen and public_address`,
      );
    }
  }
  return out;
}

export class RelayNotices {
  private readonly bootstrap = new Map<string, string>();
  /** The last failure reason logged per bootstrap fingerprint ('' once it answered). */
  private readonly lastFailure = new Map<string, string>();
  private joined = false;
  private lastDirectorySize = -1;
  /** Since when the directory size has held still with a relay link open (0: not now). */
  private stableSince = 0;
  private stableTicks = 0;
  private readonly startedAt = Date.now();
  private warnedNotJoined = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private heartbeat: { stop(): void } | null = null;
  private stopped = false;
  /** The self-test's outcome: null while it runs (or before). */
  reachable: boolean | null = null;

  constructor(
    private readonly relay: NoticeSource,
    private readonly selfDial: SelfDial = defaultSelfDial,
  ) {
    const own = relay.identity.fingerprint;
    for (const line of relay.config.bootstrap) {
      const b = parseBootstrapLine(line);
      const fp = fingerprintOf(b.identity);
      if (fp !== own) this.bootstrap.set(fp, b.url);
    }
  }

  private get log(): Logger {
    return this.relay.log;
  }

  /**
   * Watches a dial the overlay makes; reports bootstrap relays that fail (once per reason) and that answer again.
   * Returns the same promise.
   */
  dialed(url: string, identity: Uint8Array, p: Promise<Link>): Promise<Link> {
    const fp = fingerprintOf(identity);
    if (!this.bootstrap.has(fp)) return p;
    p.then(
      () => {
        if (this.lastFailure.get(fp)) this.log.info({ relay: fp.slice(0, 8), address: url }, `bootstrap relay ${url} (${fp.slice(0, 8)}) answers now`);
        this.lastFailure.set(fp, '');
      },
      (e: unknown) => {
        if (this.stopped) return;
        const why = explainDialFailure(e);
        if (this.lastFailure.get(fp) === why) return;
        this.lastFailure.set(fp, why);
        this.log.warn({ relay: fp.slice(0, 8), address: url }, `bootstrap relay ${url} (${fp.slice(0, 8)}) failed: ${why}`);
      },
    );
    return p;
  }

  /** Logs the configuration warnings, runs the self-test, and starts the join watch and the heartbeat. */
  start(): void {
    const cfg = this.relay.config;
    for (const w of configWarnings(cfg, this.relay.identity.fingerprint)) this.log.warn(w);
    void this.selfTest();
    this.timer = setInterval(() => this.tick(), Math.min(cfg.timing.maintenance_interval, 5000));
    this.timer.unref?.();
    this.heartbeat = startHeartbeat({
      status: () => this.relay.status() as Promise<HeartbeatStatus>,
      log: this.log,
      intervalMs: cfg.timing.heartbeat_interval,
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.heartbeat?.stop();
  }

  /**
   * "joined" once there is a relay link and the directory has stopped growing: its size held still for three ticks
   * and at least two seconds (the first gossip exchange is over). Or, without a relay link, a warning.
   */
  private tick(): void {
    if (this.joined || this.stopped) return;
    const links = this.relay.overlay.neighbourCount;
    const size = this.relay.directory.size;
    const now = Date.now();
    if (links >= 1 && size >= 2 && size === this.lastDirectorySize) {
      this.stableTicks++;
      this.stableSince ||= now;
      if (this.stableTicks >= 3 && now - this.stableSince >= 2000) {
        this.joined = true;
        this.log.info({ relays: size, links }, `joined: ${size} relays known, ${links} links`);
        return;
      }
    } else {
      this.stableTicks = 0;
      this.stableSince = 0;
    }
    this.lastDirectorySize = size;
    const graceMs = Math.max(30_000, 3 * this.relay.config.timing.handshake_timeout);
    if (links === 0 && this.bootstrap.size > 0 && !this.warnedNotJoined && Date.now() - this.startedAt >= graceMs) {
      this.warnedNotJoined = true;
      this.log.warn(`not joined yet: no bootstrap relay answered within ${Math.round(graceMs / 1000)} s (the failures are above); still trying`);
    }
  }

  /** Dials the published address and completes a link handshake with this relay, as a client would. */
  private async selfTest(): Promise<void> {
    const address = this.relay.address;
    const secret = /secret=([0-9a-f]{64})/.exec(this.relay.bridgeLine ?? '')?.[1];
    const setup = { responder: this.relay.identity.publicKey, ...(secret ? { psk: fromHex(secret) } : {}) };
    try {
      const link = await this.selfDial(address, setup, this.relay.config.timing.handshake_timeout);
      link.close();
      this.reachable = true;
      if (!this.stopped) this.log.info({ address }, `reachability: the published address ${address} answers (a link handshake with this relay completed)`);
    } catch (e) {
      this.reachable = false;
      if (this.stopped) return;
      this.log.warn(
        { address },
        `reachability: the published address ${address} does not answer from this machine: ${explainDialFailure(e)}. ` +
          'Others cannot reach the relay there either, unless only this machine is kept from it (NAT without hairpinning): check public_address, the firewall and any proxy',
      );
    }
  }
}
