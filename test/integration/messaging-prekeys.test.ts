/**
 * Offline forward secrecy with prekeys (specs/messaging.md §9.2 version 3, §9.6), with relay processes on
 * 127.0.0.1: an identity that listens publishes prekey records; a stranger's offline message to it, sent while it is
 * away, is sealed to its identity key, signed prekey and a one-time prekey; a restarted messenger with the same
 * storage collects it end to end; and once the one-time prekey's secret is wiped, the item recorded earlier no longer
 * opens — not with the identity key alone, not with every secret the owner still keeps. A holder that replays a stale
 * record loses no mail, and a sender never writes version 2 to a recipient it knows publishes prekeys. A contact's
 * offline item goes to the per-contact inbox, sealed to the prekeys too, with the same forward secrecy; a sender
 * remembers across a restart whom it saw publish prekeys, and a contact card says so before any record is seen; a
 * record found for a contact marks it for good (a flushed memory forgets no contact), and a contact book that cannot
 * be read fails the send rather than making the contact a stranger. One conversation tells a sender that the peer
 * publishes prekeys (the hello, specs/messaging.md §8.1): a contact added from a plain address, its records withheld,
 * is then never written version 2, nor is it as a stranger after the sender restarts with its storage.
 */
import { expect } from 'chai';
import type { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { MailboxSender, mailboxSlot } from '../../client/mailbox.js';
import { ContactBook, memoryContactStorage, type ContactStorage } from '../../client/messaging/contacts.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import { Messenger } from '../../client/messaging/node.js';
import { choosePrekeys, MAX_PREKEY_PUBLISHERS, ONE_TIME_GRACE_MS, PrekeyOwner, PrekeyPublishers } from '../../client/prekeys.js';
import { createIdentity, formatAddress } from '../../protocol/address.js';
import { parseCard } from '../../protocol/contact-card.js';
import { isAlliumError } from '../../protocol/errors.js';
import { crypto } from '../../crypto/index.js';
import type { ContentStatus } from '../../protocol/content-messages.js';
import {
  decodeMailboxItem,
  inboxKey,
  mailboxEpochAt,
  openMailboxItem,
  pairInboxKey,
  pairSecret,
  sealMailboxItem,
  slotLocator,
  solveMailboxItem,
} from '../../protocol/mailbox.js';
import { openPrekeyRecord, PREKEY_EDITIONS_PER_WINDOW, PREKEY_WINDOW_MS, prekeyId, prekeyRecordKeys, prekeyWindowAt } from '../../protocol/prekeys.js';
import { startEntryClient } from '../helpers/content.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

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

async function codeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

/** Makes the holders a messenger's offline sends reach withhold every prekey record (as an attacker's would). */
/** `answered` of the 3 holders of a prekey record answer that they have none; the others do not answer. */
function withholdRecords(m: Messenger, answered = 3): void {
  const content = (m as unknown as { outbox: { content: ContentClient } }).outbox.content;
  const fetchAnswers = content.fetchAnswers.bind(content);
  content.fetchAnswers = (kind, rk, o) => (kind === 'record' ? Promise.resolve({ copies: [], answered, asked: 3 }) : fetchAnswers(kind, rk, o));
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

    // The pass rolled the one-time prekey over (retired, kept through its grace: a stale record may still name it);
    // the first pass that begins ONE_TIME_GRACE_MS after the rollover's edition (for the next window) wipes it. Then the recorded item opens neither with the
    // identity key alone nor with everything the owner still keeps.
    const later = prekeyWindowAt(Date.now()) + PREKEY_WINDOW_MS + PREKEY_EDITIONS_PER_WINDOW + ONE_TIME_GRACE_MS + 60_000;
    const after = new PrekeyOwner(identity, storage, () => later);
    await after.load();
    expect(after.retiredCount()).to.equal(1);
    expect(dec(openMailboxItem(identity, rk, recorded, { prekeys: (id, kind) => after.lookup(id, kind) }).data)).to.equal('while you were away');
    after.beginPass();
    await after.endPass();
    expect(after.retiredCount()).to.equal(0);
    expect(codeOf(() => openMailboxItem(identity, rk, recorded))).to.equal('ERR_MESSAGE_AUTH');
    expect(codeOf(() => openMailboxItem(identity, rk, recorded, { prekeys: (id, kind) => after.lookup(id, kind) }))).to.equal('ERR_MESSAGE_AUTH');
    // Because: listening published the epoch's prekey record, and the item was sealed to a signed and a one-time prekey.
    expect(records.length).to.be.greaterThan(0);
    expect(republished).to.be.greaterThan(0);
    const item = decodeMailboxItem(recorded);
    expect(item.v === 3 ? [item.v, item.o !== undefined] : [item.v]).to.deep.equal([3, true]);
  });

  it("a contact's offline item goes to the per-contact inbox sealed to prekeys, arrives, and no longer opens once they are deleted", async () => {
    const identity = createIdentity();
    const storage = memoryGroupStorage();
    const book = memoryContactStorage();
    // Alice listens once (publishing her prekey records), holds Bob as a contact, hands him her card, and goes away.
    const first = new Messenger(ca, identity, { prekeyStorage: storage, contactStorage: book, offline: { collect: false } });
    let card: string;
    try {
      await first.startListening();
      await first.contacts.add(bob.card('Bob'));
      card = first.card('Alice');
    } finally {
      first.close();
    }
    // Her card says she publishes prekeys (a version 2 card, §11.1).
    expect(parseCard(card).prekeys).to.equal(true);
    await bob.contacts.add(card, { name: 'Alice (forward secrecy)' });
    const epoch = mailboxEpochAt(Date.now());
    const receipt = await bob.send(first.address, enc('to my contact'), { offline: 'only' });
    expect(receipt.status).to.equal('stored-offline');

    // The item is in the per-contact inbox from Bob (which only the two can find), recorded as a seized holder keeps it.
    const pair = pairSecret(identity, bob.identity.publicKey);
    const rk = slotLocator(pairInboxKey(pair, bob.identity.publicKey, epoch), 0);
    const copies = await probe.fetchFromAll('mailbox', rk);
    expect(copies.length).to.be.greaterThan(0);
    const recorded = copies[0]!;
    expect((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0), { head: true })).length).to.equal(0);
    // Sealed to her signed and a one-time prekey (version 3), not to her identity key alone (version 2).
    const item = decodeMailboxItem(recorded);
    expect(item.v === 3 ? [item.v, item.o !== undefined] : [item.v]).to.deep.equal([3, true]);
    expect(codeOf(() => openMailboxItem(identity, rk, recorded))).to.equal('ERR_MESSAGE_AUTH');

    // A restarted messenger with the same identity and storage collects it from the per-contact inbox.
    const second = new Messenger(ca, identity, { prekeyStorage: storage, contactStorage: book, offline: { collect: false } });
    try {
      const got: string[] = [];
      second.on('message:received', (m) => got.push(`${m.from === bob.address ? 'bob' : m.from}: ${dec(m.data)}`));
      expect(await second.checkMailbox()).to.equal(1);
      expect(got).to.deep.equal(['bob: to my contact']);
    } finally {
      second.close();
    }

    // Once the one-time prekey's grace has passed, its secret is wiped (as for a stranger's item).
    const later = prekeyWindowAt(Date.now()) + PREKEY_WINDOW_MS + PREKEY_EDITIONS_PER_WINDOW + ONE_TIME_GRACE_MS + 60_000;
    const after = new PrekeyOwner(identity, storage, () => later);
    await after.load();
    after.beginPass();
    await after.endPass();
    expect(after.retiredCount()).to.equal(0);
    // Then everything Alice still keeps — her identity key, the pair secret it gives, her contacts, her prekey state —
    // opens nothing: the recorded item no longer opens, and a messenger with all of it collects nothing.
    expect(codeOf(() => openMailboxItem(identity, rk, recorded, { prekeys: (id, kind) => after.lookup(id, kind) }))).to.equal('ERR_MESSAGE_AUTH');
    const third = new Messenger(ca, identity, { prekeyStorage: storage, contactStorage: book, offline: { collect: false } });
    try {
      const errors: string[] = [];
      third.on('endpoint:error', (e) => errors.push(e.code));
      expect(await third.checkMailbox()).to.equal(0);
      expect(errors).to.include('ERR_MESSAGE_AUTH');
    } finally {
      third.close();
    }
  });

  it('a sender restarted with its storage refuses version 2 to a recipient it has seen publish prekeys', async () => {
    const identity = createIdentity();
    const first = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    try {
      await first.startListening();
    } finally {
      first.close();
    }
    const epoch = mailboxEpochAt(Date.now());
    const slotHeld = async (i: number): Promise<boolean> =>
      (await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, i), { head: true })).length > 0;
    const carol = createIdentity();
    const carolStorage = memoryGroupStorage();
    const before = new Messenger(cb, carol, { prekeyStorage: carolStorage });
    try {
      expect((await before.send(first.address, enc('one'), { offline: 'only' })).status).to.equal('stored-offline');
    } finally {
      before.close();
    }
    const one = decodeMailboxItem((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0)))[0]!);
    expect(one.v).to.equal(3);
    // Carol restarts with her storage; the holders she reaches now withhold Alice's record.
    const restarted = new Messenger(cb, carol, { prekeyStorage: carolStorage });
    try {
      withholdRecords(restarted);
      expect(await codeOfAsync(restarted.send(first.address, enc('two'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      expect(await slotHeld(1)).to.equal(false);
    } finally {
      restarted.close();
    }
  });

  it('a contact whose card says it publishes prekeys is never written version 2, even by a sender that never saw its record', async () => {
    const identity = createIdentity();
    const first = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    let card: string;
    try {
      await first.startListening();
      card = first.card('Alice');
    } finally {
      first.close();
    }
    const dave = new Messenger(cb, createIdentity());
    try {
      await dave.contacts.add(card);
      withholdRecords(dave);
      expect(await codeOfAsync(dave.send(first.address, enc('withheld'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      const epoch = mailboxEpochAt(Date.now());
      const rk = slotLocator(pairInboxKey(pairSecret(dave.identity, identity.publicKey), dave.identity.publicKey, epoch), 0);
      expect((await probe.fetchFromAll('mailbox', rk, { head: true })).length).to.equal(0);
      // The same contact by a plain address (no card saying so): a sender with no memory of a record cannot tell.
      const erin = new Messenger(cb, createIdentity());
      try {
        await erin.contacts.add(first.address, { name: 'Alice' });
        withholdRecords(erin);
        expect((await erin.send(first.address, enc('version 2'), { offline: 'only' })).status).to.equal('stored-offline');
      } finally {
        erin.close();
      }
    } finally {
      dave.close();
    }
  });

  it('one conversation tells a sender the peer publishes prekeys: no card, records withheld, still never version 2, after a restart too', async () => {
    const identity = createIdentity();
    const alice = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    const sender = createIdentity();
    const senderStorage = memoryGroupStorage();
    const first = new Messenger(cb, sender, { prekeyStorage: senderStorage, offline: { collect: false } });
    try {
      await alice.startListening();
      // Alice is a contact from a plain address: no card says she publishes prekeys, and no record was looked up.
      await first.contacts.add(alice.address, { name: 'Alice' });
      expect((await first.send(alice.address, enc('live'))).status).to.equal('delivered');
      alice.close();
      withholdRecords(first);
      expect(await codeOfAsync(first.send(alice.address, enc('withheld'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      const epoch = mailboxEpochAt(Date.now());
      const rk = slotLocator(pairInboxKey(pairSecret(sender, identity.publicKey), sender.publicKey, epoch), 0);
      expect((await probe.fetchFromAll('mailbox', rk, { head: true })).length).to.equal(0);
      // The contact is marked for good, and the memory of publishers (kept in the prekey storage) holds it too.
      await waitFor(async () => (await first.contacts.get('Alice'))?.prekeys === true, 10_000, 'the contact marked');
      await waitFor(
        async () => {
          const stored = new PrekeyPublishers(sender, senderStorage);
          await stored.load();
          return stored.saidPublishes(identity.publicKey);
        },
        10_000,
        'the memory of publishers saved',
      );
    } finally {
      alice.close();
      first.close();
    }
    // Restarted with its prekey storage and no contact book: Alice is a stranger now, and still never version 2.
    const restarted = new Messenger(cb, sender, { prekeyStorage: senderStorage, offline: { collect: false } });
    try {
      withholdRecords(restarted);
      expect(await codeOfAsync(restarted.send(alice.address, enc('withheld again'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      const epoch = mailboxEpochAt(Date.now());
      expect((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0), { head: true })).length).to.equal(0);
    } finally {
      restarted.close();
    }
  });

  it('a prekey record some holder did not answer for is not "no record": the offline send to a stranger fails, never version 2', async () => {
    const identity = createIdentity();
    const sender = new Messenger(cb, createIdentity(), { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    try {
      withholdRecords(sender, 0);
      expect(await codeOfAsync(sender.send(formatAddress(identity.publicKey), enc('unanswered'), { offline: 'only' }))).to.equal('ERR_UNREACHABLE');
      withholdRecords(sender, 2); // two holders say none, the third is not reached: still not known
      expect(await codeOfAsync(sender.send(formatAddress(identity.publicKey), enc('one unanswered'), { offline: 'only' }))).to.equal('ERR_UNREACHABLE');
      const epoch = mailboxEpochAt(Date.now());
      expect((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0), { head: true })).length).to.equal(0);
    } finally {
      sender.close();
    }
  });

  it('a contact whose record was found stays known to publish when strangers flush the memory of publishers', async () => {
    const identity = createIdentity();
    const first = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    try {
      await first.startListening();
    } finally {
      first.close();
    }
    // Erin has Alice by plain address (no card saying she publishes prekeys): only the record she finds tells her.
    const erin = new Messenger(cb, createIdentity());
    try {
      await erin.contacts.add(first.address, { name: 'Alice' });
      expect((await erin.send(first.address, enc('one'), { offline: 'only' })).status).to.equal('stored-offline');
      // Strangers make her see the records of MAX_PREKEY_PUBLISHERS other identities (by inviting her to groups of
      // such members, say): the memory, least recently seen first, forgets Alice.
      const publishers = (erin as unknown as { outbox: { publishers: PrekeyPublishers } }).outbox.publishers;
      for (let i = 0; i < MAX_PREKEY_PUBLISHERS; i++) await publishers.seen(createIdentity().publicKey, Date.now());
      expect(publishers.newestEdition(identity.publicKey)).to.equal(0);
      // Then her holders withhold Alice's record: still no version 2 item.
      withholdRecords(erin);
      expect(await codeOfAsync(erin.send(first.address, enc('two'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      const epoch = mailboxEpochAt(Date.now());
      const pairInbox = pairInboxKey(pairSecret(erin.identity, identity.publicKey), erin.identity.publicKey, epoch);
      expect((await probe.fetchFromAll('mailbox', slotLocator(pairInbox, 1), { head: true })).length).to.equal(0);
      expect((await erin.contacts.get('Alice'))?.prekeys).to.equal(true);
    } finally {
      erin.close();
    }
  });

  it('a contact book that cannot be read fails the offline send: never the first-contact inbox, never version 2', async () => {
    const identity = createIdentity();
    const first = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    let card: string;
    try {
      await first.startListening();
      card = first.card('Alice');
    } finally {
      first.close();
    }
    // Frank's book holds Alice's card (prekeys: yes); then reading it fails once (an I/O error): the send fails with
    // it (ERR_INTERNAL, the storage's error as its cause) rather than taking Alice for a stranger.
    const stored = memoryContactStorage();
    await new ContactBook(stored).add(card);
    let failing = true;
    const flaky: ContactStorage = {
      load: (o) => (failing ? Promise.reject(new Error('EIO: i/o error, read')) : stored.load(o)),
      save: (b, o) => stored.save(b, o),
    };
    const frank = new Messenger(cb, createIdentity(), { contactStorage: flaky });
    try {
      withholdRecords(frank);
      expect(await codeOfAsync(frank.send(first.address, enc('downgraded?'), { offline: 'only' }))).to.equal('ERR_INTERNAL');
      const epoch = mailboxEpochAt(Date.now());
      expect((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0), { head: true })).length).to.equal(0);
      // Once the book reads, Alice is a contact whose card says she publishes prekeys: withheld record, no item.
      failing = false;
      expect(await codeOfAsync(frank.send(first.address, enc('again'), { offline: 'only' }))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      expect((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0), { head: true })).length).to.equal(0);
    } finally {
      frank.close();
    }
  });

  it('an item sealed from a stale prekey record, to a one-time prekey the owner already used, still arrives', async () => {
    const identity = createIdentity();
    const storage = memoryGroupStorage();
    const first = new Messenger(ca, identity, { prekeyStorage: storage, offline: { collect: false } });
    try {
      await first.startListening();
    } finally {
      first.close();
    }
    const epoch = mailboxEpochAt(Date.now());
    const recordRk = prekeyRecordKeys(identity.publicKey, epoch).rk;
    // What a holder keeps of the record, to serve later in place of the newest.
    const stale = (await probe.fetchFromAll('record', recordRk))[0]!;
    expect((await bob.send(first.address, enc('first'), { offline: 'only' })).status).to.equal('stored-offline');
    const firstItem = decodeMailboxItem((await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, 0)))[0]!);
    const usedId = firstItem.v === 3 ? firstItem.o : undefined;
    expect(usedId).to.not.equal(undefined);

    // The owner comes back: the pass opens Bob's item, uses the one-time prekey, and publishes records without it.
    const second = new Messenger(ca, identity, { prekeyStorage: storage, offline: { collect: false } });
    try {
      const got: string[] = [];
      const errors: string[] = [];
      second.on('message:received', (m) => got.push(dec(m.data)));
      second.on('endpoint:error', (e) => errors.push(e.code));
      let republished = 0;
      second.on('prekeys:published', (n) => (republished = n));
      expect(await second.checkMailbox()).to.equal(1);
      // The rollover's edition is for the next window: holders serve it from that window's start (content.md §4),
      // so until then they serve the record that lists the used one-time prekey, as a replaying holder would.
      expect(republished).to.be.greaterThan(0);

      // Carol gets the stale record from a replaying holder. It is minutes old and she has seen no newer one, so she
      // seals to a one-time prekey, and she picks the one Bob used (as any sender may: it is listed there).
      const old = openPrekeyRecord(identity.publicKey, epoch, stale);
      expect(choosePrekeys(old, Date.now()).opk).to.not.equal(undefined);
      const opk = old.bundle.otks.find((k) => crypto().equal(prekeyId(k), usedId!))!;
      const now = Date.now();
      const sealed = sealMailboxItem({
        sender: createIdentity(),
        recipient: identity.publicKey,
        inbox: inboxKey(identity.publicKey, epoch),
        index: 1,
        exp: now + 3600_000,
        t: now,
        n: 0,
        data: enc('sealed from the stale record'),
        prekeys: { spk: old.bundle.spk, opk },
      });
      const statuses = await probe.storeAll('mailbox', sealed.slot, solveMailboxItem(sealed.item, crypto().random(16))!);
      expect(statuses).to.include('ok');

      // The owner's next pass opens it: the used one-time prekey's secret is kept through its grace.
      expect(await second.checkMailbox()).to.equal(1);
      expect(got).to.deep.equal(['first', 'sealed from the stale record']);
      expect(errors).to.deep.equal([]);
    } finally {
      second.close();
    }
  });

  it('never writes version 2 to a recipient known to publish prekeys: withheld records and refused items are errors', async () => {
    const identity = createIdentity();
    const first = new Messenger(ca, identity, { prekeyStorage: memoryGroupStorage(), offline: { collect: false } });
    try {
      await first.startListening();
    } finally {
      first.close();
    }
    const epoch = mailboxEpochAt(Date.now());
    const slotHeld = async (i: number): Promise<boolean> =>
      (await probe.fetchFromAll('mailbox', mailboxSlot(identity.publicKey, epoch, i), { head: true })).length > 0;
    const sender = new MailboxSender(cb, createIdentity());
    const stranger = new MailboxSender(cb, createIdentity());
    try {
      expect((await sender.deposit(identity.publicKey, enc('one'))).prekeys).to.equal(true);
      // The holders the sender reaches now withhold the record (as an attacker's holders would).
      const content = (sender as unknown as { content: ContentClient }).content;
      const fetchAnswers = content.fetchAnswers.bind(content);
      content.fetchAnswers = (kind, rk, o) => (kind === 'record' ? Promise.resolve({ copies: [], answered: 3, asked: 3 }) : fetchAnswers(kind, rk, o));
      expect(await codeOfAsync(sender.deposit(identity.publicKey, enc('two')))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      expect(await slotHeld(1)).to.equal(false);
      // Holders that give the record but answer `invalid` to the version 3 item get no version 2 item either.
      content.fetchAnswers = fetchAnswers;
      const storeAll = content.storeAll.bind(content);
      content.storeAll = (kind, rk, bytes, o) =>
        kind === 'mailbox' && decodeMailboxItem(bytes).v === 3 ? Promise.resolve<ContentStatus[]>(['invalid', 'invalid']) : storeAll(kind, rk, bytes, o);
      expect(await codeOfAsync(sender.deposit(identity.publicKey, enc('three')))).to.equal('ERR_PREKEYS_UNAVAILABLE');
      expect(await slotHeld(1)).to.equal(false);
      content.storeAll = storeAll;
      // The limit: a sender that has never seen the recipient's record cannot tell it is withheld (version 2).
      const other = (stranger as unknown as { content: ContentClient }).content;
      const otherFetch = other.fetchAnswers.bind(other);
      other.fetchAnswers = (kind, rk, o) => (kind === 'record' ? Promise.resolve({ copies: [], answered: 3, asked: 3 }) : otherFetch(kind, rk, o));
      expect((await stranger.deposit(identity.publicKey, enc('four'))).prekeys).to.equal(false);
    } finally {
      sender.close();
      stranger.close();
    }
  });
});
