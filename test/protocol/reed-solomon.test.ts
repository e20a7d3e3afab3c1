/**
 * Reed-Solomon erasure coding (specs/content.md §3.2): the parity matches Backblaze's published vector for the same
 * construction, and any k of k + m shards rebuild the data for every k a segment can have.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { toHex } from '../../protocol/bytes.js';
import { isAlliumError } from '../../protocol/errors.js';
import { codingMatrix, rsEncode, rsReconstruct } from '../../protocol/reed-solomon.js';

const hexAll = (xs: readonly Uint8Array[]): string[] => xs.map(toHex);

describe('protocol/reed-solomon', () => {
  it("matches Backblaze's published 5 + 5 vector", () => {
    // JavaReedSolomon's ReedSolomonTest: data shards [0,1],[4,5],[2,3],[6,7],[8,9] give these parity shards.
    const data = [
      [0, 1],
      [4, 5],
      [2, 3],
      [6, 7],
      [8, 9],
    ].map((s) => Uint8Array.from(s));
    const parity = rsEncode(data, 5, 2);
    expect(parity.map((p) => [...p])).to.deep.equal([
      [12, 13],
      [10, 11],
      [14, 15],
      [90, 91],
      [94, 95],
    ]);
  });

  it('is systematic: the top k rows of the coding matrix are the identity', () => {
    for (const k of [1, 2, 7, 32]) {
      const c = codingMatrix(k, Math.ceil(k / 2));
      for (let r = 0; r < k; r++) expect(c[r]).to.deep.equal(Array.from({ length: k }, (_, i) => (i === r ? 1 : 0)));
    }
  });

  it('rebuilds the 5 + 5 vector from its parity alone', () => {
    const data = [
      [0, 1],
      [4, 5],
      [2, 3],
      [6, 7],
      [8, 9],
    ].map((s) => Uint8Array.from(s));
    const parity = rsEncode(data, 5, 2);
    const shards = [...data.map(() => null), ...parity];
    expect(hexAll(rsReconstruct(shards, 5, 2))).to.deep.equal(hexAll(data));
  });

  it('any erasure of at most m = ceil(k/2) shards is rebuilt (k = 1..32)', () => {
    const segment = fc.record({ k: fc.integer({ min: 1, max: 32 }), len: fc.integer({ min: 1, max: 64 }) }).chain(({ k, len }) => {
      const m = Math.ceil(k / 2);
      return fc.record({
        k: fc.constant(k),
        len: fc.constant(len),
        data: fc.array(fc.uint8Array({ minLength: len, maxLength: len }), { minLength: k, maxLength: k }),
        erased: fc.uniqueArray(fc.integer({ min: 0, max: k + m - 1 }), { maxLength: m }),
      });
    });
    fc.assert(
      fc.property(segment, ({ k, len, data, erased }) => {
        const m = Math.ceil(k / 2);
        const parity = rsEncode(data, m, len);
        expect(parity).to.have.length(m);
        const shards: (Uint8Array | null)[] = [...data, ...parity];
        for (const i of erased) shards[i] = null;
        expect(hexAll(rsReconstruct(shards, k, len))).to.deep.equal(hexAll(data));
      }),
      { numRuns: 300 },
    );
  });

  it('m + 1 erasures fail with ERR_NOT_FOUND rather than wrong data', () => {
    const k = 6;
    const m = 3;
    const data = Array.from({ length: k }, (_, i) => Uint8Array.of(i, i * 7, 255 - i));
    const shards: (Uint8Array | null)[] = [...data, ...rsEncode(data, m, 3)];
    for (const i of [0, 2, 7, 8]) shards[i] = null;
    let caught: unknown = null;
    try {
      rsReconstruct(shards, k, 3);
    } catch (e) {
      caught = e;
    }
    expect(isAlliumError(caught) && caught.code).to.equal('ERR_NOT_FOUND');
  });
});
