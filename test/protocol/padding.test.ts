/**
 * Message padding (specs/messaging.md §6): padded lengths are buckets (less the caller's overhead) and the smallest
 * that fits; unpad inverts pad; and unpad is strict — every input it accepts is exactly pad()'s output for what it
 * returns, and anything else is ERR_PADDING.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { toHex } from '../../protocol/bytes.js';
import { maxPaddable, pad, PAD_BUCKETS, PAD_HEADER_LEN, PAD_MAX_BUCKET, PAD_UNIT, paddedLength, padTo, unpad, unpadExact } from '../../protocol/padding.js';
import { RATCHET_OVERHEAD } from '../../protocol/ratchet.js';
import { bytesOf } from '../helpers/arbitraries.js';
import { total } from '../helpers/total.js';
import { expectCode } from '../helpers/vectors.js';

const overheads = fc.constantFrom(0, 40, RATCHET_OVERHEAD);
/** Lengths clustered at the bucket edges, where off-by-one errors live. */
const lengthNear = (overhead: number) =>
  fc
    .oneof(
      fc.nat({ max: maxPaddable(overhead) }),
      fc.constantFrom(...PAD_BUCKETS).chain((b) => fc.integer({ min: -2, max: 2 }).map((d) => b - overhead - PAD_HEADER_LEN + d)),
    )
    .filter((n) => n >= 0 && n <= maxPaddable(overhead));

describe('protocol/padding', () => {
  it('has the documented buckets', () => {
    expect(PAD_UNIT).to.equal(886);
    expect(PAD_BUCKETS).to.deep.equal([886, 1772, 3544, 7088, 14176, 28352, 56704]);
    expect(PAD_MAX_BUCKET).to.equal(56704);
  });

  it('pads to the smallest bucket that fits, and unpad inverts pad', () => {
    fc.assert(
      fc.property(
        overheads.chain((o) => fc.tuple(fc.constant(o), lengthNear(o))),
        fc.nat(),
        ([overhead, len], fill) => {
          const plain = new Uint8Array(len).fill(fill & 0xff);
          const padded = pad(plain, overhead);
          const bucket = padded.length + overhead;
          expect(PAD_BUCKETS).to.include(bucket);
          expect(padded.length).to.equal(paddedLength(len, overhead));
          const smaller = PAD_BUCKETS.filter((b) => b < bucket);
          for (const b of smaller) expect(len + PAD_HEADER_LEN + overhead).to.be.greaterThan(b);
          expect(toHex(unpad(padded, overhead))).to.equal(toHex(plain));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('padded length is monotonic in the plaintext length', () => {
    fc.assert(
      fc.property(overheads, fc.nat({ max: maxPaddable() }), fc.nat({ max: maxPaddable() }), (o, a, b) => {
        const [x, y] = [Math.min(a, b, maxPaddable(o)), Math.min(Math.max(a, b), maxPaddable(o))];
        expect(paddedLength(x, o)).to.be.at.most(paddedLength(y, o));
      }),
    );
  });

  it('refuses what does not fit the largest bucket', () => {
    expectCode(() => pad(new Uint8Array(maxPaddable() + 1)), 'ERR_LIMIT');
    expectCode(() => pad(new Uint8Array(maxPaddable(RATCHET_OVERHEAD) + 1), RATCHET_OVERHEAD), 'ERR_LIMIT');
    expect(pad(new Uint8Array(maxPaddable())).length).to.equal(PAD_MAX_BUCKET);
  });

  it('unpad refuses non-bucket lengths, impossible length fields, non-zero padding and oversized buckets', () => {
    const padded = pad(new Uint8Array(10).fill(7));
    expectCode(() => unpad(padded.subarray(0, padded.length - 1)), 'ERR_PADDING');
    expectCode(() => unpad(new Uint8Array(3)), 'ERR_PADDING');
    expectCode(() => unpad(padded, 1), 'ERR_PADDING'); // 886 + 1 is not a bucket
    const long = Uint8Array.from(padded);
    long[0] = 0xff;
    expectCode(() => unpad(long), 'ERR_PADDING');
    const dirty = Uint8Array.from(padded);
    dirty[dirty.length - 1] = 1;
    expectCode(() => unpad(dirty), 'ERR_PADDING');
    const roomy = padTo(new Uint8Array(10), PAD_BUCKETS[1]!); // fits the first bucket, padded to the second
    expectCode(() => unpad(roomy), 'ERR_PADDING');
    expect(unpadExact(roomy).length).to.equal(10);
  });

  it("unpad is total and canonical: whatever it accepts is pad()'s output for the result", () => {
    const near = fc.constantFrom(...PAD_BUCKETS.slice(0, 3)).chain((b) =>
      fc.tuple(bytesOf(b), fc.nat({ max: b - PAD_HEADER_LEN })).map(([x, len]) => {
        const out = Uint8Array.from(x);
        new DataView(out.buffer).setUint32(0, len);
        return out;
      }),
    );
    const input = fc.oneof(near, fc.uint8Array({ maxLength: 1000 }));
    fc.assert(
      fc.property(input, overheads, (b, o) => {
        const r = total(() => unpad(b.subarray(0, Math.max(0, b.length - o)), o), ['ERR_PADDING']);
        if (r.ok) expect(toHex(pad(r.value, o))).to.equal(toHex(b.subarray(0, Math.max(0, b.length - o))));
        total(() => unpadExact(b), ['ERR_PADDING']);
      }),
      { numRuns: 300 },
    );
  });
});
