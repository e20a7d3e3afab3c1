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
import { MailboxCollector, MAILBOX_SCAN_GAP, MAX_MAILBOX_COLLECT_BYTES } from '../../client/mailbox.js';

/** Makes every ContentClient ask `holders` instead of relays while `run` runs. */
async function withHolders<T>(holders: Pick<ContentClient, 'fetchFromAll' | 'storeAll'>, run: () => Promise<T>): Promise<T> {
  const proto = ContentClient.prototype as unknown as Record<string, unknown>;
  const saved = { fetchFromAll: proto['fetchFromAll'], storeAll: proto['storeAll'] };
  Object.assign(proto, holders);
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
    const paired = new MailboxCollector(client, reader, { pairs: () => [friend.publicKey] });
    await withHolders(holders, () =>
      paired.collect(
        (m) => void got.push(new TextDecoder().decode(m.data)),
        (e) => errors.push(e.code),
      ),
    );
    expect({ got, errors }).to.deep.equal({ got: ['one', 'two'], errors: ['ERR_MESSAGE_AUTH'] });
  });
});
