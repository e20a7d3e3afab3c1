/**
 * A Messenger whose circuits are stand-ins, driven from the far end as initiators would drive it: real introductions
 * (sealed to the introduction point's key, with a real session handshake), real stream multiplexing and real
 * ratchet frames; only the relays are missing. Used to test what peers can make an endpoint hold.
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import { createIdentity, type Identity } from '../../protocol/address.js';
import { encodeCbor } from '../../protocol/cbor.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { encodeMessageFrame, MESSAGE_ID_LEN } from '../../protocol/message-frames.js';
import { initiatorHandshake } from '../../protocol/message-handshake.js';
import { pad } from '../../protocol/padding.js';
import { RATCHET_OVERHEAD, type RatchetSession } from '../../protocol/ratchet.js';
import { RELAY_DATA_LEN } from '../../protocol/constants.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { COOKIE_LEN, encodeRv } from '../../protocol/rendezvous-messages.js';
import { encodeBegin } from '../../protocol/stream-messages.js';
import type { CircuitEvents } from '../../net/circuit.js';
import { Emitter } from '../../net/emitter.js';
import { StreamMux } from '../../net/stream-mux.js';
import { Messenger, type MessengerHost, type MessengerOptions } from '../../client/messaging/index.js';

/** A circuit without relays: what the Messenger sends is recorded, what the far end sends is handed in. */
export class FakeCircuit extends Emitter<CircuitEvents> {
  state: 'open' | 'closed' = 'open';
  purpose = 'general';
  readonly sent: RelayMessage[] = [];
  readonly bindings = [crypto().random(32)];
  readonly mux: StreamMux;
  private nextStream = 1;

  constructor(readonly last: Descriptor | undefined) {
    super();
    const tag = new Uint8Array(16);
    this.mux = new StreamMux({
      send: (m) => this.send(m),
      lastSentTag: () => tag,
      lastReceivedTag: () => tag,
      congested: () => false,
      onDrain: () => undefined,
    });
  }

  setPurpose(p: string): void {
    this.purpose = p;
  }

  send(m: RelayMessage): boolean {
    if (this.state !== 'open') return false;
    this.sent.push(m);
    return true;
  }

  waitFor(command: RelayCommand): Promise<RelayMessage> {
    return Promise.resolve({ command, streamId: 0, data: encodeRv('empty', {}) });
  }

  addVirtualHop(): void {}

  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.mux.closeAll();
    this.emit('circuit:close', null);
  }

  /** A relay message from the far end (the introduction point, or the initiator as the virtual hop). */
  receive(m: RelayMessage): void {
    if (this.state !== 'open') return;
    if (this.mux.onMessage(m)) return;
    this.emit('circuit:message', 0, m);
  }

  /** The initiator opens a stream to `a`:`p`; returns its id. */
  begin(a: string, p: number): number {
    const id = this.nextStream++;
    this.receive({ command: RelayCommand.BEGIN, streamId: id, data: encodeBegin({ a, p }) });
    return id;
  }

  /** Relay messages of `command` the Messenger sent (on `streamId`, if given). */
  count(command: RelayCommand, streamId?: number): number {
    return this.sent.filter((m) => m.command === command && (streamId === undefined || m.streamId === streamId)).length;
  }
}

export interface Rig {
  messenger: Messenger;
  /** The introduction point's circuit, and its encryption key (as the descriptor publishes it). */
  intro: FakeCircuit;
  enc: Uint8Array;
  /** The rendezvous point every introduction names. */
  rp: Descriptor;
  /** Circuits the Messenger asked for after its introduction point, in order. */
  built: FakeCircuit[];
  /** newCircuit calls not yet answered. */
  inFlight: () => number;
  /** The most newCircuit calls in flight at once. */
  maxInFlight: () => number;
  /** Hands out circuits asked for; by default every request is answered at once. */
  answer: (n?: number) => void;
}

/**
 * An endpoint with one introduction point. `manual`: newCircuit calls for rendezvous wait until answer() is called.
 */
export async function endpointRig(options: MessengerOptions = {}, manual = false): Promise<Rig> {
  const introRelay = { id: crypto().random(32), fingerprint: 'intro-relay', caps: ['intro'] } as unknown as Descriptor;
  const rp = { id: crypto().random(32), fingerprint: 'rendezvous-relay', caps: ['rendezvous'] } as unknown as Descriptor;
  const waiting: (() => void)[] = [];
  const built: FakeCircuit[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let intro: FakeCircuit | null = null;
  const client = {
    newCircuit: (o: { last?: Descriptor }): Promise<FakeCircuit> => {
      if (o.last === introRelay) return Promise.resolve((intro = new FakeCircuit(introRelay)));
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<FakeCircuit>((resolve) => {
        const go = (): void => {
          inFlight--;
          const c = new FakeCircuit(o.last);
          built.push(c);
          resolve(c);
        };
        if (manual) waiting.push(go);
        else go();
      });
    },
    directory: { get: () => rp, all: () => [] },
  } as unknown as MessengerHost;
  const messenger = new Messenger(client, createIdentity(), options);
  const endpoint = (messenger as unknown as { endpoint: { establishIntro(r: Descriptor): Promise<void>; intros: Map<string, { enc: KeyPair }> } }).endpoint;
  await endpoint.establishIntro(introRelay);
  const state = endpoint.intros.get('intro-relay')!;
  return {
    messenger,
    intro: intro!,
    enc: state.enc.publicKey,
    rp,
    built,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    answer: (n = Infinity) => {
      for (let i = 0; i < n && waiting.length; i++) waiting.shift()!();
    },
  };
}

export interface Initiator {
  readonly identity: Identity;
  /** The initiator's end of the session the introduction starts. */
  readonly session: RatchetSession;
  /** Message frames sent so far. */
  sent: number;
}

/** Delivers one valid introduction from a new initiator to the endpoint, through its introduction point. */
export function introduce(rig: Rig, identity: Identity = createIdentity()): Initiator {
  const hs = initiatorHandshake(identity, { identityKey: rig.messenger.identity.publicKey, prekey: rig.enc });
  const X = crypto().x25519Public(crypto().random(32));
  const sealed = crypto().seal(encodeCbor({ rp: rig.rp.id, c: crypto().random(COOKIE_LEN), x: X, hs: hs.handshake }), rig.enc);
  rig.intro.receive({ command: RelayCommand.INTRODUCE2, streamId: 0, data: encodeRv('introduce2', { p: sealed }) });
  return { identity, session: hs.session, sent: 0 };
}

/**
 * Sends one message frame from `from` on stream `streamId` of `circuit`, in DATA cells as the initiator would; returns
 * the number of cells.
 */
export function sendFrame(circuit: FakeCircuit, streamId: number, from: Initiator, data: Uint8Array): number {
  const { message } = from.session.encrypt(pad(encodeMessageFrame(from.sent++, crypto().random(MESSAGE_ID_LEN), data), RATCHET_OVERHEAD));
  const frame = new Uint8Array(4 + message.length);
  new DataView(frame.buffer).setUint32(0, message.length);
  frame.set(message, 4);
  let cells = 0;
  for (let off = 0; off < frame.length; off += RELAY_DATA_LEN, cells++) {
    circuit.receive({ command: RelayCommand.DATA, streamId, data: frame.subarray(off, off + RELAY_DATA_LEN) });
  }
  return cells;
}

/** Lets queued promise jobs and immediates run (the Messenger answers introductions asynchronously). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
