/**
 * A spammed inbox costs its reader bounded memory (specs/messaging.md §9.5): the collector hands messages over an
 * epoch at a time, and within an epoch whenever it holds MAX_MAILBOX_COLLECT_BYTES, rather than after reading every
 * inbox it may have mail in. Items are real (sealed by their senders, opened by the reader); the holders are a map.
 */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { createIdentity } from '../../protocol/address.js';
import { inboxKey, mailboxEpochAt, MAILBOX_EPOCH_SECONDS, pairInboxKey, pairSecret, sealMailboxItemV1, slotLocator } from '../../protocol/mailbox.js';
import type { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { MailboxCollector, MAILBOX_SCAN_GAP, MAX_MAILBOX_COLLECT_BYTES, MAX_MAILBOX_PAIRS } from '../../client/mailbox.js';
import { formatAddress, type Identity } from '../../protocol/address.js';
import { ProtocolError } from '../../protocol/errors.js';
import { Messenger, type MessengerHost } from '../../client/messaging/index.js';
import { memoryContactStorage, type ContactStorage } from '../../client/messaging/contacts.js';
import { endpointRig, introduce, sendFrame, settle } from '../helpers/messenger-rig.js';

/**
 * Makes every ContentClient ask `holders` instead of relays while `run` runs. `unanswered(rk)`: no holder of the slot
 * answers (fetchFromAll leaves unreachable holders out, as ContentClient's does; fetchAnswers says none answered).
 */
async function withHolders<T>(
  holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'>,
  run: () => Promise<T>,
  unanswered: (rk: Uint8Array) => boolean = () => false,
): Promise<T> {
  const proto = ContentClient.prototype as unknown as Record<string, unknown>;
  const saved = { fetchFromAll: proto['fetchFromAll'], fetchAnswers: proto['fetchAnswers'], storeAll: proto['storeAll'] };
  const fetchFromAll: ContentClient['fetchFromAll'] = (kind, rk, o) => (unanswered(rk) ? Promise.resolve([]) : holders.fetchFromAll(kind, rk, o));
  const fetchAnswers: ContentClient['fetchAnswers'] = async (kind, rk, o) =>
    unanswered(rk) ? { copies: [], answered: 0 } : { copies: await holders.fetchFromAll(kind, rk, o), answered: 1 };
  Object.assign(proto, { storeAll: holders.storeAll, fetchFromAll, fetchAnswers });
  try {
    return await run();
  } finally {
    Object.assign(proto, saved);
  }
}

describe('mailbox collection is bounded', () => {
  it('400 near-maximal messages in one inbox and 5 in the day before: handed over an epoch and a few MiB at a time', async () => {
    const reader = createIdentity();
    const now = Date.now();
    const today = mailboxEpochAt(now);
    const held = new Map<string, Uint8Array>();
    const fill = (epoch: number, count: number, t0: number): void => {
      const inbox = inboxKey(reader.publicKey, epoch);
      for (let i = 0; i < count; i++) {
        const rk = slotLocator(inbox, i);
        const data = new Uint8Array(27_000).fill(i % 256);
        held.set(
          toHex(rk),
          sealMailboxItemV1({ sender: createIdentity(), recipient: reader.publicKey, slot: rk, exp: now + 3_600_000, t: t0 + i, n: 0, data }).bytes,
        );
      }
    };
    fill(today - 1, 5, now - MAILBOX_EPOCH_SECONDS * 1000);
    fill(today, 400, now);
    let fetched = 0;
    let deleted = 0;
    const holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'> = {
      fetchFromAll: async (_kind, rk) => {
        const item = held.get(toHex(rk));
        if (item && item.length > 100) fetched++;
        return item ? [item] : [];
      },
      storeAll: async (_kind, rk, bytes) => {
        deleted++;
        held.set(toHex(rk), bytes);
        return ['ok'];
      },
    };
    const client = { directory: { all: () => [] } } as unknown as AlliumClient;
    const collector = new MailboxCollector(client, reader);
    let delivered = 0;
    // The most messages read and not yet handed over, seen at any hand-over (what the collector held).
    let mostHeld = 0;
    let todayBeforeYesterday = false;
    const n = await withHolders(holders, () =>
      collector.collect(
        (m) => {
          mostHeld = Math.max(mostHeld, fetched - delivered);
          delivered++;
          if (m.epoch === today - 1 && fetched > 5) todayBeforeYesterday = true;
        },
        (e) => {
          throw e;
        },
      ),
    );
    // A hand-over starts once the messages held reach MAX_MAILBOX_COLLECT_BYTES; a window of slots is read at once.
    const perFlush = Math.ceil(MAX_MAILBOX_COLLECT_BYTES / 27_000) + MAILBOX_SCAN_GAP - 1;
    expect(mostHeld).to.be.at.most(perFlush);
    // Collecting writes nothing (specs/messaging.md §9.4): what an observer reads in the slots does not change.
    expect({ n, deleted, todayBeforeYesterday }).to.deep.equal({ n: 405, deleted: 0, todayBeforeYesterday: false });
  });

  it('reads the per-contact inboxes of its pairs, and refuses an item there that is not from the pair', async () => {
    const reader = createIdentity();
    const friend = createIdentity();
    const stranger = createIdentity();
    const now = Date.now();
    const inbox = pairInboxKey(pairSecret(friend, reader.publicKey), friend.publicKey, mailboxEpochAt(now));
    const held = new Map<string, Uint8Array>();
    const put = (i: number, sender: typeof friend, text: string): void => {
      const rk = slotLocator(inbox, i);
      const data = new TextEncoder().encode(text);
      held.set(toHex(rk), sealMailboxItemV1({ sender, recipient: reader.publicKey, slot: rk, exp: now + 3_600_000, t: now + i, n: i, data }).bytes);
    };
    put(0, friend, 'one');
    put(1, friend, 'two');
    put(2, stranger, 'not from the pair'); // someone who learnt the pair's inbox from a holder
    const holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'> = {
      fetchFromAll: async (_kind, rk) => {
        const item = held.get(toHex(rk));
        return item ? [item] : [];
      },
      storeAll: async () => {
        throw new Error('a collection stores nothing');
      },
    };
    const client = { directory: { all: () => [] } } as unknown as AlliumClient;
    const got: string[] = [];
    const errors: string[] = [];
    const alone = new MailboxCollector(client, reader);
    await withHolders(holders, () =>
      alone.collect(
        (m) => void got.push(new TextDecoder().decode(m.data)),
        (e) => errors.push(e.code),
      ),
    );
    expect(got, 'without the pair, its inbox is not read').to.deep.equal([]);
    const paired = new MailboxCollector(client, reader, { pairs: () => ({ contacts: [friend.publicKey], others: [] }) });
    await withHolders(holders, () =>
      paired.collect(
        (m) => void got.push(new TextDecoder().decode(m.data)),
        (e) => errors.push(e.code),
      ),
    );
    expect({ got, errors }).to.deep.equal({ got: ['one', 'two'], errors: ['ERR_MESSAGE_AUTH'] });
  });

  it('a slot no holder answered is not free: nothing behind it is skipped or counted as read, and the pass says so', async () => {
    const reader = createIdentity();
    const friend = createIdentity();
    const now = Date.now();
    const today = mailboxEpochAt(now);
    const held = new Map<string, Uint8Array>();
    const put = (inbox: Uint8Array, i: number, sender: typeof friend, t: number, text: string): Uint8Array => {
      const rk = slotLocator(inbox, i);
      const data = new TextEncoder().encode(text);
      held.set(toHex(rk), sealMailboxItemV1({ sender, recipient: reader.publicKey, slot: rk, exp: now + 3_600_000, t, n: i, data }).bytes);
      return rk;
    };
    const yesterday = now - MAILBOX_EPOCH_SECONDS * 1000;
    // Yesterday's first-contact and per-contact inboxes, and today's with an item behind a slot whose holders are out.
    put(inboxKey(reader.publicKey, today - 1), 0, createIdentity(), yesterday, 'stranger, yesterday');
    put(pairInboxKey(pairSecret(friend, reader.publicKey), friend.publicKey, today - 1), 0, friend, yesterday + 1, 'friend, yesterday');
    put(inboxKey(reader.publicKey, today), 0, createIdentity(), now - 2, 'today 0');
    const outage = put(inboxKey(reader.publicKey, today), 1, createIdentity(), now - 1, 'today 1');
    put(inboxKey(reader.publicKey, today), 2, createIdentity(), now, 'today 2');
    const holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'> = {
      fetchFromAll: async (_kind, rk) => {
        const item = held.get(toHex(rk));
        return item ? [item] : [];
      },
      storeAll: async () => {
        throw new Error('a collection stores nothing');
      },
    };
    const client = { directory: { all: () => [] } } as unknown as AlliumClient;
    const collector = new MailboxCollector(client, reader, { pairs: () => ({ contacts: [friend.publicKey], others: [] }) });
    const got: string[] = [];
    const errors: string[] = [];
    const pass = (unanswered: (rk: Uint8Array) => boolean): Promise<number> =>
      withHolders(
        holders,
        () =>
          collector.collect(
            (m) => void got.push(new TextDecoder().decode(m.data)),
            (e) => errors.push(e.code),
          ),
        unanswered,
      );
    // Every holder out: nothing is read, and the pass reports it rather than finding the inboxes empty.
    expect(await pass(() => true)).to.equal(0);
    expect({ got, errors }).to.deep.equal({ got: [], errors: ['ERR_UNREACHABLE'] });
    // One slot's holders out: what comes before it is read; the inbox stops there.
    errors.length = 0;
    await pass((rk) => toHex(rk) === toHex(outage));
    expect({ got, errors }).to.deep.equal({ got: ['stranger, yesterday', 'friend, yesterday', 'today 0'], errors: ['ERR_UNREACHABLE'] });
    // Holders back: the next pass reads on from the slot that was not answered, and nothing is lost.
    errors.length = 0;
    await pass(() => false);
    expect({ got: got.slice(3), errors }).to.deep.equal({ got: ['today 1', 'today 2'], errors: [] });
  });
});

/** Slots held in memory, every holder answering; `items` seals an item from `sender` into a pair's per-contact inbox. */
function pairSlots(reader: Uint8Array): {
  holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'>;
  put: (sender: Identity, text: string) => void;
} {
  const held = new Map<string, Uint8Array>();
  const now = Date.now();
  return {
    holders: {
      fetchFromAll: async (_kind, rk) => {
        const item = held.get(toHex(rk));
        return item ? [item] : [];
      },
      storeAll: async () => {
        throw new Error('a collection stores nothing');
      },
    },
    put: (sender, text) => {
      const rk = slotLocator(pairInboxKey(pairSecret(sender, reader), sender.publicKey, mailboxEpochAt(now)), 0);
      const data = new TextEncoder().encode(text);
      held.set(toHex(rk), sealMailboxItemV1({ sender, recipient: reader, slot: rk, exp: now + 3_600_000, t: now, n: 0, data }).bytes);
    },
  };
}

describe('per-contact inboxes a messenger reads (specs/messaging.md §9.5)', () => {
  it(`${MAX_MAILBOX_PAIRS + 10} strangers who opened conversations do not push a contact out of what a pass reads`, async () => {
    const rig = await endpointRig({ offline: { collect: false } });
    const m = rig.messenger;
    try {
      const friend = createIdentity();
      await m.contacts.add(formatAddress(friend.publicKey), { name: 'friend' });
      // Strangers authenticate conversations after the contact was added: each becomes a pair (most recent first).
      const strangers: Identity[] = [];
      for (let i = 0; i < MAX_MAILBOX_PAIRS + 10; i++) {
        const peer = introduce(rig);
        strangers.push(peer.identity);
        await settle();
        const circuit = rig.built[i]!;
        sendFrame(circuit, circuit.begin('allium:messages', 1), peer, new TextEncoder().encode('hi'));
        await settle();
        circuit.close();
      }
      const slots = pairSlots(m.identity.publicKey);
      slots.put(friend, 'from the friend');
      slots.put(strangers[strangers.length - 1]!, 'from the last stranger');
      const got: string[] = [];
      m.on('message:received', (x) => void (x.offline && got.push(new TextDecoder().decode(x.data))));
      await withHolders(slots.holders, () => m.checkMailbox());
      // The contact first; the newest stranger still gets the room left.
      expect(got.sort()).to.deep.equal(['from the friend', 'from the last stranger']);
    } finally {
      m.close();
    }
  });

  it("a contact book that cannot be read is reported, and its contacts' inboxes are read once it can", async () => {
    const friend = createIdentity();
    const stored = memoryContactStorage();
    let failing = true;
    const storage: ContactStorage = {
      load: (o) => (failing ? Promise.reject(new ProtocolError('ERR_SCHEMA', 'contact book: not readable now')) : stored.load(o)),
      save: (b, o) => stored.save(b, o),
    };
    const host = { directory: { all: () => [] }, newCircuit: () => Promise.reject(new Error('no circuits here')) } as unknown as MessengerHost;
    const m = new Messenger(host, createIdentity(), { contactStorage: storage, offline: { collect: false } });
    try {
      const slots = pairSlots(m.identity.publicKey);
      slots.put(friend, 'from the friend');
      // The book as an earlier run stored it: the friend is a contact.
      failing = false;
      const earlier = new Messenger(host, m.identity, { contactStorage: storage, offline: { collect: false } });
      await earlier.contacts.add(formatAddress(friend.publicKey), { name: 'friend' });
      earlier.close();
      failing = true;
      const got: string[] = [];
      const errors: string[] = [];
      m.on('message:received', (x) => void got.push(new TextDecoder().decode(x.data)));
      m.on('endpoint:error', (e) => void errors.push(e.code));
      await withHolders(slots.holders, () => m.checkMailbox());
      expect({ got, errors }).to.deep.equal({ got: [], errors: ['ERR_SCHEMA'] });
      failing = false;
      await withHolders(slots.holders, () => m.checkMailbox());
      expect({ got, errors }).to.deep.equal({ got: ['from the friend'], errors: ['ERR_SCHEMA'] });
    } finally {
      m.close();
    }
  });
});
