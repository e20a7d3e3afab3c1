/**
 * The setup onion's header is the same size at every hop and reveals neither the path length nor the hop's
 * position (specs/circuits.md §3.6): every hop receives 816 bytes, and for each (path length, position) the headers
 * look uniformly random bit by bit and region by region, so positions cannot be told apart by those statistics.
 * Inputs are seeded: the test is deterministic, and its bounds are 6 sigma so a correct design passes by a wide
 * margin while any constant or biased field (zero padding, a visible terminal slot, an unfilled tail) fails.
 */
import { expect } from 'chai';
import { seededRandom } from '../../crypto/drbg.js';
import { MAX_HOPS, ONION_HEADER_LEN, ONION_SLOT_LEN } from '../../protocol/constants.js';
import { onionTo, runPath, testRelays, type TestRelay } from '../helpers/circuit.js';

const SAMPLES = 300;
const SIGMAS = 6;
const STAT_LENGTHS = [1, 3, 8];

/** Header regions: X, gamma, then beta's eight 96-byte slots. */
const REGIONS: [string, number, number][] = [
  ['X', 0, 32],
  ['gamma', 32, 48],
  ...Array.from({ length: MAX_HOPS }, (_, k): [string, number, number] => [`beta slot ${k}`, 48 + k * ONION_SLOT_LEN, 48 + (k + 1) * ONION_SLOT_LEN]),
];

describe('property: setup-onion headers are constant-size and look uniform', () => {
  let relays: TestRelay[];
  /** headers[n][i] = the SAMPLES headers hop i received on paths of n hops. */
  const headers = new Map<number, Uint8Array[][]>();

  before(function () {
    this.timeout(60_000);
    relays = testRelays(MAX_HOPS, 'property/onion-uniformity');
    for (const n of STAT_LENGTHS) {
      const perHop: Uint8Array[][] = Array.from({ length: n }, () => []);
      const random = seededRandom(`onion-uniformity/${n}`);
      for (let s = 0; s < SAMPLES; s++) {
        const path = relays.slice(0, n);
        runPath(path, onionTo(path, { random }).header, { random }).headers.forEach((h, i) => perHop[i]!.push(h));
      }
      headers.set(n, perHop);
    }
  });

  it('every hop of every path length 1..8 receives exactly 816 bytes', () => {
    for (let n = 1; n <= MAX_HOPS; n++) {
      for (let trial = 0; trial < 3; trial++) {
        const path = relays.slice(0, n);
        const { headers: got } = runPath(path, onionTo(path).header);
        expect(got.map((h) => h.length)).to.deep.equal(new Array(n).fill(ONION_HEADER_LEN));
      }
    }
  });

  it(`every bit position is one with frequency 1/2 ± ${SIGMAS} sigma, for each path length and position`, () => {
    const bound = SIGMAS * Math.sqrt(0.25 / SAMPLES);
    for (const [n, perHop] of headers) {
      perHop.forEach((hs, i) => {
        const ones = new Uint32Array(ONION_HEADER_LEN * 8);
        for (const h of hs) for (let bit = 0; bit < ones.length; bit++) ones[bit]! += (h[bit >> 3]! >> (bit & 7)) & 1;
        let worst = 0;
        let worstBit = -1;
        ones.forEach((c, bit) => {
          const d = Math.abs(c / SAMPLES - 0.5);
          if (d > worst) [worst, worstBit] = [d, bit];
        });
        expect(worst, `path ${n}, hop ${i}: bit ${worstBit} (byte ${worstBit >> 3}) deviates`).to.be.lessThan(bound);
      });
    }
  });

  it(`the mean byte of every region is 127.5 ± ${SIGMAS} sigma at every position, so positions look alike`, () => {
    const byteSd = Math.sqrt((256 * 256 - 1) / 12);
    const means: number[][] = REGIONS.map(() => []);
    for (const [n, perHop] of headers) {
      perHop.forEach((hs, i) => {
        REGIONS.forEach(([name, from, to], r) => {
          let sum = 0;
          for (const h of hs) for (let k = from; k < to; k++) sum += h[k]!;
          const count = SAMPLES * (to - from);
          const mean = sum / count;
          const bound = (SIGMAS * byteSd) / Math.sqrt(count);
          expect(Math.abs(mean - 127.5), `path ${n}, hop ${i}, ${name}: mean ${mean.toFixed(2)}`).to.be.lessThan(bound);
          means[r]!.push(mean);
        });
      });
    }
    // and no region separates one (length, position) from another by more than the two-sample bound
    REGIONS.forEach(([name, from, to], r) => {
      const spread = Math.max(...means[r]!) - Math.min(...means[r]!);
      const bound = (SIGMAS * byteSd * Math.SQRT2) / Math.sqrt(SAMPLES * (to - from));
      expect(spread, `${name}: region means differ across positions`).to.be.lessThan(bound);
    });
  });
});
