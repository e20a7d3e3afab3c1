/**
 * The relay's front door (specs/link.md §2.6, §7): what its HTTP(S) server does with a request before a link exists.
 *
 * Every request that is not an admitted upgrade gets the same plain 404 a web server gives for a missing page. A
 * probe-resistant relay — every bridge, and a public relay that opts in — upgrades only requests whose upgrade token
 * opens under its identity (and bridge secret) and is not a replay; everything else, at any path, gets that 404
 * after the same work (one X25519 and one AEAD open), so a miss and a refused upgrade cost and look the same. A
 * public relay upgrades a request without a token (the handshake then runs in band) and closes one whose token
 * failed after the upgrade, as after a bad first message.
 *
 * An upgrade that passes is admitted in order: link slots per address, per address block and for relays (and the
 * longest-idle client link evicted for it when they are full, relay/link-admission.ts), handshake buckets per
 * address, per block and for the relay (relay/address-buckets.ts), then the token's replay and clock check. The
 * socket then goes to the relay node (`acceptLink`), holding its slot until the link closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { crypto } from '../crypto/index.js';
import { AlliumError, isAlliumError, ProtocolError } from '../protocol/errors.js';
import { decodeUpgradeToken, FRAME_LEN, LinkRole, MSG1_HEAD_LEN, UPGRADE_TOKEN_PARAM, type LinkResponder } from '../protocol/link-handshake.js';
import type { Link } from '../net/link.js';
import { fromWs, type LinkSocket } from '../net/socket.js';
import { AddressBuckets } from './address-buckets.js';
import type { RelayConfig } from './config.js';
import { LinkAdmission } from './link-admission.js';
import type { RelayMetrics } from './metrics.js';
import { TokenBucket } from './token-bucket.js';

const NOT_FOUND_BODY = '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n';

/**
 * The headers of the relay's miss, in order. The request handler and the upgrade handler both send exactly these,
 * so an upgrade the relay refuses is byte for byte a request for a missing page (apart from the Date).
 */
function missHeaders(): Record<string, string> {
  return {
    'Content-Type': 'text/html',
    'Content-Length': String(Buffer.byteLength(NOT_FOUND_BODY)),
    Date: new Date().toUTCString(),
    Connection: 'close',
  };
}

function sendMiss(res: ServerResponse): void {
  res.sendDate = false;
  res.writeHead(404, 'Not Found', missHeaders());
  res.end(NOT_FOUND_BODY);
}

/** The same response, written on a socket the HTTP server handed over for an upgrade. */
function writeMiss(socket: Duplex, method: string | undefined): void {
  const head = Object.entries(missHeaders())
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 404 Not Found\r\n${head}\r\n${method === 'HEAD' ? '' : NOT_FOUND_BODY}`);
}

/** What the front door needs of the relay node behind it (relay/node.ts). */
export interface FrontDoorNode {
  /** A responder for this relay's identity, replay cache and bridge secret. */
  responder(): LinkResponder;
  /** Takes an admitted socket (with the responder that opened its token, or none): null when the node is stopped. */
  acceptLink(socket: LinkSocket, token: LinkResponder | null): Link | null;
  /** The open links (admission counts them and picks one to evict). */
  readonly links: ReadonlySet<Link>;
}

export interface FrontDoorOptions {
  config: RelayConfig;
  metrics: RelayMetrics;
  now: () => number;
  node: FrontDoorNode;
  /** Whether the relay takes links now (starting or running). */
  accepting: () => boolean;
}

export class FrontDoor {
  /** Links per address and per block, the relays' reserve and idle-client eviction (specs/link.md §7). */
  readonly admission: LinkAdmission;
  /** Per-address and per-block handshake buckets, charged before the relay-wide one (specs/link.md §7). */
  readonly addressBuckets: AddressBuckets;
  private readonly handshakeBucket: TokenBucket;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: FRAME_LEN });

  constructor(private readonly o: FrontDoorOptions) {
    const cfg = o.config;
    this.handshakeBucket = new TokenBucket(cfg.handshakes_per_second, cfg.handshakes_per_second * 2, o.now);
    this.admission = new LinkAdmission(
      { maxLinks: cfg.max_links, maxLinksPerIp: cfg.max_links_per_ip, maxLinksPerBlock: cfg.max_links_per_block, relayLinksReserved: cfg.relay_links_reserved },
      o.now,
    );
    this.addressBuckets = new AddressBuckets({ perIp: cfg.handshakes_per_second_per_ip, perBlock: cfg.handshakes_per_second_per_block, now: o.now });
  }

  /** True for bridges and for public relays with probe_resistant set. */
  get probeResistant(): boolean {
    return this.o.config.bridge || this.o.config.probe_resistant;
  }

  /** The server's request handler: anything that is not our WebSocket upgrade looks like a web server's miss. */
  readonly onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    if (this.probeResistant) this.probeCost();
    sendMiss(res);
  };

  /** Forgets handshake buckets that have refilled (maintenance). */
  sweep(): void {
    this.addressBuckets.sweep();
  }

  /** Drops every upgraded socket at once and stops upgrading (the last step of a shutdown). */
  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }

  private refuse(socket: Duplex, status: number, reason: string): void {
    this.o.metrics.handshakes.inc({ result: reason });
    const body = status === 404 ? NOT_FOUND_BODY : '';
    socket.end(
      `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  /**
   * The work of checking an upgrade token, spent on a request that carries none, so that a miss and a refused
   * upgrade cost the relay the same (one X25519 and one AEAD open) and answer in the same time.
   */
  private probeCost(): void {
    try {
      this.o.node.responder().open(crypto().random(MSG1_HEAD_LEN));
    } catch {
      /* expected: random bytes never open */
    }
  }

  /**
   * The server's upgrade handler (specs/link.md §2.6, §7). A probe-resistant relay answers every failure before the
   * token is proven — wrong path, no token, a token that does not open, a replay, a stale clock — with the plain 404
   * of any other miss. A public relay upgrades those (and then closes a link whose token failed), as before tokens.
   */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { metrics, config } = this.o;
    const ip = req.socket.remoteAddress ?? 'unknown';
    const pr = this.probeResistant;
    const miss = (result: string): void => {
      metrics.handshakes.inc({ result });
      writeMiss(socket, req.method);
    };
    let url: URL | null = null;
    try {
      url = new URL(req.url ?? '/', 'http://relay.invalid');
    } catch {
      /* a request target that is not a path */
    }
    if (!url || url.pathname !== config.path) {
      if (pr) this.probeCost();
      return miss('wrong_path');
    }
    const token = url.searchParams.get(UPGRADE_TOKEN_PARAM);
    let responder: LinkResponder | null = null;
    let failure: AlliumError | null = null;
    if (token !== null) {
      const r = this.o.node.responder();
      try {
        r.open(decodeUpgradeToken(token));
        responder = r;
      } catch (e) {
        failure = isAlliumError(e) ? e : new ProtocolError('ERR_LINK_PROBE', 'upgrade token refused');
      }
    } else if (pr) {
      this.probeCost();
      failure = new ProtocolError('ERR_LINK_PROBE', 'no upgrade token');
    }
    if (failure && pr) return miss(failure.code);
    if (!this.o.accepting()) return pr ? miss('stopping') : this.refuse(socket, 503, 'stopping');
    // Past this point a probe-resistant relay knows the peer made a valid first message for it.
    const admitted = this.admission.admit(ip, responder?.claimedRole === LinkRole.RELAY, this.o.node.links);
    if (typeof admitted === 'string') return this.refuse(socket, 503, admitted);
    // One address, then its /24 or /48, then the relay: a flood from one place cannot spend everyone's budget.
    const over = this.addressBuckets.admit(ip);
    if (over) return this.refuse(socket, 503, over === 'ip' ? 'handshake_rate_ip' : 'handshake_rate_block');
    if (!this.handshakeBucket.tryTake(1)) return this.refuse(socket, 503, 'handshake_rate');
    if (responder) {
      try {
        responder.admit(this.o.now());
      } catch (e) {
        responder.discard();
        responder = null;
        failure = isAlliumError(e) ? e : new ProtocolError('ERR_LINK_PROBE', 'upgrade token refused');
        if (pr) return miss(failure.code);
      }
    }
    if (admitted.evict && !failure) {
      metrics.drops.inc({ reason: 'link_evicted_idle' });
      this.admission.evict(admitted.evict);
    }
    const release = this.admission.hold(ip);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (failure) {
        // A public relay: the upgrade is done, the handshake is not; close as after a bad first message.
        metrics.handshakes.inc({ result: failure.code });
        ws.once('close', release);
        ws.close(1002);
        return;
      }
      const link = this.o.node.acceptLink(fromWs(ws as never, ip, { masked: false }), responder);
      if (link) link.once('link:close', release);
      else release();
    });
  };
}
