/**
 * Sending to a group from a linked device, with relay processes (specs/messaging.md §13.8): real Messengers, each
 * listening at its own address. Person P (primary `p`) links device `d`; P is in a group with three others (a, b, c).
 * The device sends for the person: every member, and P's primary, gets the message once, attributed to P (`from`) and
 * to the device (`device`); P's own messages reach the device. Once P unlinks the device, the members refuse what it
 * still sends (ERR_GROUP_MEMBERSHIP): here a device that ignores the list unlinking it, as a stolen one would. The same
 * for a version 2 group (§13.9) another member formed, where the device deposits in the group inbox, members collect,
 * and two members hold P's list only because the device sent it before its first deposit: the unlinking reaches them
 * because it goes to every member of P's groups.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { Messenger, type GroupIncoming } from '../../client/messaging/node.js';
import type { Devices } from '../../client/messaging/devices.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import { decodeDeviceEnvelope } from '../../protocol/device-link.js';
import type { AlliumError } from '../../protocol/errors.js';
import { startEntryClient } from '../helpers/content.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

for (const delivery of ['pairwise', 'inbox'] as const) {
  describe(`messaging: a linked device sends to its person's ${delivery === 'inbox' ? 'version 2' : 'version 1'} group (relay processes)`, function () {
    this.timeout(900_000);
    let net: TestNetwork;
    const clients: AlliumClient[] = [];
    const all: Messenger[] = [];
    /** Group messages each messenger emitted, as [from, device, text]. */
    const got = new Map<Messenger, Array<[string, string | undefined, string]>>();
    const errors = new Map<Messenger, AlliumError[]>();
    /** Set on the device: it drops device lists from then on (it never takes the list that unlinks it). */
    let deaf = false;
    let p: Messenger, d: Messenger, a: Messenger, b: Messenger, c: Messenger;
    let groupId = '';

    function messenger(client: AlliumClient): Messenger {
      const m = new Messenger(client, undefined, {
        offline: { collect: false },
        deviceStorage: memoryGroupStorage(),
        groupStorage: memoryGroupStorage(),
        groupInbox: { pollMs: 3_600_000 },
        ackTimeoutMs: 900_000,
      });
      got.set(m, []);
      errors.set(m, []);
      m.on('group:message', (x: GroupIncoming) => got.get(m)!.push([x.from, x.device, dec(x.data)]));
      m.on('endpoint:error', (e) => errors.get(m)!.push(e));
      all.push(m);
      return m;
    }
    const members = (): Messenger[] => [a, b, c];
    const refusals = (m: Messenger): number => errors.get(m)!.filter((e) => e.code === 'ERR_GROUP_MEMBERSHIP').length;
    /** Version 2: every messenger in `ms` reads the group inbox now (version 1 delivers pairwise: nothing to do). */
    const check = async (ms: Messenger[]): Promise<void> => {
      if (delivery === 'inbox') await Promise.all(ms.map((m) => m.checkGroups()));
    };

    before(async () => {
      net = await startNetwork(6);
      // Two clients on disjoint entries (relays 1-2 and 3-4): the devices they carry share no first hop.
      for (const entries of [
        [1, 2],
        [3, 4],
      ])
        clients.push(await startEntryClient(net, entries));
      p = messenger(clients[0]!);
      d = messenger(clients[1]!);
      a = messenger(clients[1]!);
      b = messenger(clients[0]!);
      c = messenger(clients[1]!);
      const receive = d.devices.receive.bind(d.devices);
      (d.devices as { receive: Devices['receive'] }).receive = (from, bytes) =>
        deaf && decodeDeviceEnvelope(bytes).kind === 'list' ? Promise.resolve() : receive(from, bytes);
      await Promise.all(all.map((m) => m.startListening()));
    });

    after(async () => {
      try {
        for (const m of all) m.close();
        for (const client of clients) await client.stop();
      } finally {
        await net?.stop();
      }
    });

    it('the device joins the group of its person; what it sends reaches every member and the primary once, as the person’s', async () => {
      const t0 = Date.now();
      await p.devices.link(d.devices.linkCode().text);
      expect(d.devices.list()!.devices).to.deep.equal([p.address, d.address]);
      // Version 1: the primary forms the group, and hands the roster to its own other devices too. Version 2: member
      // a forms it (P is no admin: P sends nothing pairwise to b and c, who learn P's list from the device itself).
      // a holds P's list: P wrote to it first.
      let creator = p;
      if (delivery === 'inbox') {
        await p.send(a.address, enc('hello'));
        creator = a;
      }
      const others = [p, a, b, c].filter((m) => m !== creator).map((m) => m.address);
      const group = await creator.createGroup('allotment', others, { delivery });
      groupId = group.id;
      expect(group.delivery).to.equal(delivery);
      await waitFor(
        () => [p, d, ...members()].every((m) => m.group(groupId) !== undefined && (delivery === 'pairwise' || m.group(groupId)!.epoch === 0)),
        300_000,
        'everyone joined',
      );
      expect(d.group(groupId)!.members).to.deep.equal([creator.address, ...others]);

      const r = await d.group(groupId)!.send(enc('from the laptop'));
      expect(r.failed).to.deep.equal([]);
      await check([p, ...members()]);
      await waitFor(() => [p, ...members()].every((m) => got.get(m)!.length >= 1), 300_000, 'every member and the primary got it');
      for (const m of [p, ...members()]) expect(got.get(m)).to.deep.equal([[p.address, d.address, 'from the laptop']]);
      expect(got.get(d)).to.deep.equal([]);

      // The primary's message reaches the device (as any member's), from the person with no device named.
      await p.group(groupId)!.send(enc('from the phone'));
      await check([d, ...members()]);
      await waitFor(() => [d, ...members()].every((m) => got.get(m)!.some(([, , t]) => t === 'from the phone')), 300_000, 'everyone got the primary’s');
      expect(got.get(d)).to.deep.equal([[p.address, undefined, 'from the phone']]);
      for (const m of members()) expect(got.get(m)!.filter(([, , t]) => t === 'from the phone')).to.deep.equal([[p.address, undefined, 'from the phone']]);

      // A member's message reaches both devices of the person, once each.
      await a.group(groupId)!.send(enc('from a'));
      await check([p, d, b, c]);
      await waitFor(() => [p, d, b, c].every((m) => got.get(m)!.some(([, , t]) => t === 'from a')), 300_000, 'everyone got a’s');
      for (const m of [p, d, b, c]) expect(got.get(m)!.filter(([, , t]) => t === 'from a')).to.deep.equal([[a.address, undefined, 'from a']]);

      // A second message from the device: still once everywhere.
      await d.group(groupId)!.send(enc('again'));
      await check([p, ...members()]);
      await waitFor(() => [p, ...members()].every((m) => got.get(m)!.some(([, , t]) => t === 'again')), 300_000, 'every member got the second');
      for (const m of [p, ...members()]) expect(got.get(m)!.filter(([, , t]) => t === 'again')).to.deep.equal([[p.address, d.address, 'again']]);
      // The device does not change the group: the primary does.
      const code = await d
        .group(groupId)!
        .add(p.address)
        .then(
          () => 'added',
          (e: AlliumError) => e.code,
        );
      expect(code).to.equal('ERR_GROUP_MEMBERSHIP');
      console.log(`      ${delivery}: link, group of 5, four messages: ${Date.now() - t0} ms`);
    });

    it('once the primary unlinks the device, members refuse what it sends (it ignores its unlinking)', async () => {
      deaf = true;
      await p.devices.unlink(d.address);
      // Every member took the list that drops the device (it went to the members of the person's groups).
      for (const m of members()) expect(m.devices.of(p.address)!.devices).to.deep.equal([p.address]);
      // The device did not: it still takes itself for the person's.
      expect(d.devices.list()!.devices).to.deep.equal([p.address, d.address]);
      const before = new Map([p, ...members()].map((m) => [m, got.get(m)!.length]));
      const refused = new Map([p, ...members()].map((m) => [m, refusals(m)]));
      await d.group(groupId)!.send(enc('after the unlinking'));
      await check([p, ...members()]);
      await waitFor(() => [p, ...members()].every((m) => refusals(m) > refused.get(m)!), 300_000, 'every member refused the device');
      // A member's message after it: taken by all; the device's never.
      await b.group(groupId)!.send(enc('from b'));
      await check([p, a, c]);
      await waitFor(() => [p, a, c].every((m) => got.get(m)!.some(([, , t]) => t === 'from b')), 300_000, 'everyone got b’s');
      for (const m of [p, ...members()]) {
        const since = got.get(m)!.slice(before.get(m)!);
        expect(since.map(([, , t]) => t)).to.deep.equal(m === b ? [] : ['from b']);
      }
    });
  });
}
