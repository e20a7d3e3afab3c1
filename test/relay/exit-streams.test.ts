/**
 * What exit streams can make an exit hold (specs/streams.md §3.1): a stream holds its place from BEGIN until its
 * connection closes, at most MAX_EXIT_STREAMS_PER_CIRCUIT per circuit and, for one-hop circuits from clients,
 * MAX_EXIT_STREAMS_PER_CLIENT_BLOCK per address block; a connection silent both ways for EXIT_IDLE_TIMEOUT is closed.
 * The destination is a TCP server on 127.0.0.1 that accepts and holds every connection, as an attacker's would.
 */
import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { RelayRig, until } from '../helpers/relay-rig.js';

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
    const rig = new RelayRig({ exit: { policy: ['accept 127.0.0.1:*', 'reject *:*'], maxExitConnections: 256, maxStreamsPerCircuit: 8, maxStreamsPerClientBlock: 16 } });
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
      console.log(`      256 BEGINs on 4 circuits: ${connected} connected; the exit holds ${rig.exit!.openConnections}; an honest BEGIN: ${honestOutcome === 'connected' ? 'connected' : `END ${honestOutcome}`}`);
      expect(honestOutcome).to.equal('connected');
      expect(connected).to.equal(2 * 8 + 16);
      expect(outcomes.filter((o) => o === EndReason.RESOURCE_LIMIT).length).to.equal(256 - connected);

      // Ten minutes without data: every connection closes and its stream ends with TIMEOUT.
      const endings: number[] = [];
      for (const c of circuits) for (const s of [...c.mux.all]) s.once('stream:end', (r) => endings.push(r));
      rig.advance(10 * 60_000);
      await until(() => rig.exit!.openConnections === 0, 'the idle connections closed', 5000).catch(() => undefined);
      await until(() => endings.length === connected, 'the streams ended', 2000).catch(() => undefined);
      console.log(`      after ten idle minutes: the exit holds ${rig.exit!.openConnections}; ${endings.filter((r) => r === EndReason.TIMEOUT).length} streams ended with TIMEOUT`);
      expect(rig.exit!.openConnections).to.equal(0);
      expect(endings.filter((r) => r === EndReason.TIMEOUT).length).to.equal(connected);
    } finally {
      rig.close();
    }
  });
});
