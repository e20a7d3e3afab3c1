/**
 * The circuit table of a relay (specs/circuits.md §7.1): circuits are counted per address block of their previous
 * hop, in a pool for client links and a larger one for relay links, so one network cannot take every circuit of a
 * relay; a circuit that ends at the relay and stays silent, with nothing held on it, is destroyed; and whatever a
 * link's peer made goes when the link does. Real onions and links over in-memory sockets; the reactor's clock is the
 * rig's.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { encodeStore } from '../../protocol/content-messages.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { encodeRv, introSignedMessage } from '../../protocol/rendezvous-messages.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { RelayRig, until, type RigConnection } from '../helpers/relay-rig.js';

/** Builds `n` one-hop circuits over `c`; resolves with those the relay accepted and the count it refused. */
async function flood(rig: RelayRig, c: RigConnection, n: number): Promise<{ built: ClientCircuit[]; refused: number }> {
  const r = await Promise.allSettled(Array.from({ length: n }, () => rig.circuit(c)));
  const built = r.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
  return { built, refused: n - built.length };
}

describe('circuit table bounds (specs/circuits.md §7.1)', function () {
  this.timeout(60_000);

  it('links from one address block cannot take every circuit of the relay; an honest client still builds', async () => {
    // The relay's defaults scaled down by 256: 65 536 circuits, 16 384 per link, 1024 per client block, 8192 per
    // relay block become 256, 64, 4 and 32.
    const rig = new RelayRig({ reactor: { maxCircuits: 256, maxCircuitsPerLink: 64, maxCircuitsPerBlock: 4, maxCircuitsPerRelayBlock: 32 } });
    try {
      // Four links from one address, two of them claiming to be relays, each asking for as many circuits as a link may hold.
      const links = await Promise.all([
        rig.connect({ address: '198.51.100.7' }),
        rig.connect({ address: '198.51.100.7' }),
        rig.connect({ address: '198.51.100.8', role: 'relay' }),
        rig.connect({ address: '198.51.100.8', role: 'relay' }),
      ]);
      const results = await Promise.all(links.map((l) => flood(rig, l, 64)));
      const held = results.reduce((n, r) => n + r.built.length, 0);
      const honest = await rig.connect({ address: '203.0.113.9' });
      const honestOutcome = await rig.circuit(honest).then(
        () => 'built',
        (e: Error) => e.message,
      );
      console.log(`      circuits the block holds: ${held} of 256; honest client: ${honestOutcome}`);
      expect(honestOutcome).to.equal('built');
      expect(held).to.equal(4 + 32);
      expect([rig.reactor.circuitsFromBlockOf(links[0]!.relayLink), rig.reactor.circuitsFromBlockOf(links[2]!.relayLink)]).to.deep.equal([4, 32]);
      expect(await rig.drops('circuit_limit_block')).to.equal(4 * 64 - held);
      // What the block's links made goes with them.
      for (const l of links) l.client.close();
      await until(() => links.every((l) => l.relayLink.isClosed), 'the links closed at the relay');
      expect(rig.reactor.circuitsFromBlockOf(links[0]!.relayLink) + rig.reactor.circuitsFromBlockOf(links[2]!.relayLink)).to.equal(0);
      expect(rig.reactor.size).to.equal(1);
    } finally {
      rig.close();
    }
  });

  it('destroys a silent circuit that ends here, but not one with a stream, a registration or recent cells', async () => {
    const rig = new RelayRig({ store: true });
    try {
      const c = await rig.connect();
      const [idle, streaming, intro, talking] = await Promise.all([rig.circuit(c), rig.circuit(c), rig.circuit(c), rig.circuit(c)]);
      // A STORE whose data has not all arrived keeps its stream open.
      const s = streaming!.mux.open();
      s.markOpen();
      streaming!.send({ command: RelayCommand.STORE, streamId: s.id, data: encodeStore({ k: crypto().random(32), t: 'block', n: 32768, c: false }) });
      s.write(new Uint8Array(1000));
      // An endpoint's introduction circuit: a registration.
      const auth = crypto().ed25519Keypair();
      const sig = crypto().sign(introSignedMessage(intro!.bindings[0]!), auth.secretKey);
      const established = intro!.waitFor(RelayCommand.INTRO_ESTABLISHED, 5000);
      intro!.send({ command: RelayCommand.ESTABLISH_INTRO, streamId: 0, data: encodeRv('establishIntro', { k: auth.publicKey, s: sig }) });
      await established;
      await until(() => [...rig.reactor.circuits()].some((h) => rig.streams.muxOf(h) !== undefined), 'the STORE stream open at the relay');

      rig.advance(9 * 60_000);
      talking!.send({ command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) });
      await until(() => [...rig.reactor.circuits()].some((h) => h.lastActivity === rig.time), 'the DROP at the relay');
      rig.advance(2 * 60_000);
      // The relay destroys at once; its DESTROY reaches the client a turn of the loop later (never, before the fix).
      await until(() => idle!.state === 'closed', 'the idle circuit destroyed', 2000).catch(() => undefined);
      const states = { idle: idle!.state, streaming: streaming!.state, intro: intro!.state, talking: talking!.state };
      console.log(`      after 11 minutes: ${JSON.stringify(states)}; circuits at the relay: ${rig.reactor.size}`);
      expect(states).to.deep.equal({ idle: 'closed', streaming: 'open', intro: 'open', talking: 'open' });
      expect(rig.reactor.size).to.equal(3);
      expect(await rig.drops('circuit_idle')).to.equal(1);
    } finally {
      rig.close();
    }
  });

  it('CREATEs are rate limited per client link and per address block before their onion is opened', async () => {
    // Scaled down by five: 10 a second per link and 50 per block, bursts of ten seconds' worth, become 2 and 10.
    const rig = new RelayRig({ reactor: { createsPerSecondPerLink: 2, createsPerSecondPerBlock: 10 } });
    try {
      // Six links from one /24, each sending 40 CREATEs at once.
      const links = await Promise.all(Array.from({ length: 6 }, (_, i) => rig.connect({ address: `198.51.100.${i + 1}` })));
      const results = await Promise.all(links.map((l) => flood(rig, l, 40)));
      const built = results.map((r) => r.built.length);
      const honest = await rig.circuit(await rig.connect({ address: '203.0.113.9' })).then(
        () => 'built',
        (e: Error) => e.message,
      );
      const relayPeer = await rig.circuit(await rig.connect({ address: '198.51.100.50', role: 'relay' })).then(
        () => 'built',
        (e: Error) => e.message,
      );
      console.log(
        `      6 links of one /24 × 40 CREATEs: built ${built.join(' + ')} = ${built.reduce((a, b) => a + b, 0)}; honest client elsewhere: ${honest}; a relay in that /24: ${relayPeer}`,
      );
      expect(built.every((n) => n <= 20)).to.equal(true);
      expect(built.reduce((a, b) => a + b, 0)).to.equal(100);
      expect(honest).to.equal('built');
      expect(relayPeer).to.equal('built');
      // Ten seconds later the block's bucket has refilled.
      rig.advance(10_000);
      expect((await flood(rig, links[0]!, 40)).built.length).to.equal(20);
    } finally {
      rig.close();
    }
  });
});
