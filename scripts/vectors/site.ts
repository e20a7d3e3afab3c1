/**
 * specs/vectors/site.json: site manifests (specs/content.md §10): valid manifests with their fields and bytes, and
 * hostile ones with the code a reader refuses each with; edition hints (§11): the periods of a time, the hint names,
 * and hint records made from fixed keys and nonces, with records that must not open as a hint.
 */
import { IdentityKey } from '../../crypto/keys.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { formatLink } from '../../protocol/content-link.js';
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
  type SiteManifest,
} from '../../protocol/site-manifest.js';
import { createRecord, sskSecret, type SskKey } from '../../protocol/ssk.js';
import { check, errorCodeOf, expectCode, recordingRandom, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** A fixed clock for the vectors: 2026-12-06 12:00:00 UTC. */
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);

type Entry = [string, string, Uint8Array, number];

function ref(seed: string): Uint8Array {
  return seeded(`site/ref/${seed}`)(64);
}

/** A manifest body encoded as given (no checks), for the hostile cases. */
function raw(body: Record<string, unknown>): Uint8Array {
  return concatBytes(SITE_MAGIC, encodeCbor(body));
}

function manifestOf(idx: string, files: Entry[], note?: string): SiteManifest {
  return {
    idx,
    files: files.map(([path, type, r, size]) => ({ path, type, ref: { rk: r.slice(0, 32), dk: r.slice(32) }, size })),
    ...(note !== undefined ? { note } : {}),
  };
}

export function siteFile(): VectorFile {
  const validCases: { name: string; idx: string; files: Entry[]; note?: string }[] = [
    { name: 'one page', idx: 'index.html', files: [['index.html', 'text/html', ref('index'), 1234]] },
    {
      name: 'a site with a subfolder, media and a note',
      idx: 'index.html',
      files: [
        ['about.html', 'text/html;charset=utf-8', ref('about'), 900],
        ['img/garlic.png', 'image/png', ref('png'), 40_000],
        ['index.html', 'text/html', ref('index'), 1234],
        ['style.css', 'text/css', ref('css'), 321],
        ['video/leeks.webm', 'video/webm', ref('webm'), 5_000_000],
      ],
      note: 'Edition 2: a page about garlic.',
    },
    {
      name: 'non-ASCII paths in UTF-8 byte order (capitals before small letters, é after z)',
      idx: 'Zwiebel.html',
      files: [
        ['Zwiebel.html', 'text/html', ref('z'), 10],
        ['a b/c.txt', 'text/plain', ref('ab'), 0],
        ['a-b.txt', 'text/plain', ref('a-b'), 1],
        ['zz.txt', 'text/plain', ref('zz'), 2],
        ['ép.txt', 'text/plain', ref('ep'), 3],
      ],
    },
  ];
  const valid = validCases.map((c) => {
    const bytes = encodeSiteManifest(manifestOf(c.idx, c.files, c.note));
    const back = decodeSiteManifest(bytes);
    check(back.files.length === c.files.length && back.idx === c.idx, `site manifest "${c.name}" decodes`);
    return {
      name: c.name,
      idx: c.idx,
      files: c.files.map(([path, type, r, size]) => ({ path, type, ref: toHex(r), size })),
      ...(c.note !== undefined ? { note: c.note } : {}),
      bytes: toHex(bytes),
    };
  });

  const page: Entry = ['index.html', 'text/html', ref('index'), 1234];
  const files = (...e: Entry[]): unknown[] => e;
  const invalidCases: [string, Uint8Array, string][] = [
    ['no magic', encodeCbor({ v: 1, idx: 'index.html', files: files(page) }), 'ERR_SITE_MANIFEST'],
    ['version 2', raw({ v: 2, idx: 'index.html', files: files(page) }), 'ERR_SCHEMA'],
    ['an unknown key', raw({ v: 1, idx: 'index.html', files: files(page), x: 1 }), 'ERR_SCHEMA'],
    ['no files', raw({ v: 1, idx: 'index.html', files: [] }), 'ERR_SCHEMA'],
    ['a reference of 63 bytes', raw({ v: 1, idx: 'index.html', files: [['index.html', 'text/html', ref('x').slice(0, 63), 1]] }), 'ERR_SCHEMA'],
    ['a size above 2^40', raw({ v: 1, idx: 'index.html', files: [['index.html', 'text/html', ref('x'), 2 ** 40 + 1]] }), 'ERR_SCHEMA'],
    ['a note of 1025 characters', raw({ v: 1, idx: 'index.html', files: files(page), note: 'n'.repeat(1025) }), 'ERR_SCHEMA'],
    ['the default document is not a file', raw({ v: 1, idx: 'missing.html', files: files(page) }), 'ERR_SITE_MANIFEST'],
    ['paths out of order', raw({ v: 1, idx: 'index.html', files: files(page, ['about.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a path twice', raw({ v: 1, idx: 'index.html', files: files(page, page) }), 'ERR_SITE_MANIFEST'],
    [
      'a path inside a file',
      raw({ v: 1, idx: 'index.html', files: files(['a', 'text/plain', ref('a'), 1], ['a/b', 'text/plain', ref('b'), 1], page) }),
      'ERR_SITE_MANIFEST',
    ],
    [
      'a file inside a file, a sibling between',
      raw({
        v: 1,
        idx: 'index.html',
        files: files(['a', 'text/plain', ref('a'), 1], ['a b', 'text/plain', ref('b'), 1], ['a/c', 'text/plain', ref('c'), 1], page),
      }),
      'ERR_SITE_MANIFEST',
    ],
    ['a leading slash', raw({ v: 1, idx: '/index.html', files: files(['/index.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a dot-dot segment', raw({ v: 1, idx: '../index.html', files: files(['../index.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a dot segment', raw({ v: 1, idx: './index.html', files: files(['./index.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['an empty segment', raw({ v: 1, idx: 'a//index.html', files: files(['a//index.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a trailing slash', raw({ v: 1, idx: 'a/', files: files(['a/', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a backslash', raw({ v: 1, idx: 'a\\b.html', files: files(['a\\b.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a control character', raw({ v: 1, idx: 'a\nb.html', files: files(['a\nb.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['DEL', raw({ v: 1, idx: 'a\u007fb.html', files: files(['a\u007fb.html', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['an empty path', raw({ v: 1, idx: '', files: files(['', 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a segment of 256 bytes', raw({ v: 1, idx: 's'.repeat(256), files: files(['s'.repeat(256), 'text/html', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    [
      `a path of ${MAX_SITE_PATH_BYTES + 1} bytes`,
      raw({
        v: 1,
        idx: 'p',
        files: files(['p', 'text/html', ref('a'), 1], [`q/${'r'.repeat(200)}/${'s'.repeat(200)}/${'t'.repeat(109)}`, 'text/html', ref('b'), 1]),
      }),
      'ERR_LIMIT',
    ],
    [
      `a path of ${MAX_SITE_PATH_DEPTH + 1} segments`,
      raw({
        v: 1,
        idx: 'p',
        files: files(
          ['p', 'text/html', ref('a'), 1],
          [
            Array(MAX_SITE_PATH_DEPTH + 1)
              .fill('q')
              .join('/'),
            'text/html',
            ref('b'),
            1,
          ],
        ),
      }),
      'ERR_LIMIT',
    ],
    ['a media type in capitals', raw({ v: 1, idx: 'index.html', files: files(['index.html', 'Text/HTML', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a media type with a space', raw({ v: 1, idx: 'index.html', files: files(['index.html', 'text/html; charset=utf-8', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a media type with another parameter', raw({ v: 1, idx: 'index.html', files: files(['index.html', 'text/html;q=1', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['a media type with no subtype', raw({ v: 1, idx: 'index.html', files: files(['index.html', 'text', ref('a'), 1]) }), 'ERR_SITE_MANIFEST'],
    ['trailing bytes after the CBOR', concatBytes(raw({ v: 1, idx: 'index.html', files: files(page) }), Uint8Array.of(0)), 'ERR_CBOR_MALFORMED'],
    ['only the magic', SITE_MAGIC, 'ERR_CBOR_MALFORMED'],
  ];
  const invalid = invalidCases.map(([name, bytes, code]) => ({
    name,
    bytes: toHex(bytes),
    error: expectCode(
      errorCodeOf(() => decodeSiteManifest(bytes), `site manifest "${name}"`),
      code,
      `site manifest "${name}"`,
    ),
  }));

  // Edition hints.
  const publisherSeed = seeded('site/publisher')(32);
  const publisher = IdentityKey.fromSeed(publisherSeed);
  const name = 'garden';
  const edition = 7;
  const secret = sskSecret(publisher.secretKey, name);
  const key: SskKey = { publisher: publisher.publicKey, secret, name };
  const target = formatLink({ type: 'chk', rk: seeded('site/target-rk')(32), dk: seeded('site/target-dk')(32), flags: 0 });
  const rec = recordingRandom('site/hint-nonces');
  const hints = createEditionHints(publisher.secretKey, key, edition, target, NOW, rec.random).map((h) => {
    const opened = openEditionHint(key, h.period, h.bytes);
    check(opened.edition === edition && opened.target === target, `hint ${h.period} opens`);
    return { period: h.period, hintName: toHex(utf8(hintName(name, h.period))), rk: toHex(h.rk), record: toHex(h.bytes) };
  });
  const nonces = rec.taken();
  const other = IdentityKey.fromSeed(seeded('site/other')(32));
  const day = editionPeriods(NOW)[0]!;
  const under = (k: SskKey, recordName: string): SskKey => ({ ...k, name: recordName });
  const hintInvalidCases: [string, Uint8Array, string][] = [
    ['the main record (not under the hint name)', createRecord(publisher.secretKey, key, edition, target, seeded('site/main')).bytes, 'ERR_CONTENT'],
    [
      'a hint of another day',
      createRecord(publisher.secretKey, under(key, hintName(name, 'd2026-12-05')), edition, target, seeded('site/other-day')).bytes,
      'ERR_CONTENT',
    ],
    [
      'a hint signed by another publisher',
      createRecord(other.secretKey, { publisher: other.publicKey, secret, name: hintName(name, day) }, edition, target, seeded('site/other-key')).bytes,
      'ERR_CONTENT',
    ],
    [
      'a hint under another secret',
      createRecord(
        publisher.secretKey,
        { ...under(key, hintName(name, day)), secret: seeded('site/other-secret')(32) },
        edition,
        target,
        seeded('site/other-secret-nonce'),
      ).bytes,
      'ERR_CONTENT',
    ],
    [
      'a hint whose target is an ssk link',
      createRecord(publisher.secretKey, under(key, hintName(name, day)), edition, formatLink({ type: 'ssk', ...key }), seeded('site/ssk-target')).bytes,
      'ERR_SITE_MANIFEST',
    ],
    [
      'a hint whose target is not a link',
      createRecord(publisher.secretKey, under(key, hintName(name, day)), edition, 'http://example.com/', seeded('site/not-link')).bytes,
      'ERR_SITE_MANIFEST',
    ],
  ];
  const hintInvalid = hintInvalidCases.map(([what, bytes, code]) => ({
    name: what,
    period: day,
    record: toHex(bytes),
    error: expectCode(
      errorCodeOf(() => openEditionHint(key, day, bytes), `hint "${what}"`),
      code,
      `hint "${what}"`,
    ),
  }));

  return {
    description:
      'Site manifests (specs/content.md §10) and edition hints (§11). `valid`: manifests with their fields (ref = rk | dk, hex) and exact bytes (magic, then deterministic CBOR). `invalid`: bytes a reader refuses, with the error code. `hints`: for a publisher seed, name, link secret (the default, derived from the key and the name: content.md §4), edition, target and time (ms, UTC), the periods, each hint name (hex of its UTF-8), the routing key and the record made with the 24-byte nonces of `hintNonces` taken in order. `hintInvalid`: records that must not open as the hint of `period`, with their codes.',
    version: VECTORS_VERSION,
    constants: {
      magic: toHex(SITE_MAGIC),
      maxManifestBytes: MAX_SITE_MANIFEST_BYTES,
      maxEntries: MAX_SITE_ENTRIES,
      maxPathBytes: MAX_SITE_PATH_BYTES,
      maxPathDepth: MAX_SITE_PATH_DEPTH,
    },
    valid,
    invalid,
    hint: {
      publisherSeed: toHex(publisherSeed),
      publicKey: toHex(publisher.publicKey),
      name,
      secret: toHex(secret),
      link: formatLink({ type: 'ssk', ...key }),
      edition,
      target,
      now: NOW,
      periods: editionPeriods(NOW),
      hintNonces: nonces,
      hints,
    },
    hintInvalid,
  };
}
