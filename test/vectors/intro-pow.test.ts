/** specs/vectors/intro-pow.json against protocol/intro-pow.ts (specs/rendezvous.md §4.3). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { powBinding, solvePow, verifyPow } from '../../protocol/intro-pow.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Valid {
  name: string;
  seed: string;
  p: string;
  binding: string;
  effort: number;
  start: string;
  nonce: string;
}
interface Invalid {
  name: string;
  seeds: string[];
  nonce: string;
  effort: number;
  p: string;
  code: string;
}

describeEachBinding('vectors: introduction proof of work', () => {
  const v = readVectors<{ valid: Valid[]; invalid: Invalid[] }>('intro-pow.json');

  for (const t of v.valid) {
    it(`valid: ${t.name}`, () => {
      const binding = powBinding(hex(t.p));
      expect(toHex(binding)).to.equal(t.binding);
      const w = solvePow(hex(t.seed), t.effort, binding, hex(t.start), 1 << 24)!;
      expect(toHex(w.n)).to.equal(t.nonce);
      expect(verifyPow([hex(t.seed)], { n: hex(t.nonce), e: t.effort }, binding)).to.equal(0);
    });
  }
  for (const t of v.invalid) {
    it(`invalid: ${t.name}`, () => {
      expectCode(() => verifyPow(t.seeds.map(hex), { n: hex(t.nonce), e: t.effort }, powBinding(hex(t.p))), t.code);
    });
  }
});
