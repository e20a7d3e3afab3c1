/** specs/vectors/ntor-onion.json against protocol/onion.ts and protocol/ntor.ts. */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { ONION_HEADER_LEN, PROTOID, REPLY_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { createOnion, openReply, processOnion, type ReplayGuard } from '../../protocol/onion.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { byteQueue, hex, readVectors } from '../helpers/vectors.js';

interface HopVector {
  identitySeed: string;
  identity: string;
  onionSecretKey: string;
  onionPublicKey: string;
  x: string;
  X: string;
  header: string;
  result: 'extend' | 'terminal';
  next: string | null;
  relayRandomSeed: string;
  relayRandom: string;
  relayRandomCalls: number[];
  y: string;
  Y: string;
  reply: string;
  keys: { forward: string; backward: string; binding: string };
}
interface OnionVectors {
  protoid: string;
  headerLength: number;
  replyLength: number;
  circuits: { pathLength: number; clientRandomSeed: string; clientRandom: string; clientRandomCalls: number[]; hops: HopVector[]; status: number }[];
}

const V = readVectors<OnionVectors>('ntor-onion.json');
const noReplay: ReplayGuard = { checkAndRecord: () => false };
/** The bytes seededRandom(seed) returns for calls of these sizes, concatenated. */
const drbgBytes = (seed: string, calls: number[]): string => {
  const r = seededRandom(seed);
  return calls.map((n) => toHex(r(n))).join('');
};
const keysHex = (k: HopKeys) => ({ forward: toHex(k.forward), backward: toHex(k.backward), binding: toHex(k.binding) });

describeEachBinding('vectors: ntor-onion.json', () => {
  it('has the constants of protocol/constants.ts and paths of 1, 3 and 8 hops', () => {
    expect(V.protoid).to.equal(PROTOID);
    expect(V.headerLength).to.equal(ONION_HEADER_LEN);
    expect(V.replyLength).to.equal(REPLY_LEN);
    expect(V.circuits.map((c) => c.pathLength)).to.deep.equal([1, 3, 8]);
  });

  for (const v of V.circuits) {
    describe(`path of ${v.pathLength}`, () => {
      it('relay keys follow from their seeds; the random streams follow from their seeds', () => {
        for (const h of v.hops) {
          expect(toHex(IdentityKey.fromSeed(hex(h.identitySeed)).publicKey)).to.equal(h.identity);
          expect(toHex(crypto().x25519Public(hex(h.onionSecretKey)))).to.equal(h.onionPublicKey);
          expect(drbgBytes(h.relayRandomSeed, h.relayRandomCalls)).to.equal(h.relayRandom);
          expect(h.relayRandom.startsWith(h.y)).to.equal(true);
          expect(toHex(crypto().x25519Public(hex(h.y)))).to.equal(h.Y);
        }
        expect(drbgBytes(v.clientRandomSeed, v.clientRandomCalls)).to.equal(v.clientRandom);
      });

      it('the client builds the first header from its random bytes', () => {
        const q = byteQueue(hex(v.clientRandom));
        const onion = createOnion(
          v.hops.map((h) => ({ identity: hex(h.identity), onionKey: hex(h.onionPublicKey) })),
          { random: q.random },
        );
        expect(q.remaining()).to.equal(0);
        expect(toHex(onion.header)).to.equal(v.hops[0]!.header);
        onion.hops.forEach((h, i) => {
          expect(toHex(h.x)).to.equal(v.hops[i]!.x);
          expect(toHex(h.X)).to.equal(v.hops[i]!.X);
        });
      });

      it('every hop processes its header, replies, and the client opens the reply', () => {
        const relayHops = v.hops.map((h, i) => {
          const q = byteQueue(hex(h.relayRandom));
          const kp = { publicKey: hex(h.onionPublicKey), secretKey: hex(h.onionSecretKey) };
          const r = processOnion(hex(h.header), { identity: hex(h.identity), onionKeys: [kp], replay: noReplay, random: q.random });
          expect(r.kind).to.equal(h.result);
          if (r.kind === 'extend') {
            expect(toHex(r.next)).to.equal(h.next);
            expect(toHex(r.header)).to.equal(v.hops[i + 1]!.header);
          } else {
            expect(h.next).to.equal(null);
            expect(i).to.equal(v.hops.length - 1);
          }
          expect(keysHex(r.hop.keys)).to.deep.equal(h.keys);
          return { hop: r.hop, q };
        });
        let fromNext: Uint8Array | null = null;
        for (let i = relayHops.length - 1; i >= 0; i--) {
          fromNext = relayHops[i]!.hop.reply(fromNext);
          expect(toHex(fromNext)).to.equal(v.hops[i]!.reply);
          expect(relayHops[i]!.q.remaining()).to.equal(0);
        }

        const q = byteQueue(hex(v.clientRandom));
        const onion = createOnion(
          v.hops.map((h) => ({ identity: hex(h.identity), onionKey: hex(h.onionPublicKey) })),
          { random: q.random },
        );
        const opened = openReply(onion, hex(v.hops[0]!.reply));
        expect(opened.status).to.equal(v.status);
        expect(opened.hops.map(keysHex)).to.deep.equal(v.hops.map((h) => h.keys));
      });
    });
  }
});
