/**
 * The directory store (specs/directory.md §4): one descriptor per identity, the newest by publication time; equal
 * bytes offered again are known without a signature check, but never past their expiry; older editions are stale.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { signDescriptor } from '../../protocol/descriptor.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import { isAlliumError } from '../../protocol/errors.js';

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

describe('directory store', () => {
  it('keeps the newest edition; a duplicate is "same", an older one stale, an expired one refused', () => {
    const id = IdentityKey.generate();
    const now = Date.now();
    const sign = (pub: number, exp: number) =>
      signDescriptor(
        {
          id: id.publicKey,
          onion: crypto().random(32),
          addr: 'ws://10.0.0.1:9001/allium',
          nick: 'r',
          contact: '',
          family: [],
          bw: 1000,
          exit: ['reject *:*'],
          caps: ['store'],
          pub,
          exp,
        },
        id.secretKey,
      ).raw;
    const store = new DirectoryStore();
    const first = sign(now - 1000, now + 60_000);
    expect(store.offer(first, now).result).to.equal('new');
    expect(store.offer(first, now).result).to.equal('same');
    expect(store.offer(Uint8Array.from(first), now + 1).result).to.equal('same');
    const second = sign(now, now + 60_000);
    expect(store.offer(second, now).result).to.equal('updated');
    expect(codeOf(() => store.offer(first, now))).to.equal('ERR_DESCRIPTOR_STALE');
    expect(store.offer(second, now).descriptor.pub).to.equal(now);
    // A tampered copy of the held bytes is not "the same": it is checked, and refused.
    const tampered = Uint8Array.from(second);
    tampered[tampered.length - 1]! ^= 1;
    expect(codeOf(() => store.offer(tampered, now))).to.not.equal(null);
    // Past its expiry the held descriptor is not taken as known: the offer is checked, and refused.
    expect(codeOf(() => store.offer(second, now + 120_000))).to.match(/^ERR_DESCRIPTOR_EXPIRED$/);
    store.expire(now + 120_000);
    expect(store.size).to.equal(0);
    expect(codeOf(() => store.offer(second, now + 120_000))).to.equal('ERR_DESCRIPTOR_EXPIRED');
  });
});
