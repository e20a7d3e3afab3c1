/** specs/vectors/cells.json against protocol/cell.ts. */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
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
} from '../../protocol/cell.js';
import { CELL_LEN } from '../../protocol/constants.js';
import { decodeMixMailBody, decodeMixPollBody, mixMailBody, mixPollBody } from '../../protocol/mix-cells.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Fields {
  onionHeader?: string;
  reply?: string;
  body?: string;
  reason?: keyof typeof DestroyReason;
  reasonCode?: number;
  first?: boolean;
  last?: boolean;
  data?: string;
  inboxSecret?: string;
  mail?: boolean;
  payload?: string;
}
interface CellVectors {
  cellLength: number;
  valid: { name: string; circId: number; command: keyof typeof CellCommand; fields: Fields; hex: string }[];
  invalid: { name: string; hex: string; error: string }[];
}

const V = readVectors<CellVectors>('cells.json');

/** The body a valid vector describes, built with the encoders. */
function bodyOf(command: keyof typeof CellCommand, f: Fields): Uint8Array {
  switch (command) {
    case 'PADDING':
      return new Uint8Array(0);
    case 'CREATE':
      return createBody(hex(f.onionHeader!));
    case 'CREATED':
      return createdBody(hex(f.reply!));
    case 'RELAY':
    case 'RELAY_EARLY':
      return hex(f.body!);
    case 'DESTROY':
      expect(DestroyReason[f.reason!]).to.equal(f.reasonCode);
      return destroyBody(f.reasonCode as DestroyReason);
    case 'CONTROL':
      return controlBody({ first: f.first!, last: f.last!, data: hex(f.data!) });
    case 'MIX':
      return hex(f.body!);
    case 'MIX_POLL':
      return mixPollBody(hex(f.inboxSecret!));
    case 'MIX_MAIL':
      return mixMailBody(f.mail!, hex(f.payload!));
  }
}

/** decodeCell, then the body decoder of the command, as the vectors define decoding. */
function decodeFully(bytes: Uint8Array): { circId: number; command: number; fields: Fields } {
  const cell = decodeCell(bytes);
  let fields: Fields = {};
  if (cell.command === CellCommand.CREATE) fields = { onionHeader: toHex(decodeCreateBody(cell.body)) };
  if (cell.command === CellCommand.CREATED) fields = { reply: toHex(decodeCreatedBody(cell.body)) };
  if (cell.command === CellCommand.RELAY || cell.command === CellCommand.RELAY_EARLY) fields = { body: toHex(cell.body) };
  if (cell.command === CellCommand.DESTROY) {
    const code = decodeDestroyBody(cell.body);
    const name = (Object.keys(DestroyReason) as (keyof typeof DestroyReason)[]).find((k) => DestroyReason[k] === code)!;
    fields = { reason: name, reasonCode: code };
  }
  if (cell.command === CellCommand.CONTROL) {
    const f = decodeControlBody(cell.body);
    fields = { first: f.first, last: f.last, data: toHex(f.data) };
  }
  if (cell.command === CellCommand.MIX) fields = { body: toHex(cell.body) };
  if (cell.command === CellCommand.MIX_POLL) fields = { inboxSecret: toHex(decodeMixPollBody(cell.body)) };
  if (cell.command === CellCommand.MIX_MAIL) {
    const m = decodeMixMailBody(cell.body);
    fields = { mail: m.mail, payload: toHex(m.payload) };
  }
  return { circId: cell.circId, command: cell.command, fields };
}

describeEachBinding('vectors: cells.json', () => {
  it('has the cell length of protocol/constants.ts and covers every command', () => {
    expect(V.cellLength).to.equal(CELL_LEN);
    expect(new Set(V.valid.map((v) => v.command))).to.deep.equal(new Set(Object.keys(CellCommand)));
  });

  for (const v of V.valid) {
    it(`valid: ${v.name}`, () => {
      const bytes = encodeCell({ circId: v.circId, command: CellCommand[v.command], body: bodyOf(v.command, v.fields) });
      expect(toHex(bytes)).to.equal(v.hex);
      const d = decodeFully(hex(v.hex));
      expect(d.circId).to.equal(v.circId);
      expect(d.command).to.equal(CellCommand[v.command]);
      expect(d.fields).to.deep.equal(v.fields);
    });
  }

  for (const v of V.invalid) {
    it(`invalid: ${v.name} → ${v.error}`, () => {
      expectCode(() => decodeFully(hex(v.hex)), v.error);
    });
  }
});
