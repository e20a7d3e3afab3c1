/**
 * specs/vectors/cells.json: link cells (specs/cells.md). Valid cells as fields ↔ hex, and invalid cells as
 * hex → error code, where "decoding" is decodeCell followed by the body decoder of the cell's command.
 */
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import {
  CellCommand,
  DestroyReason,
  controlBody,
  createBody,
  createdBody,
  decodeCell,
  decodeControlBody,
  decodeCreateBody,
  decodeCreatedBody,
  decodeDestroyBody,
  destroyBody,
  encodeCell,
  type Cell,
} from '../../protocol/cell.js';
import { CELL_BODY_LEN, CELL_LEN, ONION_HEADER_LEN, REPLY_LEN } from '../../protocol/constants.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { decodeMixMailBody, decodeMixPollBody, mixMailBody, mixPollBody } from '../../protocol/mix-cells.js';
import { MIX_PAYLOAD_LEN } from '../../protocol/mix-packet.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

const nameOf = <T extends Record<string, number>>(table: T, v: number): string => {
  const e = Object.entries(table).find(([, x]) => x === v);
  if (!e) throw new Error(`no name for ${v}`);
  return e[0];
};

/** decodeCell, then the typed body decoder; returns the fields as the vectors write them. */
export function decodeTypedCell(bytes: Uint8Array): Record<string, unknown> {
  const cell = decodeCell(bytes);
  const fields = ((): Record<string, unknown> => {
    switch (cell.command) {
      case CellCommand.PADDING:
        return {};
      case CellCommand.CREATE:
        return { onionHeader: toHex(decodeCreateBody(cell.body)) };
      case CellCommand.CREATED:
        return { reply: toHex(decodeCreatedBody(cell.body)) };
      case CellCommand.RELAY:
      case CellCommand.RELAY_EARLY:
        return { body: toHex(cell.body) };
      case CellCommand.DESTROY: {
        const reason = decodeDestroyBody(cell.body);
        return { reason: nameOf(DestroyReason, reason), reasonCode: reason };
      }
      case CellCommand.CONTROL: {
        const f = decodeControlBody(cell.body);
        return { first: f.first, last: f.last, data: toHex(f.data) };
      }
      case CellCommand.MIX:
        return { body: toHex(cell.body) };
      case CellCommand.MIX_POLL:
        return { inboxSecret: toHex(decodeMixPollBody(cell.body)) };
      case CellCommand.MIX_MAIL: {
        const m = decodeMixMailBody(cell.body);
        return { mail: m.mail, payload: toHex(m.payload) };
      }
    }
  })();
  return { circId: cell.circId, command: nameOf(CellCommand, cell.command), fields };
}

interface ValidCase {
  name: string;
  cell: Cell;
  fields: Record<string, unknown>;
}

function validCases(): ValidCase[] {
  const rnd = seeded('cells');
  const header = rnd(ONION_HEADER_LEN);
  const reply = rnd(REPLY_LEN);
  const relayBody = rnd(CELL_BODY_LEN);
  const control = encodeCbor({ t: 'dir-get', since: 1_700_000_000_000, after: null });
  const big = rnd(1016);
  const cases: ValidCase[] = [
    { name: 'PADDING', cell: { circId: 0, command: CellCommand.PADDING, body: new Uint8Array(CELL_BODY_LEN) }, fields: {} },
    { name: 'CREATE', cell: { circId: 1, command: CellCommand.CREATE, body: createBody(header) }, fields: { onionHeader: toHex(header) } },
    {
      name: 'CREATE with the largest circuit id',
      cell: { circId: 0xffffffff, command: CellCommand.CREATE, body: createBody(header) },
      fields: { onionHeader: toHex(header) },
    },
    { name: 'CREATED', cell: { circId: 0x80000001, command: CellCommand.CREATED, body: createdBody(reply) }, fields: { reply: toHex(reply) } },
    { name: 'RELAY', cell: { circId: 0x12345678, command: CellCommand.RELAY, body: relayBody }, fields: { body: toHex(relayBody) } },
    { name: 'RELAY_EARLY', cell: { circId: 2, command: CellCommand.RELAY_EARLY, body: relayBody }, fields: { body: toHex(relayBody) } },
  ];
  for (const reason of ['NONE', 'PROTOCOL', 'TIMEOUT', 'CRYPTO'] as const) {
    const code = DestroyReason[reason];
    cases.push({
      name: `DESTROY ${reason}`,
      cell: { circId: 7, command: CellCommand.DESTROY, body: destroyBody(code) },
      fields: { reason, reasonCode: code },
    });
  }
  const fragments: [string, boolean, boolean, Uint8Array][] = [
    ['CONTROL single fragment (FIRST|LAST)', true, true, control],
    ['CONTROL empty message', true, true, new Uint8Array(0)],
    ['CONTROL first fragment of three, full', true, false, big],
    ['CONTROL middle fragment (no flags)', false, false, big],
    ['CONTROL last fragment', false, true, utf8('tail')],
  ];
  for (const [name, first, last, data] of fragments) {
    cases.push({
      name,
      cell: { circId: 0, command: CellCommand.CONTROL, body: controlBody({ first, last, data }) },
      fields: { first, last, data: toHex(data) },
    });
  }
  const mixRnd = seeded('cells-mix');
  const packet = mixRnd(CELL_BODY_LEN);
  const secret = mixRnd(32);
  const payload = mixRnd(MIX_PAYLOAD_LEN);
  cases.push(
    { name: 'MIX', cell: { circId: 0, command: CellCommand.MIX, body: packet }, fields: { body: toHex(packet) } },
    { name: 'MIX_POLL', cell: { circId: 0, command: CellCommand.MIX_POLL, body: mixPollBody(secret) }, fields: { inboxSecret: toHex(secret) } },
    {
      name: 'MIX_MAIL with mail',
      cell: { circId: 0, command: CellCommand.MIX_MAIL, body: mixMailBody(true, payload) },
      fields: { mail: true, payload: toHex(payload) },
    },
    {
      name: 'MIX_MAIL without',
      cell: { circId: 0, command: CellCommand.MIX_MAIL, body: mixMailBody(false, payload) },
      fields: { mail: false, payload: toHex(payload) },
    },
  );
  return cases;
}

interface InvalidCase {
  name: string;
  bytes: Uint8Array;
  error: string;
}

/** A valid cell of `command` on `circId`, then `edit` applied to its bytes. */
function edited(circId: number, command: number, body: Uint8Array, edit: (b: Uint8Array) => void = () => {}): Uint8Array {
  const b = new Uint8Array(CELL_LEN);
  new DataView(b.buffer).setUint32(0, circId);
  b[4] = command;
  b.set(body, 5);
  edit(b);
  return b;
}

function invalidCases(): InvalidCase[] {
  const rnd = seeded('cells-invalid');
  const header = createBody(rnd(ONION_HEADER_LEN));
  const reply = createdBody(rnd(REPLY_LEN));
  const zero = new Uint8Array(CELL_BODY_LEN);
  const ctl = (flags: number, len: number, data: Uint8Array = new Uint8Array(0)): Uint8Array => {
    const body = new Uint8Array(CELL_BODY_LEN);
    body[0] = flags;
    body[1] = len >>> 8;
    body[2] = len & 0xff;
    body.set(data, 3);
    return body;
  };
  const padding = edited(0, CellCommand.PADDING, zero);
  return [
    { name: 'empty input', bytes: new Uint8Array(0), error: 'ERR_CELL_SIZE' },
    { name: 'one byte short (1023)', bytes: padding.subarray(0, CELL_LEN - 1), error: 'ERR_CELL_SIZE' },
    { name: 'one byte long (1025)', bytes: concatBytes(padding, new Uint8Array(1)), error: 'ERR_CELL_SIZE' },
    { name: 'two cells (2048)', bytes: concatBytes(padding, padding), error: 'ERR_CELL_SIZE' },
    { name: 'unknown command 10', bytes: edited(1, 10, zero), error: 'ERR_CELL_COMMAND' },
    { name: 'MIX on a circuit id', bytes: edited(1, CellCommand.MIX, zero), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'MIX_POLL with a non-zero pad byte', bytes: edited(0, CellCommand.MIX_POLL, zero, (b) => (b[5 + 40] = 1)), error: 'ERR_CELL_PADDING' },
    { name: 'MIX_MAIL with unknown flags', bytes: edited(0, CellCommand.MIX_MAIL, zero, (b) => (b[5] = 2)), error: 'ERR_SCHEMA' },
    { name: 'unknown command 255', bytes: edited(0, 255, zero), error: 'ERR_CELL_COMMAND' },
    { name: 'CREATE on circuit id 0', bytes: edited(0, CellCommand.CREATE, header), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'CREATED on circuit id 0', bytes: edited(0, CellCommand.CREATED, reply), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'RELAY on circuit id 0', bytes: edited(0, CellCommand.RELAY, rnd(CELL_BODY_LEN)), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'RELAY_EARLY on circuit id 0', bytes: edited(0, CellCommand.RELAY_EARLY, rnd(CELL_BODY_LEN)), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'DESTROY on circuit id 0', bytes: edited(0, CellCommand.DESTROY, destroyBody(1)), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'PADDING on circuit id 1', bytes: edited(1, CellCommand.PADDING, zero), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'PADDING on circuit id 0x80000000', bytes: edited(0x80000000, CellCommand.PADDING, zero), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'CONTROL on circuit id 5', bytes: edited(5, CellCommand.CONTROL, ctl(3, 0)), error: 'ERR_CELL_CIRCUIT_ID' },
    { name: 'PADDING with a non-zero first body byte', bytes: edited(0, CellCommand.PADDING, zero, (b) => (b[5] = 1)), error: 'ERR_CELL_PADDING' },
    { name: 'PADDING with a non-zero last byte', bytes: edited(0, CellCommand.PADDING, zero, (b) => (b[CELL_LEN - 1] = 0x80)), error: 'ERR_CELL_PADDING' },
    {
      name: 'CREATE with a non-zero byte after the 816-byte header',
      bytes: edited(9, CellCommand.CREATE, header, (b) => (b[5 + ONION_HEADER_LEN] = 1)),
      error: 'ERR_CELL_PADDING',
    },
    { name: 'CREATE with a non-zero last byte', bytes: edited(9, CellCommand.CREATE, header, (b) => (b[CELL_LEN - 1] = 1)), error: 'ERR_CELL_PADDING' },
    {
      name: 'CREATED with a non-zero byte after the 640-byte reply',
      bytes: edited(9, CellCommand.CREATED, reply, (b) => (b[5 + REPLY_LEN] = 0xff)),
      error: 'ERR_CELL_PADDING',
    },
    { name: 'DESTROY with non-zero padding', bytes: edited(3, CellCommand.DESTROY, destroyBody(1), (b) => (b[6] = 1)), error: 'ERR_CELL_PADDING' },
    { name: 'DESTROY with unknown reason 11', bytes: edited(3, CellCommand.DESTROY, destroyBody(0), (b) => (b[5] = 11)), error: 'ERR_SCHEMA' },
    { name: 'DESTROY with unknown reason 255', bytes: edited(3, CellCommand.DESTROY, destroyBody(0), (b) => (b[5] = 255)), error: 'ERR_SCHEMA' },
    { name: 'CONTROL length 1017 (one beyond the body)', bytes: edited(0, CellCommand.CONTROL, ctl(3, 1017)), error: 'ERR_BAD_LENGTH' },
    { name: 'CONTROL length 65535', bytes: edited(0, CellCommand.CONTROL, ctl(3, 0xffff)), error: 'ERR_BAD_LENGTH' },
    { name: 'CONTROL unknown flag 4', bytes: edited(0, CellCommand.CONTROL, ctl(4, 0)), error: 'ERR_SCHEMA' },
    { name: 'CONTROL unknown flag 0x80 with FIRST|LAST', bytes: edited(0, CellCommand.CONTROL, ctl(0x83, 0)), error: 'ERR_SCHEMA' },
    {
      name: 'CONTROL non-zero byte after the data',
      bytes: edited(0, CellCommand.CONTROL, ctl(3, 2, Uint8Array.of(0xaa, 0xbb, 0x01))),
      error: 'ERR_CELL_PADDING',
    },
  ];
}

export function cellsFile(): VectorFile {
  const valid = validCases().map((c) => {
    const bytes = encodeCell(c.cell);
    const decoded = decodeTypedCell(bytes);
    const expected = { circId: c.cell.circId, command: nameOf(CellCommand, c.cell.command), fields: c.fields };
    check(JSON.stringify(decoded) === JSON.stringify(expected), `cells valid "${c.name}" decodes to its fields`);
    return { name: c.name, ...expected, hex: toHex(bytes) };
  });
  const invalid = invalidCases().map((c) => {
    const code = expectCode(
      errorCodeOf(() => decodeTypedCell(c.bytes), c.name),
      c.error,
      `cells invalid "${c.name}"`,
    );
    return { name: c.name, hex: toHex(c.bytes), error: code };
  });
  return {
    description:
      'Link cells (specs/cells.md). A cell is circ_id u32 | command u8 | body (1019 bytes), 1024 bytes in all. ' +
      '"valid": hex is the encoding of (circId, command, fields) and decodes back to them; fields per command: ' +
      'PADDING {}, CREATE {onionHeader: 816 bytes}, CREATED {reply: 640 bytes}, RELAY and RELAY_EARLY {body: 1019 bytes}, ' +
      'DESTROY {reason name, reasonCode}, CONTROL {first, last, data}. Typed bodies are zero-padded to 1019 bytes. ' +
      '"invalid": decoding hex (decodeCell, then the body decoder of its command) throws the AlliumError code "error". ' +
      'All byte strings are lowercase hex.',
    version: VECTORS_VERSION,
    cellLength: CELL_LEN,
    valid,
    invalid,
  };
}
