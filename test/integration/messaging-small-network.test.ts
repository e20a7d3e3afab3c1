/**
 * Live messaging in a network so small that every relay able to be a rendezvous point is one of the endpoint's
 * introduction points (specs/rendezvous.md §4.1): the initiator prefers a rendezvous point that is not one, but
 * falls back to one of them rather than failing over to the mailbox. Relay processes on 127.0.0.1.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

interface IntroView {
  relay: { fingerprint: string };
}
const introRelays = (m: Messenger): string[] => [...(m as unknown as { endpoint: { intros: Map<string, IntroView> } }).endpoint.intros.keys()];

describe('live messaging when every rendezvous-capable relay is an introduction point (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;

  before(async () => {
    net = await startNetwork(3);
    const client = (): AlliumClient => new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    ca = client();
    cb = client();
    await Promise.all([ca.start(), cb.start()]);
  });

  after(async () => {
    try {
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it('delivers live through a rendezvous point that is also an introduction point', async () => {
    const alice = new Messenger(ca, undefined, { introPoints: 3 });
    const bob = new Messenger(cb);
    const got: IncomingMessage[] = [];
    alice.on('message:received', (m) => got.push(m));
    try {
      await alice.startListening();
      expect(new Set(introRelays(alice)).size, 'introduction points: every relay').to.equal(3);
      const r = await bob.send(alice.address, new TextEncoder().encode('live, not offline'));
      expect(r.status).to.equal('delivered');
      await waitFor(() => got.length === 1, 30_000, 'the message at Alice');
      expect(new TextDecoder().decode(got[0]!.data)).to.equal('live, not offline');
    } finally {
      alice.close();
      bob.close();
    }
  });
});
