/**
 * specs/vectors/mailbox.json: offline mailboxes (specs/messaging.md §9): inbox and slot locators, sealed items
 * of version 1 with their ephemeral key, id, deletion token and check, deletions, items of version 2 with their
 * proof of work, items of version 3 (first-contact and per-contact) with the prekey record, the STORE and STORED messages of a mailbox
 * request, and the items and stores a recipient or a relay refuses, with their codes.
 */
import { createIdentity } from '../../protocol/address.js';
import { fromHex, toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { encodeStore, encodeStored } from '../../protocol/content-messages.js';
import {
  decodeMailboxItem,
  deletionCheck,
  encodeMailboxDeletion,
  encodeMailboxItem,
  inboxKey,
  mailboxEffort,
  mailboxPowBinding,
  MAILBOX_V1_UNTIL_MS,
  MAILBOX_CT_LENS,
  MAILBOX_EPOCH_SECONDS,
  MAX_MAILBOX_ITEM_BYTES,
  MAX_MAILBOX_SLOTS,
  MAX_MAILBOX_TTL_MS,
  openMailboxItem,
  pairInboxKey,
  pairSecret,
  sealMailboxItem,
  sealMailboxItemV1,
  slotLocator,
  solveMailboxItem,
  verifyMailboxStore,
} from '../../protocol/mailbox.js';
import { solvePow } from '../../protocol/intro-pow.js';
import { createPrekeyRecord, openPrekeyRecord, prekeyId, prekeyRecordKeys } from '../../protocol/prekeys.js';
import { crypto } from '../../crypto/index.js';
import { check, errorCodeOf, expectCode, recordingRandom, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** A fixed clock for the vectors: 2025-06-15 12:00:00 UTC. */
const NOW = 1_749_988_800_000;
const HOUR = 3_600_000;

export function mailboxFile(): VectorFile {
  const recipientSeed = seeded('mailbox/recipient')(32);
  const senderSeed = seeded('mailbox/sender')(32);
  const recipient = createIdentity(recipientSeed);
  const sender = createIdentity(senderSeed);
  const epoch = Math.floor(NOW / 1000 / MAILBOX_EPOCH_SECONDS);
  const inbox = inboxKey(recipient.publicKey, epoch);
  const slots = [0, 1, MAX_MAILBOX_SLOTS - 1].map((i) => ({ slot: i, locator: toHex(slotLocator(inbox, i)) }));
  // Per-contact inboxes (§9.1): the pair secret is the same from either side; one inbox per direction.
  const pair = pairSecret(sender, recipient.publicKey);
  check(toHex(pairSecret(recipient, sender.publicKey)) === toHex(pair), 'the pair secret is symmetric');
  const perContact = {
    pair: toHex(pair),
    senderToRecipient: toHex(pairInboxKey(pair, sender.publicKey, epoch)),
    recipientToSender: toHex(pairInboxKey(pair, recipient.publicKey, epoch)),
    slot0: toHex(slotLocator(pairInboxKey(pair, sender.publicKey, epoch), 0)),
  };

  const itemCases: [string, number, Uint8Array, number][] = [
    ['short message, slot 0', 0, utf8('Hello Alice: I left this while you were away.'), 0],
    ['empty message, slot 1', 1, new Uint8Array(0), 1],
    ['2000-byte message (third bucket), slot 1023', MAX_MAILBOX_SLOTS - 1, seeded('mailbox/data-2000')(2000), 2],
  ];
  const items = itemCases.map(([name, slot, data, n]) => {
    const rec = recordingRandom(`mailbox/item-${slot}`);
    const rk = slotLocator(inbox, slot);
    const exp = NOW + 2 * HOUR;
    const s = sealMailboxItemV1({ sender, recipient: recipient.publicKey, slot: rk, exp, t: NOW, n, data, random: rec.random });
    const o = openMailboxItem(recipient, rk, s.bytes, { now: NOW });
    check(toHex(o.data) === toHex(data) && toHex(o.from) === toHex(sender.publicKey) && o.n === n, `mailbox item "${name}" opens`);
    const env = decodeMailboxItem(s.bytes);
    check(MAILBOX_CT_LENS.includes(env.ct.length), `mailbox item "${name}" ciphertext is a bucket`);
    return {
      name,
      slot,
      locator: toHex(rk),
      exp,
      t: NOW,
      n,
      data: toHex(data),
      random: rec.taken(),
      randomCalls: rec.calls(),
      id: toHex(s.id),
      ephemeral: toHex(env.e),
      token: toHex(s.token),
      dt: toHex(deletionCheck(s.token)),
      ctLength: env.ct.length,
      item: toHex(s.bytes),
      deletion: toHex(encodeMailboxDeletion(s.token)),
    };
  });

  const base = fromHex(items[0]!.item);
  const rk0 = slotLocator(inbox, 0);
  const fields = decodeCbor(base, MAX_MAILBOX_ITEM_BYTES) as Record<string, unknown>;
  const flipped = (i: number): Uint8Array => {
    const b = Uint8Array.from(base);
    b[i]! ^= 0x01;
    return b;
  };
  const other = createIdentity(seeded('mailbox/other')(32));
  const impostor = createIdentity(seeded('mailbox/impostor')(32));
  const forged = sealMailboxItemV1({
    sender: { publicKey: sender.publicKey, secretKey: impostor.secretKey },
    recipient: recipient.publicKey,
    slot: rk0,
    exp: NOW + 2 * HOUR,
    t: NOW,
    n: 0,
    data: utf8('not really from the sender'),
    random: seeded('mailbox/forged'),
  }).bytes;
  const openCases: [string, string, Uint8Array, string, number][] = [
    ['last ciphertext byte changed', 'recipient', flipped(base.length - 1), toHex(rk0), NOW],
    ['opened under slot 1', 'recipient', base, slots[1]!.locator, NOW],
    ['opened by another identity', 'other', base, toHex(rk0), NOW],
    ['expiry changed (re-encoded)', 'recipient', encodeCbor({ ...fields, exp: NOW + 3 * HOUR }), toHex(rk0), NOW],
    ['deletion check changed (re-encoded)', 'recipient', encodeCbor({ ...fields, dt: seeded('mailbox/dt')(32) }), toHex(rk0), NOW],
    ['authenticated by a key other than the named sender', 'recipient', forged, toHex(rk0), NOW],
    ['sent more than the clock skew ahead', 'recipient', base, toHex(rk0), NOW - HOUR],
    ['ciphertext not a bucket', 'recipient', encodeCbor({ ...fields, ct: seeded('mailbox/ct')(1000) }), toHex(rk0), NOW],
  ];
  const who = { recipient, other } as const;
  const expected: Record<string, string> = {
    'last ciphertext byte changed': 'ERR_MESSAGE_AUTH',
    'opened under slot 1': 'ERR_MESSAGE_AUTH',
    'opened by another identity': 'ERR_MESSAGE_AUTH',
    'expiry changed (re-encoded)': 'ERR_MESSAGE_AUTH',
    'deletion check changed (re-encoded)': 'ERR_MESSAGE_AUTH',
    'authenticated by a key other than the named sender': 'ERR_MESSAGE_AUTH',
    'sent more than the clock skew ahead': 'ERR_DESCRIPTOR_FUTURE',
    'ciphertext not a bucket': 'ERR_BAD_LENGTH',
  };
  const openInvalid = openCases.map(([name, as, bytes, slot, now]) => ({
    name,
    as,
    item: toHex(bytes),
    slot,
    now,
    error: expectCode(
      errorCodeOf(() => openMailboxItem(who[as as keyof typeof who], fromHex(slot), bytes, { now }), name),
      expected[name]!,
      `mailbox open "${name}"`,
    ),
  }));

  const storeCases: [string, Uint8Array, number, string][] = [
    ["expires at the relay's now", base, NOW + 2 * HOUR, 'ERR_LIMIT'],
    ['expires beyond the longest lifetime', base, NOW + 2 * HOUR - MAX_MAILBOX_TTL_MS - HOUR, 'ERR_LIMIT'],
    ['unknown field', encodeCbor({ ...fields, x: 0 }), NOW, 'ERR_SCHEMA'],
    ['deletion token of 31 bytes', encodeCbor({ v: 1, del: seeded('mailbox/short-token')(31) }), NOW, 'ERR_SCHEMA'],
    ['a deletion (relays store none: messaging.md §9.3)', encodeCbor({ v: 1, del: seeded('mailbox/deletion')(32) }), NOW, 'ERR_SCHEMA'],
    ['version 2 without inbox, index and work', encodeCbor({ ...fields, v: 2 }), NOW, 'ERR_SCHEMA'],
    [
      'version 1 after MAILBOX_V1_UNTIL_MS',
      sealMailboxItemV1({
        sender,
        recipient: recipient.publicKey,
        slot: rk0,
        exp: MAILBOX_V1_UNTIL_MS + HOUR,
        t: MAILBOX_V1_UNTIL_MS,
        n: 0,
        data: utf8('late'),
        random: seeded('mailbox/v1-late'),
      }).bytes,
      MAILBOX_V1_UNTIL_MS,
      'ERR_MAILBOX_POW',
    ],
  ];
  const storeInvalid = storeCases.map(([name, bytes, now, error]) => ({
    name,
    bytes: toHex(bytes),
    now,
    error: expectCode(
      errorCodeOf(() => verifyMailboxStore(bytes, now, new Uint8Array(32)), name),
      error,
      `mailbox store "${name}"`,
    ),
  }));
  check(verifyMailboxStore(base, NOW, new Uint8Array(32)).exp > NOW, 'the first item is storable at NOW');

  // Version 2 (§9.2–§9.3): the puzzle solved from the all-zero nonce upwards; slot 32 is the first at effort 512.
  const v2Cases: [string, number, Uint8Array][] = [
    ['version 2, slot 0 (effort 256)', 0, utf8('Hello Alice, from a stranger.')],
    ['version 2, slot 32 (effort 512)', 32, new Uint8Array(0)],
  ];
  const zero = new Uint8Array(16);
  const itemsV2 = v2Cases.map(([name, index, data]) => {
    const rec = recordingRandom(`mailbox/item-v2-${index}`);
    const exp = NOW + 2 * HOUR;
    const s = sealMailboxItem({ sender, recipient: recipient.publicKey, inbox, index, exp, t: NOW, n: index, data, random: rec.random });
    const bytes = solveMailboxItem(s.item, zero)!;
    const env = decodeMailboxItem(bytes);
    check(env.v === 2 && env.w.e === mailboxEffort(index), `mailbox item "${name}" carries effort(i)`);
    check(verifyMailboxStore(bytes, NOW, s.slot).exp === exp, `mailbox item "${name}" is storable in its slot`);
    check(toHex(openMailboxItem(recipient, s.slot, bytes, { now: NOW }).data) === toHex(data), `mailbox item "${name}" opens`);
    return {
      name,
      index,
      locator: toHex(s.slot),
      exp,
      t: NOW,
      n: index,
      data: toHex(data),
      random: rec.taken(),
      randomCalls: rec.calls(),
      id: toHex(s.id),
      effort: mailboxEffort(index),
      binding: toHex(mailboxPowBinding(s.item)),
      nonce: toHex(env.v === 2 ? env.w.n : zero),
      item: toHex(bytes),
    };
  });
  const v2 = fromHex(itemsV2[1]!.item);
  const v2Env = decodeMailboxItem(v2);
  if (v2Env.v !== 2) throw new Error('version 2 expected');
  const { w: v2Work, ...v2Unsolved } = v2Env;
  const rk32 = fromHex(itemsV2[1]!.locator);
  const low = solvePow(rk32, 256, mailboxPowBinding(v2Unsolved), zero, 1 << 24)!;
  const v2Ct = Uint8Array.from(v2Unsolved.ct);
  v2Ct[0]! ^= 0x01;
  const storeV2Cases: [string, Uint8Array, string, string][] = [
    ['stored in another slot (33)', v2, toHex(slotLocator(inbox, 33)), 'ERR_MAILBOX_POW'],
    ['work for effort 256 in slot 32', encodeMailboxItem(v2Unsolved, low), toHex(rk32), 'ERR_MAILBOX_POW'],
    ['ciphertext changed after the work', encodeMailboxItem({ ...v2Unsolved, ct: v2Ct }, v2Work), toHex(rk32), 'ERR_MAILBOX_POW'],
    ['index beyond the last slot', encodeCbor({ ...v2Env, i: MAX_MAILBOX_SLOTS }), toHex(rk32), 'ERR_SCHEMA'],
  ];
  const storeInvalidV2 = storeV2Cases.map(([name, bytes, slot, error]) => ({
    name,
    bytes: toHex(bytes),
    slot,
    now: NOW,
    error: expectCode(
      errorCodeOf(() => verifyMailboxStore(bytes, NOW, fromHex(slot)), name),
      error,
      `mailbox store "${name}"`,
    ),
  }));

  // Version 3 (§9.2, §9.6): the recipient's prekey record for the epoch, and items sealed to its prekeys.
  const spk = crypto().x25519Keypair(seeded('mailbox/spk')(32));
  const otks = [0, 1].map((i) => crypto().x25519Keypair(seeded(`mailbox/otk-${i}`)(32)));
  const bundle = { spk: spk.publicKey, created: NOW - HOUR, otks: otks.map((k) => k.publicKey), version: 1 as const }; // a record of before windows (§9.6): prekey-editions.json has version 2
  const edition = NOW;
  const record = createPrekeyRecord(recipient, epoch, edition, bundle, seeded('mailbox/prekey-record'));
  const recordKeys = prekeyRecordKeys(recipient.publicKey, epoch);
  const opened = openPrekeyRecord(recipient.publicKey, epoch, record.bytes);
  check(opened.edition === edition && toHex(opened.bundle.spk) === toHex(spk.publicKey), 'the prekey record opens');
  const secrets = new Map([
    [toHex(prekeyId(spk.publicKey)), spk.secretKey],
    ...otks.map((k) => [toHex(prekeyId(k.publicKey)), k.secretKey] as [string, Uint8Array]),
  ]);
  const lookup = (id: Uint8Array): Uint8Array | null => secrets.get(toHex(id)) ?? null;
  const v3Cases: [string, number, Uint8Array, boolean][] = [
    ['version 3, slot 0, signed and one-time prekey', 0, utf8('Hello Alice, sealed to your prekeys.'), true],
    ['version 3, slot 1, signed prekey only', 1, utf8('No one-time prekey was left.'), false],
  ];
  const itemsV3 = v3Cases.map(([name, index, data, withOpk]) => {
    const rec = recordingRandom(`mailbox/item-v3-${index}`);
    const exp = NOW + 2 * HOUR;
    const prekeys = withOpk ? { spk: spk.publicKey, opk: otks[1]!.publicKey } : { spk: spk.publicKey };
    const s = sealMailboxItem({ sender, recipient: recipient.publicKey, inbox, index, exp, t: NOW, n: index, data, random: rec.random, prekeys });
    const bytes = solveMailboxItem(s.item, zero)!;
    const env = decodeMailboxItem(bytes);
    check(env.v === 3 && (env.o !== undefined) === withOpk, `mailbox item "${name}" is version 3`);
    check(verifyMailboxStore(bytes, NOW, s.slot).exp === exp, `mailbox item "${name}" is storable in its slot`);
    check(toHex(openMailboxItem(recipient, s.slot, bytes, { now: NOW, prekeys: lookup }).data) === toHex(data), `mailbox item "${name}" opens`);
    check(errorCodeOf(() => openMailboxItem(recipient, s.slot, bytes, { now: NOW }), name) === 'ERR_MESSAGE_AUTH', `"${name}" needs the prekeys`);
    return {
      name,
      index,
      locator: toHex(s.slot),
      exp,
      t: NOW,
      n: index,
      data: toHex(data),
      spk: toHex(spk.publicKey),
      opk: withOpk ? toHex(otks[1]!.publicKey) : null,
      spkId: toHex(prekeyId(spk.publicKey)),
      opkId: withOpk ? toHex(prekeyId(otks[1]!.publicKey)) : null,
      random: rec.taken(),
      randomCalls: rec.calls(),
      id: toHex(s.id),
      binding: toHex(mailboxPowBinding(s.item)),
      item: toHex(bytes),
    };
  });
  const v3 = fromHex(itemsV3[0]!.item);
  const v3Slot = fromHex(itemsV3[0]!.locator);
  const v3Env = decodeMailboxItem(v3) as Record<string, unknown>;
  const withoutOpk = (id: Uint8Array): Uint8Array | null => (toHex(id) === itemsV3[0]!.opkId ? null : lookup(id));
  const withoutSpk = (id: Uint8Array): Uint8Array | null => (toHex(id) === itemsV3[0]!.spkId ? null : lookup(id));
  const v3OpenCases: [string, Uint8Array, ((id: Uint8Array) => Uint8Array | null) | null, string][] = [
    ['identity key alone (no prekey secrets)', v3, null, 'ERR_MESSAGE_AUTH'],
    ['one-time prekey secret deleted', v3, withoutOpk, 'ERR_MESSAGE_AUTH'],
    ['signed prekey secret deleted', v3, withoutSpk, 'ERR_MESSAGE_AUTH'],
    ['one-time prekey id removed (re-encoded)', encodeCbor(Object.fromEntries(Object.entries(v3Env).filter(([k]) => k !== 'o'))), lookup, 'ERR_MESSAGE_AUTH'],
    ['one-time prekey id of 7 bytes', encodeCbor({ ...v3Env, o: seeded('mailbox/short-id')(7) }), lookup, 'ERR_SCHEMA'],
  ];
  const openInvalidV3 = v3OpenCases.map(([name, bytes, pre, error]) => ({
    name,
    item: toHex(bytes),
    secrets: pre === null ? 'none' : pre === lookup ? 'all' : pre === withoutOpk ? 'without one-time' : 'without signed',
    error: expectCode(
      errorCodeOf(() => openMailboxItem(recipient, v3Slot, bytes, { now: NOW, ...(pre ? { prekeys: pre } : {}) }), name),
      error,
      `mailbox open "${name}"`,
    ),
  }));
  // Per-contact items of version 3 (§9.2): the same construction, in the per-contact inbox from the sender. The slot
  // (in the AD and the MAC) binds the item to that inbox, so to the pair; the MAC binds the sender, whom the reader
  // requires to be the pair's other member. Neither the identity key nor the pair secret opens it without the prekeys.
  const pinbox = pairInboxKey(pair, sender.publicKey, epoch);
  const pcCases: [string, number, Uint8Array, boolean][] = [
    ['per-contact version 3, slot 0, signed and one-time prekey', 0, utf8('Hello Alice, from your contact, sealed to your prekeys.'), true],
    ['per-contact version 3, slot 1, signed prekey only', 1, utf8('Contact mail, no one-time prekey.'), false],
  ];
  const itemsV3PerContact = pcCases.map(([name, index, data, withOpk]) => {
    const rec = recordingRandom(`mailbox/item-v3-pair-${index}`);
    const exp = NOW + 2 * HOUR;
    const prekeys = withOpk ? { spk: spk.publicKey, opk: otks[0]!.publicKey } : { spk: spk.publicKey };
    const s = sealMailboxItem({ sender, recipient: recipient.publicKey, inbox: pinbox, index, exp, t: NOW, n: index, data, random: rec.random, prekeys });
    const bytes = solveMailboxItem(s.item, zero)!;
    const env = decodeMailboxItem(bytes);
    check(env.v === 3 && toHex(env.x) === toHex(pinbox), `mailbox item "${name}" is version 3 in the per-contact inbox`);
    check(verifyMailboxStore(bytes, NOW, s.slot).exp === exp, `mailbox item "${name}" is storable in its slot`);
    const o = openMailboxItem(recipient, s.slot, bytes, { now: NOW, prekeys: lookup });
    check(toHex(o.data) === toHex(data) && toHex(o.from) === toHex(sender.publicKey), `mailbox item "${name}" opens, from the pair's sender`);
    check(errorCodeOf(() => openMailboxItem(recipient, s.slot, bytes, { now: NOW }), name) === 'ERR_MESSAGE_AUTH', `"${name}" needs the prekeys`);
    return {
      name,
      index,
      inbox: toHex(pinbox),
      locator: toHex(s.slot),
      exp,
      t: NOW,
      n: index,
      data: toHex(data),
      spk: toHex(spk.publicKey),
      opk: withOpk ? toHex(otks[0]!.publicKey) : null,
      spkId: toHex(prekeyId(spk.publicKey)),
      opkId: withOpk ? toHex(prekeyId(otks[0]!.publicKey)) : null,
      random: rec.taken(),
      randomCalls: rec.calls(),
      id: toHex(s.id),
      binding: toHex(mailboxPowBinding(s.item)),
      item: toHex(bytes),
    };
  });
  const pc = fromHex(itemsV3PerContact[0]!.item);
  const pcCasesInvalid: [string, Uint8Array, string, 'none' | 'all' | 'without one-time' | 'without signed', string][] = [
    ['per-contact: identity key alone (the pair secret is no input)', pc, itemsV3PerContact[0]!.locator, 'none', 'ERR_MESSAGE_AUTH'],
    ['per-contact: one-time prekey secret deleted', pc, itemsV3PerContact[0]!.locator, 'without one-time', 'ERR_MESSAGE_AUTH'],
    ['per-contact: opened under the first-contact slot 0', pc, toHex(slotLocator(inbox, 0)), 'all', 'ERR_MESSAGE_AUTH'],
    [
      'per-contact: opened under the other direction’s slot 0',
      pc,
      toHex(slotLocator(pairInboxKey(pair, recipient.publicKey, epoch), 0)),
      'all',
      'ERR_MESSAGE_AUTH',
    ],
  ];
  const pcWithout = (id: Uint8Array): Uint8Array | null => (toHex(id) === itemsV3PerContact[0]!.opkId ? null : lookup(id));
  const openInvalidV3PerContact = pcCasesInvalid.map(([name, bytes, slot, which, error]) => ({
    name,
    item: toHex(bytes),
    slot,
    secrets: which,
    error: expectCode(
      errorCodeOf(
        () =>
          openMailboxItem(recipient, fromHex(slot), bytes, {
            now: NOW,
            ...(which === 'all' ? { prekeys: lookup } : which === 'without one-time' ? { prekeys: pcWithout } : {}),
          }),
        name,
      ),
      error,
      `mailbox open "${name}"`,
    ),
  }));
  const prekeys = {
    spkSeed: toHex(seeded('mailbox/spk')(32)),
    otkSeeds: [0, 1].map((i) => toHex(seeded(`mailbox/otk-${i}`)(32))),
    created: bundle.created,
    edition,
    rk: toHex(record.rk),
    nh: toHex(recordKeys.nh),
    key: toHex(recordKeys.key),
    blinded: toHex(recordKeys.blinded),
    nonce: toHex(seeded('mailbox/prekey-record')(24)),
    record: toHex(record.bytes),
  };

  const messages = {
    store: toHex(encodeStore({ k: rk0, t: 'mailbox', n: base.length, c: false })),
    storedOccupied: toHex(encodeStored({ s: 'occupied' })),
  };

  return {
    description:
      'Offline mailboxes (specs/messaging.md §9): first-contact and per-contact inbox and slot locators, sealed items of version 1 (the random bytes are the ephemeral X25519 secret, then the 16-byte id) with their deletion tokens, checks and deletions, items of version 2 with their proof of work (solved from the all-zero nonce), the prekey record of the recipient for the epoch (§9.6; the SPK and OPKs are X25519 keys from their seeds, the nonce of the record the 24 bytes given) and items of version 3 sealed to its prekeys (random bytes as version 2; solved from the all-zero nonce) with the cases that no longer open once a prekey secret is gone, per-contact items of version 3 (in the per-contact inbox from the sender, §9.2) with the cases that do not open (no prekeys, another inbox), the STORE and STORED messages of a mailbox request, and items and stores that are refused.',
    version: VECTORS_VERSION,
    constants: {
      epochSeconds: MAILBOX_EPOCH_SECONDS,
      maxSlots: MAX_MAILBOX_SLOTS,
      maxTtlMs: MAX_MAILBOX_TTL_MS,
      maxItemBytes: MAX_MAILBOX_ITEM_BYTES,
      ctLengths: [...MAILBOX_CT_LENS],
    },
    recipientSeed: toHex(recipientSeed),
    recipientPublicKey: toHex(recipient.publicKey),
    senderSeed: toHex(senderSeed),
    senderPublicKey: toHex(sender.publicKey),
    otherSeed: toHex(seeded('mailbox/other')(32)),
    now: NOW,
    epoch,
    inbox: toHex(inbox),
    slots,
    perContact,
    items,
    itemsV2,
    openInvalid,
    storeInvalid,
    storeInvalidV2,
    prekeys,
    itemsV3,
    openInvalidV3,
    itemsV3PerContact,
    openInvalidV3PerContact,
    messages,
  };
}
