/**
 * A client paces its CREATEs per entry link (specs/path.md §3.3): a burst of builds larger than the entry's per-link
 * CREATE bucket (specs/circuits.md §7.2) waits its turn instead of being refused — with relay processes on
 * 127.0.0.1 whose per-link limit is 5 a second (burst 50) and a client pacing at 4.5 (burst 45), 60 builds at once
 * all succeed (without the pacer, the ten beyond the relay's burst are refused, each try at once). A waiting build
 * is abandoned with ERR_ABORTED when its caller aborts, and leaves no timer behind; one whose link closes after its
 * turn, before its CREATE, goes to its next try without counting against the guard in path bias.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { CreatePacer } from '../../client/create-pacer.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { isAlliumError } from '../../protocol/errors.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

describe('CREATE pacing per entry link (relay processes)', function () {
  this.timeout(120_000);
  let net: TestNetwork;

  before(async () => {
    net = await startNetwork(4, { exits: 1, extra: { creates_per_second_per_link: 5 } });
  });
  after(async () => {
    await net?.stop();
  });

  /** A client entering through relay 0 alone, pacing at `createsPerSecond`, without padding. */
  const pinnedClient = (createsPerSecond: number): AlliumClient =>
    new AlliumClient({
      bootstrap: [net.bootstrap],
      socketFactory: nodeSocketFactory,
      enforceDistinctSubnets: false,
      poolSize: 0,
      linkPadding: 'off',
      circuitPadding: false,
      createsPerSecond,
      entryRelays: [net.relays[0]!.fingerprint],
    });

  it('60 builds at once through one entry whose bucket holds 50: every one is built, none refused', async () => {
    const client = pinnedClient(4.5);
    await client.start();
    try {
      const results = await Promise.allSettled(Array.from({ length: 60 }, () => client.newCircuit({ exitPort: null })));
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failed, 'builds refused').to.deep.equal([]);
      for (const r of results) if (r.status === 'fulfilled') r.value.close();
    } finally {
      await client.stop();
    }
  });

  it('a build whose entry link closes after its turn and before its CREATE goes to its next try, counted against no guard', async () => {
    // Guards sampled as usual (not pinned), so that path bias counts the builds through them.
    const client = new AlliumClient({
      bootstrap: [net.bootstrap],
      socketFactory: nodeSocketFactory,
      enforceDistinctSubnets: false,
      poolSize: 0,
      linkPadding: 'off',
      circuitPadding: false,
      createsPerSecond: 1000,
    });
    await client.start();
    try {
      // The first build's turn comes, then its link closes before the build goes on to send its CREATE.
      const inner = client as unknown as { pacerOf(link: Link): CreatePacer; guards: { all: readonly { pb?: { attempts: number; successes: number } }[] } };
      const pacerOf = inner.pacerOf.bind(client);
      let turns = 0;
      inner.pacerOf = (link) => {
        const pacer = pacerOf(link);
        if (turns++ > 0) return pacer;
        return {
          take: async (signal?: AbortSignal) => {
            await pacer.take(signal);
            link.close();
          },
        } as unknown as CreatePacer;
      };
      const circuit = await client.newCircuit({ exitPort: null });
      circuit.close();
      expect(turns, 'a second try').to.equal(2);
      const failed = inner.guards.all.reduce((n, g) => n + (g.pb ? g.pb.attempts - g.pb.successes : 0), 0);
      expect(failed, 'builds counted as failed against a guard').to.equal(0);
    } finally {
      await client.stop();
    }
  });

  it('builds waiting for their turn when the entry link closes go to their next try on a new link, not ERR_ABORTED', async () => {
    const entry = net.relays[0]!.fingerprint;
    const client = pinnedClient(0.5); // burst 5, then one every 2 s
    await client.start();
    try {
      const builds = Array.from({ length: 8 }, () => client.newCircuit({ exitPort: null }));
      const first = await Promise.all(builds.slice(0, 5));
      // The other three wait for the pacer: close the link under them.
      const links = (client as unknown as { links: Map<string, { close(): void }> }).links;
      links.get(entry)!.close();
      const rest = await Promise.allSettled(builds.slice(5));
      expect(rest.map((r) => (r.status === 'fulfilled' ? 'built' : String((r as PromiseRejectedResult).reason)))).to.deep.equal(['built', 'built', 'built']);
      for (const c of first) c.close();
      for (const r of rest) if (r.status === 'fulfilled') r.value.close();
    } finally {
      await client.stop();
    }
  });
});

describe('CreatePacer', () => {
  it('lets a burst through at once, then one build per 1/rate in order; an aborted wait leaves the queue and no timer', async () => {
    let t = 0;
    const pacer = new CreatePacer(100, () => t); // burst 1,000
    for (let i = 0; i < 1000; i++) await pacer.take();
    const order: number[] = [];
    const a = new AbortController();
    const waits = [0, 1, 2].map((i) => pacer.take(i === 1 ? a.signal : undefined).then(() => order.push(i)));
    expect(pacer.queued).to.equal(3);
    a.abort();
    const aborted = await waits[1]!.then(
      () => null,
      (e: unknown) => (isAlliumError(e) ? e.code : e),
    );
    expect(aborted).to.equal('ERR_ABORTED');
    expect(pacer.queued).to.equal(2);
    t += 20; // two tokens' worth
    await Promise.all([waits[0], waits[2]]);
    expect(order).to.deep.equal([0, 2]);
    // Everything served: nothing waits, so a closed pacer has nothing to abort.
    pacer.close();
    expect(pacer.queued).to.equal(0);
  });

  it('a closed link gives its waiting builds ERR_LINK_CLOSED; a rate that is not a positive number is ERR_CONFIG', async () => {
    const pacer = new CreatePacer(0.1, () => 0); // burst 1
    await pacer.take();
    const waiting = pacer.take().then(
      () => null,
      (e: unknown) => (isAlliumError(e) ? e.code : e),
    );
    pacer.close();
    expect(await waiting).to.equal('ERR_LINK_CLOSED');
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new CreatePacer(bad), String(bad))
        .to.throw()
        .with.property('code', 'ERR_CONFIG');
    }
  });
});
