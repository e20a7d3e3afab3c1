/**
 * A forwarder's `refused` (at one of its limits) or `unreachable` is not an answer from the holder (specs/content.md
 * §8.2 "Retries"): the client asks that holder once more through another of the operation's circuits. In memory: a
 * stand-in CircuitSource whose circuits answer FETCH as their forwarder would, the first forward to each holder
 * refused (as when many clients read the same mailbox slot at once and each forwarder holds MAX_FORWARDS_PER_HOLDER).
 * Before the retry, every holder of the slot counted as not answering and the slot read as ERR_UNREACHABLE.
 * And a mailbox collector's pass, whose ContentClient is closed with it, builds no circuits ahead (3 per pass, unused).
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { CircuitSource, NewCircuitOptions } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { MAILBOX_OPEN_INBOXES, MailboxCollector } from '../../client/mailbox.js';
import { createIdentity } from '../../protocol/address.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeFetch, encodeFetched, type ContentStatus } from '../../protocol/content-messages.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { RelayCommand } from '../../protocol/relay-cell.js';

const relay = (i: number): Descriptor => ({ fingerprint: `relay${i}`, id: new Uint8Array(32).fill(i), caps: ['store'] }) as unknown as Descriptor;

/** One request stream of a fake circuit: what fetchItemInto uses of a MuxStream (`on` returns its removal). */
class FakeStream {
  private readonly handlers = new Map<string, Set<(...a: unknown[]) => void>>();
  constructor(readonly id: number) {}
  on(event: string, f: (...a: unknown[]) => void): () => void {
    const set = this.handlers.get(event) ?? new Set();
    this.handlers.set(event, set);
    set.add(f);
    return () => void set.delete(f);
  }
  emit(event: string, ...a: unknown[]): void {
    for (const f of [...(this.handlers.get(event) ?? [])]) f(...a);
  }
  markOpen(): void {}
  consumed(): void {}
}

/** A circuit ending at `forwarder`: each FETCH naming a holder gets `answer(holder)` back as FETCHED. */
class FakeCircuit extends EventEmitter {
  state: 'open' | 'closed' = 'open';
  private next = 1;
  private readonly streams = new Map<number, FakeStream>();
  readonly mux = {
    open: (): FakeStream => {
      const s = new FakeStream(this.next++);
      this.streams.set(s.id, s);
      return s;
    },
    reset: (s: FakeStream): void => void this.streams.delete(s.id),
  };
  constructor(
    readonly forwarder: Descriptor,
    private readonly answer: (holder: string, rk: string) => ContentStatus,
  ) {
    super();
  }
  /** FETCHes sent on it. */
  requests = 0;
  send(cell: { command: number; streamId: number; data: Uint8Array }): void {
    this.requests++;
    expect(cell.command).to.equal(RelayCommand.FETCH);
    const { f, k } = decodeFetch(cell.data);
    const s = this.streams.get(cell.streamId)!;
    // No `f`: the request is to this circuit's last hop itself (asked directly).
    const holder = f ? toHex(f) : toHex(this.forwarder.id);
    setImmediate(() => s.emit('stream:reply', RelayCommand.FETCHED, encodeFetched({ s: this.answer(holder, toHex(k)), n: 0 })));
  }
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.emit('circuit:close');
  }
}

describe('content: a forwarder that did not ask the holder is no answer (content.md §8.2)', () => {
  it("a slot whose holders' first forwards were all refused is read on the retry through other forwarders", async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const holders = relays.slice(1, 4);
    const forwards = new Map<string, number>();
    const via: string[] = [];
    const source = {
      directory: { view: { relays, placement: () => null, holderIndex: () => ({ holders: () => holders }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const c = new FakeCircuit(o.last!, (h) => {
          via.push(`${h.slice(0, 2)}@${o.last!.fingerprint}`);
          const n = (forwards.get(h) ?? 0) + 1;
          forwards.set(h, n);
          return n === 1 ? 'refused' : 'missing';
        });
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      const { copies, answered } = await content.fetchAnswers('mailbox', new Uint8Array(32), { head: true });
      expect(copies).to.deep.equal([]);
      expect(answered, 'every holder answered on its second try').to.equal(3);
      expect([...forwards.values()]).to.deep.equal([2, 2, 2]);
      // Each retry went through a forwarder other than the one that refused it.
      for (const h of holders.map((d) => toHex(d.id).slice(0, 2))) {
        const mine = via.filter((v) => v.startsWith(`${h}@`));
        expect(mine).to.have.length(2);
        expect(mine[0], `holder ${h}`).to.not.equal(mine[1]);
      }
    } finally {
      content.close();
    }
  });

  it('a forwarder that answers "not asked" twice is retired for the rest of the operation, its circuit closed', async () => {
    const relays = Array.from({ length: 10 }, (_, i) => relay(i));
    const holders = relays.slice(1, 7);
    const built: FakeCircuit[] = [];
    /** Each forwarder's answers, in order. */
    const at = new Map<string, ContentStatus[]>();
    const forwards = new Map<string, number>();
    let closedBeforeEnd = -1;
    const source = {
      directory: { view: { relays, placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => holders }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        // The first forward to each holder is answered "could not ask it" (a forwarder that lies: the next one reaches
        // it), the second `missing`: each request is tried on a second circuit, and the holder answers there.
        const c = new FakeCircuit(o.last!, (h) => {
          const n = (forwards.get(h) ?? 0) + 1;
          forwards.set(h, n);
          const answer: ContentStatus = n === 1 ? 'unreachable' : 'missing';
          at.set(o.last!.fingerprint, [...(at.get(o.last!.fingerprint) ?? []), answer]);
          if ([...at.values()].flat().length === 12) closedBeforeEnd = built.filter((x) => x.state === 'closed').length;
          return answer;
        });
        built.push(c);
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      expect(await content.fetchAnywhere('block', new Uint8Array(32), () => true)).to.equal(null);
      // 6 holders, two tries each, one after the other: 12 requests, none to a forwarder after its second "not asked".
      expect([...at.values()].flat()).to.have.length(12);
      for (const [f, answers] of at) {
        const second = answers.indexOf('unreachable', answers.indexOf('unreachable') + 1);
        expect(second === -1 || second === answers.length - 1, `${f}: ${answers.join(',')}`).to.equal(true);
      }
      // Six "not asked" answers on an operation of three circuits: one forwarder at least answered two and was
      // retired, its circuit closed once its requests settled, before the operation ended.
      expect([...at.values()].filter((a) => a.filter((x) => x === 'unreachable').length === 2).length).to.be.at.least(1);
      expect(closedBeforeEnd).to.be.at.least(1);
    } finally {
      content.close();
    }
    expect(built.filter((c) => c.state !== 'closed')).to.deep.equal([]);
  });

  it('a holder two forwarders could not reach is gone for the operation: no forwarder is retired for it, and it is asked through one forwarder only', async () => {
    const relays = Array.from({ length: 10 }, (_, i) => relay(i));
    const holders = relays.slice(1, 4);
    const dead = toHex(relays[1]!.id);
    const built: FakeCircuit[] = [];
    const toDead: string[] = [];
    const source = {
      directory: { view: { relays, placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => holders }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        // relay1 was killed but is still listed: no circuit to it can be built, and every forwarder answers
        // `unreachable` for it.
        if (toHex(o.last!.id) === dead) return Promise.reject(new Error('hop 2 could not extend the circuit'));
        const c = new FakeCircuit(o.last!, (h) => {
          if (h !== dead) return 'missing';
          toDead.push(o.last!.fingerprint);
          return 'unreachable';
        });
        built.push(c);
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    const session = content.session();
    try {
      // Twenty slots read one after the other in one session, as a mailbox pass reads an inbox.
      for (let i = 0; i < 20; i++) {
        const { answered } = await content.fetchAnswers('mailbox', new Uint8Array(32).fill(i), { head: true, session });
        expect(answered, 'the two live holders answer').to.equal(2);
      }
      // Asked through two forwarders at the first read, then through one: its answers retired no forwarder.
      expect(toDead).to.have.length(21);
      expect(new Set(toDead.slice(0, 2)).size).to.equal(2);
      expect(built, 'no circuit replaced (but one to the dead relay, which could not be built)').to.have.length(3);
      expect(built.every((c) => c.state === 'open')).to.equal(true);
    } finally {
      session.close();
      content.close();
    }
  });

  it('the editions of an updatable key whose holders\' forwards were all refused are asked for again in rounds (§8.2 "Refused everywhere")', async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const holders = relays.slice(1, 4);
    /** Forwards of each (holder, key): the first two (both tries of the first round) refused, then `missing`. */
    const forwards = new Map<string, number>();
    const source = {
      directory: { view: { relays, placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => holders }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const c = new FakeCircuit(o.last!, (h, rk) => {
          const n = (forwards.get(`${h}/${rk}`) ?? 0) + 1;
          forwards.set(`${h}/${rk}`, n);
          return n <= 2 ? 'refused' : 'missing';
        });
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      const key = { publisher: new Uint8Array(32).fill(9), secret: new Uint8Array(32).fill(8), name: 'n' };
      // Before, every holder of the key counted as not asked after one refused try: ERR_UNREACHABLE with `strict`.
      expect(await content.latestEdition(key, { strict: true }), 'every holder answered: no edition').to.equal(null);
      // 4 keys (the key and 3 hints) at 3 holders each: two refused tries, then one round answered.
      expect([...forwards.values()]).to.deep.equal(Array.from({ length: 12 }, () => 3));
    } finally {
      content.close();
    }
  });

  it('a read of every holder that has an answer starts no round for a holder refused everywhere (§8.2 "Refused everywhere")', async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const holders = relays.slice(1, 4);
    const refusedHolder = holders[0]!;
    const forwards = new Map<string, number>();
    const source = {
      directory: { view: { relays, placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => holders }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        // Every forward to the first holder is refused; the others answer `missing` at once.
        const c = new FakeCircuit(o.last!, (h) => {
          forwards.set(h, (forwards.get(h) ?? 0) + 1);
          return h === toHex(refusedHolder.id) ? 'refused' : 'missing';
        });
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      const { copies, answered, asked } = await content.fetchAnswers('record', new Uint8Array(32).fill(3));
      expect({ copies: copies.length, answered, asked }).to.deep.equal({ copies: 0, answered: 2, asked: 3 });
      // Its two tries of the first round only (the rounds would have made 14 and waited up to 15 s).
      expect(forwards.get(toHex(refusedHolder.id))).to.equal(2);
    } finally {
      content.close();
    }
  });

  it('a holder asked directly that answers `refused` itself starts no round (§8.2 "Refused everywhere": only a forwarder\'s does)', async () => {
    // The directory's only store relay is the holder: no forwarder but the holder, so it is asked directly.
    const holder = relay(1);
    let asked = 0;
    let direct = 0;
    const source = {
      directory: { view: { relays: [holder], placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => [holder] }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const c = new FakeCircuit(o.last!, () => {
          asked++;
          return 'refused';
        });
        const send = c.send.bind(c);
        c.send = (cell) => {
          if (decodeFetch(cell.data).f === undefined) direct++;
          send(cell);
        };
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      const { answered, asked: holders } = await content.fetchAnswers('record', new Uint8Array(32).fill(4));
      expect({ answered, holders }).to.deep.equal({ answered: 0, holders: 1 });
      // One request, to the holder itself (before, it waited out six rounds as if a forwarder had refused: 7).
      expect({ asked, direct }).to.deep.equal({ asked: 1, direct: 1 });
    } finally {
      content.close();
    }
  });

  it('the rounds of a holder refused everywhere go on when the wall clock steps forward (§8.2: a monotonic deadline)', async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const holder = relays[1]!;
    let forwards = 0;
    const wall = Date.now;
    const source = {
      directory: { view: { relays, placement: () => null, previousPlacement: () => null, holderIndex: () => ({ holders: () => [holder] }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        // Refused for the first round and the next (two tries each), then answered; the wall clock jumps an hour
        // ahead during the second round, after the deadline was set.
        const c = new FakeCircuit(o.last!, () => {
          forwards++;
          if (forwards === 3) Date.now = () => wall() + 3_600_000;
          return forwards <= 4 ? 'refused' : 'missing';
        });
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const content = new ContentClient(source, { circuitsAhead: false });
    try {
      const { answered } = await content.fetchAnswers('record', new Uint8Array(32).fill(5));
      // Before, the deadline was read from the wall clock: the hour ended the rounds and the holder counted as not answering.
      expect({ answered, forwards }).to.deep.equal({ answered: 1, forwards: 5 });
    } finally {
      Date.now = wall;
      content.close();
    }
  });

  it("a mailbox pass builds one operation's circuits per inbox and none ahead, which its ContentClient, closed with the pass, would close unused", async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const built: FakeCircuit[] = [];
    const source = {
      directory: { view: { relays, placement: () => null, holderIndex: () => ({ holders: () => relays.slice(1, 4) }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const c = new FakeCircuit(o.last!, () => 'missing');
        built.push(c);
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const errors: string[] = [];
    const delivered = await new MailboxCollector(source, createIdentity()).collect(
      () => undefined,
      (e) => errors.push(e.code),
    );
    expect({ delivered, errors }).to.deep.equal({ delivered: 0, errors: [] });
    // One inbox (no pairs): all its slot reads, of every epoch, are one operation on three circuits (messaging.md §9.5
    // "Circuits"); before, each slot read was an operation of its own, with three circuits (81 for this pass).
    const reads = built.reduce((n, c) => n + c.requests, 0) / 3;
    expect(reads).to.be.greaterThan(9);
    expect(built.length, `circuits built for ${reads} slot reads`).to.equal(3);
    expect(built.filter((c) => c.state !== 'closed')).to.deep.equal([]);
  });

  it('a mailbox pass with many pairs keeps at most MAILBOX_OPEN_INBOXES inboxes\' circuits open at once (§9.5 "Circuits")', async () => {
    const relays = [0, 1, 2, 3, 4, 5].map(relay);
    const built: FakeCircuit[] = [];
    let mostOpen = 0;
    const source = {
      directory: { view: { relays, placement: () => null, holderIndex: () => ({ holders: () => relays.slice(1, 4) }) } },
      newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const c = new FakeCircuit(o.last!, () => 'missing');
        built.push(c);
        // Counted once the closes already asked for have run (a session's circuits close a microtask later).
        setImmediate(() => (mostOpen = Math.max(mostOpen, built.filter((b) => b.state !== 'closed').length)));
        return Promise.resolve(c as unknown as ClientCircuit);
      },
    } as unknown as CircuitSource;
    const me = createIdentity();
    const contacts = Array.from({ length: 40 }, () => createIdentity().publicKey);
    const errors: string[] = [];
    const delivered = await new MailboxCollector(source, me, { pairs: () => ({ contacts, others: [] }) }).collect(
      () => undefined,
      (e) => errors.push(e.code),
    );
    expect({ delivered, errors }).to.deep.equal({ delivered: 0, errors: [] });
    // 41 inboxes, each read over 9 epochs: held open for the whole pass, 123 circuits were open at once.
    expect(mostOpen).to.be.at.most(MAILBOX_OPEN_INBOXES * 3);
    expect(built.filter((c) => c.state !== 'closed')).to.deep.equal([]);
  });
});
