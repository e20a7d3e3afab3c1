/**
 * Offline forward secrecy with prekeys (specs/messaging.md §9.2 version 3, §9.6), with relay processes on
 * 127.0.0.1: an identity that listens publishes prekey records; a stranger's offline message to it, sent while it is
 * away, is sealed to its identity key, signed prekey and a one-time prekey; a restarted messenger with the same
 * storage collects it end to end; and once that pass has deleted the one-time prekey's secret, the item recorded
 * earlier no longer opens — not with the identity key alone, not with every secret the owner still keeps.
 */
import { expect } from 'chai';
import type { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { mailboxSlot } from '../../client/mailbox.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import { Messenger } from '../../client/messaging/node.js';
import { PrekeyOwner } from '../../client/prekeys.js';
import { createIdentity } from '../../protocol/address.js';
import { isAlliumError } from '../../protocol/errors.js';
import { decodeMailboxItem, mailboxEpochAt, openMailboxItem } from '../../protocol/mailbox.js';
import { prekeyRecordKeys } from '../../protocol/prekeys.js';
import { startEntryClient } from '../helpers/content.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'opened';
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

describe('mailbox prekeys (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let bob: Messenger;
  let probe: ContentClient;

  before(async () => {
    net = await startNetwork(6);
    ca = await startEntryClient(net, [1, 2]);
    cb = await startEntryClient(net, [3, 4]);
    bob = new Messenger(cb);
    probe = new ContentClient(cb);
  });

  after(async () => {
    try {
      bob?.close();
      probe?.close();
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it("a stranger's offline item is sealed to prekeys, arrives after a restart, and no longer opens once they are deleted", async () => {
    const identity = createIdentity();
    const storage = memoryGroupStorage();
    // Alice listens once (publishing her prekey records), then goes away.
    const first = new Messenger(ca, identity, { prekeyStorage: storage, offline: { collect: false } });
    try {
      await first.startListening();
    } finally {
      first.close();
    }
    const epoch = mailboxEpochAt(Date.now());
    const records = await probe.fetchFromAll('record', prekeyRecordKeys(identity.publicKey, epoch).rk);

    const receipt = await bob.send(first.address, enc('while you were away'), { offline: 'only' });
    expect(receipt.status).to.equal('stored-offline');
    // What a holder keeps, recorded before the owner reads it (as a seized relay would have it).
    const rk = mailboxSlot(identity.publicKey, epoch, 0);
    const copies = await probe.fetchFromAll('mailbox', rk);
    expect(copies.length).to.be.greaterThan(0);
    const recorded = copies[0]!;
    // Before the pass, the owner's kept secrets open it: it is the prekeys, not the identity key, that matter.
    const before = new PrekeyOwner(identity, storage);
    await before.load();
    expect(dec(openMailboxItem(identity, rk, recorded, { prekeys: (id, kind) => before.lookup(id, kind) }).data)).to.equal('while you were away');

    // A restarted messenger with the same identity and storage collects it.
    let republished = 0;
    const second = new Messenger(ca, identity, { prekeyStorage: storage, offline: { collect: false } });
    try {
      const got: string[] = [];
      second.on('message:received', (m) => got.push(`${m.from === bob.address ? 'bob' : m.from}: ${dec(m.data)}`));
      // The pass publishes the record again, without the one-time prekey it used (before checkMailbox resolves).
      second.on('prekeys:published', (n) => (republished = n));
      expect(await second.checkMailbox()).to.equal(1);
      expect(got).to.deep.equal(['bob: while you were away']);
    } finally {
      second.close();
    }

    // The one-time prekey's secret is gone: the recorded item opens neither with the identity key alone nor with
    // everything the owner still keeps.
    expect(codeOf(() => openMailboxItem(identity, rk, recorded))).to.equal('ERR_MESSAGE_AUTH');
    const after = new PrekeyOwner(identity, storage);
    await after.load();
    expect(codeOf(() => openMailboxItem(identity, rk, recorded, { prekeys: (id, kind) => after.lookup(id, kind) }))).to.equal('ERR_MESSAGE_AUTH');
    // Because: listening published the epoch's prekey record, and the item was sealed to a signed and a one-time prekey.
    expect(records.length).to.be.greaterThan(0);
    expect(republished).to.be.greaterThan(0);
    const item = decodeMailboxItem(recorded);
    expect(item.v === 3 ? [item.v, item.o !== undefined] : [item.v]).to.deep.equal([3, true]);
  });
});
