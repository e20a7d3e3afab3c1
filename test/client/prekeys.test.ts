/**
 * The prekey owner (client/prekeys.ts, specs/messaging.md §9.6) with an injected clock and an in-memory storage:
 * one-time prekeys that opened an item are deleted at the end of the pass and replaced, the signed prekey rotates
 * weekly and the replaced one goes after its grace, everything survives a restart, and an item sealed to a deleted
 * prekey no longer opens, even with the identity key.
 */
import { expect } from 'chai';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import { PREKEY_GRACE_MS, PREKEY_PUBLISH_EPOCHS, PREKEY_ROTATE_MS, PrekeyOwner } from '../../client/prekeys.js';
import { createIdentity } from '../../protocol/address.js';
import { isAlliumError } from '../../protocol/errors.js';
import { inboxKey, mailboxEpochAt, openMailboxItem, sealMailboxItem, solveMailboxItem } from '../../protocol/mailbox.js';
import { MAX_ONE_TIME_PREKEYS, openPrekeyRecord, prekeyRecordKeys } from '../../protocol/prekeys.js';

const NOW = Date.UTC(2026, 11, 6, 12);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

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

  /** The bundle a sender reads from the owner's record for the current epoch. */
  const published = (o: PrekeyOwner) => {
    const records = o.records();
    expect(records.length).to.equal(PREKEY_PUBLISH_EPOCHS);
    const epoch = mailboxEpochAt(now);
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

  it('deletes a one-time prekey at the end of the pass that opened an item, replenishes, and keeps it across a restart', async () => {
    const storage = memoryGroupStorage();
    const a = new PrekeyOwner(owner, storage, clock);
    await a.load();
    const bundle = published(a);
    expect(bundle.otks.length).to.equal(MAX_ONE_TIME_PREKEYS);
    const opk = bundle.otks[3]!;
    const one = item(bundle.spk, opk, 'one');
    const two = item(bundle.spk, opk, 'two'); // another sender picked the same one-time prekey
    const lookup = { prekeys: (id: Uint8Array, kind: 'signed' | 'one-time') => a.lookup(id, kind) };
    const o = openMailboxItem(owner, one.slot, one.bytes, lookup);
    a.opened(o.prekeys!.opk!);
    // Both items of one pass open; the secret goes at the end of the pass.
    expect(new TextDecoder().decode(openMailboxItem(owner, two.slot, two.bytes, lookup).data)).to.equal('two');
    expect(await a.endPass()).to.equal(true);
    expect(a.holdsOneTime(opk)).to.equal(false);
    expect(codeOf(() => openMailboxItem(owner, one.slot, one.bytes, lookup))).to.equal('ERR_MESSAGE_AUTH');
    expect(codeOf(() => openMailboxItem(owner, one.slot, one.bytes))).to.equal('ERR_MESSAGE_AUTH');
    // Replenished: a full batch again, without the used one; a pass that used none publishes nothing new.
    const next = published(a);
    expect(next.otks.length).to.equal(MAX_ONE_TIME_PREKEYS);
    expect(next.otks.some((k) => Buffer.from(k).equals(Buffer.from(opk)))).to.equal(false);
    expect(await a.endPass()).to.equal(false);
    // A restarted owner with the same storage has the same keys (and not the deleted one).
    const b = new PrekeyOwner(owner, storage, clock);
    await b.load();
    expect(published(b).otks.map((k) => Buffer.from(k).toString('hex'))).to.deep.equal(next.otks.map((k) => Buffer.from(k).toString('hex')));
    expect(codeOf(() => openMailboxItem(owner, one.slot, one.bytes, { prekeys: (id, kind) => b.lookup(id, kind) }))).to.equal('ERR_MESSAGE_AUTH');
    // Junk naming our ids deletes nothing: only items that opened count.
    b.opened(new Uint8Array(8));
    expect(await b.endPass()).to.equal(false);
  });

  it('rotates the signed prekey weekly and deletes the replaced one after its grace', async () => {
    const a = new PrekeyOwner(owner, memoryGroupStorage(), clock);
    await a.load();
    const first = published(a).spk;
    const sealed = item(first, undefined, 'to the first signed prekey');
    const lookup = { prekeys: (id: Uint8Array, kind: 'signed' | 'one-time') => a.lookup(id, kind) };
    now += PREKEY_ROTATE_MS;
    expect(await a.endPass()).to.equal(true);
    const second = published(a).spk;
    expect(Buffer.from(second).equals(Buffer.from(first))).to.equal(false);
    // In its grace, the replaced prekey still opens what was sealed to it.
    expect(openMailboxItem(owner, sealed.slot, sealed.bytes, lookup).version).to.equal(3);
    now += PREKEY_GRACE_MS;
    await a.endPass();
    expect(codeOf(() => openMailboxItem(owner, sealed.slot, sealed.bytes, lookup))).to.equal('ERR_MESSAGE_AUTH');
    expect(codeOf(() => openMailboxItem(owner, sealed.slot, sealed.bytes))).to.equal('ERR_MESSAGE_AUTH');
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
