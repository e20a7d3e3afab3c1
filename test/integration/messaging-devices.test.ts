/**
 * Several devices per person with relay processes (specs/messaging.md §14): real Messengers, each listening at its
 * own address. Bob's primary links two devices from their link codes; Alice, Bob's contact, then reaches all three
 * exactly once; a message one of Bob's devices sends shows on its siblings; a device linked later gets history on
 * request; an unlinked device receives nothing sent after the unlinking; a replayed or forged list is refused with
 * its code at the contact. A group with Bob as a member reaches all three of his devices (§13.8), each once; each of
 * them sends to it for Bob. A
 * linked device whose messenger restarts over its device storage (§14.9) is still Bob's and still reached, and still
 * holds the history it took before the restart: a device linked later gets it from it, byte-exact and each once.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type GroupIncoming, type IncomingMessage, type SyncedMessage } from '../../client/messaging/node.js';
import type { Devices } from '../../client/messaging/devices.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { crypto } from '../../crypto/index.js';
import { decodeDeviceEnvelope, encodeDeviceEnvelope, signDeviceList, signMembership } from '../../protocol/device-link.js';
import type { AlliumError } from '../../protocol/errors.js';
import type { FrameContent } from '../../protocol/message-frames.js';
import type { SendOptions, SendReceipt } from '../../client/messaging/types.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

type Deliver = (to: string, data: Uint8Array, o: SendOptions, content: FrameContent, id: Uint8Array) => Promise<SendReceipt>;

describe('messaging: several devices per person (relay processes)', function () {
  this.timeout(600_000);
  let net: TestNetwork;
  const clients: AlliumClient[] = [];
  const all: Messenger[] = [];
  const got = new Map<Messenger, IncomingMessage[]>();
  const groupGot = new Map<Messenger, GroupIncoming[]>();
  const synced = new Map<Messenger, SyncedMessage[]>();
  const errors = new Map<Messenger, AlliumError[]>();
  /** Device envelopes each messenger received. */
  const envelopes = new Map<Messenger, Uint8Array[]>();
  let alice: Messenger, bob0: Messenger, bob1: Messenger, bob2: Messenger, bob3: Messenger;

  /** Each identity's device storage, kept across a restart of its messenger. */
  const storages = new Map<string, GroupStorage>();

  function messenger(client: AlliumClient, identity: Identity = createIdentity()): Messenger {
    const deviceStorage = storages.get(formatAddress(identity.publicKey)) ?? memoryGroupStorage();
    const m = new Messenger(client, identity, { offline: { collect: false }, deviceStorage });
    storages.set(m.address, deviceStorage);
    got.set(m, []);
    groupGot.set(m, []);
    m.on('group:message', (x) => groupGot.get(m)!.push(x));
    synced.set(m, []);
    errors.set(m, []);
    envelopes.set(m, []);
    m.on('message:received', (x) => got.get(m)!.push(x));
    m.on('message:synced', (x) => synced.get(m)!.push(x));
    m.on('endpoint:error', (e) => errors.get(m)!.push(e));
    const receive = m.devices.receive.bind(m.devices);
    (m.devices as { receive: Devices['receive'] }).receive = (from, bytes) => {
      envelopes.get(m)!.push(bytes);
      return receive(from, bytes);
    };
    all.push(m);
    return m;
  }

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    for (const entry of [
      [fps[1]!, fps[2]!],
      [fps[3]!, fps[4]!],
    ]) {
      const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
      await c.start();
      clients.push(c);
    }
    alice = messenger(clients[0]!);
    bob0 = messenger(clients[1]!);
    bob1 = messenger(clients[0]!);
    bob2 = messenger(clients[1]!);
    bob3 = messenger(clients[0]!);
    await Promise.all(all.map((m) => m.startListening()));
  });

  after(async () => {
    try {
      for (const m of all) m.close();
      for (const c of clients) await c.stop();
    } finally {
      await net?.stop();
    }
  });

  it("a person with 3 devices receives a contact's message on all three, exactly once", async () => {
    await bob0.contacts.add(alice.card(), { name: 'alice' });
    const linked: string[] = [];
    bob1.on('device:linked', (c) => linked.push(c.device));
    await bob0.devices.link(bob1.devices.linkCode().text);
    await bob0.devices.link(bob2.devices.linkCode().bytes);
    expect(linked).to.deep.equal([bob1.address, bob2.address]); // itself, then its new sibling
    expect(bob0.devices.list()!.devices).to.deep.equal([bob0.address, bob1.address, bob2.address]);
    expect(alice.devices.of(bob0.address)!.devices).to.deep.equal([bob0.address, bob1.address, bob2.address]);

    const r = await alice.send(bob0.address, enc('hello, all of bob'));
    expect(r.status).to.equal('delivered');
    expect(r.devices!.map((d) => [d.device, d.status])).to.deep.equal([bob0, bob1, bob2].map((b) => [b.address, 'delivered']));
    for (const b of [bob0, bob1, bob2]) {
      const copies = got.get(b)!.filter((m) => m.id === r.id);
      expect(copies.map((m) => [m.from, dec(m.data)])).to.deep.equal([[alice.address, 'hello, all of bob']]);
    }
  });

  it('a message sent from one device appears on its siblings; the contact sees it from the person', async () => {
    const r = await bob1.send(alice.address, enc('from the laptop'));
    await waitFor(() => got.get(alice)!.some((m) => m.id === r.id), 120_000, 'alice got it');
    const m = got.get(alice)!.find((x) => x.id === r.id)!;
    expect([m.from, m.device]).to.deep.equal([bob0.address, bob1.address]);
    await waitFor(() => [bob0, bob2].every((b) => synced.get(b)!.some((s) => s.id === r.id)), 120_000, 'the siblings got the copy');
    for (const b of [bob0, bob2]) {
      const s = synced.get(b)!.filter((x) => x.id === r.id);
      expect(s.map((x) => [x.to, x.device, dec(x.data)])).to.deep.equal([[alice.address, bob1.address, 'from the laptop']]);
    }
  });

  it('a group with a person of 3 devices as a member: every device receives every message, once', async () => {
    const t0 = Date.now();
    const bobs = [bob0, bob1, bob2];
    // Alice holds Bob's list (she is his contact): the roster, her key and her messages go to each of his devices.
    const group = await alice.createGroup('household', [bob0.address]);
    await waitFor(() => bobs.every((b) => b.group(group.id) !== undefined), 60_000, 'every device of bob joined');
    for (const b of bobs) expect(b.group(group.id)!.members).to.deep.equal([alice.address, bob0.address]);
    const r = await group.send(enc('to all of bob'));
    expect(r.failed).to.deep.equal([]);
    await waitFor(() => bobs.every((b) => groupGot.get(b)!.length >= 1), 60_000, 'every device got the message');
    for (const b of bobs) {
      expect(groupGot.get(b)!.map((m) => [m.group, m.from, dec(m.data)])).to.deep.equal([[group.id, alice.address, 'to all of bob']]);
    }
    // The primary sends for the person, and its other devices get it too (§13.8).
    await bob0.group(group.id)!.send(enc('from bob'));
    await waitFor(
      () => [alice, bob1, bob2].every((m) => groupGot.get(m)!.length >= 2 || (m === alice && groupGot.get(m)!.length >= 1)),
      60_000,
      'bob’s message',
    );
    const last = (m: Messenger): unknown[] => [groupGot.get(m)!.at(-1)!.from, groupGot.get(m)!.at(-1)!.device, dec(groupGot.get(m)!.at(-1)!.data)];
    for (const m of [alice, bob1, bob2]) expect(last(m)).to.deep.equal([bob0.address, undefined, 'from bob']);
    // A linked device sends for the person too: the other members and its siblings get it, from the person.
    await bob1.group(group.id)!.send(enc('from the laptop'));
    await waitFor(() => groupGot.get(alice)!.length >= 2 && groupGot.get(bob0)!.length >= 2 && groupGot.get(bob2)!.length >= 3, 60_000, 'the laptop’s message');
    for (const m of [alice, bob0, bob2]) expect(last(m)).to.deep.equal([bob0.address, bob1.address, 'from the laptop']);
    // It does not change the group: the primary does.
    let code = '';
    await bob1
      .group(group.id)!
      .add(alice.address)
      .catch((e: AlliumError) => (code = e.code));
    expect(code).to.equal('ERR_GROUP_MEMBERSHIP');
    // A second message: still once per device.
    await group.send(enc('again'));
    await waitFor(() => bobs.every((b) => groupGot.get(b)!.some((m) => dec(m.data) === 'again')), 60_000, 'every device got the second');
    expect(groupGot.get(bob0)!.map((m) => dec(m.data))).to.deep.equal(['to all of bob', 'from the laptop', 'again']);
    expect(groupGot.get(bob1)!.map((m) => dec(m.data))).to.deep.equal(['to all of bob', 'from bob', 'again']);
    expect(groupGot.get(bob2)!.map((m) => dec(m.data))).to.deep.equal(['to all of bob', 'from bob', 'from the laptop', 'again']);
    expect(groupGot.get(alice)!.map((m) => dec(m.data))).to.deep.equal(['from bob', 'from the laptop']);
    console.log(`      group over 3 devices: ${Date.now() - t0} ms`);
  });

  it('a linked device restarts over its device storage: still a device of the person, and still reached', async () => {
    const t0 = Date.now();
    await bob1.devices.flushed();
    bob1.close();
    const back = messenger(clients[0]!, bob1.identity);
    bob1 = back;
    expect(await back.loadDevices()).to.deep.equal({ person: bob0.address, revision: 2, devices: [bob0.address, back.address, bob2.address] });
    expect(back.devices.isPrimary).to.equal(false);
    await back.startListening();
    const r = await alice.send(bob0.address, enc('after the laptop restarted'));
    expect(r.devices!.map((d) => [d.device, d.status])).to.deep.equal([bob0, back, bob2].map((b) => [b.address, 'delivered']));
    expect(got.get(back)!.map((m) => [m.from, m.device, dec(m.data)])).to.deep.equal([[alice.address, undefined, 'after the laptop restarted']]);
    console.log(`      restart of a linked device: ${Date.now() - t0} ms`);
  });

  it('a newly linked device gets history on request', async () => {
    await bob0.devices.link(bob3.devices.linkCode().text);
    const progress: boolean[] = [];
    bob3.on('history:progress', (p) => progress.push(p.done));
    const history = await bob3.devices.requestHistory();
    expect(history.map((h) => [h.outgoing, h.peer, dec(h.data)])).to.deep.equal([
      [false, alice.address, 'hello, all of bob'],
      [true, alice.address, 'from the laptop'],
      [false, alice.address, 'after the laptop restarted'],
    ]);
    expect(progress.at(-1)).to.equal(true);

    // The laptop restarted since it took the first two (§14.9): it still holds them, and answers with all three,
    // byte-exact and each once, as the primary did.
    const fromLaptop = await bob3.devices.requestHistory({ from: bob1.address });
    // (sentAt of a received message is when each device took it.)
    const exact = (h: typeof history): unknown[] => h.map((x) => [x.outgoing, x.peer, x.id, x.attachment, [...x.data]]);
    expect(exact(fromLaptop)).to.deep.equal(exact(history));
    expect(new Set(fromLaptop.map((h) => h.id)).size).to.equal(3);
    const sent = [...got.get(bob0)!.map((m) => m.id!), ...synced.get(bob0)!.map((m) => m.id)];
    for (const h of fromLaptop) expect(sent).to.include(h.id);
  });

  let oldList: Uint8Array;

  it('an unlinked device cannot read messages sent after the unlinking', async () => {
    oldList = envelopes
      .get(bob2)!
      .filter((b) => decodeDeviceEnvelope(b).kind === 'list')
      .at(-1)!;
    const unlinked: string[] = [];
    bob2.on('device:unlinked', (c) => unlinked.push(c.device));
    await bob0.devices.unlink(bob2.address);
    expect(unlinked).to.deep.equal([bob2.address]);
    expect(alice.devices.of(bob0.address)!.devices).to.deep.equal([bob0.address, bob1.address, bob3.address]);
    const before = got.get(bob2)!.length;
    const r = await alice.send(bob0.address, enc('after the unlinking'));
    expect(r.devices!.map((d) => d.device)).to.deep.equal([bob0.address, bob1.address, bob3.address]);
    for (const b of [bob0, bob1, bob3]) expect(got.get(b)!.filter((m) => m.id === r.id)).to.have.length(1);
    // Every device Alice sent to acknowledged before send() resolved: nothing went to bob2.
    expect(got.get(bob2)!.length).to.equal(before);
  });

  it('a replayed or forged device list is refused with a typed error, and nothing held changes', async () => {
    const deliver = (bob2 as unknown as { deliver: Deliver }).deliver.bind(bob2);
    const held = alice.devices.of(bob0.address);
    const seen = errors.get(alice)!.length;
    // Replayed: the unlinked device presents the older list that named it.
    await deliver(alice.address, oldList, { offline: 'never' }, 'device', crypto().random(16));
    // Forged: a list under Bob's key naming bob2 again, signed by bob2.
    const person = bob0.identity.publicKey;
    const forged = signDeviceList(
      {
        person,
        r: 99,
        members: [
          { key: person, sig: decodeList(oldList).members[0]!.sig },
          { key: bob2.identity.publicKey, sig: signMembership(person, bob2.identity.secretKey) },
        ],
      },
      bob2.identity.secretKey,
    );
    await deliver(alice.address, encodeDeviceEnvelope(forged), { offline: 'never' }, 'device', crypto().random(16));
    await waitFor(
      () =>
        errors
          .get(alice)!
          .slice(seen)
          .filter((e) => e.code === 'ERR_SIGNATURE').length > 0,
      60_000,
      'both refusals reported',
    );
    const refused = errors
      .get(alice)!
      .slice(seen)
      .map((e) => e.code)
      .filter((c) => c === 'ERR_MESSAGE_REPLAY' || c === 'ERR_SIGNATURE');
    expect(refused).to.deep.equal(['ERR_MESSAGE_REPLAY', 'ERR_SIGNATURE']);
    expect(alice.devices.of(bob0.address)).to.deep.equal(held);
  });
});

function decodeList(bytes: Uint8Array): Extract<ReturnType<typeof decodeDeviceEnvelope>, { kind: 'list' }> {
  const l = decodeDeviceEnvelope(bytes);
  if (l.kind !== 'list') throw new Error('not a list');
  return l;
}
