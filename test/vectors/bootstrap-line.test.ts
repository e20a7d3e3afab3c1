/** specs/vectors/bootstrap-line.json against protocol/bootstrap-line.ts (specs/directory.md §6.7). */
import { expect } from 'chai';
import { fingerprintOf } from '../../crypto/keys.js';
import { authoritiesFor, formatBootstrapLine, parseBootstrapLine } from '../../protocol/bootstrap-line.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, readVectors } from '../helpers/vectors.js';

interface Vectors {
  valid: { name: string; line: string; url: string; fingerprint: string; authorities: string[] | null }[];
  invalid: { name: string; line: string; code: string }[];
  format: { name: string; url: string; fingerprint: string; authorities: string[]; line: string }[];
  sets: { name: string; lines: string[]; configured: string[]; authorities?: string[]; code?: string }[];
}

const V = readVectors<Vectors>('bootstrap-line.json');

describeEachBinding('vectors: bootstrap-line.json', () => {
  for (const v of V.valid) {
    it(`valid: ${v.name}`, () => {
      const b = parseBootstrapLine(v.line);
      expect({ url: b.url, fingerprint: fingerprintOf(b.identity), authorities: b.authorities ?? null }).to.deep.equal({
        url: v.url,
        fingerprint: v.fingerprint,
        authorities: v.authorities,
      });
    });
  }
  for (const v of V.invalid) {
    it(`invalid: ${v.name} → ${v.code}`, () => {
      const e = expectCode(() => parseBootstrapLine(v.line), v.code);
      // bounded: an error never carries more of the line than a line may hold
      expect(e.message.length).to.be.below(4096 + 300);
    });
  }
  for (const v of V.format) {
    it(`format: ${v.name}`, () => {
      expect(formatBootstrapLine(v.url, v.fingerprint, v.authorities)).to.equal(v.line);
    });
  }
  for (const v of V.sets) {
    it(`sets: ${v.name}${v.code ? ` → ${v.code}` : ''}`, () => {
      const run = (): string[] => authoritiesFor(v.lines.map(parseBootstrapLine), v.configured);
      if (v.code) expectCode(run, v.code);
      else expect(run()).to.deep.equal(v.authorities);
    });
  }
});
