/**
 * Version 2 groups through the app API with relay processes (specs/messaging.md §13.9): real Messengers, each
 * listening at its own address; the admin's createGroup(…, { delivery: 'inbox' }) hands each member the roster and the
 * group's epoch over its pairwise session; every send is one deposit in the group inbox the relays hold; every member's
 * Messenger polls the inbox and emits each other member's message exactly once as 'group:message'. A member restarted
 * over its group storage reads on and emits nothing twice; a removed member gets no new epoch and reads nothing sent
 * after its removal. A member whose epoch handover was lost asks the admin for it and reads on; the removed member
 * asking gets nothing.
 *
 * Members: ALLIUM_GROUP_INBOX_APP_MEMBERS (default 5). Unlike version 1 (messaging-groups.test.ts), only the admin
 * opens pairwise sessions (k − 1), so the cost grows with the group, not its square.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { Messenger, type GroupIncoming } from '../../client/messaging/node.js';
import type { GroupHost, Groups } from '../../client/messaging/groups.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import { createIdentity, type Identity } from '../../protocol/address.js';
import type { AlliumError } from '../../protocol/errors.js';
import { encodeGroupEpochRequest, isGroupEpochEnvelope } from '../../protocol/group-inbox.js';
import { fromHex } from '../../protocol/bytes.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { startEntryClient } from '../helpers/content.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const N = Number(process.env['ALLIUM_GROUP_INBOX_APP_MEMBERS'] ?? 5);
/** How often each member reads the group inbox while listening. */
const POLL_MS = 1_500;
/** How long a member holds a roster without its epoch before it asks an admin for it. */
const ASK_MS = 3_000;
/** No conversation is given up for a missing acknowledgement during the test: a stall shows as a stall. */
const ACK_TIMEOUT_MS = 900_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('messaging: a version 2 group through the app API (relay processes)', function () {
  this.timeout(900_000);
  let net: TestNetwork;
  const clients: AlliumClient[] = [];
  const members: Messenger[] = [];
  const identities: Identity[] = [];
  /** Group messages each address emitted (across a restart of its messenger), as "sender:text". */
  const got = new Map<string, string[]>();
  /** Group envelopes each address received pairwise. */
  const envelopes = new Map<string, Uint8Array[]>();
  const errors: AlliumError[] = [];
  const storages = new Map<string, GroupStorage>();
  let groupId = '';
  const closed: Messenger[] = [];
  /** Epoch envelopes still to be lost on their way to an address (taken as delivered, never handed to the table). */
  const lose = new Map<string, number>();

  function messenger(client: AlliumClient, identity: Identity): Messenger {
    const storage = storages.get(toKey(identity)) ?? memoryGroupStorage();
    const m = new Messenger(client, identity, {
      offline: { collect: false },
      groupStorage: storage,
      groupInbox: { pollMs: POLL_MS, epochAskMs: ASK_MS },
      ackTimeoutMs: ACK_TIMEOUT_MS,
    });
    storages.set(toKey(identity), storage);
    if (!got.has(m.address)) got.set(m.address, []);
    if (!envelopes.has(m.address)) envelopes.set(m.address, []);
    m.on('group:message', (x: GroupIncoming) => got.get(m.address)!.push(`${x.from}:${dec(x.data)}`));
    m.on('endpoint:error', (e) => {
      // Circuits come and go on a loaded machine; what matters here is group state.
      if (e.code.startsWith('ERR_GROUP') || e.code === 'ERR_MESSAGE_AUTH' || e.code === 'ERR_SIGNATURE' || e.code === 'ERR_LIMIT') errors.push(e);
    });
    const table = (m as unknown as { groupTable: Groups }).groupTable;
    const receive = table.receive.bind(table);
    table.receive = (from, bytes, o) => {
      envelopes.get(m.address)!.push(Uint8Array.from(bytes)); // a copy: the table wipes an epoch it held once taken
      const n = lose.get(m.address) ?? 0;
      if (n > 0 && isGroupEpochEnvelope(bytes)) {
        lose.set(m.address, n - 1);
        return Promise.resolve();
      }
      return receive(from, bytes, o);
    };
    return m;
  }
  const toKey = (i: Identity): string => Buffer.from(i.publicKey).toString('hex');
  const mine = (m: Messenger): string[] => got.get(m.address)!;

  before(async () => {
    net = await startNetwork(6);
    // Two clients on disjoint entries (relays 1-2 and 3-4): the members they carry share no first hop.
    for (const entries of [
      [1, 2],
      [3, 4],
    ])
      clients.push(await startEntryClient(net, entries));
    for (let i = 0; i < N; i++) {
      identities.push(createIdentity());
      members.push(messenger(clients[i % 2]!, identities[i]!));
    }
    await Promise.all(members.map((m) => m.startListening()));
  });

  after(async () => {
    try {
      for (const m of [...members, ...closed]) m.close();
      for (const c of clients) await c.stop();
    } finally {
      await net?.stop();
    }
  });

  it(`${N} members: the epoch goes pairwise from the admin only; every member receives every message exactly once`, async () => {
    const t0 = Date.now();
    const admin = members[0]!;
    const group = await admin.createGroup(
      'allotment',
      members.slice(1).map((m) => m.address),
      { delivery: 'inbox' },
    );
    groupId = group.id;
    expect(group.delivery).to.equal('inbox');
    await waitFor(() => members.every((m) => m.group(groupId)?.epoch === 0), 300_000, 'every member took the epoch');
    await Promise.all(members.map((m) => (m as unknown as { groupTable: Groups }).groupTable.settled()));
    // Pairwise, each member got the epoch and the roster, nothing else: no sender key, no message. (The epoch shows
    // twice: held until the roster came, it is handed to the table again on joining.)
    const kind = (b: Uint8Array): string => (isGroupEpochEnvelope(b) ? 'epoch' : decodeGroupEnvelope(b).kind);
    for (const m of members.slice(1)) expect(envelopes.get(m.address)!.map(kind), m.address).to.deep.equal(['epoch', 'roster', 'epoch']);
    const formed = Date.now() - t0;
    const reports = [];
    for (const [i, m] of members.entries()) reports.push(await m.group(groupId)!.send(enc(`hello from ${i}`)));
    for (const r of reports) expect(r.inbox, 'deposited').to.not.equal(undefined);
    const expected = (i: number): string[] =>
      members
        .map((m, j) => `${m.address}:hello from ${j}`)
        .filter((_, j) => j !== i)
        .sort();
    await waitFor(
      () => members.every((m, i) => mine(m).length >= expected(i).length),
      300_000,
      () => `messages: ${members.map((m) => mine(m).length).join(',')}`,
    );
    // One more pass by everyone at once: nothing comes twice.
    await Promise.all(members.map((m) => m.checkGroups()));
    members.forEach((m, i) => expect([...mine(m)].sort(), `member ${i}`).to.deep.equal(expected(i)));
    expect(errors.map((e) => e.message)).to.deep.equal([]);
    console.log(`      ${N} members: group formed in ${formed} ms, ${N} messages delivered to all in ${Date.now() - t0 - formed} ms`);
  });

  it('a member restarted over its group storage reads on, and emits no message twice', async () => {
    const k = 2;
    const old = members[k]!;
    old.close();
    closed.push(old);
    const fresh = messenger(clients[k % 2]!, identities[k]!);
    members[k] = fresh;
    const groups = await fresh.loadGroups();
    expect(groups.map((g) => [g.id, g.delivery, g.epoch])).to.deep.equal([[groupId, 'inbox', 0]]);
    await fresh.startListening();
    const before = mine(fresh).length;
    await members[1]!.group(groupId)!.send(enc('after the restart'));
    await waitFor(() => mine(fresh).length > before, 300_000, 'the restarted member got the new message');
    await fresh.checkGroups();
    expect(mine(fresh).slice(before)).to.deep.equal([`${members[1]!.address}:after the restart`]);
    // And it sends again: its index goes on from the stored one (an index used twice would not open at the others).
    await fresh.group(groupId)!.send(enc('back again'));
    await waitFor(() => members.filter((m) => m !== fresh).every((m) => mine(m).includes(`${fresh.address}:back again`)), 300_000, 'everyone got it');
    expect(errors.map((e) => e.message)).to.deep.equal([]);
  });

  it('a removed member gets no new epoch and reads nothing sent after its removal; the others read it once', async () => {
    const admin = members[0]!;
    const removed = members[N - 1]!;
    const rest = members.slice(0, N - 1);
    const seen = envelopes.get(removed.address)!.length;
    await admin.group(groupId)!.remove(removed.address);
    await waitFor(() => removed.group(groupId)!.isActive === false, 120_000, 'the removed member saw its removal');
    await waitFor(() => rest.every((m) => m.group(groupId)!.epoch === 1), 120_000, 'every remaining member took the new epoch');
    const before = new Map(members.map((m) => [m, mine(m).length]));
    const sender = rest[1]!;
    await sender.group(groupId)!.send(enc('after the removal'));
    const want = `${sender.address}:after the removal`;
    await waitFor(() => rest.filter((m) => m !== sender).every((m) => mine(m).includes(want)), 300_000, 'the rest got it');
    await Promise.all(members.map((m) => m.checkGroups()));
    for (const m of rest.filter((m) => m !== sender)) expect(mine(m).slice(before.get(m)), m.address).to.deep.equal([want]);
    expect(mine(removed).slice(before.get(removed))).to.deep.equal([]);
    // Pairwise, the removed member got the roster that removed it, and no epoch.
    expect(envelopes.get(removed.address)!.slice(seen).filter(isGroupEpochEnvelope)).to.deep.equal([]);
    expect(errors.map((e) => e.message)).to.deep.equal([]);
  });

  it('a member whose epoch handover was lost asks the admin for it and reads later messages; the removed member asking gets nothing', async () => {
    const admin = members[0]!;
    const removed = members[N - 1]!;
    const rest = members.slice(0, N - 1);
    const victim = rest[2]!;
    const other = rest[1]!;
    const ga = admin.group(groupId)!;
    const removedAt = ga.revision;
    // The next change's epoch is lost on its way to the victim, after the admin counted it delivered.
    lose.set(victim.address, 1);
    await ga.setAdmin(other.address, true);
    const q = ga.epoch;
    await waitFor(() => rest.filter((m) => m !== victim).every((m) => m.group(groupId)!.epoch === q), 120_000, 'the others took the new epoch');
    await waitFor(() => victim.group(groupId)!.revision === ga.revision, 120_000, 'the victim took the new roster');
    expect([lose.get(victim.address), victim.group(groupId)!.epoch]).to.deep.equal([0, q - 1]);
    // Its send waits for the epoch, asks the admin once the roster has been held ASK_MS, and goes under the answer.
    const before = new Map(members.map((m) => [m, mine(m).length]));
    await victim.group(groupId)!.send(enc('after asking'));
    expect(victim.group(groupId)!.epoch).to.equal(q);
    const asked = `${victim.address}:after asking`;
    await waitFor(() => rest.filter((m) => m !== victim).every((m) => mine(m).includes(asked)), 300_000, 'the rest got the victim’s message');
    await other.group(groupId)!.send(enc('to everyone'));
    const told = `${other.address}:to everyone`;
    await waitFor(() => mine(victim).includes(told), 300_000, 'the victim read a later message');
    await Promise.all(rest.map((m) => m.checkGroups()));
    expect(mine(victim).slice(before.get(victim))).to.deep.equal([told]);
    for (const m of rest.filter((m) => m !== victim && m !== other))
      expect([...mine(m).slice(before.get(m))].sort(), m.address).to.deep.equal([asked, told].sort());
    expect(errors.map((e) => e.message)).to.deep.equal([]);
    // The removed member asks the admin for the epoch (as of the roster before its removal): refused, nothing sent.
    const seen = envelopes.get(removed.address)!.length;
    const host = (removed as unknown as { groupTable: { host: GroupHost } }).groupTable.host;
    const request = encodeGroupEpochRequest({ kind: 'epoch-request', group: fromHex(groupId), r: removedAt - 1, q: 0 });
    await host.sendEnvelope(admin.address, request, {});
    await waitFor(() => errors.length > 0, 60_000, 'the admin refused the request');
    await (admin as unknown as { groupTable: Groups }).groupTable.settled();
    expect(errors.map((e) => e.code)).to.deep.equal(['ERR_GROUP_MEMBERSHIP']);
    expect(envelopes.get(removed.address)!.slice(seen)).to.deep.equal([]);
    expect(mine(removed).slice(before.get(removed))).to.deep.equal([]);
  });
});
