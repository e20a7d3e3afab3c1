/**
 * Announce-and-pull gossip between relay processes (specs/directory.md §5.2): renewed descriptors reach every
 * relay, and each relay receives each of them whole about once — not once per link, as flooding them would.
 */
import { expect } from 'chai';
import { fetchFromRelay } from '../../client/directory.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

/** Fingerprint → publication time of every descriptor a relay serves. */
async function published(bootstrapLine: string): Promise<Map<string, number>> {
  const b = parseBootstrap(bootstrapLine);
  const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
  try {
    const { raws } = await fetchFromRelay(link, 0);
    const out = new Map<string, number>();
    for (const r of raws) {
      try {
        const d = verifyDescriptor(r, Date.now());
        out.set(d.fingerprint, d.pub);
      } catch {
        // expired between serving and checking
      }
    }
    return out;
  } finally {
    link.close();
  }
}

describe('gossip: announce and pull (6 relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;

  before(async () => {
    // Renewals every 2 s; anti-entropy only at link openings within the test, so every renewal travels by
    // announcements and pulls (or, from its publisher, by push). Two dialed links per relay: not every relay is a
    // neighbour of every other, so renewals are pulled over more than one hop.
    net = await startNetwork(6, { timing: { descriptor_lifetime: 20_000, descriptor_renew: 2_000, gossip_interval: 600_000 }, extra: { overlay_degree: 2 } });
  });
  after(async () => net?.stop());

  const total = async (name: string, labels: Record<string, string>): Promise<number> =>
    (await Promise.all(net.relays.map((r) => r.metric(name, labels)))).reduce((a, b) => a + b, 0);

  it('renewals reach every relay, each relay receiving each renewal whole about once', async () => {
    const n = net.relays.length;
    const asked = await total('allium_gossip_pulls_total', { event: 'asked' });
    const abandoned = await total('allium_gossip_pulls_total', { event: 'abandoned' });
    const before = {
      fresh: await total('allium_gossip_descriptors_total', { result: 'new' }),
      known: await total('allium_gossip_descriptors_total', { result: 'known' }),
    };
    // A relay learns renewals of relays it has no link to only by announcements and pulls; links opened since the
    // start (the authority's tests and measurement circuits) can make every relay a neighbour of every other, and
    // then each renewal comes pushed whole by its publisher and no pull is needed.
    const relayLinks = await Promise.all(net.relays.map((r) => r.metric('allium_links', { kind: 'relay' })));
    const mayLackNeighbour = relayLinks.some((l) => l < n - 1);
    const t0 = Date.now();
    // Until at least two renewals of each relay reached the n − 1 others, and every relay holds a descriptor of every
    // relay published after t0.
    await waitFor(
      async () => {
        if ((await total('allium_gossip_descriptors_total', { result: 'new' })) - before.fresh < 2 * n * (n - 1)) return false;
        const views = await Promise.all(net.relays.map((r) => published(r.bootstrap)));
        return views.every((v) => v.size === n && [...v.values()].every((pub) => pub >= t0));
      },
      30_000,
      'two renewals of every relay at every relay',
    );
    const fresh = (await total('allium_gossip_descriptors_total', { result: 'new' })) - before.fresh;
    const known = (await total('allium_gossip_descriptors_total', { result: 'known' })) - before.known;
    // At least two renewals of each relay reached the n − 1 others…
    expect(fresh).to.be.at.least(2 * n * (n - 1));
    // …partly by pulls where some relay lacked a neighbour, and duplicates stayed rare (flooding would send each
    // renewal to a relay once per link).
    if (mayLackNeighbour) expect((await total('allium_gossip_pulls_total', { event: 'asked' })) - asked, `relay links ${relayLinks.join(', ')}`).to.be.above(0);
    expect(known).to.be.below(0.2 * fresh);
    // No renewal pull in the measured window was given up (the network's start, with its consensus rounds, is not
    // measured: a pull abandoned there is what anti-entropy at link opening exists for).
    expect((await total('allium_gossip_pulls_total', { event: 'abandoned' })) - abandoned).to.equal(0);
  });
});
