/**
 * The requesting side of content streams (specs/content.md §8), over any circuit whose last hop is the holder:
 * used by clients, and by relays re-replicating blocks. Each call is one stream, which the requester ends itself
 * once the request is settled (reply, error, timeout or abort): a holder that never sends END cannot keep stream ids
 * of a reused circuit taken.
 */
import { concatBytes } from '../protocol/bytes.js';
import { decodeFetched, decodeStored, encodeFetch, encodeStore, MAX_CONTENT_ITEM, type ContentKind, type ContentStatus } from '../protocol/content-messages.js';
import { AlliumError, ProtocolError } from '../protocol/errors.js';
import { RelayCommand } from '../protocol/relay-cell.js';
import { EndReason, endReasonOf } from '../protocol/stream-messages.js';
import { settleWithin, signalOption, type AbortOptions, type Settle } from './abort.js';
import type { ClientCircuit } from './circuit.js';
import type { MuxStream } from './stream-mux.js';

const REQUEST_TIMEOUT_MS = 30_000;

/** The END a requester sends for a request settled with `err` (null: answered). */
function endReasonFor(err: AlliumError | null): EndReason {
  return err === null ? EndReason.DONE : endReasonOf(err);
}

/** One request with REQUEST_TIMEOUT_MS (net/abort.ts): `start` begins it and returns its cleanup. */
function request<T>(start: (done: Settle<T>) => (err: AlliumError | null) => void, signal: AbortSignal | undefined): Promise<T> {
  return settleWithin(start, { timeoutMs: REQUEST_TIMEOUT_MS, timeoutMessage: 'content request timed out', ...signalOption(signal) });
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
  options: { cache?: boolean } & AbortOptions = {},
): Promise<ContentStatus> {
  const signal = options.signal;
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
    circuit.send({ command: RelayCommand.STORE, streamId: s.id, data: encodeStore({ k: rk, t: kind, n: bytes.length, c: options.cache ?? false }) });
    s.write(bytes);
    return (err) => {
      offReply();
      offEnd();
      endStream(circuit, s, err);
    };
  }, signal);
}

/** Fetches one item from the circuit's last hop: the bytes, or null when the holder does not have it. */
export function fetchItem(
  circuit: ClientCircuit,
  kind: ContentKind,
  rk: Uint8Array,
  options: { head?: boolean } & AbortOptions = {},
): Promise<Uint8Array | null> {
  return request<Uint8Array | null>((done) => {
    if (circuit.state !== 'open') {
      done(new AlliumError('ERR_LINK_CLOSED', 'circuit closed'));
      return () => undefined;
    }
    const s = circuit.mux.open();
    let expected = -1;
    const parts: Uint8Array[] = [];
    let got = 0;
    const offReply = s.on('stream:reply', (cmd, data) => {
      try {
        if (cmd !== RelayCommand.FETCHED) throw new ProtocolError('ERR_STREAM', 'unexpected reply to FETCH');
        const r = decodeFetched(data);
        if (r.s !== 'found') return done(null, null);
        if (r.n > MAX_CONTENT_ITEM) throw new ProtocolError('ERR_CONTENT', 'item larger than allowed');
        expected = r.n;
        if (options.head || expected === 0) done(null, new Uint8Array(0));
      } catch (e) {
        done(e as AlliumError);
      }
    });
    const offData = s.on('stream:data', (d) => {
      parts.push(Uint8Array.from(d));
      got += d.length;
      s.consumed(1);
      if (expected < 0) return done(new ProtocolError('ERR_STREAM', 'data before FETCHED'));
      if (got > expected) return done(new ProtocolError('ERR_CONTENT', 'holder sent more than announced'));
      if (got === expected) done(null, concatBytes(...parts));
    });
    const offEnd = s.on('stream:end', () => done(new AlliumError('ERR_LINK_CLOSED', 'holder ended the request early')));
    circuit.send({ command: RelayCommand.FETCH, streamId: s.id, data: encodeFetch({ k: rk, t: kind, h: options.head ?? false }) });
    return (err) => {
      offReply();
      offData();
      offEnd();
      endStream(circuit, s, err);
    };
  }, options.signal);
}
