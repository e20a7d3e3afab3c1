/**
 * The requesting side of content streams (specs/content.md §8), over a circuit whose last hop is the holder (relays
 * re-replicating blocks, forwarders) or a forwarder that passes the request on to the holder named in `forwardTo`
 * (clients, §8.3). Each call is one stream, which the requester ends itself
 * once the request is settled (reply, error, timeout or abort): a holder that never sends END cannot keep stream ids
 * of a reused circuit taken.
 */
import {
  decodeFetched,
  decodeStored,
  encodeFetch,
  encodeStore,
  MAX_CONTENT_ITEM,
  type ContentKind,
  type ContentStatus,
  type FetchRequest,
  type StoreRequest,
} from '../protocol/content-messages.js';
import { AlliumError, ProtocolError } from '../protocol/errors.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { EndReason, endReasonOf } from '../protocol/stream-messages.js';
import { settleWithin, signalOption, type AbortOptions, type Settle } from './abort.js';
import type { ClientCircuit } from './circuit.js';
import type { MuxStream } from './stream-mux.js';

const REQUEST_TIMEOUT_MS = 30_000;

/** What a request may add to the defaults. */
export interface RequestOptions extends AbortOptions {
  /** The holder's identity key: the circuit's last hop forwards the request to it (specs/content.md §8.3). */
  forwardTo?: Uint8Array;
  /** Default 30 s. */
  timeoutMs?: number;
}

/** A forwarder's answer that the holder could not be asked (content.md §8.3): an error, never "not held". */
export const NOT_ASKED: ReadonlySet<ContentStatus> = new Set<ContentStatus>(['unknown', 'unreachable', 'refused']);

/** A forwarder's FETCHED status saying that it did not ask the holder (content.md §8.3). */
export type NotAskedStatus = 'unknown' | 'unreachable' | 'refused';

/**
 * A FETCH a forwarder answered `unknown`, `unreachable` or `refused` (content.md §8.3): the holder was not asked.
 * ERR_UNREACHABLE, with the forwarder's status in `status` (content.md §8.2 "Refused everywhere": `refused` is a
 * forwarder at its bounds, worth asking again once requests end; callers match on the fields, never on the message).
 * `forwarded` says whether the request went through a forwarder: false when the circuit's last hop was the holder
 * itself, whose status is its own answer, not a forwarder's (no round starts for it).
 */
export class NotAskedError extends AlliumError {
  readonly status: NotAskedStatus;
  readonly forwarded: boolean;
  constructor(status: NotAskedStatus, forwarded: boolean) {
    super('ERR_UNREACHABLE', `the holder could not be asked (${status}${forwarded ? '' : ', answered by the holder'})`);
    this.name = 'NotAskedError';
    this.status = status;
    this.forwarded = forwarded;
  }
}

/** The END a requester sends for a request settled with `err` (null: answered). */
function endReasonFor(err: AlliumError | null): EndReason {
  return err === null ? EndReason.DONE : endReasonOf(err);
}

/** One request with REQUEST_TIMEOUT_MS (net/abort.ts): `start` begins it and returns its cleanup. */
function request<T>(start: (done: Settle<T>) => (err: AlliumError | null) => void, options: RequestOptions): Promise<T> {
  return settleWithin(start, {
    timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
    timeoutMessage: 'content request timed out',
    ...signalOption(options.signal),
  });
}

/** Ends the request's stream at our side and tells the holder (nothing happens if the holder already ended it). */
function endStream(circuit: ClientCircuit, s: MuxStream, err: AlliumError | null): void {
  circuit.mux.reset(s, endReasonFor(err));
}

/** Stores one item on the circuit's last hop; returns the holder's status. */
export function storeItem(
  circuit: ClientCircuit,
  kind: ContentKind,
  rk: Uint8Array,
  bytes: Uint8Array,
  options: { cache?: boolean } & RequestOptions = {},
): Promise<ContentStatus> {
  return request<ContentStatus>((done) => {
    if (circuit.state !== 'open') {
      done(new AlliumError('ERR_LINK_CLOSED', 'circuit closed'));
      return () => undefined;
    }
    const s = circuit.mux.open();
    s.markOpen();
    const offReply = s.on('stream:reply', (cmd, data) => {
      if (cmd !== RelayCommand.STORED) return done(new ProtocolError('ERR_STREAM', 'unexpected reply to STORE'));
      try {
        done(null, decodeStored(data).s);
      } catch (e) {
        done(e as AlliumError);
      }
    });
    const offEnd = s.on('stream:end', () => done(new AlliumError('ERR_LINK_CLOSED', 'holder ended the request')));
    const req: StoreRequest = { k: rk, t: kind, n: bytes.length, c: options.cache ?? false };
    if (options.forwardTo) req.f = options.forwardTo;
    circuit.send({ command: RelayCommand.STORE, streamId: s.id, data: encodeStore(req) });
    s.write(bytes);
    return (err) => {
      offReply();
      offEnd();
      endStream(circuit, s, err);
    };
  }, options);
}

/** What a FETCH hands over as it arrives (a forwarder passes it on to its client as it comes, content.md §8.3). */
export interface FetchSink {
  /** The holder's FETCHED `found`, with the item's size: called once, before any data. */
  found(n: number): void;
  /** The next DATA chunk; the chunks add up to exactly the `n` of found(). A view valid during the call only. */
  data(chunk: Uint8Array): void;
}

/**
 * Fetches one item from the circuit's last hop (or the holder it forwards to), handing it to `sink` as it arrives:
 * 'found' once all its bytes were passed on (at once for a head-only request or an empty item), 'missing' when the
 * holder does not have it. A forwarder's `unknown`, `unreachable` or `refused` is a NotAskedError (ERR_UNREACHABLE,
 * the status in `status`): the holder was not asked. An END before the last byte is ERR_LINK_CLOSED, more bytes than announced ERR_CONTENT.
 */
export function fetchItemInto(
  circuit: ClientCircuit,
  kind: ContentKind,
  rk: Uint8Array,
  sink: FetchSink,
  options: { head?: boolean } & RequestOptions = {},
): Promise<'found' | 'missing'> {
  return request<'found' | 'missing'>((done) => {
    if (circuit.state !== 'open') {
      done(new AlliumError('ERR_LINK_CLOSED', 'circuit closed'));
      return () => undefined;
    }
    const s = circuit.mux.open();
    let expected = -1;
    let got = 0;
    let settled = false;
    const settle: typeof done = (err, value) => {
      settled = true;
      done(err, value);
    };
    const offReply = s.on('stream:reply', (cmd, data) => {
      try {
        if (cmd !== RelayCommand.FETCHED) throw new ProtocolError('ERR_STREAM', 'unexpected reply to FETCH');
        if (expected >= 0) throw new ProtocolError('ERR_STREAM', 'a second FETCHED');
        const r = decodeFetched(data);
        if (NOT_ASKED.has(r.s)) return settle(new NotAskedError(r.s as NotAskedStatus, Boolean(options.forwardTo)));
        if (r.s !== 'found') return settle(null, 'missing');
        if (r.n > MAX_CONTENT_ITEM) throw new ProtocolError('ERR_CONTENT', 'item larger than allowed');
        expected = r.n;
        sink.found(r.n);
        if (options.head || expected === 0) settle(null, 'found');
      } catch (e) {
        settle(e as AlliumError);
      }
    });
    const offData = s.on('stream:data', (d) => {
      s.consumed(1);
      if (settled) return;
      if (expected < 0) return settle(new ProtocolError('ERR_STREAM', 'data before FETCHED'));
      got += d.length;
      if (got > expected) return settle(new ProtocolError('ERR_CONTENT', 'holder sent more than announced'));
      sink.data(d);
      if (got === expected) settle(null, 'found');
    });
    const offEnd = s.on('stream:end', () => settle(new AlliumError('ERR_LINK_CLOSED', 'holder ended the request early')));
    const req: FetchRequest = { k: rk, t: kind, h: options.head ?? false };
    if (options.forwardTo) req.f = options.forwardTo;
    circuit.send({ command: RelayCommand.FETCH, streamId: s.id, data: encodeFetch(req) });
    return (err) => {
      offReply();
      offData();
      offEnd();
      endStream(circuit, s, err);
    };
  }, options);
}

/**
 * Fetches one item from the circuit's last hop (or the holder it forwards to): the bytes (empty for a head-only
 * request), or null when the holder does not have it. Errors as fetchItemInto. The item is copied once, into a
 * buffer of the announced size.
 */
export async function fetchItem(
  circuit: ClientCircuit,
  kind: ContentKind,
  rk: Uint8Array,
  options: { head?: boolean } & RequestOptions = {},
): Promise<Uint8Array | null> {
  let item = new Uint8Array(0);
  let at = 0;
  const sink: FetchSink = {
    found: (n) => {
      if (!options.head) item = new Uint8Array(n);
    },
    data: (chunk) => {
      item.set(chunk, at);
      at += chunk.length;
    },
  };
  return (await fetchItemInto(circuit, kind, rk, sink, options)) === 'found' ? item : null;
}
