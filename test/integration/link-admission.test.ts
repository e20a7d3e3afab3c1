/**
 * Links per address block at a relay (specs/link.md §7), over real WebSockets on loopback: Linux routes all of
 * 127.0.0.0/8 to the loopback interface, so 127.0.0.x are distinct addresses of one /24 and 127.1.0.1 is another /24.
 * A relay in this process (real sockets and handshakes) with an injected clock, so idleness needs no waiting.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { parseBootstrap } from '../../client/bootstrap.js';
import { IdentityKey } from '../../crypto/keys.js';
import { isAlliumError } from '../../protocol/errors.js';
import { openLink, type SocketFactory } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { fromWs } from '../../net/socket.js';
import { silentLogger } from '../../relay/logger.js';
import { Relay } from '../../relay/relay.js';
import type { RelayConfigInput } from '../../relay/config.js';
import { FAST_TIMING, tempDir, waitFor } from '../helpers/network.js';

/** A WebSocket factory whose connections leave from `localAddress`. */
function factoryFrom(localAddress: string): SocketFactory {
  return (url) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => resolve(fromWs(ws as never, null)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
}

describe('links per address block (relay in process, real sockets)', function () {
  this.timeout(60_000);
  const relays: Relay[] = [];
  const links: Link[] = [];
  let now = Date.now();

  async function start(extra: RelayConfigInput): Promise<Relay> {
    const relay = new Relay(
      {
        nickname: 'admission',
        listen: '127.0.0.1:0',
        data_dir: tempDir('allium-admission-'),
        storage_quota: 0,
        allow_private_addresses: true,
        handshakes_per_second_per_ip: 10_000,
        handshakes_per_second_per_block: 10_000,
        timing: FAST_TIMING,
        ...extra,
      },
      { log: silentLogger(), now: () => now },
    );
    await relay.start();
    relays.push(relay);
    return relay;
  }

  /** Opens a link from `from` (as a relay when `identity` is given): 'ok' or why it failed. */
  async function link(relay: Relay, from: string, identity?: IdentityKey): Promise<string> {
    const b = parseBootstrap(relay.bootstrapLine);
    try {
      const l = await openLink(factoryFrom(from), b.url, { role: 'initiator', responder: b.identity, ...(identity ? { identity } : {}) }, { now: () => now });
      links.push(l);
      return 'ok';
    } catch (e) {
      return isAlliumError(e) ? e.code : String(e);
    }
  }

  const refusals = async (relay: Relay, result: string): Promise<number> =>
    (await relay.metrics.handshakes.get()).values.find((v) => v.labels['result'] === result)?.value ?? 0;

  after(async () => {
    for (const l of links) l.close();
    for (const r of relays) await r.stop();
  });

  it('max_links_per_block links from different addresses of one /24 are admitted, the next is refused, another /24 is admitted', async () => {
    const relay = await start({ max_links_per_ip: 2, max_links_per_block: 4 });
    const sameBlock = [];
    for (let i = 2; i <= 6; i++) sameBlock.push(await link(relay, `127.0.0.${i}`));
    const otherBlock = await link(relay, '127.1.0.1');
    expect({ sameBlock, otherBlock, refused: await refusals(relay, 'max_links_per_block') }).to.deep.equal({
      sameBlock: ['ok', 'ok', 'ok', 'ok', 'ERR_UNREACHABLE'],
      otherBlock: 'ok',
      refused: 1,
    });
  });

  it('clients cannot take the slots kept for relays, and an idle client gives way to a new peer', async () => {
    const relay = await start({ max_links: 4, relay_links_reserved: 1 });
    const clients = [await link(relay, '127.2.0.1'), await link(relay, '127.3.0.1'), await link(relay, '127.4.0.1')];
    const fourthClient = await link(relay, '127.5.0.1');
    const asRelay = await link(relay, '127.6.0.1', IdentityKey.generate());
    // Every slot is taken. A minute passes in which the clients send nothing but padding: the next client takes the
    // place of the one idle longest.
    now += 61_000;
    const first = links[links.length - 4]!;
    // (A bound for the old code, which closes nothing: 5 s.)
    const closed = new Promise<string | null>((r) => {
      first.once('link:close', (e) => r(e ? e.code : 'closed'));
      setTimeout(() => r('still open'), 5_000).unref();
    });
    const later = await link(relay, '127.7.0.1');
    await waitFor(() => relay.linkCount === 4, 5_000, 'the evicted link gone');
    expect({ clients, fourthClient, asRelay, later, evicted: await closed, links: relay.linkCount }).to.deep.equal({
      clients: ['ok', 'ok', 'ok'],
      fourthClient: 'ERR_UNREACHABLE',
      asRelay: 'ok',
      later: 'ok',
      evicted: 'closed',
      links: 4,
    });
  });
});
