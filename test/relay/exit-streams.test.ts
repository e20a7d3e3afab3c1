/**
 * What exit streams can make an exit hold (specs/streams.md §3.1): a stream holds its place from BEGIN until its
 * connection closes, at most MAX_EXIT_STREAMS_PER_CIRCUIT per circuit and, for one-hop circuits from clients,
 * MAX_EXIT_STREAMS_PER_CLIENT_BLOCK per address block; a connection silent both ways for EXIT_IDLE_TIMEOUT is closed.
 * The exit's stream buffers both ways count against max_queue_bytes, and a stream whose circuit window is closed
 * stops reading its destination. The destinations are TCP servers on 127.0.0.1 that hold every connection, send
 * without end, or never read, as an attacker's would.
 */
import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { DestroyReason } from '../../protocol/cell.js';
import { encodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { RELAY_DATA_LEN } from '../../protocol/constants.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { STREAM_HIGH_WATER, type MuxStream } from '../../net/stream-mux.js';
import type { CircuitHop } from '../../relay/circuits.js';
import { silentLogger } from '../../relay/logger.js';
import { MemoryGuard } from '../../relay/memory-guard.js';
import { RelayRig, until } from '../helpers/relay-rig.js';

/** A TCP server on 127.0.0.1 that runs `onSocket` for each connection; close() destroys them all. */
async function tcpServer(onSocket: (s: Socket) => void): Promise<{ port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Opens `n` streams to 127.0.0.1:port on `circuit`; resolves once each is connected. */
async function openStreams(circuit: ClientCircuit, port: number, n: number): Promise<MuxStream[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const s = circuit.mux.open();
      await new Promise<void>((resolve, reject) => {
        s.once('stream:connected', () => resolve());
        s.once('stream:end', (r) => reject(new Error(`END ${r}`)));
        circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: '127.0.0.1', p: port }) });
      });
      return s;
    }),
  );
}

/** The exit's sockets (its private table: a Map keyed by socket, a Set before). */
function exitSockets(rig: RelayRig): Socket[] {
  return [...(rig.exit as unknown as { sockets: Map<Socket, unknown> | Set<Socket> }).sockets.keys()];
}

/** The relay's side of the circuit whose previous hop is `relayLink`'s. */
function hopOf(rig: RelayRig, relayLink: unknown): CircuitHop {
  return [...rig.reactor.circuits()].find((h) => h.prev.link === relayLink)!;
}

/** Opens a stream to 127.0.0.1:port: 'connected', or the END reason. */
function begin(circuit: ClientCircuit, port: number): Promise<'connected' | number> {
  const s = circuit.mux.open();
  return new Promise((resolve) => {
    s.once('stream:connected', () => resolve('connected'));
    s.once('stream:end', (reason) => resolve(reason));
    circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: '127.0.0.1', p: port }) });
  });
}

describe('exit streams (specs/streams.md §3.1)', function () {
  this.timeout(60_000);
  let server: Server;
  let port: number;
  const held: Socket[] = [];

  before(async () => {
    server = createServer((s) => void held.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    for (const s of held) s.destroy();
    server.close();
  });

  it('circuits that hold connections cannot take every exit connection; idle connections close', async () => {
    // The exit's defaults scaled down by 16: 4096 connections, 128 per circuit, 256 per client block become 256, 8, 16.
    const rig = new RelayRig({
      exit: { policy: ['accept 127.0.0.1:*', 'reject *:*'], maxExitConnections: 256, maxStreamsPerCircuit: 8, maxStreamsPerClientBlock: 16 },
    });
    try {
      // Four circuits asking for 64 connections each to a server that holds them: two through a relay link (their
      // previous hop is a relay), two one-hop circuits from a client link.
      const viaRelay = await rig.connect({ address: '198.51.100.7', role: 'relay' });
      const direct = await rig.connect({ address: '198.51.100.8' });
      const circuits = await Promise.all([rig.circuit(viaRelay), rig.circuit(viaRelay), rig.circuit(direct), rig.circuit(direct)]);
      const outcomes = await Promise.all(circuits.flatMap((c) => Array.from({ length: 64 }, () => begin(c, port))));
      const connected = outcomes.filter((o) => o === 'connected').length;
      const honest = await rig.connect({ address: '203.0.113.9', role: 'relay' });
      const honestOutcome = await begin(await rig.circuit(honest), port);
      console.log(
        `      256 BEGINs on 4 circuits: ${connected} connected; the exit holds ${rig.exit!.openConnections}; an honest BEGIN: ${honestOutcome === 'connected' ? 'connected' : `END ${honestOutcome}`}`,
      );
      expect(honestOutcome).to.equal('connected');
      expect(connected).to.equal(2 * 8 + 16);
      expect(outcomes.filter((o) => o === EndReason.RESOURCE_LIMIT).length).to.equal(256 - connected);

      // Ten minutes without data: every connection closes and its stream ends with TIMEOUT.
      const endings: number[] = [];
      for (const c of circuits) for (const s of [...c.mux.all]) s.once('stream:end', (r) => endings.push(r));
      rig.advance(10 * 60_000);
      await until(() => rig.exit!.openConnections === 0, 'the idle connections closed', 5000).catch(() => undefined);
      await until(() => endings.length === connected, 'the streams ended', 2000).catch(() => undefined);
      console.log(
        `      after ten idle minutes: the exit holds ${rig.exit!.openConnections}; ${endings.filter((r) => r === EndReason.TIMEOUT).length} streams ended with TIMEOUT`,
      );
      expect(rig.exit!.openConnections).to.equal(0);
      expect(endings.filter((r) => r === EndReason.TIMEOUT).length).to.equal(connected);
    } finally {
      rig.close();
    }
  });

  it('a destination that sends without end fills a stream only until its circuit window closes', async () => {
    const blaster = await tcpServer((s) => s.write(Buffer.alloc(4 << 20)));
    const rig = new RelayRig({ exit: { policy: ['accept 127.0.0.1:*', 'reject *:*'] } });
    try {
      const c = await rig.connect();
      const circuit = await rig.circuit(c);
      await openStreams(circuit, blaster.port, 16);
      // The client stops reading: no circuit SENDME reaches the exit from here on.
      c.client.socket.pause();
      await until(() => exitSockets(rig).length === 16 && exitSockets(rig).every((s) => s.isPaused()), 'the exit stopped reading every destination');
      const mux = rig.streams.muxOf(hopOf(rig, c.relayLink))!;
      const queues = [...mux.all].map((s) => s.queuedBytes);
      const worst = Math.max(...queues);
      console.log(
        `      16 streams from a destination that never stops: largest stream queue ${(worst / 1024).toFixed(0)} KiB, all ${(queues.reduce((a, b) => a + b, 0) / 1048576).toFixed(2)} MiB`,
      );
      // At most what the socket read when the window closed, and one read more: far below the 256 KiB high-water mark.
      expect(worst).to.be.below(STREAM_HIGH_WATER / 2);
    } finally {
      rig.close();
      blaster.close();
    }
  });

  it('a client that sends DATA beyond its window is refused with ERR_SENDME; its other circuit is unharmed', async () => {
    const sink = await tcpServer((s) => s.pause());
    const rig = new RelayRig({ exit: { policy: ['accept 127.0.0.1:*', 'reject *:*'] } });
    try {
      const c = await rig.connect();
      const [attacker, honest] = await Promise.all([rig.circuit(c), rig.circuit(c)]);
      const [upload] = await openStreams(attacker!, sink.port, 1);
      await openStreams(honest!, sink.port, 1);
      // An honest upload first, within the windows, until the destination's kernel buffers are full and the exit
      // holds (unacknowledged) nearly a whole stream window in its socket: the exit now grants at most ~100 cells.
      upload!.write(new Uint8Array(8 << 20));
      await until(
        () => exitSockets(rig).some((s) => s.writableLength >= 800_000) && upload!.windows.send === 0,
        'the stream window closed at the exit',
        30_000,
      );
      // Then 200 DATA cells more, ignoring the window (and the circuit's congestion window).
      for (let i = 0; i < 200; i++) attacker!.send({ command: RelayCommand.DATA, streamId: upload!.id, data: new Uint8Array(RELAY_DATA_LEN) });
      await until(() => attacker!.state === 'closed', 'the over-sending circuit destroyed', 10_000);
      const sendmeErrors = (await rig.metrics.errors.get()).values.filter((v) => v.labels['code'] === 'ERR_SENDME').reduce((n, v) => n + v.value, 0);
      console.log(
        `      200 cells beyond the window: attacking circuit ${attacker!.state}, ERR_SENDME counted ${sendmeErrors}, honest circuit ${honest!.state}`,
      );
      expect(sendmeErrors).to.equal(1);
      expect(honest!.state).to.equal('open');
    } finally {
      rig.close();
      sink.close();
    }
  });

  it("what the exit's sockets hold for a destination that does not read counts against max_queue_bytes", async () => {
    const sink = await tcpServer((s) => s.pause());
    const rig = new RelayRig({ exit: { policy: ['accept 127.0.0.1:*', 'reject *:*'] } });
    try {
      const c = await rig.connect();
      const [attacker, honest] = await Promise.all([rig.circuit(c), rig.circuit(c)]);
      const uploads = await openStreams(attacker!, sink.port, 4);
      await openStreams(honest!, sink.port, 1);
      for (const s of uploads) s.write(new Uint8Array(8 << 20));
      // The exit acknowledges what its sockets have written out; once the kernel's buffers are full (about 4 MB a
      // connection here), the rest of each stream's window (1000 cells, 886 KB) waits in the exit's socket.
      await until(() => exitSockets(rig).filter((s) => s.writableLength >= 800_000).length === 4, 'the uploads waiting in the exit', 30_000);
      const held = [...rig.streams.buffers()].map(([, n]) => n).reduce((a, b) => a + b, 0);
      const guard = new MemoryGuard({
        maxBytes: 1 << 20,
        links: () => rig.relayLinks,
        circuits: () => rig.streams.buffers(),
        destroy: (hop) => rig.reactor.destroy(hop, DestroyReason.RESOURCE_LIMIT),
        metrics: rig.metrics,
        log: silentLogger(),
      });
      const counted = guard.check();
      await until(() => attacker!.state === 'closed', 'the attacking circuit destroyed', 2000).catch(() => undefined);
      console.log(
        `      4 uploads to a destination that does not read: the exit holds ${(held / 1048576).toFixed(2)} MiB for the circuit; the memory check counted ${(counted / 1048576).toFixed(2)} MiB; attacking circuit ${attacker!.state}, honest circuit ${honest!.state}`,
      );
      expect(held).to.be.greaterThan(1 << 20);
      expect(attacker!.state).to.equal('closed');
      expect(honest!.state).to.equal('open');
      expect(await rig.drops('oom_circuit_destroyed')).to.equal(1);
    } finally {
      rig.close();
      sink.close();
    }
  });
});
