/**
 * The directory store (specs/directory.md §4): one descriptor per identity, the newest by publication time; equal
 * bytes offered again are known without a signature check, but never past their expiry; older editions are stale.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { openDescriptor, signDescriptor, verifyDescriptor } from '../../protocol/descriptor.js';
import { DirectoryStore } from '../../protocol/directory-store.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
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

  it('an onion key of small order is refused: the signer will not make such a descriptor, and one signed by hand does not verify (directory.md §2.4)', () => {
    const id = IdentityKey.generate();
    const now = Date.now();
    const fields = {
      id: id.publicKey,
      addr: 'ws://10.0.0.1:9001/allium',
      nick: 'r',
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: ['mix' as const],
    };
    for (const onion of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
      expect(codeOf(() => signDescriptor({ ...fields, onion, pub: now - 1000, exp: now + 60_000 }, id.secretKey))).to.equal('ERR_DESCRIPTOR');
      const b = encodeCbor({ v: 1, ...fields, onion, proto: [1], pub: now - 1000, exp: now + 60_000 });
      const raw = encodeCbor({ b, s: crypto().sign(concatBytes(utf8('allium-v1 descriptor'), b), id.secretKey) });
      expect(codeOf(() => verifyDescriptor(raw, now))).to.equal('ERR_DESCRIPTOR');
    }
    // The same fields with a usable key verify.
    const good = signDescriptor({ ...fields, onion: crypto().x25519Keypair().publicKey, pub: now - 1000, exp: now + 60_000 }, id.secretKey);
    expect(verifyDescriptor(good.raw, now).fingerprint).to.equal(good.fingerprint);
  });

  it('a descriptor decoded once (openDescriptor) is verified from that decoding: same result, same checks, its own copy of the bytes', () => {
    const id = IdentityKey.generate();
    const now = Date.now();
    const fields = { id: id.publicKey, onion: crypto().random(32), addr: 'ws://10.0.0.1:9001/allium', nick: 'r', contact: '', family: [], bw: 1000 };
    const raw = signDescriptor({ ...fields, exit: ['reject *:*'], caps: ['store'], pub: now - 1000, exp: now + 60_000 }, id.secretKey).raw;
    const bytes = Uint8Array.from(raw);
    const opened = openDescriptor(bytes);
    bytes.fill(0); // the caller's buffer, reused: the opened descriptor does not follow it
    const d = verifyDescriptor(opened, now);
    expect({ id: opened.body.id, d: { ...d } }).to.deep.equal({ id: id.publicKey, d: { ...verifyDescriptor(raw, now) } });
    // The signature and the time are still checked on what was opened.
    const forged = Uint8Array.from(raw);
    forged[forged.length - 1]! ^= 1;
    const store = new DirectoryStore();
    expect(codeOf(() => store.verify(openDescriptor(forged), now))).to.equal('ERR_SIGNATURE');
    expect(codeOf(() => verifyDescriptor(opened, now + 120_000))).to.equal('ERR_DESCRIPTOR_EXPIRED');
    // Only openDescriptor makes one: fields put together elsewhere are not taken as decoded bytes.
    expect(codeOf(() => verifyDescriptor({ raw: forged, body: opened.body }, now))).to.equal('ERR_INTERNAL');
    expect(store.verify(opened, now).held).to.equal(false);
    store.add(d, now);
    expect(store.verify(opened, now)).to.deep.equal({ descriptor: d, held: true });
  });
});
