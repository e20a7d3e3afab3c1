/**
 * A forwarder streams a FETCH's answer through (specs/content.md §8.3 item 3): the holder's FETCHED and each DATA
 * cell reach the client as they arrive, not once the whole item is in; a holder that stops part-way leaves the client
 * an END (HOST_UNREACHABLE) before the last byte, which the client takes as a holder that did not answer, and the
 * forward's slot is freed. Two relays in this process (relay/content.ts with its ContentForwarder, and a holder whose
 * FETCH handler the test drives), real links and onions over in-memory sockets.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { BLOCK_LEN } from '../../protocol/chk.js';
import type { CircuitSource, NewCircuitOptions } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { CONTENT_REFUSED_ROUNDS } from '../../client/content-circuits.js';
import { fetchItem, fetchItemInto } from '../../net/content-requests.js';
import type { MuxStream, StreamMux } from '../../net/stream-mux.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { encodeFetched, encodeStored } from '../../protocol/content-messages.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import type { DirectoryStore } from '../../protocol/directory-store.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { EndReason } from '../../protocol/stream-messages.js';
import { ContentForwarder } from '../../relay/content-forward.js';
import { silentLogger } from '../../relay/logger.js';
import { RelayMetrics } from '../../relay/metrics.js';
import { RelayRig, until } from '../helpers/relay-rig.js';

describe('content forwarding streams a FETCH through', function () {
  this.timeout(30_000);
  let holder: RelayRig;
  let forwarderRig: RelayRig;
  let forwarder: ContentForwarder;
  /** FETCH streams the holder received, which the test answers by hand. */
  const asked: { mux: StreamMux; s: MuxStream }[] = [];
  let client: ClientCircuit;

  beforeEach(async () => {
    asked.length = 0;
    holder = new RelayRig();
    holder.streams.register(RelayCommand.FETCH, (_hop, mux, s) => {
      mux.acceptQuietly(s);
      asked.push({ mux, s });
    });
    const holderDescriptor = { fingerprint: holder.identity.fingerprint, id: holder.identity.publicKey } as unknown as Descriptor;
    // The forwarder's one circuit to the holder over a relay link, as replicationTransport builds it.
    let toHolder: Promise<ClientCircuit> | null = null;
    forwarder = new ContentForwarder({
      directory: { get: (fp: string) => (fp === holderDescriptor.fingerprint ? holderDescriptor : undefined) } as unknown as DirectoryStore,
      self: 'not the holder',
      circuitTo: () => (toHolder ??= holder.connect({ role: 'relay' }).then((c) => holder.circuit(c))),
      metrics: new RelayMetrics(),
      log: silentLogger(),
    });
    forwarderRig = new RelayRig({ store: { forwarder } });
    client = await forwarderRig.circuit(await forwarderRig.connect());
  });

  afterEach(() => {
    forwarderRig.close();
    holder.close();
  });

  it("passes the holder's FETCHED and each DATA cell on as they arrive, before the item is whole", async () => {
    const item = crypto().random(32768);
    const got: { found: number | null; bytes: number } = { found: null, bytes: 0 };
    const done = fetchItemInto(
      client,
      'block',
      crypto().random(32),
      { found: (n) => (got.found = n), data: (c) => (got.bytes += c.length) },
      { forwardTo: holder.identity.publicKey },
    );
    await until(() => asked.length === 1, 'the FETCH at the holder');
    const { mux, s } = asked[0]!;
    // The holder answers and sends the first half of the item, then holds the rest back.
    mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: 'found', n: item.length }));
    s.write(item.subarray(0, 16384));
    await until(() => got.bytes >= 16384, 'the first half at the client, through the forwarder');
    console.log(`      the holder sent 16384 of ${item.length} bytes; the client has FETCHED (n = ${got.found}) and ${got.bytes} bytes`);
    expect(got.found).to.equal(item.length);
    expect(got.bytes).to.equal(16384);
    s.write(item.subarray(16384));
    s.end(EndReason.DONE);
    expect(await done).to.equal('found');
    expect(got.bytes).to.equal(item.length);
    await until(() => forwarder.size === 0, 'the forward slot released');
  });

  it('a holder that ends part-way: the client gets END before the last byte (ERR_LINK_CLOSED), the slot is freed', async () => {
    const done = fetchItem(client, 'block', crypto().random(32), { forwardTo: holder.identity.publicKey }).then(
      () => null,
      (e: { code?: string }) => e.code ?? 'no code',
    );
    await until(() => asked.length === 1, 'the FETCH at the holder');
    const { mux, s } = asked[0]!;
    mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: 'found', n: 32768 }));
    s.write(new Uint8Array(10_000));
    s.end(EndReason.MISC);
    expect(await done).to.equal('ERR_LINK_CLOSED');
    await until(() => forwarder.size === 0, 'the forward slot released');
    // The forwarder goes on serving: a whole answer passes.
    const next = fetchItem(client, 'block', crypto().random(32), { forwardTo: holder.identity.publicKey });
    await until(() => asked.length === 2, 'the second FETCH at the holder');
    const second = asked[1]!;
    second.mux.reply(second.s, RelayCommand.FETCHED, encodeFetched({ s: 'found', n: 5000 }));
    second.s.write(new Uint8Array(5000).fill(7));
    second.s.end(EndReason.DONE);
    expect((await next)?.length).to.equal(5000);
  });
});

/**
 * Only the forwarder's own "not asked" answers are retried through another forwarder (content.md §8.2 "Retries"):
 * a holder that was asked and stalled, ended the stream, or answered `refused` itself gets the client's stream ended
 * (END HOST_UNREACHABLE) and is asked once, so it cannot make a client expose the request to a second forwarder or
 * link two forwarders as serving one client. A ContentClient on two forwarder relays of this process, each forwarding
 * to one holder whose answers the test chooses.
 */
describe('content forwarding: a holder cannot make a client ask it again through another forwarder', function () {
  this.timeout(30_000);
  type Behaviour = 'stall' | 'end' | 'refused';
  let holder: RelayRig;
  let rigs: RelayRig[] = [];
  let forwarders: ContentForwarder[] = [];
  let metrics: RelayMetrics[] = [];
  let content: ContentClient;
  /** FETCH and STORE requests the holder received. */
  let asked: RelayCommand[] = [];
  let behaviour: Behaviour = 'stall';

  /** Two forwarders (with `limits`) to one holder, and a client whose every item is held there. */
  function setup(limits: { maxPerHolder?: number } = {}): void {
    asked = [];
    holder = new RelayRig();
    for (const command of [RelayCommand.FETCH, RelayCommand.STORE]) {
      holder.streams.register(command, (_hop, mux, s) => {
        mux.acceptQuietly(s);
        asked.push(command);
        if (behaviour === 'end') s.end(EndReason.MISC);
        else if (behaviour === 'refused') {
          if (command === RelayCommand.FETCH) mux.reply(s, RelayCommand.FETCHED, encodeFetched({ s: 'refused', n: 0 }));
          else mux.reply(s, RelayCommand.STORED, encodeStored({ s: 'refused' }));
          s.end(EndReason.DONE);
        } // 'stall': never answers
      });
    }
    const holderDescriptor = { fingerprint: holder.identity.fingerprint, id: holder.identity.publicKey, caps: ['store'] } as unknown as Descriptor;
    metrics = [new RelayMetrics(), new RelayMetrics()];
    forwarders = metrics.map((m) => {
      let toHolder: Promise<ClientCircuit> | null = null;
      return new ContentForwarder({
        directory: { get: (fp: string) => (fp === holderDescriptor.fingerprint ? holderDescriptor : undefined) } as unknown as DirectoryStore,
        self: 'not the holder',
        circuitTo: () => (toHolder ??= holder.connect({ role: 'relay' }).then((c) => holder.circuit(c))),
        metrics: m,
        log: silentLogger(),
        timeoutMs: 1000, // a stalled holder is given up on after this, not the 20 s of a relay
        ...limits,
      });
    });
    rigs = forwarders.map((forwarder) => new RelayRig({ store: { forwarder } }));
    const descriptors = rigs.map((r) => ({ fingerprint: r.identity.fingerprint, id: r.identity.publicKey, caps: ['store'] }) as unknown as Descriptor);
    const source = {
      directory: {
        view: {
          relays: [...descriptors, holderDescriptor],
          placement: () => null,
          previousPlacement: () => null,
          holderIndex: () => ({ holders: () => [holderDescriptor] }),
        },
      },
      async newCircuit(o: NewCircuitOptions = {}): Promise<ClientCircuit> {
        const rig = rigs.find((r) => r.identity.fingerprint === o.last!.fingerprint) ?? holder;
        return rig.circuit(await rig.connect());
      },
    } as unknown as CircuitSource;
    content = new ContentClient(source, { circuitsAhead: false, replication: 1 });
  }

  afterEach(() => {
    content.close();
    for (const r of rigs) r.close();
    holder.close();
  });

  const forwardsOf = async (result: string): Promise<number> => {
    let n = 0;
    for (const m of metrics) n += (await m.forwards.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    return n;
  };

  for (const b of ['stall', 'end', 'refused'] as const) {
    it(`a holder that ${b === 'stall' ? 'never answers' : b === 'end' ? 'ends the stream' : 'answers refused itself'} is asked once for a FETCH, and once for a STORE`, async () => {
      behaviour = b;
      setup();
      const { answered } = await content.fetchAnswers('block', crypto().random(32));
      expect(answered, 'the holder did not answer').to.equal(0);
      expect(asked, 'FETCHes at the holder').to.deep.equal([RelayCommand.FETCH]);
      expect(await content.storeAll('block', crypto().random(32), crypto().random(BLOCK_LEN))).to.deep.equal(['refused']);
      expect(asked, 'STOREs at the holder').to.deep.equal([RelayCommand.FETCH, RelayCommand.STORE]);
      expect(await forwardsOf('failed'), 'forwards that asked and got no answer').to.equal(2);
      expect(await forwardsOf('unreachable')).to.equal(0);
    });
  }

  it("a forwarder's own refusal (its per-holder limit) is tried once more through the other forwarder, for a FETCH and a STORE; refused by both, again in rounds, on the same circuits", async () => {
    behaviour = 'stall';
    setup({ maxPerHolder: 0 });
    const refusals = (): Promise<(number | undefined)[]> =>
      Promise.all(metrics.map(async (m) => (await m.forwards.get()).values.find((v) => v.labels.result === 'refused')?.value));
    // A request refused by both forwarders gets CONTENT_REFUSED_ROUNDS more rounds of two tries, a FETCH and a STORE
    // alike (content.md §8.2 "Refused everywhere"); those refusals do not retire the forwarders, so every round goes
    // through the same two.
    const n = 1 + CONTENT_REFUSED_ROUNDS;
    const { answered } = await content.fetchAnswers('block', crypto().random(32));
    expect(answered).to.equal(0);
    expect(await refusals(), 'one refusal from each forwarder in each round').to.deep.equal([n, n]);
    expect(await content.storeAll('block', crypto().random(32), crypto().random(BLOCK_LEN))).to.deep.equal(['refused']);
    expect(await refusals(), 'one more from each in each round').to.deep.equal([2 * n, 2 * n]);
    expect(asked, 'the holder was never asked').to.deep.equal([]);
  });
});
