/**
 * An exit relay process whose DNS server (exit_dns_servers) is a UDP socket on 127.0.0.1 that reads queries and never
 * answers (specs/streams.md §3): BEGINs to names end with RESOLVE_FAILED by the lookup deadline, those beyond the
 * per-circuit limit at once with RESOURCE_LIMIT, the pending lookups never exceed their limit, and a stream to an
 * address on the same circuit is served meanwhile.
 */
import { expect } from 'chai';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import { parseBootstrap } from '../../client/bootstrap.js';
import { buildCircuit, CircuitTable } from '../../client/circuit.js';
import { fetchFromRelay } from '../../client/directory.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { encodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startRelay, type RelayProcess } from '../helpers/network.js';

describe('exit DNS against a black-holed server (relay process)', function () {
  this.timeout(120_000);
  let blackhole: UdpSocket;
  let queries = 0;
  let web: Server;
  let webPort: number;
  let exit: RelayProcess;

  before(async () => {
    blackhole = createSocket('udp4');
    blackhole.on('message', () => void queries++);
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    web = createServer((_q, res) => res.writeHead(200, { 'Content-Length': 2, Connection: 'close' }).end('ok'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    webPort = (web.address() as { port: number }).port;
    exit = await startRelay({
      nickname: 'exit',
      exitPolicy: ['accept 127.0.0.1:*', 'reject *:*'],
      timing: { exit_resolve_timeout: 1500 },
      extra: { exit_dns_servers: [`127.0.0.1:${blackhole.address().port}`], exit_max_pending_resolves: 8, exit_max_pending_resolves_per_circuit: 4 },
    });
  });
  after(async () => {
    await exit?.kill('SIGKILL');
    blackhole.close();
    web.closeAllConnections();
    web.close();
  });

  it('ends BEGINs to names by the deadline, within the limits, and serves an address meanwhile', async () => {
    const b = parseBootstrap(exit.bootstrap);
    const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity });
    try {
      const self = (await fetchFromRelay(link, 0)).raws.map((r) => verifyDescriptor(r, Date.now())).find((d) => d.fingerprint === exit.fingerprint)!;
      const circuit = await buildCircuit(link, new CircuitTable(), [self]);
      const started = Date.now();
      const ends = Array.from({ length: 10 }, (_, i) => {
        const s = circuit.mux.open();
        const ended = new Promise<{ reason: number; at: number }>((r) => s.once('stream:end', (reason) => r({ reason, at: Date.now() - started })));
        circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: `n${i}.blackhole.test`, p: 80 }) });
        return ended;
      });
      let maxPending = 0;
      const watch = setInterval(() => void exit.metric('allium_exit_pending_resolves').then((n) => (maxPending = Math.max(maxPending, n))), 100);

      // An address on the same circuit, while the names are pending.
      const s = circuit.mux.open();
      const body: Uint8Array[] = [];
      s.on('stream:data', (d) => (body.push(d), s.consumed(1)));
      const done = new Promise<number>((r) => s.once('stream:end', (reason) => r(reason)));
      circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a: '127.0.0.1', p: webPort }) });
      await new Promise((r) => s.once('stream:connected', () => r(null)));
      const servedAt = Date.now() - started;
      s.write(new TextEncoder().encode(`GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`));
      expect(await done).to.equal(EndReason.DONE);
      expect(Buffer.concat(body).toString('latin1')).to.match(/^HTTP\/1\.1 200[\s\S]*ok$/);
      expect(servedAt, 'the address was served before the lookups ended').to.be.lessThan(1500);

      const results = await Promise.all(ends);
      clearInterval(watch);
      const limited = results.filter((r) => r.reason === EndReason.RESOURCE_LIMIT);
      const failed = results.filter((r) => r.reason === EndReason.RESOLVE_FAILED);
      expect(limited, 'beyond 4 pending on this circuit').to.have.length(6);
      expect(failed).to.have.length(4);
      for (const f of failed) expect(f.at, 'a lookup answered by its deadline').to.be.within(1300, 4000);
      expect(maxPending).to.be.at.most(4);
      expect(queries, 'the exit asked the configured server').to.be.greaterThan(0);
      expect(await exit.metric('allium_drops_total', { reason: 'exit_resolve_limit' })).to.equal(6);
    } finally {
      link.close();
    }
  });
});
