/**
 * Link padding (specs/link.md §4.4) between a client and a relay in this process, over real WebSockets on
 * 127.0.0.1: the relay pads towards a client that asks, within its budget, and never towards a relay, nor with
 * bounds out of range, nor when its operator turned it off; an AlliumClient pads its own direction and asks.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { IdentityKey } from '../../crypto/keys.js';
import { LINK_PADDING_MIN_MS } from '../../protocol/link-padding.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { tempDir, waitFor } from '../helpers/network.js';

type Extra = Partial<ConstructorParameters<typeof Relay>[0]>;

async function startRelay(extra: Extra = {}): Promise<Relay> {
  const relay = new Relay(
    { listen: '127.0.0.1:0', data_dir: tempDir(), storage_quota: 0, log_level: 'silent', allow_private_addresses: true, ...extra },
    { log: silentLogger() },
  );
  await relay.start();
  return relay;
}

/** The relay's end of the link whose other end is `ours` (found by the peer's view of our counters). */
async function relayEnd(relay: Relay, ours: Link): Promise<Link> {
  let found: Link | undefined;
  await waitFor(
    () => (found = [...relay.node.links].find((l) => l.stats.framesIn >= 1 && l.openedAt >= ours.openedAt - 5_000 && !l.isClosed)) !== undefined,
    10_000,
    "the relay's end of the link",
  );
  return found!;
}

/** A round trip on the link: a request the relay answers, so that everything sent before it has been read. */
async function roundTrip(link: Link): Promise<void> {
  await new Promise<void>((resolve) => {
    const off = link.on('link:control', (m) => {
      if (m.t !== 'consensus-head') return;
      off();
      resolve();
    });
    link.sendControl({ t: 'consensus-head-get' });
  });
}

const metric = async (relay: Relay, name: string): Promise<number> => {
  const text = await relay.metrics.text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe('link padding (a relay in this process, real WebSockets)', function () {
  this.timeout(60_000);
  const relays: Relay[] = [];
  const links: Link[] = [];

  after(async () => {
    for (const l of links) l.close();
    await Promise.all(relays.map((r) => r.stop()));
  });

  const client = async (relay: Relay): Promise<Link> => {
    const link = await openLink(nodeSocketFactory, relay.address, { role: 'initiator', responder: relay.identity.publicKey });
    links.push(link);
    return link;
  };

  it('pads towards a client that asks, with all-PADDING frames, and stops when asked', async () => {
    const relay = await startRelay();
    relays.push(relay);
    const link = await client(relay);
    link.sendControl({ t: 'padding', lo: LINK_PADDING_MIN_MS, hi: LINK_PADDING_MIN_MS });
    await waitFor(() => link.stats.paddingFramesIn >= 2, 10_000, 'two padding frames from the relay');
    expect(link.stats.cellsIn, 'padding frames carry no cells').to.equal(0);
    expect(await metric(relay, 'allium_link_padding_frames_total')).to.be.at.least(2);
    const end = await relayEnd(relay, link);
    expect(end.paddingBounds).to.deep.equal({ lo: LINK_PADDING_MIN_MS, hi: LINK_PADDING_MIN_MS });
    link.sendControl({ t: 'padding', lo: 0, hi: 0 });
    await roundTrip(link);
    expect(end.paddingBounds).to.equal(null);
  });

  it('ignores bounds out of range, and requests from a relay', async () => {
    const relay = await startRelay();
    relays.push(relay);
    const link = await client(relay);
    const end = await relayEnd(relay, link);
    for (const [lo, hi] of [
      [LINK_PADDING_MIN_MS - 1, 5_000], // more often than the floor
      [5_000, 4_000], // hi below lo
      [5_000, 60_001], // beyond the ceiling
      [0, 5_000],
    ]) {
      link.sendControl({ t: 'padding', lo: lo!, hi: hi! });
      await roundTrip(link);
      expect(end.paddingBounds, `${lo}..${hi}`).to.equal(null);
    }
    expect(link.isOpen, 'a bad request does not close the link').to.equal(true);

    // A relay's link (it authenticates with a relay identity): padding between relays buys nothing.
    const other = IdentityKey.generate();
    const relayLink = await openLink(nodeSocketFactory, relay.address, {
      role: 'initiator',
      responder: relay.identity.publicKey,
      identity: { publicKey: other.publicKey, secretKey: other.secretKey },
    });
    links.push(relayLink);
    const relayEndOfRelayLink = await relayEnd(relay, relayLink);
    relayLink.sendControl({ t: 'padding', lo: 2_000, hi: 3_000 });
    await roundTrip(relayLink);
    expect(relayEndOfRelayLink.paddingBounds).to.equal(null);
  });

  it('pads nothing when the operator turned link_padding off, and skips what link_padding_budget cannot pay for', async () => {
    const off = await startRelay({ link_padding: false });
    relays.push(off);
    const a = await client(off);
    const endA = await relayEnd(off, a);
    a.sendControl({ t: 'padding', lo: 2_000, hi: 3_000 });
    await roundTrip(a);
    expect(endA.paddingBounds).to.equal(null);

    // A budget of one frame (the burst) and then a byte a second: the first padding frame goes, the next are skipped.
    const poor = await startRelay({ link_padding_budget: 1 });
    relays.push(poor);
    const b = await client(poor);
    b.sendControl({ t: 'padding', lo: LINK_PADDING_MIN_MS, hi: LINK_PADDING_MIN_MS });
    await waitFor(async () => (await metric(poor, 'allium_link_padding_skipped_total')) >= 2, 15_000, 'padding frames skipped for want of budget');
    expect(await metric(poor, 'allium_link_padding_frames_total')).to.equal(1);
    expect(b.stats.paddingFramesIn).to.be.at.most(1);
  });

  it('an AlliumClient pads its own direction and asks its relay to pad towards it', async () => {
    const relay = await startRelay();
    relays.push(relay);
    const c = new AlliumClient({
      bootstrap: [`${relay.address} ${relay.identity.fingerprint}`],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      hops: 1,
    });
    await c.start();
    try {
      const link = [...(c as unknown as { links: Map<string, Link> }).links.values()][0]!;
      expect(link.paddingBounds).to.deep.equal({ lo: 1_500, hi: 9_500 });
      const end = await relayEnd(relay, link);
      await waitFor(() => end.paddingBounds !== null, 10_000, 'the relay padding towards the client');
      expect(end.paddingBounds).to.deep.equal({ lo: 1_500, hi: 9_500 });
      // Both directions within the longest gap (9.5 s) and some slack.
      await waitFor(() => link.stats.paddingFramesOut >= 1 && link.stats.paddingFramesIn >= 1, 25_000, 'a padding frame each way');
    } finally {
      await c.stop();
    }
  });
});
