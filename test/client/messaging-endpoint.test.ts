/**
 * What initiators can make an endpoint hold (specs/messaging.md §8.4): anyone with the address can send valid
 * introductions, and each asks the endpoint for a circuit to a rendezvous point. The endpoint answers a few at a
 * time from a bounded queue, keeps a bounded number of rendezvous circuits, and closes one that carries no stream.
 * Introductions are real (sealed to the introduction point's key, real session handshakes); circuits are stand-ins.
 */
import { expect } from 'chai';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { decodeEnd, EndReason } from '../../protocol/stream-messages.js';
import {
  MAX_CONCURRENT_RENDEZVOUS,
  MAX_PENDING_INTRODUCTIONS,
  MAX_SERVICE_STREAMS_PER_CIRCUIT,
  SERVICE_CIRCUIT_IDLE_MS,
  type IncomingMessage,
  type Messenger,
  type ServiceConnector,
} from '../../client/messaging/index.js';
import { POW_MIN_EFFORT } from '../../client/messaging/limits.js';
import { VirtualClock } from '../../sim/clock.js';
import { STREAM_WINDOW } from '../../protocol/flow.js';
import { endpointRig, introduce, sendFrame, settle, type FakeCircuit, type Initiator } from '../helpers/messenger-rig.js';

describe('an endpoint bounds what introductions cost it', () => {
  it('1000 valid introductions without proofs: circuits built a few at a time; at half the queue the endpoint asks for a proof and drops the rest unopened', async () => {
    const rig = await endpointRig({}, true);
    const errors: string[] = [];
    rig.messenger.on('endpoint:error', (e) => errors.push(e.code));
    for (let i = 0; i < 1000; i++) introduce(rig);
    await settle();
    const atOnce = rig.maxInFlight();
    // Answer every circuit request as it comes, until the endpoint asks for no more.
    while (rig.inFlight() > 0) {
      rig.answer();
      await settle();
    }
    const rendezvous = rig.built.filter((c) => c.count(RelayCommand.RENDEZVOUS1) === 1).length;
    // The queue holding half its bound is a load (specs/rendezvous.md §4.3): the endpoint looks at once, asks for
    // POW_MIN_EFFORT, and every later introduction without a proof is dropped before it is opened.
    const queued = MAX_PENDING_INTRODUCTIONS / 2;
    expect({ atOnce, built: rig.built.length, rendezvous, maxInFlight: rig.maxInFlight() }).to.deep.equal({
      atOnce: MAX_CONCURRENT_RENDEZVOUS,
      built: MAX_CONCURRENT_RENDEZVOUS + queued,
      rendezvous: MAX_CONCURRENT_RENDEZVOUS + queued,
      maxInFlight: MAX_CONCURRENT_RENDEZVOUS,
    });
    expect((rig.messenger as unknown as { endpoint: { suggestedEffort: number } }).endpoint.suggestedEffort).to.equal(POW_MIN_EFFORT);
    expect(errors.filter((c) => c === 'ERR_INTRO_POW')).to.have.length(1000 - MAX_CONCURRENT_RENDEZVOUS - queued);
    // The rest: this rig's stand-in client cannot republish the descriptor with the new effort.
    expect(errors.filter((c) => c !== 'ERR_INTRO_POW')).to.deep.equal(['ERR_INTERNAL']);
    rig.messenger.close();
  });

  it('an introduction that waited longer than its initiator does (30 s) is not answered (virtual clock)', async () => {
    const clock = new VirtualClock();
    const restore = clock.install();
    try {
      const rig = await clock.waitFor(endpointRig({}, true));
      for (let i = 0; i < 10; i++) introduce(rig);
      await clock.runFor(31_000);
      while (rig.inFlight() > 0) {
        rig.answer();
        await clock.runFor(0);
      }
      expect(rig.built.length).to.equal(MAX_CONCURRENT_RENDEZVOUS);
      rig.messenger.close();
    } finally {
      restore();
    }
  });

  it('keeps at most maxServiceCircuits rendezvous circuits; a closed one makes room for the next introduction', async () => {
    const rig = await endpointRig({ limits: { maxServiceCircuits: 8 } });
    for (let i = 0; i < 20; i++) introduce(rig);
    await settle();
    const first = rig.built.length;
    rig.built[0]!.close();
    rig.built[1]!.close();
    await settle();
    expect({ first, then: rig.built.length, open: rig.built.filter((c) => c.state === 'open').length }).to.deep.equal({ first: 8, then: 10, open: 8 });
    rig.messenger.close();
  });

  it('closes a rendezvous circuit that has had no open stream for SERVICE_CIRCUIT_IDLE_MS (virtual clock)', async () => {
    const clock = new VirtualClock();
    const restore = clock.install();
    try {
      const rig = await clock.waitFor(endpointRig());
      // A rendezvous that never carries a stream.
      introduce(rig);
      await clock.runFor(0);
      const silent = rig.built[0]!;
      // A rendezvous whose initiator opens a message stream and, two minutes later, ends it.
      introduce(rig);
      await clock.runFor(0);
      const used = rig.built[1]!;
      const stream = used.begin('allium:messages', 1);
      await clock.runFor(SERVICE_CIRCUIT_IDLE_MS - 1);
      const beforeIdle = { silent: silent.state, used: used.state };
      await clock.runFor(2);
      const afterIdle = { silent: silent.state, used: used.state };
      await clock.runFor(2 * SERVICE_CIRCUIT_IDLE_MS);
      used.receive({ command: RelayCommand.END, streamId: stream, data: Uint8Array.of(1) });
      await clock.runFor(SERVICE_CIRCUIT_IDLE_MS + 1);
      expect({
        rendezvous: [silent.count(RelayCommand.RENDEZVOUS1), used.count(RelayCommand.RENDEZVOUS1)],
        beforeIdle,
        afterIdle,
        afterStream: used.state,
      }).to.deep.equal({
        rendezvous: [1, 1],
        beforeIdle: { silent: 'open', used: 'open' },
        afterIdle: { silent: 'closed', used: 'open' },
        afterStream: 'closed',
      });
      rig.messenger.close();
    } finally {
      restore();
    }
  });
});

/** How the endpoint answered each stream the initiator opened: 'connected' or the END reason. */
function answers(c: FakeCircuit): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of c.sent) {
    if (out.has(m.streamId)) continue;
    if (m.command === RelayCommand.CONNECTED) out.set(m.streamId, 'connected');
    if (m.command === RelayCommand.END) out.set(m.streamId, `end ${decodeEnd(m.data)}`);
  }
  return out;
}

describe('streams on a rendezvous circuit are bounded', () => {
  it(`1000 BEGINs to a hidden service on one circuit: at most ${MAX_SERVICE_STREAMS_PER_CIRCUIT} local connections, the rest refused`, async () => {
    // The local service, through the injected connector: every connection it makes is counted, and stays open.
    let connections = 0;
    const connectService: ServiceConnector = async () => {
      connections++;
      return { attach: () => undefined, close: () => undefined };
    };
    const rig = await endpointRig({ services: { 80: { host: '127.0.0.1', port: 8080 } }, connectService });
    try {
      introduce(rig);
      await settle();
      const circuit = rig.built[0]!;
      for (let i = 0; i < 1000; i++) circuit.begin('allium:service', 80);
      await settle();
      const byAnswer: Record<string, number> = {};
      for (const a of answers(circuit).values()) byAnswer[a] = (byAnswer[a] ?? 0) + 1;
      expect({ answered: answers(circuit).size, connections, byAnswer }).to.deep.equal({
        answered: 1000,
        connections: MAX_SERVICE_STREAMS_PER_CIRCUIT,
        byAnswer: { connected: MAX_SERVICE_STREAMS_PER_CIRCUIT, [`end ${EndReason.RESOURCE_LIMIT}`]: 1000 - MAX_SERVICE_STREAMS_PER_CIRCUIT },
      });
      // Streams that end make room for others.
      const open = [...answers(circuit)].filter(([, a]) => a === 'connected').map(([id]) => id);
      for (const id of open.slice(0, 10)) circuit.receive({ command: RelayCommand.END, streamId: id, data: Uint8Array.of(EndReason.DONE) });
      const more = Array.from({ length: 20 }, () => circuit.begin('allium:service', 80));
      await settle();
      expect({
        answered: more.every((id) => answers(circuit).has(id)),
        connected: more.filter((id) => answers(circuit).get(id) === 'connected').length,
      }).to.deep.equal({ answered: true, connected: 10 });
    } finally {
      rig.messenger.close();
    }
  });

  it('one message stream per rendezvous circuit: a second is refused', async () => {
    const rig = await endpointRig();
    introduce(rig);
    await settle();
    const circuit = rig.built[0]!;
    const first = circuit.begin('allium:messages', 1);
    const second = circuit.begin('allium:messages', 1);
    expect([answers(circuit).get(first), answers(circuit).get(second)]).to.deep.equal(['connected', `end ${EndReason.RESOURCE_LIMIT}`]);
    rig.messenger.close();
  });
});

describe('conversations peers open are forgotten when they close', () => {
  const filed = (m: unknown): number => (m as { conversations: Map<string, unknown> }).conversations.size;
  const live = (m: unknown): number => (m as { live: Set<unknown> }).live.size;

  it('1000 peers each introduce themselves, send one message and close: nothing is left on file', async () => {
    const rig = await endpointRig();
    const got: IncomingMessage[] = [];
    rig.messenger.on('message:received', (m) => void got.push(m));
    let most = 0;
    for (let i = 0; i < 1000; i++) {
      const peer = introduce(rig);
      await settle();
      const circuit = rig.built[i]!;
      const stream = circuit.begin('allium:messages', 1);
      sendFrame(circuit, stream, peer, new TextEncoder().encode(`hello ${i}`));
      await settle();
      most = Math.max(most, filed(rig.messenger));
      circuit.close(); // the peer goes: its circuit is destroyed
    }
    expect({ received: got.length, most, filed: filed(rig.messenger), live: live(rig.messenger) }).to.deep.equal({
      received: 1000,
      most: 1,
      filed: 0,
      live: 0,
    });
    rig.messenger.close();
  });

  it('at most maxConversations are on file while peers keep theirs open', async () => {
    const rig = await endpointRig({ limits: { maxConversations: 50 } });
    for (let i = 0; i < 100; i++) {
      const peer = introduce(rig);
      await settle();
      const circuit = rig.built[i]!;
      sendFrame(circuit, circuit.begin('allium:messages', 1), peer, new Uint8Array(1));
      await settle();
    }
    expect({ filed: filed(rig.messenger), live: live(rig.messenger) }).to.deep.equal({ filed: 50, live: 100 });
    rig.messenger.close();
  });
});

describe('listen() holds a bounded queue and the sender waits for the application', () => {
  /** Listens without publishing (the circuits here are stand-ins): the introduction point is already up. */
  function listen(m: Messenger): AsyncIterator<IncomingMessage> {
    (m as unknown as { listening: Promise<void> }).listening = Promise.resolve();
    return m.listen()[Symbol.asyncIterator]();
  }

  /** A peer that sends `total` short messages (two cells each) as fast as its stream window lets it. */
  function flood(circuit: FakeCircuit, stream: number, peer: Initiator, total: number): () => number {
    let cells = 0;
    return () => {
      while (STREAM_WINDOW + 50 * circuit.count(RelayCommand.SENDME, stream) - cells >= 2 && peer.sent < total) {
        cells += sendFrame(circuit, stream, peer, new TextEncoder().encode(String(peer.sent)));
      }
      return peer.sent;
    };
  }

  it('a peer sending 5000 messages to an application that does not read gets one in, and the rest when it reads', async () => {
    const rig = await endpointRig();
    const messages = listen(rig.messenger);
    const first = messages.next();
    await settle();
    let emitted = 0;
    rig.messenger.on('message:received', () => void emitted++);
    const peer = introduce(rig);
    await settle();
    const circuit = rig.built[0]!;
    const stream = circuit.begin('allium:messages', 1);
    const send = flood(circuit, stream, peer, 5000);
    // The application takes the first message, then stops reading while the peer sends all it can.
    send();
    await settle();
    const taken = [(await first).value as IncomingMessage];
    for (let i = 0; i < 5; i++) {
      send();
      await settle();
    }
    const whileNotReading = { sent: peer.sent, emitted, credit: circuit.count(RelayCommand.SENDME, stream) };
    // Now it reads everything; the peer sends the rest as credit comes back.
    while (taken.length < 5000) {
      taken.push((await messages.next()).value as IncomingMessage);
      if (taken.length % 100 === 0) send();
    }
    expect({ whileNotReading, inOrder: taken.every((m, i) => m.seq === i && new TextDecoder().decode(m.data) === String(i)) }).to.deep.equal({
      whileNotReading: { sent: STREAM_WINDOW / 2, emitted: 2, credit: 0 },
      inOrder: true,
    });
    rig.messenger.close();
  });

  it('at most maxListenQueue messages wait for the application, however many peers send', async () => {
    const rig = await endpointRig({ limits: { maxListenQueue: 5 } });
    const messages = listen(rig.messenger);
    void messages.next().then(() => undefined); // starts the listen() call; its first message is taken at once
    await settle();
    let emitted = 0;
    rig.messenger.on('message:received', () => void emitted++);
    for (let i = 0; i < 20; i++) {
      const peer = introduce(rig);
      await settle();
      const circuit = rig.built[i]!;
      sendFrame(circuit, circuit.begin('allium:messages', 1), peer, new Uint8Array(1));
      await settle();
    }
    const whileNotReading = emitted;
    for (let i = 0; i < 19; i++) await messages.next();
    expect({ whileNotReading, after: emitted }).to.deep.equal({ whileNotReading: 6, after: 20 });
    rig.messenger.close();
  });
});
