/**
 * Version 2 groups behind the Groups API (specs/messaging.md §13.9), over the in-memory pairwise transport and an
 * in-memory stand-in for the content store's mailbox slots: a group created with `delivery: 'inbox'` hands out its
 * epoch over the pairwise path, every send is one deposit, every member's pass emits each message once; a removal
 * starts a new epoch the removed member does not get; a member that leaves makes the first admin start one; a restart
 * over the group storage reads on and emits nothing twice. The same with relay processes and Messengers:
 * test/integration/group-inbox.test.ts.
 */
import { expect } from 'chai';
import type { ContentClient } from '../../client/content.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import type { Group } from '../../client/messaging/groups.js';
import { toHex } from '../../protocol/bytes.js';
import { isGroupEpochEnvelope } from '../../protocol/group-inbox.js';
import { groupNetwork, type GroupNetwork, type GroupNode } from '../helpers/group-network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Mailbox slots in memory: the first item stored in a slot keeps it (`occupied` for another, `exists` for itself).
 * `stores`: the slots taken. */
function memorySlots(): { content: ContentClient; stores: () => number } {
  const slots = new Map<string, Uint8Array>();
  const content = {
    storeAll: (_kind: string, rk: Uint8Array, bytes: Uint8Array) => {
      const have = slots.get(toHex(rk));
      if (!have) slots.set(toHex(rk), Uint8Array.from(bytes));
      return Promise.resolve([have ? (toHex(have) === toHex(bytes) ? 'exists' : 'occupied') : 'ok']);
    },
    fetchFromAll: (_kind: string, rk: Uint8Array) => {
      const have = slots.get(toHex(rk));
      return Promise.resolve(have ? [Uint8Array.from(have)] : []);
    },
    fetchAnswers: (_kind: string, rk: Uint8Array) => {
      const have = slots.get(toHex(rk));
      return Promise.resolve({ copies: have ? [Uint8Array.from(have)] : [], answered: 1 });
    },
    session: () => ({ close: () => {} }),
    close: () => {},
  } as unknown as ContentClient;
  return { content, stores: () => slots.size };
}

describe('groups: version 2 delivery through the group inbox (specs/messaging.md §13.9)', () => {
  let net: GroupNetwork;
  let slots: ReturnType<typeof memorySlots>;
  const storages = Array.from({ length: 6 }, () => memoryGroupStorage());
  let group: Group;
  const texts = (n: GroupNode): string[] => n.got.filter((m) => m.group === group.id).map((m) => `${m.from.slice(0, 12)}:${dec(m.data)}`);
  const tag = (n: GroupNode, t: string): string => `${n.address.slice(0, 12)}:${t}`;

  before(async () => {
    slots = memorySlots();
    // Five members; the sixth is added later.
    net = groupNetwork(6, (i) => ({ storage: storages[i]!, inbox: { content: slots.content } }));
    const [a, ...rest] = net.nodes.slice(0, 5);
    group = await a!.groups.create(
      'allotment',
      rest.map((n) => n.address),
      { delivery: 'inbox' },
    );
  });

  it('hands each member the epoch and the roster only: no sender key travels pairwise', () => {
    expect(group.delivery).to.equal('inbox');
    for (const n of net.nodes.slice(1, 5)) {
      expect(n.inbox.length, n.address).to.equal(2);
      expect(isGroupEpochEnvelope(n.inbox[0]!)).to.equal(true);
      const g = n.groups.get(group.id)!;
      expect(g.delivery).to.equal('inbox');
      expect(g.epoch).to.equal(0);
    }
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('every send is one deposit (and our key before the first); every member emits every other message once', async () => {
    const [a, b, c] = net.nodes;
    const before = slots.stores();
    const r = await a!.groups.get(group.id)!.send(enc('hello'));
    expect(r.inbox).to.deep.include({ slot: 1 });
    expect(r.storedOffline).to.have.length(4);
    expect(r.delivered).to.deep.equal([]);
    await b!.groups.get(group.id)!.send(enc('from b'));
    await a!.groups.get(group.id)!.send(enc('again'));
    await c!.groups.get(group.id)!.send(enc('from c'));
    expect(slots.stores() - before).to.equal(7); // three senders' keys, four messages
    for (const n of net.nodes) await n.groups.collect();
    for (const n of net.nodes) await n.groups.collect(); // a second pass emits nothing again
    const all = [tag(a!, 'hello'), tag(b!, 'from b'), tag(a!, 'again'), tag(c!, 'from c')];
    for (const n of net.nodes.slice(0, 5)) expect(texts(n).sort(), n.address).to.deep.equal(all.filter((t) => !t.startsWith(n.address.slice(0, 12))).sort());
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a member restarted over its storage reads on from where it stopped, and emits nothing twice', async () => {
    const [a, , , d] = net.nodes;
    net.restart(d!);
    const loaded = await d!.groups.load();
    expect(loaded.map((g) => g.delivery)).to.deep.equal(['inbox']);
    await a!.groups.get(group.id)!.send(enc('after the restart'));
    const had = texts(d!).length;
    await d!.groups.collect();
    expect(texts(d!).slice(had)).to.deep.equal([tag(a!, 'after the restart')]);
    for (const n of net.nodes.filter((n) => n !== d)) await n.groups.collect();
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a removed member gets no new epoch and reads nothing sent after; the others read it once', async () => {
    const [a, b, c, d, e] = net.nodes;
    await a!.groups.get(group.id)!.remove(e!.address);
    for (const n of [a, b, c, d]) expect(n!.groups.get(group.id)!.epoch, n!.address).to.equal(1);
    expect(e!.groups.get(group.id)!.isActive).to.equal(false);
    const had = new Map(net.nodes.map((n) => [n, texts(n).length]));
    await b!.groups.get(group.id)!.send(enc('secret'));
    for (const n of net.nodes) await n.groups.collect();
    for (const n of [a, c, d]) expect(texts(n!).slice(had.get(n!)), n!.address).to.deep.equal([tag(b!, 'secret')]);
    expect(texts(e!).slice(had.get(e!))).to.deep.equal([]);
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a member added later gets the epoch of its arrival: it reads later messages, none before', async () => {
    const [a, b, , , , f] = net.nodes;
    await b!.groups.get(group.id)!.send(enc('before the add'));
    const q = a!.groups.get(group.id)!.epoch;
    await a!.groups.get(group.id)!.add(f!.address);
    const joined = f!.groups.get(group.id)!;
    expect([joined.isActive, joined.delivery, joined.epoch]).to.deep.equal([true, 'inbox', q + 1]);
    expect(f!.inbox.map((x) => (isGroupEpochEnvelope(x) ? 'epoch' : 'roster'))).to.deep.equal(['epoch', 'roster']);
    await b!.groups.get(group.id)!.send(enc('after the add'));
    for (const n of net.nodes) await n.groups.collect();
    expect(texts(f!)).to.deep.equal([tag(b!, 'after the add')]);
    expect(texts(a!).filter((t) => t.endsWith('after the add'))).to.have.length(1);
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a send waits for the epoch of the roster held, and gives up when aborted', async () => {
    const [a, b, c] = net.nodes;
    // Hold what goes to c: the new roster, then the new epoch.
    net.hold.set(c!.address, []);
    const q = a!.groups.get(group.id)!.epoch;
    await a!.groups.get(group.id)!.setAdmin(b!.address, true);
    const held = net.hold.get(c!.address)!;
    net.hold.delete(c!.address);
    expect(held).to.have.length(2);
    await held[0]!(); // the roster: c holds revision r + 1 and the epoch of r
    const stop = new AbortController();
    let settled = false;
    const waiting = c!.groups
      .get(group.id)!
      .send(enc('too early'), { signal: stop.signal })
      .then(
        () => '',
        (e: { code: string }) => e.code,
      )
      .finally(() => (settled = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(settled, 'the send waits for the epoch').to.equal(false);
    stop.abort();
    expect(await waiting).to.equal('ERR_ABORTED');
    await held[1]!(); // the epoch
    expect(c!.groups.get(group.id)!.epoch).to.equal(q + 1);
    expect(c!.groups.get(group.id)!.epoch).to.equal(a!.groups.get(group.id)!.epoch);
    await c!.groups.get(group.id)!.send(enc('in time'));
    for (const n of net.nodes) await n.groups.collect();
    for (const n of [a, b]) expect(texts(n!).filter((t) => t.endsWith('in time'))).to.have.length(1);
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });

  it('a member that leaves: the first admin starts the next epoch, and the others send under it', async () => {
    const [a, b, c, d] = net.nodes;
    const q = a!.groups.get(group.id)!.epoch;
    await d!.groups.get(group.id)!.leave();
    await a!.groups.settled();
    for (const n of [a, b, c]) expect(n!.groups.get(group.id)!.epoch, n!.address).to.equal(q + 1);
    const had = new Map(net.nodes.map((n) => [n, texts(n).length]));
    await c!.groups.get(group.id)!.send(enc('after the leave'));
    for (const n of net.nodes) await n.groups.collect();
    for (const n of [a, b]) expect(texts(n!).slice(had.get(n!)), n!.address).to.deep.equal([tag(c!, 'after the leave')]);
    expect(texts(d!).slice(had.get(d!))).to.deep.equal([]);
    expect(net.nodes.flatMap((n) => n.errors)).to.deep.equal([]);
  });
});
