/**
 * The introduction-point and rendezvous-cookie tables of a relay (specs/rendezvous.md §3.2), driven as the circuit
 * reactor drives them: a handler's throw destroys the circuit, and a destroyed circuit is reported with closed().
 * One circuit holds one registration; nothing a circuit made outlives it; registrations are bounded per peer and per
 * address block, so one circuit or one neighbour cannot keep honest endpoints out.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { isAlliumError } from '../../protocol/errors.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv, introSignedMessage } from '../../protocol/rendezvous-messages.js';
import type { Link } from '../../net/link.js';
import { CircuitHop, type CircuitReactor } from '../../relay/circuits.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { addressBlock } from '../../protocol/address-block.js';
import {
  INTRODUCE1_BURST,
  INTRODUCE1_POW_BURST,
  INTRODUCE1_RATE,
  MAX_INTRO_POINTS,
  RENDEZVOUS_COOKIE_LIFETIME_MS,
  RendezvousService,
} from '../../relay/rendezvous.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { POW_SEED_LEN, powBinding, solvePow, verifyPow } from '../../protocol/intro-pow.js';

/** A link as the service sees it: its peer's address. */
function fakeLink(remoteAddress: string | null): Link {
  return { socket: { remoteAddress } } as unknown as Link;
}

class Harness {
  readonly sent: { hop: CircuitHop; msg: RelayMessage }[] = [];
  readonly destroyed: { hop: CircuitHop; code: string }[] = [];
  private nextId = 1;
  readonly service: RendezvousService;
  readonly metrics = new RelayMetrics();

  constructor(limits: ConstructorParameters<typeof RendezvousService>[3] = {}, now: () => number = Date.now) {
    const reactor = {
      sendBackward: (hop: CircuitHop, msg: RelayMessage) => void this.sent.push({ hop, msg }),
      splice: () => undefined,
    } as unknown as CircuitReactor;
    this.service = new RendezvousService(reactor, this.metrics, now, limits);
  }

  circuit(link: Link): CircuitHop {
    const hop = new CircuitHop(this.nextId, { link, circId: this.nextId++ }, Date.now());
    hop.binding = crypto().random(32);
    hop.state = 'open';
    return hop;
  }

  /** Delivers as the reactor does: an error destroys the circuit and the handler hears of it. */
  deliver(hop: CircuitHop, command: RelayCommand, data: Uint8Array): string | null {
    try {
      expect(this.service.deliver(hop, { command, streamId: 0, data })).to.equal(true);
      return null;
    } catch (e) {
      if (!isAlliumError(e)) throw e;
      this.close(hop);
      this.destroyed.push({ hop, code: e.code });
      return e.code;
    }
  }

  close(hop: CircuitHop): void {
    if (hop.state === 'closed') return;
    hop.state = 'closed';
    this.service.closed(hop);
  }

  establishIntro(hop: CircuitHop, auth = crypto().ed25519Keypair()): string | null {
    const s = crypto().sign(introSignedMessage(hop.binding!), auth.secretKey);
    return this.deliver(hop, RelayCommand.ESTABLISH_INTRO, encodeRv('establishIntro', { k: auth.publicKey, s }));
  }

  establishRendezvous(hop: CircuitHop, cookie = crypto().random(COOKIE_LEN)): string | null {
    return this.deliver(hop, RelayCommand.ESTABLISH_RENDEZVOUS, encodeRv('establishRendezvous', { c: cookie }));
  }

  introduce(hop: CircuitHop, key: Uint8Array): string {
    this.deliver(hop, RelayCommand.INTRODUCE1, encodeRv('introduce1', { k: key, p: new Uint8Array(16) }));
    const ack = this.sent.filter((s) => s.hop === hop && s.msg.command === RelayCommand.INTRODUCE_ACK).pop();
    return decodeRv('introduceAck', ack!.msg.data).s;
  }

  repliesTo(hop: CircuitHop, command: RelayCommand): number {
    return this.sent.filter((s) => s.hop === hop && s.msg.command === command).length;
  }
}

describe('relay rendezvous tables (specs/rendezvous.md §3.2)', () => {
  it(`one circuit sending ${MAX_INTRO_POINTS} ESTABLISH_INTRO cannot fill the table; after it closes nothing is left; an honest endpoint registers`, () => {
    const h = new Harness();
    const attacker = h.circuit(fakeLink('198.51.100.7'));
    for (let i = 0; i < MAX_INTRO_POINTS && attacker.state === 'open'; i++) h.establishIntro(attacker);
    const established = h.repliesTo(attacker, RelayCommand.INTRO_ESTABLISHED);
    const attackerEntries = h.service.introCount;
    // An honest endpoint comes while the attacker's circuit would still be open …
    const honest = h.circuit(fakeLink('203.0.113.9'));
    const auth = crypto().ed25519Keypair();
    const honestResult = h.establishIntro(honest, auth);
    // … and once it is closed (already destroyed by its second registration here), only the honest key is left.
    h.close(attacker);
    const leftAfterClose = h.service.introCount;
    // The first registration stands; the second is a protocol violation that destroys the circuit, and its
    // destruction removes everything it made.
    expect({ established, destroyedWith: h.destroyed.map((d) => d.code), attackerEntries, honestResult, leftAfterClose }).to.deep.equal({
      established: 1,
      destroyedWith: ['ERR_RELAY_COMMAND'],
      attackerEntries: 0,
      honestResult: null,
      leftAfterClose: 1,
    });
    expect(h.repliesTo(honest, RelayCommand.INTRO_ESTABLISHED)).to.equal(1);
    expect(h.introduce(h.circuit(fakeLink('192.0.2.1')), auth.publicKey)).to.equal('ok');
    expect(h.repliesTo(honest, RelayCommand.INTRODUCE2)).to.equal(1);
  });

  it('a registration dies with its circuit, and the same key on a new circuit moves there', () => {
    const h = new Harness();
    const link = fakeLink('198.51.100.7');
    const auth = crypto().ed25519Keypair();
    const first = h.circuit(link);
    expect(h.establishIntro(first, auth)).to.equal(null);
    const second = h.circuit(link);
    expect(h.establishIntro(second, auth)).to.equal(null);
    expect(h.service.introCount).to.equal(1);
    // The first circuit lost the key: closing it takes nothing from the second.
    h.close(first);
    expect(h.introduce(h.circuit(link), auth.publicKey)).to.equal('ok');
    expect(h.repliesTo(second, RelayCommand.INTRODUCE2)).to.equal(1);
    // When the second closes too, the table is empty.
    h.close(second);
    expect(h.service.introCount).to.equal(0);
    expect(h.introduce(h.circuit(link), auth.publicKey)).to.equal('unknown');
  });

  it('one cookie per circuit, never a cookie and an intro key on one circuit, and cookies die with their circuit', () => {
    const h = new Harness();
    const link = fakeLink('198.51.100.7');
    const c = h.circuit(link);
    expect(h.establishRendezvous(c)).to.equal(null);
    expect(h.establishRendezvous(c)).to.equal('ERR_RELAY_COMMAND');
    expect(h.service.pendingRendezvousCount).to.equal(0);

    const d = h.circuit(link);
    expect(h.establishRendezvous(d)).to.equal(null);
    expect(h.establishIntro(d)).to.equal('ERR_RELAY_COMMAND');
    expect(h.service.pendingRendezvousCount).to.equal(0);

    const e = h.circuit(link);
    expect(h.establishIntro(e)).to.equal(null);
    expect(h.establishRendezvous(e)).to.equal('ERR_RELAY_COMMAND');
    expect(h.service.introCount).to.equal(0);
  });

  it('bounds registrations per peer and per address block; other peers still register', () => {
    const h = new Harness({ maxIntroPointsPerPeer: 3, maxIntroPointsPerBlock: 5, maxPendingRendezvousPerPeer: 2, maxPendingRendezvousPerBlock: 3 });
    const one = fakeLink('198.51.100.7');
    for (let i = 0; i < 3; i++) expect(h.establishIntro(h.circuit(one))).to.equal(null);
    expect(h.establishIntro(h.circuit(one))).to.equal('ERR_LIMIT');
    // Another link from the same /24 takes the block's remaining two, then the block is full.
    const sameBlock = fakeLink('198.51.100.200');
    expect(h.establishIntro(h.circuit(sameBlock))).to.equal(null);
    expect(h.establishIntro(h.circuit(sameBlock))).to.equal(null);
    expect(h.establishIntro(h.circuit(sameBlock))).to.equal('ERR_LIMIT');
    // An IPv4-mapped IPv6 address is the same block.
    expect(h.establishIntro(h.circuit(fakeLink('::ffff:198.51.100.9')))).to.equal('ERR_LIMIT');
    // Elsewhere, registration goes on.
    expect(h.establishIntro(h.circuit(fakeLink('203.0.113.9')))).to.equal(null);
    expect(h.service.introCount).to.equal(6);

    for (let i = 0; i < 2; i++) expect(h.establishRendezvous(h.circuit(one))).to.equal(null);
    expect(h.establishRendezvous(h.circuit(one))).to.equal('ERR_LIMIT');
    expect(h.establishRendezvous(h.circuit(sameBlock))).to.equal(null);
    expect(h.establishRendezvous(h.circuit(sameBlock))).to.equal('ERR_LIMIT');
    expect(h.establishRendezvous(h.circuit(fakeLink('203.0.113.9')))).to.equal(null);
  });

  it('counts are exact: after every circuit closes, a peer at its limit registers again', () => {
    const h = new Harness({ maxIntroPointsPerPeer: 2 });
    const link = fakeLink('2001:db8:1:2::5');
    const circuits = [h.circuit(link), h.circuit(link)];
    for (const c of circuits) expect(h.establishIntro(c)).to.equal(null);
    expect(h.establishIntro(h.circuit(link))).to.equal('ERR_LIMIT');
    for (const c of circuits) h.close(c);
    expect(h.service.introCount).to.equal(0);
    expect(h.establishIntro(h.circuit(link))).to.equal(null);
  });

  it('address blocks are /24 and /48; links without an address have none', () => {
    expect(addressBlock('198.51.100.7')).to.equal(addressBlock('198.51.100.250'));
    expect(addressBlock('198.51.100.7')).to.not.equal(addressBlock('198.51.101.7'));
    expect(addressBlock('::ffff:198.51.100.7')).to.equal(addressBlock('198.51.100.7'));
    expect(addressBlock('2001:db8:1:2::5')).to.equal(addressBlock('2001:db8:1:ffff::9'));
    expect(addressBlock('2001:db8:1:2::5')).to.not.equal(addressBlock('2001:db8:2:2::5'));
    expect(addressBlock(null)).to.equal(null);
    expect(addressBlock('not an address')).to.equal(null);
  });

  it(`INTRODUCE1 is rate limited per intro key: ${INTRODUCE1_BURST} at once, then ${INTRODUCE1_RATE} a second; the rest are answered busy`, () => {
    const clock = { now: 1_000_000 };
    const h = new Harness({}, () => clock.now);
    const link = fakeLink('198.51.100.7');
    const flooded = crypto().ed25519Keypair();
    const other = crypto().ed25519Keypair();
    const endpoint = h.circuit(link);
    const otherEndpoint = h.circuit(link);
    expect(h.establishIntro(endpoint, flooded)).to.equal(null);
    expect(h.establishIntro(otherEndpoint, other)).to.equal(null);
    const initiator = h.circuit(fakeLink('203.0.113.9'));
    const answers = (key: Uint8Array, n: number): Record<string, number> => {
      const out: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const s = h.introduce(initiator, key);
        out[s] = (out[s] ?? 0) + 1;
      }
      return out;
    };
    const flood = answers(flooded.publicKey, 10_000);
    const passedOn = h.repliesTo(endpoint, RelayCommand.INTRODUCE2);
    // Another endpoint at the same relay is not touched by the flood.
    const otherAnswers = answers(other.publicKey, 10);
    clock.now += 2_000; // two seconds refill 2 × INTRODUCE1_RATE
    const later = answers(flooded.publicKey, 100);
    expect({ flood, passedOn, otherAnswers, later, circuits: h.destroyed.length }).to.deep.equal({
      flood: { ok: INTRODUCE1_BURST, busy: 10_000 - INTRODUCE1_BURST },
      passedOn: INTRODUCE1_BURST,
      otherAnswers: { ok: 10 },
      later: { ok: 2 * INTRODUCE1_RATE, busy: 100 - 2 * INTRODUCE1_RATE },
      circuits: 0,
    });
  });

  it('INTRODUCE1 beyond the rate is counted as introduce_rate; a proof of work is passed on to the endpoint unchanged', async () => {
    const h = new Harness({}, () => 1_000_000);
    const key = crypto().ed25519Keypair();
    const endpoint = h.circuit(fakeLink('198.51.100.7'));
    expect(h.establishIntro(endpoint, key)).to.equal(null);
    const initiator = h.circuit(fakeLink('203.0.113.9'));
    const w = { n: crypto().random(16), e: 4096 };
    const p = crypto().random(300);
    h.deliver(initiator, RelayCommand.INTRODUCE1, encodeRv('introduce1', { k: key.publicKey, p, w }));
    const passed = h.sent.find((s) => s.hop === endpoint && s.msg.command === RelayCommand.INTRODUCE2)!;
    expect(decodeRv('introduce2', passed.msg.data)).to.deep.equal({ p, w });
    for (let i = 0; i < INTRODUCE1_BURST + 50; i++) h.introduce(initiator, key.publicKey);
    const counted = (await h.metrics.drops.get()).values.find((v) => v.labels.reason === 'introduce_rate')?.value;
    expect({ counted, passedOn: h.repliesTo(endpoint, RelayCommand.INTRODUCE2) }).to.deep.equal({ counted: 51, passedOn: INTRODUCE1_BURST });
  });

  it('introductions with a proof of work valid under the seeds the endpoint gave (INTRO_POW) have their own allowance: a flood without one does not crowd them out', () => {
    const clock = { now: 1_000_000 };
    const h = new Harness({}, () => clock.now);
    const key = crypto().ed25519Keypair();
    const endpoint = h.circuit(fakeLink('198.51.100.7'));
    expect(h.establishIntro(endpoint, key)).to.equal(null);
    const seed = crypto().random(POW_SEED_LEN);
    expect(h.deliver(endpoint, RelayCommand.INTRO_POW, encodeRv('introPow', { s: [seed] }))).to.equal(null);
    const attacker = h.circuit(fakeLink('203.0.113.9'));
    const honest = h.circuit(fakeLink('192.0.2.55'));
    // The flood spends the allowance for introductions without a proof.
    for (let i = 0; i < INTRODUCE1_BURST + 1_000; i++) h.introduce(attacker, key.publicKey);
    const paidIntroduction = (effort: number, s = seed): { p: Uint8Array; w: { n: Uint8Array; e: number } } => {
      const p = crypto().random(300);
      const w = solvePow(s, effort, powBinding(p), crypto().random(16), 1 << 20)!;
      return { p, w: { n: w.n, e: w.e } };
    };
    const ack = (hop: CircuitHop, m: { p: Uint8Array; w?: { n: Uint8Array; e: number } }): string => {
      h.deliver(hop, RelayCommand.INTRODUCE1, encodeRv('introduce1', { k: key.publicKey, ...m }));
      const a = h.sent.filter((x) => x.hop === hop && x.msg.command === RelayCommand.INTRODUCE_ACK).pop()!;
      return decodeRv('introduceAck', a.msg.data).s;
    };
    const good = paidIntroduction(16);
    // A proof solved under a seed the endpoint did not give. At effort 16, one in 16 such proofs also meets the
    // endpoint's seed (it is then paid work like any other), so the one sent is one that does not.
    const solvedUnderAnotherSeedOnly = (): { p: Uint8Array; w: { n: Uint8Array; e: number } } => {
      for (;;) {
        const m = paidIntroduction(16, crypto().random(POW_SEED_LEN));
        try {
          verifyPow([seed], m.w, powBinding(m.p));
        } catch {
          return m;
        }
      }
    };
    const results = {
      unpaid: ack(honest, { p: crypto().random(300) }),
      paid: ack(honest, good),
      replayed: ack(honest, good), // the same proof again: it counts as unpaid, and that allowance is spent
      otherSeed: ack(honest, solvedUnderAnotherSeedOnly()),
      circuits: h.destroyed.length,
    };
    expect(results).to.deep.equal({ unpaid: 'busy', paid: 'ok', replayed: 'busy', otherSeed: 'busy', circuits: 0 });
    const passed = h.sent.filter((x) => x.hop === endpoint && x.msg.command === RelayCommand.INTRODUCE2).pop()!;
    expect(decodeRv('introduce2', passed.msg.data).p).to.deep.equal(good.p);
    // A paying flood meets its own allowance.
    const paidAnswers: Record<string, number> = {};
    for (let i = 0; i < INTRODUCE1_POW_BURST + 20; i++) {
      const s = ack(attacker, paidIntroduction(1));
      paidAnswers[s] = (paidAnswers[s] ?? 0) + 1;
    }
    expect(paidAnswers).to.deep.equal({ ok: INTRODUCE1_POW_BURST - 1, busy: 21 });
  });

  it('INTRO_POW only on a circuit holding an intro key; the seeds are bounded', () => {
    const h = new Harness();
    const stranger = h.circuit(fakeLink('198.51.100.7'));
    expect(h.deliver(stranger, RelayCommand.INTRO_POW, encodeRv('introPow', { s: [crypto().random(32)] }))).to.equal('ERR_RELAY_COMMAND');
    const endpoint = h.circuit(fakeLink('198.51.100.8'));
    expect(h.establishIntro(endpoint)).to.equal(null);
    const three = encodeCbor({ s: [crypto().random(32), crypto().random(32), crypto().random(32)] });
    expect(h.deliver(endpoint, RelayCommand.INTRO_POW, three)).to.equal('ERR_SCHEMA');
  });

  it('cookies expire from the front of the table: an ESTABLISH_RENDEZVOUS does not pass over every cookie', () => {
    const clock = { now: 1_000_000 };
    const h = new Harness({ maxPendingRendezvous: 100_000, maxPendingRendezvousPerPeer: 100_000, maxPendingRendezvousPerBlock: 100_000 }, () => clock.now);
    // Every circuit counts how often its state is looked at.
    let looks = 0;
    const counted = (): CircuitHop => {
      const hop = h.circuit(fakeLink(null));
      let state = hop.state;
      Object.defineProperty(hop, 'state', {
        get: () => (looks++, state),
        set: (v: typeof state) => void (state = v),
      });
      return hop;
    };
    for (let i = 0; i < 5000; i++) expect(h.establishRendezvous(counted())).to.equal(null);
    looks = 0;
    for (let i = 0; i < 1000; i++) expect(h.establishRendezvous(counted())).to.equal(null);
    const looksPerCookie = looks / 1000;
    // Expiry still works: half a lifetime later nothing has gone; a lifetime later the next registration drops all.
    clock.now += RENDEZVOUS_COOKIE_LIFETIME_MS / 2;
    expect(h.establishRendezvous(counted())).to.equal(null);
    const halfway = h.service.pendingRendezvousCount;
    clock.now += RENDEZVOUS_COOKIE_LIFETIME_MS / 2;
    expect(h.establishRendezvous(counted())).to.equal(null);
    expect({ looksPerCookie, halfway, after: h.service.pendingRendezvousCount }).to.deep.equal({ looksPerCookie: 0, halfway: 6001, after: 2 });
  });
});
