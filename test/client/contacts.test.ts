/** The contact book (specs/messaging.md §11.3): identity changes, verification, persistence, bounds. */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdentity, formatAddress } from '../../protocol/address.js';
import { CARD_CHECKSUM_LEN, decodeCard, formatCard, encodeCard } from '../../protocol/contact-card.js';
import { crypto } from '../../crypto/index.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { MIX_ADDRESS_BOX_VERSION, MIX_ADDRESS_KIND, openMixMessage, sealMixAddress, sealMixBox } from '../../protocol/mix-message.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { ContactBook, memoryContactStorage, type IdentityChange } from '../../client/messaging/contacts.js';
import { fileContactStorage } from '../../client/messaging/contact-file.js';

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect((e as { code?: string }).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('contact book', () => {
  let alice: Uint8Array;
  let mallory: Uint8Array;
  before(() => {
    alice = createIdentity().publicKey;
    mallory = createIdentity().publicKey;
  });

  it('adds from a card, keeps the same key quietly, and reports a changed key with the flag set and verification cleared', async () => {
    const book = new ContactBook(memoryContactStorage(), { now: () => 1000 });
    const changes: IdentityChange[] = [];
    book.on('contact:identity-changed', (c) => changes.push(c));
    const first = await book.add(formatCard(alice, 'Alice'));
    expect(first.change).to.equal('added');
    expect(first.contact).to.include({ name: 'Alice', address: formatAddress(alice), verified: false, changed: false });
    await book.markVerified('Alice');
    expect((await book.add(encodeCard(alice, 'Alice'))).change).to.equal('unchanged');
    expect(changes).to.have.length(0);

    const swapped = await book.add(formatCard(mallory, 'Alice'));
    expect(swapped.change).to.equal('identity-changed');
    expect(changes).to.have.length(1);
    expect(changes[0]!.wasVerified).to.equal(true);
    expect(changes[0]!.previousAddress).to.equal(formatAddress(alice));
    const now = (await book.get('Alice'))!;
    expect(now).to.include({ address: formatAddress(mallory), verified: false, changed: true, keyChangedAt: 1000 });
    expect(now.previous.map(toHex)).to.deep.equal([toHex(alice)]);
    expect((await book.byAddress(formatAddress(mallory)))?.name).to.equal('Alice');

    expect((await book.acceptChange('Alice')).changed).to.equal(false);
    expect((await book.markVerified('Alice')).verified).to.equal(true);
  });

  it('keeps the book across restarts in a file, and refuses a corrupted one instead of starting empty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'allium-contacts-'));
    try {
      const path = join(dir, 'sub', 'contacts.cbor');
      const one = new ContactBook(fileContactStorage(path));
      await one.add(formatAddress(alice), { name: 'Alice' });
      await one.markVerified('Alice');
      const two = new ContactBook(fileContactStorage(path));
      expect(await two.get('Alice')).to.include({ verified: true, changed: false, address: formatAddress(alice) });
      // A later change is still noticed after the restart.
      let warned = 0;
      two.on('contact:identity-changed', () => warned++);
      await two.add(formatAddress(mallory), { name: 'Alice' });
      expect(warned).to.equal(1);
      writeFileSync(path, Uint8Array.of(0xa1, 0x61));
      await rejects(new ContactBook(fileContactStorage(path)).list(), 'ERR_CBOR_MALFORMED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps a card's prekeys mark (§11.3): set by a card that says so, never cleared by one that does not, dropped with the key", async () => {
    const storage = memoryContactStorage();
    const book = new ContactBook(storage);
    expect((await book.add(formatCard(alice, 'Alice'))).contact.prekeys).to.equal(false);
    // A version 2 card of the same key sets it.
    expect((await book.add(formatCard(alice, 'Alice', { prekeys: true }))).contact.prekeys).to.equal(true);
    // An older card, a plain address or a card without the flag (as a downgrading adversary would hand over) keeps it.
    expect((await book.add(formatCard(alice, 'Alice'))).contact.prekeys).to.equal(true);
    expect((await book.add(formatAddress(alice), { name: 'Alice' })).contact.prekeys).to.equal(true);
    // Kept across a restart.
    expect((await new ContactBook(storage).get('Alice'))?.prekeys).to.equal(true);
    // A new key is a new identity: its own card decides.
    const changed = await book.add(formatCard(mallory, 'Alice'));
    expect([changed.change, changed.contact.prekeys]).to.deep.equal(['identity-changed', false]);
    const again = await book.add(formatCard(alice, 'Alice', { prekeys: true }));
    expect([again.change, again.contact.prekeys]).to.deep.equal(['identity-changed', true]);
  });

  it('a prekey record found for a contact sets the mark (§9.6, §11.3): for its current key only, kept across restarts', async () => {
    const storage = memoryContactStorage();
    const book = new ContactBook(storage);
    await book.add(formatAddress(alice), { name: 'Alice' });
    await book.add(formatAddress(mallory), { name: 'Mallory' });
    expect(await book.markPrekeys(alice)).to.equal(true);
    expect(await book.markPrekeys(alice)).to.equal(false); // already set: nothing written
    expect((await new ContactBook(storage).get('Alice'))?.prekeys).to.equal(true);
    expect((await book.get('Mallory'))?.prekeys).to.equal(false);
    // A key no contact has now (a stranger's, or one replaced): nothing marked.
    expect(await book.markPrekeys(createIdentity().publicKey)).to.equal(false);
    await book.add(formatAddress(createIdentity().publicKey), { name: 'Mallory' });
    expect(await book.markPrekeys(mallory)).to.equal(false);
    expect((await book.get('Mallory'))?.prekeys).to.equal(false);
  });

  it('reads a book of version 1 (before the prekeys mark)', async () => {
    const v1 = encodeCbor({ v: 1, contacts: [{ n: 'Alice', k: alice, vf: true, ch: false, t: 5, p: [] }] });
    const storage = memoryContactStorage();
    await storage.save(v1);
    const book = new ContactBook(storage);
    expect(await book.get('Alice')).to.include({ verified: true, prekeys: false, address: formatAddress(alice) });
    // A version 1 book with the mark is not a book any writer made.
    await storage.save(encodeCbor({ v: 1, contacts: [{ n: 'Alice', k: alice, vf: true, ch: false, t: 5, p: [], pk: 1 }] }));
    await rejects(new ContactBook(storage).list(), 'ERR_SCHEMA');
  });

  it('refuses a corrupted card, a contact without a name, and more than maxContacts', async () => {
    const book = new ContactBook(memoryContactStorage(), { maxContacts: 2 });
    const card = formatCard(alice, 'Alice');
    await rejects(book.add(card.slice(0, -8)), 'ERR_ADDRESS_CHECKSUM');
    await rejects(book.add(formatAddress(alice)), 'ERR_ADDRESS_FORMAT'); // no name given and none on the card
    await book.add(formatAddress(alice), { name: 'a' });
    await book.add(formatAddress(mallory), { name: 'b' });
    const e = await book.add(formatAddress(createIdentity().publicKey), { name: 'c' }).catch((x: unknown) => x);
    expect(e).to.include({ code: 'ERR_LIMIT', limit: 'MAX_CONTACTS' });
    expect(await book.list()).to.have.length(2);
    await rejects(book.markVerified('nobody'), 'ERR_NOT_FOUND');
  });

  it('keeps a version 3 card’s mix address across a restart (book version 3), and a card of another key clears it', async () => {
    const storage = memoryContactStorage();
    const book = new ContactBook(storage);
    const mix = { gateway: createIdentity().publicKey, inbox: new Uint8Array(32).fill(1), key: new Uint8Array(32).fill(2) };
    await book.add(formatCard(alice, 'Alice'));
    expect((await book.get('Alice'))!.mix).to.equal(undefined);
    expect((await book.add(formatCard(alice, 'Alice', { mix }))).change).to.equal('unchanged');
    await book.add(encodeCard(alice, 'Alice')); // a card without one leaves it
    const again = new ContactBook(storage);
    const c = (await again.get('Alice'))!;
    expect(toHex(c.mix!.gateway)).to.equal(toHex(mix.gateway));
    expect(toHex(c.mix!.inbox)).to.equal(toHex(mix.inbox));
    expect(toHex(c.mix!.key)).to.equal(toHex(mix.key));
    expect((await again.add(formatCard(mallory, 'Alice'))).change).to.equal('identity-changed');
    expect((await again.get('Alice'))!.mix).to.equal(undefined);
  });

  it('a mix key of small order (no box can be sealed to it) is refused in a card, written or read, and in an address box (mix.md §8)', () => {
    const gateway = createIdentity().publicKey;
    const inbox = new Uint8Array(32).fill(1);
    const good = new Uint8Array(32).fill(2);
    // 0 and 1 are points of small order; so is 0xe0eb7a7c… (order 8), which libsodium's blocklist names.
    const smallOrder = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];
    for (const key of smallOrder) {
      expect(() => encodeCard(alice, 'Alice', { mix: { gateway, inbox, key } }), 'written')
        .to.throw()
        .with.property('code', 'ERR_KEY_FORMAT');
      // The same card made by hand with a correct checksum, as a hostile writer would.
      const body = encodeCard(alice, 'Alice', { mix: { gateway, inbox, key: good } }).slice(0, -CARD_CHECKSUM_LEN);
      body.set(key, body.length - 32);
      const card = concatBytes(body, crypto().hash(32, body, utf8('allium-v1:contact-card:checksum')).subarray(0, CARD_CHECKSUM_LEN));
      expect(() => decodeCard(card), 'read')
        .to.throw()
        .with.property('code', 'ERR_ADDRESS_FORMAT');
      const me = createIdentity();
      const them = createIdentity();
      expect(() => sealMixAddress(me, them.publicKey, new Uint8Array(16), { gateway, inbox, key }, 1))
        .to.throw()
        .with.property('code', 'ERR_KEY_FORMAT');
      const box = sealMixBox(
        MIX_ADDRESS_KIND,
        me,
        them.publicKey,
        new Uint8Array(16),
        concatBytes(Uint8Array.of(MIX_ADDRESS_BOX_VERSION), new Uint8Array(8), gateway, inbox, key),
      );
      expect(() => openMixMessage(them, box), 'address box')
        .to.throw()
        .with.property('code', 'ERR_MESSAGE_AUTH');
    }
    expect(decodeCard(encodeCard(alice, 'Alice', { mix: { gateway, inbox, key: good } })).mix!.key).to.deep.equal(good);
  });

  it('keeps the highest address sequence applied across a restart (book version 4): an older address box sets nothing back (mix.md §8.6)', async () => {
    const storage = memoryContactStorage();
    const book = new ContactBook(storage);
    const at = (fill: number) => ({ gateway: createIdentity().publicKey, inbox: new Uint8Array(32).fill(fill), key: new Uint8Array(32).fill(2) });
    const [first, second, older] = [at(1), at(3), at(4)];
    await book.add(formatCard(alice, 'Alice', { mix: first }));
    expect(await book.setMix(mallory, second, 5)).to.equal(false);
    expect(await book.setMix(alice, second, 2_000)).to.equal('applied');
    const again = new ContactBook(storage);
    expect(await again.setMix(alice, older, 1_000)).to.equal('older');
    expect(await again.setMix(alice, older, 2_000)).to.equal('older');
    const c = (await again.get('Alice'))!;
    expect([toHex(c.mix!.inbox), c.mixSeq]).to.deep.equal([toHex(second.inbox), 2_000]);
    // A card of the same key sets the address and leaves the sequence; a card of another key clears both.
    await again.add(formatCard(alice, 'Alice', { mix: first }));
    expect([toHex((await again.get('Alice'))!.mix!.inbox), (await again.get('Alice'))!.mixSeq]).to.deep.equal([toHex(first.inbox), 2_000]);
    await again.add(formatCard(mallory, 'Alice'));
    expect((await again.get('Alice'))!.mixSeq).to.equal(undefined);
    expect(await again.setMix(mallory, older, 1)).to.equal('applied');
  });

  it('an address box repeating the address held raises the sequence without rewriting the book; a copy, another older address and a sequence too far ahead change nothing (mix.md §8.6)', async () => {
    const inner = memoryContactStorage();
    let saves = 0;
    const storage = {
      load: () => inner.load(),
      save: (b: Uint8Array) => {
        saves++;
        return inner.save(b);
      },
    };
    const now = 10_000_000;
    const book = new ContactBook(storage, { now: () => now });
    const at = (fill: number) => ({ gateway: createIdentity().publicKey, inbox: new Uint8Array(32).fill(fill), key: new Uint8Array(32).fill(2) });
    const [first, second] = [at(1), at(3)];
    await book.add(formatCard(alice, 'Alice', { mix: first }));
    expect(await book.setMix(alice, second, 2_000)).to.equal('applied');
    expect(saves).to.equal(2);
    // The address held, a newer sequence (a contact repeating its box): raised in memory, no write.
    expect(await book.setMix(alice, second, 3_000)).to.equal('unchanged');
    expect(saves, 'no rewrite of the book').to.equal(2);
    expect((await book.get('Alice'))!.mixSeq).to.equal(3_000);
    expect(await book.setMix(alice, second, 2_500)).to.equal('copy');
    expect(await book.setMix(alice, first, 2_500)).to.equal('older');
    // More than MIX_SEQ_AHEAD (a day) past our clock: refused; up to it, applied.
    expect(await book.setMix(alice, first, now + 86_400_001)).to.equal('ahead');
    expect(saves).to.equal(2);
    expect(await book.setMix(alice, first, now + 86_400_000)).to.equal('applied');
    expect(saves).to.equal(3);
    const c = (await new ContactBook(storage).get('Alice'))!;
    expect([toHex(c.mix!.inbox), c.mixSeq]).to.deep.equal([toHex(first.inbox), now + 86_400_000]);
  });
});
