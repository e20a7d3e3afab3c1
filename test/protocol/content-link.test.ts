/**
 * Content links (specs/content.md §5): chk and ssk links round trip, and a link with any one character changed is
 * refused with ERR_LINK_CHECKSUM or ERR_LINK_FORMAT — never accepted as some other (or the same) link. An ssk link
 * carries its secret; one of the first format (no secret) is refused with ERR_LINK_OUTDATED.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { crypto } from '../../crypto/index.js';
import { base32Decode, base32Encode, formatLink, parseLink, type ContentLink } from '../../protocol/content-link.js';
import { isAlliumError } from '../../protocol/errors.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
/** Characters a paste or a typo could bring in that are not base32 (digits 0/1/8/9 look like letters). */
const OUTSIDE = '0189-_.!';

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const chk = fc.record({ rk: bytes32, dk: bytes32, flags: fc.integer({ min: 0, max: 255 }) }).map((v) => ({ type: 'chk' as const, ...v }));
const name = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((s) => !/[\0-\x1f]/.test(s) && s.length <= 128);
const ssk = fc.record({ publisher: bytes32, secret: bytes32, name }).map((v) => ({ type: 'ssk' as const, ...v }));

function same(a: ContentLink, b: ContentLink): void {
  if (a.type === 'chk' && b.type === 'chk') {
    expect([toHex(b.rk), toHex(b.dk), b.flags]).to.deep.equal([toHex(a.rk), toHex(a.dk), a.flags]);
  } else if (a.type === 'ssk' && b.type === 'ssk') {
    expect([toHex(b.publisher), toHex(b.secret), b.name]).to.deep.equal([toHex(a.publisher), toHex(a.secret), a.name]);
  } else expect.fail(`type ${b.type} instead of ${a.type}`);
}

/** Every substitution of one character of the base32 part; returns the codes seen (null = accepted). */
function substitutions(link: string): Map<string | null, number> {
  const m = /^(allium:(?:chk|ssk)\/)([a-z2-7]+)(.*)$/.exec(link)!;
  const [, prefix, b32, rest] = m as unknown as [string, string, string, string];
  const seen = new Map<string | null, number>();
  for (let i = 0; i < b32.length; i++) {
    for (const c of ALPHABET + OUTSIDE) {
      if (c === b32[i]) continue;
      const changed = prefix + b32.slice(0, i) + c + b32.slice(i + 1) + rest;
      const code = codeOf(() => parseLink(changed));
      if (code === null) expect.fail(`accepted ${changed} (position ${i}, ${b32[i]} -> ${c})`);
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
  }
  return seen;
}

describe('protocol/content-link', () => {
  it('base32 round trips any bytes and refuses non-canonical text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        const s = base32Encode(b);
        expect(s).to.match(/^[a-z2-7]*$/);
        expect(toHex(base32Decode(s))).to.equal(toHex(b));
      }),
    );
    // 1 byte = 8 bits: two characters, the second carrying 3 bits and 2 unused zero bits.
    expect(base32Encode(Uint8Array.of(0xff))).to.equal('74');
    expect(codeOf(() => base32Decode('75'))).to.equal('ERR_LINK_FORMAT');
    expect(codeOf(() => base32Decode('747'))).to.equal('ERR_LINK_FORMAT'); // a length no byte string encodes to
  });

  it('chk links round trip', () => {
    fc.assert(
      fc.property(chk, (l) => {
        const text = formatLink(l);
        expect(text).to.match(/^allium:chk\/[a-z2-7]{111}$/);
        same(l, parseLink(text));
        same(l, parseLink(`  ${text.toUpperCase().replace('ALLIUM:CHK', 'allium:chk')}\n`)); // pasted with spaces, or upper case
      }),
    );
  });

  it('ssk links round trip, names percent-encoded', () => {
    fc.assert(
      fc.property(ssk, (l) => {
        const text = formatLink(l);
        expect(text).to.match(/^allium:ssk\/[a-z2-7]{111}\//);
        same(l, parseLink(text));
      }),
    );
    const l = { type: 'ssk' as const, publisher: new Uint8Array(32).fill(9), secret: new Uint8Array(32).fill(8), name: 'my blog/2024 ü' };
    expect(formatLink(l)).to.match(/\/my%20blog%2F2024%20%C3%BC$/);
  });

  it('every single-character substitution in a chk link is caught', () => {
    fc.assert(
      fc.property(chk, (l) => {
        const seen = substitutions(formatLink(l));
        expect([...seen.keys()].sort()).to.deep.equal(['ERR_LINK_CHECKSUM', 'ERR_LINK_FORMAT']);
      }),
      { numRuns: 10 },
    );
  });

  it('every single-character substitution in an ssk link is caught, and a changed name too', () => {
    fc.assert(
      fc.property(ssk, (l) => {
        substitutions(formatLink(l));
      }),
      { numRuns: 10 },
    );
    const text = formatLink({ type: 'ssk', publisher: new Uint8Array(32).fill(3), secret: new Uint8Array(32).fill(4), name: 'diary' });
    expect(codeOf(() => parseLink(text.replace(/diary$/, 'diarz')))).to.equal('ERR_LINK_CHECKSUM');
  });

  it('refuses an ssk link of the first format (key and checksum, no secret), or of another version, with ERR_LINK_OUTDATED', () => {
    const publisher = new Uint8Array(32).fill(5);
    // The first format, as it was written: base32(pk | MAC16("ssk" | pk | name)[0..4)) — a valid link then.
    const sum = crypto()
      .hash(16, concatBytes(utf8('ssk'), publisher, utf8('diary')), utf8('allium-v1:link:checksum'))
      .subarray(0, 4);
    const v1 = `allium:ssk/${base32Encode(concatBytes(publisher, sum))}/diary`;
    expect(v1).to.match(/^allium:ssk\/[a-z2-7]{58}\/diary$/);
    expect(codeOf(() => parseLink(v1))).to.equal('ERR_LINK_OUTDATED');
    const v3 = `allium:ssk/${base32Encode(concatBytes(Uint8Array.of(3), publisher, new Uint8Array(36)))}/diary`;
    expect(codeOf(() => parseLink(v3))).to.equal('ERR_LINK_OUTDATED');
  });

  it('refuses what is not a link with ERR_LINK_FORMAT', () => {
    const good = formatLink({ type: 'chk', rk: new Uint8Array(32), dk: new Uint8Array(32).fill(1), flags: 0 });
    for (const bad of ['', 'allium:', 'http://example.com', 'allium:xyz/abc', good.slice(0, -8), `${good}aaaaaaaa`, `${good}/name`, 'allium:ssk/aaaa']) {
      expect(
        codeOf(() => parseLink(bad)),
        JSON.stringify(bad),
      ).to.equal('ERR_LINK_FORMAT');
    }
  });
});
