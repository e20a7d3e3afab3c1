/**
 * A peer that asks and never reads (specs/link.md §4.2): a client link that stops reading and sends hundreds of
 * `dir-get` requests, each answered by a page of about 130 KB, makes a relay process hold at most the link's
 * high-water mark plus one answer for it — not every answer until the periodic max_queue_bytes sweep — while an honest
 * client is still served; once the peer reads again, its requests are answered again.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { fetchFromRelay } from '../../client/directory.js';
import { MAX_CONTROL_MESSAGE } from '../../protocol/control.js';
import { signDescriptor } from '../../protocol/descriptor.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import { openLink } from '../../net/dial.js';
import { LINK_HIGH_WATER_BYTES, type Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

async function link(relay: RelayProcess, identity?: IdentityKey): Promise<Link> {
  const b = parseBootstrap(relay.bootstrap);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity, ...(identity ? { identity } : {}) });
}

describe('a peer that asks and never reads (relay process)', function () {
  this.timeout(180_000);
  let relay: RelayProcess;

  before(async () => {
    // The fillers below answer at no address, so Sybil admission (which dials each new identity) is off here.
    relay = await startRelay({ nickname: 'asked', extra: { sybil_admission: false } });
    // 300 descriptors of about 1.3 KB each: a directory page of 100 is about 130 KB.
    const gossip = await link(relay, IdentityKey.generate());
    const now = Date.now();
    const exit = Array.from({ length: 30 }, (_, i) => `reject 10.${i}.0.0/16:1000-65535`);
    const ds = Array.from({ length: 300 }, (_, i) => {
      const id = IdentityKey.generate();
      return signDescriptor(
        {
          id: id.publicKey,
          onion: crypto().x25519Keypair().publicKey,
          addr: 'ws://127.0.0.1:1/allium',
          nick: `filler${i}`,
          contact: 'x'.repeat(256),
          family: [],
          bw: 1000,
          exit,
          caps: [],
          pub: now,
          exp: now + 3_600_000,
        },
        id.secretKey,
      ).raw;
    });
    for (let i = 0; i < ds.length; i += 100) gossip.sendControl({ t: 'gossip-push', ds: ds.slice(i, i + 100) });
    await waitFor(async () => (await relay.metric('allium_directory_relays')) >= 301, 30_000, 'the directory filled');
    gossip.close();
  });
  after(async () => {
    await relay?.kill('SIGKILL');
  });

  it('holds at most the high-water mark plus one answer, and serves an honest client meanwhile', async () => {
    const hog = await link(relay);
    const pages: number[] = [];
    hog.on('link:control', (m) => {
      if (m.t === 'dir') pages.push(m.ds.length);
    });
    const rssBefore = relay.rssBytes();
    const bytesBefore = await relay.metric('allium_link_bytes_total', { direction: 'in' });
    hog.socket.pause(); // never reads from here on
    const bound = LINK_HIGH_WATER_BYTES + MAX_CONTROL_MESSAGE + FRAME_LEN;
    let worst = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 50; i++) hog.sendControl({ t: 'dir-get', since: 0, after: null });
      // Each maintenance pass (250 ms here) samples the fullest link.
      worst = Math.max(worst, await relay.metric('allium_link_buffered_bytes_max'));
      await new Promise((r) => setTimeout(r, 100));
    }
    // Every request has reached the relay: one cell each, four cells to a frame at most.
    await waitFor(
      async () => (await relay.metric('allium_link_bytes_total', { direction: 'in' })) >= bytesBefore + 125 * FRAME_LEN,
      30_000,
      'the 500 requests at the relay',
    );
    for (let i = 0; i < 10; i++) {
      worst = Math.max(worst, await relay.metric('allium_link_buffered_bytes_max'));
      await new Promise((r) => setTimeout(r, 100));
    }
    // 500 answers of about 130 KB would be 65 MB.
    expect(relay.rssBytes() - rssBefore, 'relay memory growth').to.be.lessThan(40 * 1024 * 1024);
    expect(worst, 'bytes held for the peer').to.be.at.most(bound);
    expect(await relay.metric('allium_drops_total', { reason: 'answer_deferred_dropped' }), 'requests ignored while an answer waits').to.be.greaterThan(400);

    // An honest client is served meanwhile.
    const honest = await link(relay);
    const { raws } = await fetchFromRelay(honest, 0, { signal: AbortSignal.timeout(20_000) });
    expect(raws.length).to.be.greaterThanOrEqual(301);
    honest.close();

    // Reading again: the backlog arrives, and requests are answered again.
    hog.socket.resume();
    await waitFor(() => pages.length > 0, 30_000, 'the backlog');
    await waitFor(async () => (await relay.metric('allium_link_buffered_bytes_max')) < LINK_HIGH_WATER_BYTES, 30_000, 'the link drained');
    const before = pages.length;
    hog.sendControl({ t: 'dir-get', since: 0, after: null });
    await waitFor(() => pages.length > before, 30_000, 'an answer after the drain');
    hog.close();
  });
});
