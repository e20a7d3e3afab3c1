/**
 * The committed vectors are exactly what scripts/gen-vectors.ts produces, under either binding: the generator is
 * deterministic and nobody edited a vector by hand. After an intended change run `npm run vectors`.
 */
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { buildVectorFiles } from '../../scripts/vectors/index.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { readVectorText, VECTORS_DIR } from '../helpers/vectors.js';

describeEachBinding('vectors: regeneration', () => {
  it('rebuilds every committed file byte for byte, and twice the same', () => {
    const first = buildVectorFiles();
    const second = buildVectorFiles();
    expect([...second.entries()]).to.deep.equal([...first.entries()]);
    for (const [name, text] of first) {
      expect(readVectorText(name) === text, `specs/vectors/${name} is stale: run npm run vectors`).to.equal(true);
    }
  });

  it('has no vector file the generator does not make', () => {
    const committed = readdirSync(VECTORS_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(committed).to.deep.equal([...buildVectorFiles().keys()].sort());
  });
});
