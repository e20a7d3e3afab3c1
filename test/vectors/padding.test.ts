/** specs/vectors/padding.json against protocol/circuit-padding.ts (specs/padding.md §2–§4). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import {
  decodePaddingNegotiate,
  decodePaddingNegotiated,
  encodePaddingNegotiate,
  encodePaddingNegotiated,
  PaddingRuntime,
  paddingMachine,
  type PaddingAction,
  type PaddingCommand,
  type PaddingStatus,
} from '../../protocol/circuit-padding.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface PaddingVectors {
  negotiate: { name: string; command: PaddingCommand; machine: number; hex: string }[];
  negotiated: { name: string; machine: number; status: PaddingStatus; hex: string }[];
  invalid: { message: 'NEGOTIATE' | 'NEGOTIATED'; name: string; hex: string; code: string }[];
  run: { machine: number; half: 'relay' | 'client'; draws: number[]; steps: { event: string; action: string; state: string; padding: number }[] };
}

const V = readVectors<PaddingVectors>('padding.json');

describe('vectors: padding.json', () => {
  for (const v of V.negotiate) {
    it(`PADDING_NEGOTIATE: ${v.name}`, () => {
      expect(toHex(encodePaddingNegotiate(v))).to.equal(v.hex);
      expect(decodePaddingNegotiate(hex(v.hex))).to.deep.equal({ command: v.command, machine: v.machine });
    });
  }
  for (const v of V.negotiated) {
    it(`PADDING_NEGOTIATED: ${v.name}`, () => {
      expect(toHex(encodePaddingNegotiated(v))).to.equal(v.hex);
      expect(decodePaddingNegotiated(hex(v.hex))).to.deep.equal({ machine: v.machine, status: v.status });
    });
  }
  for (const v of V.invalid) {
    it(`invalid ${v.message}: ${v.name}`, () => {
      expectCode(() => (v.message === 'NEGOTIATE' ? decodePaddingNegotiate(hex(v.hex)) : decodePaddingNegotiated(hex(v.hex))), v.code);
    });
  }
  it('one run of the machine with fixed draws', () => {
    let i = 0;
    const rt = new PaddingRuntime(paddingMachine(V.run.machine)![V.run.half], () => V.run.draws[i++ % V.run.draws.length]!);
    const show = (a: PaddingAction): string => (a.kind === 'schedule' ? `schedule ${a.delayMs.toFixed(3)}` : a.kind);
    for (const s of V.run.steps) {
      const e = s.event;
      const a = e === 'start' ? rt.start() : e === 'timer' ? rt.onPaddingSent() : rt.on(e as 'nonpadding-sent' | 'nonpadding-received' | 'padding-received');
      expect({ action: show(a), state: rt.stateName, padding: rt.padding }, e).to.deep.equal({ action: s.action, state: s.state, padding: s.padding });
    }
  });
});
