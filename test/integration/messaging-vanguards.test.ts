/**
 * Vanguards with relay processes (specs/path.md §3.2, rendezvous.md §1): an endpoint that many initiators introduce
 * themselves to builds every rendezvous circuit — and every other circuit of its endpoint role — as guard, one of
 * its vanguards, a fresh middle, the named relay, so the relay next to its guard is always one of its four
 * vanguards, never a fresh draw; and the vanguards survive a restart of the client through its state directory.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger } from '../../client/messaging/node.js';
import { fileStorage } from '../../client/storage-node.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const INTRODUCTIONS = 16;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('an endpoint takes the hop after its guard from its vanguards only (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let dir: string;
  let endpointClient: AlliumClient;
  let initiatorClient: AlliumClient;
  let alice: Messenger;

  before(async () => {
    net = await startNetwork(10, { exits: 0 });
    dir = mkdtempSync(join(tmpdir(), 'allium-vanguards-'));
    const fps = net.relays.map((r) => r.fingerprint);
    endpointClient = new AlliumClient({
      bootstrap: [net.bootstrap],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      storage: fileStorage(dir),
    });
    initiatorClient = new AlliumClient({
      bootstrap: [net.bootstrap],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      entryRelays: [fps[8]!, fps[9]!],
    });
    await endpointClient.start();
    await initiatorClient.start();
  });

  after(async () => {
    try {
      alice?.close();
      await endpointClient?.stop();
      await initiatorClient?.stop();
    } finally {
      await net?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`${INTRODUCTIONS} introductions from fresh initiators: every endpoint circuit is guard, vanguard, fresh middle, named relay`, async () => {
    const built: ClientCircuit[] = [];
    alice = new Messenger(endpointClient);
    // What a listening messenger builds ahead for its own sends (ordinary initiator circuits, content.md §8.2
    // "Started", rendezvous.md §4.1) is built first, outside the count: alice sends nothing, so builds no more.
    await alice.prepare();
    endpointClient.on('client:circuit', (c) => built.push(c));
    await alice.startListening();
    const got: string[] = [];
    alice.on('message:received', (m) => got.push(new TextDecoder().decode(m.data)));
    for (let i = 0; i < INTRODUCTIONS; i++) {
      // A fresh identity each time: a new introduction, a new rendezvous circuit built by the endpoint.
      const bob = new Messenger(initiatorClient);
      try {
        await bob.send(alice.address, enc(`hello ${i}`), { signal: AbortSignal.timeout(60_000) });
      } finally {
        bob.close();
      }
    }
    await waitFor(() => got.length >= INTRODUCTIONS, 60_000, `${INTRODUCTIONS} messages at the endpoint`);

    const vanguards = new Set(endpointClient.vanguards.all.map((r) => r.fingerprint));
    const guards = new Set(endpointClient.guards.all.map((r) => r.fingerprint));
    expect(vanguards.size).to.be.within(1, 4);
    // Introduction points, descriptor stores and one rendezvous circuit per introduction.
    expect(built.length).to.be.at.least(INTRODUCTIONS);
    const second = new Set<string>();
    for (const c of built) {
      const path = c.path.map((d) => d.fingerprint);
      expect(path, 'an endpoint circuit has 4 hops at hops = 3').to.have.length(4);
      expect(guards.has(path[0]!), 'the entry is a guard').to.equal(true);
      expect(vanguards.has(path[1]!), `second hop ${path[1]!.slice(0, 8)} is a vanguard`).to.equal(true);
      expect(path[2]).to.not.equal(path[1]);
      second.add(path[1]!);
    }
    console.log(
      `      ${built.length} endpoint circuits; second hops: ${second.size} distinct, all among the ${vanguards.size} vanguards; ` +
        `${new Set(built.map((c) => c.path[2]!.fingerprint)).size} distinct third hops`,
    );
  });

  it('the vanguards are stored with the guards: a restarted client has the same ones', async () => {
    const before = endpointClient.vanguards.all.map((r) => ({ ...r }));
    expect(before.length).to.be.at.least(1);
    expect(statSync(join(dir, 'vanguards.json')).mode & 0o777).to.equal(0o600);
    alice.close();
    await endpointClient.stop();
    endpointClient = new AlliumClient({
      bootstrap: [net.bootstrap],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      storage: fileStorage(dir),
    });
    await endpointClient.start();
    expect(endpointClient.vanguards.all).to.deep.equal(before);
  });
});
