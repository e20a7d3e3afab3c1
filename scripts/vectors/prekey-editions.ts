/**
 * specs/vectors/prekey-editions.json: prekey records whose editions say only their publication window
 * (specs/messaging.md §9.6 "Editions"). `records`: records of one identity for one epoch — version 2 (the first
 * edition of a window, a later one, the last one a window allows) and version 1 (a record of before windows, still
 * read) — with what opening them gives; `refused`: records signed by the right key that a reader refuses, because
 * their edition or "c" is finer than the window, or their bundle's version is unknown, with the code.
 */
import { crypto } from '../../crypto/index.js';
import { createIdentity, type Identity } from '../../protocol/address.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { blindSigningKey, signBlinded } from '../../protocol/key-blinding.js';
import { mailboxEpochAt } from '../../protocol/mailbox.js';
import {
  createPrekeyRecord,
  openPrekeyRecord,
  PREKEY_EDITIONS_PER_WINDOW,
  PREKEY_WINDOW_MS,
  prekeyRecordKeys,
  prekeyWindowAt,
  type PrekeyBundle,
} from '../../protocol/prekeys.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** 2025-06-15 12:00 UTC: the start of a window (and the second window of its epoch). */
const WINDOW = 1_749_988_800_000;

/** A record signed as createPrekeyRecord signs it, with any bundle bytes (for the refused ones). */
function rawRecord(identity: Identity, epoch: number, edition: number, bundle: Uint8Array, nonce: Uint8Array): Uint8Array {
  const c = crypto();
  const { rk, nh, key } = prekeyRecordKeys(identity.publicKey, epoch);
  const ct = concatBytes(nonce, c.xaeadEncrypt(bundle, rk, nonce, key));
  const signing = blindSigningKey(identity, epoch);
  const ed = new Uint8Array(8);
  new DataView(ed.buffer).setBigUint64(0, BigInt(edition));
  const sig = signBlinded(signing, concatBytes(utf8('allium-v1 ssk'), rk, ed, ct));
  return encodeCbor({ v: 1, pk: signing.publicKey, nh, ed: edition, ct, sig });
}

export function prekeyEditionsFile(): VectorFile {
  check(prekeyWindowAt(WINDOW) === WINDOW && prekeyWindowAt(WINDOW + PREKEY_WINDOW_MS - 1) === WINDOW, 'WINDOW starts a window');
  const identitySeed = seeded('prekey-editions/identity')(32);
  const identity = createIdentity(identitySeed);
  const epoch = mailboxEpochAt(WINDOW);
  const spkSeed = seeded('prekey-editions/spk')(32);
  const otkSeeds = [0, 1].map((i) => seeded(`prekey-editions/otk-${i}`)(32));
  const spk = crypto().x25519Keypair(spkSeed).publicKey;
  const otks = otkSeeds.map((s) => crypto().x25519Keypair(s).publicKey);
  // The signed prekey was made two days earlier, at 09:41:07.123 UTC; version 2 says only its window.
  const made = WINDOW - 2 * 86400_000 - 2 * 3600_000 - 18 * 60_000 - 52_877;

  const cases: [string, number, PrekeyBundle][] = [
    [
      'version 2, the first edition of a window (its start + a random offset below 2048)',
      WINDOW + 1234,
      { spk, created: prekeyWindowAt(made), otks, version: 2 },
    ],
    ['version 2, a later edition of the same window (the last + 1)', WINDOW + 1235, { spk, created: prekeyWindowAt(made), otks: otks.slice(1), version: 2 }],
    ['version 2, the last edition a window allows', WINDOW + PREKEY_EDITIONS_PER_WINDOW - 1, { spk, created: prekeyWindowAt(made), otks: [], version: 2 }],
    ['version 1 (before windows): edition and creation in ms, still read', WINDOW + 5 * 3600_000 + 17_042, { spk, created: made, otks, version: 1 }],
  ];
  const records = cases.map(([name, edition, bundle], i) => {
    const nonceSeed = `prekey-editions/nonce-${i}`;
    const r = createPrekeyRecord(identity, epoch, edition, bundle, seeded(nonceSeed));
    const o = openPrekeyRecord(identity.publicKey, epoch, r.bytes);
    check(o.edition === edition && o.bundle.created === bundle.created && o.bundle.version === bundle.version, `record "${name}" opens`);
    return {
      name,
      version: bundle.version,
      edition,
      created: bundle.created,
      otks: bundle.otks.map((k) => otks.findIndex((x) => toHex(x) === toHex(k))),
      nonce: toHex(seeded(nonceSeed)(24)),
      record: toHex(r.bytes),
    };
  });

  const c2 = prekeyWindowAt(made);
  const refusedCases: [string, number, Record<string, unknown>, boolean][] = [
    // [name, edition, bundle fields, whether createPrekeyRecord refuses it too]
    ['version 2, edition past the window (start + 4096)', WINDOW + PREKEY_EDITIONS_PER_WINDOW, { v: 2, s: spk, c: c2, o: otks }, true],
    ['version 2, edition the publication time in ms', WINDOW + 5 * 3600_000 + 17_042, { v: 2, s: spk, c: c2, o: otks }, true],
    ['version 2, creation the time in ms', WINDOW + 1234, { v: 2, s: spk, c: made, o: otks }, true],
    ['version 2, creation one ms past a window start', WINDOW + 1234, { v: 2, s: spk, c: c2 + 1, o: otks }, true],
    ['bundle of version 3', WINDOW + 1234, { v: 3, s: spk, c: c2, o: otks }, false],
  ];
  const refused = refusedCases.map(([name, edition, fields, writerRefuses], i) => {
    const nonce = seeded(`prekey-editions/refused-nonce-${i}`)(24);
    const bytes = rawRecord(identity, epoch, edition, encodeCbor(fields), nonce);
    const code = expectCode(
      errorCodeOf(() => openPrekeyRecord(identity.publicKey, epoch, bytes), name),
      'ERR_SCHEMA',
      `refused "${name}"`,
    );
    if (writerRefuses) {
      const bundle: PrekeyBundle = { spk, created: fields.c as number, otks, version: 2 };
      expectCode(
        errorCodeOf(() => createPrekeyRecord(identity, epoch, edition, bundle), name),
        'ERR_SCHEMA',
        `writer refuses "${name}"`,
      );
    }
    return { name, edition, created: fields.c as number, writerRefuses, record: toHex(bytes), code };
  });

  return {
    description:
      'Prekey records whose editions say only their publication window (specs/messaging.md §9.6 "Editions"; PREKEY_WINDOW_MS = 12 h, PREKEY_EDITIONS_PER_WINDOW = 4096): one identity (Ed25519 seed `identitySeed`) publishing for the epoch of `window` (a window start, Unix ms). `records`: what createPrekeyRecord makes from the SPK and OPKs (X25519 keys from their seeds; `otks` are indexes into `otkSeeds`), the edition, the creation and the version, with the 24-byte nonce given — and what openPrekeyRecord gives back. `refused`: records validly signed by the blinded key whose bundle a reader refuses (`code`); `writerRefuses`: createPrekeyRecord refuses to make that record from a version 2 bundle.',
    version: VECTORS_VERSION,
    identitySeed: toHex(identitySeed),
    epoch,
    window: WINDOW,
    windowMs: PREKEY_WINDOW_MS,
    spkSeed: toHex(spkSeed),
    otkSeeds: otkSeeds.map(toHex),
    records,
    refused,
  };
}
