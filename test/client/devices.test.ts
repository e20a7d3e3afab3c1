/**
 * Devices over an in-memory pairwise transport (specs/messaging.md §14): linking, delivery to every device exactly
 * once, sync to siblings, history, unlinking, and the refusal of forged, replayed and misdirected lists. The same
 * with relay processes and real Messengers: test/integration/messaging-devices.test.ts.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, parseAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeDeviceEnvelope, linkProof, signDeviceList, signMembership, type DeviceList } from '../../protocol/device-link.js';
import type { AlliumError } from '../../protocol/errors.js';
import type { FrameContent } from '../../protocol/message-frames.js';
import { Devices, type DeviceEvents, type SyncedMessage } from '../../client/messaging/devices.js';
import type { IncomingMessage, SendReceipt } from '../../client/messaging/types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Node {
  identity: Identity;
  address: string;
  devices: Devices;
  contacts: string[];
  got: IncomingMessage[];
  synced: SyncedMessage[];
  events: Array<[string, unknown]>;
  errors: AlliumError[];
  /** Every device envelope delivered to this node, with its sender. */
  envelopes: Array<{ from: string; bytes: Uint8Array }>;
}

/** Devices that deliver to each other at once; a node listed in `offline` receives nothing. */
function network(): { node: () => Node; offline: Set<string> } {
  const byAddress = new Map<string, Node>();
  const offline = new Set<string>();
  const node = (): Node => {
    const identity = createIdentity();
    const address = formatAddress(identity.publicKey);
    const n: Node = { identity, address, contacts: [], got: [], synced: [], events: [], errors: [], envelopes: [], devices: undefined as unknown as Devices };
    n.devices = new Devices({
      identity,
      deliver: async (to: string, data: Uint8Array, _o, content: FrameContent, id: Uint8Array): Promise<SendReceipt> => {
        const target = byAddress.get(to);
        if (!target || offline.has(to)) throw Object.assign(new Error('unreachable'), { code: 'ERR_UNREACHABLE' });
        if (content === 'device') {
          target.envelopes.push({ from: address, bytes: data });
          await target.devices.receive(address, data).catch((e: AlliumError) => target.errors.push(e));
        } else {
          target.got.push(target.devices.incoming({ from: address, data, seq: 0, offline: false, id: toHex(id) }));
        }
        return { status: 'delivered', to, seq: 0, id: toHex(id) };
      },
      contacts: () => Promise.resolve(n.contacts),
      emit: <K extends keyof DeviceEvents>(event: K, ...args: DeviceEvents[K]) => {
        n.events.push([event, args[0]]);
        if (event === 'message:synced') n.synced.push(args[0] as SyncedMessage);
      },
      error: (e) => n.errors.push(e),
    });
    byAddress.set(address, n);
    return n;
  };
  return { node, offline };
}

const codes = (n: Node): string[] => n.errors.map((e) => e.code);

describe('devices (client/messaging/devices.ts, specs/messaging.md §14)', () => {
  it('links two devices; a contact then reaches all three exactly once, and a sent message reaches the siblings', async () => {
    const { node } = network();
    const [alice, bob0, bob1, bob2] = [node(), node(), node(), node()];
    bob0.contacts.push(alice.address);
    await bob0.devices.link(bob1.devices.linkCode().text);
    await bob0.devices.link(bob2.devices.linkCode().bytes);
    expect(bob1.events).to.deep.include(['device:linked', { person: bob0.address, device: bob1.address }]);
    expect(bob0.devices.list()!.devices).to.deep.equal([bob0.address, bob1.address, bob2.address]);
    expect(bob2.devices.list()!.revision).to.equal(2);
    expect(bob1.devices.isPrimary).to.equal(false);
    expect(alice.devices.of(bob0.address)!.devices).to.have.length(3); // the primary told its contact

    const r = await alice.devices.send(bob0.address, enc('hello bob'), {}, 'data', crypto().random(16));
    expect(r.devices!.map((d) => d.device)).to.deep.equal([bob0.address, bob1.address, bob2.address]);
    for (const b of [bob0, bob1, bob2]) {
      expect(b.got.map((m) => [m.from, dec(m.data)])).to.deep.equal([[alice.address, 'hello bob']]);
    }

    await bob1.devices.send(alice.address, enc('from the laptop'), {}, 'data', crypto().random(16));
    const fromBob = alice.got.filter((m) => dec(m.data) === 'from the laptop');
    expect(fromBob.map((m) => [m.from, m.device])).to.deep.equal([[bob0.address, bob1.address]]); // the person, and the device
    for (const b of [bob0, bob2]) expect(b.synced.map((m) => [m.to, dec(m.data), m.device])).to.deep.equal([[alice.address, 'from the laptop', bob1.address]]);
    expect([...codes(alice), ...codes(bob0), ...codes(bob1), ...codes(bob2)]).to.deep.equal([]);
  });

  it('a newly linked device gets history on request, in order, within the size asked for', async () => {
    const { node } = network();
    const [alice, bob0, bob1] = [node(), node(), node()];
    for (let i = 0; i < 5; i++) await alice.devices.send(bob0.address, enc(`old ${i}`), {}, 'data', crypto().random(16));
    await bob0.devices.send(alice.address, enc('reply'), {}, 'data', crypto().random(16));
    await bob0.devices.link(bob1.devices.linkCode().text);
    const history = await bob1.devices.requestHistory();
    expect(history.map((h) => [h.outgoing, h.peer, dec(h.data)])).to.deep.equal([
      ...[0, 1, 2, 3, 4].map((i) => [false, alice.address, `old ${i}`]),
      [true, alice.address, 'reply'],
    ]);
    const small = await bob1.devices.requestHistory({ maxBytes: 10 });
    expect(small.map((h) => dec(h.data))).to.deep.equal(['old 0', 'old 1']); // 5 + 5 bytes
    expect(bob1.events.some(([e, p]) => e === 'history:progress' && (p as { done: boolean }).done)).to.equal(true);
  });

  it('an unlinked device receives nothing sent after the contact took the new list, and is told', async () => {
    const { node } = network();
    const [alice, bob0, bob1, bob2] = [node(), node(), node(), node()];
    bob0.contacts.push(alice.address);
    await bob0.devices.link(bob1.devices.linkCode().text);
    await bob0.devices.link(bob2.devices.linkCode().text);
    await bob0.devices.unlink(bob2.address);
    expect(bob2.events).to.deep.include(['device:unlinked', { person: bob0.address, device: bob2.address }]);
    expect(bob2.devices.list()).to.equal(undefined);
    expect(bob1.events).to.deep.include(['device:unlinked', { person: bob0.address, device: bob2.address }]);
    await alice.devices.send(bob0.address, enc('after'), {}, 'data', crypto().random(16));
    expect(bob0.got.map((m) => dec(m.data))).to.deep.equal(['after']);
    expect(bob1.got.map((m) => dec(m.data))).to.deep.equal(['after']);
    expect(bob2.got).to.deep.equal([]);
    // Its syncs and history requests are refused by its former siblings.
    const sync = encodeDeviceEnvelope({
      kind: 'sent',
      to: alice.identity.publicKey,
      id: crypto().random(16),
      ts: Date.now(),
      data: enc('x'),
      attachment: false,
    });
    await expectRefused(bob0, bob2.address, sync, 'ERR_DEVICE_LIST');
    const ask = encodeDeviceEnvelope({ kind: 'history-request', q: crypto().random(16), after: 0, max: 1000 });
    await expectRefused(bob1, bob2.address, ask, 'ERR_DEVICE_LIST');
    expect(bob0.synced).to.deep.equal([]);
  });

  it('refuses a forged list (ERR_SIGNATURE), a replayed one (ERR_MESSAGE_REPLAY) and one from an outsider (ERR_DEVICE_LIST)', async () => {
    const { node } = network();
    const [alice, bob0, bob1, bob2, mallory] = [node(), node(), node(), node(), node()];
    bob0.contacts.push(alice.address);
    await bob0.devices.link(bob1.devices.linkCode().text);
    const old = bob1.envelopes.map((e) => e.bytes).at(-1)!; // revision 1, naming bob1
    await bob0.devices.link(bob2.devices.linkCode().text);
    await bob0.devices.unlink(bob1.address); // revision 3
    const before = alice.devices.of(bob0.address)!;
    expect(before.revision).to.equal(3);

    // Replayed: the unlinked device presents the older list that had it.
    await expectRefused(alice, bob1.address, old, 'ERR_MESSAGE_REPLAY');
    // Forged: Mallory lists herself under Bob's key, signed by herself.
    const forged = list(bob0.identity.publicKey, 9, [bob0.identity, mallory.identity], mallory.identity);
    await expectRefused(alice, mallory.address, forged, 'ERR_SIGNATURE');
    // A device that never consented: Bob's key signs a list naming Alice's device with a made-up member signature.
    const unconsented = encodeDeviceEnvelope(
      signDeviceList(
        {
          person: bob0.identity.publicKey,
          r: 9,
          members: [
            { key: bob0.identity.publicKey, sig: signMembership(bob0.identity.publicKey, bob0.identity.secretKey) },
            { key: alice.identity.publicKey, sig: signMembership(bob0.identity.publicKey, mallory.identity.secretKey) },
          ],
        },
        bob0.identity.secretKey,
      ),
    );
    await expectRefused(bob2, bob0.address, unconsented, 'ERR_SIGNATURE');
    // Sent by someone who is neither the person nor one of its devices.
    const mallorys = list(mallory.identity.publicKey, 1, [mallory.identity], mallory.identity);
    await expectRefused(alice, bob0.address, mallorys, 'ERR_DEVICE_LIST');
    expect(alice.devices.of(bob0.address)).to.deep.equal(before); // nothing held changed
  });

  it('a link offer without the code is refused (ERR_MESSAGE_AUTH), and a code is used once', async () => {
    const { node } = network();
    const [bob0, bob1, mallory] = [node(), node(), node()];
    const code = bob1.devices.linkCode();
    const wrong = encodeDeviceEnvelope({ kind: 'offer', person: mallory.identity.publicKey, proof: new Uint8Array(32) });
    await expectRefused(bob1, mallory.address, wrong, 'ERR_MESSAGE_AUTH');
    // A proof for Bob's key, sent by Mallory: the session's peer must be the person offered.
    const stolen = encodeDeviceEnvelope({
      kind: 'offer',
      person: bob0.identity.publicKey,
      proof: linkProof(new Uint8Array(16), bob0.identity.publicKey, bob1.identity.publicKey),
    });
    await expectRefused(bob1, mallory.address, stolen, 'ERR_MESSAGE_AUTH');
    await bob0.devices.link(code.text);
    expect(bob1.devices.list()!.person).to.equal(bob0.address);
    const again = encodeDeviceEnvelope({
      kind: 'offer',
      person: mallory.identity.publicKey,
      proof: linkProof(parseSecret(code.bytes), mallory.identity.publicKey, bob1.identity.publicKey),
    });
    await expectRefused(bob1, mallory.address, again, 'ERR_DEVICE_LIST');
  });
});

function list(person: Uint8Array, r: number, members: Identity[], signer: Identity): Uint8Array {
  const l: DeviceList = signDeviceList(
    { person, r, members: members.map((m) => ({ key: m.publicKey, sig: signMembership(person, m.secretKey) })) },
    signer.secretKey,
  );
  return encodeDeviceEnvelope(l);
}

function parseSecret(code: Uint8Array): Uint8Array {
  return code.slice(33, 49);
}

async function expectRefused(n: Node, from: string, bytes: Uint8Array, code: string): Promise<void> {
  parseAddress(from);
  try {
    await n.devices.receive(from, bytes);
  } catch (e) {
    expect((e as AlliumError).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}
