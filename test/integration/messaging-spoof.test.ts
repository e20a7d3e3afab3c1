/**
 * A spoofed introduction with relay processes (specs/messaging.md §8, "Binding a conversation to a peer"): the
 * session handshake names the initiator without proof until its first ratchet message, so an impostor can open a
 * conversation to an endpoint claiming any address it knows. That conversation must never become the endpoint's
 * conversation with the claimed peer: the real peer's messages, both ways, are still delivered (or left in its
 * mailbox when it is not listening), never failed with ERR_INTERNAL, for as long as the impostor keeps its circuit.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type IncomingMessage, type SendReceipt } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { isAlliumError, type AlliumError } from '../../protocol/errors.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** What a send ended with: its status, or its error code. */
async function outcome(p: Promise<SendReceipt>): Promise<string> {
  try {
    return (await p).status;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

interface ConversationView {
  readonly circuit: ClientCircuit;
  send(id: Uint8Array, data: Uint8Array): Promise<number>;
}

/**
 * The impostor: a messenger whose identity claims `victim`'s public key with a secret key of its own. Its handshake
 * opens at the endpoint (the claimed key is only encrypted, not proven); its ratchet messages never authenticate.
 * Opens a message stream to `address` and sends one frame, and returns the conversation (kept open).
 */
async function impostorConversation(client: AlliumClient, victim: Identity, address: string): Promise<{ messenger: Messenger; conv: ConversationView }> {
  const forged: Identity = { publicKey: victim.publicKey, secretKey: createIdentity().secretKey };
  // A long acknowledgement timeout: the impostor keeps its circuit open for the whole test.
  const messenger = new Messenger(client, forged, { ackTimeoutMs: 3_600_000 });
  const open = (messenger as unknown as { conversationWith(k: string, s?: AbortSignal, a?: unknown): Promise<ConversationView> }).conversationWith.bind(
    messenger,
  );
  const conv = await open(address, undefined, undefined);
  void conv.send(crypto().random(16), enc('forged')).catch(() => undefined);
  return { messenger, conv };
}

describe('spoofed introductions (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let cm: AlliumClient;

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    cm = client([fps[5]!, fps[1]!]);
    await Promise.all([ca.start(), cb.start(), cm.start()]);
  });

  after(async () => {
    try {
      await Promise.all([ca?.stop(), cb?.stop(), cm?.stop()]);
    } finally {
      await net?.stop();
    }
  });

  it("an impostor claiming the peer's address neither takes nor blocks the real peer's messages", async () => {
    const alice = new Messenger(ca);
    const bob = new Messenger(cb);
    const carolIdentity = createIdentity(); // a victim that is not listening
    const atAlice: IncomingMessage[] = [];
    const atBob: IncomingMessage[] = [];
    const aliceErrors: AlliumError[] = [];
    alice.on('message:received', (m) => atAlice.push(m));
    bob.on('message:received', (m) => atBob.push(m));
    alice.on('endpoint:error', (e) => aliceErrors.push(e));
    const impostors: Messenger[] = [];
    try {
      await alice.startListening();
      await bob.startListening();

      // Impostors claim bob (listening) and carol (not listening) to alice, and keep their circuits open. Alice
      // accepted each stream (the conversation opened) and refused each forged frame.
      const asBob = await impostorConversation(cm, bob.identity, alice.address);
      const asCarol = await impostorConversation(cm, carolIdentity, alice.address);
      impostors.push(asBob.messenger, asCarol.messenger);
      await waitFor(() => aliceErrors.filter((e) => e.code === 'ERR_MESSAGE_AUTH').length >= 2, 30_000, 'alice to refuse both forged frames');
      expect(atAlice).to.deep.equal([]);

      // Alice writes to bob and to carol: delivered to bob over a conversation of her own, left in carol's mailbox.
      const toBob = await outcome(alice.send(bob.address, enc('alice to bob')));
      const toCarol = await outcome(alice.send(formatAddress(carolIdentity.publicKey), enc('alice to carol')));
      expect({ toBob, toCarol }).to.deep.equal({ toBob: 'delivered', toCarol: 'stored-offline' });
      await waitFor(() => atBob.length === 1, 30_000, "bob's message");
      expect(atBob.map((m) => [m.from, dec(m.data)])).to.deep.equal([[alice.address, 'alice to bob']]);

      // The real bob writes to alice, and alice answers: both delivered; nothing ever came from the impostors.
      expect(await outcome(bob.send(alice.address, enc('bob to alice')))).to.equal('delivered');
      expect(await outcome(alice.send(bob.address, enc('alice answers bob')))).to.equal('delivered');
      await waitFor(() => atBob.length === 2, 30_000, "bob's second message");
      expect(atAlice.map((m) => [m.from, dec(m.data)])).to.deep.equal([[bob.address, 'bob to alice']]);
      expect(atBob.map((m) => dec(m.data))).to.deep.equal(['alice to bob', 'alice answers bob']);

      // The impostors held their circuits open all along.
      expect([asBob.conv.circuit.state, asCarol.conv.circuit.state]).to.deep.equal(['open', 'open']);
      expect(aliceErrors.map((e) => e.code)).to.not.include('ERR_INTERNAL');
    } finally {
      for (const m of impostors) m.close();
      alice.close();
      bob.close();
    }
  });
});
