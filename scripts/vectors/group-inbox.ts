/**
 * Vectors for the group inbox, version 2 of the group transport (specs/messaging.md §13.9): an epoch envelope, the day
 * secrets forward from it, each day's inbox and deposit keys and slot locators, a sender-key deposit and a message
 * deposit (fixed identity, sender key, salt and work), and refused epochs with their codes.
 */
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  decodeGroupEpoch,
  decodeGroupEpochRequest,
  encodeGroupEpoch,
  encodeGroupEpochRequest,
  groupDay,
  groupInboxKey,
  MAX_GROUP_DEPOSIT_BYTES,
  MAX_GROUP_EPOCH_DAYS,
  openGroupDeposit,
  sealGroupDeposit,
  type GroupEpoch,
} from '../../protocol/group-inbox.js';
import { encodeGroupEnvelope } from '../../protocol/group-messages.js';
import { slotLocator, solveMailboxItem } from '../../protocol/mailbox.js';
import { OwnSenderKey } from '../../protocol/sender-key.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** The first day of the vector epoch (a mailbox epoch, §9.1: days since 1970). */
const FIRST_DAY = 20_400;
/** The receiver's day for the checks of `d` (§13.9). */
const TODAY = FIRST_DAY + 2;

export function groupInboxFile(): VectorFile {
  const group = seeded('group-inbox/id')(32);
  const es = seeded('group-inbox/es')(32);
  const epoch: GroupEpoch = { kind: 'epoch', group, q: 3, r: 5, d: FIRST_DAY, es };
  const epochBytes = encodeGroupEpoch(epoch);
  check(toHex(decodeGroupEpoch(epochBytes, TODAY).es) === toHex(es), 'the epoch decodes');

  const days = [0, 1, 2].map((i) => {
    const day = groupDay(epoch, FIRST_DAY + i);
    const inbox = groupInboxKey(day);
    return {
      day: FIRST_DAY + i,
      secret: toHex(day.secret),
      inbox: toHex(inbox),
      slots: [0, 1].map((s) => toHex(slotLocator(inbox, s))),
    };
  });

  const alice = crypto().ed25519Keypair(seeded('group-inbox/alice')(32));
  const from = { publicKey: alice.publicKey, secretKey: alice.secretKey };
  const own = OwnSenderKey.fromParts({ ck: seeded('group-inbox/ck')(32), signingSeed: seeded('group-inbox/signing')(32), e: 1, n: 0, pn: 4 });
  const day = groupDay(epoch, FIRST_DAY + 1);
  const exp = (FIRST_DAY + 1) * 86_400_000 + 3_600_000;
  const data = new TextEncoder().encode('the beans are in');
  const deposits = [
    { name: 'sender key', envelope: own.distribution(group), index: 0 },
    { name: 'message', envelope: own.encrypt(group, alice.publicKey, data), index: 1 },
  ].map((d) => {
    const salt = seeded(`group-inbox/salt/${d.index}`)(32);
    const sealed = sealGroupDeposit({ day, from, envelope: d.envelope, index: d.index, exp, random: () => salt });
    const item = solveMailboxItem(sealed.item, new Uint8Array(16));
    if (!item) throw new Error('no work found');
    const opened = openGroupDeposit(day, sealed.slot, item);
    check(toHex(opened.from) === toHex(alice.publicKey), `the ${d.name} deposit opens as Alice's`);
    return {
      name: d.name,
      index: d.index,
      slot: toHex(sealed.slot),
      salt: toHex(salt),
      envelope: toHex(encodeGroupEnvelope(d.envelope)),
      ct: toHex(sealed.item.ct),
      item: toHex(item),
    };
  });

  // A member holding roster 5 and epoch 2 asks; the admin answers on the epoch's second day with that day's secret,
  // from which the member derives the same inboxes from that day on (§13.9, "Asking for a missed epoch").
  const requestBytes = encodeGroupEpochRequest({ kind: 'epoch-request', group, r: 5, q: 2 });
  check(decodeGroupEpochRequest(requestBytes).q === 2, 'the request decodes');
  const answerDay = groupDay(epoch, FIRST_DAY + 1);
  const answerBytes = encodeGroupEpoch({ kind: 'epoch', group, q: 3, r: 5, d: FIRST_DAY + 1, es: answerDay.secret });
  const answer = decodeGroupEpoch(answerBytes, TODAY);
  for (const i of [1, 2]) {
    check(toHex(groupInboxKey(groupDay(answer, FIRST_DAY + i))) === days[i]!.inbox, `the answer derives day ${i}'s inbox`);
  }
  const requestBase = { v: 2, t: 5, g: group, r: 5, q: 2 };
  const invalidRequests = [
    { name: 'a request of version 1', value: { ...requestBase, v: 1 } },
    { name: 'a request without its epoch', value: { v: 2, t: 5, g: group, r: 5 } },
    { name: 'a request with an unknown field', value: { ...requestBase, x: 0 } },
    { name: 'a request for a short group id', value: { ...requestBase, g: group.subarray(0, 31) } },
    { name: 'a request for a revision beyond 2^32 - 1', value: { ...requestBase, r: 2 ** 32 } },
  ].map((c) => {
    const bytes = encodeCbor(c.value);
    return {
      name: c.name,
      bytes: toHex(bytes),
      error: expectCode(
        errorCodeOf(() => decodeGroupEpochRequest(bytes), c.name),
        'ERR_SCHEMA',
        c.name,
      ),
    };
  });

  const base = { v: 2, t: 4, g: group, q: 3, r: 5, d: FIRST_DAY, es };
  const invalid = [
    { name: 'version 1', value: { ...base, v: 1 }, error: 'ERR_SCHEMA' },
    { name: 'a type other than 4', value: { ...base, t: 2 }, error: 'ERR_SCHEMA' },
    { name: 'a short epoch secret', value: { ...base, es: es.subarray(0, 31) }, error: 'ERR_SCHEMA' },
    { name: 'an unknown field', value: { ...base, x: 0 }, error: 'ERR_SCHEMA' },
    { name: 'an epoch beyond 2^32 - 1', value: { ...base, q: 2 ** 32 }, error: 'ERR_SCHEMA' },
    { name: 'a first day after tomorrow', value: { ...base, d: TODAY + 2 }, error: 'ERR_SCHEMA' },
    { name: 'a first day more than MAX_GROUP_EPOCH_DAYS ago', value: { ...base, d: TODAY - MAX_GROUP_EPOCH_DAYS - 1 }, error: 'ERR_LIMIT' },
  ].map((c) => {
    const bytes = encodeCbor(c.value);
    return {
      name: c.name,
      bytes: toHex(bytes),
      error: expectCode(
        errorCodeOf(() => decodeGroupEpoch(bytes, TODAY), c.name),
        c.error,
        c.name,
      ),
    };
  });

  return {
    description:
      "The group inbox (specs/messaging.md §13.9): an epoch envelope (fixed group id and secret), the day secrets, inbox keys and first slot locators of its first three days, a sender-key deposit (slot 0) and a message deposit under it (slot 1) on its second day, sealed with fixed salts and solved from a zero nonce, refused epochs (decoded on day `today`) with their codes, an epoch request (a member holding roster 5 and epoch 2) and refused ones, and an admin's answer to it on the epoch's second day (d that day, es that day's secret: it derives the same inboxes from that day on).",
    version: VECTORS_VERSION,
    constants: { maxGroupEpochDays: MAX_GROUP_EPOCH_DAYS, maxGroupDepositBytes: MAX_GROUP_DEPOSIT_BYTES },
    today: TODAY,
    epoch: { group: toHex(group), q: 3, r: 5, d: FIRST_DAY, es: toHex(es), envelope: toHex(epochBytes) },
    days,
    deposits: {
      depositor: toHex(alice.publicKey),
      depositorSeed: toHex(seeded('group-inbox/alice')(32)),
      day: FIRST_DAY + 1,
      exp,
      data: toHex(data),
      items: deposits,
    },
    invalid,
    request: { group: toHex(group), r: 5, q: 2, envelope: toHex(requestBytes) },
    answer: { d: FIRST_DAY + 1, es: toHex(answerDay.secret), envelope: toHex(answerBytes) },
    invalidRequests,
  };
}
