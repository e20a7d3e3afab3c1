/**
 * Groups over an in-memory pairwise transport (specs/messaging.md §13.4): every member gets every message once,
 * removal, late joiners, leaving, key updates, admin rules, and messages that overtake their sender key. The same
 * with relay processes and real Messengers: test/integration/messaging-groups.test.ts.
 */
import { expect } from 'chai';
import { encodeGroupEnvelope, signRoster } from '../../protocol/group-messages.js';
import type { AlliumError } from '../../protocol/errors.js';
import { groupNetwork, type GroupNode } from '../helpers/group-network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

type Node = GroupNode;
const network = groupNetwork;

describe('groups (client/messaging/groups.ts, specs/messaging.md §13.4)', () => {
  it('five members: every member receives every other member’s messages exactly once', async () => {
    const { nodes } = network(5);
    const [a, ...rest] = nodes as [Node, ...Node[]];
    const g = await a.groups.create(
      'five',
      rest.map((x) => x.address),
    );
    for (const x of nodes) {
      const mine = x.groups.get(g.id)!;
      expect(mine.members).to.have.length(5);
      for (let k = 0; k < 3; k++) await mine.send(enc(`${x.address.slice(0, 6)} ${k}`));
    }
    for (const x of nodes) {
      expect(x.got).to.have.length(4 * 3);
      expect(new Set(x.got.map((m) => `${m.from} ${m.generation}:${m.index}`)).size).to.equal(12);
      expect(x.got.every((m) => m.from !== x.address)).to.equal(true);
      expect(x.errors).to.deep.equal([]);
    }
  });

  it('a copy of a message (live and mailbox) is delivered once', async () => {
    const { nodes } = network(2);
    const [a, b] = nodes as [Node, Node];
    const g = await a.groups.create('pair', [b.address]);
    await g.send(enc('once'));
    const last = b.inbox[b.inbox.length - 1]!;
    await b.groups.receive(a.address, last);
    await b.groups.receive(a.address, last);
    expect(b.got.map((m) => dec(m.data))).to.deep.equal(['once']);
  });

  it('a removed member gets no key and no message after the removal; the others rotate', async () => {
    const { nodes } = network(4);
    const [a, b, c, d] = nodes as [Node, Node, Node, Node];
    const g = await a.groups.create('four', [b.address, c.address, d.address]);
    await b.groups.get(g.id)!.send(enc('before'));
    expect(d.got.map((m) => dec(m.data))).to.deep.equal(['before']);
    await g.remove(d.address);
    expect(d.groups.get(g.id)!.isActive).to.equal(false);
    expect(d.events.some(([e, x]) => e === 'group:member-removed' && (x as { member: string }).member === d.address)).to.equal(true);
    const seen = d.inbox.length;
    for (const x of [a, b, c]) expect(x.groups.get(g.id)!.generation).to.equal(1);
    await b.groups.get(g.id)!.send(enc('after'));
    await a.groups.get(g.id)!.send(enc('after too'));
    expect(d.inbox.length).to.equal(seen); // nothing at all reaches it
    expect(d.got.map((m) => dec(m.data))).to.deep.equal(['before']);
    expect(c.got.map((m) => dec(m.data))).to.deep.equal(['before', 'after', 'after too']);
    // Even handed the later ciphertext by someone, the removed member has nothing to read it with.
    await d.groups.receive(b.address, c.inbox[c.inbox.length - 2]!);
    expect(d.got).to.have.length(1);
  });

  it('a member added later reads later messages, not earlier ones', async () => {
    const { nodes } = network(4);
    const [a, b, c, late] = nodes as [Node, Node, Node, Node];
    const g = await a.groups.create('three', [b.address, c.address]);
    await b.groups.get(g.id)!.send(enc('early'));
    const early = c.inbox[c.inbox.length - 1]!; // b's message envelope, as c got it
    await g.add(late.address);
    expect(late.events[0]).to.deep.equal(['group:member-added', { group: g.id, member: late.address, by: a.address }]);
    await b.groups.get(g.id)!.send(enc('late'));
    await late.groups.get(g.id)!.send(enc('hello'));
    expect(late.got.map((m) => dec(m.data))).to.deep.equal(['late']);
    // The early message, handed to the newcomer, is below its copy of b's chain: nothing to read it with.
    await late.groups.receive(b.address, early);
    expect(late.got.map((m) => dec(m.data))).to.deep.equal(['late']);
    expect(a.got.map((m) => dec(m.data))).to.deep.equal(['early', 'late', 'hello']);
  });

  it('leave: the others drop the member and rotate; updateKey reaches every member', async () => {
    const { nodes } = network(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const g = await a.groups.create('three', [b.address, c.address]);
    await c.groups.get(g.id)!.leave();
    expect(g.members).to.deep.equal([a.address, b.address]);
    expect(b.groups.get(g.id)!.generation).to.equal(1);
    await g.updateKey();
    expect(
      b.events
        .filter(([e, x]) => e === 'group:key-updated' && (x as { member: string }).member === a.address)
        .map(([, x]) => (x as { generation: number }).generation),
    ).to.deep.equal([1, 2]);
    const before = c.inbox.length;
    await g.send(enc('two of us'));
    expect(c.inbox.length).to.equal(before);
    expect(b.got.map((m) => dec(m.data))).to.deep.equal(['two of us']);
  });

  it('only admins change members; a roster signed by a non-admin is refused', async () => {
    const { nodes } = network(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const g = await a.groups.create('admins', [b.address]);
    const bg = b.groups.get(g.id)!;
    let code = '';
    await bg.add(c.address).catch((e: AlliumError) => (code = e.code));
    expect(code).to.equal('ERR_GROUP_MEMBERSHIP');
    const forged = signRoster(
      { group: g.idBytes, r: 5, name: 'admins', members: [b.identity.publicKey], admins: [0], by: b.identity.publicKey },
      b.identity.secretKey,
    );
    await a.groups.receive(b.address, encodeGroupEnvelope(forged));
    expect(a.errors.map((e) => e.code)).to.deep.equal(['ERR_GROUP_MEMBERSHIP']);
    expect(g.members).to.have.length(2);
    await g.setAdmin(b.address, true);
    expect(bg.admins).to.deep.equal([a.address, b.address]);
    await bg.add(c.address);
    expect(g.members).to.deep.equal([a.address, b.address, c.address]);
  });

  it('a message that overtakes its sender key is held until the key comes', async () => {
    const { nodes, hold } = network(2);
    const [a, b] = nodes as [Node, Node];
    hold.set(b.address, []);
    const g = await a.groups.create('pair', [b.address]);
    await g.send(enc('first'));
    await g.send(enc('second'));
    const queued = hold.get(b.address)!;
    hold.delete(b.address);
    // Roster first (it creates the group at b), then the messages, then the sender key last.
    const [roster, key, ...messages] = queued;
    await roster!();
    for (const m of messages) await m();
    expect(b.got).to.have.length(0);
    await key!();
    expect(b.got.map((m) => dec(m.data))).to.deep.equal(['first', 'second']);
  });

  it('a sender key that comes before the roster adding us is kept until we join', async () => {
    const { nodes, hold } = network(2);
    const [a, b] = nodes as [Node, Node];
    hold.set(b.address, []);
    const g = await a.groups.create('pair', [b.address]);
    await g.send(enc('hi'));
    const [roster, key, message] = hold.get(b.address)!;
    hold.delete(b.address);
    await key!();
    await message!();
    expect(b.errors).to.deep.equal([]);
    await roster!();
    expect(b.got.map((m) => dec(m.data))).to.deep.equal(['hi']);
  });
});
