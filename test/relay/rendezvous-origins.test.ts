/**
 * Where rendezvous registrations are counted (specs/rendezvous.md §3.2): circuits from client links per peer and per
 * address block; circuits from relay links — whose previous hop is a middle relay that honest circuits share with an
 * attacker's — in the relay links' pool, each relay link up to its fair share. And registrations lapse: intro keys
 * after INTRO_REGISTRATION_LIFETIME, and a circuit whose cookie expired cannot register again. Driven as the circuit
 * reactor drives the service (a handler's throw destroys the circuit, destroy() reports closed()), with an injected
 * clock.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { isAlliumError } from '../../protocol/errors.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv, introSignedMessage } from '../../protocol/rendezvous-messages.js';
import type { Link } from '../../net/link.js';
import { CircuitHop, type CircuitReactor } from '../../relay/circuits.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { RendezvousService, type RendezvousLimits } from '../../relay/rendezvous.js';

/** A link as the service sees it: its peer's role and address. */
function link(role: 'relay' | 'client', remoteAddress: string): Link {
  return { socket: { remoteAddress }, peer: { role: role === 'relay' ? LinkRole.RELAY : LinkRole.CLIENT, identity: null, version: 1 } } as unknown as Link;
}

class Harness {
  now = 1_750_000_000_000;
  readonly sent: { hop: CircuitHop; msg: RelayMessage }[] = [];
  readonly destroyed: CircuitHop[] = [];
  readonly service: RendezvousService;
  private nextId = 1;

  constructor(limits: RendezvousLimits) {
    const reactor = {
      sendBackward: (hop: CircuitHop, msg: RelayMessage) => void this.sent.push({ hop, msg }),
      splice: () => undefined,
      destroy: (hop: CircuitHop) => this.close(hop),
    } as unknown as CircuitReactor;
    this.service = new RendezvousService(reactor, new RelayMetrics(), () => this.now, limits);
  }

  circuit(l: Link): CircuitHop {
    const hop = new CircuitHop(this.nextId, { link: l, circId: this.nextId++ }, this.now);
    hop.binding = crypto().random(32);
    hop.state = 'open';
    return hop;
  }

  close(hop: CircuitHop): void {
    if (hop.state === 'closed') return;
    hop.state = 'closed';
    this.destroyed.push(hop);
    this.service.closed(hop);
  }

  deliver(hop: CircuitHop, command: RelayCommand, data: Uint8Array): string | null {
    try {
      this.service.deliver(hop, { command, streamId: 0, data });
      return null;
    } catch (e) {
      if (!isAlliumError(e)) throw e;
      this.close(hop);
      return e.code;
    }
  }

  establishIntro(hop: CircuitHop, auth = crypto().ed25519Keypair()): string | null {
    const s = crypto().sign(introSignedMessage(hop.binding!), auth.secretKey);
    return this.deliver(hop, RelayCommand.ESTABLISH_INTRO, encodeRv('establishIntro', { k: auth.publicKey, s }));
  }

  establishRendezvous(hop: CircuitHop, cookie = crypto().random(COOKIE_LEN)): string | null {
    return this.deliver(hop, RelayCommand.ESTABLISH_RENDEZVOUS, encodeRv('establishRendezvous', { c: cookie }));
  }

  introduce(key: Uint8Array): string {
    const hop = this.circuit(link('relay', '192.0.2.1'));
    this.deliver(hop, RelayCommand.INTRODUCE1, encodeRv('introduce1', { k: key, p: new Uint8Array(16) }));
    const ack = this.sent.filter((s) => s.hop === hop && s.msg.command === RelayCommand.INTRODUCE_ACK).pop();
    return decodeRv('introduceAck', ack!.msg.data).s;
  }
}

/** The defaults' proportions, a hundredth of the size: a relay-wide table of 100, 25 per peer and per block. */
const SMALL: RendezvousLimits = {
  maxIntroPoints: 100,
  maxIntroPointsPerPeer: 25,
  maxIntroPointsPerBlock: 25,
  maxPendingRendezvous: 100,
  maxPendingRendezvousPerPeer: 25,
  maxPendingRendezvousPerBlock: 25,
};

describe('rendezvous registrations by origin, and their lifetimes (specs/rendezvous.md §3.2)', () => {
  it('an attacker whose circuits come through four middle relays fills the table; an honest endpoint through a fifth still registers', () => {
    const h = new Harness(SMALL);
    const middles = [1, 2, 3, 4].map((i) => link('relay', `198.51.${100 + i}.1`));
    const taken = middles.map((m) => {
      let n = 0;
      while (h.establishIntro(h.circuit(m)) === null && n < 1000) n++;
      return n;
    });
    const full = h.service.introCount;
    // An honest endpoint whose circuit comes through another middle relay.
    const auth = crypto().ed25519Keypair();
    const honest = h.circuit(link('relay', '203.0.113.5'));
    const result = h.establishIntro(honest, auth);
    // Each middle relay takes up to its fair share of the table (the first, alone, all of it; each newcomer takes the
    // place of the oldest registrations of the one holding the most, whose circuits are destroyed).
    expect({ taken, full, result, count: h.service.introCount }).to.deep.equal({ taken: [100, 50, 33, 25], full: 100, result: null, count: 100 });
    expect(h.introduce(auth.publicKey)).to.equal('ok');
  });

  it('relay links share the table fairly: spread over four middles the attacker holds a quarter each, and a fifth middle takes its share', () => {
    const h = new Harness(SMALL);
    const middles = [1, 2, 3, 4].map((i) => link('relay', `198.51.${100 + i}.1`));
    // The attacker's circuits come through all four in turn.
    for (let i = 0; i < 200; i++) h.establishIntro(h.circuit(middles[i % 4]!));
    const full = h.service.introCount;
    // Honest endpoints through a fifth middle relay get its fair share (100 / 5 = 20), by taking the place of the
    // oldest registrations of the relay links holding the most.
    const fifth = link('relay', '203.0.113.5');
    const results = Array.from({ length: 21 }, () => h.establishIntro(h.circuit(fifth)));
    expect({ full, admitted: results.filter((r) => r === null).length, last: results[20], count: h.service.introCount }).to.deep.equal({
      full: 100,
      admitted: 20,
      last: 'ERR_LIMIT',
      count: 100,
    });
  });

  it('per-peer and per-block limits apply to circuits from client links; a middle relay in a busy /24 is not held to them', () => {
    const h = new Harness(SMALL);
    const client = link('client', '198.51.100.7');
    const fromClient = Array.from({ length: 26 }, () => h.establishIntro(h.circuit(client)));
    // A relay link from the same /24: its circuits are many clients' circuits, not that block's.
    const middle = link('relay', '198.51.100.8');
    const fromMiddle = Array.from({ length: 26 }, () => h.establishIntro(h.circuit(middle)));
    expect({
      client: fromClient.filter((r) => r === null).length,
      clientLast: fromClient[25],
      middle: fromMiddle.filter((r) => r === null).length,
    }).to.deep.equal({
      client: 25,
      clientLast: 'ERR_LIMIT',
      middle: 26,
    });
  });

  it('an intro key lapses after INTRO_REGISTRATION_LIFETIME (24 h): introductions find it unknown and its circuit is destroyed', () => {
    const h = new Harness(SMALL);
    const auth = crypto().ed25519Keypair();
    const intro = h.circuit(link('relay', '198.51.100.1'));
    expect(h.establishIntro(intro, auth)).to.equal(null);
    h.now += 24 * 3600_000 - 1;
    const before = h.introduce(auth.publicKey);
    h.now += 1;
    const after = h.introduce(auth.publicKey);
    expect({ before, after, destroyed: intro.state, count: h.service.introCount }).to.deep.equal({
      before: 'ok',
      after: 'unknown',
      destroyed: 'closed',
      count: 0,
    });
  });

  it('a circuit whose cookie expired cannot register again (a cookie or an intro key)', () => {
    const h = new Harness(SMALL);
    const c = h.circuit(link('relay', '198.51.100.1'));
    expect(h.establishRendezvous(c)).to.equal(null);
    h.now += 120_001;
    // Another circuit's request drops the expired cookie.
    expect(h.establishRendezvous(h.circuit(link('relay', '198.51.100.2')))).to.equal(null);
    const again = h.establishRendezvous(c);
    expect({ again, state: c.state, count: h.service.pendingRendezvousCount }).to.deep.equal({ again: 'ERR_RELAY_COMMAND', state: 'closed', count: 1 });
    const d = h.circuit(link('relay', '198.51.100.1'));
    expect(h.establishRendezvous(d)).to.equal(null);
    h.now += 120_001;
    expect(h.establishRendezvous(h.circuit(link('relay', '198.51.100.2')))).to.equal(null);
    expect(h.establishIntro(d)).to.equal('ERR_RELAY_COMMAND');
  });
});
