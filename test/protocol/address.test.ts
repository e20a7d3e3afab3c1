/**
 * Identity addresses (specs/messaging.md §1): addresses round trip, and any one-character change, deletion or
 * insertion is refused with ERR_ADDRESS_CHECKSUM, ERR_ADDRESS_FORMAT or ERR_ADDRESS_VERSION — never accepted as
 * some other address. Wrong versions and invalid Ed25519 points are refused even with a correct checksum.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto } from '../../crypto/index.js';
import { ADDRESS_BASE32_LEN, ADDRESS_VERSION, createIdentity, formatAddress, parseAddress, sameAddress } from '../../protocol/address.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { base32Encode } from '../../protocol/content-link.js';
import { isAlliumError } from '../../protocol/errors.js';
import { expectCode, hex } from '../helpers/vectors.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
/** Characters a paste or a typo could bring in that are not base32 (digits 0/1/8/9 look like letters). */
const OUTSIDE = '0189-_.!';

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

/** An address text for arbitrary 32 bytes, version and checksum as given (to build invalid ones). */
function rawAddress(key: Uint8Array, version: number, check?: Uint8Array): string {
  const sum =
    check ??
    crypto()
      .hash(32, concatBytes(key, Uint8Array.of(version)), utf8('allium-v1:address:checksum'))
      .subarray(0, 2);
  return base32Encode(concatBytes(key, sum, Uint8Array.of(version))) + '.allium';
}

const seeds = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('protocol/address', () => {
  it('matches the fixed vector (seed 00..1f)', () => {
    const id = createIdentity(Uint8Array.from({ length: 32 }, (_, i) => i));
    expect(toHex(id.publicKey)).to.equal('03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8');
    expect(formatAddress(id.publicKey)).to.equal('aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4jqzab.allium');
  });

  it('round trips every identity, in any case and with surrounding space', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const id = createIdentity(seed);
        const addr = formatAddress(id.publicKey);
        expect(addr).to.match(new RegExp(`^[a-z2-7]{${ADDRESS_BASE32_LEN}}\\.allium$`));
        expect(toHex(parseAddress(addr))).to.equal(toHex(id.publicKey));
        expect(toHex(parseAddress(`  ${addr.toUpperCase()}\n`))).to.equal(toHex(id.publicKey));
        expect(sameAddress(addr, addr.toUpperCase())).to.equal(true);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses every one-character substitution, deletion and insertion (exhaustive over 6 identities)', () => {
    const seen = new Map<string, number>();
    for (let k = 0; k < 6; k++) {
      const addr = formatAddress(createIdentity(new Uint8Array(32).fill(k + 1)).publicKey);
      const b32 = addr.slice(0, ADDRESS_BASE32_LEN);
      const variants: string[] = [];
      for (let i = 0; i < b32.length; i++) {
        for (const c of ALPHABET + OUTSIDE) if (c !== b32[i]) variants.push(b32.slice(0, i) + c + b32.slice(i + 1));
        variants.push(b32.slice(0, i) + b32.slice(i + 1));
        variants.push(b32.slice(0, i) + 'a' + b32.slice(i));
      }
      for (const v of variants) {
        const code = codeOf(() => parseAddress(v + '.allium'));
        if (code === null) expect.fail(`accepted ${v}.allium (from ${addr})`);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    expect([...seen.keys()].sort()).to.deep.equal(['ERR_ADDRESS_CHECKSUM', 'ERR_ADDRESS_FORMAT', 'ERR_ADDRESS_VERSION']);
  });

  it('refuses text that is not an address', () => {
    const addr = formatAddress(createIdentity().publicKey);
    for (const bad of [
      '',
      '.allium',
      addr.slice(0, -7),
      addr.replace('.allium', '.onion'),
      `${addr}.`,
      `x${addr}`,
      addr.slice(1),
      `${addr.slice(0, 56)}a.allium`,
    ]) {
      expectCode(() => parseAddress(bad), 'ERR_ADDRESS_FORMAT');
    }
  });

  it('refuses an unknown version even with a matching checksum', () => {
    const key = createIdentity().publicKey;
    for (const version of [0, 2, 3, 255]) expectCode(() => parseAddress(rawAddress(key, version)), 'ERR_ADDRESS_VERSION');
    expect(toHex(parseAddress(rawAddress(key, ADDRESS_VERSION)))).to.equal(toHex(key));
  });

  it('refuses a key that is not a valid prime-order point even with a matching checksum', () => {
    const bad = [
      hex('0100000000000000000000000000000000000000000000000000000000000000'), // the identity point (small order)
      hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // y = -1 (order 2)
      hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // y = p: not canonical
      hex('0200000000000000000000000000000000000000000000000000000000000000'), // y = 2: not a point of the prime-order subgroup
      hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), // a point of order 8
    ];
    for (const key of bad) {
      expectCode(() => parseAddress(rawAddress(key, ADDRESS_VERSION)), 'ERR_ADDRESS_FORMAT');
      expectCode(() => formatAddress(key), 'ERR_KEY_FORMAT');
    }
  });

  it('refuses a wrong checksum with ERR_ADDRESS_CHECKSUM', () => {
    const key = createIdentity().publicKey;
    expectCode(() => parseAddress(rawAddress(key, ADDRESS_VERSION, Uint8Array.of(0, 0))), 'ERR_ADDRESS_CHECKSUM');
  });
});
