/**
 * specs/vectors/relay-crypto.json against protocol/relay-crypto.ts, and against a short independent reading of
 * specs/relay-crypto.md written here from the raw primitives (so the vectors cannot merely echo the code).
 */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { toHex } from '../../protocol/bytes.js';
import { ClientCircuitCrypto, payloadOf, RelayHopCrypto } from '../../protocol/relay-crypto.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { refUnwrapForward, refWrapBackward } from '../helpers/relay-crypto-ref.js';
import { byteQueue, hex, readVectors } from '../helpers/vectors.js';

interface RelayCryptoVectors {
  hops: { forward: string; backward: string }[];
  forward: {
    target: number;
    payload: string;
    fillSeed: string;
    fill: string;
    counters: number[];
    sent: string;
    afterHop: { hop: number; result: string; body: string }[];
  }[];
  backward: { origin: number; payload: string; counters: number[]; path: { hop: number; body: string }[]; clientOrigin: number }[];
}

const V = readVectors<RelayCryptoVectors>('relay-crypto.json');
const keys = () => V.hops.map((h) => ({ forward: hex(h.forward), backward: hex(h.backward), binding: new Uint8Array(32) }));

describeEachBinding('vectors: relay-crypto.json', () => {
  it('forward cells: client wrap and each hop’s unwrap', () => {
    let fill = byteQueue(new Uint8Array(0));
    const client = new ClientCircuitCrypto(keys(), { random: (n) => fill.random(n) });
    const relays = keys().map((k) => new RelayHopCrypto(k));
    for (const v of V.forward) {
      expect(toHex(seededRandom(v.fillSeed)(v.fill.length / 2))).to.equal(v.fill);
      expect(relays.slice(0, v.target + 1).map((r) => r.counters.forward)).to.deep.equal(v.counters);
      fill = byteQueue(hex(v.fill));
      const body = client.wrapForward(hex(v.payload), v.target);
      expect(fill.remaining()).to.equal(0);
      expect(toHex(body)).to.equal(v.sent);
      for (const step of v.afterHop) {
        expect(relays[step.hop]!.unwrapForward(body)).to.equal(step.result);
        expect(toHex(body)).to.equal(step.body);
      }
      expect(toHex(payloadOf(body))).to.equal(v.payload);
    }
  });

  it('forward cells: the reference reading of the spec gives the same bodies', () => {
    for (const v of V.forward) {
      let body = hex(v.sent);
      v.afterHop.forEach((step, j) => {
        const r = refUnwrapForward(hex(V.hops[step.hop]!.forward), v.counters[j]!, body);
        expect(r.result).to.equal(step.result);
        expect(toHex(r.body)).to.equal(step.body);
        body = r.body;
      });
    }
  });

  it('backward cells: origin, each wrapping hop, and the client', () => {
    const client = new ClientCircuitCrypto(keys());
    const relays = keys().map((k) => new RelayHopCrypto(k));
    for (const v of V.backward) {
      expect(relays.slice(0, v.origin + 1).map((r) => r.counters.backward)).to.deep.equal(v.counters);
      const body = relays[v.origin]!.originateBackward(hex(v.payload));
      expect(v.path[0]!.hop).to.equal(v.origin);
      expect(toHex(body)).to.equal(v.path[0]!.body);
      for (const step of v.path.slice(1)) {
        relays[step.hop]!.wrapBackward(body);
        expect(toHex(body)).to.equal(step.body);
      }
      expect(client.unwrapBackward(body)).to.equal(v.clientOrigin);
      expect(toHex(payloadOf(body))).to.equal(v.payload);
    }
  });

  it('backward cells: the reference reading of the spec gives the same bodies', () => {
    for (const v of V.backward) {
      let body: Uint8Array = new Uint8Array(1019);
      body.set(hex(v.payload), 128);
      v.path.forEach((step) => {
        body = refWrapBackward(hex(V.hops[step.hop]!.backward), v.counters[step.hop]!, body, step.hop === v.origin);
        expect(toHex(body)).to.equal(step.body);
      });
    }
  });
});
