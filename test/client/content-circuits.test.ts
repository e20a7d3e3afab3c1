/**
 * Content circuits built ahead (specs/content.md §8.2), in memory: a stand-in CircuitSource whose circuits are event
 * emitters. Nothing is built before a client's first operation; then up to `perOperation` circuits wait, each taken
 * by one operation only; a waiting circuit closes after its lifetime and is replaced only while the client is not
 * idle; close() closes every one, built or still being built.
 */
import { EventEmitter, getEventListeners } from 'node:events';
import { expect } from 'chai';
import { ContentCircuits } from '../../client/content-circuits.js';
import type { CircuitSource, NewCircuitOptions } from '../../client/client.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { NotAskedError } from '../../net/content-requests.js';

/** A circuit as ContentCircuits uses it: a state, a last hop, close() and its event. */
class FakeCircuit extends EventEmitter {
  state: 'open' | 'closed' = 'open';
  constructor(readonly path: Descriptor[]) {
    super();
  }
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.emit('circuit:close');
  }
}

const relay = (i: number): Descriptor => ({ fingerprint: `relay${i}`, id: new Uint8Array(32).fill(i), caps: ['store'] }) as unknown as Descriptor;

/** A CircuitSource over six store relays; `hold` keeps builds pending until `release(signal)` (those under it, or not). */
function source(hold = false) {
  const relays = [0, 1, 2, 3, 4, 5].map(relay);
  const built: FakeCircuit[] = [];
  const pending: { signal: AbortSignal | undefined; go: () => void }[] = [];
  const s = {
    directory: { view: { relays } },
    newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
      const make = (): ClientCircuit => {
        const c = new FakeCircuit([relay(9), relay(10), o.last!]);
        built.push(c);
        return c as unknown as ClientCircuit;
      };
      if (!hold) return Promise.resolve(make());
      return new Promise((resolve) => pending.push({ signal: o.signal, go: () => resolve(make()) }));
    },
  };
  /** Finishes the pending builds made under `signal` (`mine`) or under another. */
  const release = (under: AbortSignal, mine: boolean): void => {
    for (const p of pending.filter((p) => (p.signal === under) === mine)) {
      pending.splice(pending.indexOf(p), 1);
      p.go();
    }
  };
  return { source: s as unknown as CircuitSource, built, release, calls: () => built.length + pending.length };
}

const closed = (c: FakeCircuit): Promise<void> => (c.state === 'closed' ? Promise.resolve() : new Promise((r) => c.once('circuit:close', () => r())));
const signal = new AbortController().signal;
const holder = relay(7);

/** Sends `n` requests at once on the operation (the least busy circuit each: spread over all) and returns the circuits they went on. */
async function requests(op: ReturnType<ContentCircuits['operation']>, n: number): Promise<Set<FakeCircuit>> {
  const used = new Set<FakeCircuit>();
  await Promise.all(Array.from({ length: n }, () => op.with(holder, signal, async (c) => used.add(c as unknown as FakeCircuit))));
  return used;
}
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('content circuits built ahead (content.md §8.2)', () => {
  it('builds nothing before an operation; the next operation takes circuits built before it started, never one another operation used', async () => {
    const s = source();
    const circuits = new ContentCircuits(s.source);
    try {
      await Promise.resolve();
      expect(s.calls(), 'nothing built ahead of a first operation').to.equal(0);
      const op1 = circuits.operation();
      const used1 = await requests(op1, 9);
      expect(used1.size).to.equal(3);
      expect(circuits.waitingCount, 'three built ahead at the first request').to.equal(3);
      op1.close();
      const before = new Set(s.built);
      const waiting = [...before].filter((c) => !used1.has(c));
      expect(waiting.map((c) => c.state)).to.deep.equal(['open', 'open', 'open']);

      const op2 = circuits.operation();
      const used2 = await requests(op2, 9);
      expect(
        [...used2].every((c) => before.has(c)),
        'built before the operation started',
      ).to.equal(true);
      expect(
        [...used2].filter((c) => used1.has(c)),
        'none another operation used',
      ).to.deep.equal([]);
      expect(new Set([...used2].map((c) => c.path[2]!.fingerprint)).size, 'three forwarders').to.equal(3);
      expect(circuits.waitingCount, 'replaced in the background').to.equal(3);
      const op3 = circuits.operation();
      const used3 = await requests(op3, 3);
      expect([...used3].filter((c) => used1.has(c) || used2.has(c))).to.deep.equal([]);
      op2.close();
      op3.close();
      await settle();
      expect(
        [...used1, ...used2, ...used3].every((c) => c.state === 'closed'),
        "operations' circuits closed as they end",
      ).to.equal(true);
      expect(
        s.built.filter((c) => c.state === 'open'),
        'open: the three waiting',
      ).to.have.length(3);
    } finally {
      circuits.close();
    }
  });

  it("the circuits an operation took are built ahead again once its first two requests settled, not beside them (a get's manifest and first block)", async () => {
    const s = source();
    const circuits = new ContentCircuits(s.source);
    try {
      const op1 = circuits.operation();
      await requests(op1, 3);
      op1.close();
      await settle();
      expect(circuits.waitingCount, 'three waiting after the first operation').to.equal(3);
      const calls = s.calls();
      const op2 = circuits.operation();
      // One request at a time, as a get's manifest then its lead: no build while either is in flight.
      const during: number[] = [];
      for (let i = 0; i < 2; i++) await op2.with(holder, signal, async () => void during.push(s.calls() - calls));
      expect(during, 'builds while the first two requests were in flight').to.deep.equal([0, 0]);
      expect(s.calls() - calls, 'three built ahead once the second settled').to.equal(3);
      expect(circuits.waitingCount).to.equal(3);
      // An operation that ends after one request has its circuits replaced as it ends.
      const op3 = circuits.operation();
      await requests(op3, 1);
      expect(s.calls() - calls, 'none yet after one request').to.equal(3);
      op3.close();
      expect(s.calls() - calls, 'three more as it ends').to.equal(6);
      op2.close();
    } finally {
      circuits.close();
    }
  });

  it('a waiting circuit closes after its lifetime and is replaced only within the idle limit; close() closes every one', async () => {
    let now = 0;
    const s = source();
    const circuits = new ContentCircuits(s.source, { now: () => now, aheadLifetimeMs: 5, aheadIdleMs: 1000 });
    try {
      const op = circuits.operation();
      const used = await requests(op, 3);
      op.close();
      const first = s.built.filter((c) => !used.has(c));
      expect(first).to.have.length(3);
      // Lifetime over, the client not idle: closed and replaced.
      await Promise.all(first.map(closed));
      expect(circuits.waitingCount).to.equal(3);
      const second = s.built.filter((c) => !used.has(c) && !first.includes(c));
      expect(second).to.have.length(3);
      // Idle past the limit: closed at their lifetime and not replaced.
      now += 1000;
      await Promise.all(second.map(closed));
      expect(circuits.waitingCount, 'none waiting once idle').to.equal(0);
      expect(s.built, 'none built once idle').to.have.length(9);
      expect(s.built.every((c) => c.state === 'closed')).to.equal(true);
    } finally {
      circuits.close();
    }
  });

  it('started (buildAhead): one set before any operation, which the first operation takes; unused, closed at its lifetime and not replaced', async () => {
    const s = source();
    const circuits = new ContentCircuits(s.source);
    try {
      await circuits.buildAhead();
      expect(s.built, 'one set built before any operation').to.have.length(3);
      const ahead = new Set(s.built);
      const op = circuits.operation();
      const used = await requests(op, 9);
      expect(
        [...used].every((c) => ahead.has(c)),
        'the first operation on circuits built before it',
      ).to.equal(true);
      expect(used.size).to.equal(3);
      op.close();
    } finally {
      circuits.close();
    }
    const t = source();
    const idle = new ContentCircuits(t.source, { aheadLifetimeMs: 5 });
    try {
      await idle.buildAhead();
      await Promise.all(t.built.map(closed));
      await settle();
      expect(idle.waitingCount, 'none waiting after the lifetime without an operation').to.equal(0);
      expect(t.built, 'not replaced').to.have.length(3);
    } finally {
      idle.close();
    }
  });

  it('close() closes the waiting circuits, those still being built included, and builds none after', async () => {
    const s = source(true);
    const circuits = new ContentCircuits(s.source);
    const op = circuits.operation();
    const answered = requests(op, 2);
    expect(s.calls(), "the operation's three").to.equal(3);
    s.release(signal, true); // the operation's own three
    await answered;
    expect(s.calls(), 'and three ahead once its two requests settled').to.equal(6);
    circuits.close();
    s.release(signal, false); // the three ahead finish building after close()
    await settle();
    expect(circuits.waitingCount).to.equal(0);
    op.close();
    await settle();
    expect(s.built, 'all six built').to.have.length(6);
    expect(
      s.built.filter((c) => c.state !== 'closed'),
      'left open',
    ).to.deep.equal([]);
    const op2 = circuits.operation();
    const late = op2.with(holder, signal, async () => undefined).catch(() => undefined);
    expect(s.calls(), "after close(): the operation's own, none ahead").to.equal(9);
    expect(circuits.waitingCount).to.equal(0);
    s.release(signal, true);
    await late;
    op2.close();
  });

  it('builds ahead in flight leave no pile of abort listeners on one long-lived signal', async () => {
    const s = source(true);
    // As AlliumClient.newCircuit does: one abort listener on the build's signal until the build settles.
    const signals = new Set<AbortSignal>();
    const newCircuit = s.source.newCircuit.bind(s.source);
    s.source.newCircuit = (o: NewCircuitOptions = {}) => {
      const onAbort = (): void => undefined;
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.signal && o.signal !== signal) signals.add(o.signal); // not the operations' (the caller's: the first builds under it)
      const p = newCircuit(o);
      const off = (): void => o.signal?.removeEventListener('abort', onAbort);
      p.then(off, off);
      return p;
    };
    const most = (): number => Math.max(...[...signals].map((x) => getEventListeners(x, 'abort').length));
    const circuits = new ContentCircuits(s.source);
    // Twenty operations start at once (twenty mailbox slots read together), each building its own three; once their
    // first two requests settle, circuits are built ahead, in flight while the next twenty take them.
    const ops = Array.from({ length: 20 }, () => circuits.operation());
    const answered = ops.map((op) => requests(op, 2));
    expect(s.calls(), 'three per operation').to.equal(60);
    s.release(signal, true);
    await Promise.all(answered);
    const more = Array.from({ length: 20 }, () => circuits.operation());
    ops.push(...more);
    const answered2 = more.map((op) => requests(op, 2));
    expect(s.calls(), 'three ahead, taken by one of the next twenty, and their own').to.equal(63 + 19 * 3);
    expect(most(), 'abort listeners on one signal while the builds are in flight').to.be.at.most(1);
    s.release(signal, true);
    s.release(signal, false);
    await Promise.all(answered2);
    for (const op of ops) op.close();
    circuits.close();
    await settle();
    expect(most(), 'abort listeners left once every build settled').to.equal(0);
  });
});

/**
 * One request as ContentClient makes it (content.md §8.2 "Retries"): tried once more when its circuit could not be
 * built or when the forwarder did not ask the holder; the holder `dead` is a relay gone but still in the directory,
 * which every forwarder answers `unreachable` for. Returns the forwarder that asked the holder, or null.
 */
async function ask(op: ReturnType<ContentCircuits['operation']>, h: Descriptor, dead: string): Promise<string | null> {
  let last: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    let through: string | undefined;
    try {
      await op.with(
        h,
        signal,
        async (_c, _f, forwarder) => {
          through = forwarder;
          if (h.fingerprint === dead) throw new NotAskedError('unreachable', true);
        },
        last,
      );
      return through!;
    } catch (e) {
      if (through === undefined) continue; // no circuit: once more
      last = through;
      if (!(e instanceof NotAskedError) || op.notAsked(through, h.fingerprint, e.status) === false) return null;
    }
  }
  return null;
}

describe('a relay gone but still in the directory (content.md §8.2 "Retries")', () => {
  it('its answers as a holder retire no forwarder, its circuits are not drawn again, and live holders are still asked', async () => {
    // Six store relays; relay5 was killed: a circuit to it cannot be built, and every forwarder answers `unreachable`
    // for it as a holder (a mailbox pass reads many slots it holds, in one session).
    const s = source();
    const dead = relay(5);
    const newCircuit = s.source.newCircuit.bind(s.source);
    s.source.newCircuit = (o: NewCircuitOptions = {}) =>
      o.last?.fingerprint === dead.fingerprint ? Promise.reject(new Error('hop 2 could not extend the circuit')) : newCircuit(o);
    const circuits = new ContentCircuits(s.source, { ahead: false });
    const op = circuits.operation();
    try {
      for (let i = 0; i < 30; i++) await ask(op, dead, dead.fingerprint);
      // Before the fix, those answers had retired every live forwarder, and the only relay left to draw was the dead
      // one: every request, to any holder, failed.
      const asked: (string | null)[] = [];
      for (let i = 0; i < 12; i++) asked.push(await ask(op, holder, dead.fingerprint));
      expect(
        asked.filter((f) => f === null || f === dead.fingerprint),
        'requests to a live holder not asked',
      ).to.deep.equal([]);
      expect(op.isGone(dead.fingerprint), 'two forwarders could not reach it: not tried through another again').to.equal(true);
    } finally {
      op.close();
      circuits.close();
    }
  });

  it('two forwarders lying together about every holder are both retired after their answers, and a retired one is not brought back', async () => {
    const s = source();
    const circuits = new ContentCircuits(s.source, { ahead: false });
    const op = circuits.operation();
    try {
      // The operation's three forwarders; two of them (l0, l1) answer `unreachable` about every holder, honest ones.
      const first = await requests(op, 3);
      const [l0, l1] = [...first].map((c) => c.path[2]!.fingerprint);
      const holders = Array.from({ length: 10 }, (_, i) => relay(20 + i).fingerprint);
      // l0 is retired by its two answers; then l1 says the same as l0 about each holder (each request's second try).
      op.notAsked(l0!, holders[0]!, 'unreachable');
      op.notAsked(l0!, holders[1]!, 'unreachable');
      for (const h of holders) {
        if (!op.notAsked(l1!, h, 'unreachable')) continue; // a holder gone: no second try
        op.notAsked(l0!, h, 'unreachable');
      }
      // Before the mend, l1's answers made every holder gone and took back every answer held against either: l0 was
      // drawn again, and neither was ever retired.
      expect(
        holders.filter((h) => op.isGone(h)),
        'at most one holder gone in an operation',
      ).to.have.length.at.most(1);
      const used = await requests(op, 9);
      expect(
        [...used].map((c) => c.path[2]!.fingerprint).filter((f) => f === l0 || f === l1),
        'no request through either liar',
      ).to.deep.equal([]);
      expect(used.size, 'three circuits still').to.equal(3);
    } finally {
      op.close();
      circuits.close();
    }
  });

  it('a middle relay closing every circuit to an honest forwarder keeps at most MAX_BROKEN_FORWARDERS of them out of the draws', async () => {
    // relay4 and relay5 are the forwarders a middle relay wants the operation to use: it closes every other circuit.
    const s = source();
    const circuits = new ContentCircuits(s.source, { ahead: false });
    const op = circuits.operation();
    const chosen = new Set([relay(4).fingerprint, relay(5).fingerprint]);
    try {
      let honest: string[] = [];
      for (let round = 0; round < 8; round++) {
        const used = [...(await requests(op, 3))];
        honest = used.map((c) => c.path[2]!.fingerprint).filter((f) => !chosen.has(f));
        for (const c of used) if (!chosen.has(c.path[2]!.fingerprint)) c.close();
      }
      // Before the bound, every honest forwarder closed once was avoided for the rest of the operation: after four
      // rounds, every circuit went to relay4 or relay5.
      expect(honest, 'an honest forwarder still drawn').to.have.length.at.least(1);
    } finally {
      op.close();
      circuits.close();
    }
  });
});
