/**
 * GroupInboxMember against a stand-in for the content store (specs/messaging.md §13.9): how a deposit reads its
 * holders' answers, and epochs whose days run out.
 */
import { expect } from 'chai';
import type { ContentClient } from '../../client/content.js';
import { depositOutcome, GroupInboxMember } from '../../client/messaging/group-inbox.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import type { AlliumError } from '../../protocol/errors.js';
import { encodeGroupEpoch, MAX_GROUP_EPOCH_DAYS } from '../../protocol/group-inbox.js';
import { signRoster } from '../../protocol/group-messages.js';
import { mailboxEpochAt } from '../../protocol/mailbox.js';
import { expectCode } from '../helpers/vectors.js';

const DAY_MS = 86_400_000;

/** A content store whose holders answer each STORE as `answer(slot index)` says, and hold nothing to fetch. */
function fakeContent(answer: (storeCall: number) => string[]): { content: ContentClient; stored: Uint8Array[] } {
  const stored: Uint8Array[] = [];
  const content = {
    storeAll: (_kind: string, rk: Uint8Array) => {
      stored.push(rk);
      return Promise.resolve(answer(stored.length - 1));
    },
    fetchFromAll: () => Promise.resolve([]),
    fetchAnswers: () => Promise.resolve({ copies: [], answered: 1 }),
    session: () => ({ close: () => {} }),
    close: () => {},
  } as unknown as ContentClient;
  return { content, stored };
}

function member(content: ContentClient, now: () => number): { m: GroupInboxMember; admin: ReturnType<typeof createIdentity>; group: Uint8Array } {
  const admin = createIdentity();
  const group = crypto().random(32);
  const m = new GroupInboxMember({ client: {} as never, identity: admin, content, now }, { group });
  m.takeRoster(signRoster({ group, r: 0, name: 'g', members: [admin.publicKey], admins: [0], by: admin.publicKey }, admin.secretKey));
  return { m, admin, group };
}

describe('group inbox member (specs/messaging.md §13.9)', () => {
  it('decides a deposit by its holders: accepted by most, it stays; occupied at most, the next slot', () => {
    expect(depositOutcome(['ok', 'ok', 'occupied'])).to.equal('stored');
    expect(depositOutcome(['exists', 'occupied', 'ok'])).to.equal('stored');
    expect(depositOutcome(['ok', 'occupied', 'occupied'])).to.equal('next');
    expect(depositOutcome(['ok', 'occupied', 'unreachable'])).to.equal('next');
    expect(depositOutcome(['quota', 'unreachable', 'unreachable'])).to.equal('failed');
  });

  it('a slot that two holders accepted and one found occupied keeps the deposit: it is not made again', async () => {
    // Slot 0 races another member at one of its three holders; every later slot is free.
    const { content, stored } = fakeContent((n) => (n === 0 ? ['ok', 'occupied', 'ok'] : ['ok', 'ok', 'ok']));
    const { m } = member(content, Date.now);
    m.startEpoch();
    const r = await m.send(new TextEncoder().encode('hello'));
    // The sender key went to slot 0 (kept there), the message to slot 1: two deposits, not three.
    expect(r.slot).to.equal(1);
    expect(stored).to.have.length(2);
    m.close();
  });

  it('refuses an epoch that started more than MAX_GROUP_EPOCH_DAYS ago, or after tomorrow', () => {
    const { content } = fakeContent(() => ['ok']);
    const now = Date.now();
    const { m, admin, group } = member(content, () => now);
    const today = mailboxEpochAt(now);
    const epoch = (d: number): Uint8Array => encodeGroupEpoch({ kind: 'epoch', group, q: 0, r: 0, d, es: crypto().random(32) });
    expectCode(() => m.takeEpoch(admin.publicKey, epoch(today - MAX_GROUP_EPOCH_DAYS - 100)), 'ERR_LIMIT');
    expectCode(() => m.takeEpoch(admin.publicKey, epoch(today + 2)), 'ERR_SCHEMA');
    expect(m.takeEpoch(admin.publicKey, epoch(today - MAX_GROUP_EPOCH_DAYS))).to.equal(true);
    m.close();
  });

  it('collecting from an epoch whose days ran out reports it and drops it, and does not throw', async () => {
    const { content } = fakeContent(() => ['ok']);
    let now = Date.now();
    const { m } = member(content, () => now);
    m.startEpoch();
    now += (MAX_GROUP_EPOCH_DAYS + 3) * DAY_MS;
    const errors: AlliumError[] = [];
    expect(await m.collect((e) => errors.push(e))).to.deep.equal([]);
    expect(errors.map((e) => e.message)).to.have.length(1);
    expect(errors[0]!.code).to.equal('ERR_LIMIT');
    expect(m.epoch).to.equal(0);
    // Nothing to send under until an admin starts the next epoch.
    const refused = await m.send(new Uint8Array(1)).then(
      () => '',
      (e: AlliumError) => e.code,
    );
    expect(refused).to.equal('ERR_GROUP_MEMBERSHIP');
    // A second pass has nothing left to read, nor to report.
    expect(await m.collect((e) => errors.push(e))).to.deep.equal([]);
    expect(errors).to.have.length(1);
    m.close();
  });
});
