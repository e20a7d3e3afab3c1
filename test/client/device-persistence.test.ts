/**
 * Device state at rest (specs/messaging.md §14.9): a person's primary, its linked devices and a contact, over an
 * in-memory pairwise transport, each with a deviceStorage; after a restart over the same identity and storage each
 * keeps its standing (primary, linked device of the person) and the lists it held, and delivery to every device goes
 * on. Records are sealed to the identity: another identity, a changed byte or a moved record is refused. The history
 * log is kept too, one record per entry under the log's bounds: a restarted device answers a new sibling's history
 * request with what it held before. Whom a device sent its person's list to is kept: after a restart it sends the list
 * again to none of them, and a new list to each.
 */
import { expect } from 'chai';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import type { AlliumError } from '../../protocol/errors.js';
import type { FrameContent } from '../../protocol/message-frames.js';
import { Devices, type DeviceEvents, type DeviceLimits } from '../../client/messaging/devices.js';
import { deviceStoreKey, openDeviceTold, sealHistoryEntry, TOLD_RECORD } from '../../client/messaging/device-store.js';
import { decodeDeviceEnvelope } from '../../protocol/device-link.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import type { IncomingMessage, SendReceipt } from '../../client/messaging/types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const historyRecords = async (n: Node): Promise<string[]> => (await n.storage.load()).map(([name]) => name).filter((name) => name.startsWith('hist-'));

interface Node {
  identity: Identity;
  address: string;
  storage: GroupStorage;
  devices: Devices;
  contacts: string[];
  got: IncomingMessage[];
  errors: AlliumError[];
  /** Device lists delivered to this node. */
  listsIn: number;
}

/** Devices that deliver to each other at once; restart() gives a node a new Devices over the same identity and storage. */
function network(): { node: (identity?: Identity) => Node; restart: (n: Node, limits?: Partial<DeviceLimits>) => void } {
  const byAddress = new Map<string, Node>();
  const table = (n: Node, limits: Partial<DeviceLimits> = {}): Devices =>
    new Devices(
      {
        identity: n.identity,
        deliver: async (to: string, data: Uint8Array, _o, content: FrameContent, id: Uint8Array): Promise<SendReceipt> => {
          const target = byAddress.get(to)!;
          if (content === 'device' && decodeDeviceEnvelope(data).kind === 'list') target.listsIn++;
          if (content === 'device') await target.devices.receive(n.address, data).catch((e: AlliumError) => target.errors.push(e));
          else target.got.push(target.devices.incoming({ from: n.address, data, seq: 0, offline: false, id: toHex(id) }));
          return { status: 'delivered', to, seq: 0, id: toHex(id) };
        },
        contacts: () => Promise.resolve(n.contacts),
        emit: <K extends keyof DeviceEvents>(_event: K, ..._args: DeviceEvents[K]) => undefined,
        error: (e) => n.errors.push(e),
      },
      limits,
      n.storage,
    );
  const node = (identity = createIdentity()): Node => {
    const n: Node = {
      identity,
      address: formatAddress(identity.publicKey),
      storage: memoryGroupStorage(),
      contacts: [],
      got: [],
      errors: [],
      listsIn: 0,
      devices: undefined as unknown as Devices,
    };
    n.devices = table(n);
    byAddress.set(n.address, n);
    return n;
  };
  return { node, restart: (n, limits) => (n.devices = table(n, limits)) };
}

describe('devices: state at rest (specs/messaging.md §14.9)', () => {
  it('a person of 3 devices and a contact restart: each keeps its standing and the lists it held; delivery goes on', async () => {
    const { node, restart } = network();
    const [phone, laptop, tablet, alice] = [node(), node(), node(), node()];
    phone.contacts.push(alice.address);
    await phone.devices.link(laptop.devices.linkCode().text);
    await phone.devices.link(tablet.devices.linkCode().bytes);
    const three = [phone.address, laptop.address, tablet.address];
    expect(alice.devices.of(phone.address)!.devices).to.deep.equal(three);
    for (const n of [phone, laptop, tablet, alice]) await n.devices.flushed();

    for (const n of [phone, laptop, tablet, alice]) restart(n);
    for (const n of [phone, laptop, tablet, alice]) await n.devices.load();
    expect(phone.devices.isPrimary).to.equal(true);
    expect(phone.devices.list()).to.deep.equal({ person: phone.address, revision: 2, devices: three });
    for (const d of [laptop, tablet]) {
      expect(d.devices.isPrimary).to.equal(false);
      expect(d.devices.list()).to.deep.equal({ person: phone.address, revision: 2, devices: three });
      expect(d.devices.groupMember()).to.deep.equal({ key: phone.identity.publicKey, sends: true, changes: false, siblings: true });
    }
    expect(alice.devices.of(phone.address)!.devices).to.deep.equal(three);

    // The restarted contact still reaches every device; a restarted linked device is still the person's.
    const r = await alice.devices.send(phone.address, enc('after the restart'), {}, 'data', new Uint8Array(16).fill(7));
    expect(r.devices!.map((d) => d.device)).to.deep.equal(three);
    for (const n of [phone, laptop, tablet]) expect(n.got.map((m) => m.from)).to.deep.equal([alice.address]);
    // The restarted primary still unlinks: its signed list of revision 2 was kept, the next is 3.
    await phone.devices.unlink(tablet.address);
    expect(alice.devices.of(phone.address)).to.deep.equal({ person: phone.address, revision: 3, devices: [phone.address, laptop.address] });
    expect(tablet.devices.list()).to.equal(undefined);
    for (const n of [phone, laptop, tablet, alice]) expect(n.errors.map((e) => e.code)).to.deep.equal([]);

    // The unlinking is kept too.
    await tablet.devices.flushed();
    restart(tablet);
    await tablet.devices.load();
    expect(tablet.devices.list()).to.equal(undefined);
    expect(tablet.devices.groupMember()).to.deep.equal({ key: tablet.identity.publicKey, sends: true, changes: true, siblings: false });
  });

  it('whom our list went to is kept: a restart sends it again to none of them, and a new list to each (not only contacts)', async () => {
    const { node, restart } = network();
    const [phone, laptop, bob, carol] = [node(), node(), node(), node()];
    await phone.devices.link(laptop.devices.linkCode().text);
    // Bob and Carol are not contacts of the phone: they get its list ahead of its first message to each.
    for (const to of [bob, carol]) await phone.devices.send(to.address, enc('hello'), {}, 'data', new Uint8Array(16).fill(1));
    expect([bob.listsIn, carol.listsIn]).to.deep.equal([1, 1]);
    await phone.devices.flushed();

    restart(phone);
    await phone.devices.load();
    // Not sent again: each holds the current revision.
    for (const to of [bob, carol]) await phone.devices.send(to.address, enc('again'), {}, 'data', new Uint8Array(16).fill(2));
    expect([bob.listsIn, carol.listsIn]).to.deep.equal([1, 1]);
    // An unlinking goes to every device told before, contacts or not: neither keeps a list naming the laptop.
    await phone.devices.unlink(laptop.address);
    for (const n of [bob, carol])
      expect(n.devices.of(phone.address), n.address).to.deep.equal({ person: phone.address, revision: 2, devices: [phone.address] });
    for (const n of [phone, laptop, bob, carol]) expect(n.errors.map((e) => e.code)).to.deep.equal([]);
    // The record: each with the revision it acknowledged, none on its way.
    await phone.devices.flushed();
    const stored = new Map(await phone.storage.load()).get(TOLD_RECORD)!;
    const told = openDeviceTold(deviceStoreKey(phone.identity), stored);
    expect(told.told.map(([d, r]) => [formatAddress(d), r])).to.deep.include.members([
      [bob.address, 2],
      [carol.address, 2],
    ]);
    expect(told.pending).to.deep.equal([]);
  });

  it('a device is saved as told before our list goes to it: a restart in between still sends it the next list', async () => {
    const { node, restart } = network();
    const [phone, laptop, bob] = [node(), node(), node()];
    await phone.devices.link(laptop.devices.linkCode().text);
    // The phone "crashes" while its list is on its way to Bob: what its store holds then is what a restart reads.
    let atSend: Array<[string, Uint8Array]> | null = null;
    const receive = bob.devices.receive.bind(bob.devices);
    bob.devices.receive = async (from, data) => {
      atSend ??= (await phone.storage.load()).map(([name, b]) => [name, Uint8Array.from(b)]);
      return receive(from, data);
    };
    await phone.devices.send(bob.address, enc('hello'), {}, 'data', new Uint8Array(16).fill(1));
    const crashed = memoryGroupStorage();
    for (const [name, b] of atSend!) await crashed.save(name, b);
    phone.storage = crashed;
    restart(phone);
    await phone.devices.load();
    await phone.devices.unlink(laptop.address);
    expect(bob.devices.of(phone.address)).to.deep.equal({ person: phone.address, revision: 2, devices: [phone.address] });
  });

  it('records are sealed to the identity: another identity, a changed byte or a moved record is refused', async () => {
    const { node } = network();
    const [phone, laptop] = [node(), node()];
    await phone.devices.link(laptop.devices.linkCode().text);
    await laptop.devices.flushed();
    const records = await laptop.storage.load();
    expect(records.map(([name]) => name).sort()).to.deep.equal(['list-' + toHex(phone.identity.publicKey), 'self']);

    const refusal = async (storage: GroupStorage, identity: Identity): Promise<string> => {
      const d = new Devices(
        { identity, deliver: () => Promise.reject(new Error('unused')), contacts: () => Promise.resolve([]), emit: () => undefined, error: () => undefined },
        {},
        storage,
      );
      return d.load().then(
        () => 'loaded',
        (e: AlliumError) => e.code,
      );
    };
    expect(await refusal(laptop.storage, createIdentity())).to.equal('ERR_MESSAGE_AUTH');
    const changed = memoryGroupStorage();
    for (const [name, bytes] of records) {
      const b = Uint8Array.from(bytes);
      if (name === 'self') b[b.length - 1]! ^= 1;
      await changed.save(name, b);
    }
    expect(await refusal(changed, laptop.identity)).to.equal('ERR_MESSAGE_AUTH');
    const moved = memoryGroupStorage();
    const list = records.find(([name]) => name !== 'self')!;
    await moved.save('list-' + toHex(laptop.identity.publicKey), list[1]);
    expect(await refusal(moved, laptop.identity)).to.equal('ERR_MESSAGE_AUTH');
  });

  it('the history log is kept across a restart: a new sibling gets what the restarted device held, byte-exact, each once', async () => {
    const { node, restart } = network();
    const [phone, alice] = [node(), node()];
    const ids = [1, 2, 3].map((i) => new Uint8Array(16).fill(i));
    const bodies = [enc('one'), Uint8Array.from([0, 255, 1, 254]), enc('three')];
    await alice.devices.send(phone.address, bodies[0]!, {}, 'data', ids[0]!);
    await alice.devices.send(phone.address, bodies[1]!, {}, 'data', ids[1]!);
    await phone.devices.send(alice.address, bodies[2]!, {}, 'attachment', ids[2]!);
    // The same message again (a copy from the mailbox): kept once.
    await alice.devices.send(phone.address, bodies[0]!, {}, 'data', ids[0]!);
    await phone.devices.flushed();
    const names = await historyRecords(phone);
    expect(names).to.have.length(3);
    // The names show neither the peer nor the message id.
    for (const name of names) {
      expect(name).to.match(/^hist-[0-9a-f]{32}$/);
      expect(name).to.not.include(toHex(alice.identity.publicKey).slice(0, 16));
      for (const id of ids) expect(name).to.not.include(toHex(id));
    }

    restart(phone);
    await phone.devices.load();
    const laptop = node();
    await phone.devices.link(laptop.devices.linkCode().text);
    const history = await laptop.devices.requestHistory();
    expect(history.map((h) => [h.outgoing, h.peer, h.id, h.attachment, [...h.data]])).to.deep.equal([
      [false, alice.address, toHex(ids[0]!), false, [...bodies[0]!]],
      [false, alice.address, toHex(ids[1]!), false, [...bodies[1]!]],
      [true, alice.address, toHex(ids[2]!), true, [...bodies[2]!]],
    ]);
    expect(history.map((h) => dec(h.data))[2]).to.equal('three');
    for (const n of [phone, laptop, alice]) expect(n.errors.map((e) => e.code)).to.deep.equal([]);
  });

  it('the stored log keeps its bounds: the oldest beyond them are dropped and their records deleted', async () => {
    const { node, restart } = network();
    const [phone, alice] = [node(), node()];
    for (let i = 1; i <= 5; i++) await alice.devices.send(phone.address, enc(`m${i}`), {}, 'data', new Uint8Array(16).fill(i));
    await phone.devices.flushed();
    expect(await historyRecords(phone)).to.have.length(5);

    // Restarted under a smaller bound: the newest 3 are kept, the others' records deleted.
    restart(phone, { maxHistoryEntries: 3 });
    await phone.devices.load();
    await phone.devices.flushed();
    expect(await historyRecords(phone)).to.have.length(3);
    // Taking one more drops the oldest, at rest too.
    await alice.devices.send(phone.address, enc('m6'), {}, 'data', new Uint8Array(16).fill(6));
    await phone.devices.flushed();
    expect(await historyRecords(phone)).to.have.length(3);

    restart(phone, { maxHistoryEntries: 3 });
    await phone.devices.load();
    const laptop = node();
    await phone.devices.link(laptop.devices.linkCode().text);
    expect((await laptop.devices.requestHistory()).map((h) => dec(h.data))).to.deep.equal(['m4', 'm5', 'm6']);

    // Without history, nothing is kept at rest.
    const quiet = node();
    restart(quiet, { maxHistoryEntries: 0 });
    await alice.devices.send(quiet.address, enc('not kept'), {}, 'data', new Uint8Array(16).fill(9));
    await quiet.devices.flushed();
    expect(await historyRecords(quiet)).to.deep.equal([]);
  });

  it("a history record that is changed, moved, or not its entry's is refused with the whole store", async () => {
    const { node } = network();
    const [phone, alice] = [node(), node()];
    await alice.devices.send(phone.address, enc('a'), {}, 'data', new Uint8Array(16).fill(1));
    await alice.devices.send(phone.address, enc('b'), {}, 'data', new Uint8Array(16).fill(2));
    await phone.devices.flushed();
    const records = await phone.storage.load();
    const [first, second] = records.filter(([name]) => name.startsWith('hist-'));
    const refusal = async (edit: (b: Map<string, Uint8Array>) => void): Promise<string> => {
      const m = new Map(records.map(([k, v]) => [k, Uint8Array.from(v)]));
      edit(m);
      const storage = memoryGroupStorage();
      for (const [k, v] of m) await storage.save(k, v);
      const d = new Devices(
        {
          identity: phone.identity,
          deliver: () => Promise.reject(new Error('unused')),
          contacts: () => Promise.resolve([]),
          emit: () => undefined,
          error: () => undefined,
        },
        {},
        storage,
      );
      return d.load().then(
        () => 'loaded',
        (e: AlliumError) => e.code,
      );
    };
    expect(await refusal(() => undefined)).to.equal('loaded');
    expect(await refusal((m) => (m.get(first![0])![30]! ^= 1))).to.equal('ERR_MESSAGE_AUTH');
    // Moved under another entry's name (the name is in the AEAD's associated data).
    expect(await refusal((m) => m.set(second![0], first![1]))).to.equal('ERR_MESSAGE_AUTH');
    // Sealed correctly under a name that is not its peer's and id's.
    const wrong = 'hist-' + '0'.repeat(32);
    const sealed = sealHistoryEntry(deviceStoreKey(phone.identity), wrong, {
      outgoing: false,
      peer: alice.identity.publicKey,
      id: new Uint8Array(16),
      ts: 1,
      data: enc('x'),
      attachment: false,
    });
    expect(await refusal((m) => m.set(wrong, sealed))).to.equal('ERR_SCHEMA');
  });
});
