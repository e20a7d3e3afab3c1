/**
 * The prekey owner (client/prekeys.ts, specs/messaging.md §9.6) with an injected clock and an in-memory storage:
 * one-time prekeys that opened an item stay listed until the rollover (at most hourly), are then retired and kept
 * through their grace, so an item sealed from a stale record still opens, and wiped after; the signed prekey rotates
 * weekly and the replaced one is kept while a stale record may list it; everything survives a restart, and an item
 * sealed to a deleted prekey no longer opens, even with the identity key. The sender's side: a one-time prekey only
 * from a record it cannot tell is stale, and what it remembers to refuse a downgrade.
 */
import { expect } from 'chai';
import type { ContentClient } from '../../client/content.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import {
  choosePrekeys,
  MAX_RETIRED_ONE_TIME_PREKEYS,
  MAX_PREKEY_PUBLISHERS,
  ONE_TIME_GRACE_MS,
  PREKEY_FRESH_MS,
  PREKEY_GRACE_MS,
  PREKEY_LATE_MS,
  PREKEY_PUBLISH_EPOCHS,
  PREKEY_REPUBLISH_MIN_MS,
  PREKEY_ROTATE_MS,
  PrekeyOwner,
  PrekeyPublishers,
} from '../../client/prekeys.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { isAlliumError } from '../../protocol/errors.js';
import {
  inboxKey,
  MAILBOX_EPOCH_SECONDS,
  MAX_MAILBOX_TTL_MS,
  mailboxEpochAt,
  openMailboxItem,
  sealMailboxItem,
  solveMailboxItem,
} from '../../protocol/mailbox.js';
import { MAX_ONE_TIME_PREKEYS, openPrekeyRecord, prekeyRecordKeys, PREKEY_WINDOW_MS, type PrekeyBundle } from '../../protocol/prekeys.js';
import { editionToCome, RECORD_CLOCK_SKEW_MS } from '../../protocol/ssk.js';

const NOW = Date.UTC(2026, 11, 6, 12);
const DAY = MAILBOX_EPOCH_SECONDS * 1000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'opened';
  } catch (e) {
    return isAlliumError(e) ? e.code : String(e);
  }
}

describe('prekey owner (specs/messaging.md §9.6)', () => {
  let owner: ReturnType<typeof createIdentity>;
  let sender: ReturnType<typeof createIdentity>;
  let now = NOW;
  const clock = (): number => now;
  before(() => {
    owner = createIdentity();
    sender = createIdentity();
  });
  beforeEach(() => (now = NOW));

  /**
   * Publishes (to holders that accept everything) and returns the bundle a sender reads once the new edition is
   * served (its window's start), from the first epoch it was published for: the edition's.
   */
  const published = async (o: PrekeyOwner): Promise<PrekeyBundle> => {
    const records: Array<{ rk: Uint8Array; bytes: Uint8Array }> = [];
    const holders = {
      storeAll: (_kind: string, rk: Uint8Array, bytes: Uint8Array) => {
        records.push({ rk, bytes });
        return Promise.resolve(['ok']);
      },
    };
    expect(await o.publish(holders as unknown as ContentClient)).to.equal(PREKEY_PUBLISH_EPOCHS);
    const epoch = mailboxEpochAt(o.lastEdition());
    expect(records.map((r) => r.rk)).to.deep.equal(Array.from({ length: PREKEY_PUBLISH_EPOCHS }, (_, i) => prekeyRecordKeys(owner.publicKey, epoch + i).rk));
    return openPrekeyRecord(owner.publicKey, epoch, records[0]!.bytes).bundle;
  };

  /** A version 3 item to the owner, sealed to `spk` and `opk`. */
  const item = (spk: Uint8Array, opk: Uint8Array | undefined, text: string) => {
    const s = sealMailboxItem({
      sender,
      recipient: owner.publicKey,
      inbox: inboxKey(owner.publicKey, mailboxEpochAt(now)),
      index: 0,
      exp: now + 3600_000,
      t: now,
      n: 0,
      data: enc(text),
      prekeys: opk ? { spk, opk } : { spk },
    });
    return { slot: s.slot, bytes: solveMailboxItem(s.item, new Uint8Array(16))! };
  };

  /** One collection pass that opens `items` (noting the one-time prekeys they used), as the messenger runs it. */
  const pass = async (o: PrekeyOwner, items: Array<{ slot: Uint8Array; bytes: Uint8Array }>): Promise<{ opened: string[]; due: boolean }> => {
    o.beginPass();
    const opened: string[] = [];
    for (const it of items) {
      const r = codeOf(() => {
        const m = openMailboxItem(owner, it.slot, it.bytes, { prekeys: (id, kind) => o.lookup(id, kind) });
        if (m.prekeys?.opk) o.opened(m.prekeys.opk);
        opened.push(new TextDecoder().decode(m.data));
      });
      if (r !== 'opened') opened.push(r);
    }
    return { opened, due: await o.endPass() };
  };

  it('keeps a used one-time prekey listed until the rollover, then retired through its grace, then wipes it; across a restart', async () => {
    const storage = memoryGroupStorage();
    const a = new PrekeyOwner(owner, storage, clock);
    await a.load();
    const bundle = await published(a);
    expect(bundle.otks.length).to.equal(MAX_ONE_TIME_PREKEYS);
    const opk = bundle.otks[3]!;
    const one = item(bundle.spk, opk, 'one');
    const two = item(bundle.spk, opk, 'two'); // another sender picked the same one-time prekey
    // Both items open; the pass marks the prekey used, and the records are due again (the first rollover).
    expect(await pass(a, [one, two])).to.deep.equal({ opened: ['one', 'two'], due: true });
    expect(a.holdsOneTime(opk)).to.equal(true);
    // The rollover: the next record no longer lists it, a full batch again; the secret is retired, not wiped.
    const next = await published(a);
    expect(next.otks.length).to.equal(MAX_ONE_TIME_PREKEYS);
    expect(next.otks.some((k) => hex(k) === hex(opk))).to.equal(false);
    expect(a.retiredCount()).to.equal(1);
    expect(await pass(a, [one])).to.deep.equal({ opened: ['one'], due: false });
    // A restarted owner with the same storage has the same listed keys and the retired one.
    const b = new PrekeyOwner(owner, storage, clock);
    await b.load();
    expect((await published(b)).otks.map(hex)).to.deep.equal(next.otks.map(hex));
    expect(b.retiredCount()).to.equal(1);
    // The first pass that begins ONE_TIME_GRACE_MS after the rollover's edition wipes it: the item opens no more.
    // The rollover's edition was for the next window: its start (NOW + 12 h) + a random offset below 2048.
    now = NOW + PREKEY_WINDOW_MS + ONE_TIME_GRACE_MS - 1;
    expect((await pass(b, [one])).opened).to.deep.equal(['one']);
    now += 2 + 2048;
    expect((await pass(b, [])).due).to.equal(true); // and the last edition is a day old: the records are refreshed
    expect(b.retiredCount()).to.equal(0);
    expect(codeOf(() => openMailboxItem(owner, one.slot, one.bytes, { prekeys: (id, kind) => b.lookup(id, kind) }))).to.equal('ERR_MESSAGE_AUTH');
    expect(codeOf(() => openMailboxItem(owner, one.slot, one.bytes))).to.equal('ERR_MESSAGE_AUTH');
    // Junk naming our ids retires nothing: only items that opened count.
    b.opened(new Uint8Array(8));
    await published(b);
    expect(await b.endPass()).to.equal(false);
  });

  it('opens an item a sender sealed from a stale record to a one-time prekey already used and rolled over', async () => {
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    // A holder keeps this record and serves it after the owner has published newer ones.
    const stale = await published(a);
    const opk = stale.otks[0]!;
    await pass(a, [item(stale.spk, opk, 'first')]);
    now += 60_000;
    expect((await published(a)).otks.some((k) => hex(k) === hex(opk))).to.equal(false);
    // A sender reads the stale record (less than PREKEY_FRESH_MS old, so it uses a one-time prekey) and picks it.
    now += PREKEY_FRESH_MS - 120_000;
    const late = item(stale.spk, opk, 'sealed from the stale record');
    // The owner's next passes open it: nothing a holder accepted is lost.
    expect((await pass(a, [late])).opened).to.deep.equal(['sealed from the stale record']);
    now += 60_000;
    expect((await pass(a, [late])).opened).to.deep.equal(['sealed from the stale record']);
  });

  it('rolls over at most once per PREKEY_REPUBLISH_MIN_MS however fast the one-time prekeys are drained, and bounds what it keeps', async () => {
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    let bundle = await published(a);
    let publications = 0;
    // An attacker with the address seals to every listed one-time prekey before each pass (every 5 minutes, 3 hours).
    for (let minute = 0; minute < 180; minute += 5) {
      now += 5 * 60_000;
      const drained = bundle.otks.map((k, i) => item(bundle.spk, k, `drain ${minute}.${i}`));
      const r = await pass(a, drained);
      expect(r.opened.every((t) => t.startsWith('drain'))).to.equal(true);
      if (r.due) {
        bundle = await published(a);
        publications++;
      }
    }
    expect(publications).to.be.within(2, 3);
    expect(a.retiredCount()).to.be.at.most(3 * MAX_ONE_TIME_PREKEYS);
    // A day of it: the retired table stays within its bound, and every drained item still opened.
    for (let hour = 0; hour < 30; hour++) {
      now += PREKEY_REPUBLISH_MIN_MS;
      const r = await pass(
        a,
        bundle.otks.map((k, i) => item(bundle.spk, k, `drain h${hour}.${i}`)),
      );
      expect(r.opened.every((t) => t.startsWith('drain'))).to.equal(true);
      if (r.due) bundle = await published(a);
      expect(a.retiredCount()).to.be.at.most(MAX_RETIRED_ONE_TIME_PREKEYS);
    }
  });

  it('rotates the signed prekey weekly and deletes the replaced one after its grace', async () => {
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    const first = (await published(a)).spk;
    const sealed = item(first, undefined, 'to the first signed prekey');
    const lookup = { prekeys: (id: Uint8Array, kind: 'signed' | 'one-time') => a.lookup(id, kind) };
    now += PREKEY_ROTATE_MS;
    expect(await a.endPass()).to.equal(true);
    const second = (await published(a)).spk;
    expect(Buffer.from(second).equals(Buffer.from(first))).to.equal(false);
    // In its grace, the replaced prekey still opens what was sealed to it.
    expect(openMailboxItem(owner, sealed.slot, sealed.bytes, lookup).version).to.equal(3);
    now += PREKEY_GRACE_MS;
    await a.endPass();
    expect(codeOf(() => openMailboxItem(owner, sealed.slot, sealed.bytes, lookup))).to.equal('ERR_MESSAGE_AUTH');
    expect(codeOf(() => openMailboxItem(owner, sealed.slot, sealed.bytes))).to.equal('ERR_MESSAGE_AUTH');
  });

  it('keeps a replaced signed prekey while a stale record of the publication window may list it, and the items sealed to it live', async () => {
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    // The record for the last epoch of the window, published now (a holder keeps it).
    const records = a.records();
    const lastEpoch = mailboxEpochAt(now) + PREKEY_PUBLISH_EPOCHS - 1;
    const stale = openPrekeyRecord(owner.publicKey, lastEpoch, records[PREKEY_PUBLISH_EPOCHS - 1]!.bytes).bundle;
    // The signed prekey is replaced a week later, and the records published again.
    now += PREKEY_ROTATE_MS;
    expect(await a.endPass()).to.equal(true);
    a.records();
    // On the last day of the window a sender reads the stale record and seals to its signed prekey (the record is
    // over a day old: no one-time prekey), with the longest time to live.
    now = (lastEpoch + 1) * DAY - 60_000;
    const s = sealMailboxItem({
      sender,
      recipient: owner.publicKey,
      inbox: inboxKey(owner.publicKey, lastEpoch),
      index: 0,
      exp: now + MAX_MAILBOX_TTL_MS,
      t: now,
      n: 0,
      data: enc('late, to the replaced signed prekey'),
      prekeys: { spk: stale.spk },
    });
    const late = { slot: s.slot, bytes: solveMailboxItem(s.item, new Uint8Array(16))! };
    // The owner collects it just before it expires.
    now += MAX_MAILBOX_TTL_MS - 60_000;
    await a.endPass(); // the passes in between (each expires what is due)
    expect((await pass(a, [late])).opened).to.deep.equal(['late, to the replaced signed prekey']);
  });

  it('publishes editions that say only the 12-hour window: two owners online at different times of it look alike', async () => {
    // Regression (issue 16): the edition was the publication time in ms and the bundle's "c" the signed prekey's
    // creation time, so anyone with the address read when the owner was online. Now both say only the window: the
    // first publication (no record yet) for the current one, later ones for the next (served from its start).
    const WINDOW = PREKEY_WINDOW_MS;
    // A publication every holder accepts: the records it stored.
    const made = async (o: PrekeyOwner): Promise<Array<{ rk: Uint8Array; bytes: Uint8Array }>> => {
      const out: Array<{ rk: Uint8Array; bytes: Uint8Array }> = [];
      const holders = { storeAll: (_k: string, rk: Uint8Array, bytes: Uint8Array) => (out.push({ rk, bytes }), Promise.resolve(['ok'])) };
      await o.publish(holders as unknown as ContentClient);
      return out;
    };
    const views: number[][] = [];
    for (const offset of [60_000, 7 * 3600_000 + 123_456]) {
      now = NOW + offset; // NOW starts a window (12:00 UTC)
      const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
      await a.load();
      const first = await made(a);
      now += 3600_000; // online again an hour later, in the same window
      const second = await made(a);
      now += 60_000;
      const third = await made(a);
      const read = (r: typeof first, ed: number) => openPrekeyRecord(owner.publicKey, mailboxEpochAt(ed), r[0]!.bytes);
      const x = read(first, NOW);
      const y = read(second, NOW + WINDOW);
      const z = read(third, NOW + WINDOW);
      // What a reader sees: a window's start + an offset of a few seconds at most, the same windows whenever in the
      // window the owner ran; a later edition for the same window is the last + 1; "c" is the window's start.
      expect(x.edition - NOW).to.be.within(0, 2047);
      expect(y.edition - (NOW + WINDOW)).to.be.within(0, 2047);
      expect(z.edition).to.equal(y.edition + 1);
      expect([x.bundle.created, y.bundle.created, x.bundle.version]).to.deep.equal([NOW, NOW, 2]);
      views.push([Math.floor(x.edition / WINDOW), Math.floor(y.edition / WINDOW), x.bundle.created, y.bundle.created]);
    }
    expect(views[0]).to.deep.equal(views[1]);
    // An owner whose records cover the current epoch publishes for the next window, from that window's start,
    // whenever in the current one it came back.
    now = NOW + WINDOW + 5 * 3600_000;
    const b = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await b.load();
    await made(b);
    now = NOW + 2 * WINDOW + 9 * 3600_000;
    expect(await b.endPass()).to.equal(true); // no edition for the next window yet: the records are due
    const ed = NOW + 3 * WINDOW;
    const later = openPrekeyRecord(owner.publicKey, mailboxEpochAt(ed), (await made(b))[0]!.bytes);
    expect(later.edition - ed).to.be.within(0, 2047);
    expect(await b.endPass()).to.equal(false); // once a window
  });

  it('a publication no holder accepted covers nothing: the next is for the current window, not held back to the next', async () => {
    // Regression (review): the current epoch counted as covered by the edition made, not one a holder accepted, so
    // a new owner whose first publication failed made every retry for the next window, which holders hold back
    // until it starts: up to 12 hours in which senders found no record (ERR_PREKEYS_UNAVAILABLE).
    now = NOW + 3 * 3600_000;
    const o = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await o.load();
    let fail = true;
    const holders = {
      storeAll: () => (fail ? Promise.reject(new Error('unreachable')) : Promise.resolve(['ok'])),
    };
    expect(await o.publish(holders as unknown as ContentClient)).to.equal(0);
    now += 60_000;
    fail = false;
    expect(await o.endPass()).to.equal(true);
    expect(await o.publish(holders as unknown as ContentClient)).to.equal(PREKEY_PUBLISH_EPOCHS);
    expect(o.lastEdition() - NOW).to.be.within(0, PREKEY_WINDOW_MS - 1); // the current window (NOW starts it)
    // Accepted now: the next publication is for the next window.
    now += 3600_000;
    expect(await o.publish(holders as unknown as ContentClient)).to.equal(PREKEY_PUBLISH_EPOCHS);
    expect(o.lastEdition() - (NOW + PREKEY_WINDOW_MS)).to.be.within(0, 2047);
  });

  it('a failed publication still covers nothing after a restart; one whose later records alone were refused covers the epochs before them', async () => {
    // Regressions (review): the state is saved before the STOREs, and the edition saved was read back as accepted,
    // so a restart after a failed first publication sent every retry to the next window (held back up to 12 h); and
    // a publication with one later epoch's record refused counted as covering nothing, so the owner published again
    // for the current window at every pass — editions a poller sees rise at each of the owner's passes.
    now = NOW + 3 * 3600_000;
    const storage = memoryGroupStorage();
    const a = new PrekeyOwner(owner, storage, clock);
    await a.load();
    const failing = { storeAll: () => Promise.reject(new Error('unreachable')) };
    expect(await a.publish(failing as unknown as ContentClient)).to.equal(0);
    now += 60_000;
    const b = new PrekeyOwner(owner, storage, clock); // a restart
    await b.load();
    let refuse: Uint8Array | null = null;
    const holders = {
      storeAll: (_k: string, rk: Uint8Array) => Promise.resolve(refuse && Buffer.from(rk).equals(Buffer.from(refuse)) ? (['refused'] as string[]) : ['ok']),
    };
    refuse = prekeyRecordKeys(owner.publicKey, mailboxEpochAt(now) + 3).rk;
    expect(await b.publish(holders as unknown as ContentClient)).to.equal(PREKEY_PUBLISH_EPOCHS - 1);
    expect(b.lastEdition() - NOW, 'after the restart: the current window').to.be.within(0, PREKEY_WINDOW_MS - 1);
    now += 3600_000;
    expect(await b.publish(holders as unknown as ContentClient)).to.equal(PREKEY_PUBLISH_EPOCHS - 1);
    expect(b.lastEdition() - (NOW + PREKEY_WINDOW_MS), 'the current epoch covered: the next window').to.be.within(0, 2047);
  });

  it('late in a window, publishes for the window after the next when the next is covered: holders hold it back', async () => {
    // Regression (issue 16): an edition for the next window made in its last RECORD_CLOCK_SKEW_MS is not one to come
    // at the holders (content.md §4): they served it at once, so a poller saw the owner run in those 10 minutes.
    const WINDOW = PREKEY_WINDOW_MS;
    let refuseFrom = Infinity; // holders refuse the records of this epoch and later
    const holders = {
      storeAll: (_k: string, rk: Uint8Array) => {
        const e = Array.from({ length: 16 }, (_, i) => mailboxEpochAt(NOW) + i).find((x) =>
          Buffer.from(prekeyRecordKeys(owner.publicKey, x).rk).equals(Buffer.from(rk)),
        );
        return Promise.resolve(e !== undefined && e >= refuseFrom ? ['refused'] : ['ok']);
      },
    };
    const at = async (t: number, o: PrekeyOwner): Promise<number> => {
      now = t;
      await o.publish(holders as unknown as ContentClient);
      return o.lastEdition();
    };
    // NOW starts a window; NOW + WINDOW starts the next epoch (windows at 00:00 and 12:00 UTC).
    expect(mailboxEpochAt(NOW + WINDOW)).to.equal(mailboxEpochAt(NOW) + 1);
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    expect((await at(NOW + 3600_000, a)) - NOW, 'first publication: the current window').to.be.within(0, 2047);
    const early = await at(NOW + WINDOW - PREKEY_LATE_MS - 60_000, a);
    expect(early - (NOW + WINDOW), 'before the last minutes: the next window').to.be.within(0, 2047);
    expect(editionToCome(early, now)).to.equal(true);
    const late = await at(NOW + WINDOW - RECORD_CLOCK_SKEW_MS + 60_000, a);
    expect(late - (NOW + 2 * WINDOW), 'in the last minutes: the window after the next').to.be.within(0, 2047);
    expect(editionToCome(late, now), 'held back by a holder, not served at once').to.equal(true);
    expect(await a.endPass(), 'an edition for the next window or later: nothing due').to.equal(false);
    now = NOW + WINDOW + 60_000;
    expect(await a.endPass(), 'in the next window: still nothing due').to.equal(false);
    // When the records accepted cover the current epoch alone, late in its last window the next window's edition is
    // made anyway (senders need a record in the next epoch), and shows.
    const b = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await b.load();
    refuseFrom = mailboxEpochAt(NOW) + 1;
    expect(await at(NOW + 3600_000, b)).to.be.within(NOW, NOW + 2047);
    refuseFrom = Infinity;
    expect((await at(NOW + WINDOW - RECORD_CLOCK_SKEW_MS + 60_000, b)) - (NOW + WINDOW)).to.be.within(0, 2047);
  });

  it('publishes no more for a window whose editions are used up, and again for the next; an edition in ms from before windows does not wait', async () => {
    const c = crypto();
    const signed = c.x25519Keypair();
    const key = c.hash(32, new TextEncoder().encode('allium-v1:prekey-store'), owner.secretKey.subarray(0, 32));
    const stored = async (ed: number): Promise<PrekeyOwner> => {
      // The owner's signed prekey is due for rotation (which makes the records due, but for the edition).
      const state = encodeCbor({ v: 2, ed, rl: 0, s: [{ sk: signed.secretKey, c: NOW - PREKEY_ROTATE_MS }], o: [], x: [] });
      const nonce = c.random(24);
      const storage = memoryGroupStorage();
      await storage.save('prekeys', Uint8Array.from([1, ...nonce, ...c.xaeadEncrypt(state, new TextEncoder().encode('allium-v1 prekey-store'), nonce, key)]));
      const o = new PrekeyOwner(owner, storage, clock);
      await o.load();
      return o;
    };
    now = NOW + 4 * 3600_000;
    // The last edition for the next window is its start + 4095: none is left for that window.
    const a = await stored(NOW + PREKEY_WINDOW_MS + 4095);
    expect(a.records()).to.deep.equal([]); // editions never go back
    expect(await a.endPass()).to.equal(false);
    now = NOW + PREKEY_WINDOW_MS + 60_000;
    expect(await a.endPass()).to.equal(true);
    const next = a.records();
    expect(next.length).to.equal(PREKEY_PUBLISH_EPOCHS);
    const ed = NOW + 2 * PREKEY_WINDOW_MS;
    const r = openPrekeyRecord(owner.publicKey, mailboxEpochAt(ed), next[0]!.bytes);
    expect(r.edition - ed).to.be.within(0, 2047);
    expect(r.bundle.created).to.equal(NOW); // the new signed prekey, made at NOW + 4 h: its window
    // The state of an owner before windows: its last edition a publication time in ms, late in the window. Its
    // records cover the epoch: the next edition is for the next window, at once.
    now = NOW + 4 * 3600_000;
    const b = await stored(NOW + 3 * 3600_000);
    const first = b.records();
    const e = NOW + PREKEY_WINDOW_MS;
    expect(openPrekeyRecord(owner.publicKey, mailboxEpochAt(e), first[0]!.bytes).edition - e).to.be.within(0, 2047);
  });

  it('reads a stored state of version 1 as one with nothing used or retired', async () => {
    const c = crypto();
    const signed = c.x25519Keypair();
    const otks = Array.from({ length: MAX_ONE_TIME_PREKEYS }, () => c.x25519Keypair());
    const state = encodeCbor({ v: 1, ed: NOW - 1, s: [{ sk: signed.secretKey, c: NOW - 1 }], o: otks.map((k) => k.secretKey) });
    const key = c.hash(32, new TextEncoder().encode('allium-v1:prekey-store'), owner.secretKey.subarray(0, 32));
    const nonce = c.random(24);
    const storage = memoryGroupStorage();
    await storage.save('prekeys', Uint8Array.from([1, ...nonce, ...c.xaeadEncrypt(state, new TextEncoder().encode('allium-v1 prekey-store'), nonce, key)]));
    const a = new PrekeyOwner(owner, storage, clock);
    await a.load();
    const bundle = await published(a);
    expect([hex(bundle.spk), bundle.otks.map(hex)]).to.deep.equal([hex(signed.publicKey), otks.map((k) => hex(k.publicKey))]);
    expect(a.retiredCount()).to.equal(0);
    const one = item(bundle.spk, bundle.otks[0], 'one');
    expect(await pass(a, [one])).to.deep.equal({ opened: ['one'], due: true });
  });

  it('refuses a stored state another identity sealed, rather than replacing it', async () => {
    const storage = memoryGroupStorage();
    await new PrekeyOwner(createIdentity(), storage, clock).load();
    const code = await new PrekeyOwner(owner, storage, clock).load().then(
      () => 'loaded',
      (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
    );
    expect(code).to.equal('ERR_MESSAGE_AUTH');
  });
});

describe('prekeys, the sender (specs/messaging.md §9.6)', () => {
  const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  const found = (edition: number): { edition: number; bundle: PrekeyBundle } => ({
    edition,
    bundle: { spk: key(1), created: edition, otks: [key(2), key(3)] },
  });

  it('seals to a one-time prekey only from a record it cannot tell is stale', () => {
    expect(choosePrekeys(found(NOW), NOW + 1000).opk).to.not.equal(undefined);
    // Older than one this sender has seen: a holder replays it; its one-time prekeys may be gone.
    expect(choosePrekeys(found(NOW), NOW + 1000, NOW + 1)).to.deep.equal({ spk: key(1) });
    // More than PREKEY_FRESH_MS old: the owner may have used them since.
    expect(choosePrekeys(found(NOW), NOW + PREKEY_FRESH_MS)).to.deep.equal({ spk: key(1) });
    expect(choosePrekeys({ edition: NOW, bundle: { spk: key(1), created: NOW, otks: [] } }, NOW)).to.deep.equal({ spk: key(1) });
  });

  it('knows a recipient published a record for the epochs its newest seen edition covers', async () => {
    const p = new PrekeyPublishers();
    const r = createIdentity().publicKey;
    expect(p.publishedFor(r, NOW)).to.equal(false);
    await p.seen(r, NOW);
    await p.seen(r, NOW - DAY); // an older edition changes nothing
    expect(p.newestEdition(r)).to.equal(NOW);
    expect(p.publishedFor(r, NOW)).to.equal(true);
    expect(p.publishedFor(r, NOW + (PREKEY_PUBLISH_EPOCHS - 1) * DAY)).to.equal(true);
    expect(p.publishedFor(r, NOW + PREKEY_PUBLISH_EPOCHS * DAY)).to.equal(false);
    expect(p.publishedFor(r, NOW - DAY)).to.equal(false);
  });

  it('keeps what it saw across a restart, sealed under the identity, bounded; a record that does not open is refused', async () => {
    const me = createIdentity();
    const storage = memoryGroupStorage();
    const r = createIdentity().publicKey;
    const first = new PrekeyPublishers(me, storage);
    await first.seen(r, NOW);
    // A restarted sender with the same storage still knows the recipient publishes prekeys.
    const second = new PrekeyPublishers(me, storage);
    expect(second.publishedFor(r, NOW)).to.equal(false); // not loaded yet
    await second.load();
    expect([second.newestEdition(r), second.publishedFor(r, NOW)]).to.deep.equal([NOW, true]);
    // Stored sealed: the recipient's key is not in the bytes, and another identity's memory does not open them.
    const stored = await storage.load();
    expect(stored.map(([name]) => name)).to.deep.equal(['prekey-publishers']);
    expect(Buffer.from(stored[0]![1]).indexOf(Buffer.from(r))).to.equal(-1);
    const code = await new PrekeyPublishers(createIdentity(), storage).load().then(
      () => 'loaded',
      (e: unknown) => (isAlliumError(e) ? e.code : String(e)),
    );
    expect(code).to.equal('ERR_MESSAGE_AUTH');
    // Bounded (MAX_PREKEY_PUBLISHERS; 4 here): the least recently seen go first, on disk as in memory, and a
    // stored record holding more than the bound is read down to it.
    const small = new PrekeyPublishers(me, storage, 4);
    await small.load();
    const others = Array.from({ length: 4 }, () => crypto().random(32));
    for (const k of others) await small.seen(k, NOW);
    expect(small.newestEdition(r)).to.equal(0);
    const third = new PrekeyPublishers(me, storage);
    await third.load();
    expect([third.newestEdition(r), ...others.map((k) => third.newestEdition(k))]).to.deep.equal([0, NOW, NOW, NOW, NOW]);
    expect(MAX_PREKEY_PUBLISHERS).to.equal(4096);
  });
});
