/**
 * Link cells (specs/cells.md): every cell is CELL_LEN (1024) bytes.
 *
 *   circ_id u32 | command u8 | body (1019)
 *
 * Typed bodies are zero-padded to the full length and the padding is checked: a cell either decodes exactly or is
 * a protocol violation.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { CELL_BODY_LEN, CELL_LEN, ONION_HEADER_LEN, REPLY_LEN } from './constants.js';
import { ProtocolError, type AlliumError, type DestroyReasonName } from './errors.js';

export const CellCommand = {
  PADDING: 0,
  CREATE: 1,
  CREATED: 2,
  RELAY: 3,
  DESTROY: 4,
  CONTROL: 5,
  /** A RELAY cell counted by every relay; each circuit may carry at most MAX_RELAY_EARLY. Clients send none (specs/link.md §6). */
  RELAY_EARLY: 6,
  /** Message mode (specs/mix.md §3): a mix packet, a poll of the sender's inbox, one cell of mail in answer. */
  MIX: 7,
  MIX_POLL: 8,
  MIX_MAIL: 9,
} as const;
export type CellCommand = (typeof CellCommand)[keyof typeof CellCommand];

const LINK_LEVEL = new Set<number>([CellCommand.PADDING, CellCommand.CONTROL, CellCommand.MIX, CellCommand.MIX_POLL, CellCommand.MIX_MAIL]);

/** Whether `command` is a link-level command, carried on circuit id 0 only (specs/cells.md §3). */
export function isLinkLevel(command: number): boolean {
  return LINK_LEVEL.has(command);
}
const KNOWN = new Set<number>(Object.values(CellCommand));

export interface Cell {
  readonly circId: number;
  readonly command: CellCommand;
  /** Exactly CELL_BODY_LEN bytes. */
  readonly body: Uint8Array;
}

/** DESTROY reasons (specs/cells.md §4). */
export const DestroyReason = {
  NONE: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  REQUESTED: 3,
  HIBERNATING: 4,
  RESOURCE_LIMIT: 5,
  CONNECT_FAILED: 6,
  LINK_CLOSED: 7,
  TIMEOUT: 8,
  FINISHED: 9,
  CRYPTO: 10,
} as const satisfies Record<DestroyReasonName, number>;
export type DestroyReason = (typeof DestroyReason)[keyof typeof DestroyReason];

/** The DESTROY reason to send for an error that tears a circuit down (the one it carries, errors/index.ts). */
export function destroyReasonOf(err: AlliumError): DestroyReason {
  return DestroyReason[err.destroyReason];
}
const MAX_DESTROY_REASON = 10;

export const MAX_CIRC_ID = 0xffffffff;
/** RELAY_EARLY cells a relay passes on one circuit (specs/link.md §6). */
export const MAX_RELAY_EARLY = 8;

export function encodeCell(cell: Cell): Uint8Array {
  if (cell.body.length > CELL_BODY_LEN) throw new ProtocolError('ERR_CELL_SIZE', 'cell body too long');
  return new ByteWriter(CELL_LEN).u32(cell.circId).u8(cell.command).bytes(cell.body).done();
}

/** Encodes into `out` at `offset` (the link packs several cells per frame without copying twice). */
export function encodeCellInto(out: Uint8Array, offset: number, circId: number, command: CellCommand, body: Uint8Array): void {
  out[offset] = circId >>> 24;
  out[offset + 1] = (circId >>> 16) & 0xff;
  out[offset + 2] = (circId >>> 8) & 0xff;
  out[offset + 3] = circId & 0xff;
  out[offset + 4] = command;
  out.set(body, offset + 5);
  if (body.length < CELL_BODY_LEN) out.fill(0, offset + 5 + body.length, offset + CELL_LEN);
}

/** Decodes the cell header and checks command and circuit id; the body is a view into `bytes`. */
export function decodeCell(bytes: Uint8Array): Cell {
  if (bytes.length !== CELL_LEN) throw new ProtocolError('ERR_CELL_SIZE', `a cell is ${CELL_LEN} bytes, not ${bytes.length}`);
  return decodeCellAt(bytes, 0);
}

/**
 * As decodeCell, for the cell at frame[offset..offset + CELL_LEN) (the link decodes the cells of a frame in place;
 * one view per cell, its body). The caller guarantees the frame holds a whole cell there.
 */
export function decodeCellAt(frame: Uint8Array, offset: number): Cell {
  if (offset < 0 || offset + CELL_LEN > frame.length) throw new ProtocolError('ERR_CELL_SIZE', `a cell is ${CELL_LEN} bytes`);
  const circId = ((frame[offset]! << 24) | (frame[offset + 1]! << 16) | (frame[offset + 2]! << 8) | frame[offset + 3]!) >>> 0;
  const command = frame[offset + 4]!;
  if (!KNOWN.has(command)) throw new ProtocolError('ERR_CELL_COMMAND', `unknown cell command ${command}`);
  if (LINK_LEVEL.has(command) !== (circId === 0)) {
    throw new ProtocolError('ERR_CELL_CIRCUIT_ID', `command ${command} ${circId === 0 ? 'needs a circuit id' : 'must use circuit id 0'}`);
  }
  const body = frame.subarray(offset + 5, offset + CELL_LEN);
  if (command === CellCommand.PADDING) {
    for (let i = 0; i < body.length; i++) {
      if (body[i] !== 0) throw new ProtocolError('ERR_CELL_PADDING', `PADDING body: non-zero padding at offset ${i}`);
    }
  }
  return { circId, command: command as CellCommand, body };
}

function padded(content: Uint8Array): Uint8Array {
  const body = new Uint8Array(CELL_BODY_LEN);
  body.set(content);
  return body;
}

export function createBody(header: Uint8Array): Uint8Array {
  if (header.length !== ONION_HEADER_LEN) throw new ProtocolError('ERR_BAD_LENGTH', 'onion header length');
  return padded(header);
}

export function decodeCreateBody(body: Uint8Array): Uint8Array {
  const r = new ByteReader(body, 'CREATE body');
  const header = r.bytes(ONION_HEADER_LEN);
  r.zeros();
  return header;
}

export function createdBody(reply: Uint8Array): Uint8Array {
  if (reply.length !== REPLY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', 'reply length');
  return padded(reply);
}

export function decodeCreatedBody(body: Uint8Array): Uint8Array {
  const r = new ByteReader(body, 'CREATED body');
  const reply = r.bytes(REPLY_LEN);
  r.zeros();
  return reply;
}

export function destroyBody(reason: DestroyReason): Uint8Array {
  return padded(Uint8Array.of(reason));
}

export function decodeDestroyBody(body: Uint8Array): DestroyReason {
  const r = new ByteReader(body, 'DESTROY body');
  const reason = r.u8();
  r.zeros();
  if (reason > MAX_DESTROY_REASON) throw new ProtocolError('ERR_SCHEMA', `unknown DESTROY reason ${reason}`);
  return reason as DestroyReason;
}

/** CONTROL fragments (specs/cells.md §5): flags u8 | length u16 | data | zero padding. */
export const CONTROL_DATA_MAX = CELL_BODY_LEN - 3; // 1016
export const ControlFlag = { FIRST: 1, LAST: 2 } as const;

export interface ControlFragment {
  readonly first: boolean;
  readonly last: boolean;
  readonly data: Uint8Array;
}

export function controlBody(f: ControlFragment): Uint8Array {
  if (f.data.length > CONTROL_DATA_MAX) throw new ProtocolError('ERR_BAD_LENGTH', 'control fragment too long');
  return new ByteWriter(CELL_BODY_LEN)
    .u8((f.first ? ControlFlag.FIRST : 0) | (f.last ? ControlFlag.LAST : 0))
    .u16(f.data.length)
    .bytes(f.data)
    .done();
}

export function decodeControlBody(body: Uint8Array): ControlFragment {
  const r = new ByteReader(body, 'CONTROL body');
  const flags = r.u8();
  if (flags & ~3) throw new ProtocolError('ERR_SCHEMA', 'unknown CONTROL flags');
  const len = r.u16();
  if (len > CONTROL_DATA_MAX) throw new ProtocolError('ERR_BAD_LENGTH', 'CONTROL length beyond the body');
  const data = r.bytes(len);
  r.zeros();
  return { first: (flags & ControlFlag.FIRST) !== 0, last: (flags & ControlFlag.LAST) !== 0, data };
}

/** Splits a control message into fragments. */
export function fragmentControl(message: Uint8Array): ControlFragment[] {
  const out: ControlFragment[] = [];
  for (let off = 0; off < message.length || out.length === 0; off += CONTROL_DATA_MAX) {
    const data = message.subarray(off, Math.min(message.length, off + CONTROL_DATA_MAX));
    out.push({ first: off === 0, last: off + CONTROL_DATA_MAX >= message.length, data });
  }
  return out;
}
