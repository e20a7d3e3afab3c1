/**
 * Group state at rest (specs/messaging.md §13.7): a member whose messenger restarts over the same identity and group
 * storage takes its groups back, receives and sends in them, and emits no message twice — not a copy that comes again
 * after the restart, not one it had before. Skipped keys and held messages survive the restart; the records are
 * sealed to the identity and refused when changed or moved. With relay processes:
 * test/integration/messaging-groups.test.ts.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import type { AlliumError } from '../../protocol/errors.js';
import { Groups } from '../../client/messaging/groups.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import { fileGroupStorage } from '../../client/messaging/group-file.js';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupNetwork, type GroupNode } from '../helpers/group-network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const texts = (n: GroupNode): string[] => n.got.map((m) => dec(m.data));

async function loadError(storage: GroupStorage, identity = createIdentity()): Promise<string> {
  const g = new Groups({ identity, sendEnvelope: () => Promise.reject(new Error('unused')), emit: () => undefined, error: () => undefined }, { storage });
  return g.load().then(
    () => 'loaded',
    (e: AlliumError) => e.code,
  );
}

describe('groups: state at rest (specs/messaging.md §13.7)', () => {
  function three(): { a: GroupNode; b: GroupNode; c: GroupNode; restart: (n: GroupNode) => void; hold: Map<string, Array<() => Promise<void>>> } {
    const storages = [memoryGroupStorage(), memoryGroupStorage(), memoryGroupStorage()];
    const net = groupNetwork(3, (i) => ({ storage: storages[i]! }));
    const [a, b, c] = net.nodes as [GroupNode, GroupNode, GroupNode];
    return { a, b, c, restart: net.restart, hold: net.hold };
  }

  it('a member restarts: it still receives and sends, and no message is emitted twice', async () => {
    const { a, b, c, restart } = three();
    const g = await a.groups.create('allotment', [b.address, c.address]);
    for (const x of [a, b, c]) await x.groups.get(g.id)!.send(enc(`before from ${x.address.slice(0, 6)}`));
    const before = texts(b);
    expect(before).to.have.length(2);
    const seen = [...b.inbox];
    const generation = b.groups.get(g.id)!.generation;

    restart(b);
    expect(b.groups.get(g.id)).to.equal(undefined); // nothing until the store is read
    const [back] = await b.groups.load();
    expect(back!.id).to.equal(g.id);
    expect(back!.members).to.deep.equal(g.members);
    expect(back!.generation).to.equal(generation);

    // Every envelope it had before, handed to it again (a retransmission, a mailbox item not yet deleted): nothing.
    for (const bytes of seen) await b.groups.receive(a.address, bytes);
    for (const bytes of c.inbox.filter((x) => seen.includes(x))) await b.groups.receive(c.address, bytes);
    expect(texts(b)).to.deep.equal(before);

    await c.groups.get(g.id)!.send(enc('after from c'));
    await b.groups.get(g.id)!.send(enc('after from b')); // its chain goes on from the stored index
    expect(texts(b)).to.deep.equal([...before, 'after from c']);
    expect(texts(a).filter((t) => t.startsWith('after'))).to.deep.equal(['after from c', 'after from b']);
    expect(texts(c).filter((t) => t.startsWith('after'))).to.deep.equal(['after from b']);
    for (const x of [a, b, c]) expect(x.errors.map((e) => e.code)).to.deep.equal([]);
    // Every message emitted once at every member, across the restart.
    for (const x of [a, b, c]) expect(new Set(x.got.map((m) => `${m.from} ${m.generation}:${m.index}`)).size).to.equal(x.got.length);
  });

  it('a key skipped before the restart opens its message after it; a held message waits for its key across it', async () => {
    const { a, b, c, restart, hold } = three();
    const g = await a.groups.create('allotment', [b.address, c.address]);
    await c.groups.get(g.id)!.send(enc('warm-up'));
    hold.set(b.address, []);
    await c.groups.get(g.id)!.send(enc('one'));
    await c.groups.get(g.id)!.send(enc('two'));
    await a.groups.get(g.id)!.updateKey();
    await a.groups.get(g.id)!.send(enc('new generation'));
    const [one, two, aKey, aMessage] = hold.get(b.address)!.slice(-4);
    hold.delete(b.address);
    await two!(); // 'one' is skipped: its key is kept
    await aMessage!(); // a's new generation has not come: held
    expect(texts(b)).to.deep.equal(['warm-up', 'two']);

    restart(b);
    await b.groups.load();
    await one!();
    await aKey!();
    expect(texts(b)).to.deep.equal(['warm-up', 'two', 'one', 'new generation']);
    await one!(); // a copy
    expect(texts(b)).to.have.length(4);
    expect(b.errors).to.deep.equal([]);
  });

  it('records are sealed to the identity: another identity, a changed byte or a moved record is refused', async () => {
    const { a, b } = three();
    const storage = a.options.storage!;
    await a.groups.create('allotment', [b.address]);
    const [[name, bytes]] = (await storage.load()) as [[string, Uint8Array]];
    expect(await loadError(storage, a.identity)).to.equal('loaded');
    expect(await loadError(storage)).to.equal('ERR_MESSAGE_AUTH');
    // No secret of the group appears in the stored bytes: its id is there only as the record's name.
    expect(Buffer.from(bytes).includes(Buffer.from(name, 'hex'))).to.equal(false);
    const flipped = memoryGroupStorage();
    const changed = bytes.slice();
    changed[changed.length - 1]! ^= 1;
    await flipped.save(name, changed);
    expect(await loadError(flipped, a.identity)).to.equal('ERR_MESSAGE_AUTH');
    const moved = memoryGroupStorage();
    await moved.save(
      crypto()
        .random(32)
        .reduce((s, x) => s + x.toString(16).padStart(2, '0'), ''),
      bytes,
    );
    expect(await loadError(moved, a.identity)).to.equal('ERR_MESSAGE_AUTH');
  });

  it('a storage that fails makes a send fail before anything leaves', async () => {
    const { a, b } = three();
    const g = await a.groups.create('allotment', [b.address]);
    const storage = a.options.storage!;
    const save = storage.save.bind(storage);
    storage.save = () => Promise.reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
    const before = b.inbox.length;
    let failed = false;
    await g.send(enc('not stored')).catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(b.inbox.length).to.equal(before);
    storage.save = save;
    await g.send(enc('stored'));
    expect(texts(b)).to.deep.equal(['stored']);
  });

  it('fileGroupStorage: one file per group, mode 0600, read back by a restarted member', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'allium-groups-'));
    try {
      const net = groupNetwork(2, (i) => ({ storage: i === 1 ? fileGroupStorage(join(dir, 'groups')) : memoryGroupStorage() }));
      const [a, b] = net.nodes as [GroupNode, GroupNode];
      const g = await a.groups.create('allotment', [b.address]);
      await g.send(enc('one'));
      const files = readdirSync(join(dir, 'groups'));
      expect(files).to.deep.equal([`${g.id}.group`]);
      expect(statSync(join(dir, 'groups', files[0]!)).mode & 0o777).to.equal(0o600);
      net.restart(b);
      expect((await b.groups.load()).map((x) => x.id)).to.deep.equal([g.id]);
      await g.send(enc('two'));
      expect(texts(b)).to.deep.equal(['one', 'two']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
