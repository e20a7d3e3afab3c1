/** Site manifest limits that are too large for the vector file (specs/content.md §10, specs/limits.md). */
import { expect } from 'chai';
import { concatBytes } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  checkSitePath,
  decodeSiteManifest,
  encodeSiteManifest,
  MAX_SITE_ENTRIES,
  MAX_SITE_MANIFEST_BYTES,
  SITE_MAGIC,
  sortSiteEntries,
} from '../../protocol/site-manifest.js';
import { LimitError } from '../../protocol/errors.js';
import { expectCode } from '../helpers/vectors.js';

const ref = new Uint8Array(64);
const name = (i: number): string => `f${String(i).padStart(5, '0')}.txt`;

describe('protocol: site manifest limits', () => {
  it(`takes ${MAX_SITE_ENTRIES} entries and refuses one more with ERR_LIMIT (MAX_SITE_ENTRIES) before validating them`, () => {
    const files = Array.from({ length: MAX_SITE_ENTRIES }, (_, i) => ({
      path: name(i),
      type: 'text/plain',
      ref: { rk: ref.slice(0, 32), dk: ref.slice(32) },
      size: 1,
    }));
    const ok = encodeSiteManifest({ idx: name(0), files });
    expect(decodeSiteManifest(ok).files).to.have.length(MAX_SITE_ENTRIES);
    const tooMany = concatBytes(
      SITE_MAGIC,
      encodeCbor({ v: 1, idx: name(0), files: Array.from({ length: MAX_SITE_ENTRIES + 1 }, (_, i) => [name(i), 'text/plain', ref, 1]) }),
    );
    const e = expectCode(() => decodeSiteManifest(tooMany), 'ERR_LIMIT');
    expect((e as LimitError).limit).to.equal('MAX_SITE_ENTRIES');
  });

  it('refuses a manifest longer than MAX_SITE_MANIFEST_BYTES before decoding it', () => {
    const big = new Uint8Array(MAX_SITE_MANIFEST_BYTES + 1);
    big.set(SITE_MAGIC);
    const e = expectCode(() => decodeSiteManifest(big), 'ERR_LIMIT');
    expect((e as LimitError).limit).to.equal('MAX_SITE_MANIFEST_BYTES');
  });

  it('sorts entries by UTF-8 bytes, not UTF-16 units', () => {
    // U+FF5E (3 UTF-8 bytes EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in bytes, after it in UTF-16 units.
    const sorted = sortSiteEntries([{ path: '\u{1F600}' }, { path: '\uFF5E' }]).map((e) => e.path);
    expect(sorted).to.deep.equal(['\uFF5E', '\u{1F600}']);
  });

  it('checks paths the gateway takes from a request the same way', () => {
    expect(() => checkSitePath('a/b/c.html')).to.not.throw();
    for (const p of ['', '/a', 'a/', 'a//b', '../a', 'a/./b', 'a\\b', 'a\u0000b']) expectCode(() => checkSitePath(p), 'ERR_SITE_MANIFEST');
    expectCode(() => checkSitePath('x'.repeat(513)), 'ERR_LIMIT');
  });
});
