/**
 * The group inbox (specs/messaging.md §13.9): the day secrets are one-way, a deposit is a mailbox item a relay
 * stores as any other, it opens only with the epoch's day secret, in its own slot, and a sender key in it must be
 * signed by its depositor.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import {
  decodeGroupEpoch,
  encodeGroupEpoch,
  groupDay,
  groupInboxKey,
  MAX_GROUP_EPOCH_DAYS,
  nextGroupDay,
  openGroupDeposit,
  sealGroupDeposit,
  type GroupEpoch,
} from '../../protocol/group-inbox.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { slotLocator, solveMailboxItem, verifyMailboxStore } from '../../protocol/mailbox.js';
import { OwnSenderKey, SenderChain } from '../../protocol/sender-key.js';
import { expectCode } from '../helpers/vectors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const DAY = 20_000;

describe('group inbox (specs/messaging.md §13.9)', () => {
  let group: Uint8Array;
  before(() => {
    group = crypto().random(32);
  });
  const epoch = (q: number): GroupEpoch => ({ kind: 'epoch', group, q, r: q, d: DAY, es: crypto().random(32) });

  it('round-trips the epoch envelope, which version 1 decoders refuse', () => {
    const e = epoch(3);
    const bytes = encodeGroupEpoch(e);
    expect(decodeGroupEpoch(bytes)).to.deep.equal(e);
    expectCode(() => decodeGroupEnvelope(bytes), 'ERR_SCHEMA');
    expectCode(() => decodeGroupEpoch(bytes.subarray(0, bytes.length - 1)), 'ERR_CBOR_MALFORMED');
  });

  it('derives a day secret forward only, within MAX_GROUP_EPOCH_DAYS; each day has its own inbox', () => {
    const e = epoch(0);
    const d0 = groupDay(e, DAY);
    const d2 = groupDay(e, DAY + 2);
    expect(nextGroupDay(nextGroupDay(d0, DAY + 1, DAY), DAY + 2, DAY).secret).to.deep.equal(d2.secret);
    expect(groupInboxKey(d0)).to.not.deep.equal(groupInboxKey(d2));
    expectCode(() => nextGroupDay(d2, DAY + 1, DAY), 'ERR_MESSAGE_AUTH');
    expectCode(() => groupDay(e, DAY + MAX_GROUP_EPOCH_DAYS + 1), 'ERR_LIMIT');
  });

  it('a deposit is a mailbox item a relay stores; it opens with the day secret, in its slot only', () => {
    const alice = createIdentity();
    const own = OwnSenderKey.create();
    const day = groupDay(epoch(0), DAY);
    const exp = Date.now() + 3_600_000;
    const key = sealGroupDeposit({ day, from: alice, envelope: own.distribution(group), index: 0, exp });
    const msg = sealGroupDeposit({ day, from: alice, envelope: own.encrypt(group, alice.publicKey, enc('hello')), index: 1, exp });
    const keyBytes = solveMailboxItem(key.item, new Uint8Array(16))!;
    const msgBytes = solveMailboxItem(msg.item, new Uint8Array(16))!;
    expect(verifyMailboxStore(keyBytes, Date.now(), key.slot).exp).to.equal(exp);
    expect(verifyMailboxStore(msgBytes, Date.now(), msg.slot).exp).to.equal(exp);

    const k = openGroupDeposit(day, key.slot, keyBytes);
    expect(k.from).to.deep.equal(alice.publicKey);
    if (k.envelope.kind !== 'sender-key') throw new Error('a sender key');
    const chain = SenderChain.from(k.envelope);
    const m = openGroupDeposit(day, msg.slot, msgBytes);
    if (m.envelope.kind !== 'message') throw new Error('a message');
    expect(dec(chain.decrypt(m.from, m.envelope))).to.equal('hello');

    // Another epoch's secret (a removed member's), another day, another slot: nothing opens.
    expectCode(() => openGroupDeposit(groupDay(epoch(1), DAY), msg.slot, msgBytes), 'ERR_MESSAGE_AUTH');
    expectCode(() => openGroupDeposit(groupDay(epoch(0), DAY + 1), msg.slot, msgBytes), 'ERR_MESSAGE_AUTH');
    expectCode(() => openGroupDeposit(day, key.slot, msgBytes), 'ERR_MESSAGE_AUTH');
  });

  it('a sender key deposited in the name of another member fails its signature; a message names its sender', () => {
    const alice = createIdentity();
    const mallory = createIdentity();
    const own = OwnSenderKey.create();
    const day = groupDay(epoch(0), DAY);
    const exp = Date.now() + 3_600_000;
    // Mallory holds the epoch secret (a member) and deposits a key claiming to be Alice's: she signs as herself.
    const forged = sealGroupDeposit({ day, from: { ...mallory, publicKey: alice.publicKey }, envelope: own.distribution(group), index: 0, exp });
    expectCode(() => openGroupDeposit(day, forged.slot, solveMailboxItem(forged.item, new Uint8Array(16))!), 'ERR_SIGNATURE');
    const reader = SenderChain.from(own.distribution(group));
    // A message deposited as Alice under Mallory's chain: it opens as a deposit, but the chain's check binds the sender.
    const m = sealGroupDeposit({
      day,
      from: { ...mallory, publicKey: alice.publicKey },
      envelope: own.encrypt(group, mallory.publicKey, enc('x')),
      index: 1,
      exp,
    });
    const opened = openGroupDeposit(day, m.slot, solveMailboxItem(m.item, new Uint8Array(16))!);
    if (opened.envelope.kind !== 'message') throw new Error('a message');
    expectCode(() => reader.decrypt(opened.from, opened.envelope as never), 'ERR_SIGNATURE');
    expect(slotLocator(groupInboxKey(day), 1)).to.deep.equal(m.slot);
  });
});
