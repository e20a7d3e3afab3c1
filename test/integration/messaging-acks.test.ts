/**
 * End-to-end acknowledgements (specs/messaging.md §8.1–§8.3) with relay processes: send() reports 'delivered' only
 * after the recipient's Messenger emitted the message; a lost acknowledgement makes the sender send again over a new
 * conversation, and the recipient drops the copy; an offline copy of a message that arrived live is dropped; and a
 * relay on the rendezvous circuit killed while messages are in flight loses none that the sender was told were
 * delivered or stored offline, and delivers none twice.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import type { MailboxSender } from '../../client/mailbox.js';
import { Messenger, type IncomingMessage, type SendReceipt } from '../../client/messaging/node.js';
import { fromHex } from '../../protocol/bytes.js';
import { isAlliumError } from '../../protocol/errors.js';
import { MAX_ACK_IDS, MAX_LIVE_MESSAGE_BYTES, decodeFrame, encodeAckFrame, encodeMessageFrame } from '../../protocol/message-frames.js';
import { pad, unpad } from '../../protocol/padding.js';
import { RATCHET_OVERHEAD } from '../../protocol/ratchet.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { StreamMux } from '../../net/stream-mux.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { EndReason } from '../../protocol/stream-messages.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { sleep, startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const ACK_TIMEOUT_MS = 4000;

/** What the tests reach inside a Messenger. */
interface Inside {
  conversations: Map<string, Promise<{ circuit: ClientCircuit; closed: boolean; flushAcks: () => void; acks: Uint8Array[] }>>;
  delivery: { receive: (m: IncomingMessage, gone: () => boolean) => Promise<boolean> };
  outbox: MailboxSender;
}
const inside = (m: Messenger): Inside => m as unknown as Inside;

describe('conversation frames', () => {
  it('messages and acks round-trip, acks fill the smallest bucket like a short message, malformed frames are refused', () => {
    const id = new Uint8Array(16).fill(7);
    const m = decodeFrame(encodeMessageFrame(5, id, enc('hi')));
    expect(m).to.deep.include({ kind: 'message', n: 5 });
    if (m.kind !== 'message') throw new Error('not a message');
    expect([...m.id]).to.deep.equal([...id]);
    expect(dec(m.data)).to.equal('hi');
    const ids = Array.from({ length: MAX_ACK_IDS }, (_, i) => new Uint8Array(16).fill(i));
    const a = decodeFrame(encodeAckFrame(ids));
    expect(a.kind).to.equal('ack');
    // The fullest ack and a one-byte message pad to the same length.
    expect(pad(encodeAckFrame(ids), RATCHET_OVERHEAD).length).to.equal(pad(encodeMessageFrame(0, id, enc('x')), RATCHET_OVERHEAD).length);
    expect(unpad(pad(encodeAckFrame(ids.slice(0, 1)), RATCHET_OVERHEAD), RATCHET_OVERHEAD).length).to.equal(17);
    const code = (f: () => unknown): string => {
      try {
        f();
        return '';
      } catch (e) {
        return isAlliumError(e) ? e.code : String(e);
      }
    };
    expect(code(() => encodeAckFrame([...ids, id]))).to.equal('ERR_SCHEMA');
    expect(code(() => decodeFrame(new Uint8Array([2])))).to.equal('ERR_BAD_LENGTH');
    expect(code(() => decodeFrame(new Uint8Array([2, ...id, 1])))).to.equal('ERR_BAD_LENGTH');
    expect(code(() => decodeFrame(new Uint8Array([1, 0, 0, 0, 0, 1])))).to.equal('ERR_TRUNCATED');
    expect(code(() => decodeFrame(new Uint8Array([7, ...id])))).to.equal('ERR_SCHEMA'); // an unknown kind (3 is an attachment, 4 a group envelope, 5 a device envelope, 6 a hello)
    expect(code(() => decodeFrame(new Uint8Array([6, ...id])))).to.equal('ERR_BAD_LENGTH'); // a hello is 2 bytes
    expect(code(() => decodeFrame(new Uint8Array(0)))).to.equal('ERR_TRUNCATED');
    expect(MAX_LIVE_MESSAGE_BYTES).to.equal(56704 - 61 - 4 - 21);
  });
});

describe('end-to-end acknowledgements (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let alice: Messenger;
  let bob: Messenger;
  /** Every message alice emitted, by text. */
  const got = new Map<string, IncomingMessage[]>();
  const count = (text: string): number => got.get(text)?.length ?? 0;

  before(async () => {
    net = await startNetwork(8);
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    alice = new Messenger(ca, undefined, { offline: { pollMs: 3_600_000 } });
    bob = new Messenger(cb, undefined, { ackTimeoutMs: ACK_TIMEOUT_MS });
    alice.on('message:received', (m) => {
      const text = dec(m.data);
      got.set(text, [...(got.get(text) ?? []), m]);
    });
    await alice.startListening();
  });

  after(async () => {
    try {
      alice?.close();
      bob?.close();
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it('send() resolves "delivered" only after the recipient emitted the message, with the id and number it saw', async () => {
    const delivered: SendReceipt[] = [];
    const off = bob.on('message:delivered', (r) => delivered.push(r));
    for (let i = 0; i < 20; i++) {
      const r = await bob.send(alice.address, enc(`one by one ${i}`));
      expect(r.status).to.equal('delivered');
      // Already emitted at the recipient when the sender hears of it.
      expect(count(`one by one ${i}`)).to.equal(1);
      const m = got.get(`one by one ${i}`)![0]!;
      expect(m.offline).to.equal(false);
      expect(m.from).to.equal(bob.address);
      if (r.status !== 'delivered') throw new Error('not delivered');
      expect(m.id).to.equal(r.id);
      expect(m.seq).to.equal(r.seq);
      expect(r.id).to.match(/^[0-9a-f]{32}$/);
    }
    expect(got.get('one by one 19')![0]!.seq).to.equal(19);
    // A burst: each send resolves after its own message was emitted (acks of a burst share frames).
    const early: string[] = [];
    const burst = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        bob.send(alice.address, enc(`burst ${i}`)).then((r) => {
          if (count(`burst ${i}`) !== 1) early.push(`burst ${i}`);
          return r;
        }),
      ),
    );
    off();
    expect(early).to.deep.equal([]);
    expect(burst.every((r) => r.status === 'delivered')).to.equal(true);
    expect(delivered.length).to.equal(80);
    expect(new Set(burst.map((r) => r.id)).size).to.equal(60);
  });

  /** Closes bob's conversation with alice, so that the next send meets her afresh. */
  const forgetConversation = async (): Promise<void> => {
    const have = inside(bob).conversations.get(alice.address);
    if (have) (await have).circuit.close();
    await waitFor(() => !inside(bob).conversations.has(alice.address), 10_000, "bob's conversation with alice unfiled");
  };

  /** While `f` runs, the bytes each stream had sent when CONNECTED or END came back for it, in order. */
  const sentAtAnswer = async <T>(f: () => Promise<T>): Promise<{ result: T | Error; seen: { answer: string; bytesOut: number }[] }> => {
    const proto = StreamMux.prototype as unknown as { onMessage: (this: StreamMux, m: RelayMessage) => boolean };
    const onMessage = proto.onMessage;
    const seen: { answer: string; bytesOut: number }[] = [];
    proto.onMessage = function (m) {
      const s = this.get(m.streamId);
      if (s && (m.command === RelayCommand.CONNECTED || m.command === RelayCommand.END) && s.state === 'opening')
        seen.push({ answer: m.command === RelayCommand.CONNECTED ? 'CONNECTED' : 'END', bytesOut: s.bytesOut });
      return onMessage.call(this, m);
    };
    try {
      return { result: await f().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))), seen };
    } finally {
      proto.onMessage = onMessage;
    }
  };

  it('a fresh conversation: the hello and first message leave right after BEGIN, before CONNECTED comes back (optimistic data)', async () => {
    await forgetConversation();
    const { result, seen } = await sentAtAnswer(() => bob.send(alice.address, enc('first contact')));
    expect(result).to.not.be.instanceOf(Error);
    expect((result as SendReceipt).status).to.equal('delivered');
    expect(count('first contact')).to.equal(1);
    // Both frames (hello and message, 890 bytes each) were out when CONNECTED arrived, in 3 cells rather than 4.
    expect(seen).to.deep.equal([{ answer: 'CONNECTED', bytesOut: 2 * 890 }]);
  });

  it('END instead of CONNECTED: the early message was discarded unread, and send() reports it failed, not delivered', async () => {
    await forgetConversation();
    // Alice refuses the next message stream as she would a second one on a circuit (specs/messaging.md §8).
    const proto = StreamMux.prototype as unknown as { accept: (this: StreamMux, s: Parameters<StreamMux['accept']>[0]) => void };
    const accept = proto.accept;
    proto.accept = function (s) {
      proto.accept = accept;
      this.reset(s, EndReason.RESOURCE_LIMIT);
    };
    try {
      const { result, seen } = await sentAtAnswer(() => bob.send(alice.address, enc('refused stream'), { offline: 'never' }));
      expect(seen).to.deep.equal([{ answer: 'END', bytesOut: 2 * 890 }]);
      expect(result).to.be.instanceOf(Error);
      expect(isAlliumError(result) ? result.code : String(result)).to.equal('ERR_STREAM_FAILED');
    } finally {
      proto.accept = accept;
    }
    expect(count('refused stream')).to.equal(0);
    // The next send meets alice again and is delivered.
    expect((await bob.send(alice.address, enc('after the refusal'), { offline: 'never' })).status).to.equal('delivered');
    expect(count('refused stream')).to.equal(0);
  });

  it('a lost acknowledgement: the sender gives the conversation up, sends again over a new one, and the copy is dropped', async () => {
    // The conversation bob opened, as alice holds it: it takes messages but sends no acknowledgement.
    const theirs = await inside(alice).conversations.get(bob.address)!;
    theirs.flushAcks = () => void theirs.acks.splice(0);
    const ours = await inside(bob).conversations.get(alice.address)!;
    const receive = inside(alice).delivery.receive.bind(inside(alice).delivery);
    let copies = 0;
    inside(alice).delivery.receive = async (m, gone) => {
      const fresh = await receive(m, gone);
      if (!fresh && dec(m.data) === 'ack lost') copies++;
      return fresh;
    };
    try {
      const t0 = Date.now();
      const r = await bob.send(alice.address, enc('ack lost'));
      expect(r.status).to.equal('delivered');
      expect(Date.now() - t0).to.be.at.least(ACK_TIMEOUT_MS);
      expect(ours.closed).to.equal(true);
      await waitFor(() => theirs.closed, 30_000, "the recipient's side of the abandoned conversation closed");
      const now = await inside(bob).conversations.get(alice.address)!;
      expect(now).to.not.equal(ours);
      expect(count('ack lost')).to.equal(1);
      expect(copies).to.equal(1);
      if (r.status === 'delivered') expect(got.get('ack lost')![0]!.id).to.equal(r.id);
    } finally {
      inside(alice).delivery.receive = receive;
    }
    // The new conversation works as usual.
    expect((await bob.send(alice.address, enc('after the loss'))).status).to.equal('delivered');
    expect(count('after the loss')).to.equal(1);
  });

  it('no acknowledgement over two conversations: "never" fails with ERR_TIMEOUT; "auto" leaves it offline, and that copy is dropped', async () => {
    // Every conversation at alice takes messages and acknowledges none (for this test only).
    const proto = Object.getPrototypeOf(await inside(alice).conversations.get(bob.address)!) as { flushAcks: () => void };
    const flush = proto.flushAcks;
    proto.flushAcks = function (this: { acks: Uint8Array[] }) {
      this.acks = [];
    };
    let stored: SendReceipt;
    try {
      let code = '';
      try {
        await bob.send(alice.address, enc('never acknowledged'), { offline: 'never' });
      } catch (e) {
        code = isAlliumError(e) ? e.code : String(e);
      }
      expect(code).to.equal('ERR_TIMEOUT');
      stored = await bob.send(alice.address, enc('left offline after two tries'));
    } finally {
      proto.flushAcks = flush;
    }
    // Both arrived over each of two conversations, and were emitted once.
    expect(count('never acknowledged')).to.equal(1);
    expect(count('left offline after two tries')).to.equal(1);
    expect(stored.status).to.equal('stored-offline');
    expect(got.get('left offline after two tries')![0]!.id).to.equal(stored.id);
    // The mailbox copy (same id) is collected and dropped.
    expect(await alice.checkMailbox()).to.equal(0);
    expect(count('left offline after two tries')).to.equal(1);
    // For 15 s after a send ended in the mailbox, 'auto' sends to alice go straight there (no conversation with her is
    // open: both were lost, §8.2); a live send still works.
    expect((await bob.send(alice.address, enc('acknowledged again'), { offline: 'never' })).status).to.equal('delivered');
  });

  it('the offline copy of a message that arrived live is dropped by the recipient', async () => {
    const r = await bob.send(alice.address, enc('live then offline'));
    if (r.status !== 'delivered') throw new Error('expected a live delivery');
    // As a sender does when it left the message in the mailbox after its live acknowledgement was lost: same id.
    const d = await inside(bob).outbox.deposit(alice.identity.publicKey, enc('live then offline'), { id: fromHex(r.id) });
    expect(d.id).to.equal(r.id);
    const before = got.size;
    expect(await alice.checkMailbox()).to.equal(0);
    expect(got.size).to.equal(before);
    expect(count('live then offline')).to.equal(1);
  });

  it('a relay on the rendezvous circuit killed with messages in flight: what was reported delivered or stored arrives, once', async () => {
    expect((await bob.send(alice.address, enc('before the kill'))).status).to.equal('delivered');
    const conv = await inside(bob).conversations.get(alice.address)!;
    // The rendezvous point (the last relay of bob's circuit), unless it is the bootstrap relay: then the hop before.
    const relays = conv.circuit.path.filter((d) => d.fingerprint !== net.relays[0]!.fingerprint);
    const victim = net.relays.find((r) => r.fingerprint === relays[relays.length - 1]!.fingerprint)!;
    const receive = inside(alice).delivery.receive.bind(inside(alice).delivery);
    let copies = 0;
    inside(alice).delivery.receive = async (m, gone) => {
      const fresh = await receive(m, gone);
      if (!fresh) copies++;
      return fresh;
    };
    const N = 80;
    const early: string[] = [];
    const sends: Promise<{ text: string; r?: SendReceipt; e?: unknown }>[] = [];
    let killed: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < N; i++) {
      const text = `in flight ${i}`;
      sends.push(
        bob.send(alice.address, enc(text)).then(
          (r) => {
            if (r.status === 'delivered' && count(text) !== 1) early.push(text);
            return { text, r };
          },
          (e: unknown) => ({ text, e }),
        ),
      );
      // Sends spread over a little time, so that some are acknowledged, some in flight and some not yet sent when
      // the relay dies.
      if (i % 10 === 9) await sleep(15);
      if (i === 30) killed = victim.kill('SIGKILL');
    }
    await killed;
    const results = await Promise.all(sends);
    inside(alice).delivery.receive = receive;
    expect(conv.closed).to.equal(true); // the conversation the sends started on was lost
    const failed = results.filter((x) => x.e !== undefined).map((x) => `${x.text}: ${String(x.e)}`);
    const reported = results.filter((x) => x.r !== undefined);
    const offline = reported.filter((x) => x.r!.status === 'stored-offline');
    expect(failed).to.deep.equal([]);
    expect(early).to.deep.equal([]);
    // Messages left in the mailbox are collected; the rest were emitted before their send() resolved.
    await waitFor(
      async () => {
        if (offline.some((x) => count(x.text) === 0)) await alice.checkMailbox().catch(() => 0);
        return reported.every((x) => count(x.text) >= 1);
      },
      120_000,
      () =>
        `every reported message at the recipient (missing: ${reported
          .filter((x) => count(x.text) === 0)
          .map((x) => x.text)
          .join(', ')})`,
    );
    // Exactly once, each under the id its receipt names.
    for (const x of reported) {
      expect(count(x.text), x.text).to.equal(1);
      expect(got.get(x.text)![0]!.id, x.text).to.equal(x.r!.id);
    }
    expect([...got.values()].every((ms) => ms.length === 1)).to.equal(true);
    console.log(`      ${reported.length - offline.length} delivered, ${offline.length} stored offline, ${copies} copies dropped`);
  });
});
