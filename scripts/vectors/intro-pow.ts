/**
 * specs/vectors/intro-pow.json: the introduction puzzle (specs/rendezvous.md §4.3, protocol/intro-pow.ts). Each valid
 * vector gives the seed, the sealed introduction p, its binding, the effort, the nonce the solver starts from and the
 * first nonce that meets the target; invalid ones give a solution and the seeds it is checked against.
 */
import { toHex } from '../../protocol/bytes.js';
import { powBinding, solvePow, verifyPow } from '../../protocol/intro-pow.js';
import { seeded, VECTORS_VERSION, type VectorFile } from './common.js';

export function introPowFile(): VectorFile {
  const rnd = seeded('intro-pow');
  const valid = [1, 16, 300, 4096].map((effort) => {
    const seed = rnd(32);
    const p = rnd(120);
    const start = rnd(16);
    const binding = powBinding(p);
    const w = solvePow(seed, effort, binding, start, 1 << 24);
    if (!w || verifyPow([seed], w, binding) !== 0) throw new Error('intro-pow vector does not verify');
    return { name: `effort ${effort}`, seed: toHex(seed), p: toHex(p), binding: toHex(binding), effort, start: toHex(start), nonce: toHex(w.n) };
  });
  const v = valid[3]!;
  const other = toHex(rnd(32));
  const invalid = [
    { name: 'another seed', seeds: [other], nonce: v.nonce, effort: v.effort, p: v.p, code: 'ERR_INTRO_POW' },
    { name: 'a higher effort than solved for', seeds: [v.seed], nonce: v.nonce, effort: 1 << 20, p: v.p, code: 'ERR_INTRO_POW' },
    { name: 'effort 0', seeds: [v.seed], nonce: v.nonce, effort: 0, p: v.p, code: 'ERR_INTRO_POW' },
    { name: 'another introduction', seeds: [v.seed], nonce: v.nonce, effort: v.effort, p: toHex(rnd(120)), code: 'ERR_INTRO_POW' },
  ];
  return {
    description:
      'Introduction proof of work (specs/rendezvous.md §4.3). valid: solvePow from `start` finds `nonce` first; verifyPow([seed]) accepts it. invalid: verifyPow(seeds, {n: nonce, e: effort}, H(32, p)) throws `code`.',
    version: VECTORS_VERSION,
    valid,
    invalid,
  };
}
