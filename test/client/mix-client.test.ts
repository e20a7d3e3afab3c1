/**
 * The message-mode client (specs/mix.md §5.1) over an in-memory network: packets are peeled hop by hop with the real
 * mix code (protocol/mix-packet.ts) and deposited straight into the recipient. A real message whose packet could not
 * leave in its slot — the link down, or its gateway out of the consensus — goes back to the head of the queue and
 * leaves in a later slot, exactly once. Two Messengers' message modes (specs/mix.md §8.5) over the same in-memory
 * network: a message is acknowledged ('delivered'); one whose recipient never answers is sent 1 + MIX_MAX_RETRANSMITS
 * times and given up with ERR_MIX_UNACKNOWLEDGED.
 */
import { expect } from 'chai';
import { MixClient, type MixRelayInfo } from '../../client/messaging/mix-mode.js';
import { crypto, type KeyPair } from '../../crypto/index.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { decodeMixPollBody, mixMailBody } from '../../protocol/mix-cells.js';
import { mixInbox, processMixPacket } from '../../protocol/mix-packet.js';
import type { CardMixAddress } from '../../protocol/contact-card.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { waitFor } from '../helpers/network.js';
import { mixAddressVerdict } from '../../client/messaging/contacts.js';
import {
  MAX_MIX_REASSEMBLY,
  MessengerMix,
  MIX_ACK_BURST,
  MIX_MAX_RETRANSMITS,
  MIX_REASSEMBLY_PER_PEER,
  MIX_REASSEMBLY_STRANGERS,
} from '../../client/messaging/messenger-mix.js';
import {
  MAX_MIX_FRAGMENTED_BYTES,
  MIX_ACK_BATCH,
  MIX_READS_BATCHES_MARK,
  MIX_SEQ_AHEAD_MS,
  mixFragmentCount,
  sealMixFragments,
  mixSecretsOf,
  openMixMessage,
  sealMixAck,
  sealMixAckBatch,
  sealMixAddress,
  sealMixMessage,
} from '../../protocol/mix-message.js';
import { loadMixState, saveMixState } from '../../client/messaging/mix-store.js';
import { memoryGroupStorage, type GroupStorage } from '../../client/messaging/group-store.js';
import type { MessengerHost } from '../../client/messaging/types.js';
import { CellCommand, type Cell } from '../../protocol/cell.js';
import { createIdentity, type Identity } from '../../protocol/address.js';
import type { AlliumError } from '../../protocol/errors.js';
import type { Link } from '../../net/link.js';

interface FakeMix extends MixRelayInfo {
  readonly keys: KeyPair;
  readonly replay: ReplayFilter;
}

const mixBytes = (m: CardMixAddress): Uint8Array => concatBytes(m.gateway, m.inbox, m.key);

describe('message mode: the client keeps a real message whose packet could not leave (mix.md §5.1)', () => {
  let mixes: FakeMix[] = [];
  const clients: MixClient[] = [];
  before(() => {
    mixes = Array.from({ length: 4 }, () => {
      const keys = crypto().x25519Keypair();
      return { identity: createIdentity().publicKey, mixKey: keys.publicKey, keys, replay: new ReplayFilter({ capacity: 1000 }) };
    });
  });
  after(() => clients.forEach((c) => c.stop()));

  /** Carries `packet` from its first hop (`gateway`) to the end; a delivery into `to`'s inbox becomes its mail. */
  const route = (gateway: Uint8Array, packet: Uint8Array, to: MixClient): void => {
    let at = mixes.find((m) => crypto().equal(m.identity, gateway))!;
    for (;;) {
      const r = processMixPacket(packet, { identity: at.identity, keys: [at.keys], replay: at.replay });
      if (r.kind === 'drop') return;
      if (r.kind === 'deliver') {
        if (crypto().equal(r.inbox, to.address.inbox)) to.onMail(mixMailBody(true, r.payload));
        return;
      }
      packet = r.packet;
      at = mixes.find((m) => crypto().equal(m.identity, r.next))!;
    }
  };

  /**
   * Alice (gateway mixes[0], fast payload stream, no loops) and Bob (gateway mixes[1], never polls: mail is handed
   * to him directly). `linkUp(n)` says whether alice's n-th packet cell reaches the link; `consensus(n)` what the
   * n-th look at the mix relays returns.
   */
  const pair = (o: {
    cover: boolean;
    linkUp?: (n: number) => boolean;
    consensus?: (n: number) => MixRelayInfo[];
  }): { alice: MixClient; bob: MixClient; received: string[]; packets: () => number } => {
    let packets = 0;
    let looks = 0;
    const bob = new MixClient({ send: () => true, mixes: () => mixes }, { gateway: mixes[1]!.identity, cover: false, pollRate: 0 });
    const alice = new MixClient(
      {
        send: (kind, body) => {
          if (kind !== 'packet') return true;
          if (!(o.linkUp ?? (() => true))(packets++)) return false;
          route(mixes[0]!.identity, body, bob);
          return true;
        },
        mixes: () => (o.consensus ?? (() => mixes))(looks++),
      },
      { gateway: mixes[0]!.identity, cover: o.cover, sendRate: 200, loopRate: 0, pollRate: o.cover ? 0 : 200, delayMeanMs: 0 },
    );
    const received: string[] = [];
    bob.on('mix:message', (data) => received.push(Buffer.from(data).toString()));
    clients.push(alice, bob);
    return { alice, bob, received, packets: () => packets };
  };

  it('the link down for its first slots: the message leaves in a later slot, once', async () => {
    const { alice, bob, received, packets } = pair({ cover: true, linkUp: (n) => n >= 3 });
    const sent: string[] = [];
    alice.on('mix:sent', (id) => sent.push(Buffer.from(id).toString('hex')));
    alice.send(bob.address, utf8('kept'));
    alice.start();
    await waitFor(() => packets() >= 12, 10_000, 'a dozen payload slots');
    alice.stop();
    expect(received).to.deep.equal(['kept']);
    expect(alice.waiting).to.equal(0);
    expect(alice.stats.realSent, 'counted once, when it left').to.equal(1);
    expect(sent).to.have.length(1);
  });

  it('a message whose data cannot be made at its slot (the function throws) fails alone: left and failed run, the lane goes on', async () => {
    const { alice, bob, received } = pair({ cover: true });
    const calls: string[] = [];
    alice.send(
      bob.address,
      () => {
        throw new Error('cannot seal');
      },
      { left: () => calls.push('left'), failed: (e) => calls.push(`failed ${e.code}`) },
    );
    alice.send(bob.address, utf8('next'));
    alice.start();
    await waitFor(() => received.length > 0, 10_000, 'the next message');
    alice.stop();
    expect(calls).to.deep.equal(['left', 'failed ERR_INTERNAL']);
    expect(received).to.deep.equal(['next']);
    expect(alice.stats.realSent).to.equal(1);
  });

  it('a message to a recipient key of small order (no box can be sealed to it) fails alone at its slot; the lane goes on', async () => {
    const { alice, bob, received } = pair({ cover: true });
    const calls: string[] = [];
    alice.send({ ...bob.address, key: new Uint8Array(32) }, utf8('lost'), { left: () => calls.push('left'), failed: (e) => calls.push(`failed ${e.code}`) });
    alice.send(bob.address, utf8('next'));
    alice.start();
    await waitFor(() => received.length > 0, 10_000, 'the next message');
    alice.stop();
    expect(calls).to.deep.equal(['left', 'failed ERR_BAD_POINT']);
    expect(received).to.deep.equal(['next']);
  });

  it('a mix relay listed with a key of small order: packets through it cannot leave, the message waits for a slot whose path avoids it, the stream goes on', async () => {
    const bad: MixRelayInfo = { identity: createIdentity().publicKey, mixKey: new Uint8Array(32) };
    const { alice, bob, received } = pair({ cover: true, consensus: () => [...mixes, bad] });
    const errors: string[] = [];
    alice.on('mix:error', (e) => errors.push(`${e.code} ${e.message}`));
    for (let i = 0; i < 5; i++) alice.send(bob.address, utf8(`m${i}`));
    alice.start();
    await waitFor(() => received.length >= 5, 10_000, 'all five messages');
    alice.stop();
    expect(received).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(errors).to.deep.equal([]);
  });

  it('its gateway out of the consensus for a while: the message waits at the head of the queue', async () => {
    const { alice, bob, received } = pair({ cover: true, consensus: (n) => (n < 6 ? mixes.slice(1) : mixes) });
    alice.send(bob.address, utf8('first'));
    alice.send(bob.address, utf8('second'));
    alice.start();
    await waitFor(() => received.length >= 2 || alice.stats.dropSent >= 10, 10_000, 'both messages, or ten cover slots');
    alice.stop();
    expect(received, 'both, in order').to.deep.equal(['first', 'second']);
    expect(alice.waiting).to.equal(0);
  });

  /** A link to the gateway that carries MIX packets through `route` and hands mail to whoever owns the inbox. */
  const links = new Map<string, { cell: (c: Cell) => void; up: boolean }>();
  const fakeLink = (owner: { key?: string; up: boolean }): Link => {
    const me = { cell: (_c: Cell): void => undefined, up: true };
    return {
      get isOpen() {
        return true;
      },
      on: (_e: string, f: (c: Cell) => void) => (me.cell = f),
      sendCell: (_circ: number, command: CellCommand, body: Uint8Array) => {
        if (owner.key && !links.has(owner.key)) links.set(owner.key, me);
        if (command !== CellCommand.MIX || !owner.up) return;
        let at = mixes[0]!;
        let packet = body;
        for (;;) {
          const r = processMixPacket(packet, { identity: at.identity, keys: [at.keys], replay: at.replay });
          if (r.kind === 'drop') return;
          if (r.kind === 'deliver') {
            links.get(Buffer.from(r.inbox).toString('hex'))?.cell({ circId: 0, command: CellCommand.MIX_MAIL, body: mixMailBody(true, r.payload) } as Cell);
            return;
          }
          packet = r.packet;
          at = mixes.find((m) => crypto().equal(m.identity, r.next))!;
        }
      },
    } as unknown as Link;
  };
  const messengerMix = (
    identity: Identity,
    owner: { key?: string; up: boolean },
    events: { delivered: string[]; failed: AlliumError[]; received: string[] },
  ): { m: MessengerMix; know: (b: Map<string, MessengerMix['address']>) => void } => {
    const host = {
      mixGateway: () => Promise.resolve({ identity: mixes[0]!.identity, link: fakeLink(owner) }),
      mixRelays: () => mixes,
    } as unknown as MessengerHost;
    let book: Map<string, MessengerMix['address']> = new Map();
    const m = new MessengerMix(
      host,
      identity,
      { sendRate: 200, loopRate: 0, pollRate: 200, delayMeanMs: 0 },
      {
        message: (_from, _id, body) => events.received.push(Buffer.from(body).toString()),
        mixAddressOf: (from) => Promise.resolve(book.get(Buffer.from(from).toString('hex'))),
        mixContacts: () => Promise.resolve([]),
        isContact: (from) => Promise.resolve(book.has(Buffer.from(from).toString('hex'))),
        addressChanged: () => Promise.resolve(false),
        delivered: (_to, id) => events.delivered.push(Buffer.from(id).toString('hex')),
        failed: (_to, _id, e) => events.failed.push(e),
        error: () => undefined,
      },
    );
    return { m, know: (b: typeof book) => (book = b) };
  };

  it('a Messenger: a message is acknowledged; one never answered is given up after MIX_MAX_RETRANSMITS (mix.md §8.5)', async () => {
    const ev = () => ({ delivered: [] as string[], failed: [] as AlliumError[], received: [] as string[] });
    const [ea, eb] = [ev(), ev()];
    const a = { up: true } as { key?: string; up: boolean };
    const b = { up: true } as { key?: string; up: boolean };
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const alice = messengerMix(aliceId, a, ea);
    const bob = messengerMix(bobId, b, eb);
    await Promise.all([alice.m.start(), bob.m.start()]);
    a.key = Buffer.from(alice.m.address!.inbox).toString('hex');
    b.key = Buffer.from(bob.m.address!.inbox).toString('hex');
    const [aliceKey, bobKey] = [aliceId.publicKey, bobId.publicKey];
    bob.know(new Map([[Buffer.from(aliceKey).toString('hex'), alice.m.address]]));
    try {
      await waitFor(() => links.size >= 2, 10_000, 'both links in use');
      const id = crypto().random(16);
      alice.m.send(bobKey, bob.m.address!, id, utf8('acknowledge me'));
      await waitFor(() => ea.delivered.length === 1, 10_000, 'the acknowledgement');
      expect(ea.delivered).to.deep.equal([Buffer.from(id).toString('hex')]);
      // (A copy may have gone out if the acknowledgement was slower than the timer: each is delivered to the caller,
      // which drops copies by id.)
      expect(eb.received).to.include('acknowledge me');
      expect(eb.received.every((x) => x === 'acknowledge me')).to.equal(true);
      expect(alice.m.unacknowledged).to.equal(0);

      // Bob's packets no longer leave his link: every copy reaches him, no acknowledgement comes back.
      b.up = false;
      const before = alice.m.acks.retransmitted;
      const lost = crypto().random(16);
      alice.m.send(bobKey, bob.m.address!, lost, utf8('never acknowledged'));
      await waitFor(() => ea.failed.length === 1, 10_000, 'the message given up');
      expect(ea.failed[0]!.code).to.equal('ERR_MIX_UNACKNOWLEDGED');
      expect(alice.m.acks.retransmitted - before).to.equal(MIX_MAX_RETRANSMITS);
      expect(alice.m.acks.unacknowledged).to.equal(1);
      expect(alice.m.unacknowledged).to.equal(0);
      expect(eb.received.filter((x) => x === 'never acknowledged')).to.have.length(1 + MIX_MAX_RETRANSMITS);
      expect(ea.delivered).to.have.length(1);
    } finally {
      alice.m.close();
      bob.m.close();
    }
  });

  /**
   * Gateways that hold mail as relays do (mix.md §4): a packet delivered at gateway G into inbox I waits in G's
   * store until a link to G polls I. `gatewayLink(G)` is a link to G; `down()` closes it. With `gate`, a MIX cell
   * is refused (thrown, as by a link closed under its sender) while `gate.shut`, and `gate.sent()` follows each one
   * that passes.
   */
  const held = new Map<string, Uint8Array[]>();
  type Gate = { shut: boolean; sent: () => void };
  const gatewayLink = (gateway: Uint8Array, gate?: Gate): Link & { down(): void } => {
    let open = true;
    let onCell = (_c: Cell): void => undefined;
    return {
      get isOpen() {
        return open;
      },
      down: () => (open = false),
      on: (_e: string, f: (c: Cell) => void) => (onCell = f),
      sendCell: (_circ: number, command: CellCommand, body: Uint8Array) => {
        if (!open) throw new Error('link closed');
        if (command === CellCommand.MIX_POLL) {
          const at = Buffer.from(gateway).toString('hex') + Buffer.from(mixInbox(decodeMixPollBody(body))).toString('hex');
          const mail = held.get(at) ?? [];
          held.delete(at);
          for (const payload of mail) onCell({ circId: 0, command: CellCommand.MIX_MAIL, body: mixMailBody(true, payload) } as Cell);
          return;
        }
        if (command !== CellCommand.MIX) return;
        if (gate?.shut) throw new Error('link closed');
        try {
          route(
            mixes.find((m) => crypto().equal(m.identity, gateway))!,
            body,
          );
        } finally {
          gate?.sent();
        }
      },
    } as unknown as Link & { down(): void };
    function route(hop: FakeMix, packet: Uint8Array): void {
      for (;;) {
        const r = processMixPacket(packet, { identity: hop.identity, keys: [hop.keys], replay: hop.replay });
        if (r.kind === 'drop') return;
        if (r.kind === 'deliver') {
          const at = Buffer.from(hop.identity).toString('hex') + Buffer.from(r.inbox).toString('hex');
          held.set(at, [...(held.get(at) ?? []), r.payload]);
          return;
        }
        packet = r.packet;
        hop = mixes.find((m) => crypto().equal(m.identity, r.next))!;
      }
    }
  };

  /**
   * A Messenger's message mode whose host names `gateway.current` (changed by the test) and whose contact book is
   * `book` (identity key → its mix address; a key with undefined is a contact without one).
   */
  const moving = (
    identity: Identity,
    gateway: { current: Uint8Array },
    gate?: Gate,
    storage?: GroupStorage,
    monotonic?: () => number,
    reassemblyTtlMs?: number,
  ) => {
    const ev = { delivered: [] as string[], failed: [] as AlliumError[], received: [] as string[], errors: [] as AlliumError[], unreached: [] as string[] };
    const book = new Map<string, CardMixAddress | undefined>();
    const seqs = new Map<string, number>();
    /** Calls of addressChanged (each a write of the book when it applies). */
    const changes = { n: 0 };
    const links: (Link & { down(): void })[] = [];
    const open = (g: Uint8Array): Link & { down(): void } => {
      // A gated messenger keeps its one link: a MIX cell refused makes it ask for the link again.
      const l = (gate && links[0]) || gatewayLink(g, gate);
      if (!links.includes(l)) links.push(l);
      return l;
    };
    const host = {
      mixGateway: () => Promise.resolve({ identity: gateway.current, link: open(gateway.current) }),
      mixRelays: () => mixes,
      mixLink: (g: Uint8Array) => Promise.resolve(open(g)),
    } as unknown as MessengerHost;
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const m = new MessengerMix(
      host,
      identity,
      { sendRate: 200, loopRate: 0, pollRate: 200, delayMeanMs: 0 },
      {
        message: (_from, _id, body) => ev.received.push(Buffer.from(body).toString()),
        mixAddressOf: (from) => Promise.resolve(book.get(h(from))),
        mixContacts: () => Promise.resolve([...book].flatMap(([k, mix]) => (mix ? [{ key: Buffer.from(k, 'hex'), mix }] : []))),
        isContact: (from) => Promise.resolve(book.has(h(from))),
        // As the contact book does (mix.md §8.6, the same rule).
        addressChanged: (from, mix, seq) => {
          changes.n++;
          if (!book.has(h(from))) return Promise.resolve(false);
          const have = book.get(h(from));
          const v = mixAddressVerdict(have && mixBytes(have), seqs.get(h(from)), mixBytes(mix), seq, Date.now());
          if (v === 'applied' || v === 'unchanged') seqs.set(h(from), seq);
          if (v === 'applied') book.set(h(from), mix);
          return Promise.resolve(v);
        },
        delivered: (_to, id) => ev.delivered.push(h(id)),
        failed: (_to, _id, e) => ev.failed.push(e),
        addressUnacknowledged: (to) => ev.unreached.push(h(to)),
        error: (e) => ev.errors.push(e),
      },
      storage,
      monotonic,
      reassemblyTtlMs,
    );
    return { m, ev, book, links, seqs, changes };
  };

  it('a Messenger whose gateway changes moves there, drains the old inbox and tells its contacts (mix.md §8.6)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const aliceGateway = { current: mixes[2]!.identity };
    const alice = moving(aliceId, aliceGateway);
    const bob = moving(bobId, { current: mixes[3]!.identity });
    await Promise.all([alice.m.start(), bob.m.start()]);
    const old = alice.m.address!;
    alice.book.set(Buffer.from(bobId.publicKey).toString('hex'), bob.m.address);
    bob.book.set(Buffer.from(aliceId.publicKey).toString('hex'), old);
    try {
      const first = crypto().random(16);
      alice.m.send(bobId.publicKey, bob.m.address!, first, utf8('before'));
      await waitFor(() => alice.ev.delivered.length === 1, 10_000, 'the first acknowledgement');

      // Alice's guard changes: her link closes and her host names another gateway. Bob still writes to the old
      // address, and Alice has a message queued.
      aliceGateway.current = mixes[1]!.identity;
      alice.links[0]!.down();
      bob.m.send(aliceId.publicKey, old, crypto().random(16), utf8('to the old inbox'));
      const queued = crypto().random(16);
      alice.m.send(bobId.publicKey, bob.m.address!, queued, utf8('queued across the change'));

      await waitFor(() => alice.ev.received.includes('to the old inbox'), 10_000, 'the old inbox drained');
      await waitFor(() => alice.ev.delivered.includes(Buffer.from(queued).toString('hex')), 10_000, 'the queued message delivered');
      const aliceKey = Buffer.from(aliceId.publicKey).toString('hex');
      await waitFor(() => crypto().equal(bob.book.get(aliceKey)!.gateway, mixes[1]!.identity), 10_000, "bob's record moved by the address box");
      expect(Buffer.from(alice.m.address!.gateway), 'the card names the new gateway').to.deep.equal(Buffer.from(mixes[1]!.identity));
      expect(Buffer.from(alice.m.address!.inbox), 'same secrets').to.deep.equal(Buffer.from(old.inbox));

      // Bob's next message goes to the new address and is acknowledged.
      const after = crypto().random(16);
      bob.m.send(aliceId.publicKey, bob.book.get(aliceKey)!, after, utf8('to the new inbox'));
      await waitFor(() => bob.ev.delivered.includes(Buffer.from(after).toString('hex')), 10_000, 'the new address used');
      expect(alice.ev.received).to.include('to the new inbox');
      expect(alice.m.acks.gatewayChanges).to.equal(1);
      expect(alice.m.draining).to.equal(1);
      expect(alice.ev.errors.map((e) => e.code)).to.not.include('ERR_MIX_UNREACHABLE');
    } finally {
      alice.m.close();
      bob.m.close();
    }
    expect(alice.m.draining, 'the drain stops with the messenger').to.equal(0);
  });

  it('a contact without our mix address learns it from the address box ahead of our first message, and acknowledges (mix.md §8.6)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const alice = moving(aliceId, { current: mixes[2]!.identity });
    const bob = moving(bobId, { current: mixes[3]!.identity });
    await Promise.all([alice.m.start(), bob.m.start()]);
    const aliceKey = Buffer.from(aliceId.publicKey).toString('hex');
    alice.book.set(Buffer.from(bobId.publicKey).toString('hex'), bob.m.address);
    bob.book.set(aliceKey, undefined); // a contact from a version 2 card
    try {
      const id = crypto().random(16);
      alice.m.send(bobId.publicKey, bob.m.address!, id, utf8('hello'));
      await waitFor(() => alice.ev.delivered.length + alice.ev.failed.length > 0, 10_000, 'an acknowledgement, or the message given up');
      expect(alice.ev.delivered).to.deep.equal([Buffer.from(id).toString('hex')]);
      expect(Buffer.from(bob.book.get(aliceKey)!.inbox)).to.deep.equal(Buffer.from(alice.m.address!.inbox));
      expect(bob.ev.received).to.include('hello');
      expect(bob.m.acks.addressesReceived, 'copies included').to.be.at.least(1);
      // A stranger's address box changes no book and is not acknowledged (its message is delivered, unacknowledged).
      const carolId = createIdentity();
      const carol = moving(carolId, { current: mixes[1]!.identity });
      await carol.m.start();
      try {
        carol.m.send(bobId.publicKey, bob.m.address!, crypto().random(16), utf8('from a stranger'));
        await waitFor(() => carol.ev.failed.length === 1, 10_000, "the stranger's message given up");
        expect(bob.ev.received).to.include('from a stranger');
        expect(carol.m.acks.addressesSent).to.equal(1);
        expect(carol.m.acks.addressesAcknowledged).to.equal(0);
        // Her address box given up is reported, naming bob: he may not be able to reach her (mix.md §8.6).
        await waitFor(() => carol.m.acks.addressesUnacknowledged === 1, 10_000, "carol's address box given up");
        expect(carol.ev.unreached).to.deep.equal([Buffer.from(bobId.publicKey).toString('hex')]);
        expect(alice.ev.unreached, 'an acknowledged address box is not reported').to.deep.equal([]);
        expect([...bob.book.keys()]).to.deep.equal([aliceKey]);
      } finally {
        carol.m.close();
      }
    } finally {
      alice.m.close();
      bob.m.close();
    }
  });

  it("a contact's flood of boxes: acknowledgements rate-limited, and our own message waits behind at most one acknowledgement a slot (mix.md §5.2, §8.5)", async () => {
    const N = 40;
    const [bobId, malloryId, aliceId] = [createIdentity(), createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    // Bob's MIX cells are refused while the flood comes in, so every acknowledgement he queues is still waiting when
    // his own message is queued; then each of his packets is numbered by the slot it left in.
    const aliceMix = mixSecretsOf(aliceId);
    const aliceAddress = { gateway: mixes[1]!.identity, inbox: aliceMix.inbox, key: aliceMix.keys.publicKey };
    const aliceHeld = (): number => held.get(h(mixes[1]!.identity) + h(aliceMix.inbox))?.length ?? 0;
    let slots = 0;
    const toAlice: number[] = [];
    const gate: Gate = {
      shut: true,
      sent: () => {
        if (aliceHeld() > toAlice.length) toAlice.push(slots);
        slots++;
      },
    };
    const bob = moving(bobId, { current: mixes[3]!.identity }, gate);
    const mallory = moving(malloryId, { current: mixes[2]!.identity });
    await Promise.all([bob.m.start(), mallory.m.start()]);
    bob.book.set(h(malloryId.publicKey), mallory.m.address);
    bob.book.set(h(aliceId.publicKey), aliceAddress);
    mallory.book.set(h(bobId.publicKey), bob.m.address);
    try {
      for (let i = 0; i < N; i++) mallory.m.send(bobId.publicKey, bob.m.address!, crypto().random(16), utf8(`flood ${i}`));
      const handled = (): number => bob.ev.received.length + (bob.m.acks.acksLimited ?? 0);
      await waitFor(() => handled() >= N, 10_000, "mallory's boxes opened at bob");
      mallory.m.close();
      await new Promise((r) => setImmediate(r));

      const own = crypto().random(16);
      bob.m.send(aliceId.publicKey, aliceAddress, own, utf8('my own')); // an address box to alice, then the message
      gate.shut = false;
      await waitFor(() => toAlice.length >= 2 || slots >= 4 * N, 10_000, "bob's own two boxes, or many slots");
      expect(bob.m.acks.acksSent, 'acknowledgements were waiting ahead').to.be.at.least(2);
      // The lanes alternate: ack, address box, ack, message — never more than MIX_ACKS_AHEAD (1) ahead of each.
      // (Alice never answers: retransmissions may follow, after these two.)
      expect(toAlice.length, "slots in which bob's own boxes left").to.be.at.least(2);
      expect(toAlice[1], "the slot of bob's own message").to.be.at.most(3);
      // Over the rate: dropped, neither delivered nor acknowledged (mallory retransmits, then gives up).
      expect(bob.m.acks.acksLimited).to.be.greaterThan(0);
      expect(bob.ev.received.length).to.be.below(N);
      expect(bob.m.acks.acksSent, "one for each box delivered, and mallory's address box").to.equal(bob.ev.received.length + 1);
      expect(bob.ev.received.length).to.be.at.least(MIX_ACK_BURST - 1);
    } finally {
      bob.m.close();
      mallory.m.close();
    }
  });

  /** `data` (a box as `from`'s messenger seals it) deposited straight into `to`'s inbox at its gateway `g`. */
  const depositTo = (to: MessengerMix, g: FakeMix, data: Uint8Array): void => {
    const f = new Uint8Array(643);
    f[0] = 1;
    f.set(crypto().random(16), 1);
    f[17] = data.length >>> 8;
    f[18] = data.length & 0xff;
    f.set(data, 19);
    const k = Buffer.from(g.identity).toString('hex') + Buffer.from(to.address!.inbox).toString('hex');
    held.set(k, [...(held.get(k) ?? []), crypto().seal(f, to.address!.key)]);
  };

  /** The acknowledgement packets held for `to` (identity `id`) at its gateway `g`: the ids each acknowledges. */
  const acksHeldFor = (id: Identity, g: FakeMix): Uint8Array[][] => {
    const s = mixSecretsOf(id);
    const k = Buffer.from(g.identity).toString('hex') + Buffer.from(s.inbox).toString('hex');
    return (held.get(k) ?? []).map((payload) => {
      const f = crypto().open(payload, s.keys)!;
      const m = openMixMessage(id, f.subarray(19, 19 + ((f[17]! << 8) | f[18]!)));
      return m.kind === 'ack' ? [m.id] : m.kind === 'acks' ? [...m.acked!] : [];
    });
  };

  it("acknowledgements of a contact's boxes that wait together leave in one packet: 40 boxes, 2 slots (mix.md §8.5)", async () => {
    const N = 40;
    const [bobId, malloryId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    // Bob's MIX cells are refused while the boxes come in, so his acknowledgements wait together; his bucket refills
    // a token at each box (a clock a second later at each look), so none is over the rate.
    let slots = 0;
    const gate: Gate = { shut: true, sent: () => slots++ };
    let t = 0;
    const bob = moving(bobId, { current: mixes[3]!.identity }, gate, undefined, () => (t += 1000));
    await bob.m.start();
    const m = mixSecretsOf(malloryId);
    bob.book.set(h(malloryId.publicKey), { gateway: mixes[2]!.identity, inbox: m.inbox, key: m.keys.publicKey });
    try {
      const ids = Array.from({ length: N }, () => crypto().random(16));
      for (const [i, id] of ids.entries()) depositTo(bob.m, mixes[3]!, sealMixMessage(malloryId, bobId.publicKey, id, utf8(`box ${i}`)));
      await waitFor(() => bob.ev.received.length >= N, 10_000, "mallory's boxes delivered at bob");
      expect(bob.m.acks.acksLimited).to.equal(0);
      gate.shut = false;
      const acked = (): Set<string> => new Set(acksHeldFor(malloryId, mixes[2]!).flat().map(h));
      await waitFor(() => acked().size >= N, 10_000, 'every box acknowledged');
      expect([...acked()].sort()).to.deep.equal(ids.map(h).sort());
      // One packet for each MIX_ACK_BATCH ids, not one for each box (before: 40 packets, 40 slots of bob's stream).
      const packets = acksHeldFor(malloryId, mixes[2]!);
      expect(packets.map((p) => p.length)).to.deep.equal([MIX_ACK_BATCH, N - MIX_ACK_BATCH]);
      expect([bob.m.acks.acksSent, bob.m.acks.ackPackets]).to.deep.equal([N, 2]);
    } finally {
      bob.m.close();
    }
  });

  it('boxes from a messenger from before batches (no mark in their nonces) are acknowledged one by one by kind 2; marked ones by a batch (mix.md §8.2, §8.5)', async () => {
    const [bobId, oldId, newId] = [createIdentity(), createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    // Bob's MIX cells are refused while the boxes come in, so his acknowledgements wait together.
    const gate: Gate = { shut: true, sent: () => undefined };
    let t = 0;
    const bob = moving(bobId, { current: mixes[3]!.identity }, gate, undefined, () => (t += 1000));
    await bob.m.start();
    const at = (id: Identity): CardMixAddress => {
      const s = mixSecretsOf(id);
      return { gateway: mixes[2]!.identity, inbox: s.inbox, key: s.keys.publicKey };
    };
    bob.book.set(h(oldId.publicKey), at(oldId));
    bob.book.set(h(newId.publicKey), at(newId));
    try {
      // A messenger from before batches draws its whole nonce at random: here, one that does not end with the mark.
      const unmarked = (): Uint8Array => concatBytes(crypto().random(20), new Uint8Array(4));
      const fromOld = Array.from({ length: 4 }, () => crypto().random(16));
      const fromNew = Array.from({ length: 4 }, () => crypto().random(16));
      for (const id of fromOld) depositTo(bob.m, mixes[3]!, sealMixMessage(oldId, bobId.publicKey, id, utf8('old'), unmarked()));
      for (const id of fromNew) depositTo(bob.m, mixes[3]!, sealMixMessage(newId, bobId.publicKey, id, utf8('new')));
      await waitFor(() => bob.ev.received.length >= 8, 10_000, 'the boxes delivered at bob');
      gate.shut = false;
      await waitFor(
        () => acksHeldFor(oldId, mixes[2]!).flat().length >= 4 && acksHeldFor(newId, mixes[2]!).flat().length >= 4,
        10_000,
        'every box acknowledged',
      );
      // Kind 2 alone to the old messenger, which refuses kind 4 (before: one batch of 4 it could not open).
      const kinds = (id: Identity): string[] => {
        const s = mixSecretsOf(id);
        const k = h(mixes[2]!.identity) + h(s.inbox);
        return (held.get(k) ?? []).map((payload) => {
          const f = crypto().open(payload, s.keys)!;
          const m = openMixMessage(id, f.subarray(19, 19 + ((f[17]! << 8) | f[18]!)));
          return m.readsBatches ? `${m.kind} (marked)` : m.kind;
        });
      };
      expect(kinds(oldId)).to.deep.equal(Array.from({ length: 4 }, () => 'ack (marked)'));
      expect(acksHeldFor(oldId, mixes[2]!).flat().map(h).sort()).to.deep.equal(fromOld.map(h).sort());
      // One batch to the newer messenger, whose boxes carry the mark, and whose batch's own nonce carries it too.
      expect(kinds(newId)).to.deep.equal(['acks (marked)']);
      expect(acksHeldFor(newId, mixes[2]!).flat().map(h).sort()).to.deep.equal(fromNew.map(h).sort());
      expect([bob.m.acks.acksSent, bob.m.acks.ackPackets]).to.deep.equal([8, 5]);
    } finally {
      bob.m.close();
    }
  });

  it('a batch ends only the boxes pending to its sender: unknown and repeated ids ignored, and a single acknowledgement still read (mix.md §8.5)', async () => {
    const [aliceId, bobId, carolId] = [createIdentity(), createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    // Alice's packets never leave: her boxes stay pending, their timers not started, until an acknowledgement ends them.
    const alice = moving(aliceId, { current: mixes[1]!.identity }, { shut: true, sent: () => undefined });
    await alice.m.start();
    const at = (id: Identity): CardMixAddress => {
      const s = mixSecretsOf(id);
      return { gateway: mixes[0]!.identity, inbox: s.inbox, key: s.keys.publicKey };
    };
    alice.book.set(h(bobId.publicKey), at(bobId));
    alice.book.set(h(carolId.publicKey), at(carolId));
    try {
      const [toBob, toCarol] = [crypto().random(16), crypto().random(16)];
      alice.m.send(bobId.publicKey, at(bobId), toBob, utf8('to bob'));
      alice.m.send(carolId.publicKey, at(carolId), toCarol, utf8('to carol'));
      expect(alice.m.unacknowledged).to.equal(2);
      // Bob's batch names carol's box (never sent to bob), an unknown id, and his own box twice.
      depositTo(alice.m, mixes[1]!, sealMixAckBatch(bobId, aliceId.publicKey, [toCarol, crypto().random(16), toBob, toBob]));
      await waitFor(() => alice.ev.delivered.length >= 1, 10_000, "bob's batch handled");
      expect(alice.ev.delivered).to.deep.equal([h(toBob)]);
      expect([alice.m.unacknowledged, alice.m.acks.acksReceived]).to.deep.equal([1, 1]);
      // Carol's single acknowledgement (kind 2, as before batches) ends hers.
      depositTo(alice.m, mixes[1]!, sealMixAck(carolId, aliceId.publicKey, toCarol));
      await waitFor(() => alice.ev.delivered.length >= 2, 10_000, "carol's acknowledgement handled");
      expect(alice.ev.delivered).to.deep.equal([h(toBob), h(toCarol)]);
      expect([alice.m.unacknowledged, alice.m.acks.acksReceived]).to.deep.equal([0, 2]);
    } finally {
      alice.m.close();
    }
  });

  it('a message over MAX_MIX_MESSENGER_BYTES goes in fragments, is reassembled, delivered once and acknowledged as a whole (mix.md §8.4)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const alice = moving(aliceId, { current: mixes[0]!.identity });
    const bob = moving(bobId, { current: mixes[1]!.identity });
    await Promise.all([alice.m.start(), bob.m.start()]);
    alice.book.set(h(bobId.publicKey), bob.m.address);
    bob.book.set(h(aliceId.publicKey), alice.m.address);
    try {
      const long = Array.from({ length: 300 }, (_, i) => `line ${i};`).join(''); // 2,590 bytes: 5 fragments
      const id = crypto().random(16);
      alice.m.send(bobId.publicKey, bob.m.address!, id, utf8(long));
      await waitFor(() => alice.ev.delivered.length + alice.ev.failed.length > 0, 10_000, 'the acknowledgement of the whole');
      expect(alice.ev.delivered).to.deep.equal([h(id)]);
      expect(alice.m.acks.fragmentsSent % mixFragmentCount(long.length)).to.equal(0);
      expect(mixFragmentCount(long.length)).to.equal(5);
      // Every copy delivered is the whole message (the caller drops copies by id); nothing is left half-built. (A copy
      // sent again before the acknowledgement came may still be arriving: its fragments were queued together.)
      await waitFor(() => bob.m.reassembling === 0 && bob.m.acks.reassembled === bob.ev.received.length, 10_000, 'every copy completed');
      expect(bob.ev.received.length).to.be.at.least(1);
      expect(bob.ev.received.every((x) => x === long)).to.equal(true);
      // Boxes from a messenger that reads fragments carry the mark: alice now knows bob's does.
      expect(alice.m.readsFragments(bobId.publicKey)).to.equal(true);
      // At most MAX_MIX_FRAGMENTED_BYTES: one byte more is refused before anything is queued.
      const before = alice.m.acks.fragmentsSent;
      expect(() => alice.m.send(bobId.publicKey, bob.m.address!, crypto().random(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES + 1)))
        .to.throw()
        .with.property('code', 'ERR_LIMIT');
      expect(alice.m.acks.fragmentsSent).to.equal(before);
    } finally {
      alice.m.close();
      bob.m.close();
    }
  });

  it('fragments that never complete hold no more than the reassembly bounds, and time out (mix.md §8.4)', async () => {
    const bobId = createIdentity();
    // Bob's reassembly entries live 300 ms here (120 s by default).
    const bob = moving(bobId, { current: mixes[3]!.identity }, undefined, undefined, undefined, 300);
    await bob.m.start();
    // The first fragment alone of a message of MIX_MAX_FRAGMENTS: what an attacker that never completes one sends.
    const first = (from: Identity): Uint8Array => sealMixFragments(from, bobId.publicKey, crypto().random(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES))[0]!;
    try {
      // One sender (a stranger): at most MIX_REASSEMBLY_PER_PEER entries, its oldest pushed out.
      const mallory = createIdentity();
      for (let i = 0; i < 10; i++) depositTo(bob.m, mixes[3]!, first(mallory));
      await waitFor(() => bob.m.reassembling + bob.m.acks.reassemblyDropped >= 10, 10_000, "mallory's fragments handled");
      expect([bob.m.reassembling, bob.m.acks.reassemblyDropped]).to.deep.equal([MIX_REASSEMBLY_PER_PEER, 10 - MIX_REASSEMBLY_PER_PEER]);
      // Many senders, contacts: at most MAX_MIX_REASSEMBLY entries in all (mallory's pushed out first).
      const many = Array.from({ length: 70 }, () => createIdentity());
      for (const id of many) bob.book.set(Buffer.from(id.publicKey).toString('hex'), undefined);
      for (const id of many) depositTo(bob.m, mixes[3]!, first(id));
      await waitFor(() => bob.m.acks.reassemblyDropped >= 10 + 70 - MAX_MIX_REASSEMBLY, 10_000, 'the flood handled');
      expect(bob.m.reassembling).to.equal(MAX_MIX_REASSEMBLY);
      // Nothing completes: nothing is delivered or acknowledged, and every entry is removed when its time is up.
      await waitFor(() => bob.m.reassembling === 0, 10_000, 'the entries timed out');
      expect(bob.m.acks.reassemblyDropped).to.equal(80);
      expect([bob.ev.received.length, bob.m.acks.acksSent, bob.m.acks.reassembled]).to.deep.equal([0, 0, 0]);
    } finally {
      bob.m.close();
    }
  });

  it("a flood of strangers' fragments shares MIX_REASSEMBLY_STRANGERS entries and never pushes out a contact's: the contact's message completes (mix.md §8.4)", async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const bob = moving(bobId, { current: mixes[3]!.identity });
    await bob.m.start();
    bob.book.set(h(aliceId.publicKey), undefined); // a contact (no mix address: delivered unacknowledged)
    const long = Array.from({ length: 300 }, (_, i) => `line ${i};`).join(''); // 5 fragments
    const fragments = sealMixFragments(aliceId, bobId.publicKey, crypto().random(16), utf8(long));
    const first = (from: Identity): Uint8Array => sealMixFragments(from, bobId.publicKey, crypto().random(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES))[0]!;
    try {
      depositTo(bob.m, mixes[3]!, fragments[0]!);
      await waitFor(() => bob.m.reassembling === 1, 10_000, "alice's first fragment kept");
      // More fresh identities than the whole table holds, each with the first fragment of a long message.
      const n = MAX_MIX_REASSEMBLY + 16;
      for (let i = 0; i < n; i++) depositTo(bob.m, mixes[3]!, first(createIdentity()));
      await waitFor(() => bob.m.reassembling + bob.m.acks.reassemblyDropped === 1 + n, 10_000, 'the flood handled');
      for (const f of fragments.slice(1)) depositTo(bob.m, mixes[3]!, f);
      await waitFor(() => bob.ev.received.length === 1, 10_000, "alice's message completed");
      expect(bob.ev.received).to.deep.equal([long]);
      expect(bob.m.acks.reassembled).to.equal(1);
      // The strangers kept MIX_REASSEMBLY_STRANGERS entries between them, the rest pushed out.
      expect([bob.m.reassembling, bob.m.acks.reassemblyDropped]).to.deep.equal([MIX_REASSEMBLY_STRANGERS, n - MIX_REASSEMBLY_STRANGERS]);
    } finally {
      bob.m.close();
    }
  });

  it("a table full of contacts' entries: a stranger's fragment is refused, a contact's pushes out the oldest (mix.md §8.4)", async () => {
    const bobId = createIdentity();
    const bob = moving(bobId, { current: mixes[3]!.identity });
    await bob.m.start();
    const first = (from: Identity): Uint8Array => sealMixFragments(from, bobId.publicKey, crypto().random(16), new Uint8Array(MAX_MIX_FRAGMENTED_BYTES))[0]!;
    const contacts = Array.from({ length: MAX_MIX_REASSEMBLY / MIX_REASSEMBLY_PER_PEER }, () => createIdentity());
    for (const c of contacts) bob.book.set(Buffer.from(c.publicKey).toString('hex'), undefined);
    try {
      for (const c of contacts) for (let i = 0; i < MIX_REASSEMBLY_PER_PEER; i++) depositTo(bob.m, mixes[3]!, first(c));
      await waitFor(() => bob.m.reassembling === MAX_MIX_REASSEMBLY, 10_000, "the contacts' fragments kept");
      depositTo(bob.m, mixes[3]!, first(createIdentity()));
      await waitFor(() => bob.m.acks.fragmentsRefused === 1, 10_000, "the stranger's fragment handled");
      expect([bob.m.reassembling, bob.m.acks.reassemblyDropped]).to.deep.equal([MAX_MIX_REASSEMBLY, 0]);
      const another = createIdentity();
      bob.book.set(Buffer.from(another.publicKey).toString('hex'), undefined);
      depositTo(bob.m, mixes[3]!, first(another));
      await waitFor(() => bob.m.acks.reassemblyDropped === 1, 10_000, "the contact's fragment kept");
      expect([bob.m.reassembling, bob.m.acks.fragmentsRefused]).to.deep.equal([MAX_MIX_REASSEMBLY, 1]);
    } finally {
      bob.m.close();
    }
  });

  it("the fragments mark is remembered for contacts alone: a stranger's boxes, and an acknowledgement that ends nothing, leave no mark (mix.md §8.4)", async () => {
    const [aliceId, carolId, strangerId] = [createIdentity(), createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const alice = moving(aliceId, { current: mixes[0]!.identity });
    await alice.m.start();
    const c = mixSecretsOf(carolId);
    const carolAt: CardMixAddress = { gateway: mixes[2]!.identity, inbox: c.inbox, key: c.keys.publicKey };
    alice.book.set(h(carolId.publicKey), carolAt);
    // Boxes sealed by a messenger from before fragments: no mark (the batches mark alone).
    const olderNonce = (): Uint8Array => concatBytes(crypto().random(20), MIX_READS_BATCHES_MARK);
    try {
      // A stranger's message (delivered, unacknowledged), address box, and acknowledgement of an id of ours.
      const toCarol = crypto().random(16);
      alice.m.send(carolId.publicKey, carolAt, toCarol, utf8('to carol'));
      depositTo(alice.m, mixes[0]!, sealMixMessage(strangerId, aliceId.publicKey, crypto().random(16), utf8('from a stranger'), olderNonce()));
      depositTo(alice.m, mixes[0]!, sealMixAddress(strangerId, aliceId.publicKey, crypto().random(16), carolAt, Date.now(), olderNonce()));
      depositTo(alice.m, mixes[0]!, sealMixAck(strangerId, aliceId.publicKey, toCarol, olderNonce()));
      // Carol's acknowledgement of an id pending to no one ends nothing.
      depositTo(alice.m, mixes[0]!, sealMixAck(carolId, aliceId.publicKey, crypto().random(16), olderNonce()));
      await waitFor(() => alice.ev.received.length === 1, 10_000, "the stranger's message delivered");
      // The address box and acknowledgements are handled by the time a later box is: one more from the stranger.
      depositTo(alice.m, mixes[0]!, sealMixMessage(strangerId, aliceId.publicKey, crypto().random(16), utf8('again'), olderNonce()));
      await waitFor(() => alice.ev.received.length === 2, 10_000, "the stranger's second message delivered");
      expect(alice.m.readsFragments(strangerId.publicKey)).to.equal(undefined);
      expect(alice.m.readsFragments(carolId.publicKey)).to.equal(undefined);
      expect(alice.m.unacknowledged).to.equal(1);
      // Carol's acknowledgement of her message ends it, and its mark is remembered.
      depositTo(alice.m, mixes[0]!, sealMixAck(carolId, aliceId.publicKey, toCarol, olderNonce()));
      await waitFor(() => alice.ev.delivered.length === 1, 10_000, "carol's acknowledgement");
      expect(alice.m.readsFragments(carolId.publicKey)).to.equal(false);
    } finally {
      alice.m.close();
    }
  });

  it('a message in fragments whose recipient shows, before its retransmission, that its messenger does not read fragments fails at once (ERR_LIMIT), no copy sent (mix.md §8.4)', async () => {
    const [aliceId, carolId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    // Alice's MIX cells are refused while the gate is shut (her polls still pass).
    const gate: Gate = { shut: true, sent: () => undefined };
    const alice = moving(aliceId, { current: mixes[0]!.identity }, gate);
    await alice.m.start();
    const c = mixSecretsOf(carolId);
    const carolAt: CardMixAddress = { gateway: mixes[2]!.identity, inbox: c.inbox, key: c.keys.publicKey };
    alice.book.set(h(carolId.publicKey), carolAt);
    const olderNonce = (): Uint8Array => concatBytes(crypto().random(20), MIX_READS_BATCHES_MARK);
    try {
      const id = crypto().random(16);
      alice.m.send(carolId.publicKey, carolAt, id, new Uint8Array(1000).fill(0x61));
      expect(alice.m.acks.fragmentsSent).to.equal(2);
      // Before the fragments leave, a box from carol's older messenger (no fragments mark) is read.
      depositTo(alice.m, mixes[0]!, sealMixMessage(carolId, aliceId.publicKey, crypto().random(16), utf8('hi from an older messenger'), olderNonce()));
      await waitFor(() => alice.m.readsFragments(carolId.publicKey) === false, 10_000, "carol's box read");
      gate.shut = false;
      await waitFor(() => alice.ev.failed.length === 1, 10_000, 'the long message failed');
      expect(alice.ev.failed[0]!.code).to.equal('ERR_LIMIT');
      expect([alice.m.acks.fragmentsSent, alice.m.acks.retransmitted, alice.m.acks.unacknowledged]).to.deep.equal([2, 0, 0]);
      expect(alice.m.unacknowledged).to.equal(0);
    } finally {
      alice.m.close();
    }
  });

  it('a contact whose messenger does not read fragments: a long message is refused at once, short ones still go; one not heard from is sent fragments, given up unacknowledged (mix.md §8.4)', async () => {
    const [aliceId, carolId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const alice = moving(aliceId, { current: mixes[0]!.identity });
    await alice.m.start();
    const c = mixSecretsOf(carolId);
    const carolAt: CardMixAddress = { gateway: mixes[2]!.identity, inbox: c.inbox, key: c.keys.publicKey };
    alice.book.set(h(carolId.publicKey), carolAt);
    const long = new Uint8Array(1000).fill(0x61);
    try {
      // Not heard from: fragments are sent. Carol runs a messenger from before fragments, which refuses kind 5
      // (ERR_MESSAGE_AUTH) and never acknowledges: alice retransmits the whole and gives it up.
      expect(alice.m.readsFragments(carolId.publicKey)).to.equal(undefined);
      alice.m.send(carolId.publicKey, carolAt, crypto().random(16), long);
      await waitFor(() => alice.ev.failed.length === 1, 10_000, 'the long message given up');
      expect(alice.ev.failed[0]!.code).to.equal('ERR_MIX_UNACKNOWLEDGED');
      expect(alice.m.acks.fragmentsSent).to.equal(2 * (1 + MIX_MAX_RETRANSMITS));
      // A box from carol whose nonce lacks the fragments mark (an older messenger's, here one that reads batches).
      const olderNonce = (): Uint8Array => concatBytes(crypto().random(20), MIX_READS_BATCHES_MARK);
      depositTo(alice.m, mixes[0]!, sealMixMessage(carolId, aliceId.publicKey, crypto().random(16), utf8('hi from an older messenger'), olderNonce()));
      await waitFor(() => alice.m.readsFragments(carolId.publicKey) === false, 10_000, "carol's box read");
      const sent = alice.m.acks.fragmentsSent;
      expect(() => alice.m.send(carolId.publicKey, carolAt, crypto().random(16), long))
        .to.throw()
        .with.property('code', 'ERR_LIMIT');
      expect(alice.m.acks.fragmentsSent).to.equal(sent);
      expect(alice.m.unacknowledged).to.equal(0);
      alice.m.send(carolId.publicKey, carolAt, crypto().random(16), utf8('a short one still goes'));
      expect(alice.m.unacknowledged).to.equal(1);
      // Carol upgrades: her next box carries the mark, and long messages go in fragments again.
      depositTo(alice.m, mixes[0]!, sealMixMessage(carolId, aliceId.publicKey, crypto().random(16), utf8('upgraded')));
      await waitFor(() => alice.m.readsFragments(carolId.publicKey) === true, 10_000, "carol's marked box read");
      alice.m.send(carolId.publicKey, carolAt, crypto().random(16), long);
      expect(alice.m.acks.fragmentsSent).to.equal(sent + 2);
    } finally {
      alice.m.close();
    }
  });

  it('an address box not newer than the last applied: a copy of the address held is acknowledged, another address is neither applied nor acknowledged, and one too far ahead is refused (mix.md §8.6)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const bob = moving(bobId, { current: mixes[3]!.identity });
    await bob.m.start();
    const a = mixSecretsOf(aliceId);
    const at = (g: FakeMix): CardMixAddress => ({ gateway: g.identity, inbox: a.inbox, key: a.keys.publicKey });
    bob.book.set(h(aliceId.publicKey), at(mixes[0]!));
    const deposit = (data: Uint8Array): void => depositTo(bob.m, mixes[3]!, data);
    const box = (g: FakeMix, seq: number): Uint8Array => sealMixAddress(aliceId, bobId.publicKey, crypto().random(16), at(g), seq);
    const ackedAt = (g: FakeMix): number => held.get(h(g.identity) + h(a.inbox))?.length ?? 0;
    const handled = (): number => bob.m.acks.addressesOlder + bob.m.acks.addressesReceived + (bob.m.acks.addressesAhead ?? 0);
    const gatewayHeld = (): Buffer => Buffer.from(bob.book.get(h(aliceId.publicKey))!.gateway);
    try {
      deposit(box(mixes[1]!, 2_000)); // the newer
      await waitFor(() => ackedAt(mixes[1]!) === 1, 10_000, 'the newer box acknowledged');
      // Another address, older (delayed past the newer, or sealed by a sender whose clock went back): nothing changes,
      // and no acknowledgement, so that its sender does not take its contact as told.
      deposit(box(mixes[2]!, 1_000));
      await waitFor(() => handled() >= 2, 10_000, 'the older box handled');
      expect(gatewayHeld(), 'still the newer address').to.deep.equal(Buffer.from(mixes[1]!.identity));
      expect(bob.m.acks.acksSent, 'the older box is not acknowledged').to.equal(1);
      // A copy of the address held (a retransmission whose acknowledgement was lost) is acknowledged, to it.
      deposit(box(mixes[1]!, 1_500));
      await waitFor(() => handled() >= 3, 10_000, 'the copy handled');
      expect(bob.m.acks.acksSent).to.equal(2);
      await waitFor(() => ackedAt(mixes[1]!) === 2, 10_000, 'the copy acknowledged');
      // Another address at the same sequence is no newer.
      deposit(box(mixes[2]!, 2_000));
      await waitFor(() => handled() >= 4, 10_000, 'the same sequence handled');
      expect([bob.m.acks.addressesReceived, bob.m.acks.addressesOlder, bob.m.acks.acksSent]).to.deep.equal([1, 3, 2]);
      // A sequence more than MIX_SEQ_AHEAD past our clock would freeze the record until real time caught up: refused.
      deposit(box(mixes[2]!, Date.now() + 2 * MIX_SEQ_AHEAD_MS));
      await waitFor(() => handled() >= 5, 10_000, 'the box from the future handled');
      expect(bob.m.acks.addressesAhead).to.equal(1);
      expect(bob.seqs.get(h(aliceId.publicKey)), 'the sequence applied stays').to.equal(2_000);
      expect(gatewayHeld()).to.deep.equal(Buffer.from(mixes[1]!.identity));
      expect(bob.m.acks.acksSent, 'not acknowledged').to.equal(2);
      expect(ackedAt(mixes[2]!)).to.equal(0);
    } finally {
      bob.m.close();
    }
  });

  it("a contact's flood of address boxes takes acknowledgement tokens before anything is applied: no more than MIX_ACK_BURST reach the book (mix.md §8.5, §8.6)", async () => {
    const N = 30;
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const bob = moving(bobId, { current: mixes[3]!.identity }, undefined, undefined, () => 0); // a clock standing still
    await bob.m.start();
    const a = mixSecretsOf(aliceId);
    bob.book.set(h(aliceId.publicKey), { gateway: mixes[0]!.identity, inbox: a.inbox, key: a.keys.publicKey });
    try {
      // Each box names another address with a newer sequence: each applied one is a write of the book.
      for (let i = 0; i < N; i++) {
        const mix = { gateway: createIdentity().publicKey, inbox: a.inbox, key: a.keys.publicKey };
        depositTo(bob.m, mixes[3]!, sealMixAddress(aliceId, bobId.publicKey, crypto().random(16), mix, 1_000 + i));
      }
      await waitFor(() => bob.m.acks.addressesReceived + bob.m.acks.acksLimited >= N, 10_000, 'the boxes handled');
      expect(bob.changes.n, 'boxes that reached the book').to.equal(MIX_ACK_BURST);
      expect([bob.m.acks.addressesReceived, bob.m.acks.acksLimited]).to.deep.equal([MIX_ACK_BURST, N - MIX_ACK_BURST]);
    } finally {
      bob.m.close();
    }
  });

  it("a contact's acknowledgement bucket follows a monotonic clock: a wall clock stepping back an hour does not empty it (mix.md §8.5)", () => {
    let t = 5_000_000;
    const m = new MessengerMix(
      {} as MessengerHost,
      createIdentity(),
      {},
      {
        message: () => undefined,
        mixAddressOf: () => Promise.resolve(undefined),
        mixContacts: () => Promise.resolve([]),
        isContact: () => Promise.resolve(true),
        addressChanged: () => Promise.resolve(false),
        delivered: () => undefined,
        failed: () => undefined,
        error: () => undefined,
      },
      undefined,
      () => t,
    );
    const take = (k: Uint8Array): boolean => (m as unknown as { takeAckToken(k: Uint8Array): boolean }).takeAckToken(k);
    const key = createIdentity().publicKey;
    const wall = Date.now;
    const back = wall() - 3_600_000;
    try {
      for (let i = 0; i < MIX_ACK_BURST; i++) expect(take(key)).to.equal(true);
      expect(take(key), 'the bucket is empty').to.equal(false);
      // The wall clock steps back an hour; an injected clock that steps back counts as no time elapsed.
      Date.now = () => back;
      t -= 3_600_000;
      expect(take(key)).to.equal(false);
      Date.now = () => back + 1_000;
      t += 1_000;
      expect(take(key), 'a second later: a token').to.equal(true);
    } finally {
      Date.now = wall;
    }
  });

  it('a Messenger keeps its address sequence in mixStorage: after its clock went back, its next address box is still newer than the one its contacts hold (mix.md §8.6)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const storage = memoryGroupStorage();
    const ahead = Date.now() + 3_600_000; // sealed while alice's clock was an hour ahead
    await saveMixState(storage, aliceId, { gateway: mixes[2]!.identity, drains: [], addressSeq: ahead });
    const bob = moving(bobId, { current: mixes[3]!.identity });
    const alice = moving(aliceId, { current: mixes[1]!.identity }, undefined, storage); // the gateway changed while down
    await bob.m.start();
    const a = mixSecretsOf(aliceId);
    bob.book.set(h(aliceId.publicKey), { gateway: mixes[2]!.identity, inbox: a.inbox, key: a.keys.publicKey });
    bob.seqs.set(h(aliceId.publicKey), ahead);
    alice.book.set(h(bobId.publicKey), bob.m.address);
    try {
      await alice.m.start();
      await waitFor(() => alice.m.acks.addressesAcknowledged >= 1, 10_000, "alice's address box acknowledged");
      expect(Buffer.from(bob.book.get(h(aliceId.publicKey))!.gateway), "bob's record moved").to.deep.equal(Buffer.from(mixes[1]!.identity));
      expect(bob.seqs.get(h(aliceId.publicKey))).to.be.above(ahead);
      alice.m.close();
      await alice.m.flushed();
      expect((await loadMixState(storage, aliceId))!.addressSeq, 'the sequence sealed is kept').to.be.above(ahead);
    } finally {
      alice.m.close();
      bob.m.close();
    }
  });

  it('mixStorage: the latest state lands last however the saves are timed, and after a read that failed nothing is saved and the error is reported (mix.md §8.6)', async () => {
    const aliceId = createIdentity();
    const inner = memoryGroupStorage();
    // A stored drain still due, and a gateway that changed while down: two drains start as message mode starts.
    await saveMixState(inner, aliceId, { gateway: mixes[2]!.identity, drains: [[mixes[0]!.identity, Date.now() + 3_600_000]] });
    let [calls, inFlight] = [0, 0];
    const slowFirst: GroupStorage = {
      load: () => inner.load(),
      save: async (name, bytes) => {
        const n = calls++;
        inFlight++;
        // The first save is slower than the ones after it (a rename that lands late).
        if (n === 0) for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        await inner.save(name, bytes);
        inFlight--;
      },
    };
    let alice = moving(aliceId, { current: mixes[1]!.identity }, undefined, slowFirst);
    try {
      await alice.m.start();
      expect(alice.m.draining).to.equal(2);
      await waitFor(() => calls > 0 && inFlight === 0, 10_000, 'the saves landed');
      expect((await loadMixState(inner, aliceId))!.drains.length, 'the latest state').to.equal(2);
      alice.m.close();
      await alice.m.flushed();

      // A storage that cannot be read: reported, and the record it holds is not overwritten.
      let saves = 0;
      const failing: GroupStorage = {
        load: () => Promise.reject(new Error('EIO')),
        save: (name, bytes) => {
          saves++;
          return inner.save(name, bytes);
        },
      };
      alice = moving(aliceId, { current: mixes[3]!.identity }, undefined, failing);
      await alice.m.start();
      await new Promise((r) => setImmediate(r));
      expect(alice.ev.errors.length, 'the read error reported').to.equal(1);
      expect(saves, 'nothing saved').to.equal(0);
      expect((await loadMixState(inner, aliceId))!.drains.length).to.equal(2);
    } finally {
      alice.m.close();
    }
  });

  it('a Messenger with mixStorage drains its old inbox after a restart, and moves when its gateway changed while it was down (mix.md §8.6)', async () => {
    const [aliceId, bobId] = [createIdentity(), createIdentity()];
    const h = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    const storage = memoryGroupStorage();
    const bob = moving(bobId, { current: mixes[3]!.identity });
    const gw = { current: mixes[2]!.identity };
    let alice = moving(aliceId, gw, undefined, storage);
    await Promise.all([bob.m.start(), alice.m.start()]);
    const old = alice.m.address!;
    bob.book.set(h(aliceId.publicKey), old);
    const heldAt = (g: FakeMix): number => held.get(h(g.identity) + h(old.inbox))?.length ?? 0;
    try {
      // The gateway changes while running: a drain of the old one starts. Then the messenger stops.
      gw.current = mixes[1]!.identity;
      alice.links[0]!.down();
      await waitFor(() => alice.m.draining === 1, 10_000, 'the old inbox drained');
      alice.m.close();
      // Bob still writes to the old address (he was not told yet: alice knows no contacts).
      bob.m.send(aliceId.publicKey, old, crypto().random(16), utf8('while alice was down'));
      await waitFor(() => heldAt(mixes[2]!) >= 2, 10_000, 'the address box and the message held at the old gateway');

      // Restarted with the same storage at the new gateway: the drain resumes.
      alice = moving(aliceId, gw, undefined, storage);
      alice.book.set(h(bobId.publicKey), bob.m.address);
      await alice.m.start();
      await waitFor(() => alice.ev.received.includes('while alice was down'), 10_000, 'the old inbox drained after the restart');
      expect(alice.m.draining).to.equal(1);
      expect(alice.m.acks.gatewayChanges, 'the same gateway as before the restart').to.equal(0);
      alice.m.close();

      // Restarted at another gateway (the guard changed while down): the last one is drained too and bob is told.
      gw.current = mixes[0]!.identity;
      alice = moving(aliceId, gw, undefined, storage);
      alice.book.set(h(bobId.publicKey), bob.m.address);
      await alice.m.start();
      expect(alice.m.acks.gatewayChanges).to.equal(1);
      expect(alice.m.draining).to.equal(2);
      await waitFor(() => crypto().equal(bob.book.get(h(aliceId.publicKey))!.gateway, mixes[0]!.identity), 10_000, "bob's record moved");
    } finally {
      alice.m.close();
      bob.m.close();
    }
  });

  it('with cover off, a message that could not leave at once leaves at a later poll event', async () => {
    const { alice, bob, received } = pair({ cover: false, linkUp: (n) => n >= 1 });
    alice.start();
    alice.send(bob.address, utf8('later'));
    expect(alice.waiting, 'back in the queue').to.equal(1);
    await waitFor(() => received.length === 1 || alice.stats.polls >= 20, 10_000, 'the message, or twenty polls');
    alice.stop();
    expect(received).to.deep.equal(['later']);
    expect(alice.stats.realSent).to.equal(1);
  });
});
