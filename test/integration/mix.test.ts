/**
 * Message mode (specs/mix.md) through real relays in this process over real WebSockets on 127.0.0.1: a message
 * crosses four mixes (two gateways and two mixes between) and reaches its recipient's poll; two Messengers in message
 * mode (mix.md §8) exchange messages both ways (one over 535 bytes in fragments, §8.4), drop a forged one (counted, ERR_MESSAGE_AUTH) and keep their cover
 * and polls going while idle; one whose gateway changes moves, drains its old inbox and tells its contact (§8.6); a replayed packet is
 * dropped at the mix; a flood from one link is held to MAX_MIX_QUEUE_PER_LINK while another client's packet still
 * goes through.
 */
import { expect } from 'chai';
import { MixClient, type MixRelayInfo } from '../../client/messaging/mix-mode.js';
import { crypto } from '../../crypto/index.js';
import { openLink } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { CellCommand } from '../../protocol/cell.js';
import { decodeMixMailBody, mixPollBody } from '../../protocol/mix-cells.js';
import { createMixPacket, MIX_PAYLOAD_LEN, mixInbox } from '../../protocol/mix-packet.js';
import { utf8 } from '../../protocol/bytes.js';
import { MAX_MIX_QUEUE_PER_BLOCK, MAX_MIX_QUEUE_PER_LINK } from '../../relay/mix.js';
import { Relay } from '../../relay/relay.js';
import { silentLogger } from '../../relay/logger.js';
import { tempDir, waitFor } from '../helpers/network.js';
import { Messenger } from '../../client/messaging/messenger.js';
import type { IncomingMessage, MessengerHost } from '../../client/messaging/types.js';
import { createIdentity, formatAddress } from '../../protocol/address.js';
import { parseCard } from '../../protocol/contact-card.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { sealMixMessage } from '../../protocol/mix-message.js';

const metric = async (relay: Relay, reason: string): Promise<number> => {
  const m = new RegExp(`^allium_drops_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(await relay.metrics.text());
  return m ? Number(m[1]) : 0;
};

describe('message mode: mix relays (relays in this process, real WebSockets)', function () {
  this.timeout(60_000);
  const relays: Relay[] = [];
  const links: Link[] = [];
  const clients: MixClient[] = [];
  let infos: MixRelayInfo[] = [];

  before(async () => {
    for (let i = 0; i < 4; i++) {
      const relay = new Relay(
        { listen: '127.0.0.1:0', data_dir: tempDir(), storage_quota: 0, log_level: 'silent', allow_private_addresses: true, mix: true },
        { log: silentLogger() },
      );
      await relay.start();
      relays.push(relay);
    }
    for (const a of relays) for (const b of relays) if (a !== b) a.overlay.learnAddress(b.identity.publicKey, b.address);
    infos = relays.map((r) => ({ identity: r.identity.publicKey, mixKey: r.node.onionKeys.current.keyPair.publicKey }));
  });

  after(async () => {
    for (const c of clients) c.stop();
    for (const l of links) l.close();
    await Promise.all(relays.map((r) => r.stop()));
  });

  const linkTo = async (relay: Relay): Promise<Link> => {
    const link = await openLink(nodeSocketFactory, relay.address, { role: 'initiator', responder: relay.identity.publicKey });
    links.push(link);
    return link;
  };

  const client = async (gateway: number, init: { cover?: boolean } = {}): Promise<MixClient> => {
    const link = await linkTo(relays[gateway]!);
    const c = new MixClient(
      {
        send: (kind, body) => {
          link.sendCell(0, kind === 'packet' ? CellCommand.MIX : CellCommand.MIX_POLL, body);
          return true;
        },
        mixes: () => infos,
      },
      { gateway: relays[gateway]!.identity.publicKey, cover: init.cover ?? false, pollRate: 4, delayMeanMs: 20 },
    );
    link.on('link:cell', (cell) => cell.command === CellCommand.MIX_MAIL && c.onMail(cell.body));
    clients.push(c);
    c.start();
    return c;
  };

  it('carries a message through four mixes to its recipient, and loops and drop cover with cover on', async () => {
    const alice = await client(0, { cover: true });
    const bob = await client(1);
    const got = new Promise<Uint8Array>((resolve) => bob.once('mix:message', (data) => resolve(data)));
    alice.send(bob.address, utf8('hello through the mixes'));
    expect(Buffer.from(await got).toString()).to.equal('hello through the mixes');
    const forwarded = relays.reduce((n, r) => n + r.node.mix!.stats.forwarded, 0);
    expect(forwarded, 'each of the first three hops forwarded it').to.be.at.least(3);
    await waitFor(() => alice.stats.loopsReturned >= 1 && alice.stats.dropSent >= 1, 20_000, 'a loop back to alice, and drop cover');
    await waitFor(() => relays.some((r) => r.node.mix!.stats.dropCover >= 1), 20_000, 'drop cover dropped at its last mix');
    alice.stop();
  });

  /**
   * A host with no circuits: message mode needs only the gateway link and the mix relays (mix.md §8.1). With `gate`,
   * the MIX_POLL cells the messenger hands its link are not sent while `gate.polls` is false (its mail waits at the
   * gateway).
   */
  const mixHost = (gateway: number, gate?: { polls: boolean }): MessengerHost => ({
    directory: undefined as never,
    newCircuit: () => Promise.reject(new AlliumError('ERR_UNREACHABLE', 'no circuits in this test')),
    mixGateway: async () => {
      const link = await linkTo(relays[gateway]!);
      if (gate) {
        const sendCell = link.sendCell.bind(link);
        link.sendCell = (circId, command, body) => (command === CellCommand.MIX_POLL && !gate.polls ? undefined : sendCell(circId, command, body));
      }
      return { identity: relays[gateway]!.identity.publicKey, link };
    },
    mixRelays: () => infos,
  });
  const mixSettings = { sendRate: 5, loopRate: 2, pollRate: 5, delayMeanMs: 20 };
  /** Resolves when `m` emits 'message:delivered' for the message `id`. */
  const delivered = (m: Messenger, id: string): Promise<void> =>
    new Promise((resolve) => {
      const on = (r: { id: string }): void => {
        if (r.id !== id) return;
        m.off('message:delivered', on);
        resolve();
      };
      m.on('message:delivered', on);
    });
  const nextMessage = (m: Messenger, from: string): Promise<IncomingMessage> =>
    new Promise((resolve) => {
      const on = (x: IncomingMessage): void => {
        if (x.from !== from) return;
        m.off('message:received', on);
        resolve(x);
      };
      m.on('message:received', on);
    });

  it('carries Messenger messages both ways in message mode, drops a forged one, and keeps cover and polls while idle', async () => {
    const alice = new Messenger(mixHost(0), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    const bob = new Messenger(mixHost(1), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    try {
      await Promise.all([alice.startMessageMode(), bob.startMessageMode()]);
      // The card carries the mix address (a version 3 card); the contact book keeps it.
      const card = parseCard(alice.card('alice'));
      expect(Buffer.from(card.mix!.inbox).equals(Buffer.from(alice.mixAddress!.inbox))).to.equal(true);
      expect(Buffer.from(card.mix!.gateway).equals(Buffer.from(relays[0]!.identity.publicKey))).to.equal(true);
      await alice.contacts.add(bob.card('bob'));
      await bob.contacts.add(alice.card('alice'));

      const toBob = nextMessage(bob, alice.address);
      const r = await alice.send(bob.address, utf8('hello bob, through the mixes'));
      const rDelivered = delivered(alice, r.id);
      expect(r.status).to.equal('mixed');
      expect(r.status === 'mixed' && r.expectedLatencyMs).to.be.above(0);
      const got = await toBob;
      expect(Buffer.from(got.data).toString()).to.equal('hello bob, through the mixes');
      expect(got.id).to.equal(r.id);
      const toAlice = nextMessage(alice, bob.address);
      const r2 = await bob.send(alice.address, utf8('hello alice'));
      const r2Delivered = delivered(bob, r2.id);
      expect(Buffer.from((await toAlice).data).toString()).to.equal('hello alice');
      // Both acknowledged through the mixes (mix.md §8.5): 'message:delivered', as over a live session.
      await Promise.all([rDelivered, r2Delivered]);

      // No mix address for this recipient: refused with a typed error, nothing sent over circuits.
      const carol = createIdentity();
      await alice.contacts.add(formatAddress(carol.publicKey), { name: 'carol' });
      const refused = await alice.send(formatAddress(carol.publicKey), utf8('x')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isAlliumError(refused) && refused.code).to.equal('ERR_MIX_UNREACHABLE');

      // A box that claims to be alice's but is sealed under mallory's pair key with bob: dropped, counted, reported.
      const mallory = createIdentity();
      const forged = sealMixMessage(mallory, bob.identity.publicKey, crypto().random(16), utf8('I am alice'));
      forged.set(alice.identity.publicKey, 1);
      const errors: AlliumError[] = [];
      bob.on('endpoint:error', (e) => errors.push(e));
      const received: IncomingMessage[] = [];
      bob.on('message:received', (m) => received.push(m));
      const raw = await client(2);
      raw.send(bob.mixAddress!, forged);
      await waitFor(() => bob.mixStats!.rejected === 1, 20_000, 'the forged message rejected');
      expect(errors.map((e) => e.code)).to.include('ERR_MESSAGE_AUTH');
      expect(received).to.have.length(0);
      raw.stop();

      // Idle: alice sends nothing, yet her gateway keeps counting her polls and her loops come back through it.
      const gw = relays[0]!.node.mix!.stats;
      const polls = gw.polls;
      const s0 = { ...alice.mixStats! };
      await waitFor(
        () => gw.polls >= polls + 3 && alice.mixStats!.loopsReturned >= s0.loopsReturned + 2 && alice.mixStats!.dropSent >= s0.dropSent + 2,
        20_000,
        'idle cover: polls at the gateway, loops back, drop cover',
      );
      // Real packets since are what was already queued then (an acknowledgement counted when queued, not when it
      // left), acknowledgements (of a copy of bob's message still under way) or copies of her earlier boxes whose
      // acknowledgement was late, never a new message of her own.
      const d = (k: 'acksSent' | 'retransmitted' | 'addressesRetransmitted'): number => alice.mixStats![k] - s0[k];
      expect(alice.mixStats!.realSent - s0.realSent).to.be.at.most(s0.waiting + d('acksSent') + d('retransmitted') + d('addressesRetransmitted'));
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('acknowledges message-mode messages: one whose recipient did not poll is sent again and delivered once', async () => {
    const gate = { polls: true };
    const alice = new Messenger(mixHost(0), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    const bob = new Messenger(mixHost(1, gate), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    try {
      await Promise.all([alice.startMessageMode(), bob.startMessageMode()]);
      await alice.contacts.add(bob.card('bob'));
      await bob.contacts.add(alice.card('alice'));
      const received: string[] = [];
      bob.on('message:received', (m) => received.push(Buffer.from(m.data).toString()));
      const failed: AlliumError[] = [];
      alice.on('message:failed', (f) => failed.push(f.error));

      // Bob stops polling: the first packet waits at his gateway, no acknowledgement comes, alice sends it again.
      gate.polls = false;
      const r = await alice.send(bob.address, utf8('sent until acknowledged'));
      const isDelivered = delivered(alice, r.id);
      await waitFor(() => alice.mixStats!.retransmitted >= 1, 20_000, 'a retransmission');
      const acksBefore = bob.mixStats!.acksSent;
      gate.polls = true;
      await isDelivered;
      // Every copy alice queued leaves and reaches bob, who acknowledges each and delivers the message once.
      const copies = 1 + alice.mixStats!.retransmitted;
      await waitFor(() => bob.mixStats!.acksSent - acksBefore >= copies, 20_000, 'every copy opened and acknowledged');
      expect(received).to.deep.equal(['sent until acknowledged']);
      expect(alice.mixStats!.pending).to.equal(0);
      expect(alice.mixStats!.acksReceived).to.equal(1);
      expect(failed).to.have.length(0);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('carries a Messenger message over MAX_MIX_MESSENGER_BYTES in fragments, reassembled and acknowledged as a whole (mix.md §8.4)', async () => {
    const alice = new Messenger(mixHost(0), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    const bob = new Messenger(mixHost(1), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    try {
      await Promise.all([alice.startMessageMode(), bob.startMessageMode()]);
      await alice.contacts.add(bob.card('bob'));
      await bob.contacts.add(alice.card('alice'));
      const long = crypto().random(2000); // 4 fragments
      const toBob = nextMessage(bob, alice.address);
      const r = await alice.send(bob.address, long);
      const isDelivered = delivered(alice, r.id);
      expect(r.status).to.equal('mixed');
      const got = await toBob;
      expect(Buffer.from(got.data).equals(Buffer.from(long))).to.equal(true);
      expect(got.id).to.equal(r.id);
      await isDelivered;
      expect(alice.mixStats!.fragmentsSent % 4).to.equal(0);
      expect(bob.mixStats!.reassembled).to.be.at.least(1);
      expect(bob.mixStats!.rejected).to.equal(0);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it("reports a contact that never acknowledges our address box: 'contact:address-unacknowledged' names it (mix.md §8.6)", async () => {
    // Bob has not added alice: he delivers her message but acknowledges neither it nor her address box.
    const fast = { sendRate: 50, loopRate: 0, pollRate: 50, delayMeanMs: 5 };
    const alice = new Messenger(mixHost(0), createIdentity(), { messageMode: 'mix', mix: fast });
    const bob = new Messenger(mixHost(1), createIdentity(), { messageMode: 'mix', mix: fast });
    try {
      await Promise.all([alice.startMessageMode(), bob.startMessageMode()]);
      await alice.contacts.add(bob.card('bob'));
      const unreached: { address: string; name?: string }[] = [];
      alice.on('contact:address-unacknowledged', (u) => unreached.push(u));
      const failed = new Promise<void>((resolve) => alice.on('message:failed', () => resolve()));
      await alice.send(bob.address, utf8('from a stranger'));
      await failed;
      await waitFor(() => unreached.length > 0, 20_000, 'the address box given up');
      expect(unreached).to.deep.equal([{ address: bob.address, name: 'bob' }]);
      expect(alice.mixStats!.addressesUnacknowledged).to.equal(1);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('moves a Messenger whose gateway changed: the old inbox drained, its contact told the new address (mix.md §8.6)', async () => {
    // Alice's host names relay `gw.current` as her gateway; the test changes it and closes her link, as when her
    // guard expires. mixLink opens a link to a former gateway, to drain its inbox.
    const gw = { current: 0 };
    const aliceLinks: Link[] = [];
    const host: MessengerHost = {
      ...mixHost(0),
      mixGateway: async () => {
        const relay = relays[gw.current]!;
        const link = await linkTo(relay);
        aliceLinks.push(link);
        return { identity: relay.identity.publicKey, link };
      },
      mixLink: (identity) => linkTo(relays.find((r) => crypto().equal(r.identity.publicKey, identity))!),
    };
    const alice = new Messenger(host, createIdentity(), { messageMode: 'mix', mix: mixSettings });
    const bob = new Messenger(mixHost(1), createIdentity(), { messageMode: 'mix', mix: mixSettings });
    try {
      await Promise.all([alice.startMessageMode(), bob.startMessageMode()]);
      await alice.contacts.add(bob.card('bob'));
      await bob.contacts.add(alice.card('alice'));
      const received: string[] = [];
      alice.on('message:received', (m) => received.push(Buffer.from(m.data).toString()));
      const r = await alice.send(bob.address, utf8('before the move'));
      await delivered(alice, r.id);

      gw.current = 3; // relay 2's deliveries are counted by a later test
      aliceLinks[0]!.close();
      // Bob still holds the old address: this lands in alice's inbox at relay 0, which she keeps polling.
      await bob.send(alice.address, utf8('to the old gateway'));
      await waitFor(() => received.includes('to the old gateway'), 20_000, 'the old inbox drained');
      const moved = async (): Promise<boolean> => {
        const record = await bob.contacts.byAddress(alice.address);
        return Buffer.from(record!.mix!.gateway).equals(Buffer.from(relays[3]!.identity.publicKey));
      };
      await waitFor(moved, 20_000, "bob's record of alice moved by her address box");
      expect(Buffer.from(parseCard(alice.card('alice')).mix!.gateway).equals(Buffer.from(relays[3]!.identity.publicKey)), 'the card moved').to.equal(true);

      const r2 = await bob.send(alice.address, utf8('to the new gateway'));
      await delivered(bob, r2.id);
      expect(received).to.include('to the new gateway');
      expect(alice.mixStats!.gatewayChanges).to.equal(1);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('drops a replayed packet at the mix (ERR_MIX_REPLAY), the first copy delivered once', async () => {
    const link = await linkTo(relays[2]!);
    const secret = crypto().random(32);
    const payload = crypto().random(MIX_PAYLOAD_LEN);
    const packet = createMixPacket(
      [{ identity: infos[2]!.identity, mixKey: infos[2]!.mixKey, delayMs: 0 }],
      { kind: 'deliver', inbox: mixInbox(secret) },
      payload,
    );
    const before = await metric(relays[2]!, 'mix_replay');
    link.sendCell(0, CellCommand.MIX, packet);
    link.sendCell(0, CellCommand.MIX, packet);
    await waitFor(async () => (await metric(relays[2]!, 'mix_replay')) === before + 1, 10_000, 'the replay counted');
    const mails: boolean[] = [];
    link.on('link:cell', (cell) => cell.command === CellCommand.MIX_MAIL && mails.push(decodeMixMailBody(cell.body).mail));
    link.sendCell(0, CellCommand.MIX_POLL, mixPollBody(secret));
    link.sendCell(0, CellCommand.MIX_POLL, mixPollBody(secret));
    await waitFor(() => mails.length === 4, 10_000, 'two answers of two cells');
    expect(mails.filter(Boolean)).to.have.length(1);
    expect(relays[2]!.node.mix!.stats.delivered).to.equal(1);
  });

  it('holds a flood from one link to MAX_MIX_QUEUE_PER_LINK and still carries another client’s packet', async () => {
    const target = relays[3]!;
    const flood = await linkTo(target);
    const sink = mixInbox(crypto().random(32));
    const n = MAX_MIX_QUEUE_PER_LINK + 150;
    const hop = [{ identity: infos[3]!.identity, mixKey: infos[3]!.mixKey, delayMs: 30_000 }];
    // The relay's count includes the earlier tests' packets (cover through it): wait for the flood's own.
    const before = target.node.mix!.stats.received;
    for (let i = 0; i < n; i++) flood.sendCell(0, CellCommand.MIX, createMixPacket(hop, { kind: 'deliver', inbox: sink }, new Uint8Array(MIX_PAYLOAD_LEN)));
    await waitFor(() => target.node.mix!.stats.received >= before + n, 30_000, 'the flood read');
    const held = Math.max(...[...target.node.links].map((l) => target.node.mix!.queuedFrom(l)));
    expect(held, 'packets held from the flooding link').to.equal(MAX_MIX_QUEUE_PER_LINK);
    expect(await metric(target, 'mix_queue_link')).to.equal(150);

    const carol = await client(3);
    const dave = await client(0);
    const got = new Promise<Uint8Array>((resolve) => dave.once('mix:message', (data) => resolve(data)));
    carol.send(dave.address, utf8('still served'));
    expect(Buffer.from(await got).toString()).to.equal('still served');
  });

  it('holds floods from many links of one address block to MAX_MIX_QUEUE_PER_BLOCK together', async () => {
    const target = relays[2]!;
    const perLink = MAX_MIX_QUEUE_PER_LINK;
    const nLinks = Math.ceil(MAX_MIX_QUEUE_PER_BLOCK / perLink) + 1; // more than the block's share, each within its own
    const floods = await Promise.all(Array.from({ length: nLinks }, () => linkTo(target)));
    const sink = mixInbox(crypto().random(32));
    const hop = [{ identity: infos[2]!.identity, mixKey: infos[2]!.mixKey, delayMs: 30_000 }];
    const before = target.node.mix!.stats.received;
    for (const f of floods)
      for (let i = 0; i < perLink; i++) f.sendCell(0, CellCommand.MIX, createMixPacket(hop, { kind: 'deliver', inbox: sink }, new Uint8Array(MIX_PAYLOAD_LEN)));
    await waitFor(() => target.node.mix!.stats.received >= before + nLinks * perLink, 30_000, 'the floods read');
    // Every link is 127.0.0.1: one block, whose share all the links together cannot pass.
    expect(target.node.mix!.queued, 'packets held from the block').to.equal(MAX_MIX_QUEUE_PER_BLOCK);
    expect(await metric(target, 'mix_queue_block')).to.equal(nLinks * perLink - MAX_MIX_QUEUE_PER_BLOCK);
  });
});
