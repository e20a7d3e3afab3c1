/**
 * The plaintext of a relay cell once the destination hop (or the client) has removed every layer
 * (specs/relay-crypto.md §6):
 *
 *   relay_cmd u8 | stream_id u16 | length u16 | data (length bytes) | zero padding to 891 bytes
 */
import { RELAY_DATA_LEN, RELAY_HEADER_LEN, RELAY_PAYLOAD_LEN } from './constants.js';
import { ProtocolError } from './errors.js';

export const RelayCommand = {
  BEGIN: 1,
  DATA: 2,
  END: 3,
  CONNECTED: 4,
  SENDME: 5,
  EXTEND: 6,
  EXTENDED: 7,
  TRUNCATE: 8,
  TRUNCATED: 9,
  DROP: 10,
  /** Capacity measurement (specs/measurement.md): sent back unchanged by the last hop of a measurer's circuit. */
  ECHO: 11,
  /** Circuit padding machines (specs/padding.md §3): start or stop a machine at the hop addressed, and its answer. */
  PADDING_NEGOTIATE: 12,
  PADDING_NEGOTIATED: 13,
  // content (specs/content.md)
  STORE: 20,
  STORED: 21,
  FETCH: 22,
  FETCHED: 23,
  // rendezvous and messaging (specs/rendezvous.md)
  ESTABLISH_INTRO: 30,
  INTRO_ESTABLISHED: 31,
  INTRODUCE1: 32,
  INTRODUCE2: 33,
  INTRODUCE_ACK: 34,
  ESTABLISH_RENDEZVOUS: 35,
  RENDEZVOUS_ESTABLISHED: 36,
  RENDEZVOUS1: 37,
  RENDEZVOUS2: 38,
  INTRO_POW: 39,
} as const;
export type RelayCommand = (typeof RelayCommand)[keyof typeof RelayCommand];
const KNOWN = new Set<number>(Object.values(RelayCommand));

export interface RelayMessage {
  readonly command: RelayCommand;
  readonly streamId: number;
  readonly data: Uint8Array;
}

export function encodeRelayPayload(m: RelayMessage): Uint8Array {
  const out = new Uint8Array(RELAY_PAYLOAD_LEN);
  encodeRelayPayloadInto(out, 0, m);
  return out;
}

/**
 * Writes the payload of `m` at out[offset..offset + 891), which must already be zero (a fresh buffer): the relay
 * that originates a cell encodes straight into the cell body, so a message costs one buffer from encoding to wire.
 */
export function encodeRelayPayloadInto(out: Uint8Array, offset: number, m: RelayMessage): void {
  if (m.data.length > RELAY_DATA_LEN) throw new ProtocolError('ERR_RELAY_LENGTH', `relay data is at most ${RELAY_DATA_LEN} bytes`);
  if (!Number.isInteger(m.streamId) || m.streamId < 0 || m.streamId > 0xffff) throw new ProtocolError('ERR_SCHEMA', 'stream id out of range');
  if (offset < 0 || offset + RELAY_PAYLOAD_LEN > out.length) throw new ProtocolError('ERR_BAD_LENGTH', 'relay payload does not fit');
  out[offset] = m.command;
  out[offset + 1] = m.streamId >>> 8;
  out[offset + 2] = m.streamId & 0xff;
  out[offset + 3] = m.data.length >>> 8;
  out[offset + 4] = m.data.length & 0xff;
  out.set(m.data, offset + RELAY_HEADER_LEN);
}

export function decodeRelayPayload(payload: Uint8Array): RelayMessage {
  if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
  // Read directly (this runs for every cell a circuit end receives): command, stream id, length, data, zeros.
  const command = payload[0]!;
  if (!KNOWN.has(command)) throw new ProtocolError('ERR_RELAY_COMMAND', `unknown relay command ${command}`);
  const streamId = (payload[1]! << 8) | payload[2]!;
  const length = (payload[3]! << 8) | payload[4]!;
  if (length > RELAY_DATA_LEN) throw new ProtocolError('ERR_RELAY_LENGTH', `relay length ${length} > ${RELAY_DATA_LEN}`);
  const end = RELAY_HEADER_LEN + length;
  for (let i = end; i < RELAY_PAYLOAD_LEN; i++) {
    if (payload[i] !== 0) throw new ProtocolError('ERR_CELL_PADDING', `relay payload: non-zero padding at offset ${i}`);
  }
  return { command: command as RelayCommand, streamId, data: payload.subarray(RELAY_HEADER_LEN, end) };
}
