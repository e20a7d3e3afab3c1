/**
 * First-contact inboxes behind a proof of work (specs/messaging.md §9.3, specs/proposals/001 part 2), with relay
 * processes on 127.0.0.1 whose window for version 1 items is closed (`mailbox_v1_until` 0): a flooder who knows an
 * address but pays no work — items of version 1, version 2 items whose work does not verify, claims less than the
 * slot's effort, or was solved for another slot — fills none of its slots, and a stranger's message takes slot 0; a
 * flooder who pays fills the cheap slots, and an honest sender behind it pays the next slot's effort and delivers
 * there.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { Messenger } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { solvePow, verifyPow, type PowSolution } from '../../protocol/intro-pow.js';
import {
  decodeMailboxItem,
  encodeMailboxItem,
  inboxKey,
  mailboxEffort,
  mailboxEpochAt,
  mailboxPowBinding,
  openMailboxItem,
  sealMailboxItem,
  sealMailboxItemV1,
  slotLocator,
  solveMailboxItem,
} from '../../protocol/mailbox.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const HOUR = 3600_000;

describe('first-contact inboxes behind a proof of work (relay processes)', function () {
  this.timeout(120_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let bob: Messenger;
  let probe: ContentClient;
  let flooder: Identity;

  before(async () => {
    flooder = createIdentity();
    net = await startNetwork(5, { extra: { mailbox_v1_until: 0 } });
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    bob = new Messenger(cb, createIdentity(), { offline: { collect: false } });
    probe = new ContentClient(ca);
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

  /** A junk message from the flooder for slot `index` of `victim`'s first-contact inbox, before its work. */
  const junk = (victim: Identity, index: number) =>
    sealMailboxItem({
      sender: flooder,
      recipient: victim.publicKey,
      inbox: inboxKey(victim.publicKey, mailboxEpochAt(Date.now())),
      index,
      exp: Date.now() + HOUR,
      t: Date.now(),
      n: index,
      data: enc(`junk ${index}`),
    });

  it('a flooder without work fills none of the slots, and a stranger still gets slot 0', async () => {
    const victim = createIdentity();
    const inbox = inboxKey(victim.publicKey, mailboxEpochAt(Date.now()));
    const statuses: Record<string, string[]> = { v1: [], unsolved: [], cheap: [], moved: [] };
    for (let i = 0; i < 6; i++) {
      const rk = slotLocator(inbox, i);
      // Version 1: the format every relay stored before, without work.
      const v1 = sealMailboxItemV1({ sender: flooder, recipient: victim.publicKey, slot: rk, exp: Date.now() + HOUR, t: Date.now(), n: i, data: enc('v1') });
      statuses['v1']!.push(...(await probe.storeAll('mailbox', rk, v1.bytes)));
      // Version 2 claiming the slot's effort with a nonce that does not meet it.
      const s = junk(victim, i);
      const nonce = new Uint8Array(16);
      const fails = (w: PowSolution): boolean => {
        try {
          verifyPow([rk], w, mailboxPowBinding(s.item));
          return false;
        } catch {
          return true;
        }
      };
      while (!fails({ n: nonce, e: s.effort })) nonce[15]!++;
      statuses['unsolved']!.push(...(await probe.storeAll('mailbox', rk, encodeMailboxItem(s.item, { n: nonce, e: s.effort }))));
      // Version 2 with real work, but for effort 1, below what the slot asks.
      const cheap = solvePow(rk, 1, mailboxPowBinding(s.item), new Uint8Array(16), 1000)!;
      statuses['cheap']!.push(...(await probe.storeAll('mailbox', rk, encodeMailboxItem(s.item, cheap))));
      // Version 2 solved for slot 0, stored in slot i + 1: the relay derives the slot from the item.
      statuses['moved']!.push(...(await probe.storeAll('mailbox', slotLocator(inbox, i + 1), solveMailboxItem(junk(victim, 0).item, new Uint8Array(16))!)));
    }
    console.log(
      `      what relays answered a flooder without work: ${JSON.stringify(Object.fromEntries(Object.entries(statuses).map(([k, v]) => [k, [...new Set(v)]])))}`,
    );
    for (const [kind, got] of Object.entries(statuses)) expect(new Set(got), kind).to.deep.equal(new Set(['invalid']));

    // The stranger's message goes to slot 0, and opens there.
    const r = await bob.send(formatAddress(victim.publicKey), enc('hello from a stranger'), { offline: 'only' });
    expect(r.status).to.equal('stored-offline');
    const rk0 = slotLocator(inbox, 0);
    const copies = await probe.fetchFromAll('mailbox', rk0);
    expect(copies.length).to.be.greaterThan(0);
    expect(copies.map((c) => dec(openMailboxItem(victim, rk0, c).data))).to.deep.equal(copies.map(() => 'hello from a stranger'));
  });

  it('behind a flood that paid for the cheap slots, an honest sender pays the next effort and delivers', async () => {
    const victim = createIdentity();
    const inbox = inboxKey(victim.publicKey, mailboxEpochAt(Date.now()));
    const flood = 33; // slots 0–31 at effort 256, 32 at 512
    let paid = 0;
    const results = await Promise.all(
      Array.from({ length: flood }, (_, i) => {
        paid += mailboxEffort(i);
        return probe.storeAll('mailbox', slotLocator(inbox, i), solveMailboxItem(junk(victim, i).item, crypto().random(16))!);
      }),
    );
    expect(results.every((s) => s.includes('ok'))).to.equal(true);
    console.log(`      the flood: ${flood} slots for about ${paid} hashes; the next slot costs ${mailboxEffort(flood)}`);

    const r = await bob.send(formatAddress(victim.publicKey), enc('behind the flood'), { offline: 'only' });
    expect(r.status).to.equal('stored-offline');
    // It took the first free slot, paying that slot's effort, and the recipient opens it there.
    const rk = slotLocator(inbox, flood);
    const copies = await probe.fetchFromAll('mailbox', rk);
    expect(copies.length).to.be.greaterThan(0);
    const opened = copies.map((c) => openMailboxItem(victim, rk, c));
    expect(opened.map((o) => [dec(o.data), formatAddress(o.from)])).to.deep.equal(copies.map(() => ['behind the flood', bob.address]));
    const env = decodeMailboxItem(copies[0]!);
    expect(env.v === 2 ? env.w.e : 0).to.equal(mailboxEffort(flood));
  });
});
