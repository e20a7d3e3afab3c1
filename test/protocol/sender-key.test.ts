/**
 * Sender keys (specs/messaging.md §13.3): out of order, duplicates, the skipped-key bound, forged and tampered
 * messages, and what a leaked or removed member's chain reads after a new generation.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import type { GroupMessage } from '../../protocol/group-messages.js';
import { MAX_GROUP_SKIP, OwnSenderKey, SenderChain, SkipPool } from '../../protocol/sender-key.js';
import { expectCode } from '../helpers/vectors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('sender keys (specs/messaging.md §13.3)', () => {
  let group: Uint8Array;
  let alice: Uint8Array;
  before(() => {
    group = crypto().random(32);
    alice = crypto().ed25519Keypair().publicKey;
  });

  function setup(): { own: OwnSenderKey; reader: SenderChain } {
    const own = OwnSenderKey.create();
    return { own, reader: SenderChain.from(own.distribution(group)) };
  }

  it('delivers in order and out of order, each message once; a copy is ERR_MESSAGE_REPLAY', () => {
    const { own, reader } = setup();
    const ms = [0, 1, 2, 3, 4].map((i) => own.encrypt(group, alice, enc(`m${i}`)));
    const order = [2, 0, 4, 1, 3];
    expect(order.map((i) => dec(reader.decrypt(alice, ms[i]!)))).to.deep.equal(order.map((i) => `m${i}`));
    expect(reader.skippedKeys).to.equal(0);
    for (const m of ms) expectCode(() => reader.decrypt(alice, m), 'ERR_MESSAGE_REPLAY');
  });

  it('holds at most MAX_GROUP_SKIP skipped keys per sender (oldest dropped) and refuses a larger jump', () => {
    const { own, reader } = setup();
    const first = own.encrypt(group, alice, enc('first'));
    for (let i = 0; i < MAX_GROUP_SKIP; i++) own.encrypt(group, alice, new Uint8Array(0));
    const far = own.encrypt(group, alice, enc('far')); // index MAX_GROUP_SKIP + 1: a jump of MAX_GROUP_SKIP + 1
    expectCode(() => reader.decrypt(alice, far), 'ERR_RATCHET_SKIP');
    expect(reader.skippedKeys).to.equal(0); // refused: nothing was kept
    // A jump of exactly MAX_GROUP_SKIP: all held; one more message past it drops the oldest held key (index 0).
    const own2 = OwnSenderKey.create();
    const r2 = SenderChain.from(own2.distribution(group));
    const m0 = own2.encrypt(group, alice, enc('0'));
    for (let i = 1; i < MAX_GROUP_SKIP; i++) own2.encrypt(group, alice, new Uint8Array(0));
    r2.decrypt(alice, own2.encrypt(group, alice, enc('edge'))); // index MAX_GROUP_SKIP: skips 0..999
    expect(r2.skippedKeys).to.equal(MAX_GROUP_SKIP);
    own2.encrypt(group, alice, new Uint8Array(0)); // index 1001 skipped by the next
    r2.decrypt(alice, own2.encrypt(group, alice, enc('next')));
    expect(r2.skippedKeys).to.equal(MAX_GROUP_SKIP);
    expectCode(() => r2.decrypt(alice, m0), 'ERR_MESSAGE_REPLAY'); // its key was the oldest, dropped
    expect(dec(reader.decrypt(alice, first))).to.equal('first');
  });

  it('refuses a forged signature, a tampered ciphertext and a wrong sender, and changes nothing', () => {
    const { own, reader } = setup();
    const m = own.encrypt(group, alice, enc('hello'));
    const sig = m.sig.slice();
    sig[0]! ^= 1;
    expectCode(() => reader.decrypt(alice, { ...m, sig }), 'ERR_SIGNATURE');
    const ct = m.ct.slice();
    ct[0]! ^= 1;
    expectCode(() => reader.decrypt(alice, { ...m, ct }), 'ERR_SIGNATURE');
    expectCode(() => reader.decrypt(crypto().ed25519Keypair().publicKey, m), 'ERR_SIGNATURE');
    // A member holding the chain (not the signing key) cannot forge: its own AEAD under mk, signed by another key.
    expect(dec(reader.decrypt(alice, m))).to.equal('hello');
  });

  it('a leaked chain reads the rest of its generation and nothing after the owner updates its key', () => {
    const { own, reader } = setup();
    const leaked = SenderChain.from(own.distribution(group)); // the state an attacker copied
    const before = own.encrypt(group, alice, enc('before'));
    expect(dec(leaked.decrypt(alice, before))).to.equal('before'); // the weakness: same generation
    own.rotate();
    const dist = own.distribution(group); // handed to members over pairwise sessions, not to the attacker
    expect(reader.update(dist)).to.equal(true);
    const after = own.encrypt(group, alice, enc('after'));
    expect(dec(reader.decrypt(alice, after))).to.equal('after');
    expectCode(() => leaked.decrypt(alice, after), 'ERR_NOT_FOUND');
    // Even told the new generation's public values, the old chain key derives nothing of the new one.
    const forged: GroupMessage = { ...after, e: 1 };
    expectCode(() => leaked.decrypt(alice, forged), 'ERR_NOT_FOUND');
  });

  it('a removed member (not given the new generation) cannot decrypt later messages', () => {
    const { own, reader: bob } = setup();
    const carol = SenderChain.from(own.distribution(group));
    expect(dec(carol.decrypt(alice, own.encrypt(group, alice, enc('all three'))))).to.equal('all three');
    bob.decrypt(alice, own.encrypt(group, alice, new Uint8Array(0))); // keep bob in step (index 1 he read; carol skipped)
    own.rotate(); // carol removed: the new key goes to bob only
    bob.update(own.distribution(group));
    const secret = own.encrypt(group, alice, enc('without carol'));
    expect(dec(bob.decrypt(alice, secret))).to.equal('without carol');
    expectCode(() => carol.decrypt(alice, secret), 'ERR_NOT_FOUND');
  });

  it('keeps the previous generation up to pn for messages still in flight; a newcomer reads nothing earlier', () => {
    const { own, reader } = setup();
    const late = [0, 1, 2].map((i) => own.encrypt(group, alice, enc(`old${i}`)));
    reader.decrypt(alice, late[0]!);
    const newcomer = SenderChain.from(own.distribution(group)); // joined now: from index 3 on
    own.rotate();
    reader.update(own.distribution(group)); // pn = 3: keeps keys 1 and 2 of generation 0
    expect(reader.skippedKeys).to.equal(2);
    expect(dec(reader.decrypt(alice, late[2]!))).to.equal('old2');
    expect(dec(reader.decrypt(alice, late[1]!))).to.equal('old1');
    for (const m of late) expectCode(() => newcomer.decrypt(alice, m), 'ERR_MESSAGE_REPLAY');
    expect(reader.update(own.distribution(group))).to.equal(false); // a copy of the same generation
  });

  it('a SkipPool bounds several chains together: the chain holding the most drops its oldest keys first', () => {
    const pool = new SkipPool(10);
    const a = OwnSenderKey.create();
    const b = OwnSenderKey.create();
    const ra = SenderChain.from(a.distribution(group), MAX_GROUP_SKIP, [pool]);
    const rb = SenderChain.from(b.distribution(group), MAX_GROUP_SKIP, [pool]);
    const a0 = a.encrypt(group, alice, enc('a0'));
    const a1 = a.encrypt(group, alice, enc('a1'));
    ra.decrypt(alice, a.encrypt(group, alice, enc('a2'))); // keeps a0's and a1's keys
    const b0 = b.encrypt(group, alice, enc('b0'));
    for (let i = 0; i < 20; i++) b.encrypt(group, alice, new Uint8Array(0));
    rb.decrypt(alice, b.encrypt(group, alice, enc('far'))); // 21 keys: over the pool's 10
    expect(pool.size).to.equal(10);
    expect([ra.skippedKeys, rb.skippedKeys]).to.deep.equal([2, 8]);
    expect(dec(ra.decrypt(alice, a1))).to.equal('a1');
    expect(dec(ra.decrypt(alice, a0))).to.equal('a0');
    expectCode(() => rb.decrypt(alice, b0), 'ERR_MESSAGE_REPLAY'); // its oldest were dropped
    expect(pool.size).to.equal(8);
    rb.destroy();
    expect(pool.size).to.equal(0);
  });

  it('state() and restore() give back a chain that reads what the original would, skipped keys included', () => {
    const { own, reader } = setup();
    const m0 = own.encrypt(group, alice, enc('zero'));
    reader.decrypt(alice, own.encrypt(group, alice, enc('one')));
    const copy = SenderChain.restore(reader.state());
    const mine = OwnSenderKey.fromParts(own.state());
    expect(dec(copy.decrypt(alice, m0))).to.equal('zero');
    expect(dec(copy.decrypt(alice, mine.encrypt(group, alice, enc('two'))))).to.equal('two');
    expect(dec(reader.decrypt(alice, own.encrypt(group, alice, enc('two'))))).to.equal('two'); // the same index, the same key
  });
});
