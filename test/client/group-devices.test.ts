/**
 * Group members with linked devices over an in-memory pairwise transport (client/messaging/groups.ts, real crypto,
 * specs/messaging.md §13.8): a device sends for its person; members take it as the person's while the list they hold
 * names it, refuse it once it does not, and hold at most one chain per device listed, however many devices a member
 * links and unlinks. The same with relay processes and real device lists: test/integration/messaging-device-groups.test.ts.
 */
import { expect } from 'chai';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import type { AlliumError } from '../../protocol/errors.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { Groups, type GroupEvents, type GroupHost, type GroupIncoming } from '../../client/messaging/groups.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Node {
  identity: Identity;
  address: string;
  groups: Groups;
  got: GroupIncoming[];
  errors: AlliumError[];
}

/** `device` (hex) → person (hex) of the lists every node holds (one view for all: the lists are not under test here). */
type Lists = Map<string, string>;

/**
 * `lists`: what members hold (personOf); `claims`: whose device each device takes itself for (its own standing), the
 * same unless a test makes a device ignore its unlinking.
 */
function network(lists: Lists, claims: Lists = lists): { node: (person?: () => Node) => Node; byAddress: Map<string, Node> } {
  const byAddress = new Map<string, Node>();
  const devicesOf = (address: string): Node[] => {
    const k = toHex(byAddress.get(address)!.identity.publicKey);
    return [...byAddress.values()].filter((n) => toHex(n.identity.publicKey) === k || lists.get(toHex(n.identity.publicKey)) === k);
  };
  const node = (person?: () => Node): Node => {
    const identity = createIdentity();
    const n: Node = { identity, address: formatAddress(identity.publicKey), got: [], errors: [], groups: undefined as unknown as Groups };
    const host: GroupHost = {
      identity,
      member: () => {
        const p = person?.();
        const me = p && claims.get(toHex(identity.publicKey)) === toHex(p.identity.publicKey) ? p : n;
        const siblings = [...claims.values()].includes(toHex(me.identity.publicKey));
        return { key: me.identity.publicKey, sends: true, changes: me === n, siblings };
      },
      personOf: (device) => {
        const p = lists.get(toHex(device));
        return p === undefined ? undefined : [...byAddress.values()].find((x) => toHex(x.identity.publicKey) === p)?.identity.publicKey;
      },
      // To every device of the member's person (as Devices.toMember), ourselves excepted.
      sendEnvelope: async (to, envelope) => {
        for (const t of devicesOf(to)) {
          if (t === n) continue;
          await t.groups.receive(n.address, envelope);
          if (decodeGroupEnvelope(envelope).kind === 'roster') await t.groups.settled();
        }
        return { status: 'delivered' };
      },
      emit: <K extends keyof GroupEvents>(event: K, ...args: GroupEvents[K]) => {
        if (event === 'group:message') n.got.push(args[0] as GroupIncoming);
      },
      error: (e) => n.errors.push(e),
    };
    n.groups = new Groups(host);
    byAddress.set(n.address, n);
    return n;
  };
  return { node, byAddress };
}

describe('groups: a linked device sends for its person (specs/messaging.md §13.8)', () => {
  it('members take the device as the person while listed, refuse it once unlinked, and drop its chain', async () => {
    const lists: Lists = new Map();
    const claims: Lists = new Map();
    const { node } = network(lists, claims);
    const p: Node = node();
    const d = node(() => p);
    for (const l of [lists, claims]) l.set(toHex(d.identity.publicKey), toHex(p.identity.publicKey));
    const [m1, m2] = [node(), node()];
    const group = await p.groups.create('allotment', [m1.address, m2.address]);
    for (const n of [d, m1, m2]) expect(n.groups.get(group.id)?.members).to.deep.equal([p.address, m1.address, m2.address]);

    const r = await d.groups.get(group.id)!.send(enc('from the laptop'));
    expect(r.failed).to.deep.equal([]);
    for (const n of [p, m1, m2]) expect(n.got.map((m) => [m.from, m.device, dec(m.data)])).to.deep.equal([[p.address, d.address, 'from the laptop']]);
    await p.groups.get(group.id)!.send(enc('from the phone'));
    expect(d.got.map((m) => [m.from, m.device, dec(m.data)])).to.deep.equal([[p.address, undefined, 'from the phone']]);
    // The device does not change the group.
    for (const change of [() => d.groups.get(group.id)!.remove(m1.address), () => d.groups.get(group.id)!.leave(), () => d.groups.create('x', [m1.address])]) {
      expect(
        await change().then(
          () => 'done',
          (e: AlliumError) => e.code,
        ),
      ).to.equal('ERR_GROUP_MEMBERSHIP');
    }

    // Unlinked: the members' lists no longer name it; its chain goes, and what it sends is refused.
    const chains = (n: Node): number => n.groups.get(group.id)!.state().chains.length;
    expect(chains(m1)).to.equal(3); // p, d, m2
    lists.delete(toHex(d.identity.publicKey));
    for (const n of [p, m1, m2]) n.groups.devicesChanged(p.identity.publicKey);
    expect(chains(m1)).to.equal(2);
    const before = [p, m1, m2].map((n) => n.got.length);
    // The device still takes itself for the person's (it never took the list unlinking it) and sends on.
    await d.groups.get(group.id)!.send(enc('after the unlinking'));
    [p, m1, m2].forEach((n, i) => {
      expect(n.got.length).to.equal(before[i]);
      expect(n.errors.map((e) => e.code)).to.deep.equal(['ERR_GROUP_MEMBERSHIP']);
    });
    // Once it takes its unlinking, it sends nothing: it stands for no member.
    claims.delete(toHex(d.identity.publicKey));
    expect(
      await d.groups
        .get(group.id)!
        .send(enc('x'))
        .then(
          () => 'sent',
          (e: AlliumError) => e.code,
        ),
    ).to.equal('ERR_GROUP_MEMBERSHIP');
  });

  it('a member that links and unlinks devices again and again leaves one chain per listed device at the others', async () => {
    const lists: Lists = new Map();
    const { node } = network(lists);
    const p: Node = node();
    const m1 = node();
    const group = await p.groups.create('g', [m1.address]);
    for (let i = 0; i < 5; i++) {
      const d = node(() => p);
      lists.set(toHex(d.identity.publicKey), toHex(p.identity.publicKey));
      p.groups.devicesChanged(p.identity.publicKey);
      m1.groups.devicesChanged(p.identity.publicKey);
      // The new device joins on the next roster (here: an admin change to the same roster, re-sent by the primary).
      await p.groups.get(group.id)!.setAdmin(m1.address, i % 2 === 0);
      await d.groups.get(group.id)!.send(enc(`from device ${i}`));
      expect(m1.got.at(-1)!.device).to.equal(d.address);
      lists.delete(toHex(d.identity.publicKey));
      m1.groups.devicesChanged(p.identity.publicKey);
      expect(m1.groups.get(group.id)!.state().chains.length).to.be.at.most(1); // p's, when it has sent
    }
  });
});
