/**
 * Which descriptors past their exp a consensus keeps usable (specs/directory.md §6.6, client/directory.ts `vouches`):
 * only one the consensus in use lists by md — which covers the onion key — while that consensus is valid, and never
 * longer than VOUCHED_DESCRIPTOR_MAX_AGE after the descriptor's pub.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { vouches, VOUCHED_DESCRIPTOR_MAX_AGE_MS } from '../../client/directory.js';
import { descriptorMd } from '../../protocol/consensus.js';
import { signDescriptor, verifyDescriptor, type Descriptor } from '../../protocol/descriptor.js';

const T = 1_800_000_000_000;
const HOUR = 3600_000;

function descriptor(key: IdentityKey, onion: Uint8Array, pub: number): Descriptor {
  const raw = signDescriptor(
    {
      id: key.publicKey,
      onion,
      addr: 'ws://127.0.0.1:9001/',
      nick: 'r',
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: [],
      pub,
      exp: pub + 3 * HOUR,
    },
    key.secretKey,
  ).raw;
  return verifyDescriptor(raw, pub);
}

describe('a consensus vouches for a descriptor past its exp', () => {
  let key: IdentityKey;
  let d: Descriptor;
  before(() => {
    key = IdentityKey.generate();
    d = descriptor(key, crypto().x25519Keypair().publicKey, T);
  });
  const consensusOf = (md: Uint8Array, validUntil: number) => ({ validUntil, entries: [{ id: key.publicKey, md, flags: 0, w: 1 }] });
  const later = T + 5 * HOUR; // past exp (T + 3 h)

  it('while the consensus in use is valid and lists its md', () => {
    expect(vouches(consensusOf(descriptorMd(d), later + 1), d, later)).to.equal(true);
  });

  it('not once that consensus has lapsed (an old consensus vouches for nothing), nor without one', () => {
    expect(vouches(consensusOf(descriptorMd(d), later), d, later)).to.equal(false);
    expect(vouches(null, d, later)).to.equal(false);
  });

  it('not when the md listed is another — an onion key rotation is a new md', () => {
    const rotated = descriptor(key, crypto().x25519Keypair().publicKey, T + HOUR);
    expect(vouches(consensusOf(descriptorMd(rotated), later + 1), d, later)).to.equal(false);
    expect(vouches(consensusOf(descriptorMd(d), later + 1), rotated, later)).to.equal(false);
  });

  it('never VOUCHED_DESCRIPTOR_MAX_AGE after its pub, whatever a valid consensus lists', () => {
    const end = T + VOUCHED_DESCRIPTOR_MAX_AGE_MS;
    expect(vouches(consensusOf(descriptorMd(d), end + HOUR), d, end - 1)).to.equal(true);
    expect(vouches(consensusOf(descriptorMd(d), end + HOUR), d, end)).to.equal(false);
  });
});
