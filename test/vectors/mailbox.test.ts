/** specs/vectors/mailbox.json against protocol/mailbox.ts and protocol/content-messages.ts. */
import { expect } from 'chai';
import { createIdentity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeStore, decodeStored, encodeStore, encodeStored } from '../../protocol/content-messages.js';
import {
  decodeMailboxDeletion,
  decodeMailboxItem,
  deletionCheck,
  encodeMailboxDeletion,
  inboxKey,
  pairInboxKey,
  pairSecret,
  MAILBOX_CT_LENS,
  MAILBOX_EPOCH_SECONDS,
  mailboxEpochAt,
  MAX_MAILBOX_ITEM_BYTES,
  MAX_MAILBOX_SLOTS,
  MAX_MAILBOX_TTL_MS,
  openMailboxItem,
  mailboxPowBinding,
  sealMailboxItem,
  sealMailboxItemV1,
  solveMailboxItem,
  slotLocator,
  verifyMailboxStore,
} from '../../protocol/mailbox.js';
import { createPrekeyRecord, openPrekeyRecord, prekeyId, prekeyRecordKeys } from '../../protocol/prekeys.js';
import { crypto } from '../../crypto/index.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { byteQueue, expectCode, hex, readVectors } from '../helpers/vectors.js';

interface ItemVector {
  name: string;
  slot: number;
  locator: string;
  exp: number;
  t: number;
  n: number;
  data: string;
  random: string;
  randomCalls: number[];
  id: string;
  ephemeral: string;
  token: string;
  dt: string;
  ctLength: number;
  item: string;
  deletion: string;
}
interface ItemV2Vector {
  name: string;
  index: number;
  locator: string;
  exp: number;
  t: number;
  n: number;
  data: string;
  random: string;
  id: string;
  effort: number;
  binding: string;
  nonce: string;
  item: string;
}
interface MailboxVectors {
  constants: { epochSeconds: number; maxSlots: number; maxTtlMs: number; maxItemBytes: number; ctLengths: number[] };
  recipientSeed: string;
  recipientPublicKey: string;
  senderSeed: string;
  senderPublicKey: string;
  otherSeed: string;
  now: number;
  epoch: number;
  inbox: string;
  perContact: { pair: string; senderToRecipient: string; recipientToSender: string; slot0: string };
  slots: { slot: number; locator: string }[];
  items: ItemVector[];
  openInvalid: { name: string; as: 'recipient' | 'other'; item: string; slot: string; now: number; error: string }[];
  storeInvalid: { name: string; bytes: string; now: number; error: string }[];
  itemsV2: ItemV2Vector[];
  storeInvalidV2: { name: string; bytes: string; slot: string; now: number; error: string }[];
  messages: { store: string; storedOccupied: string };
  prekeys: {
    spkSeed: string;
    otkSeeds: string[];
    created: number;
    edition: number;
    rk: string;
    nh: string;
    key: string;
    blinded: string;
    nonce: string;
    record: string;
  };
  itemsV3: {
    name: string;
    index: number;
    locator: string;
    exp: number;
    t: number;
    n: number;
    data: string;
    spk: string;
    opk: string | null;
    spkId: string;
    opkId: string | null;
    random: string;
    id: string;
    binding: string;
    item: string;
  }[];
  openInvalidV3: { name: string; item: string; secrets: 'none' | 'all' | 'without one-time' | 'without signed'; error: string }[];
  itemsV3PerContact: (MailboxVectors['itemsV3'][number] & { inbox: string })[];
  openInvalidV3PerContact: { name: string; item: string; slot: string; secrets: 'none' | 'all' | 'without one-time' | 'without signed'; error: string }[];
}

const V = readVectors<MailboxVectors>('mailbox.json');

describeEachBinding('vectors: mailbox.json', () => {
  const recipient = () => createIdentity(hex(V.recipientSeed));
  const sender = () => createIdentity(hex(V.senderSeed));

  it('has the constants of protocol/mailbox.ts', () => {
    expect(V.constants).to.deep.equal({
      epochSeconds: MAILBOX_EPOCH_SECONDS,
      maxSlots: MAX_MAILBOX_SLOTS,
      maxTtlMs: MAX_MAILBOX_TTL_MS,
      maxItemBytes: MAX_MAILBOX_ITEM_BYTES,
      ctLengths: [...MAILBOX_CT_LENS],
    });
  });

  it('derives the identities, the epoch, the inbox and the slot locators', () => {
    expect(toHex(recipient().publicKey)).to.equal(V.recipientPublicKey);
    expect(toHex(sender().publicKey)).to.equal(V.senderPublicKey);
    expect(mailboxEpochAt(V.now)).to.equal(V.epoch);
    const inbox = inboxKey(recipient().publicKey, V.epoch);
    expect(toHex(inbox)).to.equal(V.inbox);
    for (const s of V.slots) expect(toHex(slotLocator(inbox, s.slot)), `slot ${s.slot}`).to.equal(s.locator);
  });

  it('derives the pair secret from either side and the per-contact inboxes of both directions (§9.1)', () => {
    const pair = pairSecret(sender(), recipient().publicKey);
    expect(toHex(pair)).to.equal(V.perContact.pair);
    expect(toHex(pairSecret(recipient(), sender().publicKey))).to.equal(V.perContact.pair);
    expect(toHex(pairInboxKey(pair, sender().publicKey, V.epoch))).to.equal(V.perContact.senderToRecipient);
    expect(toHex(pairInboxKey(pair, recipient().publicKey, V.epoch))).to.equal(V.perContact.recipientToSender);
    expect(toHex(slotLocator(pairInboxKey(pair, sender().publicKey, V.epoch), 0))).to.equal(V.perContact.slot0);
  });

  for (const v of V.items) {
    it(`item: ${v.name}`, () => {
      const q = byteQueue(hex(v.random));
      const s = sealMailboxItemV1({
        sender: sender(),
        recipient: recipient().publicKey,
        slot: hex(v.locator),
        exp: v.exp,
        t: v.t,
        n: v.n,
        data: hex(v.data),
        random: q.random,
      });
      expect(q.remaining()).to.equal(0);
      expect(toHex(s.bytes)).to.equal(v.item);
      expect(toHex(s.id)).to.equal(v.id);
      expect(toHex(s.token)).to.equal(v.token);
      expect(toHex(deletionCheck(s.token))).to.equal(v.dt);
      const env = decodeMailboxItem(hex(v.item));
      expect([toHex(env.e), env.v === 1 ? toHex(env.dt) : null, env.ct.length, env.exp]).to.deep.equal([v.ephemeral, v.dt, v.ctLength, v.exp]);
      const o = openMailboxItem(recipient(), hex(v.locator), hex(v.item), { now: V.now });
      expect([toHex(o.from), toHex(o.data), o.t, o.n, toHex(o.id), toHex(o.token!)]).to.deep.equal([V.senderPublicKey, v.data, v.t, v.n, v.id, v.token]);
      expect(toHex(encodeMailboxDeletion(hex(v.token)))).to.equal(v.deletion);
      expect(toHex(decodeMailboxDeletion(hex(v.deletion)))).to.equal(v.token);
      const relay = verifyMailboxStore(hex(v.item), V.now, new Uint8Array(32));
      expect(relay.exp).to.equal(v.exp);
    });
  }

  for (const v of V.openInvalid) {
    it(`open refuses: ${v.name} → ${v.error}`, () => {
      const as = v.as === 'recipient' ? recipient() : createIdentity(hex(V.otherSeed));
      expectCode(() => openMailboxItem(as, hex(v.slot), hex(v.item), { now: v.now }), v.error);
    });
  }

  for (const v of V.storeInvalid) {
    it(`relay refuses: ${v.name} → ${v.error}`, () => {
      expectCode(() => verifyMailboxStore(hex(v.bytes), v.now, new Uint8Array(32)), v.error);
    });
  }

  for (const v of V.itemsV2) {
    it(`item: ${v.name}`, () => {
      const q = byteQueue(hex(v.random));
      const inbox = inboxKey(recipient().publicKey, V.epoch);
      const s = sealMailboxItem({
        sender: sender(),
        recipient: recipient().publicKey,
        inbox,
        index: v.index,
        exp: v.exp,
        t: v.t,
        n: v.n,
        data: hex(v.data),
        random: q.random,
      });
      expect(q.remaining()).to.equal(0);
      expect([toHex(s.slot), s.effort, toHex(mailboxPowBinding(s.item)), toHex(s.id)]).to.deep.equal([v.locator, v.effort, v.binding, v.id]);
      const bytes = solveMailboxItem(s.item, new Uint8Array(16))!;
      expect(toHex(bytes)).to.equal(v.item);
      const env = decodeMailboxItem(bytes);
      expect(env.v === 2 ? [toHex(env.w.n), env.w.e, env.i] : null).to.deep.equal([v.nonce, v.effort, v.index]);
      expect(verifyMailboxStore(bytes, V.now, hex(v.locator)).exp).to.equal(v.exp);
      const o = openMailboxItem(recipient(), hex(v.locator), bytes, { now: V.now });
      expect([toHex(o.from), toHex(o.data), o.version, o.token]).to.deep.equal([V.senderPublicKey, v.data, 2, null]);
    });
  }

  for (const v of V.storeInvalidV2) {
    it(`relay refuses: ${v.name} → ${v.error}`, () => {
      expectCode(() => verifyMailboxStore(hex(v.bytes), v.now, hex(v.slot)), v.error);
    });
  }

  // Version 3 and the prekey record (§9.2, §9.6).
  const spk = () => crypto().x25519Keypair(hex(V.prekeys.spkSeed));
  const otks = () => V.prekeys.otkSeeds.map((s) => crypto().x25519Keypair(hex(s)));
  const secrets = (which: 'none' | 'all' | 'without one-time' | 'without signed', v3: (typeof V.itemsV3)[number]) => {
    const held = new Map([spk(), ...otks()].map((k) => [toHex(prekeyId(k.publicKey)), k.secretKey]));
    if (which === 'without one-time') held.delete(v3.opkId!);
    if (which === 'without signed') held.delete(v3.spkId);
    return which === 'none' ? {} : { prekeys: (id: Uint8Array) => held.get(toHex(id)) ?? null };
  };

  it('builds and opens the prekey record of the epoch (§9.6)', () => {
    const keys = prekeyRecordKeys(recipient().publicKey, V.epoch);
    expect([toHex(keys.rk), toHex(keys.nh), toHex(keys.key), toHex(keys.blinded)]).to.deep.equal([
      V.prekeys.rk,
      V.prekeys.nh,
      V.prekeys.key,
      V.prekeys.blinded,
    ]);
    const bundle = { spk: spk().publicKey, created: V.prekeys.created, otks: otks().map((k) => k.publicKey), version: 1 as const };
    const q = byteQueue(hex(V.prekeys.nonce));
    const r = createPrekeyRecord(recipient(), V.epoch, V.prekeys.edition, bundle, q.random);
    expect(toHex(r.bytes)).to.equal(V.prekeys.record);
    const o = openPrekeyRecord(recipient().publicKey, V.epoch, hex(V.prekeys.record));
    expect([o.edition, toHex(o.bundle.spk), o.bundle.otks.map(toHex)]).to.deep.equal([V.prekeys.edition, toHex(bundle.spk), bundle.otks.map(toHex)]);
    // Anyone else's address, or another epoch, does not open it.
    expectCode(() => openPrekeyRecord(sender().publicKey, V.epoch, hex(V.prekeys.record)), 'ERR_CONTENT');
    expectCode(() => openPrekeyRecord(recipient().publicKey, V.epoch + 1, hex(V.prekeys.record)), 'ERR_CONTENT');
  });

  for (const v of V.itemsV3) {
    it(`item: ${v.name}`, () => {
      const q = byteQueue(hex(v.random));
      const s = sealMailboxItem({
        sender: sender(),
        recipient: recipient().publicKey,
        inbox: inboxKey(recipient().publicKey, V.epoch),
        index: v.index,
        exp: v.exp,
        t: v.t,
        n: v.n,
        data: hex(v.data),
        random: q.random,
        prekeys: v.opk ? { spk: hex(v.spk), opk: hex(v.opk) } : { spk: hex(v.spk) },
      });
      expect(q.remaining()).to.equal(0);
      expect([toHex(s.slot), toHex(mailboxPowBinding(s.item)), toHex(s.id)]).to.deep.equal([v.locator, v.binding, v.id]);
      const bytes = solveMailboxItem(s.item, new Uint8Array(16))!;
      expect(toHex(bytes)).to.equal(v.item);
      const env = decodeMailboxItem(bytes);
      expect(env.v === 3 ? [toHex(env.s), env.o ? toHex(env.o) : null] : null).to.deep.equal([v.spkId, v.opkId]);
      expect(verifyMailboxStore(bytes, V.now, hex(v.locator)).exp).to.equal(v.exp);
      const o = openMailboxItem(recipient(), hex(v.locator), bytes, { now: V.now, ...secrets('all', v) });
      expect([toHex(o.from), toHex(o.data), o.version, o.prekeys?.opk ? toHex(o.prekeys.opk) : null]).to.deep.equal([V.senderPublicKey, v.data, 3, v.opkId]);
    });
  }

  for (const v of V.openInvalidV3) {
    it(`open refuses (version 3): ${v.name} → ${v.error}`, () => {
      expectCode(() => openMailboxItem(recipient(), hex(V.itemsV3[0]!.locator), hex(v.item), { now: V.now, ...secrets(v.secrets, V.itemsV3[0]!) }), v.error);
    });
  }

  // Per-contact items of version 3 (§9.2): the per-contact inbox from the sender, sealed to the prekeys.
  for (const v of V.itemsV3PerContact) {
    it(`item: ${v.name}`, () => {
      const pinbox = pairInboxKey(pairSecret(sender(), recipient().publicKey), sender().publicKey, V.epoch);
      expect(toHex(pinbox)).to.equal(v.inbox);
      const q = byteQueue(hex(v.random));
      const s = sealMailboxItem({
        sender: sender(),
        recipient: recipient().publicKey,
        inbox: pinbox,
        index: v.index,
        exp: v.exp,
        t: v.t,
        n: v.n,
        data: hex(v.data),
        random: q.random,
        prekeys: v.opk ? { spk: hex(v.spk), opk: hex(v.opk) } : { spk: hex(v.spk) },
      });
      expect(q.remaining()).to.equal(0);
      expect([toHex(s.slot), toHex(mailboxPowBinding(s.item)), toHex(s.id)]).to.deep.equal([v.locator, v.binding, v.id]);
      const bytes = solveMailboxItem(s.item, new Uint8Array(16))!;
      expect(toHex(bytes)).to.equal(v.item);
      expect(verifyMailboxStore(bytes, V.now, hex(v.locator)).exp).to.equal(v.exp);
      // The recipient reads it in the per-contact inbox from the sender: the pair secret from its own side.
      const fromRecipient = pairInboxKey(pairSecret(recipient(), sender().publicKey), sender().publicKey, V.epoch);
      expect(toHex(slotLocator(fromRecipient, v.index))).to.equal(v.locator);
      const o = openMailboxItem(recipient(), hex(v.locator), bytes, { now: V.now, ...secrets('all', v) });
      expect([toHex(o.from), toHex(o.data), o.version, o.prekeys?.opk ? toHex(o.prekeys.opk) : null]).to.deep.equal([V.senderPublicKey, v.data, 3, v.opkId]);
    });
  }

  for (const v of V.openInvalidV3PerContact) {
    it(`open refuses (per-contact version 3): ${v.name} → ${v.error}`, () => {
      expectCode(() => openMailboxItem(recipient(), hex(v.slot), hex(v.item), { now: V.now, ...secrets(v.secrets, V.itemsV3PerContact[0]!) }), v.error);
    });
  }

  it('encodes the STORE and STORED messages of a mailbox request', () => {
    const store = decodeStore(hex(V.messages.store));
    expect(store.t).to.equal('mailbox');
    expect(toHex(encodeStore(store))).to.equal(V.messages.store);
    expect(decodeStored(hex(V.messages.storedOccupied)).s).to.equal('occupied');
    expect(toHex(encodeStored({ s: 'occupied' }))).to.equal(V.messages.storedOccupied);
  });
});
