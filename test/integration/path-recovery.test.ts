/**
 * Path choice after failures (specs/path.md §5): a relay that failed is avoided for a minute, but avoidance is a
 * preference. When it leaves no path (the only exit failed, and is back), the client tries the failed relays again
 * instead of refusing every stream until the minute is over. A last hop imposed on a circuit that is one primary
 * guard, while the other is down, gets a circuit through a newly sampled guard (specs/path.md §3).
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { isAlliumError } from '../../protocol/errors.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { fetchThrough, startNetwork, startRelay, type RelayProcess, type TestNetwork } from '../helpers/network.js';

describe('path choice after failures (relay processes)', function () {
  this.timeout(240_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let http: Server;
  let port: number;
  let restarted: RelayProcess | null = null;

  before(async () => {
    net = await startNetwork(5, { exits: 1 });
    http = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    port = (http.address() as { port: number }).port;
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start();
  });

  after(async () => {
    await client?.stop();
    await restarted?.kill('SIGKILL');
    http?.close();
    await net?.stop();
  });

  it('stop() while circuits are being built: the builds end with ERR_ABORTED and no circuit is kept', async () => {
    const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 4 });
    await c.start();
    const builds = Array.from({ length: 3 }, () =>
      c.newCircuit({ exitPort: null }).then(
        () => 'built',
        (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
      ),
    );
    await c.stop();
    for (const r of await Promise.all(builds)) expect(r).to.equal('ERR_ABORTED');
    await new Promise((r) => setTimeout(r, 500));
    expect(c.listCircuits()).to.have.length(0);
    let code = '';
    try {
      await c.newCircuit();
    } catch (e) {
      code = isAlliumError(e) ? e.code : String(e);
    }
    expect(code).to.equal('ERR_ABORTED');
  });

  it('the only exit killed and restarted carries streams at once, not after its exclusion ends', async () => {
    const ok = await fetchThrough(client, port);
    expect(ok.status).to.equal(200);
    const exit = net.relays[net.relays.length - 1]!;
    expect(ok.path.at(-1)).to.equal(exit.fingerprint);

    await exit.kill('SIGKILL');
    let code: string | null = null;
    try {
      await fetchThrough(client, port);
    } catch (e) {
      code = isAlliumError(e) ? e.code : String(e);
    }
    expect(code, 'a stream while the only exit is down').to.be.a('string').and.not.equal('ERR_ONION_PATH');

    // The same relay (same keys, same address) comes back.
    restarted = await startRelay({
      dataDir: exit.dataDir,
      listen: exit.address.replace(/^ws:\/\//, '').replace(/\/allium$/, ''),
      nickname: 'exit-again',
      bootstrap: [net.bootstrap],
      exitPolicy: ['accept 127.0.0.1:*', 'reject *:*'],
    });
    expect(restarted.fingerprint).to.equal(exit.fingerprint);
    // Within the minute in which the client avoids it, and with no other exit, a stream still gets through.
    const again = await fetchThrough(client, port);
    expect(again.status).to.equal(200);
    expect(again.body.toString()).to.equal('ok');
    expect(again.path.at(-1)).to.equal(exit.fingerprint);
  });

  it('a circuit to one primary guard while the other is down goes through a newly sampled guard', async () => {
    // A client of its own, so that its guards (and the relay killed) do not change the test above.
    const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await c.start();
    try {
      const [g1, g2] = c.guards.all.map((r) => r.fingerprint);
      expect(g1, 'two primary guards').to.be.a('string');
      expect(g2, 'two primary guards').to.be.a('string');
      const down = (restarted?.fingerprint === g1 ? restarted : net.relays.find((r) => r.fingerprint === g1))!; // the exit runs again as `restarted`
      const target = c.directory.all().find((d) => d.fingerprint === g2)!;
      await down.kill('SIGKILL');
      // The first build tries g1 (still listed) and fails; with g1 failed the only usable guard is the last hop.
      const circuit = await c.newCircuit({ last: target, exitPort: null });
      const path = circuit.path.map((h) => h.fingerprint);
      expect(path.at(-1)).to.equal(g2);
      expect(path[0]).to.not.equal(g1);
      expect(path[0]).to.not.equal(g2);
      expect(
        c.guards.all.map((r) => r.fingerprint),
        'the entry is a guard of the sample',
      ).to.include(path[0]);
      expect(c.guards.all).to.have.length(3);
      circuit.close();
    } finally {
      await c.stop();
    }
  });
});
