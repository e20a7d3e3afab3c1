/**
 * One address, or one /24, cannot spend a relay's whole handshake budget (specs/link.md §7): while eight addresses
 * of 127.0.0.0/24 flood a relay process with cheap valid upgrades (a fresh token each, closed as soon as the answer
 * comes), an honest peer from another /24 (127.1.0.1) still links, every time. Linux routes all of 127.0.0.0/8 to
 * the loopback interface, so these are distinct source addresses and blocks.
 */
import { expect } from 'chai';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { parseBootstrap } from '../../client/bootstrap.js';
import { LinkInitiator } from '../../protocol/link-handshake.js';
import { openLink, withUpgradeToken, type SocketFactory } from '../../net/dial.js';
import { fromWs } from '../../net/socket.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

/** A WebSocket factory whose connections leave from `localAddress`. */
function factoryFrom(localAddress: string): SocketFactory {
  return (url) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => resolve(fromWs(ws as never, null)));
      ws.once('error', reject);
    });
}

/** One valid upgrade from `localAddress`, closed as soon as the status line arrives; resolves with the status. */
function cheapUpgrade(url: string, identity: Uint8Array, localAddress: string): Promise<number> {
  const u = new URL(withUpgradeToken(url, new LinkInitiator({ responder: identity, now: Date.now() }).upgradeToken()));
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port), localAddress });
    let buf = '';
    s.once('connect', () =>
      s.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.once('error', () => resolve(0));
    s.once('close', () => resolve(0));
  });
}

describe('handshake flood from one address block (relay process)', function () {
  this.timeout(120_000);
  let relay: RelayProcess;

  before(async () => {
    relay = await startRelay({
      nickname: 'flooded',
      // Small budgets so the flood outruns them: 40 per second relay-wide, 5 per address, 20 per /24.
      extra: { handshakes_per_second: 40, handshakes_per_second_per_ip: 5, handshakes_per_second_per_block: 20 },
    });
  });
  after(async () => {
    await relay?.kill('SIGKILL');
  });

  it('an honest peer from another /24 links every time while eight addresses of one /24 flood valid upgrades', async () => {
    const b = parseBootstrap(relay.bootstrap);
    let flooding = true;
    const statuses = new Map<number, number>();
    const flooders = Array.from({ length: 16 }, async (_, i) => {
      const from = `127.0.0.${2 + (i % 8)}`;
      while (flooding) {
        const status = await cheapUpgrade(b.url, b.identity, from);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    });
    try {
      // The flood is on: its excess is being refused.
      await waitFor(
        () => (statuses.get(503) ?? 0) >= 50,
        30_000,
        () => `the flood to be refused (${JSON.stringify([...statuses])})`,
      );
      const honest = factoryFrom('127.1.0.1');
      for (let attempt = 0; attempt < 5; attempt++) {
        const link = await openLink(honest, b.url, { role: 'initiator', responder: b.identity }, { timers: { handshakeTimeoutMs: 10_000 } });
        expect(link.isOpen, `honest link ${attempt}`).to.equal(true);
        link.close();
        const refusedBefore = statuses.get(503) ?? 0;
        await waitFor(() => (statuses.get(503) ?? 0) >= refusedBefore + 20, 30_000, 'more of the flood refused');
      }
    } finally {
      flooding = false;
      await Promise.all(flooders);
    }
    // The flood was held back by its own address and block buckets, not by everyone's.
    expect(await relay.metric('allium_handshakes_total', { result: 'handshake_rate_ip' })).to.be.greaterThan(0);
    expect(await relay.metric('allium_handshakes_total', { result: 'handshake_rate_block' })).to.be.greaterThan(0);
    expect(statuses.get(101) ?? 0, 'the flood got some upgrades (its own budget)').to.be.greaterThan(0);
  });
});
