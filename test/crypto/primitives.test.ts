/**
 * Known-answer tests of the primitives under the facade, from their RFCs, through both libsodium bindings:
 * X25519 (RFC 7748 §5.2, §6.1), Ed25519 (RFC 8032 §7.1 tests 1-3 and SHA(abc)), BLAKE2b-512 (RFC 7693 App. A),
 * ChaCha20 (RFC 8439 §2.3.2, §2.4.2), Poly1305 (§2.5.2) and ChaCha20-Poly1305 (§2.8.2).
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { crypto } from '../../crypto/index.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex } from '../helpers/vectors.js';

const range = (start: number, n: number) => Uint8Array.from({ length: n }, (_, i) => start + i);
const SUNSCREEN = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

const ED25519 = [
  {
    name: 'RFC 8032 test 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'RFC 8032 test 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'RFC 8032 test 3 (two bytes)',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'RFC 8032 test SHA(abc)',
    seed: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    pk: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    msg: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    sig: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

describeEachBinding('crypto primitives: RFC known answers', () => {
  describe('X25519 (RFC 7748)', () => {
    it('§5.2 first test vector', () => {
      const out = crypto().x25519(
        hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
        hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
      );
      expect(toHex(out)).to.equal('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    });

    it('§5.2 second test vector (u has its top bit set, which X25519 ignores)', () => {
      const out = crypto().x25519(
        hex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
        hex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
      );
      expect(toHex(out)).to.equal('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
    });

    it('§5.2 iterated: after 1 and 1,000 iterations', () => {
      let k: Uint8Array = new Uint8Array(32);
      k[0] = 9;
      let u: Uint8Array = Uint8Array.from(k);
      for (let i = 1; i <= 1000; i++) {
        const next = crypto().x25519(k, u);
        u = k;
        k = next;
        if (i === 1) expect(toHex(k)).to.equal('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
      }
      expect(toHex(k)).to.equal('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
    });

    it('§6.1 Diffie-Hellman: both public keys and the shared secret', () => {
      const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
      const b = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
      const A = crypto().x25519Public(a);
      const B = crypto().x25519Keypair(b).publicKey;
      expect(toHex(A)).to.equal('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
      expect(toHex(B)).to.equal('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
      const K = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      expect(toHex(crypto().x25519(a, B))).to.equal(K);
      expect(toHex(crypto().x25519(b, A))).to.equal(K);
    });

    it('refuses small-order points with ERR_BAD_POINT', () => {
      const scalar = range(1, 32);
      expectCode(() => crypto().x25519(scalar, new Uint8Array(32)), 'ERR_BAD_POINT');
      expectCode(() => crypto().x25519(scalar, Uint8Array.of(1, ...new Uint8Array(31))), 'ERR_BAD_POINT');
    });
  });

  describe('Ed25519 (RFC 8032 §7.1)', () => {
    it('the SHA(abc) message is SHA-512("abc")', () => {
      expect(createHash('sha512').update('abc').digest('hex')).to.equal(ED25519[3]!.msg);
    });

    for (const v of ED25519) {
      it(v.name, () => {
        const kp = crypto().ed25519Keypair(hex(v.seed));
        expect(toHex(kp.publicKey)).to.equal(v.pk);
        expect(toHex(kp.secretKey)).to.equal(v.seed + v.pk);
        const sig = crypto().sign(hex(v.msg), kp.secretKey);
        expect(toHex(sig)).to.equal(v.sig);
        expect(crypto().verify(sig, hex(v.msg), hex(v.pk))).to.equal(true);
        const bad = Uint8Array.from(sig);
        bad[0]! ^= 1;
        expect(crypto().verify(bad, hex(v.msg), hex(v.pk))).to.equal(false);
        expectCode(() => crypto().verifyOrThrow(bad, hex(v.msg), hex(v.pk), 'test'), 'ERR_SIGNATURE');
      });
    }
  });

  it('BLAKE2b-512("abc") (RFC 7693 Appendix A)', () => {
    expect(toHex(crypto().hash(64, utf8('abc')))).to.equal(
      'ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1' + '7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923',
    );
  });

  describe('ChaCha20 (RFC 8439)', () => {
    it('§2.3.2 block function: keystream block for counter 1', () => {
      const block = new Uint8Array(64);
      crypto().chacha20Xor(block, block, hex('000000090000004a00000000'), 1, range(0, 32));
      expect(toHex(block)).to.equal(
        '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' + 'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
      );
    });

    it('§2.4.2 encryption of the sunscreen text from counter 1, and back', () => {
      const ct = new Uint8Array(SUNSCREEN.length);
      const nonce = hex('000000000000004a00000000');
      crypto().chacha20Xor(ct, SUNSCREEN, nonce, 1, range(0, 32));
      expect(toHex(ct)).to.equal(
        '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b' +
          'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8' +
          '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
          '5af90bbf74a35be6b40b8eedf2785e42874d',
      );
      crypto().chacha20Xor(ct, ct, nonce, 1, range(0, 32));
      expect(toHex(ct)).to.equal(toHex(SUNSCREEN));
    });
  });

  it('Poly1305 §2.5.2', () => {
    const tag = new Uint8Array(16);
    crypto().poly1305(tag, utf8('Cryptographic Forum Research Group'), hex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b'));
    expect(toHex(tag)).to.equal('a8061dc1305136c6c22b8baf0c0127a9');
  });

  describe('ChaCha20-Poly1305 AEAD (RFC 8439 §2.8.2)', () => {
    const key = range(0x80, 32);
    const nonce = hex('070000004041424344454647');
    const ad = hex('50515253c0c1c2c3c4c5c6c7');
    const ct =
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6' +
      '3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36' +
      '92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
      '3ff4def08e4b7a9de576d26586cec64b6116';
    const tag = '1ae10b594f09e26a7e902ecbd0600691';

    it('encrypts to the RFC ciphertext and tag', () => {
      expect(toHex(crypto().aeadEncrypt(SUNSCREEN, ad, nonce, key))).to.equal(ct + tag);
    });

    it('encrypts into a slot of a larger buffer to the same bytes, and refuses a wrong-size or overlapping output', () => {
      const slab = new Uint8Array(SUNSCREEN.length + 16 + 8).fill(0xaa);
      crypto().aeadEncryptInto(slab.subarray(4, 4 + SUNSCREEN.length + 16), SUNSCREEN, ad, nonce, key);
      expect(toHex(slab.subarray(4, 4 + SUNSCREEN.length + 16))).to.equal(ct + tag);
      expect(toHex(slab.subarray(0, 4)) + toHex(slab.subarray(-4))).to.equal('aa'.repeat(8));
      expect(() => crypto().aeadEncryptInto(new Uint8Array(SUNSCREEN.length + 15), SUNSCREEN, ad, nonce, key))
        .to.throw()
        .with.property('code', 'ERR_KEY_FORMAT');
      const shared = new Uint8Array(2 * SUNSCREEN.length + 16);
      const m = shared.subarray(0, SUNSCREEN.length);
      expect(() => crypto().aeadEncryptInto(shared.subarray(8, 8 + SUNSCREEN.length + 16), m, ad, nonce, key))
        .to.throw()
        .with.property('code', 'ERR_INTERNAL');
    });

    it('decrypts it, and refuses a changed tag, ciphertext or associated data', () => {
      expect(toHex(crypto().aeadDecrypt(hex(ct + tag), ad, nonce, key)!)).to.equal(toHex(SUNSCREEN));
      const badTag = hex(ct + tag);
      badTag[badTag.length - 1]! ^= 0x80;
      expect(crypto().aeadDecrypt(badTag, ad, nonce, key)).to.equal(null);
      const badCt = hex(ct + tag);
      badCt[0]! ^= 1;
      expect(crypto().aeadDecrypt(badCt, ad, nonce, key)).to.equal(null);
      expect(crypto().aeadDecrypt(hex(ct + tag), hex('50515253c0c1c2c3c4c5c6c6'), nonce, key)).to.equal(null);
      expect(crypto().aeadDecrypt(hex(tag).subarray(0, 15), ad, nonce, key)).to.equal(null);
    });

    it('decrypts in place to the same plaintext, and refuses a forged buffer', () => {
      const buf = hex(ct + tag);
      const view = crypto().aeadDecryptInPlace(buf, ad, nonce, key)!;
      expect(toHex(view)).to.equal(toHex(SUNSCREEN));
      expect(view.buffer).to.equal(buf.buffer);
      expect(view.byteOffset).to.equal(buf.byteOffset);
      const forged = hex(ct + tag);
      forged[5]! ^= 4;
      expect(crypto().aeadDecryptInPlace(forged, ad, nonce, key)).to.equal(null);
      // What is left in a refused buffer is unspecified (libsodium clears it), never plaintext of a forgery.
      expect(toHex(forged.subarray(0, ct.length / 2))).to.not.equal(toHex(SUNSCREEN));
      expect(crypto().aeadDecryptInPlace(hex(tag).subarray(0, 15), ad, nonce, key)).to.equal(null);
    });
  });
});
