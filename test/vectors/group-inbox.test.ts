/**
 * specs/vectors/group-inbox.json against protocol/group-inbox.ts, and against the derivations of specs/messaging.md
 * §13.9 written here from the raw primitives (H: BLAKE2b-256 keyed with the label; the AEAD), so the vectors cannot
 * merely echo the code.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
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
} from '../../protocol/group-inbox.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { decodeMailboxItem, slotLocator } from '../../protocol/mailbox.js';
import { unpad } from '../../protocol/padding.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface File {
  constants: { maxGroupEpochDays: number; maxGroupDepositBytes: number };
  today: number;
  epoch: { group: string; q: number; r: number; d: number; es: string; envelope: string };
  days: Array<{ day: number; secret: string; inbox: string; slots: string[] }>;
  deposits: {
    depositor: string;
    depositorSeed: string;
    day: number;
    exp: number;
    data: string;
    items: Array<{ name: string; index: number; slot: string; salt: string; envelope: string; ct: string; item: string }>;
  };
  invalid: Array<{ name: string; bytes: string; error: string }>;
  request: { group: string; r: number; q: number; envelope: string };
  answer: { d: number; es: string; envelope: string };
  invalidRequests: Array<{ name: string; bytes: string; error: string }>;
}

const H = (input: Uint8Array, label: string): Uint8Array => crypto().hash(32, input, utf8(label));
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const u64 = (n: number): Uint8Array => concatBytes(u32(Math.floor(n / 2 ** 32)), u32(n >>> 0));

describe('vectors: group-inbox (specs/messaging.md §13.9)', () => {
  const v = readVectors<File>('group-inbox.json');
  const epoch = decodeGroupEpoch(hex(v.epoch.envelope), v.today);

  it('states the limits the code uses', () => {
    expect(v.constants).to.deep.equal({ maxGroupEpochDays: MAX_GROUP_EPOCH_DAYS, maxGroupDepositBytes: MAX_GROUP_DEPOSIT_BYTES });
  });

  it('the epoch envelope round-trips', () => {
    expect({ group: toHex(epoch.group), q: epoch.q, r: epoch.r, d: epoch.d, es: toHex(epoch.es) }).to.deep.equal({
      group: v.epoch.group,
      q: v.epoch.q,
      r: v.epoch.r,
      d: v.epoch.d,
      es: v.epoch.es,
    });
    expect(toHex(encodeGroupEpoch(epoch))).to.equal(v.epoch.envelope);
  });

  it('derives the day secrets, inboxes and slots: by the code and from the spec', () => {
    let es = hex(v.epoch.es);
    for (const d of v.days) {
      // es_(i+1) = H(es_i, "allium-v1:group:day"); inbox = H(es_d | g | u32(q) | u64(d), "allium-v1:group:inbox").
      expect(toHex(es)).to.equal(d.secret);
      const inbox = H(concatBytes(es, epoch.group, u32(epoch.q), u64(d.day)), 'allium-v1:group:inbox');
      expect(toHex(inbox)).to.equal(d.inbox);
      expect(toHex(groupInboxKey(groupDay(epoch, d.day)))).to.equal(d.inbox);
      d.slots.forEach((s, i) => {
        expect(toHex(H(concatBytes(inbox, u32(i)), 'allium-v1:mailbox:slot'))).to.equal(s);
        expect(toHex(slotLocator(inbox, i))).to.equal(s);
      });
      es = H(es, 'allium-v1:group:day');
    }
  });

  it('seals each deposit to the same bytes, and opens it: by the code and from the spec', () => {
    const dv = v.deposits;
    const day = groupDay(epoch, dv.day);
    const alice = crypto().ed25519Keypair(hex(dv.depositorSeed));
    expect(toHex(alice.publicKey)).to.equal(dv.depositor);
    for (const it of dv.items) {
      const env = decodeGroupEnvelope(hex(it.envelope));
      if (env.kind === 'roster') throw new Error('a roster is never deposited');
      const sealed = sealGroupDeposit({ day, from: alice, envelope: env, index: it.index, exp: dv.exp, random: () => hex(it.salt) });
      expect(toHex(sealed.slot)).to.equal(it.slot);
      expect(toHex(sealed.item.ct)).to.equal(it.ct);
      const opened = openGroupDeposit(day, hex(it.slot), hex(it.item));
      expect(toHex(opened.from)).to.equal(dv.depositor);
      // k = H(H(es_d | ctx, "allium-v1:group:deposit") | E, "allium-v1:group:deposit-key");
      // AD = "allium-v1 group-inbox" | slot | u64(exp) | E.
      const item = decodeMailboxItem(hex(it.item));
      const ctx = concatBytes(day.secret, epoch.group, u32(epoch.q), u64(dv.day));
      const k = H(concatBytes(H(ctx, 'allium-v1:group:deposit'), item.e), 'allium-v1:group:deposit-key');
      const ad = concatBytes(utf8('allium-v1 group-inbox'), hex(it.slot), u64(dv.exp), item.e);
      const inner = decodeCbor(unpad(crypto().aeadDecrypt(item.ct, ad, new Uint8Array(12), k)!, 16), 32_768) as Record<string, unknown>;
      expect(toHex(inner['env'] as Uint8Array)).to.equal(it.envelope);
      expect('sig' in inner).to.equal(it.name === 'sender key');
    }
  });

  it("an epoch request round-trips; an admin's answer from a later day derives the same inboxes from that day on", () => {
    const req = decodeGroupEpochRequest(hex(v.request.envelope));
    expect({ group: toHex(req.group), r: req.r, q: req.q }).to.deep.equal({ group: v.request.group, r: v.request.r, q: v.request.q });
    expect(toHex(encodeGroupEpochRequest(req))).to.equal(v.request.envelope);
    // The answer is an epoch envelope whose d is the admin's oldest day and es that day's secret: es_(d+1) = H(es_d, …).
    const answer = decodeGroupEpoch(hex(v.answer.envelope), v.today);
    expect([answer.q, answer.r, answer.d, toHex(answer.es)]).to.deep.equal([v.epoch.q, v.epoch.r, v.answer.d, v.answer.es]);
    expect(toHex(H(hex(v.epoch.es), 'allium-v1:group:day'))).to.equal(v.answer.es);
    for (const d of v.days.filter((x) => x.day >= v.answer.d)) expect(toHex(groupInboxKey(groupDay(answer, d.day)))).to.equal(d.inbox);
    expect(toHex(encodeGroupEpoch(answer))).to.equal(v.answer.envelope);
  });

  for (const c of v.invalidRequests) {
    it(`refuses ${c.name} (${c.error})`, () => {
      expectCode(() => decodeGroupEpochRequest(hex(c.bytes)), c.error);
    });
  }

  for (const c of v.invalid) {
    it(`refuses ${c.name} (${c.error})`, () => {
      expectCode(() => decodeGroupEpoch(hex(c.bytes), v.today), c.error);
    });
  }
});
