/**
 * The gossip CONTROL messages (specs/directory.md §5): strict schemas, ordered and bounded lists, and the largest
 * messages fitting MAX_CONTROL_MESSAGE.
 */
import { expect } from 'chai';
import { encodeCbor } from '../../protocol/cbor.js';
import { decodeControl, encodeControl, MAX_ANNOUNCE_ENTRIES, MAX_CONTROL_MESSAGE, MAX_SUMMARY_ENTRIES, type ControlMessage } from '../../protocol/control.js';

/** Identity i (big-endian in the last four bytes): ascending with i. */
function id(i: number): Uint8Array {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(28, i);
  return b;
}

const PUB = 1_780_000_000_000; // a publication time in 2026: a 9-byte CBOR integer, as on the wire
const pairs = (from: number, n: number): [Uint8Array, number][] => Array.from({ length: n }, (_, i) => [id(from + i), PUB + i]);

function refuses(m: unknown): void {
  expect(() => decodeControl(encodeCbor(m)), JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes(${v.length})` : v)).slice(0, 120))
    .to.throw()
    .with.property('code', 'ERR_SCHEMA');
}

describe('gossip messages', () => {
  it('round-trip', () => {
    const ms: ControlMessage[] = [
      { t: 'gossip-digest', d: id(9), n: 3 },
      { t: 'gossip-summary', e: pairs(1, 3), after: null, more: false },
      { t: 'gossip-summary', e: pairs(10, 2), after: id(9), more: true },
      { t: 'gossip-summary', e: [], after: id(9), more: false },
      { t: 'gossip-want', ids: [id(1), id(2)] },
      { t: 'gossip-push', ds: [new Uint8Array(300)] },
      { t: 'gossip-announce', e: pairs(5, 2) },
    ];
    for (const m of ms) expect(decodeControl(encodeControl(m))).to.deep.equal(m);
  });

  it('gossip-announce: one to MAX_ANNOUNCE_ENTRIES pairs of a 32-byte identity and a uint, in ascending order', () => {
    refuses({ t: 'gossip-announce', e: [] });
    refuses({ t: 'gossip-announce', e: pairs(0, MAX_ANNOUNCE_ENTRIES + 1) });
    refuses({
      t: 'gossip-announce',
      e: [
        [id(2), PUB],
        [id(1), PUB],
      ],
    });
    refuses({
      t: 'gossip-announce',
      e: [
        [id(1), PUB],
        [id(1), PUB + 1],
      ],
    });
    refuses({ t: 'gossip-announce', e: [[id(1).subarray(1), PUB]] });
    refuses({ t: 'gossip-announce', e: [[id(1), -1]] });
    refuses({ t: 'gossip-announce', e: [[id(1), PUB, 0]] });
    refuses({ t: 'gossip-announce', e: [[id(1), PUB]], x: 1 });
  });

  it('gossip-summary: ascending identities above `after`, `after` and `more` required, a cut summary not empty', () => {
    refuses({ t: 'gossip-summary', e: pairs(1, 2) });
    refuses({ t: 'gossip-summary', e: pairs(1, 2), after: null });
    refuses({ t: 'gossip-summary', e: pairs(1, 2), more: false });
    refuses({
      t: 'gossip-summary',
      e: [
        [id(2), PUB],
        [id(1), PUB],
      ],
      after: null,
      more: false,
    });
    refuses({ t: 'gossip-summary', e: pairs(5, 2), after: id(5), more: false });
    refuses({ t: 'gossip-summary', e: pairs(5, 2), after: id(6), more: false });
    refuses({ t: 'gossip-summary', e: [], after: null, more: true });
    refuses({ t: 'gossip-summary', e: pairs(1, 2), after: new Uint8Array(31), more: false });
    refuses({ t: 'gossip-summary', e: pairs(0, MAX_SUMMARY_ENTRIES + 1), after: null, more: true });
  });

  it('gossip-want: at most MAX_SUMMARY_ENTRIES identities, strictly ascending, so none is named twice', () => {
    expect(decodeControl(encodeControl({ t: 'gossip-want', ids: [] }))).to.deep.equal({ t: 'gossip-want', ids: [] });
    refuses({ t: 'gossip-want', ids: Array.from({ length: MAX_SUMMARY_ENTRIES }, () => id(7)) });
    refuses({ t: 'gossip-want', ids: [id(1), id(1)] });
    refuses({ t: 'gossip-want', ids: [id(2), id(1)] });
    refuses({ t: 'gossip-want', ids: Array.from({ length: MAX_SUMMARY_ENTRIES + 1 }, (_, i) => id(i)) });
  });

  it('the largest summary, want and announcement fit one CONTROL message', () => {
    const summary = encodeControl({ t: 'gossip-summary', e: pairs(1, MAX_SUMMARY_ENTRIES), after: id(0), more: true });
    const want = encodeControl({ t: 'gossip-want', ids: Array.from({ length: MAX_SUMMARY_ENTRIES }, (_, i) => id(i)) });
    const announce = encodeControl({ t: 'gossip-announce', e: pairs(1, MAX_ANNOUNCE_ENTRIES) });
    for (const b of [summary, want, announce]) expect(b.length).to.be.at.most(MAX_CONTROL_MESSAGE);
    // 44 bytes per pair: an announcement of one descriptor is 66 bytes.
    expect(encodeControl({ t: 'gossip-announce', e: pairs(1, 1) }).length).to.equal(66);
    expect(summary.length).to.equal(220_069);
    expect(announce.length).to.equal(44_024);
  });
});
