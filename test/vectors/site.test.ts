/** specs/vectors/site.json against protocol/site-manifest.ts (specs/content.md §10–§11). */
import { expect } from 'chai';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import { formatLink, parseLink } from '../../protocol/content-link.js';
import { sskSecret, type SskKey } from '../../protocol/ssk.js';
import {
  createEditionHints,
  decodeSiteManifest,
  editionPeriods,
  encodeSiteManifest,
  hintName,
  MAX_SITE_ENTRIES,
  MAX_SITE_MANIFEST_BYTES,
  MAX_SITE_PATH_BYTES,
  MAX_SITE_PATH_DEPTH,
  openEditionHint,
  SITE_MAGIC,
} from '../../protocol/site-manifest.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { byteQueue, expectCode, hex, readVectors } from '../helpers/vectors.js';

interface SiteVectors {
  constants: { magic: string; maxManifestBytes: number; maxEntries: number; maxPathBytes: number; maxPathDepth: number };
  valid: { name: string; idx: string; files: { path: string; type: string; ref: string; size: number }[]; note?: string; bytes: string }[];
  invalid: { name: string; bytes: string; error: string }[];
  hint: {
    publisherSeed: string;
    publicKey: string;
    name: string;
    secret: string;
    link: string;
    edition: number;
    target: string;
    now: number;
    periods: string[];
    hintNonces: string;
    hints: { period: string; hintName: string; rk: string; record: string }[];
  };
  hintInvalid: { name: string; period: string; record: string; error: string }[];
}

describeEachBinding('vectors: site manifests and edition hints (specs/vectors/site.json)', () => {
  const v = readVectors<SiteVectors>('site.json');

  it('constants match the code', () => {
    expect(v.constants).to.deep.equal({
      magic: toHex(SITE_MAGIC),
      maxManifestBytes: MAX_SITE_MANIFEST_BYTES,
      maxEntries: MAX_SITE_ENTRIES,
      maxPathBytes: MAX_SITE_PATH_BYTES,
      maxPathDepth: MAX_SITE_PATH_DEPTH,
    });
  });

  for (const c of v.valid) {
    it(`valid: ${c.name} (fields ↔ bytes)`, () => {
      const m = decodeSiteManifest(hex(c.bytes));
      expect(m.idx).to.equal(c.idx);
      expect(m.note).to.equal(c.note);
      expect(m.files.map((f) => ({ path: f.path, type: f.type, ref: toHex(f.ref.rk) + toHex(f.ref.dk), size: f.size }))).to.deep.equal(c.files);
      const again = encodeSiteManifest({
        idx: c.idx,
        files: c.files.map((f) => ({ path: f.path, type: f.type, ref: { rk: hex(f.ref).slice(0, 32), dk: hex(f.ref).slice(32) }, size: f.size })),
        ...(c.note !== undefined ? { note: c.note } : {}),
      });
      expect(toHex(again)).to.equal(c.bytes);
    });
  }

  for (const c of v.invalid) {
    it(`invalid: ${c.name} → ${c.error}`, () => {
      expectCode(() => decodeSiteManifest(hex(c.bytes)), c.error);
    });
  }

  it('hints: periods, hint names, routing keys and records from the given nonces', () => {
    const h = v.hint;
    const publisher = IdentityKey.fromSeed(hex(h.publisherSeed));
    expect(toHex(publisher.publicKey)).to.equal(h.publicKey);
    expect(toHex(sskSecret(publisher.secretKey, h.name))).to.equal(h.secret);
    const key: SskKey = { publisher: publisher.publicKey, secret: hex(h.secret), name: h.name };
    expect(formatLink({ type: 'ssk', ...key })).to.equal(h.link);
    const parsed = parseLink(h.link);
    expect(parsed.type === 'ssk' && [toHex(parsed.publisher), toHex(parsed.secret), parsed.name]).to.deep.equal([h.publicKey, h.secret, h.name]);
    expect(editionPeriods(h.now)).to.deep.equal(h.periods);
    const q = byteQueue(hex(h.hintNonces));
    const made = createEditionHints(publisher.secretKey, key, h.edition, h.target, h.now, q.random);
    expect(q.remaining()).to.equal(0);
    expect(made.map((m) => ({ period: m.period, hintName: toHex(utf8(hintName(h.name, m.period))), rk: toHex(m.rk), record: toHex(m.bytes) }))).to.deep.equal(
      h.hints,
    );
    for (const x of h.hints) expect(openEditionHint(key, x.period, hex(x.record))).to.deep.equal({ edition: h.edition, target: h.target });
  });

  for (const c of v.hintInvalid) {
    it(`hint refused: ${c.name} → ${c.error}`, () => {
      expectCode(() => openEditionHint({ publisher: hex(v.hint.publicKey), secret: hex(v.hint.secret), name: v.hint.name }, c.period, hex(c.record)), c.error);
    });
  }
});
