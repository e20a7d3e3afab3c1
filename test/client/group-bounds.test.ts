/**
 * What other identities can make a messenger's groups hold (specs/messaging.md §13.2–§13.4, specs/limits.md), with
 * the default limits: an inviter puts us in at most MAX_GROUPS_PER_INVITER groups; skipped sender keys are bounded
 * per group (MAX_GROUP_SKIPPED_PER_GROUP) and in all groups (MAX_GROUP_SKIPPED), paid by the chain holding the most;
 * messages held for a missing key are bounded in all groups (MAX_GROUP_PENDING_TOTAL). The attacker here is a
 * contact with a few identities of its own, each a member of the groups it makes and able to send as itself.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { encodeGroupEnvelope, signRoster, type Roster } from '../../protocol/group-messages.js';
import { kdfGroupChain, MAX_GROUP_SKIP, OwnSenderKey } from '../../protocol/sender-key.js';
import type { AlliumError } from '../../protocol/errors.js';
import * as groups from '../../client/messaging/groups.js';
import type { Group } from '../../client/messaging/groups.js';
import { groupNetwork, type GroupNode } from '../helpers/group-network.js';

// The defaults of specs/limits.md (the table's constants are checked against them below).
const MAX_GROUPS_PER_INVITER = 32;
const MAX_GROUP_SKIPPED_PER_GROUP = 2000;
const MAX_GROUP_SKIPPED = 20_000;
const MAX_GROUP_PENDING = 256;
const MAX_GROUP_PENDING_TOTAL = 1024;

/** Skipped keys a group holds, read from its chains (works whatever bookkeeping the table has). */
function skippedIn(g: Group): number {
  let n = 0;
  for (const c of (g as unknown as { chains: Map<string, { skippedKeys: number }> }).chains.values()) n += c.skippedKeys;
  return n;
}
const heldIn = (g: Group): number => (g as unknown as { pending: unknown[] }).pending.length;

/** A roster of `members` signed by `admin` (index 0), inviting them. */
function roster(admin: Identity, members: Uint8Array[]): Roster {
  return signRoster(
    { group: crypto().random(32), r: 0, name: 'spam', members: [admin.publicKey, ...members], admins: [0], by: admin.publicKey },
    admin.secretKey,
  );
}

/**
 * Envelopes from `sender` making the victim skip MAX_GROUP_SKIP keys: its sender key of generation `e` at index 0,
 * then message MAX_GROUP_SKIP under it.
 */
function skipAhead(group: Uint8Array, sender: Identity, e = 0): Uint8Array[] {
  const signingSeed = crypto().random(32);
  const start = OwnSenderKey.fromParts({ ck: crypto().random(32), signingSeed, e });
  const dist = start.distribution(group);
  let ck = dist.ck;
  for (let i = 0; i < MAX_GROUP_SKIP; i++) ck = kdfGroupChain(ck)[0];
  const far = OwnSenderKey.fromParts({ ck, signingSeed, e, n: MAX_GROUP_SKIP });
  return [encodeGroupEnvelope(dist), encodeGroupEnvelope(far.encrypt(group, sender.publicKey, new Uint8Array(1)))];
}

describe('groups: what peers can make us hold (specs/limits.md, messaging groups)', function () {
  this.timeout(60_000);

  it('the table’s defaults are those of specs/limits.md', () => {
    const g = groups as unknown as Record<string, unknown>;
    expect([
      g['MAX_GROUPS_PER_INVITER'],
      g['MAX_GROUP_SKIPPED_PER_GROUP'],
      g['MAX_GROUP_SKIPPED'],
      g['MAX_GROUP_PENDING'],
      g['MAX_GROUP_PENDING_TOTAL'],
    ]).to.deep.equal([MAX_GROUPS_PER_INVITER, MAX_GROUP_SKIPPED_PER_GROUP, MAX_GROUP_SKIPPED, MAX_GROUP_PENDING, MAX_GROUP_PENDING_TOTAL]);
  });

  it(`one inviter puts us in at most MAX_GROUPS_PER_INVITER (${MAX_GROUPS_PER_INVITER}) groups; leaving one makes room`, async () => {
    const { nodes } = groupNetwork(3);
    const [victim, attacker, friend] = nodes as [GroupNode, GroupNode, GroupNode];
    for (let i = 0; i < MAX_GROUPS_PER_INVITER + 8; i++) await attacker.groups.create(`spam ${i}`, [victim.address]);
    const joined = victim.groups.list().filter((g) => g.isActive);
    console.log(`      invitations from one identity: ${MAX_GROUPS_PER_INVITER + 8}, groups joined: ${joined.length}`);
    expect(joined).to.have.length(MAX_GROUPS_PER_INVITER);
    const refused = victim.errors.filter((e) => (e as AlliumError & { limit?: string }).limit === 'MAX_GROUPS_PER_INVITER');
    expect(refused).to.have.length(8);
    expect(refused.every((e) => e.code === 'ERR_LIMIT')).to.equal(true);
    // Another inviter is not held back by the first one's groups.
    await friend.groups.create('allotment', [victim.address]);
    expect(victim.groups.list().filter((g) => g.isActive)).to.have.length(MAX_GROUPS_PER_INVITER + 1);
    await joined[0]!.leave();
    await attacker.groups.create('one more', [victim.address]);
    expect(victim.groups.list().filter((g) => g.isActive)).to.have.length(MAX_GROUPS_PER_INVITER + 1);
  });

  it(`skipped keys: at most MAX_GROUP_SKIPPED_PER_GROUP (${MAX_GROUP_SKIPPED_PER_GROUP}) per group and MAX_GROUP_SKIPPED (${MAX_GROUP_SKIPPED}) in all, the largest holder paying`, async () => {
    const { nodes } = groupNetwork(5);
    const [victim, attacker, ...sybils] = nodes as [GroupNode, GroupNode, ...GroupNode[]];
    const groups = Math.ceil(MAX_GROUP_SKIPPED / MAX_GROUP_SKIPPED_PER_GROUP) + 2;
    for (let i = 0; i < groups; i++) {
      const r = roster(attacker.identity, [victim.identity.publicKey, ...sybils.map((s) => s.identity.publicKey)]);
      await victim.groups.receive(attacker.address, encodeGroupEnvelope(r));
      for (const s of sybils) for (const bytes of skipAhead(r.group, s.identity)) await victim.groups.receive(s.address, bytes);
    }
    const perGroup = victim.groups.list().map(skippedIn);
    const total = perGroup.reduce((x, y) => x + y, 0);
    console.log(
      `      ${groups} groups × ${sybils.length} members skipping ${MAX_GROUP_SKIP}: skipped keys held per group ${Math.max(...perGroup)}, in all ${total}`,
    );
    expect(victim.groups.list()).to.have.length(groups);
    expect(Math.max(...perGroup)).to.be.at.most(MAX_GROUP_SKIPPED_PER_GROUP);
    expect(total).to.be.at.most(MAX_GROUP_SKIPPED);
    expect(victim.groups.skippedKeys).to.equal(total);
  });

  it('a member holding a few skipped keys keeps them while other members fill the group', async () => {
    const { nodes, hold } = groupNetwork(6);
    const [victim, admin, honest, ...sybils] = nodes as [GroupNode, GroupNode, GroupNode, ...GroupNode[]];
    const g = await admin.groups.create('allotment', [victim.address, honest.address, ...sybils.map((s) => s.address)]);
    const hg = honest.groups.get(g.id)!;
    await hg.send(new TextEncoder().encode('warm-up'));
    hold.set(victim.address, []);
    await hg.send(new TextEncoder().encode('zero'));
    await hg.send(new TextEncoder().encode('one'));
    const [zero, one] = hold.get(victim.address)!.slice(-2) as [() => Promise<void>, () => Promise<void>];
    hold.delete(victim.address);
    await one(); // 'zero' is late: the victim keeps its key
    expect(victim.groups.get(g.id)!.skippedKeys).to.equal(1);
    // Members of the group already: they skip ahead in a new generation of their own.
    for (const s of sybils) for (const bytes of skipAhead(g.idBytes, s.identity, 1)) await victim.groups.receive(s.address, bytes);
    expect(victim.groups.get(g.id)!.skippedKeys).to.equal(MAX_GROUP_SKIPPED_PER_GROUP);
    await zero();
    expect(victim.got.filter((m) => m.from === honest.address).map((m) => new TextDecoder().decode(m.data))).to.deep.equal(['warm-up', 'one', 'zero']);
  });

  it(`held messages: at most MAX_GROUP_PENDING_TOTAL (${MAX_GROUP_PENDING_TOTAL}) in all groups`, async () => {
    const { nodes } = groupNetwork(2);
    const [victim, attacker] = nodes as [GroupNode, GroupNode];
    const groups = Math.ceil(MAX_GROUP_PENDING_TOTAL / MAX_GROUP_PENDING) + 2;
    const sig = new Uint8Array(64);
    for (let i = 0; i < groups; i++) {
      const r = roster(attacker.identity, [victim.identity.publicKey]);
      await victim.groups.receive(attacker.address, encodeGroupEnvelope(r));
      // Messages of a generation whose key never comes: each is held (up to 27 KiB each).
      for (let n = 0; n < MAX_GROUP_PENDING; n++) {
        const m = encodeGroupEnvelope({ kind: 'message', group: r.group, e: 7, n, ct: new Uint8Array(1024), sig });
        await victim.groups.receive(attacker.address, m);
      }
    }
    const held = victim.groups.list().map(heldIn);
    const total = held.reduce((x, y) => x + y, 0);
    console.log(`      ${groups} groups × ${MAX_GROUP_PENDING} messages without a key: held in all ${total}`);
    expect(total).to.be.at.most(MAX_GROUP_PENDING_TOTAL);
    expect(victim.errors.some((e) => (e as AlliumError & { limit?: string }).limit === 'MAX_GROUP_PENDING_TOTAL')).to.equal(true);
  });
});
