/**
 * tweetnacl as an independent implementation of the primitives the two libsodium bindings share with it:
 * X25519, Ed25519 (keys from seed, detached signatures), SHA-512 (under Ed25519→X25519 secret conversion), and the
 * crypto_box construction inside libsodium's sealed boxes (X25519 + HSalsa20 + XSalsa20-Poly1305, with the nonce
 * BLAKE2b-192(epk | pk)). Random inputs from a seeded source, 100 per primitive, byte for byte.
 */
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { crypto } from '../../crypto/index.js';
import { seededRandom } from '../../crypto/drbg.js';
import { concatBytes, toHex } from '../../protocol/bytes.js';
import { describeEachBinding } from '../helpers/bindings.js';

const RUNS = 100;

/** tweetnacl is slow (Ed25519 especially); both bindings see the same inputs, so its answers are computed once. */
const memo = new Map<string, unknown>();
function once<T>(key: string, f: () => T): T {
  if (!memo.has(key)) memo.set(key, f());
  return memo.get(key) as T;
}

describeEachBinding('crosscheck with tweetnacl', () => {
  const rnd = () => seededRandom('crosscheck/tweetnacl');

  it('X25519: public keys and shared secrets agree', () => {
    const r = rnd();
    for (let i = 0; i < RUNS; i++) {
      const a = r(32);
      const b = r(32);
      const A = crypto().x25519Public(a);
      expect(toHex(A)).to.equal(toHex(nacl.scalarMult.base(a)));
      const B = nacl.scalarMult.base(b);
      expect(toHex(crypto().x25519(a, B))).to.equal(toHex(nacl.scalarMult(a, B)));
      // a random 32-byte string as the peer's key (on the curve or its twist; top bit ignored by both)
      const u = r(32);
      expect(toHex(crypto().x25519(a, u))).to.equal(toHex(nacl.scalarMult(a, u)));
    }
  });

  it('Ed25519: keys from seed, signatures, and verification both ways', () => {
    const r = rnd();
    for (let i = 0; i < RUNS; i++) {
      const seed = r(32);
      const msg = r(r(1)[0]!);
      const bad = (sig: Uint8Array) => {
        const b = Uint8Array.from(sig);
        b[i % 64]! ^= 1 << (i % 8);
        return b;
      };
      const theirs = once(`ed25519/${i}`, () => {
        const kp = nacl.sign.keyPair.fromSeed(seed);
        const sig = nacl.sign.detached(msg, kp.secretKey);
        // tweetnacl's verify is the slowest call here: it checks the first 20 signatures and 10 forgeries
        const verifies = i < 20 ? nacl.sign.detached.verify(msg, sig, kp.publicKey) : true;
        const badVerifies = i < 10 ? nacl.sign.detached.verify(msg, bad(sig), kp.publicKey) : false;
        return { kp, sig, verifies, badVerifies };
      });
      const ours = crypto().ed25519Keypair(seed);
      expect(toHex(ours.publicKey)).to.equal(toHex(theirs.kp.publicKey));
      expect(toHex(ours.secretKey)).to.equal(toHex(theirs.kp.secretKey));
      const sig = crypto().sign(msg, ours.secretKey);
      expect(toHex(sig)).to.equal(toHex(theirs.sig));
      expect(theirs.verifies).to.equal(true);
      expect(crypto().verify(sig, msg, ours.publicKey)).to.equal(true);
      expect(theirs.badVerifies).to.equal(false);
      expect(crypto().verify(bad(sig), msg, ours.publicKey)).to.equal(false);
    }
  });

  it('Ed25519 → X25519: the secret scalar is SHA-512(seed)[0..32) clamped, and matches the converted public key', () => {
    const r = rnd();
    for (let i = 0; i < RUNS; i++) {
      const kp = crypto().ed25519Keypair(r(32));
      const x = crypto().edSecretToX25519(kp.secretKey);
      const h = nacl.hash(kp.seed).slice(0, 32);
      h[0]! &= 248;
      h[31]! &= 127;
      h[31]! |= 64;
      expect(toHex(x)).to.equal(toHex(h));
      expect(toHex(crypto().edPublicToX25519(kp.publicKey))).to.equal(toHex(nacl.scalarMult.base(x)));
    }
  });

  it('sealed boxes: tweetnacl opens ours, and we open boxes tweetnacl builds', () => {
    const r = rnd();
    const nonceOf = (epk: Uint8Array, pk: Uint8Array) => crypto().hash(24, concatBytes(epk, pk));
    for (let i = 0; i < RUNS; i++) {
      const kp = crypto().x25519Keypair(r(32));
      const msg = r(r(1)[0]!);

      const sealed = crypto().seal(msg, kp.publicKey);
      const epk = sealed.subarray(0, 32);
      const opened = nacl.box.open(sealed.subarray(32), nonceOf(epk, kp.publicKey), epk, kp.secretKey);
      expect(opened && toHex(opened)).to.equal(toHex(msg));

      const eph = nacl.box.keyPair.fromSecretKey(r(32));
      const box = nacl.box(msg, nonceOf(eph.publicKey, kp.publicKey), kp.publicKey, eph.secretKey);
      const theirs = concatBytes(eph.publicKey, box);
      expect(toHex(crypto().open(theirs, kp)!)).to.equal(toHex(msg));
      theirs[theirs.length - 1]! ^= 1;
      expect(crypto().open(theirs, kp)).to.equal(null);
    }
  });
});
