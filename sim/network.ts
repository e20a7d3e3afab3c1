/**
 * The simulated Internet: hosts with addresses and access bandwidth, paths between them with a latency and a loss
 * rate drawn once per pair from configurable distributions, and two ways to connect:
 *
 * - `socketFactory(host)`: real link sockets (net/memory-socket.ts) for the real Link, handshake and frame
 *   encryption included. A dial takes two round trips (TCP, then the WebSocket upgrade) before the socket opens,
 *   as over a real network; the listening side gets its socket after one and a half.
 * - `dialMessages(host, url)`: message-level links (sim/message-link.ts) for large overlays: control messages pass
 *   as decoded objects and are charged the bytes and frames their real encoding would take.
 *
 * A host that is down refuses nothing and answers nothing: a dial to it fails after `deadDialMs` (the WebSocket
 * opening-handshake deadline of net/ws-node.ts, 10 s), or at once with `refuseDeadDials` (a live host whose relay
 * process is gone answers with a reset after one round trip).
 */
import type { LinkSocket } from '../net/socket.js';
import type { SocketFactory } from '../net/dial.js';
import { memorySocketPair, type MemorySocket } from '../net/memory-socket.js';
import { AbortedError, AlliumError } from '../protocol/errors.js';
import { LinkRole, type LinkPeer } from '../protocol/link-handshake.js';
import type { VirtualClock } from './clock.js';
import { draw, type Distribution, type Rng } from './random.js';
import { MessageLink, Traffic, type MessagePath } from './message-link.js';

export interface NetworkConfig {
  /** One-way latency of a path, in milliseconds (drawn once per pair of hosts). */
  latencyMs: Distribution;
  /** Access bandwidth of a host, bytes per second (a path runs at the smaller of its two ends). */
  bandwidth: Distribution;
  /** Probability that a message on a path is hit by loss and retransmitted (drawn once per pair). */
  loss: Distribution;
  /** How long a dial to a host that is down takes to fail. */
  deadDialMs: number;
  /** Dials to a down host fail after one round trip instead (the host is up, the relay process is not). */
  refuseDeadDials: boolean;
}

export const DEFAULT_NETWORK: NetworkConfig = {
  latencyMs: { kind: 'lognormal', median: 35, sigma: 0.6, min: 2, max: 400 },
  bandwidth: { kind: 'lognormal', median: 12_500_000, sigma: 1, min: 250_000, max: 1_250_000_000 },
  loss: { kind: 'uniform', min: 0, max: 0.005 },
  deadDialMs: 10_000,
  refuseDeadDials: false,
};

/** A machine on the simulated network. */
export class Host {
  alive = true;
  readonly sockets = new Set<MemorySocket>();
  readonly messageLinks = new Set<MessageLink>();
  /** Accepts a real link socket dialed to this host, with the URL it was dialed at (set by the relay running here). */
  acceptSocket: ((socket: LinkSocket, remoteIp: string, url: string) => void) | null = null;
  /** Accepts a message-level link dialed to this host. */
  acceptMessages: ((link: MessageLink) => void) | null = null;
  /** Identity of the relay running here (message-level dials check it, as the link handshake does). */
  identity: Uint8Array | null = null;
  /** Bytes sent and received over message-level links. */
  readonly traffic = new Traffic();

  constructor(
    readonly index: number,
    readonly ip: string,
    readonly bandwidth: number,
  ) {}
}

export class SimNetwork {
  private readonly hosts: Host[] = [];
  private readonly byUrl = new Map<string, Host>();
  private readonly paths = new Map<number, { latencyMs: number; loss: number }>();
  private readonly usedIps = new Set<string>();
  /** Dials made and failed (for reports). */
  readonly dials = { ok: 0, failed: 0 };
  /** Message-level traffic of the whole network, by message type. */
  readonly traffic = new Traffic();

  constructor(
    readonly config: NetworkConfig,
    private readonly rng: Rng,
    readonly clock: VirtualClock,
  ) {}

  /** A new host with a random public IPv4 address (so /16 networks are as mixed as on the Internet). */
  addHost(bandwidth?: number): Host {
    let ip: string;
    do {
      const a = 1 + this.rng.int(223);
      ip = `${a === 10 || a === 127 ? a + 1 : a}.${this.rng.int(256)}.${this.rng.int(256)}.${1 + this.rng.int(254)}`;
    } while (this.usedIps.has(ip));
    this.usedIps.add(ip);
    const h = new Host(this.hosts.length, ip, bandwidth ?? draw(this.config.bandwidth, this.rng));
    this.hosts.push(h);
    return h;
  }

  /** Makes `host` reachable at `url`. */
  bind(url: string, host: Host): void {
    this.byUrl.set(url, host);
  }

  /** The host a URL points at (its query, such as the link upgrade token, plays no part). */
  hostAt(url: string): Host | undefined {
    const q = url.indexOf('?');
    return this.byUrl.get(q < 0 ? url : url.slice(0, q));
  }

  /** The path between two hosts (drawn on first use; symmetric). */
  path(a: Host, b: Host): { latencyMs: number; loss: number; bandwidth: number } {
    const lo = Math.min(a.index, b.index);
    const hi = Math.max(a.index, b.index);
    const key = lo * 4_194_304 + hi;
    let p = this.paths.get(key);
    if (!p) {
      p = { latencyMs: draw(this.config.latencyMs, this.rng), loss: Math.max(0, draw(this.config.loss, this.rng)) };
      this.paths.set(key, p);
    }
    return { ...p, bandwidth: Math.min(a.bandwidth, b.bandwidth) };
  }

  /** Takes a host down: `crash` resets its connections (peers notice), `vanish` leaves them silent. */
  down(host: Host, how: 'crash' | 'vanish' = 'crash'): void {
    host.alive = false;
    for (const s of host.sockets) how === 'crash' ? s.kill() : s.blackhole();
    host.sockets.clear();
    for (const l of host.messageLinks) l.kill(how);
    host.messageLinks.clear();
  }

  private failDial(from: Host, to: Host | undefined, signal?: AbortSignal): Promise<never> {
    this.dials.failed++;
    const rtt = to ? 2 * this.path(from, to).latencyMs : 0;
    const ms = this.config.refuseDeadDials && to ? rtt : this.config.deadDialMs;
    return new Promise((_, reject) => {
      const timer = setTimeout(() => reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay')), ms);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(new AbortedError());
        },
        { once: true },
      );
    });
  }

  /** A socket factory for code running on `from` (a relay dialing others, or a client). */
  socketFactory(from: Host): SocketFactory {
    return (url, { signal } = {}) => {
      if (signal?.aborted) return Promise.reject(new AbortedError());
      const to = this.hostAt(url);
      if (!to || !to.alive || !from.alive || !to.acceptSocket) return this.failDial(from, to, signal);
      const p = this.path(from, to);
      const rtt = 2 * p.latencyMs;
      const random = this.rng.random;
      const [mine, theirs] = memorySocketPair({
        forward: { latencyMs: p.latencyMs, bandwidth: p.bandwidth, loss: p.loss, random },
        firstAddress: from.ip,
        secondAddress: to.ip,
      });
      return new Promise<LinkSocket>((resolve, reject) => {
        let settled = false;
        const accept = setTimeout(() => {
          if (!to.alive || !from.alive || !to.acceptSocket) return;
          to.sockets.add(theirs);
          theirs.onClose(() => to.sockets.delete(theirs));
          to.acceptSocket(theirs, from.ip, url);
        }, 0.75 * rtt);
        const open = setTimeout(() => {
          settled = true;
          if (!to.alive || !from.alive) {
            this.dials.failed++;
            return reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay'));
          }
          this.dials.ok++;
          from.sockets.add(mine);
          mine.onClose(() => from.sockets.delete(mine));
          resolve(mine);
        }, rtt);
        signal?.addEventListener(
          'abort',
          () => {
            if (settled) return;
            clearTimeout(accept);
            clearTimeout(open);
            mine.close();
            reject(new AbortedError());
          },
          { once: true },
        );
      });
    };
  }

  /**
   * Opens a message-level link from `from` to the relay at `url`, which must have identity `expected` (as the real
   * handshake authenticates it). `self` is what the listening side learns about the dialer.
   */
  dialMessages(from: Host, url: string, expected: Uint8Array, self: LinkPeer, measure: (m: unknown) => number): Promise<MessageLink> {
    const to = this.hostAt(url);
    if (!to || !to.alive || !from.alive || !to.acceptMessages) return this.failDial(from, to);
    if (!to.identity || !sameBytes(to.identity, expected)) {
      this.dials.failed++;
      return Promise.reject(new AlliumError('ERR_LINK_AUTH', 'relay is not who the caller expected'));
    }
    const p = this.path(from, to);
    const path: MessagePath = { latencyMs: p.latencyMs, bandwidth: p.bandwidth, loss: p.loss };
    const [mine, theirs] = MessageLink.pair(this.clock, path, this.rng.random, measure, [from.traffic, to.traffic], this.traffic);
    mine.peer = { role: LinkRole.RELAY, identity: expected, version: 1 };
    theirs.peer = self;
    return this.openMessages(from, to, p, mine, theirs);
  }

  private openMessages(from: Host, to: Host, p: { latencyMs: number }, mine: MessageLink, theirs: MessageLink): Promise<MessageLink> {
    return new Promise<MessageLink>((resolve, reject) => {
      // TCP takes a round trip; the upgrade request carries msg1 and its answer msg2 (another); the dialer's link is
      // then open and msg3 opens the listener's one latency later.
      const rtt = 2 * p.latencyMs;
      setTimeout(() => {
        if (!to.alive || !from.alive || !to.acceptMessages) {
          this.dials.failed++;
          return reject(new AlliumError('ERR_UNREACHABLE', 'could not connect to relay'));
        }
        this.dials.ok++;
        from.messageLinks.add(mine);
        mine.once('link:close', () => from.messageLinks.delete(mine));
        resolve(mine);
        setTimeout(() => {
          if (!to.alive || !to.acceptMessages) return mine.close();
          to.messageLinks.add(theirs);
          theirs.once('link:close', () => to.messageLinks.delete(theirs));
          to.acceptMessages(theirs);
        }, p.latencyMs);
      }, 2 * rtt);
    });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
