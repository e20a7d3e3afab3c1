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
import { MailboxCollector, MailboxSender, MAILBOX_READ_AHEAD, MAILBOX_SCAN_GAP, MAX_MAILBOX_COLLECT_BYTES, MAX_MAILBOX_PAIRS } from '../../client/mailbox.js';
import { crypto } from '../../crypto/index.js';
import { isAlliumError } from '../../protocol/errors.js';
import type { ContentStatus } from '../../protocol/content-messages.js';
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
  answers?: ContentClient['fetchAnswers'],
): Promise<T> {
  const proto = ContentClient.prototype as unknown as Record<string, unknown>;
  const saved = { fetchFromAll: proto['fetchFromAll'], fetchAnswers: proto['fetchAnswers'], storeAll: proto['storeAll'] };
  const fetchFromAll: ContentClient['fetchFromAll'] = (kind, rk, o) => (unanswered(rk) ? Promise.resolve([]) : holders.fetchFromAll(kind, rk, o));
  const fetchAnswers: ContentClient['fetchAnswers'] =
    answers ??
    (async (kind, rk, o) =>
      unanswered(rk) ? { copies: [], answered: 0, asked: 1 } : { copies: await holders.fetchFromAll(kind, rk, o), answered: 1, asked: 1 });
  Object.assign(proto, { storeAll: holders.storeAll, fetchFromAll, fetchAnswers });
  try {
    return await run();
  } finally {
    Object.assign(proto, saved);
  }
}

/**
 * These tests set up a day's inboxes from the clock and the code under test reads the clock again: near the end of a
 * mailbox epoch (UTC midnight) the two can fall on different days, and a pass reads inboxes the test never filled.
 * Within two minutes of the end, wait for the epoch to change (a CI run that crossed midnight timed out so).
 */
async function clearOfEpochEnd(this: Mocha.Context): Promise<void> {
  const epochMs = MAILBOX_EPOCH_SECONDS * 1000;
  const left = epochMs - (Date.now() % epochMs);
  if (left > 120_000) return;
  this.timeout(left + 30_000);
  const start = mailboxEpochAt(Date.now());
  while (mailboxEpochAt(Date.now()) === start) await new Promise((r) => setTimeout(r, Math.max(10, epochMs - (Date.now() % epochMs))));
}

describe('mailbox collection is bounded', () => {
  beforeEach(clearOfEpochEnd);
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
    let todaySeen = false;
    const n = await withHolders(holders, () =>
      collector.collect(
        (m) => {
          mostHeld = Math.max(mostHeld, fetched - delivered);
          delivered++;
          // Epochs are read several at once, but handed over epoch by epoch.
          if (m.epoch === today) todaySeen = true;
          if (m.epoch === today - 1 && todaySeen) todayBeforeYesterday = true;
        },
        (e) => {
          throw e;
        },
      ),
    );
    // A hand-over starts once the messages held reach MAX_MAILBOX_COLLECT_BYTES (half of it for the epoch whose
    // turn it is, the other half shared by the epochs read ahead); a window of slots is read at once by each.
    const perFlush = Math.ceil(MAX_MAILBOX_COLLECT_BYTES / 27_000) + MAILBOX_READ_AHEAD * (MAILBOX_SCAN_GAP - 1);
    expect(mostHeld).to.be.at.most(perFlush);
    // Collecting writes nothing (specs/messaging.md §9.4): what an observer reads in the slots does not change.
    expect({ n, deleted, todayBeforeYesterday }).to.deep.equal({ n: 405, deleted: 0, todayBeforeYesterday: false });
  });

  it('reads the epochs of a first pass several at once, and hands over the newest only after the older ones', async () => {
    // A first pass reads about nine epochs (MAX_MAILBOX_TTL_MS back); mail waits in the newest. One epoch after the
    // other, each costs a round of slot reads before the newest is reached.
    const reader = createIdentity();
    const now = Date.now();
    const today = mailboxEpochAt(now);
    const held = new Map<string, Uint8Array>();
    for (const [epoch, count] of [
      [today - 3, 1],
      [today, 2],
    ] as const) {
      const inbox = inboxKey(reader.publicKey, epoch);
      for (let i = 0; i < count; i++) {
        const rk = slotLocator(inbox, i);
        const data = new TextEncoder().encode(`epoch ${epoch} slot ${i}`);
        held.set(
          toHex(rk),
          sealMailboxItemV1({
            sender: createIdentity(),
            recipient: reader.publicKey,
            slot: rk,
            exp: now + 3_600_000,
            t: now - (today - epoch) * 1000 + i,
            n: 0,
            data,
          }).bytes,
        );
      }
    }
    let inFlight = 0;
    let mostInFlight = 0;
    const holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'> = {
      fetchFromAll: async (_kind, rk) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        const item = held.get(toHex(rk));
        return item ? [item] : [];
      },
      storeAll: async () => ['ok'],
    };
    const client = { directory: { all: () => [] } } as unknown as AlliumClient;
    const collector = new MailboxCollector(client, reader);
    const epochs: number[] = [];
    const n = await withHolders(holders, () =>
      collector.collect(
        (m) => void epochs.push(m.epoch),
        (e) => {
          throw e;
        },
      ),
    );
    expect(n).to.equal(3);
    expect(epochs).to.deep.equal([today - 3, today, today]);
    // Before: one window of MAILBOX_SCAN_GAP slots at a time. Now a window of each epoch read at once, and no more.
    expect(mostInFlight).to.be.greaterThan(MAILBOX_SCAN_GAP);
    expect(mostInFlight).to.be.at.most(MAILBOX_READ_AHEAD * MAILBOX_SCAN_GAP);
  });

  it('a pass that ends before the newest epoch it read ahead is handed over leaves that mail to the next pass', async () => {
    // The newest epoch is read first and waits for the older ones to be handed over. A pass aborted meanwhile must not
    // have moved the newest inbox's read position over the mail it never delivered.
    const reader = createIdentity();
    const now = Date.now();
    const today = mailboxEpochAt(now);
    const newest = inboxKey(reader.publicKey, today);
    const rk0 = slotLocator(newest, 0);
    const item = sealMailboxItemV1({
      sender: createIdentity(),
      recipient: reader.publicKey,
      slot: rk0,
      exp: now + 3_600_000,
      t: now,
      n: 0,
      data: new TextEncoder().encode('waiting'),
    }).bytes;
    const newestSlots = new Set(Array.from({ length: 8 }, (_, i) => toHex(slotLocator(newest, i))));
    let hang = true;
    let newestFetches = 0;
    let newestRead!: () => void;
    const newestDone = new Promise<void>((r) => (newestRead = r));
    const answers: ContentClient['fetchAnswers'] = async (_kind, rk, o) => {
      const key = toHex(rk);
      if (newestSlots.has(key)) {
        // Slot 0 taken, then three free: the sixth read ends the newest inbox.
        if (++newestFetches === 6) setImmediate(newestRead);
        return { copies: key === toHex(rk0) ? [item] : [], answered: 1, asked: 1 };
      }
      if (hang) {
        await new Promise<void>((_r, reject) =>
          o?.signal?.addEventListener('abort', () => reject(new ProtocolError('ERR_ABORTED', 'aborted')), { once: true }),
        );
      }
      return { copies: [], answered: 1, asked: 1 };
    };
    const holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'> = { fetchFromAll: async () => [], storeAll: async () => ['ok'] };
    const client = { directory: { all: () => [] } } as unknown as AlliumClient;
    const collector = new MailboxCollector(client, reader);
    const got: string[] = [];
    const deliver = (m: { data: Uint8Array }): void => void got.push(new TextDecoder().decode(m.data));
    await withHolders(
      holders,
      async () => {
        const ac = new AbortController();
        const first = collector.collect(deliver, () => undefined, { signal: ac.signal });
        await newestDone; // the newest epoch is read, its mail kept, waiting for its turn
        ac.abort();
        const code = await first.then(
          () => 'resolved',
          (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
        );
        expect(code).to.equal('ERR_ABORTED');
        expect(got).to.deep.equal([]);
        hang = false;
        await collector.collect(deliver, () => undefined);
      },
      () => false,
      answers,
    );
    // Before: the first pass had moved the read position past slot 0, and the second pass never read it again.
    expect(got).to.deep.equal(['waiting']);
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
  beforeEach(clearOfEpochEnd);
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

/**
 * Each slot at three holders in memory, for MailboxSender and MailboxCollector at once. `liar` makes the first holder
 * lie: 'reads' answers every full FETCH of a slot it has nothing in with junk of its own (an item that opens for no
 * one) and HEAD probes truthfully, 'heads' says it holds every slot HEAD asks about; either way it refuses every
 * STORE. `down`: no holder answers a FETCH (STOREs still go through). `refusing`: every holder refuses every STORE.
 */
function threeHolders(): {
  liar: 'reads' | 'heads' | null;
  down: boolean;
  refusing: boolean;
  stores: number;
  /** The slots (hex locators) read, one entry per read that is not a head-only probe. */
  reads: string[];
  put: (rk: Uint8Array, bytes: Uint8Array) => void;
  run: <T>(f: () => Promise<T>) => Promise<T>;
} {
  const held = [new Map<string, Uint8Array>(), new Map<string, Uint8Array>(), new Map<string, Uint8Array>()];
  const junk = crypto().random(600);
  const rig = {
    liar: null as 'reads' | 'heads' | null,
    down: false,
    refusing: false,
    stores: 0,
    reads: [] as string[],
    put: (rk: Uint8Array, bytes: Uint8Array) => held.forEach((h) => h.set(toHex(rk), bytes)),
    run: async <T>(f: () => Promise<T>): Promise<T> => {
      const fetchAnswers: ContentClient['fetchAnswers'] = async (_kind, rk, o) => {
        if (o?.head !== true) rig.reads.push(toHex(rk));
        if (rig.down) return { copies: [], answered: 0, asked: 3 };
        const copies = held.flatMap((h, i): Uint8Array[] => {
          const item = h.get(toHex(rk));
          if (i === 0 && !item && rig.liar === 'reads' && o?.head !== true) return [junk];
          if (i === 0 && rig.liar === 'heads' && o?.head === true) return [new Uint8Array(0)];
          return item ? [o?.head === true ? new Uint8Array(0) : item] : [];
        });
        return { copies, answered: 3, asked: 3 };
      };
      const storeAll: ContentClient['storeAll'] = async (_kind, rk, bytes) => {
        rig.stores++;
        return held.map((h, i): ContentStatus => {
          if (rig.refusing || (i === 0 && rig.liar !== null)) return 'refused';
          const have = h.get(toHex(rk));
          if (!have) h.set(toHex(rk), bytes);
          return have ? (toHex(have) === toHex(bytes) ? 'exists' : 'occupied') : 'ok';
        });
      };
      const fetchFromAll: ContentClient['fetchFromAll'] = async (kind, rk, o) => (await fetchAnswers(kind, rk, o)).copies;
      return withHolders({ fetchFromAll, storeAll }, f, () => false, fetchAnswers);
    },
  };
  return rig;
}

describe('the read position of a 1:1 inbox, and where a sender starts (specs/messaging.md §9.5)', () => {
  beforeEach(clearOfEpochEnd);
  const client = { directory: { all: () => [] } } as unknown as AlliumClient;
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);

  it("a holder answering a free slot with junk does not move the reader past it: a writer's deposit there is read", async () => {
    const reader = createIdentity();
    const rig = threeHolders();
    const collector = new MailboxCollector(client, reader);
    const sender = new MailboxSender(client, createIdentity(), {}, { prekeys: false });
    const got: string[] = [];
    const errors: string[] = [];
    const pass = (): Promise<number> =>
      rig.run(() =>
        collector.collect(
          (m) => void got.push(new TextDecoder().decode(m.data)),
          (e) => errors.push(e.code),
        ),
      );
    try {
      rig.liar = 'reads';
      await pass();
      expect(errors.length, 'the junk is reported').to.be.above(0);
      // The writer's probe finds slot 0 free; two of its three holders accept the message.
      const sent = await rig.run(() => sender.deposit(reader.publicKey, text('after the junk')));
      expect(sent.slot).to.equal(0);
      await pass();
      expect(got).to.deep.equal(['after the junk']);
    } finally {
      sender.close();
    }
  });

  it('the read position stops before a free slot even when the next slot of the window is taken', async () => {
    const reader = createIdentity();
    const rig = threeHolders();
    const now = Date.now();
    // A message in slot 1 with slot 0 free (say its writer's probe was misled).
    const rk = slotLocator(inboxKey(reader.publicKey, mailboxEpochAt(now)), 1);
    rig.put(
      rk,
      sealMailboxItemV1({ sender: createIdentity(), recipient: reader.publicKey, slot: rk, exp: now + 3_600_000, t: now, n: 0, data: text('in slot 1') }).bytes,
    );
    const collector = new MailboxCollector(client, reader);
    const sender = new MailboxSender(client, createIdentity(), {}, { prekeys: false });
    const got: string[] = [];
    const pass = (): Promise<number> =>
      rig.run(() =>
        collector.collect(
          (m) => void got.push(new TextDecoder().decode(m.data)),
          (e) => {
            throw e;
          },
        ),
      );
    try {
      await pass();
      const sent = await rig.run(() => sender.deposit(reader.publicKey, text('in slot 0')));
      expect(sent.slot).to.equal(0);
      await pass();
      // Slot 1 is read again, and not delivered again.
      expect(got).to.deep.equal(['in slot 1', 'in slot 0']);
    } finally {
      sender.close();
    }
  });

  it('a slot kept free holds the read position, but the taken slots past it are not read again by later passes', async () => {
    const reader = createIdentity();
    const rig = threeHolders();
    const now = Date.now();
    const inbox = inboxKey(reader.publicKey, mailboxEpochAt(now));
    const slot = (i: number): Uint8Array => slotLocator(inbox, i);
    const item = (i: number): Uint8Array =>
      sealMailboxItemV1({
        sender: createIdentity(),
        recipient: reader.publicKey,
        slot: slot(i),
        exp: now + 3_600_000,
        t: now + i,
        n: 0,
        data: text(`in slot ${i}`),
      }).bytes;
    // Slot 0 free (its writer was misled), ten messages after it.
    for (let i = 1; i <= 10; i++) rig.put(slot(i), item(i));
    const collector = new MailboxCollector(client, reader);
    const got: string[] = [];
    const todays = Array.from({ length: 64 }, (_, i) => toHex(slot(i)));
    const pass = async (): Promise<number[]> => {
      rig.reads = [];
      await rig.run(() =>
        collector.collect(
          (m) => void got.push(new TextDecoder().decode(m.data)),
          (e) => {
            throw e;
          },
        ),
      );
      return rig.reads.map((r) => todays.indexOf(r)).filter((i) => i >= 0);
    };
    // The first pass reads slot 0, the ten taken and the windows (MAILBOX_SCAN_GAP slots) after them until three free.
    expect((await pass()).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 15 }, (_, i) => i));
    expect(got).to.have.length(10);
    // The next reads slot 0 (still free) and the window after the last taken slot, not the ten again.
    expect((await pass()).sort((a, b) => a - b)).to.deep.equal([0, 11, 12, 13, 14]);
    // A message that comes after them, and one in slot 0, are read; nothing is delivered twice.
    rig.put(slot(11), item(11));
    rig.put(slot(0), item(0));
    expect((await pass()).sort((a, b) => a - b)).to.deep.equal([0, 11, 12, 13, 14]);
    expect(got.slice(10).sort()).to.deep.equal(['in slot 0', 'in slot 11']);
    // Slot 0 taken: the read position moves over every known taken slot without reading them.
    expect((await pass()).sort((a, b) => a - b)).to.deep.equal([12, 13, 14]);
    expect(got).to.have.length(12);
  });

  it('a sender whose probes no holder answers fails with ERR_UNREACHABLE and stores nothing; one holder claiming every slot does not fill the inbox', async () => {
    const recipient = createIdentity();
    const rig = threeHolders();
    const now = Date.now();
    const inbox = inboxKey(recipient.publicKey, mailboxEpochAt(now));
    for (let i = 0; i < 5; i++) {
      const rk = slotLocator(inbox, i);
      rig.put(
        rk,
        sealMailboxItemV1({ sender: createIdentity(), recipient: recipient.publicKey, slot: rk, exp: now + 3_600_000, t: now, n: i, data: text(`${i}`) }).bytes,
      );
    }
    const deposit = async (): Promise<number> => {
      const sender = new MailboxSender(client, createIdentity(), {}, { prekeys: false });
      try {
        return (await rig.run(() => sender.deposit(recipient.publicKey, text('hello')))).slot;
      } finally {
        sender.close();
      }
    };
    // No holder answers a FETCH: the first free slot is not known, so nothing is stored (not from slot 0 upwards).
    rig.down = true;
    const failed = await deposit().then(
      (slot) => `stored in slot ${slot}`,
      (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
    );
    expect({ failed, stores: rig.stores }).to.deep.equal({ failed: 'ERR_UNREACHABLE', stores: 0 });
    rig.down = false;
    expect({ slot: await deposit(), stores: rig.stores }).to.deep.equal({ slot: 5, stores: 1 });
    // One holder of three says it holds every slot: the probe takes the other two's word (slot 6 is free).
    rig.liar = 'heads';
    expect(await deposit()).to.equal(6);
  });
  it('an item written out of turn above free slots does not send senders past where readers stop', async () => {
    const reader = createIdentity();
    const rig = threeHolders();
    const now = Date.now();
    const inbox = inboxKey(reader.publicKey, mailboxEpochAt(now));
    // Someone pays each slot's work to write slots 0, 1, 3, 7 and 15 directly, leaving 2, 4–6 and 8–14 free.
    for (const i of [0, 1, 3, 7, 15]) {
      const rk = slotLocator(inbox, i);
      const sealed = sealMailboxItemV1({
        sender: createIdentity(),
        recipient: reader.publicKey,
        slot: rk,
        exp: now + 3_600_000,
        t: now,
        n: 0,
        data: text(`${i}`),
      });
      rig.put(rk, sealed.bytes);
    }
    const collector = new MailboxCollector(client, reader);
    const sender = new MailboxSender(client, createIdentity(), {}, { prekeys: false });
    const got: string[] = [];
    try {
      // The first free slot in reading order: below it every slot is taken, so a reader reaches it.
      const sent = await rig.run(() => sender.deposit(reader.publicKey, text('honest')));
      await rig.run(() =>
        collector.collect(
          (m) => void got.push(new TextDecoder().decode(m.data)),
          (e) => {
            throw e;
          },
        ),
      );
      expect({ slot: sent.slot, read: got.includes('honest') }).to.deep.equal({ slot: 2, read: true });
    } finally {
      sender.close();
    }
  });

  it('a deposit no holder accepted leaves its slot to the next deposit, not a free slot below it', async () => {
    const reader = createIdentity();
    const rig = threeHolders();
    const collector = new MailboxCollector(client, reader);
    const sender = new MailboxSender(client, createIdentity(), {}, { prekeys: false });
    const got: string[] = [];
    try {
      // Every holder refuses (rate bounds, say) three deposits in a row: each fails, nothing is stored.
      rig.refusing = true;
      for (let i = 0; i < MAILBOX_SCAN_GAP; i++) {
        const failed = await rig
          .run(() => sender.deposit(reader.publicKey, text(`lost ${i}`)))
          .then(
            () => 'stored',
            (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
          );
        expect(failed).to.equal('ERR_UNREACHABLE');
      }
      rig.refusing = false;
      const sent = await rig.run(() => sender.deposit(reader.publicKey, text('after the refusals')));
      await rig.run(() =>
        collector.collect(
          (m) => void got.push(new TextDecoder().decode(m.data)),
          (e) => {
            throw e;
          },
        ),
      );
      expect({ slot: sent.slot, got }).to.deep.equal({ slot: 0, got: ['after the refusals'] });
    } finally {
      sender.close();
    }
  });
});
