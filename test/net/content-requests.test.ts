/**
 * The requester ends every content stream it opened once the request is settled (specs/content.md §8): a holder
 * that answers and then never sends END, or never answers at all, cannot keep stream ids taken on a circuit the
 * client reuses for its next requests. The circuit here is a real StreamMux whose far end is a scripted holder.
 */
import { expect } from 'chai';
import { encodeFetched, encodeStored, decodeFetch } from '../../protocol/content-messages.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { decodeEnd, EndReason } from '../../protocol/stream-messages.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { fetchItem, NotAskedError, storeItem } from '../../net/content-requests.js';
import { StreamMux } from '../../net/stream-mux.js';
import { VirtualClock } from '../../sim/clock.js';

type Holder = (m: RelayMessage, reply: (m: RelayMessage) => void) => void;

interface Rig {
  circuit: ClientCircuit;
  mux: StreamMux;
  /** END reasons the client sent, by stream id. */
  ends: Map<number, number>;
}

/** A circuit whose last hop is `holder`: what the client sends reaches it, and what it replies reaches the mux. */
function rig(holder: Holder): Rig {
  const ends = new Map<number, number>();
  const tag = new Uint8Array(16);
  const send = (m: RelayMessage): boolean => {
    if (m.command === RelayCommand.END) ends.set(m.streamId, decodeEnd(m.data));
    // The holder answers a moment later, as over the network.
    queueMicrotask(() => holder(m, (r) => mux.onMessage(r)));
    return true;
  };
  const mux: StreamMux = new StreamMux({
    send,
    lastSentTag: () => tag,
    lastReceivedTag: () => tag,
    congested: () => false,
    onDrain: () => undefined,
  });
  const circuit = { state: 'open', mux, send } as unknown as ClientCircuit;
  return { circuit, mux, ends };
}

const RK = new Uint8Array(32).fill(7);
const ITEM = Uint8Array.from({ length: 100 }, (_, i) => i);

/** Answers FETCH with the item and STORE with ok, and never sends END. */
const answersWithoutEnd: Holder = (m, reply) => {
  if (m.command === RelayCommand.FETCH) {
    const head = decodeFetch(m.data).h;
    reply({ command: RelayCommand.FETCHED, streamId: m.streamId, data: encodeFetched({ s: 'found', n: ITEM.length }) });
    if (!head) reply({ command: RelayCommand.DATA, streamId: m.streamId, data: ITEM });
  }
  if (m.command === RelayCommand.DATA) reply({ command: RelayCommand.STORED, streamId: m.streamId, data: encodeStored({ s: 'ok' }) });
};

const silent: Holder = () => undefined;

describe('content requests end their streams', () => {
  it('a holder that answers but never sends END leaves no stream open (fetch, head fetch, store)', async () => {
    const { circuit, mux, ends } = rig(answersWithoutEnd);
    for (let i = 0; i < 50; i++) {
      expect(await fetchItem(circuit, 'block', RK)).to.deep.equal(ITEM);
      expect(await fetchItem(circuit, 'block', RK, { head: true })).to.deep.equal(new Uint8Array(0));
      expect(await storeItem(circuit, 'record', RK, ITEM)).to.equal('ok');
    }
    expect({ open: mux.size, ended: ends.size, reasons: [...new Set(ends.values())] }).to.deep.equal({ open: 0, ended: 150, reasons: [EndReason.DONE] });
  });

  it('an aborted request leaves no stream open', async () => {
    const { circuit, mux, ends } = rig(silent);
    const ctl = new AbortController();
    const p = fetchItem(circuit, 'block', RK, { signal: ctl.signal });
    expect(mux.size).to.equal(1);
    ctl.abort();
    let code = '';
    await p.catch((e: { code: string }) => (code = e.code));
    expect({ code, open: mux.size, ends: [...ends.values()] }).to.deep.equal({ code: 'ERR_ABORTED', open: 0, ends: [EndReason.DONE] });
  });

  it('a request that times out leaves no stream open (virtual clock)', async () => {
    const clock = new VirtualClock();
    const restore = clock.install();
    try {
      const { circuit, mux, ends } = rig(silent);
      const results = Array.from({ length: 20 }, () => fetchItem(circuit, 'block', RK).catch((e: { code: string }) => e.code));
      expect(mux.size).to.equal(20);
      const codes = await clock.waitFor(Promise.all(results), 60_000);
      expect({ codes: [...new Set(codes)], open: mux.size, reasons: [...new Set(ends.values())] }).to.deep.equal({
        codes: ['ERR_TIMEOUT'],
        open: 0,
        reasons: [EndReason.TIMEOUT],
      });
    } finally {
      restore();
    }
  });

  it("a forwarder's unknown, unreachable or refused is ERR_UNREACHABLE with the status as a field (content.md §8.2)", async () => {
    for (const status of ['unknown', 'unreachable', 'refused'] as const) {
      const answers: Holder = (m, reply) => {
        if (m.command === RelayCommand.FETCH) reply({ command: RelayCommand.FETCHED, streamId: m.streamId, data: encodeFetched({ s: status, n: 0 }) });
      };
      const { circuit, mux } = rig(answers);
      const e: unknown = await fetchItem(circuit, 'block', RK, { forwardTo: new Uint8Array(32) }).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(NotAskedError);
      expect({ code: (e as NotAskedError).code, status: (e as NotAskedError).status, open: mux.size }).to.deep.equal({
        code: 'ERR_UNREACHABLE',
        status,
        open: 0,
      });
    }
  });
});
