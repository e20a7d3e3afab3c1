/**
 * A forwarder streams a FETCH's answer through (specs/content.md §8.3 item 3): the holder's FETCHED and each DATA
 * cell reach the client as they arrive, not once the whole item is in; a holder that stops part-way leaves the client
 * an END (HOST_UNREACHABLE) before the last byte, which the client takes as a holder that did not answer, and the
 * forward's slot is freed. Two relays in this process (relay/content.ts with its ContentForwarder, and a holder whose
 * FETCH handler the test drives), real links and onions over in-memory sockets.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { fetchItem, fetchItemInto } from '../../net/content-requests.js';
import type { MuxStream, StreamMux } from '../../net/stream-mux.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { encodeFetched } from '../../protocol/content-messages.js';
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
