/**
 * Mailboxes that tell an observer nothing (specs/messaging.md §9.1, §9.4; specs/proposals/001), with relay processes
 * on 127.0.0.1: a contact's offline message goes to the pair's per-contact inbox, so the slots derivable from the
 * address stay empty and the recipient still gets it; collecting writes nothing at any relay (no deletion, no
 * state, no time: the mailbox tables are the same before and after); deletions no longer occupy slots, so a
 * flood of them leaves a stranger's message its first slot; and a pass whose circuits all fail reports it and counts
 * nothing as read (specs/messaging.md §9.5).
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { mailboxSlot } from '../../client/mailbox.js';
import { Messenger, formatCard } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress } from '../../protocol/address.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { AlliumError } from '../../protocol/errors.js';
import { mailboxEpochAt, openMailboxItem } from '../../protocol/mailbox.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { openStore } from '../helpers/content.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('private mailboxes (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let bob: Messenger;
  let probe: ContentClient;

  /** Every relay's mailbox table, row by row (what a seized store shows). */
  const tables = (): string[] =>
    net.relays.flatMap((r) => {
      const db = openStore(r);
      try {
        return db
          .prepare<[], { row: string }>(
            "SELECT hex(rk) || ' ' || state || ' ' || hex(data) || ' ' || ifnull(hex(dt), '-') || ' ' || expires || ' ' || hold_until AS row FROM mailbox ORDER BY rk",
          )
          .all()
          .map((x) => `${r.fingerprint.slice(0, 8)} ${x.row}`);
      } finally {
        db.close();
      }
    });

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
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

  it("a contact's offline message goes to the per-contact inbox: nothing in the address's slots, and it arrives", async () => {
    const alice = new Messenger(ca, createIdentity(), { offline: { collect: false } });
    try {
      await alice.contacts.add(formatCard(bob.identity.publicKey), { name: 'bob' });
      await bob.contacts.add(formatCard(alice.identity.publicKey), { name: 'alice' });
      for (const text of ['one', 'two', 'three']) expect((await bob.send(alice.address, enc(text), { offline: 'only' })).status).to.equal('stored-offline');
      // What someone who knows alice's address sees: her first-contact inbox, empty.
      const epoch = mailboxEpochAt(Date.now());
      const seen = await Promise.all([0, 1, 2].map((i) => probe.fetchFromAll('mailbox', mailboxSlot(alice.identity.publicKey, epoch, i))));
      expect(seen.map((copies) => copies.length)).to.deep.equal([0, 0, 0]);
      const got: string[] = [];
      alice.on('message:received', (m) => got.push(`${m.from === bob.address ? 'bob' : m.from}: ${dec(m.data)}`));
      expect(await alice.checkMailbox()).to.equal(3);
      expect(got).to.deep.equal(['bob: one', 'bob: two', 'bob: three']);
    } finally {
      alice.close();
    }
  });

  it('collecting writes nothing at any relay: no deletion, no state, no time of the collection', async () => {
    const carol = createIdentity();
    for (const text of ['first', 'second'])
      expect((await bob.send(formatAddress(carol.publicKey), enc(text), { offline: 'only' })).status).to.equal('stored-offline');
    const epoch = mailboxEpochAt(Date.now());
    const before = await probe.fetchFromAll('mailbox', mailboxSlot(carol.publicKey, epoch, 0));
    const tablesBefore = tables();
    expect(tablesBefore.length).to.be.greaterThan(0);
    const m = new Messenger(ca, carol, { offline: { collect: false } });
    try {
      expect(await m.checkMailbox()).to.equal(2);
    } finally {
      m.close();
    }
    // An observer reading the slot sees what it saw before; a seized store shows the same rows, none of them deleted.
    const after = await probe.fetchFromAll('mailbox', mailboxSlot(carol.publicKey, epoch, 0));
    expect(after.map((c) => Buffer.from(c).toString('hex')).sort()).to.deep.equal(before.map((c) => Buffer.from(c).toString('hex')).sort());
    const tablesAfter = tables();
    expect(tablesAfter).to.deep.equal(tablesBefore);
    expect(tablesAfter.filter((row) => / deleted /.test(row))).to.deep.equal([]);
  });

  it("deletions do not occupy slots: a flood of them leaves a stranger's message its first slot", async () => {
    const dave = createIdentity();
    const epoch = mailboxEpochAt(Date.now());
    const statuses: string[] = [];
    // A deletion needs no token for a free slot in version 1, so anyone with the address could fill slots this way.
    for (let i = 0; i < 8; i++) {
      const rk = mailboxSlot(dave.publicKey, epoch, i);
      statuses.push(...(await probe.storeAll('mailbox', rk, encodeCbor({ v: 1, del: crypto().random(32) }))));
    }
    expect(new Set(statuses)).to.deep.equal(new Set(['invalid']));
    expect((await bob.send(formatAddress(dave.publicKey), enc('hello dave'), { offline: 'only' })).status).to.equal('stored-offline');
    const rk0 = mailboxSlot(dave.publicKey, epoch, 0);
    const copies = await probe.fetchFromAll('mailbox', rk0);
    expect(copies.length).to.be.greaterThan(0);
    expect(copies.map((c) => dec(openMailboxItem(dave, rk0, c).data))).to.deep.equal(copies.map(() => 'hello dave'));
  });

  it('a first pass reads each inbox on one operation\'s circuits, not a set per slot read (§9.5 "Circuits")', async () => {
    const frank = new Messenger(ca, createIdentity(), { offline: { collect: false } });
    const build = ca.newCircuit.bind(ca);
    let builds = 0;
    try {
      await frank.contacts.add(formatCard(bob.identity.publicKey), { name: 'bob' });
      await bob.contacts.add(formatCard(frank.identity.publicKey), { name: 'frank' });
      expect((await bob.send(frank.address, enc('while you were away'), { offline: 'only' })).status).to.equal('stored-offline');
      const got: string[] = [];
      frank.on('message:received', (m) => void got.push(dec(m.data)));
      ca.newCircuit = (o) => {
        builds++;
        return build(o);
      };
      // Two inboxes (the first-contact one and bob's), nine epochs each, a window of three slots or more per epoch:
      // at least 54 slot reads, each an operation of three circuits before. Now three circuits per inbox, and a
      // few more for any that failed, closed or was retired meanwhile.
      expect(await frank.checkMailbox()).to.equal(1);
      expect(got).to.deep.equal(['while you were away']);
      expect(builds).to.be.at.most(2 * 3 + 3);
    } finally {
      ca.newCircuit = build;
      frank.close();
    }
  });

  it('a pass whose circuits all fail says so and counts nothing as read; the next pass reads the message', async () => {
    const erin = createIdentity();
    expect((await bob.send(formatAddress(erin.publicKey), enc('during the outage'), { offline: 'only' })).status).to.equal('stored-offline');
    const m = new Messenger(ca, erin, { offline: { collect: false } });
    const errors: string[] = [];
    m.on('endpoint:error', (e) => void errors.push(e.code));
    const got: string[] = [];
    m.on('message:received', (x) => void got.push(dec(x.data)));
    const build = ca.newCircuit.bind(ca);
    try {
      // The reader's circuits are all refused for one pass (its guard blocks them): no holder answers any slot.
      ca.newCircuit = () => Promise.reject(new AlliumError('ERR_UNREACHABLE', 'circuits blocked'));
      expect(await m.checkMailbox()).to.equal(0);
      expect(errors).to.deep.equal(['ERR_UNREACHABLE']);
      ca.newCircuit = build;
      expect(await m.checkMailbox()).to.equal(1);
      expect({ got, errors }).to.deep.equal({ got: ['during the outage'], errors: ['ERR_UNREACHABLE'] });
    } finally {
      ca.newCircuit = build;
      m.close();
    }
  });
});
