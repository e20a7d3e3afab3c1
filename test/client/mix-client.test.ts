/**
 * The message-mode client (specs/mix.md §5.1) over an in-memory network: packets are peeled hop by hop with the real
 * mix code (protocol/mix-packet.ts) and deposited straight into the recipient. A real message whose packet could not
 * leave in its slot — the link down, or its gateway out of the consensus — goes back to the head of the queue and
 * leaves in a later slot, exactly once.
 */
import { expect } from 'chai';
import { MixClient, type MixRelayInfo } from '../../client/messaging/mix-mode.js';
import { crypto, type KeyPair } from '../../crypto/index.js';
import { utf8 } from '../../protocol/bytes.js';
import { mixMailBody } from '../../protocol/mix-cells.js';
import { processMixPacket } from '../../protocol/mix-packet.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { waitFor } from '../helpers/network.js';

interface FakeMix extends MixRelayInfo {
  readonly keys: KeyPair;
  readonly replay: ReplayFilter;
}

describe('message mode: the client keeps a real message whose packet could not leave (mix.md §5.1)', () => {
  let mixes: FakeMix[] = [];
  const clients: MixClient[] = [];
  before(() => {
    mixes = Array.from({ length: 4 }, () => {
      const keys = crypto().x25519Keypair();
      return { identity: crypto().random(32), mixKey: keys.publicKey, keys, replay: new ReplayFilter({ capacity: 1000 }) };
    });
  });
  after(() => clients.forEach((c) => c.stop()));

  /** Carries `packet` from its first hop (`gateway`) to the end; a delivery into `to`'s inbox becomes its mail. */
  const route = (gateway: Uint8Array, packet: Uint8Array, to: MixClient): void => {
    let at = mixes.find((m) => crypto().equal(m.identity, gateway))!;
    for (;;) {
      const r = processMixPacket(packet, { identity: at.identity, keys: [at.keys], replay: at.replay });
      if (r.kind === 'drop') return;
      if (r.kind === 'deliver') {
        if (crypto().equal(r.inbox, to.address.inbox)) to.onMail(mixMailBody(true, r.payload));
        return;
      }
      packet = r.packet;
      at = mixes.find((m) => crypto().equal(m.identity, r.next))!;
    }
  };

  /**
   * Alice (gateway mixes[0], fast payload stream, no loops) and Bob (gateway mixes[1], never polls: mail is handed
   * to him directly). `linkUp(n)` says whether alice's n-th packet cell reaches the link; `consensus(n)` what the
   * n-th look at the mix relays returns.
   */
  const pair = (o: {
    cover: boolean;
    linkUp?: (n: number) => boolean;
    consensus?: (n: number) => MixRelayInfo[];
  }): { alice: MixClient; bob: MixClient; received: string[]; packets: () => number } => {
    let packets = 0;
    let looks = 0;
    const bob = new MixClient({ send: () => true, mixes: () => mixes }, { gateway: mixes[1]!.identity, cover: false, pollRate: 0 });
    const alice = new MixClient(
      {
        send: (kind, body) => {
          if (kind !== 'packet') return true;
          if (!(o.linkUp ?? (() => true))(packets++)) return false;
          route(mixes[0]!.identity, body, bob);
          return true;
        },
        mixes: () => (o.consensus ?? (() => mixes))(looks++),
      },
      { gateway: mixes[0]!.identity, cover: o.cover, sendRate: 200, loopRate: 0, pollRate: o.cover ? 0 : 200, delayMeanMs: 0 },
    );
    const received: string[] = [];
    bob.on('mix:message', (data) => received.push(Buffer.from(data).toString()));
    clients.push(alice, bob);
    return { alice, bob, received, packets: () => packets };
  };

  it('the link down for its first slots: the message leaves in a later slot, once', async () => {
    const { alice, bob, received, packets } = pair({ cover: true, linkUp: (n) => n >= 3 });
    const sent: string[] = [];
    alice.on('mix:sent', (id) => sent.push(Buffer.from(id).toString('hex')));
    alice.send(bob.address, utf8('kept'));
    alice.start();
    await waitFor(() => packets() >= 12, 10_000, 'a dozen payload slots');
    alice.stop();
    expect(received).to.deep.equal(['kept']);
    expect(alice.waiting).to.equal(0);
    expect(alice.stats.realSent, 'counted once, when it left').to.equal(1);
    expect(sent).to.have.length(1);
  });

  it('its gateway out of the consensus for a while: the message waits at the head of the queue', async () => {
    const { alice, bob, received } = pair({ cover: true, consensus: (n) => (n < 6 ? mixes.slice(1) : mixes) });
    alice.send(bob.address, utf8('first'));
    alice.send(bob.address, utf8('second'));
    alice.start();
    await waitFor(() => received.length >= 2 || alice.stats.dropSent >= 10, 10_000, 'both messages, or ten cover slots');
    alice.stop();
    expect(received, 'both, in order').to.deep.equal(['first', 'second']);
    expect(alice.waiting).to.equal(0);
  });

  it('with cover off, a message that could not leave at once leaves at a later poll event', async () => {
    const { alice, bob, received } = pair({ cover: false, linkUp: (n) => n >= 1 });
    alice.start();
    alice.send(bob.address, utf8('later'));
    expect(alice.waiting, 'back in the queue').to.equal(1);
    await waitFor(() => received.length === 1 || alice.stats.polls >= 20, 10_000, 'the message, or twenty polls');
    alice.stop();
    expect(received).to.deep.equal(['later']);
    expect(alice.stats.realSent).to.equal(1);
  });
});
