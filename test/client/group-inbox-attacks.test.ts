/**
 * Version 2 groups (specs/messaging.md §13.9) against a member or a holder that misbehaves, over the in-memory pairwise
 * transport and an in-memory stand-in for the content store's mailbox slots: what one of them can make a member lose,
 * and that the member keeps its store, its messages and its epochs.
 */
import { expect } from 'chai';
import type { ContentClient } from '../../client/content.js';
import { groupStoreKey, memoryGroupStorage, openGroupRecord, openOrphans, ORPHANS_RECORD, sealGroupRecord } from '../../client/messaging/group-store.js';
import type { Group } from '../../client/messaging/groups.js';
import { crypto } from '../../crypto/index.js';
import { fromHex, toHex } from '../../protocol/bytes.js';
import { encodeGroupEpoch, encodeGroupEpochRequest, GROUP_EPOCH_ASK_MS, isGroupEpochEnvelope } from '../../protocol/group-inbox.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { mailboxEpochAt } from '../../protocol/mailbox.js';
import { groupNetwork, type GroupNetwork, type GroupNode } from '../helpers/group-network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * Mailbox slots in memory, as test/client/group-inbox-delivery.test.ts, each slot at three holders that agree; `down`
 * makes every holder unreachable; `lying` makes one of the three answer every fetch with junk of its own (and every
 * store of a slot it has no item for with `occupied`).
 */
interface Slots {
  content: ContentClient;
  down: boolean;
  lying: boolean;
  slots: Map<string, Uint8Array>;
}
function memorySlots(): Slots {
  const slots = new Map<string, Uint8Array>();
  const junk = crypto().random(600);
  const s: Slots = {
    down: false,
    lying: false,
    slots,
    content: {
      storeAll: (_kind: string, rk: Uint8Array, bytes: Uint8Array) => {
        if (s.down) return Promise.resolve([]);
        const have = slots.get(toHex(rk));
        if (!have) slots.set(toHex(rk), Uint8Array.from(bytes));
        const answer = have ? (toHex(have) === toHex(bytes) ? 'exists' : 'occupied') : 'ok';
        return Promise.resolve([s.lying ? 'occupied' : answer, answer, answer]);
      },
      fetchAnswers: (_kind: string, rk: Uint8Array) => {
        if (s.down) return Promise.resolve({ copies: [], answered: 0 });
        const have = slots.get(toHex(rk));
        const honest = have ? [Uint8Array.from(have), Uint8Array.from(have)] : [];
        if (s.lying) return Promise.resolve({ copies: [Uint8Array.from(junk), ...honest], answered: 3 });
        return Promise.resolve({ copies: have ? [...honest, Uint8Array.from(have)] : [], answered: 3 });
      },
      // As fetchAnswers: an unreachable holder is left out.
      fetchFromAll: (_kind: string, rk: Uint8Array) => s.content.fetchAnswers('mailbox', rk).then((a) => a.copies),
      session: () => ({ close: () => {} }),
      close: () => {},
    } as unknown as ContentClient,
  };
  return s;
}

interface Setup {
  net: GroupNetwork;
  slots: ReturnType<typeof memorySlots>;
  group: Group;
  now: { t: number };
}

/** `n` members; the first creates a version 2 group of all of them and makes the second an admin too. */
async function setup(n = 3, epochWaitMs?: number, epochCheckMs?: number): Promise<Setup> {
  const slots = memorySlots();
  const now = { t: Date.now() };
  const storages = Array.from({ length: n }, () => memoryGroupStorage());
  const net = groupNetwork(n, (i) => ({
    storage: storages[i]!,
    inbox: { content: slots.content, now: () => now.t, ...(epochWaitMs ? { epochWaitMs } : {}), ...(epochCheckMs ? { epochCheckMs } : {}) },
  }));
  const [a, ...rest] = net.nodes;
  const group = await a!.groups.create(
    'g',
    rest.map((x) => x.address),
    { delivery: 'inbox' },
  );
  await group.setAdmin(rest[0]!.address, true);
  await a!.groups.settled();
  return { net, slots, group, now };
}

const texts = (n: GroupNode, id: string): string[] => n.got.filter((m) => m.group === id).map((m) => dec(m.data));

/** An epoch envelope for `group` as an admin would send it. */
const epochFor = (group: Group, q: number, r = group.revision): Uint8Array =>
  encodeGroupEpoch({ kind: 'epoch', group: fromHex(group.id), q, r, d: mailboxEpochAt(Date.now()), es: crypto().random(32) });

describe('group inbox against misbehaving members and holders (specs/messaging.md §13.9)', () => {
  it('an admin sending an epoch 2^32 − 1: refused, the store still reads back, the next real epoch is taken', async () => {
    const { net, group } = await setup();
    const [a, b, c] = net.nodes;
    const q = c!.groups.get(group.id)!.epoch;
    await c!.groups.receive(b!.address, epochFor(group, 0xffffffff));
    expect(c!.errors.map((e) => e.message).join()).to.match(/MAX_GROUP_EPOCH_STEP/);
    expect(c!.groups.get(group.id)!.epoch).to.equal(q);
    net.restart(c!);
    expect((await c!.groups.load()).map((x) => x.id)).to.deep.equal([group.id]);
    await a!.groups.get(group.id)!.setAdmin(b!.address, false);
    expect(c!.groups.get(group.id)!.epoch).to.equal(q + 1);
  });

  it("a record holding epoch 2^32 − 1 (a newcomer's first may be) opens again", async () => {
    const { net, group } = await setup();
    const c = net.nodes[2]!;
    const key = groupStoreKey(c.identity);
    const stored = new Map(await c.options.storage!.load());
    const record = openGroupRecord(key, group.id, stored.get(group.id)!);
    const bumped = { ...record, inbox: { ...record.inbox!, q: 0xffffffff } };
    expect(openGroupRecord(key, group.id, sealGroupRecord(key, group.id, bumped)).inbox!.q).to.equal(0xffffffff);
  });

  it('two membership changes while a member is away: it still reads what was deposited under the epoch before both', async () => {
    const { net, group, now } = await setup();
    const [a, b, c] = net.nodes;
    const q = c!.groups.get(group.id)!.epoch;
    // c is away: what goes to it waits.
    net.hold.set(c!.address, []);
    await b!.groups.get(group.id)!.send(enc('under q'));
    await a!.groups.get(group.id)!.setAdmin(b!.address, false);
    await a!.groups.get(group.id)!.setAdmin(b!.address, true);
    const held = net.hold.get(c!.address)!;
    net.hold.delete(c!.address);
    for (const go of held) await go();
    expect(c!.groups.get(group.id)!.epoch).to.equal(q + 2);
    await c!.groups.collect();
    expect(texts(c!, group.id)).to.deep.equal(['under q']);
    // Read to its end by a pass begun late enough after it retired, epoch q goes; the store keeps two epochs again.
    now.t += 3_600_000;
    await c!.groups.collect();
    const record = openGroupRecord(groupStoreKey(c!.identity), group.id, new Map(await c!.options.storage!.load()).get(group.id)!);
    expect(record.inbox!.epochs.map((e) => e.q)).to.deep.equal([q + 1, q + 2]);
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a pass that no holder answers (circuits blocked over the end of a day) loses nothing of that day', async () => {
    const { net, group, slots, now } = await setup();
    const [, b, c] = net.nodes;
    await b!.groups.get(group.id)!.send(enc('before midnight'));
    // Every circuit fails for two days of passes: the day ends meanwhile.
    slots.down = true;
    for (let i = 0; i < 4; i++) {
      now.t += 12 * 3_600_000;
      await c!.groups.collect();
    }
    expect(texts(c!, group.id)).to.deep.equal([]);
    slots.down = false;
    await c!.groups.collect();
    expect(texts(c!, group.id)).to.deep.equal(['before midnight']);
    // Each blocked pass said so.
    expect(c!.errors.map((e) => e.code)).to.include('ERR_UNREACHABLE');
  });

  it('a holder answering free slots with junk does not move readers past a slot a writer then deposits in', async () => {
    const { net, group, slots } = await setup();
    const [, b, c] = net.nodes;
    await b!.groups.get(group.id)!.send(enc('one'));
    await c!.groups.collect();
    // One holder of every slot now answers with an item of its own that opens for no one.
    slots.lying = true;
    await c!.groups.collect();
    // A writer's deposit goes in the next slot (two of its three holders accept it).
    await b!.groups.get(group.id)!.send(enc('two'));
    await c!.groups.collect();
    expect(texts(c!, group.id)).to.deep.equal(['one', 'two']);
  });

  it("a removed admin's epoch with a higher q for the old roster does not shut out the next roster's epoch", async () => {
    const { net, group } = await setup();
    const [a, b, c] = net.nodes;
    const q = c!.groups.get(group.id)!.epoch;
    const r = group.revision;
    // a removes b; what goes to c waits, and meanwhile b hands c an epoch for the roster c still holds.
    net.hold.set(c!.address, []);
    await a!.groups.get(group.id)!.remove(b!.address);
    await c!.groups.receive(b!.address, epochFor(group, q + 5, r));
    expect(c!.groups.get(group.id)!.epoch).to.equal(q + 5);
    const held = net.hold.get(c!.address)!;
    net.hold.delete(c!.address);
    for (const go of held) await go();
    expect(c!.groups.get(group.id)!.epoch).to.equal(a!.groups.get(group.id)!.epoch);
    // c sends under the real epoch, and a reads it; b reads nothing.
    await c!.groups.get(group.id)!.send(enc('after the removal'));
    await a!.groups.collect();
    await b!.groups.collect();
    expect(texts(a!, group.id)).to.deep.equal(['after the removal']);
    expect(texts(b!, group.id)).to.deep.equal([]);
    // A restart keeps the order.
    net.restart(c!);
    await c!.groups.load();
    expect(c!.groups.get(group.id)!.epoch).to.equal(a!.groups.get(group.id)!.epoch);
  });

  it('an epoch handover that fails is kept by the admin (across a restart) and tried again on its next pass', async () => {
    const { net, group } = await setup();
    const [a, b, c] = net.nodes;
    // c gets the new roster but not its epoch.
    net.failing.set(c!.address, (env) => isGroupEpochEnvelope(env));
    await a!.groups.get(group.id)!.setAdmin(b!.address, false);
    const q = a!.groups.get(group.id)!.epoch;
    expect(c!.groups.get(group.id)!.revision).to.equal(a!.groups.get(group.id)!.revision);
    expect(c!.groups.get(group.id)!.epoch).to.equal(q - 1);
    await a!.groups.collect();
    await a!.groups.settled();
    expect(c!.groups.get(group.id)!.epoch).to.equal(q - 1);
    // The admin restarts, then its pass hands the epoch over once delivery works again.
    net.restart(a!);
    await a!.groups.load();
    net.failing.delete(c!.address);
    await a!.groups.collect();
    await a!.groups.settled();
    expect(c!.groups.get(group.id)!.epoch).to.equal(q);
    await c!.groups.get(group.id)!.send(enc('under the handed-over epoch'));
    await b!.groups.collect();
    expect(texts(b!, group.id)).to.deep.equal(['under the handed-over epoch']);
    // Delivered: nothing left to hand over, nothing kept.
    const record = openGroupRecord(groupStoreKey(a!.identity), group.id, new Map(await a!.options.storage!.load()).get(group.id)!);
    expect(record.handovers ?? []).to.deep.equal([]);
  });

  it('a send waiting for an epoch that does not come fails with ERR_TIMEOUT, and the next send is not held up by it', async () => {
    const { net, group } = await setup(3, 50);
    const [a, b, c] = net.nodes;
    net.failing.set(c!.address, (env) => isGroupEpochEnvelope(env));
    await a!.groups.get(group.id)!.setAdmin(b!.address, false);
    const g = c!.groups.get(group.id)!;
    const codes = await Promise.all(
      [g.send(enc('one')), g.send(enc('two'))].map((p) =>
        p.then(
          () => '',
          (e: { code: string }) => e.code,
        ),
      ),
    );
    expect(codes).to.deep.equal(['ERR_TIMEOUT', 'ERR_TIMEOUT']);
  });

  it('a member whose epoch handover was lost asks an admin for it and reads on; a removed member, or one asking again within a minute, gets nothing', async () => {
    const { net, group, now } = await setup();
    const [a, b, c] = net.nodes;
    // c takes the new roster; its epoch is lost after the admin counted it delivered (a mailbox item its holders dropped).
    const receive = c!.groups.receive.bind(c!.groups);
    let lost = 0;
    c!.groups.receive = (from, bytes, o) => (isGroupEpochEnvelope(bytes) && lost++ === 0 ? Promise.resolve() : receive(from, bytes, o));
    await a!.groups.get(group.id)!.setAdmin(b!.address, false);
    await a!.groups.settled();
    const ga = a!.groups.get(group.id)!;
    const gc = c!.groups.get(group.id)!;
    expect([lost, gc.revision, gc.epoch]).to.deep.equal([1, ga.revision, ga.epoch - 1]);
    // A pass right after the roster came asks nothing: the epoch is normally right behind it.
    const inboxBefore = a!.inbox.length;
    await c!.groups.collect();
    await c!.groups.settled();
    expect(a!.inbox.length).to.equal(inboxBefore);
    // Held a minute without its epoch: the next pass asks the roster's signer, which answers with the epoch.
    now.t += GROUP_EPOCH_ASK_MS;
    await c!.groups.collect();
    await c!.groups.settled();
    await a!.groups.settled();
    expect(gc.epoch).to.equal(ga.epoch);
    await gc.send(enc('from the member that asked'));
    await ga.send(enc('to the member that asked'));
    await b!.groups.collect();
    await c!.groups.collect();
    expect(texts(b!, group.id)).to.deep.equal(['from the member that asked', 'to the member that asked']);
    expect(texts(c!, group.id)).to.deep.equal(['to the member that asked']);
    // Asking again within the minute (even with a request below the epoch): refused, nothing sent.
    const toC = c!.inbox.length;
    const ask = (r: number, q: number): Uint8Array => encodeGroupEpochRequest({ kind: 'epoch-request', group: fromHex(group.id), r, q });
    await a!.groups.receive(c!.address, ask(ga.revision - 1, 0));
    await a!.groups.settled();
    expect(c!.inbox.length).to.equal(toC);
    expect(a!.errors.map((e) => e.message)).to.deep.equal(['GROUP_EPOCH_ASK_MS: an epoch request answered less than a minute ago']);
    // A removed member asking (its request as of the roster before its removal) gets nothing, whatever the minute.
    await ga.remove(b!.address);
    await a!.groups.settled();
    now.t += GROUP_EPOCH_ASK_MS;
    const toB = b!.inbox.length;
    await a!.groups.receive(b!.address, ask(ga.revision - 1, ga.epoch - 1));
    await a!.groups.settled();
    expect(b!.inbox.length).to.equal(toB);
    expect(a!.errors.slice(1).map((e) => e.code)).to.deep.equal(['ERR_GROUP_MEMBERSHIP']);
    // The removed member's own table does not ask (it is out of the group), and c, current, gets nothing new either.
    await b!.groups.collect();
    await a!.groups.receive(c!.address, ask(ga.revision, ga.epoch));
    await Promise.all([a!.groups.settled(), b!.groups.settled()]);
    expect([b!.inbox.length, a!.errors.length]).to.deep.equal([toB, 2]);
    expect(c!.errors).to.deep.equal([]);
  });

  it('a member that lost both a roster and its epoch finds out on its periodic check with an admin, and reads on', async () => {
    const checkMs = 5 * GROUP_EPOCH_ASK_MS;
    const { net, group, now } = await setup(3, undefined, checkMs);
    const [a, b, c] = net.nodes;
    const ga = a!.groups.get(group.id)!;
    const gc = c!.groups.get(group.id)!;
    const held = [gc.revision, gc.epoch];
    // The next change's roster and epoch are both lost on their way to c, after the admin counted them delivered.
    const receive = c!.groups.receive.bind(c!.groups);
    const kind = (bytes: Uint8Array): string => (isGroupEpochEnvelope(bytes) ? 'epoch' : decodeGroupEnvelope(bytes).kind);
    const lost: string[] = [];
    c!.groups.receive = (from, bytes, o) => (lost.length < 2 ? (lost.push(kind(bytes)), Promise.resolve()) : receive(from, bytes, o));
    await ga.setAdmin(b!.address, false);
    await a!.groups.settled();
    expect(lost).to.deep.equal(['roster', 'epoch']);
    expect([ga.revision, ga.epoch]).to.deep.equal([held[0]! + 1, held[1]! + 1]);
    // c holds the epoch of the roster it holds: nothing looks missing, so a minute later its pass asks nothing.
    const toA = a!.inbox.length;
    now.t += GROUP_EPOCH_ASK_MS;
    await c!.groups.collect();
    await c!.groups.settled();
    expect([gc.revision, gc.epoch, a!.inbox.length]).to.deep.equal([...held, toA]);
    // Its first pass once checkMs has gone by asks the roster's signer all the same, which answers with its roster
    // and epoch; c reads and deposits with the others again.
    now.t += checkMs;
    await c!.groups.collect();
    await c!.groups.settled();
    await a!.groups.settled();
    expect(a!.inbox.length).to.equal(toA + 1);
    expect([gc.revision, gc.epoch]).to.deep.equal([ga.revision, ga.epoch]);
    await gc.send(enc('from the member that was behind'));
    await ga.send(enc('to the member that was behind'));
    await b!.groups.collect();
    await c!.groups.collect();
    expect(texts(b!, group.id)).to.deep.equal(['from the member that was behind', 'to the member that was behind']);
    expect(texts(c!, group.id)).to.deep.equal(['to the member that was behind']);
    // Current members check again once checkMs has gone by, and not before: the admin answers neither (it answers
    // only a member below its own epoch).
    const quiet = async (): Promise<void> => {
      await Promise.all([b!.groups.collect(), c!.groups.collect()]);
      await Promise.all([b!.groups.settled(), c!.groups.settled()]);
      await a!.groups.settled();
    };
    await quiet(); // b's own first check may fall here, a checkMs after it joined
    const sent = { a: a!.inbox.length, b: b!.inbox.length, c: c!.inbox.length };
    now.t += checkMs;
    await quiet();
    expect([a!.inbox.length, b!.inbox.length, c!.inbox.length]).to.deep.equal([sent.a + 2, sent.b, sent.c]);
    now.t += checkMs / 2;
    await quiet();
    expect(a!.inbox.length).to.equal(sent.a + 2);
    expect([...a!.errors, ...b!.errors, ...c!.errors].map((e) => e.message)).to.deep.equal([]);
  });

  it('an epoch from an admin does not turn a version 1 group into a version 2 one', async () => {
    const slots = memorySlots();
    const net = groupNetwork(3, () => ({ storage: memoryGroupStorage(), inbox: { content: slots.content } }));
    const [a, b, c] = net.nodes;
    const group = await a!.groups.create('v1', [b!.address, c!.address]);
    await group.setAdmin(b!.address, true);
    await a!.groups.settled();
    await c!.groups.receive(b!.address, epochFor(group, 0));
    expect(c!.groups.get(group.id)!.delivery).to.equal('pairwise');
    expect(c!.errors.map((e) => e.code)).to.deep.equal(['ERR_GROUP_MEMBERSHIP']);
    // It still carries its messages pairwise.
    await a!.groups.get(group.id)!.send(enc('pairwise still'));
    expect(texts(c!, group.id)).to.deep.equal(['pairwise still']);
  });

  it('an epoch for a group never joined is dropped (and its record with it) after a day', async () => {
    const { net, now } = await setup();
    const [, b, c] = net.nodes;
    const stray = encodeGroupEpoch({ kind: 'epoch', group: crypto().random(32), q: 0, r: 0, d: mailboxEpochAt(now.t), es: crypto().random(32) });
    await c!.groups.receive(b!.address, stray);
    const orphans = async (): Promise<number> => {
      const rec = new Map(await c!.options.storage!.load()).get(ORPHANS_RECORD);
      return rec ? openOrphans(groupStoreKey(c!.identity), rec).length : 0;
    };
    expect(await orphans()).to.equal(1);
    await c!.groups.collect();
    expect(await orphans()).to.equal(1);
    now.t += 25 * 3_600_000;
    // Kept across a restart with the time it came.
    net.restart(c!);
    await c!.groups.collect();
    expect(await orphans()).to.equal(0);
  });
});
