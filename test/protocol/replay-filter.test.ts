/** protocol/replay-filter.ts: Bloom filter sizing and false-positive rate, and the per-onion-key ReplayFilter. */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { BloomFilter, REPLAY_FILTER_FIRST_STAGE, ReplayFilter, ScalableBloomFilter } from '../../protocol/replay-filter.js';

/** Uniformly random 16-byte tags, as the relay's hashes are. Seeded, so the measured rates are the same every run. */
function tags(label: string, n: number): Uint8Array[] {
  const all = seededRandom(label)(16 * n);
  return Array.from({ length: n }, (_, i) => all.subarray(16 * i, 16 * i + 16));
}

/** The fraction of `probes` fresh tags a filter filled to capacity reports as seen. */
function measuredRate(capacity: number, p: number, probes: number, label: string): number {
  const f = new BloomFilter(capacity, p);
  for (const t of tags(`${label}/in`, capacity)) f.add(t);
  let hits = 0;
  for (const t of tags(`${label}/probe`, probes)) if (f.has(t)) hits++;
  return hits / probes;
}

describe('protocol/replay-filter', () => {
  describe('BloomFilter', () => {
    it('is sized m = -n ln p / (ln 2)^2 bits', () => {
      for (const [n, p] of [
        [1000, 0.01],
        [20_000, 1e-3],
        [1_000_000, 1e-7],
      ] as const) {
        const bits = Math.ceil((-n * Math.log(p)) / Math.LN2 ** 2);
        expect(new BloomFilter(n, p).byteLength).to.equal(Math.ceil(bits / 8));
      }
    });

    it('never forgets a tag it holds', () => {
      const f = new BloomFilter(5000, 0.01);
      const ts = tags('bloom/no-false-negatives', 5000);
      for (const t of ts) f.add(t);
      expect(ts.every((t) => f.has(t))).to.equal(true);
      expect(f.count).to.equal(5000);
    });

    it('at capacity, its false-positive rate is near the design rate (1%)', () => {
      // 40 000 probes at p = 0.01: 400 expected, standard deviation 20; the bounds are 4 sigma.
      const rate = measuredRate(10_000, 0.01, 40_000, 'bloom/fp-1e-2');
      expect(rate).to.be.within(0.008, 0.012);
    });

    it('at capacity, its false-positive rate is near the design rate (0.1%)', () => {
      // 100 000 probes at p = 0.001: 100 expected, standard deviation 10; the bounds are 4 sigma.
      const rate = measuredRate(10_000, 0.001, 100_000, 'bloom/fp-1e-3');
      expect(rate).to.be.within(0.0006, 0.0014);
    });

    it('a small filter keeps its design rate: no hashing floor above p (capacity 3 at 1e-7)', () => {
      // Sized by -n ln p / (ln 2)^2 alone, a 3-onion filter had 101 bits, and (with double hashing) a fresh tag collided
      // with one already held about once in 3 000 checks (two tags agreeing on (h1, h2) mod m share every bit), 3 000
      // times the design rate. 30 000 filters, each checked as it fills: 90 000 checks, at most a few expected at 1e-7 plus the floor.
      const all = tags('bloom/small-filters', 90_000);
      let refused = 0;
      for (let f = 0; f < 30_000; f++) {
        const filter = new BloomFilter(3, 1e-7);
        for (let i = 0; i < 3; i++) {
          const t = all[3 * f + i]!;
          if (filter.has(t)) refused++;
          filter.add(t);
        }
      }
      expect(refused).to.be.at.most(1);
    });

    it('sets bit (a + i·b + i(i−1)/2·c) mod m for i < k, b = 1 + (u32 mod (m − 1)) never 0, whether by add or by testAndAdd', () => {
      // A small filter, so that the k positions wrap past m often. The reference is the formula written out.
      const reference = (f: BloomFilter, t: Uint8Array): Uint8Array => {
        const { m, k } = f as unknown as { m: number; k: number };
        const dv = new DataView(t.buffer, t.byteOffset, 16);
        const [a, w1, c] = [dv.getUint32(0), dv.getUint32(4), (dv.getUint32(8) ^ dv.getUint32(12)) >>> 0].map(BigInt) as [bigint, bigint, bigint];
        const b = 1n + (w1 % BigInt(m - 1));
        const bits = new Uint8Array(Math.ceil(m / 8));
        for (let i = 0n; i < BigInt(k); i++) {
          const j = Number((a + i * b + ((i * (i - 1n)) / 2n) * c) % BigInt(m));
          bits[j >>> 3]! |= 1 << (j & 7);
        }
        return bits;
      };
      const bitsOf = (f: BloomFilter): Uint8Array => (f as unknown as { bits: Uint8Array }).bits;
      for (const t of tags('bloom/positions', 200)) {
        const a = new BloomFilter(3, 1e-7);
        const b = new BloomFilter(3, 1e-7);
        a.add(t);
        expect(b.testAndAdd(t)).to.equal(false);
        expect(bitsOf(a)).to.deep.equal(reference(a, t));
        expect(bitsOf(b)).to.deep.equal(reference(b, t));
      }
    });

    it('a tag whose words are 0 mod m probes k distinct bits, not one bit k times', () => {
      // Regression (review): with b ≡ 0 and c ≡ 0 every probe hit bit a, so such a tag (1 in m² of them) was a false
      // positive whenever that one bit was set — at the filter's fill, not its k-th power.
      const f = new BloomFilter(3, 1e-7);
      const { m, k } = f as unknown as { m: number; k: number };
      const t = new Uint8Array(16);
      new DataView(t.buffer).setUint32(4, m); // b ≡ 0 mod m; a = 0, c = 0
      f.add(t);
      const bits = (f as unknown as { bits: Uint8Array }).bits;
      let set = 0;
      for (const byte of bits) for (let x = byte; x; x &= x - 1) set++;
      expect(set).to.be.greaterThan(k / 2);
    });

    it('testAndAdd answers has() then adds, counting a tag once', () => {
      const f = new BloomFilter(1000, 0.01);
      const ts = tags('bloom/test-and-add', 500);
      for (const t of ts) expect(f.testAndAdd(t)).to.equal(false);
      for (const t of ts) expect(f.testAndAdd(t)).to.equal(true);
      expect(f.count).to.equal(500);
    });

    it('below capacity, the rate is far lower', () => {
      const f = new BloomFilter(20_000, 0.01);
      for (const t of tags('bloom/half/in', 10_000)) f.add(t);
      let hits = 0;
      for (const t of tags('bloom/half/probe', 20_000)) if (f.has(t)) hits++;
      expect(hits / 20_000).to.be.lessThan(0.002);
    });
  });

  describe('ReplayFilter', () => {
    const keyA = new Uint8Array(32).fill(1);
    const keyB = new Uint8Array(32).fill(2);

    it('records a tag once, then reports it as seen, separately per onion key', () => {
      const f = new ReplayFilter({ capacity: 100, falsePositiveRate: 1e-6 });
      const [t1, t2] = tags('replay/basic', 2);
      expect(f.checkAndRecord(keyA, t1!)).to.equal(false);
      expect(f.checkAndRecord(keyA, t1!)).to.equal(true);
      expect(f.checkAndRecord(keyA, t2!)).to.equal(false);
      expect(f.checkAndRecord(keyB, t1!)).to.equal(false);
      expect(f.checkAndRecord(keyB, t1!)).to.equal(true);
    });

    it('tells onion keys apart by their bytes, even when the caller reuses one array for another key', () => {
      const f = new ReplayFilter({ capacity: 100, falsePositiveRate: 1e-6 });
      const [t] = tags('replay/reused-array', 1);
      const key = Uint8Array.from(keyA);
      expect(f.checkAndRecord(key, t!)).to.equal(false);
      key.set(keyB);
      expect(f.checkAndRecord(key, t!)).to.equal(false);
      expect(f.checkAndRecord(keyA, t!)).to.equal(true);
      expect(f.checkAndRecord(keyB, t!)).to.equal(true);
      expect(f.isFull(keyA)).to.equal(false);
    });

    it('is full at capacity, and forgetting a retired key frees its memory', () => {
      const f = new ReplayFilter({ capacity: 50, falsePositiveRate: 1e-6 });
      const ts = tags('replay/full', 50);
      ts.slice(0, 49).forEach((t) => f.checkAndRecord(keyA, t));
      expect(f.isFull(keyA)).to.equal(false);
      f.checkAndRecord(keyA, ts[49]!);
      expect(f.isFull(keyA)).to.equal(true);
      expect(f.isFull(keyB)).to.equal(false);
      f.checkAndRecord(keyB, ts[0]!);
      const both = f.bytes;
      f.forget(keyA);
      expect(f.bytes).to.equal(both / 2);
      expect(f.checkAndRecord(keyA, ts[0]!)).to.equal(false);
    });

    it('has the documented defaults: one million onions at 1e-7, holding only the first stage after one onion', () => {
      const f = new ReplayFilter();
      expect(f.capacity).to.equal(1_000_000);
      f.checkAndRecord(keyA, tags('replay/default', 1)[0]!);
      // Stage 0: 1 024 onions at 1e-7 · 1024/10^6 · 63/64, 86 631 bits (specs/circuits.md §3.4); a filter sized for the
      // whole capacity at once was 4 193 464 bytes.
      expect(f.bytes).to.equal(10_829);
    });
  });

  describe('ScalableBloomFilter', () => {
    it('holds memory in step with its count: stages of doubling capacity, cut to sum to the capacity', () => {
      const f = new ScalableBloomFilter(10_000, 1e-3);
      expect(f.byteLength).to.equal(0);
      const ts = tags('scalable/growth', 10_000);
      const sizes: number[] = [];
      ts.forEach((t, i) => {
        f.testAndAdd(t);
        if (i + 1 === 1 || i + 1 === REPLAY_FILTER_FIRST_STAGE + 1 || i + 1 === 10_000) sizes.push(f.byteLength);
      });
      expect(f.stageCount).to.equal(4); // 1 024 + 2 048 + 4 096 + 2 832
      expect(sizes[0]).to.equal(new BloomFilter(1024, ((1e-3 * 1024) / 10_000) * (63 / 64)).byteLength);
      expect(sizes[0]! * 5).to.be.lessThan(sizes[2]!);
      expect(sizes[1]! * 2).to.be.lessThan(sizes[2]!);
      expect(ts.every((t) => f.has(t) && f.testAndAdd(t))).to.equal(true);
      expect(f.count).to.be.within(9_990, 10_000); // a fresh tag may be a false positive, at most 0.1%
    });

    it('at capacity, its false-positive rate is within the designed bound (0.1% over 5 stages)', () => {
      // 100 000 probes; the stages' rates sum to 0.1% · 63/64: 98 expected, standard deviation 10; 4 sigma above.
      const f = new ScalableBloomFilter(20_000, 1e-3);
      for (const t of tags('scalable/fp/in', 20_000)) f.testAndAdd(t);
      expect(f.stageCount).to.equal(5);
      let hits = 0;
      for (const t of tags('scalable/fp/probe', 100_000)) if (f.has(t)) hits++;
      expect(hits / 100_000).to.be.within(0.0005, 0.0014);
    });

    it('past capacity, keeps recording in its last stage: no new stage, no tag forgotten', () => {
      const f = new ScalableBloomFilter(3000, 1e-3);
      const ts = tags('scalable/over', 4000);
      ts.forEach((t) => f.testAndAdd(t));
      expect(f.stageCount).to.equal(2);
      expect(f.count).to.be.at.least(3990); // past capacity, a fresh tag may be a false positive, as in any full filter
      expect(ts.every((t) => f.testAndAdd(t))).to.equal(true);
    });
  });
});
