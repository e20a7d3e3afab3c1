/** crypto/keys.ts: identity keys and fingerprints, and the onion-key ring's rotation and overlap. */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { fingerprintOf, IdentityKey, OnionKeyRing, parseFingerprint } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { expectCode } from '../helpers/vectors.js';

const pub = (ring: OnionKeyRing) => ring.usable.map((k) => toHex(k.publicKey));

describe('crypto/keys', () => {
  describe('IdentityKey', () => {
    it('derives from a seed, signs, and round-trips its fingerprint', () => {
      const id = IdentityKey.fromSeed(new Uint8Array(32).fill(7));
      expect(toHex(id.publicKey)).to.equal(toHex(crypto().ed25519Keypair(new Uint8Array(32).fill(7)).publicKey));
      expect(crypto().verify(id.sign(Uint8Array.of(1, 2)), Uint8Array.of(1, 2), id.publicKey)).to.equal(true);
      expect(id.fingerprint).to.match(/^[0-9a-f]{64}$/);
      expect(toHex(parseFingerprint(id.fingerprint.toUpperCase()))).to.equal(toHex(id.publicKey));
      expect(fingerprintOf(id.publicKey)).to.equal(id.fingerprint);
    });

    it('refuses seeds and fingerprints of the wrong form (ERR_KEY_FORMAT)', () => {
      expectCode(() => IdentityKey.fromSeed(new Uint8Array(31)), 'ERR_KEY_FORMAT');
      expectCode(() => parseFingerprint('ab'.repeat(31)), 'ERR_KEY_FORMAT');
      expectCode(() => parseFingerprint('zz'.repeat(32)), 'ERR_KEY_FORMAT');
    });
  });

  describe('OnionKeyRing', () => {
    const opts = { lifetimeMs: 1000, overlapMs: 300 };

    it('rotates when the current key reaches its lifetime, not before', () => {
      const ring = OnionKeyRing.create(0, opts);
      expect(ring.nextRotation()).to.equal(1000);
      expect(ring.rotate(999)).to.deep.equal({ rotated: false, dropped: [] });
      expect(ring.usable).to.have.length(1);
      const first = pub(ring)[0];
      expect(ring.rotate(1000).rotated).to.equal(true);
      expect(ring.current.created).to.equal(1000);
      expect(ring.nextRotation()).to.equal(2000);
      expect(pub(ring)).to.have.length(2);
      expect(pub(ring)[1]).to.equal(first); // current first, then the older key
    });

    it('keeps the replaced key for exactly the overlap, then drops and wipes it', () => {
      const ring = OnionKeyRing.create(0, opts);
      const old = ring.current.keyPair;
      ring.rotate(1000);
      expect(ring.rotate(1299).dropped).to.have.length(0);
      const { rotated, dropped } = ring.rotate(1300);
      expect(rotated).to.equal(false);
      expect(dropped).to.have.length(1);
      expect(dropped[0]).to.equal(old);
      expect(old.secretKey.every((b) => b === 0)).to.equal(true);
      expect(ring.usable).to.have.length(1);
    });

    it('forced rotations inside the overlap keep every key whose successor is young enough', () => {
      const ring = OnionKeyRing.create(0, opts);
      ring.rotate(100, true);
      ring.rotate(200, true);
      expect(ring.usable).to.have.length(3);
      // at 400 the first key's successor (made at 100) is 300 old: the first key goes, the second stays
      expect(ring.rotate(400).dropped).to.have.length(1);
      expect(ring.usable).to.have.length(2);
      expect(ring.rotate(500).dropped).to.have.length(1);
      expect(ring.usable).to.have.length(1);
      expect(ring.current.created).to.equal(200);
    });

    it('a flood that fills filter after filter leaves at most MAX_ONION_KEYS keys: early-replaced keys go first, and soon', () => {
      // Defaults: a week of lifetime, a day of overlap, an hour for a key replaced early, three keys.
      const ring = OnionKeyRing.create(0);
      ring.rotate(7 * 24 * 3600_000); // the scheduled rotation: the first key keeps its day of overlap
      const scheduledPredecessor = pub(ring)[1];
      const t0 = 7 * 24 * 3600_000;
      const sizes: number[] = [];
      const dropped: number[] = [];
      // A full filter every minute for ten minutes (about 17 000 valid onions a second).
      for (let i = 1; i <= 10; i++) {
        const r = ring.rotate(t0 + i * 60_000, true);
        sizes.push(ring.usable.length);
        dropped.push(r.dropped.length);
        for (const k of r.dropped) expect(k.secretKey.every((b) => b === 0)).to.equal(true);
      }
      console.log(`      keys held after each of 10 early rotations in 10 minutes: ${sizes.join(' ')}`);
      expect(Math.max(...sizes)).to.equal(3);
      // The key replaced on schedule keeps its day; the early ones go, oldest first.
      expect(pub(ring)[2]).to.equal(scheduledPredecessor);
      expect(dropped.slice(2).every((n) => n === 1)).to.equal(true);
      // Once the flood stops, the last early-replaced key goes after an hour.
      const lastEarly = ring.rotate(t0 + 10 * 60_000 + 3600_000);
      expect(lastEarly.dropped).to.have.length(1);
      expect(ring.usable).to.have.length(2);
      expect(pub(ring)[1]).to.equal(scheduledPredecessor);
    });

    it('orders the keys it is given newest first, and needs at least one (ERR_INTERNAL)', () => {
      const a = { keyPair: crypto().x25519Keypair(), created: 5 };
      const b = { keyPair: crypto().x25519Keypair(), created: 50 };
      const ring = new OnionKeyRing([a, b], opts);
      expect(ring.current).to.equal(b);
      // The older key was replaced when the newer one was made.
      expect(ring.all).to.deep.equal([b, { ...a, replaced: 50 }]);
      expectCode(() => new OnionKeyRing([]), 'ERR_INTERNAL');
    });

    it('defaults to a week of lifetime, a day of overlap, an hour for a key replaced early, and three keys', () => {
      const ring = OnionKeyRing.create(0);
      expect([ring.lifetimeMs, ring.overlapMs]).to.deep.equal([7 * 24 * 3600 * 1000, 24 * 3600 * 1000]);
      expect([ring.earlyOverlapMs, ring.maxKeys]).to.deep.equal([3600 * 1000, 3]);
    });
  });
});
