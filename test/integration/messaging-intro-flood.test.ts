/**
 * An endpoint whose introduction points are flooded with introductions that carry no proof of work (specs/
 * rendezvous.md §3.2, §4.3): the flood spends each introduction point's allowance for unpaid introductions, but an
 * honest initiator pays — at once when the endpoint, refusing the flood, has republished its descriptor with an
 * effort; else at the next introduction point after a `busy` — and its introduction draws on the paid allowance the
 * flood cannot spend, because the endpoint gave its introduction points its seeds (INTRO_POW). Relay processes on
 * 127.0.0.1; the attacker is a client in this process sending INTRODUCE1 as fast as its circuits carry.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import type { IntroState } from '../../client/messaging/endpoint.js';
import { POW_MIN_EFFORT } from '../../client/messaging/limits.js';
import { crypto } from '../../crypto/index.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { encodeRv } from '../../protocol/rendezvous-messages.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const introsOf = (m: Messenger): IntroState[] => [...(m as unknown as { endpoint: { intros: Map<string, IntroState> } }).endpoint.intros.values()];

describe('introductions under a flood without proofs of work (relay processes)', function () {
  this.timeout(240_000);
  let net: TestNetwork;
  const clients: AlliumClient[] = [];

  before(async () => {
    net = await startNetwork(6);
  });

  after(async () => {
    try {
      for (const c of clients) await c.stop();
    } finally {
      await net?.stop();
    }
  });

  const client = async (): Promise<AlliumClient> => {
    const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await c.start();
    clients.push(c);
    return c;
  };

  it('an honest initiator still reaches the endpoint live, paying at an introduction point the flood has made busy', async () => {
    const [ca, cb, attacker] = [await client(), await client(), await client()];
    const alice = new Messenger(ca);
    const bob = new Messenger(cb);
    const got: IncomingMessage[] = [];
    alice.on('message:received', (m) => got.push(m));
    const floods: ClientCircuit[] = [];
    let timer: ReturnType<typeof setInterval> | null = null;
    try {
      await alice.startListening();
      const intros = introsOf(alice);
      expect(intros.length).to.be.greaterThan(0);
      // Every introduction point flooded: more than its burst at once, then 50 every 25 ms (2,000 a second each).
      for (const ip of intros) {
        const c = await attacker.newCircuit({ last: ip.relay, exitPort: null });
        // The attacker ignores the INTRODUCE_ACKs (our circuit would close on a reply nobody waits for): one waiter
        // takes them all, so the flood goes on for as long as the test runs.
        (c as unknown as { waiters: Map<number, { hop: number; deliver: () => void }> }).waiters.set(RelayCommand.INTRODUCE_ACK, {
          hop: c.hops - 1,
          deliver: () => {},
        });
        floods.push(c);
      }
      let sent = 0;
      const flood = (n: number): void => {
        for (let i = 0; i < n; i++)
          floods.forEach((c, j) => {
            if (c.state !== 'open') return;
            c.send({ command: RelayCommand.INTRODUCE1, streamId: 0, data: encodeRv('introduce1', { k: intros[j]!.auth.publicKey, p: crypto().random(300) }) });
            sent++;
          });
      };
      flood(400);
      timer = setInterval(() => flood(50), 25);
      const refused = async (): Promise<number> =>
        (await Promise.all(net.relays.map((r) => r.metric('allium_drops_total', { reason: 'introduce_rate' })))).reduce((a, b) => a + b, 0);
      // The flood has spent every introduction point's allowance for introductions without a proof.
      await waitFor(async () => sent >= 400 * floods.length && (await refused()) >= 150 * floods.length, 60_000, 'the flood answered busy');
      const r = await bob.send(alice.address, new TextEncoder().encode('through the flood'), { timeoutMs: 60_000 });
      expect(
        floods.every((c) => c.state === 'open'),
        'the flood still running',
      ).to.equal(true);
      expect(r.status, 'delivered live, not left in the mailbox').to.equal('delivered');
      // The endpoint refused what its introduction points passed on of the flood and asked for a proof at once.
      expect((alice as unknown as { endpoint: { suggestedEffort: number } }).endpoint.suggestedEffort, 'the effort the endpoint asks for').to.equal(
        POW_MIN_EFFORT,
      );
      await waitFor(() => got.length === 1, 30_000, 'the message at Alice');
      expect(new TextDecoder().decode(got[0]!.data)).to.equal('through the flood');
    } finally {
      if (timer) clearInterval(timer);
      for (const c of floods) c.close();
      alice.close();
      bob.close();
    }
  });
});
