/**
 * StreamMux (net/stream-mux.ts, specs/streams.md) on its own: two ends joined by an in-memory transport that tags
 * every message as the relay-cell layer would, so windows, authenticated SENDMEs, END and backpressure are exercised
 * without a circuit, a relay or a socket.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { VEGAS_DEFAULTS } from '../../protocol/congestion.js';
import { OPTIMISTIC_DATA_CELLS, STREAM_WINDOW } from '../../protocol/flow.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { RELAY_DATA_LEN } from '../../protocol/constants.js';
import { encodeCircuitSendme, EndReason } from '../../protocol/stream-messages.js';
import type { AlliumError } from '../../protocol/errors.js';
import { StreamMux, type MuxStream, type MuxTransport } from '../../net/stream-mux.js';

/** One direction of the pipe: messages wait until `flush` (so nothing re-enters a mux while it is sending). */
class End implements MuxTransport {
  readonly mux: StreamMux;
  peer!: End;
  readonly inbox: { msg: RelayMessage; tag: Uint8Array }[] = [];
  sentTag: Uint8Array = new Uint8Array(16);
  receivedTag: Uint8Array = new Uint8Array(16);
  sent: RelayMessage[] = [];
  isCongested = false;
  private drains: (() => void)[] = [];
  errors: AlliumError[] = [];

  constructor() {
    this.mux = new StreamMux(this);
    this.mux.on('mux:error', (e) => this.errors.push(e));
  }
  send(msg: RelayMessage): boolean {
    this.sentTag = crypto().random(16);
    this.sent.push(msg);
    this.peer.inbox.push({ msg: { ...msg, data: Uint8Array.from(msg.data) }, tag: this.sentTag });
    return true;
  }
  lastSentTag(): Uint8Array {
    return this.sentTag;
  }
  lastReceivedTag(): Uint8Array {
    return this.receivedTag;
  }
  congested(): boolean {
    return this.isCongested;
  }
  onDrain(fn: () => void): () => void {
    this.drains.push(fn);
    return () => (this.drains = this.drains.filter((f) => f !== fn));
  }
  drain(): void {
    this.isCongested = false;
    const fns = this.drains;
    this.drains = [];
    for (const f of fns) f();
  }
  /** Delivers what is waiting here; returns how many messages. */
  deliver(): number {
    let n = 0;
    while (this.inbox.length > 0) {
      const { msg, tag } = this.inbox.shift()!;
      this.receivedTag = tag;
      this.mux.onMessage(msg);
      n++;
    }
    return n;
  }
}

function pipe(): { client: End; exit: End; settle: () => void } {
  const client = new End();
  const exit = new End();
  client.peer = exit;
  exit.peer = client;
  return {
    client,
    exit,
    settle: () => {
      while (client.deliver() + exit.deliver() > 0);
    },
  };
}

/** A client stream and the exit's end of it, connected. */
function connected(p: ReturnType<typeof pipe>): { c: MuxStream; x: MuxStream } {
  let x: MuxStream | null = null;
  p.exit.mux.on('mux:begin', (s) => {
    x = s;
    p.exit.mux.accept(s);
  });
  const c = p.client.mux.open();
  p.client.send({ command: RelayCommand.BEGIN, streamId: c.id, data: new Uint8Array([1]) });
  p.settle();
  expect(c.state).to.equal('open');
  return { c, x: x! };
}

const dataCells = (e: End): number => e.sent.filter((m) => m.command === RelayCommand.DATA).length;

describe('stream multiplexer (net/stream-mux.ts)', () => {
  it('carries 1 MiB in order in cells of at most RELAY_DATA_LEN, with the reader acknowledging as it consumes', () => {
    const p = pipe();
    const { c, x } = connected(p);
    const got: Uint8Array[] = [];
    x.on('stream:data', (d) => {
      got.push(d);
      x.consumed(1);
    });
    const data = crypto().random(1 << 20);
    c.write(data);
    c.end();
    let ended: EndReason | null = null;
    x.on('stream:end', (r) => (ended = r));
    for (let i = 0; i < 100 && ended === null; i++) {
      p.settle();
      p.client.mux.pump();
    }
    expect(Buffer.concat(got).equals(Buffer.from(data))).to.equal(true);
    expect(Math.max(...got.map((d) => d.length))).to.equal(RELAY_DATA_LEN);
    expect(ended).to.equal(EndReason.DONE);
    expect(p.client.errors.concat(p.exit.errors)).to.deep.equal([]);
  });

  it('stops at the stream window when the reader consumes nothing, and write() asks the source to pause', () => {
    const p = pipe();
    const { c } = connected(p);
    const more = c.write(crypto().random((STREAM_WINDOW + 200) * RELAY_DATA_LEN));
    p.settle();
    expect({ more, sent: dataCells(p.client), queued: c.queuedBytes }).to.deep.equal({ more: false, sent: STREAM_WINDOW, queued: 200 * RELAY_DATA_LEN });
  });

  it('keeps every stream within the circuit congestion window (CIRC_CWND_INIT at first), and resumes when circuit SENDMEs come back', () => {
    const p = pipe();
    const streams = [connected(p), connected(p), connected(p)];
    for (const { c } of streams) c.write(crypto().random(STREAM_WINDOW * RELAY_DATA_LEN));
    // Nothing is delivered to the exit yet: no circuit SENDME can come back.
    expect(dataCells(p.client)).to.equal(VEGAS_DEFAULTS.cwndInit);
    p.settle();
    expect(dataCells(p.client)).to.equal(STREAM_WINDOW * 3);
  });

  it('holds data while the link is congested and sends it on drain', () => {
    const p = pipe();
    const { c } = connected(p);
    p.client.isCongested = true;
    c.write(crypto().random(10 * RELAY_DATA_LEN));
    expect(dataCells(p.client)).to.equal(0);
    p.client.drain();
    expect(dataCells(p.client)).to.equal(10);
  });

  it('writeView sends what it can from the view at once and copies only what stays queued, so reusing the view after the call changes nothing sent', () => {
    const p = pipe();
    const { c, x } = connected(p);
    const got: Uint8Array[] = [];
    x.on('stream:data', (d) => got.push(d));
    const view = crypto().random(3 * RELAY_DATA_LEN);
    const first = Uint8Array.from(view);
    c.writeView(view); // the link takes all of it now
    view.fill(1); // the owner reuses its buffer
    p.client.isCongested = true;
    const second = Uint8Array.from(view);
    c.writeView(view); // nothing goes out: all of it stays queued, as copies
    view.fill(2);
    expect({ sent: dataCells(p.client), queued: c.queuedBytes }).to.deep.equal({ sent: 3, queued: 3 * RELAY_DATA_LEN });
    p.client.drain();
    p.settle();
    expect(Buffer.concat(got).equals(Buffer.concat([first, second]))).to.equal(true);
  });

  it('refuses DATA on a stream that is not open, a second BEGIN for a stream id in use, and a SENDME for unsent data', () => {
    const p = pipe();
    const { c } = connected(p);
    const opening = p.client.mux.open();
    p.exit.send({ command: RelayCommand.DATA, streamId: opening.id, data: new Uint8Array(10) });
    p.client.send({ command: RelayCommand.BEGIN, streamId: c.id, data: new Uint8Array([1]) });
    p.exit.send({ command: RelayCommand.SENDME, streamId: 0, data: encodeCircuitSendme(crypto().random(16)) });
    p.settle();
    expect(p.client.errors.map((e) => e.code)).to.deep.equal(['ERR_STREAM', 'ERR_SENDME']);
    expect(p.exit.errors.map((e) => e.code)).to.deep.equal(['ERR_STREAM']);
  });

  it('an END closes the stream at both ends and forgets it', () => {
    const p = pipe();
    const { c, x } = connected(p);
    let reason: EndReason | null = null;
    c.on('stream:end', (r) => (reason = r));
    p.exit.mux.reset(x, EndReason.EXIT_POLICY);
    p.settle();
    expect({ reason, client: p.client.mux.size, exit: p.exit.mux.size, state: c.state }).to.deep.equal({
      reason: EndReason.EXIT_POLICY,
      client: 0,
      exit: 0,
      state: 'closed',
    });
  });

  describe('optimistic data (specs/streams.md §2.8)', () => {
    /** Commands the client sent, in order, with DATA runs shown as counts. */
    const order = (e: End): string[] => {
      const out: string[] = [];
      for (const m of e.sent) {
        const name = m.command === RelayCommand.DATA ? 'DATA' : m.command === RelayCommand.BEGIN ? 'BEGIN' : `command ${m.command}`;
        const last = out[out.length - 1];
        if (name === 'DATA' && last?.startsWith('DATA')) out[out.length - 1] = `DATA×${Number(last.split('×')[1]) + 1}`;
        else out.push(name === 'DATA' ? 'DATA×1' : name);
      }
      return out;
    };

    it('a stream opened optimistically sends its first cells after BEGIN, before CONNECTED, and at most OPTIMISTIC_DATA_CELLS of them', () => {
      const p = pipe();
      const got: Uint8Array[] = [];
      p.exit.mux.on('mux:begin', (s) => {
        // The endpoint accepts a message stream while it handles BEGIN (messaging.md §8).
        p.exit.mux.accept(s);
        s.on('stream:data', (d) => got.push(d));
      });
      const c = p.client.mux.openOptimistic();
      p.client.send({ command: RelayCommand.BEGIN, streamId: c.id, data: new Uint8Array([1]) });
      const data = crypto().random((OPTIMISTIC_DATA_CELLS + 4) * RELAY_DATA_LEN);
      c.write(data);
      // Nothing has reached the far end yet, so no CONNECTED either: only the optimistic cells went.
      expect({ state: c.state, order: order(p.client) }).to.deep.equal({ state: 'opening', order: ['BEGIN', `DATA×${OPTIMISTIC_DATA_CELLS}`] });
      expect(c.queuedBytes).to.equal(4 * RELAY_DATA_LEN);
      p.settle();
      // CONNECTED released the rest; the far end took every cell on its open stream, in order.
      expect(c.state).to.equal('open');
      expect(order(p.client)).to.deep.equal(['BEGIN', `DATA×${OPTIMISTIC_DATA_CELLS + 4}`]);
      expect(Buffer.concat(got).equals(Buffer.from(data))).to.equal(true);
      expect(p.client.errors.concat(p.exit.errors)).to.deep.equal([]);
    });

    it('a stream opened the ordinary way sends nothing before CONNECTED, and DATA on a stream the far end has not accepted is still ERR_STREAM', () => {
      const p = pipe();
      p.exit.mux.on('mux:begin', () => undefined); // not accepted yet (a service stream waiting for its connection)
      const c = p.client.mux.open();
      p.client.send({ command: RelayCommand.BEGIN, streamId: c.id, data: new Uint8Array([1]) });
      c.write(crypto().random(3 * RELAY_DATA_LEN));
      expect(dataCells(p.client)).to.equal(0);
      // A peer that sends DATA anyway: on a stream with no BEGIN it is dropped; on one not accepted, ERR_STREAM.
      p.client.send({ command: RelayCommand.DATA, streamId: 999, data: new Uint8Array(10) });
      p.client.send({ command: RelayCommand.DATA, streamId: c.id, data: new Uint8Array(10) });
      p.settle();
      expect(p.exit.errors.map((e) => e.code)).to.deep.equal(['ERR_STREAM']);
      // And the far end's DATA before its CONNECTED, on an optimistic stream, is ERR_STREAM at the initiator.
      const q = p.client.mux.openOptimistic();
      p.exit.send({ command: RelayCommand.DATA, streamId: q.id, data: new Uint8Array(10) });
      p.settle();
      expect(p.client.errors.map((e) => e.code)).to.deep.equal(['ERR_STREAM']);
    });

    it('END instead of CONNECTED: the stream ends with the reason, what it still queued is dropped, and the far end discards what came', () => {
      const p = pipe();
      p.exit.mux.on('mux:begin', (s) => p.exit.mux.reset(s, EndReason.RESOURCE_LIMIT));
      const c = p.client.mux.openOptimistic();
      let reason: EndReason | null = null;
      c.on('stream:end', (r) => (reason = r));
      p.client.send({ command: RelayCommand.BEGIN, streamId: c.id, data: new Uint8Array([1]) });
      c.write(crypto().random((OPTIMISTIC_DATA_CELLS + 4) * RELAY_DATA_LEN));
      p.settle();
      expect({ reason, state: c.state, queued: c.queuedBytes, data: dataCells(p.client), client: p.client.mux.size, exit: p.exit.mux.size }).to.deep.equal({
        reason: EndReason.RESOURCE_LIMIT,
        state: 'closed',
        queued: 0,
        data: OPTIMISTIC_DATA_CELLS,
        client: 0,
        exit: 0,
      });
      expect(p.client.errors.concat(p.exit.errors)).to.deep.equal([]);
    });
  });
});
