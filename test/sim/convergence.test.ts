/**
 * A small overlay converges: relays joining one after another through a couple of running relays all end up holding
 * every relay's signed descriptor — over real links (handshake, frames, CONTROL messages) and over the message-level
 * links the large simulations use — and a relay that joins late learns the whole directory from its first link.
 */
import { expect } from 'chai';
import { FullRelay, MessageRelay, type SimRelay } from '../../sim/relay-node.js';
import { simulate } from '../../sim/world.js';

describe('sim: directory convergence', () => {
  for (const tier of ['real links', 'message links'] as const) {
    it(`gives every relay the full directory (${tier})`, async () => {
      await simulate({ seed: 3 }, async (w) => {
        const n = tier === 'real links' ? 16 : 60;
        const relays: SimRelay[] = [];
        for (let i = 0; i < n; i++) {
          const host = w.network.addHost();
          const r = tier === 'real links' ? new FullRelay(w, host, i) : new MessageRelay(w, host, i);
          relays.push(r);
          r.start(i === 0 ? [] : [relays[w.rng.int(i)]!, relays[w.rng.int(i)]!]);
          await w.run(2000);
        }
        await w.run(30_000);
        const fps = relays.map((r) => r.fingerprint).sort();
        for (const r of relays)
          expect(
            r.directory
              .all()
              .map((d) => d.fingerprint)
              .sort(),
          ).to.deep.equal(fps);
        // Every relay kept links to others (the overlay degree is 8).
        for (const r of relays) expect(r.overlay.neighbourCount).to.be.at.least(Math.min(8, n - 1) / 2);
        // A late joiner holds the directory after its first exchanges.
        const late = tier === 'real links' ? new FullRelay(w, w.network.addHost(), n) : new MessageRelay(w, w.network.addHost(), n);
        late.start([relays[0]!]);
        await w.run(5_000);
        expect(late.directory.size).to.equal(n + 1);
        for (const r of relays) expect(r.directory.size).to.equal(n + 1);
        for (const r of [...relays, late]) if (r instanceof FullRelay) r.dispose();
      });
    });
  }
});
