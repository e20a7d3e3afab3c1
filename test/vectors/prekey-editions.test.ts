/** specs/vectors/prekey-editions.json against protocol/prekeys.ts (specs/messaging.md §9.6 "Editions"). */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { createPrekeyRecord, openPrekeyRecord, PREKEY_WINDOW_MS, prekeyWindowAt } from '../../protocol/prekeys.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { byteQueue, expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Vectors {
  identitySeed: string;
  epoch: number;
  window: number;
  windowMs: number;
  spkSeed: string;
  otkSeeds: string[];
  records: { name: string; version: 1 | 2; edition: number; created: number; otks: number[]; nonce: string; record: string }[];
  refused: { name: string; edition: number; created: number; writerRefuses: boolean; record: string; code: string }[];
}

const V = readVectors<Vectors>('prekey-editions.json');

describeEachBinding('vectors: prekey-editions.json', () => {
  const identity = () => createIdentity(hex(V.identitySeed));
  const spk = () => crypto().x25519Keypair(hex(V.spkSeed)).publicKey;
  const otk = (i: number) => crypto().x25519Keypair(hex(V.otkSeeds[i]!)).publicKey;

  it('the window is 12 hours and the vectors start one', () => {
    expect([V.windowMs, PREKEY_WINDOW_MS, prekeyWindowAt(V.window)]).to.deep.equal([12 * 3600_000, 12 * 3600_000, V.window]);
  });

  for (const v of V.records) {
    it(`record: ${v.name}`, () => {
      const bundle = { spk: spk(), created: v.created, otks: v.otks.map(otk), version: v.version };
      const r = createPrekeyRecord(identity(), V.epoch, v.edition, bundle, byteQueue(hex(v.nonce)).random);
      expect(toHex(r.bytes)).to.equal(v.record);
      const o = openPrekeyRecord(identity().publicKey, V.epoch, hex(v.record));
      expect([o.edition, o.bundle.created, o.bundle.version, toHex(o.bundle.spk), o.bundle.otks.map(toHex)]).to.deep.equal([
        v.edition,
        v.created,
        v.version,
        toHex(spk()),
        v.otks.map((i) => toHex(otk(i))),
      ]);
    });
  }

  for (const v of V.refused) {
    it(`refused: ${v.name} → ${v.code}`, () => {
      expectCode(() => openPrekeyRecord(identity().publicKey, V.epoch, hex(v.record)), v.code);
      if (v.writerRefuses)
        expectCode(
          () => createPrekeyRecord(identity(), V.epoch, v.edition, { spk: spk(), created: v.created, otks: [otk(0), otk(1)], version: 2 }),
          'ERR_SCHEMA',
        );
    });
  }
});
