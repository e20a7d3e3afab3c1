/**
 * Exit name resolution under a black-holed DNS server (specs/streams.md §3): a UDP socket on 127.0.0.1 that reads
 * queries and never answers. Every BEGIN to a name is answered (RESOLVE_FAILED) by the lookup deadline, pending
 * lookups never exceed their limits (per relay, per circuit) and count against the connection cap, and a BEGIN to an
 * address is served meanwhile. In process, with the exit's real resolver and sockets; the getaddrinfo path of the
 * system resolver is made a black hole too, as it would be with that server in /etc/resolv.conf.
 */
import { expect } from 'chai';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { createServer, type Server } from 'node:net';
import { parseExitPolicy } from '../../protocol/exit-policy.js';
import { encodeBegin, EndReason } from '../../protocol/stream-messages.js';
import type { MuxStream, StreamMux } from '../../net/stream-mux.js';
import type { CircuitHop } from '../../relay/circuits.js';
import { ExitService } from '../../relay/exit.js';
import { silentLogger } from '../../relay/logger.js';
import { RelayMetrics } from '../../relay/metrics.js';

interface Outcome {
  at: number;
  how: 'end' | 'connected';
  reason?: number;
}

function fakeStream(): MuxStream & { outcome: Outcome | null } {
  return { state: 'open', outcome: null, on: () => () => undefined, write: () => true, end: () => undefined, consumed: () => undefined } as never;
}

describe('exit DNS with a server that never answers', function () {
  this.timeout(30_000);
  let blackhole: UdpSocket;
  let dnsPort: number;
  let queries = 0;
  let tcp: Server;
  let tcpPort: number;
  const realLookup = dnsPromises.lookup;

  before(async () => {
    blackhole = createSocket('udp4');
    blackhole.on('message', () => void queries++);
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    dnsPort = blackhole.address().port;
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    tcpPort = (tcp.address() as { port: number }).port;
    // getaddrinfo against that server would never return either.
    (dnsPromises as { lookup: unknown }).lookup = () => new Promise(() => undefined);
  });
  after(() => {
    (dnsPromises as { lookup: unknown }).lookup = realLookup;
    blackhole.close();
    tcp.close();
  });

  it('answers every BEGIN to a name by the deadline, within its limits, and still connects to addresses', async () => {
    const metrics = new RelayMetrics();
    const exit = new ExitService({
      policy: parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']),
      metrics,
      log: silentLogger(),
      dnsServers: [`127.0.0.1:${dnsPort}`],
      resolveTimeoutMs: 1000,
      maxPendingResolves: 8,
      maxPendingResolvesPerCircuit: 4,
      maxExitConnections: 10,
    });
    const started = Date.now();
    const outcomes: Outcome[] = [];
    const mux = {
      reset: (s: MuxStream & { outcome: Outcome | null }, reason: number) => outcomes.push((s.outcome = { at: Date.now() - started, how: 'end', reason })),
      accept: (s: MuxStream & { outcome: Outcome | null }) => outcomes.push((s.outcome = { at: Date.now() - started, how: 'connected' })),
    } as unknown as StreamMux;
    const circuits = [{}, {}, {}] as CircuitHop[];
    let maxPending = 0;
    const named: (MuxStream & { outcome: Outcome | null })[] = [];
    for (const [c, hop] of circuits.entries()) {
      for (let i = 0; i < 6; i++) {
        const s = fakeStream();
        named.push(s);
        exit.open(hop, mux, s, encodeBegin({ a: `n${c}-${i}.blackhole.test`, p: 80 }));
        maxPending = Math.max(maxPending, exit.pendingResolves);
      }
    }
    // Beyond 4 per circuit and 8 in all: refused at once.
    expect(
      named.filter((s) => s.outcome?.reason === EndReason.RESOURCE_LIMIT),
      'BEGINs refused at once',
    ).to.have.length(10);
    expect(exit.pendingResolves).to.equal(8);

    // Pending lookups hold places under the connection cap (10): two connections fit, the third does not.
    const direct = [fakeStream(), fakeStream(), fakeStream()];
    for (const s of direct) exit.open(circuits[0]!, mux, s, encodeBegin({ a: '127.0.0.1', p: tcpPort }));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        maxPending = Math.max(maxPending, exit.pendingResolves);
        if (named.every((s) => s.outcome) && direct.every((s) => s.outcome)) {
          clearInterval(t);
          resolve();
        }
        if (Date.now() - started > 10_000) {
          clearInterval(t);
          reject(new Error(`unanswered: ${named.filter((s) => !s.outcome).length} BEGINs`));
        }
      }, 20);
    });
    expect(direct.map((s) => s.outcome!.how)).to.deep.equal(['connected', 'connected', 'end']);
    expect(direct[2]!.outcome!.reason).to.equal(EndReason.RESOURCE_LIMIT);
    expect(direct[0]!.outcome!.at, 'an address is served while names are pending').to.be.lessThan(900);

    const resolved = named.filter((s) => s.outcome!.reason !== EndReason.RESOURCE_LIMIT);
    expect(resolved).to.have.length(8);
    for (const s of resolved) {
      expect(s.outcome!.reason).to.equal(EndReason.RESOLVE_FAILED);
      expect(s.outcome!.at, 'answered by the deadline').to.be.within(900, 2000);
    }
    expect(maxPending).to.equal(8);
    expect(queries, 'the exit asked the configured server').to.be.greaterThan(0);
    // The queries end by themselves: every slot is released, and new lookups are admitted again.
    const deadline = Date.now() + 5000;
    while (exit.pendingResolves > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(exit.pendingResolves).to.equal(0);
    const again = fakeStream();
    exit.open(circuits[2]!, mux, again, encodeBegin({ a: 'again.blackhole.test', p: 80 }));
    expect(exit.pendingResolves).to.equal(1);
    exit.closeAll();
  });
});
