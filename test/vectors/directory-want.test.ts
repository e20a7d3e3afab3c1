/** specs/vectors/directory-want.json against protocol/control.ts and protocol/directory-want.ts (specs/directory.md §6.1). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { decodeControl, encodeControl, type ControlMessage } from '../../protocol/control.js';
import { checkFound } from '../../protocol/directory-want.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Fields {
  t: 'dir-want' | 'dir-found';
  ids?: string[];
  ds?: string[];
}
interface Vectors {
  messages: { valid: { name: string; fields: Fields; hex: string }[]; invalid: { name: string; hex: string; code: string }[] };
  answers: { name: string; asked: string[]; ds: string[]; found?: string[]; code?: string }[];
}

const V = readVectors<Vectors>('directory-want.json');

function messageOf(f: Fields): ControlMessage {
  return f.t === 'dir-want' ? { t: 'dir-want', ids: f.ids!.map(hex) } : { t: 'dir-found', ds: f.ds!.map(hex) };
}

describeEachBinding('vectors: directory-want.json', () => {
  for (const v of V.messages.valid) {
    it(`valid: ${v.name}`, () => {
      expect(toHex(encodeControl(messageOf(v.fields)))).to.equal(v.hex);
      const m = decodeControl(hex(v.hex));
      const fields = m.t === 'dir-want' ? { t: m.t, ids: m.ids.map(toHex) } : m.t === 'dir-found' ? { t: m.t, ds: m.ds.map(toHex) } : m;
      expect(fields).to.deep.equal(v.fields);
    });
  }
  for (const v of V.messages.invalid) {
    it(`invalid: ${v.name} → ${v.code}`, () => {
      expectCode(() => decodeControl(hex(v.hex)), v.code);
    });
  }
  for (const a of V.answers) {
    it(`answer: ${a.name}${a.code ? ` → ${a.code}` : ''}`, () => {
      const run = (): string[] => checkFound(a.asked.map(hex), a.ds.map(hex)).map((d) => d.fingerprint);
      if (a.code) expectCode(run, a.code);
      else expect(run()).to.deep.equal(a.found);
    });
  }
});
