/**
 * Key blinding (specs/messaging.md §2) and the facade's Ed25519 scalar arithmetic under it: scalar products match a
 * BigInt reference, expanded-key signing matches libsodium's own signatures, blinded keys differ per period and
 * carry no visible relation to the identity or to each other, blinded signatures verify with the ordinary
 * crypto().verify, and both libsodium bindings give byte-identical results.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto, loadCrypto, useCrypto, type Crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import {
  blindingFactor,
  blindPublicKey,
  blindSigningKey,
  descriptorLocator,
  locatorOfBlindedKey,
  PERIOD_SECONDS,
  periodAt,
  periodStart,
  signBlinded,
  subcredential,
} from '../../protocol/key-blinding.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode } from '../helpers/vectors.js';

const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const le = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
/** Scalars: random, all-ones, small, and L and its neighbours (the edges of reduction). */
const scalar = fc.oneof(
  bytes32,
  fc.constant(new Uint8Array(32).fill(0xff)),
  fc.nat({ max: 1000 }).map((n) => leBytes(BigInt(n))),
  fc.integer({ min: -2, max: 2 }).map((d) => leBytes(L + BigInt(d))),
);

function leBytes(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

function popcountXor(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) for (let x = a[i]! ^ b[i]!; x; x >>= 1) n += x & 1;
  return n;
}

const P = 20000; // a period in 2024

describeEachBinding('protocol/key-blinding', () => {
  it('scalar arithmetic matches a BigInt reference mod L', () => {
    fc.assert(
      fc.property(scalar, scalar, (x, y) => {
        expect(le(crypto().edScalarMul(x, y))).to.equal((le(x) * le(y)) % L);
        expect(le(crypto().edScalarAdd(x, y))).to.equal((le(x) + le(y)) % L);
        expect(le(crypto().edScalarReduce(x))).to.equal(le(x) % L);
      }),
      { numRuns: 300 },
    );
  });

  it('expanded-key signing is byte-identical to libsodium signing', () => {
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
        const id = createIdentity(seed);
        const expanded = crypto().edExpandSecret(id.secretKey);
        expect(toHex(crypto().edScalarMultBase(expanded.scalar))).to.equal(toHex(id.publicKey));
        expect(toHex(crypto().signExpanded(msg, expanded))).to.equal(toHex(crypto().sign(msg, id.secretKey)));
      }),
      { numRuns: 50 },
    );
  });

  it('point multiplication refuses small-order points and zero scalars', () => {
    const h = blindingFactor(createIdentity().publicKey, P);
    expectCode(() => crypto().edScalarMult(h, Uint8Array.of(1, ...new Uint8Array(31))), 'ERR_BAD_POINT'); // the identity point
    expectCode(() => crypto().edScalarMultBase(new Uint8Array(32)), 'ERR_BAD_POINT');
    expectCode(() => crypto().edScalarMultBase(leBytes(L)), 'ERR_BAD_POINT');
  });

  it('the blinding factor is clamped as in Tor (a multiple of 8 in [2^254, 2^255))', () => {
    fc.assert(
      fc.property(bytes32, fc.nat({ max: 100000 }), (seed, p) => {
        const h = le(blindingFactor(createIdentity(seed).publicKey, p));
        expect(h % 8n).to.equal(0n);
        expect(h >= 1n << 254n && h < 1n << 255n).to.equal(true);
        expect(h % L).to.not.equal(0n);
      }),
      { numRuns: 50 },
    );
  });

  it("A' = h·A = s'·B, and blinded signatures verify with crypto().verify under A' only", () => {
    fc.assert(
      fc.property(bytes32, fc.nat({ max: 100000 }), fc.uint8Array({ maxLength: 100 }), (seed, p, msg) => {
        const id = createIdentity(seed);
        const key = blindSigningKey(id, p);
        const A1 = blindPublicKey(id.publicKey, p);
        expect(toHex(key.publicKey)).to.equal(toHex(A1));
        expect(toHex(crypto().edScalarMultBase(key.scalar))).to.equal(toHex(A1));
        expect(toHex(blindPublicKey(formatAddress(id.publicKey), p))).to.equal(toHex(A1));
        const sig = signBlinded(key, msg);
        expect(crypto().verify(sig, msg, A1)).to.equal(true);
        expect(crypto().verify(sig, msg, id.publicKey)).to.equal(false);
        expect(crypto().verify(sig, msg, blindPublicKey(id.publicKey, p + 1))).to.equal(false);
        expect(crypto().verify(sig, utf8('another message'), A1)).to.equal(false);
      }),
      { numRuns: 40 },
    );
  });

  it('blinded keys, locators and subcredentials differ per period and per identity', () => {
    const ids = Array.from({ length: 8 }, () => createIdentity());
    const seen = new Set<string>();
    for (const id of ids) {
      seen.add(toHex(id.publicKey));
      for (let p = P; p < P + 8; p++) {
        for (const v of [blindPublicKey(id.publicKey, p), descriptorLocator(id.publicKey, p), subcredential(id.publicKey, p)]) {
          const h = toHex(v);
          expect(seen.has(h), 'a value repeated').to.equal(false);
          seen.add(h);
        }
      }
    }
  });

  it('blinded keys of one identity look unrelated without the address', () => {
    // What an observer without the address sees: A'_p for successive periods. They differ from each other and
    // from A in about half their bits, as unrelated points do; only the address links them (the next test).
    const distances: number[] = [];
    for (let i = 0; i < 32; i++) {
      const id = createIdentity();
      const a = blindPublicKey(id.publicKey, P);
      const b = blindPublicKey(id.publicKey, P + 1);
      distances.push(popcountXor(a, b), popcountXor(a, id.publicKey));
    }
    const mean = distances.reduce((x, y) => x + y, 0) / distances.length;
    expect(mean).to.be.within(118, 138);
    expect(Math.min(...distances)).to.be.greaterThan(80);
  });

  it('anyone with the address can compute where and under which key the descriptor is', () => {
    const id = createIdentity();
    const addr = formatAddress(id.publicKey);
    for (let p = P; p < P + 3; p++) {
      const signingKey = blindSigningKey(id, p);
      expect(toHex(descriptorLocator(addr, p))).to.equal(toHex(locatorOfBlindedKey(signingKey.publicKey, p)));
      expect(toHex(subcredential(addr, p))).to.equal(toHex(subcredential(id.publicKey, p)));
    }
  });

  it('refuses an identity whose secret and public halves do not match', () => {
    const a = createIdentity();
    const b = createIdentity();
    expectCode(() => blindSigningKey({ publicKey: b.publicKey, secretKey: a.secretKey }, P), 'ERR_KEY_FORMAT');
    const lying = Uint8Array.from(a.secretKey);
    lying.set(b.publicKey, 32); // libsodium form with the wrong public half
    expectCode(() => blindSigningKey({ publicKey: b.publicKey, secretKey: lying }, P), 'ERR_KEY_FORMAT');
  });

  it('refuses invalid identity keys', () => {
    expectCode(() => blindPublicKey(new Uint8Array(32), P), 'ERR_KEY_FORMAT');
    expectCode(() => descriptorLocator('not-an-address.allium', P), 'ERR_ADDRESS_FORMAT');
  });
});

describe('protocol/key-blinding: periods', () => {
  it('cuts time into days', () => {
    expect(PERIOD_SECONDS).to.equal(86400);
    expect(periodAt(0)).to.equal(0);
    expect(periodAt(86399)).to.equal(0);
    expect(periodAt(86400)).to.equal(1);
    expect(periodAt(1_700_000_000)).to.equal(19675);
    expect(periodStart(19675)).to.equal(19675 * 86400);
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), (t) => periodStart(periodAt(t)) <= t && t < periodStart(periodAt(t) + 1)));
  });
});

describe('protocol/key-blinding: both bindings give identical bytes', () => {
  let native: Crypto | null = null;
  let wasm: Crypto | null = null;
  let previous: Crypto;
  before(async function () {
    native = await loadCrypto('native');
    wasm = await loadCrypto('wasm');
    if (!native || !wasm) this.skip();
    previous = crypto();
  });
  after(() => useCrypto(previous));

  function under<T>(c: Crypto, f: () => T): T {
    useCrypto(c);
    try {
      return f();
    } finally {
      useCrypto(previous);
    }
  }

  it('scalar products, blinded keys, scalars, signatures, locators and subcredentials', () => {
    fc.assert(
      fc.property(bytes32, fc.nat({ max: 100000 }), fc.uint8Array({ maxLength: 64 }), scalar, scalar, (seed, p, msg, x, y) => {
        const run = (): string[] => {
          const id: Identity = createIdentity(seed);
          const key = blindSigningKey(id, p);
          return [
            toHex(crypto().edScalarMul(x, y)),
            toHex(crypto().edScalarAdd(x, y)),
            toHex(key.publicKey),
            toHex(key.scalar),
            toHex(key.prefix),
            toHex(signBlinded(key, msg)),
            toHex(descriptorLocator(id.publicKey, p)),
            toHex(subcredential(id.publicKey, p)),
          ];
        };
        expect(under(native!, run)).to.deep.equal(under(wasm!, run));
      }),
      { numRuns: 60 },
    );
  });
});
