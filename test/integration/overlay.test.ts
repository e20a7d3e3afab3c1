/**
 * The supernode overlay with separate relay processes: convergence, expiry of a killed relay, identity kept across
 * restarts, clean SIGTERM shutdown, and the client's cross-checked directory fetch.
 */
import { expect } from 'chai';
import { fetchFromRelay, crossCheck } from '../../client/directory.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import type { Link } from '../../net/link.js';
import { startNetwork, startRelay, waitFor, type TestNetwork } from '../helpers/network.js';

async function clientLink(bootstrapLine: string): Promise<Link> {
  const b = parseBootstrap(bootstrapLine);
  return openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
}

async function directoryOf(line: string): Promise<string[]> {
  const link = await clientLink(line);
  try {
    const { raws } = await fetchFromRelay(link, 0);
    // A descriptor can expire between the relay serving it and our check; a client would skip it too.
    const out: string[] = [];
    for (const r of raws) {
      try {
        out.push(verifyDescriptor(r, Date.now()).fingerprint);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_DESCRIPTOR_EXPIRED') throw e;
      }
    }
    return out.sort();
  } finally {
    link.close();
  }
}

describe('overlay (10 relay processes)', function () {
  this.timeout(120_000);
  let net: TestNetwork;

  before(async () => {
    net = await startNetwork(10, { timing: { descriptor_lifetime: 8000, descriptor_renew: 1500, gossip_interval: 1000 } });
  });
  after(async () => net?.stop());

  it('converges: every relay serves the same directory of all 10 relays', async () => {
    const expected = net.relays.map((r) => r.fingerprint).sort();
    await waitFor(
      async () => {
        const views = await Promise.all(net.relays.map((r) => directoryOf(r.bootstrap)));
        return views.every((v) => JSON.stringify(v) === JSON.stringify(expected));
      },
      20_000,
      'identical directories',
    );
  });

  it('a client cross-checks the directory from several relays', async () => {
    const links = await Promise.all(net.relays.slice(0, 3).map((r) => clientLink(r.bootstrap)));
    try {
      const pages = await Promise.all(links.map((l) => fetchFromRelay(l, 0)));
      const result = crossCheck(
        pages.map((p) => p.raws),
        Date.now(),
      );
      expect(result.accepted.map((d) => d.fingerprint).sort()).to.deep.equal(net.relays.map((r) => r.fingerprint).sort());
      // A source that injects or omits entries is outvoted.
      const forgedSource = pages[0]!.raws.slice(1);
      const outvoted = crossCheck([forgedSource, pages[1]!.raws, pages[2]!.raws], Date.now());
      expect(outvoted.accepted).to.have.length(10);
    } finally {
      for (const l of links) l.close();
    }
  });

  it('a killed relay expires from every directory', async () => {
    const victim = net.relays[5]!;
    await victim.kill('SIGKILL');
    const others = net.relays.filter((r) => r !== victim);
    await waitFor(
      async () => {
        const views = await Promise.all(others.map((r) => directoryOf(r.bootstrap)));
        return views.every((v) => v.length === 9 && !v.includes(victim.fingerprint));
      },
      20_000,
      'expiry everywhere',
    );
  });

  it('SIGTERM stops a relay cleanly (exit 0) and a restart keeps its identity', async () => {
    const r = net.relays[7]!;
    const code = await r.kill('SIGTERM');
    expect(code).to.equal(0);
    const again = await startRelay({
      dataDir: r.dataDir,
      bootstrap: [net.bootstrap],
      nickname: 'again',
      timing: { descriptor_lifetime: 8000, descriptor_renew: 1500 },
    });
    try {
      expect(again.fingerprint).to.equal(r.fingerprint);
      await waitFor(async () => (await directoryOf(net.bootstrap)).includes(r.fingerprint), 10_000, 'rejoin');
    } finally {
      await again.kill('SIGKILL');
    }
  });
});
