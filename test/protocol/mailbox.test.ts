/**
 * Offline mailbox items (specs/messaging.md §9): locators differ per address, epoch and slot; an item opens only
 * for its recipient, in its slot, unaltered, with the sender's signature; deletions match only their item; relays'
 * checks refuse items outside the time bounds; sizes reveal only a bucket; decoding is total.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { ByteWriter, concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { AlliumError } from '../../protocol/errors.js';
import { pad } from '../../protocol/padding.js';
import {
  decodeMailboxDeletion,
  decodeMailboxItem,
  deletionCheck,
  encodeMailboxDeletion,
  inboxKey,
  mailboxEpochAt,
  MAILBOX_CT_LENS,
  MAILBOX_EPOCH_SECONDS,
  MAX_MAILBOX_ITEM_BYTES,
  MAX_MAILBOX_MESSAGE_BYTES,
  MAX_MAILBOX_SLOTS,
  MAX_MAILBOX_TTL_MS,
  openMailboxItem,
  encodeMailboxItem,
  mailboxEffort,
  mailboxPowBinding,
  MAILBOX_V1_UNTIL_MS,
  sealMailboxItem,
  sealMailboxItemV1,
  slotLocator,
  solveMailboxItem,
  verifyMailboxStore,
} from '../../protocol/mailbox.js';
import { MAX_POW_EFFORT, solvePow } from '../../protocol/intro-pow.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { total } from '../helpers/total.js';
import { expectCode } from '../helpers/vectors.js';

const NOW = 1_750_000_000_000;
const HOUR = 3600_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const OPEN_CODES = [
  'ERR_CBOR_MALFORMED',
  'ERR_CBOR_NONCANONICAL',
  'ERR_CBOR_TOO_LARGE',
  'ERR_CBOR_DEPTH',
  'ERR_SCHEMA',
  'ERR_BAD_LENGTH',
  'ERR_MESSAGE_AUTH',
  'ERR_PADDING',
  'ERR_KEY_FORMAT',
  'ERR_DESCRIPTOR_FUTURE',
];
const STORE_CODES = [
  'ERR_CBOR_MALFORMED',
  'ERR_CBOR_NONCANONICAL',
  'ERR_CBOR_TOO_LARGE',
  'ERR_CBOR_DEPTH',
  'ERR_SCHEMA',
  'ERR_BAD_LENGTH',
  'ERR_LIMIT',
  'ERR_MAILBOX_POW',
];

describeEachBinding('protocol/mailbox', () => {
  let alice: Identity;
  let bob: Identity;
  let slot: Uint8Array;
  before(() => {
    alice = createIdentity();
    bob = createIdentity();
    slot = slotLocator(inboxKey(alice.publicKey, mailboxEpochAt(NOW)), 0);
  });

  const seal = (data = enc('hello while you were away'), over: Partial<Parameters<typeof sealMailboxItemV1>[0]> = {}) =>
    sealMailboxItemV1({ sender: bob, recipient: alice.publicKey, slot, exp: NOW + HOUR, t: NOW, n: 7, data, ...over });

  it('derives locators per address, epoch and slot; the text address and the key agree', () => {
    const e = mailboxEpochAt(NOW);
    expect(e).to.equal(Math.floor(NOW / 1000 / MAILBOX_EPOCH_SECONDS));
    const ib = inboxKey(alice.publicKey, e);
    expect(toHex(inboxKey(formatAddress(alice.publicKey), e))).to.equal(toHex(ib));
    const keys = new Set<string>();
    for (const k of [ib, inboxKey(alice.publicKey, e + 1), inboxKey(bob.publicKey, e)]) keys.add(toHex(k));
    for (let i = 0; i < 50; i++) keys.add(toHex(slotLocator(ib, i)));
    expect(keys.size).to.equal(53);
    expect(toHex(slotLocator(ib, 3))).to.equal(toHex(slotLocator(ib, 3)));
    expect(() => slotLocator(ib, MAX_MAILBOX_SLOTS)).to.throw(AlliumError);
    expect(() => slotLocator(ib, -1)).to.throw(AlliumError);
    expectCode(() => inboxKey(new Uint8Array(32), e), 'ERR_KEY_FORMAT');
  });

  it('round trips: the recipient learns the authenticated sender, time, counter, id and data; the token deletes it', () => {
    const s = seal();
    const o = openMailboxItem(alice, slot, s.bytes, { now: NOW });
    expect(toHex(o.from)).to.equal(toHex(bob.publicKey));
    expect(new TextDecoder().decode(o.data)).to.equal('hello while you were away');
    expect([o.t, o.n, o.exp]).to.deep.equal([NOW, 7, NOW + HOUR]);
    expect(toHex(o.id)).to.equal(toHex(s.id));
    expect(o.version).to.equal(1);
    expect(toHex(o.token!)).to.equal(toHex(s.token));
    const env = decodeMailboxItem(s.bytes);
    expect(toHex(deletionCheck(o.token!))).to.equal(toHex(env.v === 1 ? env.dt : new Uint8Array(0)));
    expect(toHex(decodeMailboxDeletion(encodeMailboxDeletion(o.token!)))).to.equal(toHex(o.token!));
    // a given id is kept (copies of one message in several slots share it)
    expect(toHex(seal(enc('x'), { id: s.id }).id)).to.equal(toHex(s.id));
  });

  it('a wrong key cannot decrypt: another identity, or the sender itself', () => {
    const s = seal();
    expectCode(() => openMailboxItem(createIdentity(), slot, s.bytes), 'ERR_MESSAGE_AUTH');
    expectCode(() => openMailboxItem(bob, slot, s.bytes), 'ERR_MESSAGE_AUTH');
  });

  it('refuses an item moved to another slot or inbox, or with its expiry or deletion check changed', () => {
    const s = seal();
    const ib = inboxKey(alice.publicKey, mailboxEpochAt(NOW));
    expectCode(() => openMailboxItem(alice, slotLocator(ib, 1), s.bytes), 'ERR_MESSAGE_AUTH');
    expectCode(() => openMailboxItem(alice, slotLocator(inboxKey(alice.publicKey, mailboxEpochAt(NOW) + 1), 0), s.bytes), 'ERR_MESSAGE_AUTH');
    const m = decodeCbor(s.bytes, MAX_MAILBOX_ITEM_BYTES) as Record<string, unknown>;
    expectCode(() => openMailboxItem(alice, slot, encodeCbor({ ...m, exp: NOW + 2 * HOUR })), 'ERR_MESSAGE_AUTH');
    expectCode(() => openMailboxItem(alice, slot, encodeCbor({ ...m, dt: crypto().random(32) })), 'ERR_MESSAGE_AUTH');
    expectCode(() => openMailboxItem(alice, slot, encodeCbor({ ...m, e: crypto().x25519Keypair().publicKey })), 'ERR_MESSAGE_AUTH');
    expectCode(() => openMailboxItem(alice, slot, encodeCbor({ ...m, e: new Uint8Array(32) })), 'ERR_MESSAGE_AUTH');
  });

  it('refuses every single-byte change of a stored item', () => {
    const s = seal();
    for (let i = 0; i < s.bytes.length; i++) {
      const b = Uint8Array.from(s.bytes);
      b[i]! ^= 0x01;
      let thrown: unknown = null;
      try {
        openMailboxItem(alice, slot, b);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `byte ${i}`).to.be.instanceOf(AlliumError);
    }
  });

  it("refuses a message whose MAC is not the named sender's", () => {
    // An impostor naming bob as the sender, with its own key: the item opens but the MAC does not verify.
    const impostor = createIdentity();
    const forged = sealMailboxItemV1({
      sender: { publicKey: bob.publicKey, secretKey: impostor.secretKey },
      recipient: alice.publicKey,
      slot,
      exp: NOW + HOUR,
      t: NOW,
      n: 0,
      data: enc('I am bob'),
    });
    expectCode(() => openMailboxItem(alice, slot, forged.bytes), 'ERR_MESSAGE_AUTH');
  });

  it('is deniable: the recipient can make an item that opens as from the sender (specs/messaging.md §9.2)', () => {
    // What proves bob wrote an item to alice is a MAC under a key alice can compute too, so an item in alice's hands
    // proves nothing to anyone else. Alice, with her own secret and bob's public key only, forges one.
    const c = crypto();
    const ikb = c.edPublicToX25519(alice.publicKey);
    const eph = c.x25519Keypair(c.random(32));
    const ss = c.x25519(eph.secretKey, ikb);
    const sd = c.x25519(c.edSecretToX25519(alice.secretKey), c.edPublicToX25519(bob.publicKey)); // = X25519(ika, IKB)
    const ika = c.edPublicToX25519(bob.publicKey);
    const mk = c.hash(32, concatBytes(ss, sd, eph.publicKey, ika, ikb), utf8('allium-v1:mailbox:mac'));
    const exp = NOW + HOUR;
    const body = { v: 2, from: bob.publicKey, t: NOW, n: 0, id: c.random(16), d: enc('bob never wrote this') };
    const u64 = (n: number): Uint8Array => new ByteWriter(8).u64(BigInt(n)).done();
    const mac = c.hash(32, concatBytes(utf8('allium-v1 mailbox'), slot, u64(exp), alice.publicKey, encodeCbor(body)), mk);
    const x = concatBytes(ss, eph.publicKey, ikb);
    const key = c.hash(32, x, utf8('allium-v1:mailbox:key'));
    const dt = deletionCheck(c.hash(32, x, utf8('allium-v1:mailbox:delete')));
    const ad = concatBytes(utf8('allium-v1 mailbox'), slot, u64(exp), eph.publicKey, dt);
    const ct = c.aeadEncrypt(pad(encodeCbor({ ...body, mac }), 16), ad, new Uint8Array(12), key);
    const forged = encodeCbor({ v: 1, exp, e: eph.publicKey, dt, ct });
    const o = openMailboxItem(alice, slot, forged);
    expect([toHex(o.from), dec(o.data)]).to.deep.equal([toHex(bob.publicKey), 'bob never wrote this']);
  });

  it('refuses messages dated further ahead than the clock skew', () => {
    const s = seal(enc('from the future'), { t: NOW + HOUR });
    expectCode(() => openMailboxItem(alice, slot, s.bytes, { now: NOW }), 'ERR_DESCRIPTOR_FUTURE');
    expect(openMailboxItem(alice, slot, s.bytes).t).to.equal(NOW + HOUR);
  });

  it('pads to buckets: the size reveals only a bucket, the largest message fits, a larger one does not', () => {
    const sizes = new Set<number>();
    for (const n of [0, 1, 100, 500]) sizes.add(seal(new Uint8Array(n)).bytes.length);
    expect(sizes.size).to.equal(1);
    for (const n of [0, 600, 1500, 5000, 12_000, MAX_MAILBOX_MESSAGE_BYTES]) {
      const s = seal(new Uint8Array(n).fill(1));
      expect(MAILBOX_CT_LENS).to.include(decodeMailboxItem(s.bytes).ct.length);
      expect(s.bytes.length).to.be.at.most(MAX_MAILBOX_ITEM_BYTES);
      expect(openMailboxItem(alice, slot, s.bytes).data.length).to.equal(n);
    }
    expectCode(() => seal(new Uint8Array(MAX_MAILBOX_MESSAGE_BYTES + 1)), 'ERR_LIMIT');
  });

  it('relays accept items within the time bounds, and refuse the rest (a deletion too: specs/messaging.md §9.3)', () => {
    const s = seal();
    expect(verifyMailboxStore(s.bytes, NOW, slot).exp).to.equal(decodeMailboxItem(s.bytes).exp);
    expectCode(() => verifyMailboxStore(encodeMailboxDeletion(s.token), NOW, slot), 'ERR_SCHEMA');
    expectCode(() => verifyMailboxStore(seal(undefined, { exp: NOW }).bytes, NOW, slot), 'ERR_LIMIT');
    expectCode(() => verifyMailboxStore(seal(undefined, { exp: NOW + MAX_MAILBOX_TTL_MS + 3600_000 }).bytes, NOW, slot), 'ERR_LIMIT');
    expect(verifyMailboxStore(seal(undefined, { exp: NOW + MAX_MAILBOX_TTL_MS }).bytes, NOW, slot).exp).to.equal(NOW + MAX_MAILBOX_TTL_MS);
    const m = decodeCbor(seal().bytes, MAX_MAILBOX_ITEM_BYTES) as Record<string, unknown>;
    expectCode(() => verifyMailboxStore(encodeCbor({ ...m, ct: crypto().random(1000) }), NOW, slot), 'ERR_BAD_LENGTH');
    expectCode(() => verifyMailboxStore(encodeCbor({ ...m, x: 1 }), NOW, slot), 'ERR_SCHEMA');
    expectCode(() => verifyMailboxStore(encodeCbor({ v: 1, del: crypto().random(31) }), NOW, slot), 'ERR_SCHEMA');
  });

  it('decoding is total over arbitrary and mutated input', () => {
    const good = seal().bytes;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => {
        total(() => openMailboxItem(alice, slot, b), OPEN_CODES);
        total(() => verifyMailboxStore(b, NOW, slot), STORE_CODES);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const b = Uint8Array.from(good);
        b[i]! ^= x;
        expect(total(() => openMailboxItem(alice, slot, b), OPEN_CODES).ok).to.equal(false);
        total(() => verifyMailboxStore(b, NOW, slot), STORE_CODES);
      }),
      { numRuns: 300 },
    );
  });

  describe('version 2: inbox, index and proof of work (specs/messaging.md §9.3)', () => {
    const seal2 = (index: number, over: { exp?: number; data?: Uint8Array } = {}) =>
      sealMailboxItem({
        sender: bob,
        recipient: alice.publicKey,
        inbox: inboxKey(alice.publicKey, mailboxEpochAt(NOW)),
        index,
        exp: over.exp ?? NOW + HOUR,
        t: NOW,
        n: 1,
        data: over.data ?? enc('hello, stranger'),
      });

    it('effort(i) is 256 for the first 32 slots and doubles every 32 up to MAX_POW_EFFORT', () => {
      expect([0, 31, 32, 63, 64, 383, 384, 1023].map(mailboxEffort)).to.deep.equal([256, 256, 512, 512, 1024, 1 << 19, MAX_POW_EFFORT, MAX_POW_EFFORT]);
      let all = 0;
      for (let i = 0; i < MAX_MAILBOX_SLOTS; i++) all += mailboxEffort(i);
      expect(all).to.be.greaterThan(7e8); // what a flooder pays for one inbox's day
      expectCode(() => mailboxEffort(MAX_MAILBOX_SLOTS), 'ERR_INTERNAL');
    });

    it('round trips: solved, stored by a relay, opened by the recipient in its slot', () => {
      const s = seal2(3);
      const bytes = solveMailboxItem(s.item, new Uint8Array(16))!;
      const env = decodeMailboxItem(bytes);
      expect(env.v).to.equal(2);
      expect(verifyMailboxStore(bytes, NOW, s.slot).exp).to.equal(NOW + HOUR);
      const o = openMailboxItem(alice, s.slot, bytes, { now: NOW });
      expect([dec(o.data), toHex(o.from), o.version, o.token]).to.deep.equal(['hello, stranger', toHex(bob.publicKey), 2, null]);
      expectCode(() => openMailboxItem(alice, slotLocator(inboxKey(alice.publicKey, mailboxEpochAt(NOW)), 4), bytes), 'ERR_MESSAGE_AUTH');
    });

    it('relays refuse another slot, too little effort, work that does not verify, and a changed ciphertext', () => {
      const s = seal2(40); // effort 512
      const bytes = solveMailboxItem(s.item, new Uint8Array(16))!;
      const env = decodeMailboxItem(bytes);
      if (env.v !== 2) throw new Error('version 2 expected');
      // Stored in slot 41 (or under any other key): ERR_MAILBOX_POW.
      expectCode(() => verifyMailboxStore(bytes, NOW, slotLocator(s.item.x, 41)), 'ERR_MAILBOX_POW');
      // Work for effort 256 (slot 0's price) in slot 40.
      const low = solvePow(s.slot, 256, mailboxPowBinding(s.item), new Uint8Array(16), 1 << 20)!;
      expectCode(() => verifyMailboxStore(encodeMailboxItem(s.item, low), NOW, s.slot), 'ERR_MAILBOX_POW');
      // A nonce that does not meet the effort it claims.
      let n = 0;
      let bad: Uint8Array | null = null;
      for (; bad === null; n++) {
        const w = { n: new ByteWriter(16).u64(0n).u64(BigInt(n)).done(), e: 512 };
        try {
          verifyMailboxStore(encodeMailboxItem(s.item, w), NOW, s.slot);
        } catch (e) {
          if ((e as AlliumError).code === 'ERR_MAILBOX_POW') bad = encodeMailboxItem(s.item, w);
        }
      }
      expectCode(() => verifyMailboxStore(bad!, NOW, s.slot), 'ERR_MAILBOX_POW');
      // The work binds the ciphertext and the expiry: changing either undoes it.
      const ct = Uint8Array.from(env.ct);
      ct[0]! ^= 1;
      expectCode(() => verifyMailboxStore(encodeMailboxItem({ ...s.item, ct }, env.w), NOW, s.slot), 'ERR_MAILBOX_POW');
      expectCode(() => verifyMailboxStore(encodeMailboxItem({ ...s.item, exp: NOW + 2 * HOUR }, env.w), NOW, s.slot), 'ERR_MAILBOX_POW');
      // The time bounds still hold.
      expectCode(() => verifyMailboxStore(solveMailboxItem(seal2(1, { exp: NOW }).item, new Uint8Array(16))!, NOW, slotLocator(s.item.x, 1)), 'ERR_LIMIT');
    });

    it('version 1 items are stored until MAILBOX_V1_UNTIL_MS (or while acceptV1), and refused after; readers open both', () => {
      const later = MAILBOX_V1_UNTIL_MS;
      const exp = later + HOUR;
      const v1 = sealMailboxItemV1({ sender: bob, recipient: alice.publicKey, slot, exp, t: NOW, n: 0, data: enc('old format') });
      expect(verifyMailboxStore(v1.bytes, later - 1, slot).exp).to.equal(exp);
      expectCode(() => verifyMailboxStore(v1.bytes, later, slot), 'ERR_MAILBOX_POW');
      expectCode(() => verifyMailboxStore(v1.bytes, later - 1, slot, { acceptV1: false }), 'ERR_MAILBOX_POW');
      expect(verifyMailboxStore(v1.bytes, later, slot, { acceptV1: true }).exp).to.equal(exp);
      expect(dec(openMailboxItem(alice, slot, v1.bytes).data)).to.equal('old format');
    });
  });
});
