/**
 * Private messaging and hidden services with relay processes: two clients on disjoint entry relays exchange 1,000
 * messages in order with no loss or duplicate; an introduction relay killed → the endpoint republishes and stays
 * reachable; a hidden TCP service answers curl through SOCKS5.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import { startSocksServer } from '../../client/socks.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';
import { needProgram } from '../helpers/programs.js';

const run = promisify(execFile);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('private messaging and hidden services (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let alice: Messenger;
  let bob: Messenger;
  let web: Server;
  let webPort: number;

  before(async () => {
    net = await startNetwork(8, { exits: 1 });
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    web = createServer((_req, res) => res.end('hello from a hidden service\n'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    webPort = (web.address() as { port: number }).port;
    alice = new Messenger(ca, undefined, { services: { 80: { host: '127.0.0.1', port: webPort } } });
    bob = new Messenger(cb);
    await alice.startListening();
  });

  after(async () => {
    try {
      alice?.close();
      bob?.close();
      await ca?.stop();
      await cb?.stop();
      web?.close();
    } finally {
      await net?.stop();
    }
  });

  it('two clients exchange 1,000 messages each way in order, with no loss or duplicate, from disjoint entries', async () => {
    const atAlice: IncomingMessage[] = [];
    const atBob: IncomingMessage[] = [];
    alice.on('message:received', (m) => atAlice.push(m));
    bob.on('message:received', (m) => atBob.push(m));
    for (let i = 0; i < 1000; i++) await bob.send(alice.address, enc(`b${i}`));
    await waitFor(() => atAlice.length >= 1000, 60_000, '1,000 messages at alice');
    for (let i = 0; i < 1000; i++) await alice.send(bob.address, enc(`a${i}`));
    await waitFor(() => atBob.length >= 1000, 60_000, '1,000 messages at bob');
    expect(atAlice.map((m) => dec(m.data))).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `b${i}`));
    expect(atBob.map((m) => dec(m.data))).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `a${i}`));
    expect(new Set(atAlice.map((m) => m.from))).to.deep.equal(new Set([bob.address]));
    expect(new Set(atBob.map((m) => m.from))).to.deep.equal(new Set([alice.address]));
    expect(atAlice.map((m) => m.seq)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
    // Neither side's first hop is the other's.
    const firstA = new Set(ca.listCircuits().map((c) => c.path[0]!.fingerprint));
    const firstB = new Set(cb.listCircuits().map((c) => c.path[0]!.fingerprint));
    for (const f of firstA) expect(firstB.has(f)).to.equal(false);
  });

  it('refuses bad addresses with a clear error', async () => {
    const typo = alice.address.slice(0, 5) + (alice.address[5] === 'a' ? 'b' : 'a') + alice.address.slice(6);
    let code = '';
    try {
      await bob.send(typo, enc('x'));
    } catch (e) {
      code = (e as { code: string }).code;
    }
    expect(code).to.match(/^ERR_ADDRESS_/);
  });

  it('a prepared messenger meets a new endpoint over the circuits it built ahead (content.md §8.2, rendezvous.md §4.1)', async () => {
    const carol = new Messenger(cb);
    const newCircuit = cb.newCircuit.bind(cb);
    const calls: Promise<ClientCircuit>[] = [];
    let spying = true;
    cb.newCircuit = (o) => {
      const p = newCircuit(o);
      if (spying) calls.push(p);
      return p;
    };
    try {
      await carol.prepare();
      spying = false;
      // prepare() asks for the lookup client's three, then the one to a rendezvous point.
      const built = await Promise.all(calls);
      expect(built, 'three lookup circuits and one to a rendezvous point, built before any send').to.have.length(4);
      expect(built.every((c) => c.state === 'open' && c.hops === 3)).to.equal(true);
      const [l1, l2, l3, rp] = built as [ClientCircuit, ClientCircuit, ClientCircuit, ClientCircuit];
      const r = await carol.send(alice.address, enc('first from carol'), { offline: 'never' });
      expect(r.status).to.equal('delivered');
      // The lookup's operation took its three (no other operation can) and closed them as it ended.
      await waitFor(() => [l1, l2, l3].every((c) => c.state === 'closed'), 10_000, 'the lookup circuits built ahead taken and closed');
      // The rendezvous took the fourth: it now ends at alice (a virtual hop past the rendezvous point) and carries the
      // conversation — unless its rendezvous point is one of alice's introduction points, given up as rendezvous.md
      // §6 says.
      const ips = new Set(ca.listCircuits().flatMap((c) => (c.purpose === 'intro' ? [c.path.at(-1)!.fingerprint] : [])));
      if (ips.has(rp.path.at(-1)!.fingerprint)) expect(rp.state).to.equal('closed');
      else expect([rp.state, rp.hops]).to.deep.equal(['open', 4]);
    } finally {
      cb.newCircuit = newCircuit;
      carol.close();
      // A Messenger routes its client's *.allium connections: give them back to bob's.
      cb.useAddressConnector((address, port, o) => bob.connect(address, port, o));
    }
  });

  it('a hidden TCP service answers curl --socks5-hostname', async function () {
    needProgram(this, 'curl');
    const socks = await startSocksServer(cb, { port: 0 });
    try {
      const { stdout } = await run('curl', ['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${socks.port}`, `http://${alice.address}/`]);
      expect(stdout).to.equal('hello from a hidden service\n');
    } finally {
      await socks.close();
    }
  });

  it('an introduction relay killed → the endpoint republishes and stays reachable', async () => {
    const intros = (alice as unknown as { endpoint: { intros: Map<string, unknown> } }).endpoint.intros;
    const victimFp = [...intros.keys()][0]!;
    const victim = net.relays.find((r) => r.fingerprint === victimFp)!;
    let published = 0;
    alice.on('endpoint:published', () => published++);
    await victim.kill('SIGKILL');
    await waitFor(() => published > 0 && !intros.has(victimFp), 60_000, 'republished without the dead introduction point');
    const carol = new Messenger(cb);
    const got: string[] = [];
    alice.on('message:received', (m) => got.push(dec(m.data)));
    await carol.send(alice.address, enc('still reachable'));
    await waitFor(() => got.includes('still reachable'), 30_000, 'message after the introduction point died');
    carol.close();
  });
});
