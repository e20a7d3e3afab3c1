/**
 * Groups with relay processes (specs/messaging.md §13): real Messengers, each listening at its own address, form a
 * group over their pairwise sessions; every member receives every other member's message exactly once; a removed
 * member receives nothing it can decrypt afterwards; a member added later does not read earlier messages.
 *
 * Members: ALLIUM_GROUP_MEMBERS (default 5). Every pair of members builds a conversation (a rendezvous each way
 * until one authenticates), so the cost grows with the square of the group on a shared 2-core machine; 50 is
 * measured by hand.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { Messenger, type GroupIncoming } from '../../client/messaging/node.js';
import type { Groups } from '../../client/messaging/groups.js';
import { createIdentity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const N = Number(process.env['ALLIUM_GROUP_MEMBERS'] ?? 5);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('messaging: groups (relay processes)', function () {
  this.timeout(900_000);
  let net: TestNetwork;
  const clients: AlliumClient[] = [];
  const members: Messenger[] = [];
  const got = new Map<Messenger, GroupIncoming[]>();
  /** Group envelopes each messenger received, in order. */
  const envelopes = new Map<Messenger, Uint8Array[]>();
  let late: Messenger;

  function messenger(client: AlliumClient): Messenger {
    const m = new Messenger(client, createIdentity(), { offline: { collect: false } });
    got.set(m, []);
    envelopes.set(m, []);
    m.on('group:message', (x) => got.get(m)!.push(x));
    const table = (m as unknown as { groupTable: Groups }).groupTable;
    const receive = table.receive.bind(table);
    table.receive = (from, bytes, o) => {
      envelopes.get(m)!.push(bytes);
      return receive(from, bytes, o);
    };
    return m;
  }

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    for (const entry of [
      [fps[1]!, fps[2]!],
      [fps[3]!, fps[4]!],
    ]) {
      const c = new AlliumClient({
        bootstrap: [net.bootstrap],
        socketFactory: nodeSocketFactory,
        enforceDistinctSubnets: false,
        poolSize: 0,
        entryRelays: entry,
      });
      await c.start();
      clients.push(c);
    }
    for (let i = 0; i < N; i++) members.push(messenger(clients[i % 2]!));
    late = messenger(clients[0]!);
    await Promise.all([...members, late].map((m) => m.startListening()));
  });

  after(async () => {
    try {
      for (const m of [...members, late]) m?.close();
      for (const c of clients) await c.stop();
    } finally {
      await net?.stop();
    }
  });

  let groupId = '';

  it(`${N} members: every member receives every other member's message exactly once`, async () => {
    const t0 = Date.now();
    const admin = members[0]!;
    const group = await admin.createGroup(
      'allotment',
      members.slice(1).map((m) => m.address),
    );
    groupId = group.id;
    await waitFor(() => members.every((m) => m.group(groupId) !== undefined), 300_000, 'every member joined');
    const reports = await Promise.all(members.map((m, i) => m.group(groupId)!.send(enc(`hello from ${i}`))));
    for (const r of reports) expect(r.failed.map((f) => f.error.code)).to.deep.equal([]);
    await waitFor(
      () => members.every((m) => got.get(m)!.length >= N - 1),
      300_000,
      () => `messages: ${members.map((m) => got.get(m)!.length).join(',')}`,
    );
    for (const [i, m] of members.entries()) {
      const texts = got
        .get(m)!
        .map((x) => dec(x.data))
        .sort();
      expect(texts).to.deep.equal(
        members
          .map((_, j) => `hello from ${j}`)
          .filter((t) => t !== `hello from ${i}`)
          .sort(),
      );
    }
    console.log(`      ${N} members: group formed and ${N} messages delivered to all in ${Date.now() - t0} ms`);
  });

  it('a removed member receives nothing it can decrypt after the removal', async () => {
    const admin = members[0]!;
    const removed = members[N - 1]!;
    const rest = members.slice(0, N - 1);
    await admin.group(groupId)!.remove(removed.address);
    await waitFor(() => removed.group(groupId)!.isActive === false, 120_000, 'the removed member saw its removal');
    await waitFor(() => rest.every((m) => m.group(groupId)!.generation >= 1), 120_000, 'every remaining member rotated');
    const seen = envelopes.get(removed)!.length;
    const before = got.get(removed)!.length;
    const sender = rest[1]!;
    await sender.group(groupId)!.send(enc('after the removal'));
    await waitFor(
      () => rest.filter((m) => m !== sender).every((m) => got.get(m)!.some((x) => dec(x.data) === 'after the removal')),
      120_000,
      'the rest got it',
    );
    expect(got.get(removed)!.length).to.equal(before);
    // Nothing of the group reached it after the removal: no message, no sender key of a new generation.
    const after = envelopes
      .get(removed)!
      .slice(seen)
      .map((b) => decodeGroupEnvelope(b));
    expect(after.filter((e) => toHex(e.group) === groupId && e.kind !== 'roster')).to.deep.equal([]);
  });

  it('a member added later reads later messages and none sent before it joined', async () => {
    const admin = members[0]!;
    const rest = members.slice(0, N - 1);
    await admin.group(groupId)!.add(late.address);
    await waitFor(() => late.group(groupId) !== undefined, 120_000, 'the newcomer joined');
    await rest[1]!.group(groupId)!.send(enc('welcome'));
    await waitFor(() => got.get(late)!.length >= 1, 120_000, 'the newcomer got a message');
    expect(got.get(late)!.map((x) => dec(x.data))).to.deep.equal(['welcome']);
    // The earlier message envelopes, handed to the newcomer, open nothing.
    for (const b of envelopes.get(rest[2]!)!) await (late as unknown as { groupTable: Groups }).groupTable.receive(rest[1]!.address, b);
    expect(got.get(late)!.map((x) => dec(x.data))).to.deep.equal(['welcome']);
  });
});
