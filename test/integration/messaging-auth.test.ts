/**
 * Client authorisation and introductions with relay processes (specs/messaging.md §3.3, rendezvous.md §4.2): an
 * endpoint that lists client keys can be found only by holders of a listed key (others get ERR_CLIENT_AUTH, and
 * their messages are not left in its mailbox instead); the list can change; a replayed introduction is refused;
 * and an introduction point that has seen its share of introductions is replaced, taking its replay set with it.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { createClientAuthKey, Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { ENDPOINT_CT_LEN, MAX_ENDPOINT_DESCRIPTOR_BYTES } from '../../protocol/endpoint-descriptor.js';
import { isAlliumError } from '../../protocol/errors.js';
import { descriptorLocator, periodAt } from '../../protocol/key-blinding.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

interface IntroView {
  circuit: ClientCircuit;
  seen: Set<string>;
}
const introsOf = (m: Messenger): Map<string, IntroView> => (m as unknown as { endpoint: { intros: Map<string, IntroView> } }).endpoint.intros;

describe('client authorisation and introductions (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
  });

  after(async () => {
    try {
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it('only holders of an authorised key find the endpoint; others get ERR_CLIENT_AUTH and leave nothing offline', async () => {
    const bobKey = createClientAuthKey();
    const carolKey = createClientAuthKey();
    const alice = new Messenger(ca, undefined, { authorizedClients: [bobKey.publicKey] });
    const bob = new Messenger(cb, undefined, { clientAuth: bobKey });
    const carol = new Messenger(cb);
    const got: IncomingMessage[] = [];
    alice.on('message:received', (m) => got.push(m));
    try {
      await alice.startListening();
      // What holders keep is the client-authorised form (one group of 16 entries), for one client.
      const probe = new ContentClient(cb);
      const copies = await probe.fetchFromAll('endpoint', descriptorLocator(alice.address, periodAt(Math.floor(Date.now() / 1000))));
      probe.close();
      expect(copies.length).to.be.greaterThan(0);
      for (const c of copies) expect((decodeCbor(c, MAX_ENDPOINT_DESCRIPTOR_BYTES) as { ct: Uint8Array }).ct.length).to.equal(ENDPOINT_CT_LEN[1]);

      const r = await bob.send(alice.address, enc('from an authorised client'));
      expect(r.status).to.equal('delivered');
      await waitFor(() => got.length === 1, 30_000, 'the authorised message');
      expect(dec(got[0]!.data)).to.equal('from an authorised client');
      expect(got[0]!.from).to.equal(bob.address);

      // No key, or a key that is not listed: the endpoint cannot be found, and send() does not fall back to the
      // mailbox (the endpoint is there; it refuses us).
      const stored: unknown[] = [];
      carol.on('message:stored-offline', (x) => stored.push(x));
      expect(await codeOf(carol.send(alice.address, enc('no key')))).to.equal('ERR_CLIENT_AUTH');
      expect(await codeOf(carol.send(alice.address, enc('wrong key'), { clientAuth: carolKey }))).to.equal('ERR_CLIENT_AUTH');
      expect(await codeOf(carol.connect(alice.address, 80))).to.equal('ERR_CLIENT_AUTH');
      expect(stored).to.deep.equal([]);

      // The endpoint changes its list: carol's key now works, bob's (with a new conversation) no longer does.
      await alice.setAuthorizedClients([carolKey.publicKey]);
      expect((await carol.send(alice.address, enc('now listed'), { clientAuth: carolKey })).status).to.equal('delivered');
      await waitFor(() => got.length === 2, 30_000, 'the newly authorised message');
      expect(dec(got[1]!.data)).to.equal('now listed');
      const bobAgain = new Messenger(cb, bob.identity, { clientAuth: bobKey });
      try {
        expect(await codeOf(bobAgain.send(alice.address, enc('removed'), { offline: 'never' }))).to.equal('ERR_CLIENT_AUTH');
      } finally {
        bobAgain.close();
      }
    } finally {
      alice.close();
      bob.close();
      carol.close();
    }
  });

  it('refuses a replayed introduction, and replaces a worn introduction point with its replay set', async () => {
    const alice = new Messenger(ca, undefined, { introPoints: 2, maxIntroductionsPerPoint: 2 });
    const errors: string[] = [];
    alice.on('endpoint:error', (e) => errors.push(e.code));
    let published = 0;
    alice.on('endpoint:published', () => published++);
    const captured: { state: IntroView; m: RelayMessage }[] = [];
    try {
      await alice.startListening();
      const intros = introsOf(alice);
      for (const state of intros.values()) {
        state.circuit.on('circuit:message', (_hop, m) => {
          if (m.command === RelayCommand.INTRODUCE2) captured.push({ state, m });
        });
      }
      const original = new Set(intros.values());
      const got: string[] = [];
      alice.on('message:received', (m) => got.push(dec(m.data)));
      const senders = Array.from({ length: 4 }, () => new Messenger(cb));
      try {
        const publishedBefore = published;
        for (const [i, s] of senders.entries()) expect((await s.send(alice.address, enc(`hello ${i}`))).status).to.equal('delivered');
        await waitFor(() => got.length === 4, 30_000, 'four messages');
        expect(captured.length).to.be.greaterThan(0);

        // The same INTRODUCE2 again (as an introduction point or an observer could replay it): refused.
        const { state, m } = captured[0]!;
        const endpoint = (alice as unknown as { endpoint: { onIntroduce: (s: IntroView, m: RelayMessage) => void } }).endpoint;
        endpoint.onIntroduce.call(endpoint, state, m);
        expect(errors).to.include('ERR_MESSAGE_REPLAY');

        // Four introductions over two points of two each: at least one point is worn out, replaced and republished.
        const settled = (): boolean => intros.size === 2 && [...intros.values()].every((s) => s.seen.size < 2);
        await waitFor(() => published > publishedBefore && settled(), 60_000, 'worn introduction points replaced');
        expect([...intros.values()].some((s) => !original.has(s))).to.equal(true);
        // Still reachable through the new points.
        const late = new Messenger(cb);
        try {
          expect((await late.send(alice.address, enc('after rotation'))).status).to.equal('delivered');
          await waitFor(() => got.includes('after rotation'), 30_000, 'a message after rotation');
        } finally {
          late.close();
        }
      } finally {
        for (const s of senders) s.close();
      }
    } finally {
      alice.close();
    }
  });
});
