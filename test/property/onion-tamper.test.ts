/**
 * The setup onion refuses tampering and replays (specs/circuits.md §3.3, §3.4): any flipped bit of the header a hop
 * receives fails its MAC (or, in X, may give a small-order point), a replayed onion is refused under the same onion
 * key, and the replay tag ignores X's top bit, which X25519 ignores too.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { seededRandom } from '../../crypto/drbg.js';
import { toHex } from '../../protocol/bytes.js';
import { MAX_HOPS, ONION_HEADER_LEN, ONION_X_LEN } from '../../protocol/constants.js';
import { onionReplayTag, processOnion } from '../../protocol/onion.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { noReplay, onionTo, runPath, testRelays, type TestRelay } from '../helpers/circuit.js';
import { byteQueue, expectCode } from '../helpers/vectors.js';

const flipped = (h: Uint8Array, bit: number) => {
  const b = Uint8Array.from(h);
  b[bit >> 3]! ^= 1 << (bit & 7);
  return b;
};

describe('property: setup-onion tampering and replay', () => {
  let relays: TestRelay[];
  before(() => {
    relays = testRelays(MAX_HOPS, 'property/onion-tamper');
  });
  const processAt = (i: number, header: Uint8Array, replay = noReplay) =>
    processOnion(header, { identity: relays[i]!.identity, onionKeys: [relays[i]!.onionKey], replay });
  /** The code a tampered header gets; flips in X may also land on a small-order point. */
  const expectRefused = (i: number, header: Uint8Array, bit: number) => {
    try {
      processAt(i, header);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (bit < ONION_X_LEN * 8 && code === 'ERR_BAD_POINT') return;
      expect(code, `bit ${bit}`).to.equal('ERR_ONION_MAC');
      return;
    }
    expect.fail(`bit ${bit}: a tampered header was accepted`);
  };

  it('every one of the 6528 bits of a first hop’s header is protected', () => {
    const guard = new ReplayFilter({ capacity: 100 });
    const header = onionTo(relays.slice(0, 3), { random: seededRandom('onion-tamper/all-bits') }).header;
    for (let bit = 0; bit < ONION_HEADER_LEN * 8; bit++) expectRefused(0, flipped(header, bit), bit);
    // the refusals recorded nothing: the untouched onion is still fresh, and only then a replay
    expect(processAt(0, header, guard).kind).to.equal('extend');
    expectCode(() => processAt(0, header, guard), 'ERR_ONION_REPLAY');
  });

  it('a flipped bit is refused at every hop position and path length', () => {
    const arb = fc
      .record({ n: fc.integer({ min: 1, max: MAX_HOPS }), at: fc.nat(), bit: fc.nat({ max: ONION_HEADER_LEN * 8 - 1 }), seed: fc.nat() })
      .map((r) => ({ ...r, at: r.at % r.n }));
    fc.assert(
      fc.property(arb, ({ n, at, bit, seed }) => {
        const onion = onionTo(relays.slice(0, n), { random: seededRandom(`onion-tamper/${seed}`) });
        const { headers } = runPath(relays.slice(0, at + 1), onion.header, {});
        expectRefused(at, flipped(headers[at]!, bit), bit);
      }),
      { numRuns: 100 },
    );
  });

  it('a replayed onion is refused with ERR_ONION_REPLAY, at the first hop and further on', () => {
    const guards = relays.map(() => new ReplayFilter({ capacity: 100 }));
    const onion = onionTo(relays.slice(0, 3));
    const { headers } = runPath(relays.slice(0, 3), onion.header, { replay: (i) => guards[i]! });
    for (let i = 0; i < 3; i++) expectCode(() => processAt(i, headers[i]!, guards[i]!), 'ERR_ONION_REPLAY');
    // another onion along the same path is fresh
    runPath(relays.slice(0, 3), onionTo(relays.slice(0, 3)).header, { replay: (i) => guards[i]! });
  });

  it('the replay tag ignores the top bit of X', () => {
    const X = onionTo(relays.slice(0, 1)).header.subarray(0, ONION_X_LEN);
    expect(toHex(onionReplayTag(flipped(X, 255)))).to.equal(toHex(onionReplayTag(X)));
    expect(toHex(onionReplayTag(flipped(X, 254)))).to.not.equal(toHex(onionReplayTag(X)));
  });

  it('an onion re-sent with only X’s top bit changed (and a MAC made for it) is still a replay', () => {
    // Same ephemeral secret and padding; only the random top bit of X differs (calls: x, top bit, padding).
    const x = seededRandom('onion-tamper/top-bit')(32);
    const pad = new Uint8Array(768 - 96);
    const build = (top: number) => onionTo(relays.slice(0, 1), { random: byteQueue(Uint8Array.from([...x, top, ...pad])).random }).header;
    const a = build(0x00);
    const b = build(0x80);
    expect(toHex(a.subarray(0, 31))).to.equal(toHex(b.subarray(0, 31)));
    expect(a[31]! ^ b[31]!).to.equal(0x80);
    const guard = new ReplayFilter({ capacity: 100 });
    expect(processAt(0, a, guard).kind).to.equal('terminal');
    expectCode(() => processAt(0, b, guard), 'ERR_ONION_REPLAY');
  });
});
