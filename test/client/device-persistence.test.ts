/**
 * Device state at rest (specs/messaging.md §14.9): a person's primary, its linked devices and a contact, over an
 * in-memory pairwise transport, each with a deviceStorage; after a restart over the same identity and storage each
 * keeps its standing (primary, linked device of the person) and the lists it held, and delivery to every device goes
 * on. Records are sealed to the identity: another identity, a changed byte or a moved record is refused.
 */
import { expect } from 'chai';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import type { AlliumError } from '../../protocol/errors.js';
import type { FrameContent } from '../../protocol/message-frames.js';
import { Devices, type DeviceEvents } from '../../client/messaging/devices.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import type { IncomingMessage, SendReceipt } from '../../client/messaging/types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Node {
  identity: Identity;
  address: string;
  storage: GroupStorage;
  devices: Devices;
  contacts: string[];
  got: IncomingMessage[];
  errors: AlliumError[];
}

/** Devices that deliver to each other at once; restart() gives a node a new Devices over the same identity and storage. */
function network(): { node: (identity?: Identity) => Node; restart: (n: Node) => void } {
  const byAddress = new Map<string, Node>();
  const table = (n: Node): Devices =>
    new Devices(
      {
        identity: n.identity,
        deliver: async (to: string, data: Uint8Array, _o, content: FrameContent, id: Uint8Array): Promise<SendReceipt> => {
          const target = byAddress.get(to)!;
          if (content === 'device') await target.devices.receive(n.address, data).catch((e: AlliumError) => target.errors.push(e));
          else target.got.push(target.devices.incoming({ from: n.address, data, seq: 0, offline: false, id: toHex(id) }));
          return { status: 'delivered', to, seq: 0, id: toHex(id) };
        },
        contacts: () => Promise.resolve(n.contacts),
        emit: <K extends keyof DeviceEvents>(_event: K, ..._args: DeviceEvents[K]) => undefined,
        error: (e) => n.errors.push(e),
      },
      {},
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
      devices: undefined as unknown as Devices,
    };
    n.devices = table(n);
    byAddress.set(n.address, n);
    return n;
  };
  return { node, restart: (n) => (n.devices = table(n)) };
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
      expect(d.devices.groupMember().key).to.deep.equal(phone.identity.publicKey);
      expect(d.devices.groupMember().sends).to.equal(false);
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
    expect(tablet.devices.groupMember()).to.deep.equal({ key: tablet.identity.publicKey, sends: true });
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
});
