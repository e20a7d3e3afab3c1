/**
 * specs/vectors/relay-payload.json: the 891-byte relay payload (specs/relay-crypto.md §6),
 *   relay_cmd u8 | stream_id u16 | length u16 | data | zero padding.
 */
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { RELAY_DATA_LEN, RELAY_PAYLOAD_LEN } from '../../protocol/constants.js';
import { decodeRelayPayload, encodeRelayPayload, RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

function commandName(v: number): string {
  const e = Object.entries(RelayCommand).find(([, x]) => x === v);
  if (!e) throw new Error(`unknown relay command ${v}`);
  return e[0];
}

function raw(cmd: number, streamId: number, length: number, data: Uint8Array, total = RELAY_PAYLOAD_LEN): Uint8Array {
  const b = new Uint8Array(total);
  b[0] = cmd;
  b[1] = streamId >>> 8;
  b[2] = streamId & 0xff;
  b[3] = length >>> 8;
  b[4] = length & 0xff;
  b.set(data.subarray(0, Math.max(0, total - 5)), 5);
  return b;
}

export function relayPayloadFile(): VectorFile {
  const rnd = seeded('relay-payload');
  const messages: [string, RelayMessage][] = [
    ['BEGIN', { command: RelayCommand.BEGIN, streamId: 1, data: utf8('example.org:443') }],
    ['DATA, full data area (886 bytes)', { command: RelayCommand.DATA, streamId: 1, data: rnd(RELAY_DATA_LEN) }],
    ['DATA, empty', { command: RelayCommand.DATA, streamId: 0xffff, data: new Uint8Array(0) }],
    ['END', { command: RelayCommand.END, streamId: 0x0102, data: Uint8Array.of(6) }],
    ['SENDME on the circuit (stream 0)', { command: RelayCommand.SENDME, streamId: 0, data: rnd(20) }],
    ['EXTEND', { command: RelayCommand.EXTEND, streamId: 0, data: rnd(848) }],
    ['DROP', { command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) }],
    ['STORE', { command: RelayCommand.STORE, streamId: 77, data: rnd(300) }],
    ['RENDEZVOUS2 (largest command)', { command: RelayCommand.RENDEZVOUS2, streamId: 0, data: rnd(100) }],
  ];
  const valid = messages.map(([name, m]) => {
    const bytes = encodeRelayPayload(m);
    const d = decodeRelayPayload(bytes);
    check(d.command === m.command && d.streamId === m.streamId && toHex(d.data) === toHex(m.data), `relay payload "${name}" round trip`);
    return { name, command: commandName(m.command), commandCode: m.command, streamId: m.streamId, data: toHex(m.data), hex: toHex(bytes) };
  });

  const some = rnd(10);
  const invalidCases: [string, Uint8Array, string][] = [
    ['relay command 0', raw(0, 1, 0, some), 'ERR_RELAY_COMMAND'],
    ['relay command 14 (between PADDING_NEGOTIATED and STORE)', raw(14, 1, 0, some), 'ERR_RELAY_COMMAND'],
    ['relay command 24 (between FETCHED and ESTABLISH_INTRO)', raw(24, 1, 0, some), 'ERR_RELAY_COMMAND'],
    ['relay command 40 (after INTRO_POW)', raw(40, 1, 0, some), 'ERR_RELAY_COMMAND'],
    ['relay command 255', raw(255, 1, 0, some), 'ERR_RELAY_COMMAND'],
    ['length 887 (one beyond the data area)', raw(RelayCommand.DATA, 1, RELAY_DATA_LEN + 1, new Uint8Array(0)), 'ERR_RELAY_LENGTH'],
    ['length 65535', raw(RelayCommand.DATA, 1, 0xffff, new Uint8Array(0)), 'ERR_RELAY_LENGTH'],
    ['non-zero byte right after the data', raw(RelayCommand.DATA, 1, 3, Uint8Array.of(1, 2, 3, 4)), 'ERR_CELL_PADDING'],
    ['non-zero last byte', ((b) => ((b[RELAY_PAYLOAD_LEN - 1] = 1), b))(raw(RelayCommand.END, 1, 0, new Uint8Array(0))), 'ERR_CELL_PADDING'],
    ['890 bytes', raw(RelayCommand.DATA, 1, 0, new Uint8Array(0), RELAY_PAYLOAD_LEN - 1), 'ERR_BAD_LENGTH'],
    ['892 bytes', concatBytes(raw(RelayCommand.DATA, 1, 0, new Uint8Array(0)), new Uint8Array(1)), 'ERR_BAD_LENGTH'],
    ['empty', new Uint8Array(0), 'ERR_BAD_LENGTH'],
  ];
  const invalid = invalidCases.map(([name, bytes, error]) => ({
    name,
    hex: toHex(bytes),
    error: expectCode(
      errorCodeOf(() => decodeRelayPayload(bytes), name),
      error,
      `relay payload invalid "${name}"`,
    ),
  }));

  const encodeCases: [string, number, number, number, string][] = [
    ['data of 887 bytes', RelayCommand.DATA, 1, RELAY_DATA_LEN + 1, 'ERR_RELAY_LENGTH'],
    ['stream id 65536', RelayCommand.DATA, 0x10000, 0, 'ERR_SCHEMA'],
    ['stream id -1', RelayCommand.DATA, -1, 0, 'ERR_SCHEMA'],
    ['stream id 1.5', RelayCommand.DATA, 1.5, 0, 'ERR_SCHEMA'],
  ];
  const encodeInvalid = encodeCases.map(([name, command, streamId, dataLength, error]) => ({
    name,
    command: commandName(command),
    commandCode: command,
    streamId,
    dataLength,
    error: expectCode(
      errorCodeOf(() => encodeRelayPayload({ command: command as RelayMessage['command'], streamId, data: new Uint8Array(dataLength) }), name),
      error,
      `relay payload encodeInvalid "${name}"`,
    ),
  }));

  return {
    description:
      'Relay payloads (specs/relay-crypto.md §6): relay_cmd u8 | stream_id u16 | length u16 | data | zero padding, ' +
      '891 bytes. "valid": hex ↔ (command, streamId, data). "invalid": decoding hex throws "error". ' +
      '"encodeInvalid": encoding (command, streamId, dataLength zero bytes of data) throws "error". Hex is lowercase.',
    version: VECTORS_VERSION,
    payloadLength: RELAY_PAYLOAD_LEN,
    maxDataLength: RELAY_DATA_LEN,
    valid,
    invalid,
    encodeInvalid,
  };
}
