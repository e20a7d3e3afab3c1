/**
 * Every simulation run follows from its seed: the same seed gives byte-identical output, a different seed a
 * different one. The scenario touches every source of randomness and time the real code uses: relay and client keys,
 * link handshakes, gossip partners and jitter, path and guard choices, circuit ids, latencies, loss and failures.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { runChurn } from '../../sim/churn-model.js';
import { FullRelay, MessageRelay } from '../../sim/relay-node.js';
import { simulate } from '../../sim/world.js';

async function scenario(seed: number): Promise<string> {
  const full = await simulate({ seed, network: { loss: { kind: 'uniform', min: 0, max: 0.05 } } }, async (w) => {
    const relays: FullRelay[] = [];
    for (let i = 0; i < 7; i++) {
      const r = new FullRelay(w, w.network.addHost(), i, { store: true, exit: i % 3 === 0 });
      relays.push(r);
      r.start(i === 0 ? [] : [relays[w.rng.int(i)]!]);
      await w.run(700);
    }
    await w.run(20_000);
    const client = new AlliumClient({
      bootstrap: relays.slice(0, 3).map((r) => r.bootstrapLine),
      socketFactory: w.network.socketFactory(w.network.addHost()),
      poolSize: 0,
    });
    await w.wait(client.start());
    const paths: string[][] = [];
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = w.now;
      const c = await w.wait(client.newCircuit({ exitPort: 443 }));
      times.push(w.now - t);
      paths.push(c.path.map((d) => d.nick));
    }
    const content = new ContentClient(client);
    const link = await w.wait(content.put(new TextEncoder().encode(`seed ${seed}`)));
    relays[4]!.down('crash');
    await w.run(60_000);
    const back = new TextDecoder().decode(await w.wait(content.get(link)));
    content.close();
    await w.wait(client.stop());
    const out = {
      ids: relays.map((r) => r.fingerprint.slice(0, 16)),
      sizes: relays.map((r) => r.directory.size),
      gossip: relays.map((r) => r.metrics.gossipBytes.total),
      paths,
      times,
      link,
      back,
      now: w.now,
      events: w.clock.eventsRun,
    };
    for (const r of relays) r.dispose();
    return out;
  });
  const overlay = await simulate({ seed }, async (w) => {
    const relays: MessageRelay[] = [];
    for (let i = 0; i < 40; i++) {
      const r = new MessageRelay(w, w.network.addHost(), i, {});
      relays.push(r);
      r.start(i === 0 ? [] : [relays[w.rng.int(i)]!, relays[w.rng.int(i)]!]);
      await w.run(1000);
    }
    await w.run(600_000);
    return { bytes: relays.map((r) => r.host.traffic.payloadOut), events: w.clock.eventsRun };
  });
  const churn = runChurn({ seed, relays: 30, k: 3, files: 2, churnPerHour: 0.2, hours: 3 });
  return JSON.stringify({ full, overlay, churn });
}

describe('sim: determinism', () => {
  it('gives identical output for one seed and different output for another', async () => {
    const a = await scenario(42);
    const b = await scenario(42);
    const c = await scenario(43);
    expect(a).to.equal(b);
    expect(c).to.not.equal(a);
    expect(JSON.parse(a).full.back).to.equal('seed 42');
  });

  it('leaves the process as it found it', async () => {
    const realNow = Date.now();
    const realTimeout = globalThis.setTimeout;
    const realRandom = Math.random;
    await simulate({ seed: 1 }, async (w) => {
      await w.run(10 * 24 * 3_600_000);
      expect(Date.now()).to.be.below(realNow - 1000); // virtual time starts at one hour after the epoch
    });
    expect(globalThis.setTimeout).to.equal(realTimeout);
    expect(Math.random).to.equal(realRandom);
    expect(Math.abs(Date.now() - realNow)).to.be.below(60_000);
  });
});
