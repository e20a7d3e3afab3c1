/**
 * Prekey records (specs/messaging.md §9.6): the public halves of an identity's signed prekey and one-time prekeys,
 * which a sender needs to seal a first-contact mailbox item with forward secrecy (version 3, §9.2, X3DH-style).
 *
 * One record per epoch, published by that epoch's blinded key (§2) as an ordinary updatable-key record (content.md
 * §4, kind "record"), so relays check it as any other and keep the newest edition, and a holder links it neither to
 * the address nor to the records of other epochs:
 *
 *   nh     = H(subcredential_p, "allium-v1:prekeys:locator")
 *   rk     = H(A'_p | nh, "allium-v1:ssk:routing")
 *   kp     = H(subcredential_p, "allium-v1:prekeys:key")
 *   bundle = CBOR { "v": 2, "s": SPK, "c": window(created) ms, "o": [ OPK … ≤ 16 ] }
 *   ct     = nonce (24) | XAEAD(kp, nonce, bundle, ad = rk)
 *   sig    = Ed25519 by (s'_p, prefix'_p) over "allium-v1 ssk" | rk | u64(ed) | ct
 *   record = CBOR { "v": 1, "pk": A'_p, "nh", "ed", "ct", "sig" }
 *
 * Anyone with the address opens the record, so an edition of version 2 says no more than the publication window it
 * falls in: ed = window start + an offset below PREKEY_EDITIONS_PER_WINDOW (the first of a window a random one below
 * PREKEY_EDITION_SPREAD, later ones the last + 1), and "c" is a window's start. A bundle of version 1 (ed and c the
 * times in ms, from owners before windows) is still read.
 *
 * The blinded signature is what signs the prekeys: only the identity's secret signs under A'_p, and the reader
 * derives A'_p from the address. Pure: the caller gives the time, the edition and the randomness.
 */
import { z } from 'zod';
import type { RandomSource } from '../crypto/drbg.js';
import { crypto } from '../crypto/index.js';
import type { Identity } from './address.js';
import { concatBytes, toHex, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { CryptoError, LimitError, ProtocolError } from './errors.js';
import { blindPublicKey, blindSigningKey, signBlinded, subcredential } from './key-blinding.js';
import { sskRoutingKey, verifyRecord } from './ssk.js';

/** One-time prekeys one record may list (specs/limits.md MAX_ONE_TIME_PREKEYS). */
export const MAX_ONE_TIME_PREKEYS = 16;
/** Length of a prekey id (the first bytes of the public key's hash, §9.2). */
export const PREKEY_ID_LEN = 8;
/** The publication window: a version 2 record's edition and "c" say no more than the window they fall in (12 h). */
export const PREKEY_WINDOW_MS = 12 * 3600_000;
/** A version 2 edition is its window's start + less than this (ms). */
export const PREKEY_EDITIONS_PER_WINDOW = 4096;
/** The first edition of a window is its start + a uniformly random offset below this. */
export const PREKEY_EDITION_SPREAD = 2048;
/** Largest bundle (the plaintext of a record's ct): fits the record's 1024-byte ct with room to spare. */
const MAX_BUNDLE_BYTES = 900;
const SIGN = utf8('allium-v1 ssk');
const L = {
  locator: utf8('allium-v1:prekeys:locator'),
  key: utf8('allium-v1:prekeys:key'),
  id: utf8('allium-v1:mailbox:prekey-id'),
};

const bundleSchema = z.lazy(() =>
  z.strictObject({
    v: z.union([z.literal(1), z.literal(2)]),
    s: zBytes(32),
    c: zUint(),
    o: z.array(zBytes(32)).max(MAX_ONE_TIME_PREKEYS),
  }),
);

/** The public prekeys of an identity, as a sender reads them from a record. */
export interface PrekeyBundle {
  /** The signed prekey (X25519). */
  readonly spk: Uint8Array;
  /** When the signed prekey was made (Unix ms): in version 2, the start of the window it was made in. */
  readonly created: number;
  /** One-time prekeys (X25519), at most MAX_ONE_TIME_PREKEYS. */
  readonly otks: readonly Uint8Array[];
  /** The bundle's version: 2 (editions and "c" to the window) unless 1 is given (records of owners before windows). */
  readonly version?: 1 | 2;
}

/** The start of the publication window `t` (Unix ms) falls in. */
export function prekeyWindowAt(t: number): number {
  return t - (t % PREKEY_WINDOW_MS);
}

/** True when `edition` and `created` say no more than their windows (a version 2 record's rule). */
function windowed(edition: number, created: number): boolean {
  return edition % PREKEY_WINDOW_MS < PREKEY_EDITIONS_PER_WINDOW && created % PREKEY_WINDOW_MS === 0;
}

/** The id of a prekey's public key: H(K, "allium-v1:mailbox:prekey-id")[0..8). */
export function prekeyId(publicKey: Uint8Array): Uint8Array {
  return crypto().hash(32, publicKey, L.id).subarray(0, PREKEY_ID_LEN);
}

/** Where the prekey record of `address` for epoch `epoch` is stored (the record's routing key), and its key. */
export function prekeyRecordKeys(address: string | Uint8Array, epoch: number): { rk: Uint8Array; nh: Uint8Array; key: Uint8Array; blinded: Uint8Array } {
  const sub = subcredential(address, epoch);
  const blinded = blindPublicKey(address, epoch);
  const nh = crypto().hash(32, sub, L.locator);
  const key = crypto().hash(32, sub, L.key);
  crypto().wipe(sub);
  return { rk: sskRoutingKey(blinded, nh), nh, key, blinded };
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** Encodes a bundle. Throws LimitError MAX_ONE_TIME_PREKEYS for more one-time prekeys than a record lists. */
export function encodePrekeyBundle(b: PrekeyBundle): Uint8Array {
  if (b.otks.length > MAX_ONE_TIME_PREKEYS)
    throw new LimitError('MAX_ONE_TIME_PREKEYS', `a prekey record lists at most ${MAX_ONE_TIME_PREKEYS} one-time prekeys`);
  return encodeCbor({ v: b.version ?? 2, s: b.spk, c: b.created, o: [...b.otks] });
}

/** Decodes a bundle. Throws ERR_CBOR_* / ERR_SCHEMA, ERR_KEY_FORMAT (a one-time prekey twice, or equal to the SPK). */
export function decodePrekeyBundle(bytes: Uint8Array): PrekeyBundle {
  const d = decodeMessage(bundleSchema, bytes, MAX_BUNDLE_BYTES, 'prekey bundle');
  const seen = new Set<string>([toHex(d.s)]);
  for (const k of d.o) {
    const h = toHex(k);
    if (seen.has(h)) throw new ProtocolError('ERR_KEY_FORMAT', 'a prekey is listed twice');
    seen.add(h);
  }
  return { spk: d.s, created: d.c, otks: d.o, version: d.v };
}

/**
 * The signed record of `identity`'s prekeys for epoch `epoch`, edition `edition` (specs/messaging.md §9.6).
 * `random` gives the nonce (the CSPRNG unless a vector injects a seeded source). Throws ERR_SCHEMA for a version 2
 * bundle whose edition or "c" is finer than its window.
 */
export function createPrekeyRecord(
  identity: Identity,
  epoch: number,
  edition: number,
  bundle: PrekeyBundle,
  random: RandomSource = (n) => crypto().random(n),
): { rk: Uint8Array; bytes: Uint8Array } {
  const c = crypto();
  if ((bundle.version ?? 2) === 2 && !windowed(edition, bundle.created))
    throw new ProtocolError('ERR_SCHEMA', 'a prekey record of version 2 says no more than the window of its edition and creation');
  const { rk, nh, key } = prekeyRecordKeys(identity.publicKey, epoch);
  const nonce = random(24);
  const ct = concatBytes(nonce, c.xaeadEncrypt(encodePrekeyBundle(bundle), rk, nonce, key));
  c.wipe(key);
  const signing = blindSigningKey(identity, epoch);
  try {
    const sig = signBlinded(signing, concatBytes(SIGN, rk, u64(edition), ct));
    return { rk, bytes: encodeCbor({ v: 1, pk: signing.publicKey, nh, ed: edition, ct, sig }) };
  } finally {
    c.wipe(signing.scalar, signing.prefix);
  }
}

/**
 * Opens the prekey record of `address` for `epoch`: verifies it as a relay does (content.md §4), requires the
 * publisher to be the address's blinded key of that epoch, decrypts and decodes the bundle. Throws ERR_SIGNATURE
 * (another key's record, or a bad signature), ERR_CONTENT (another routing key), ERR_CONTENT_TAMPERED (does not
 * decrypt), ERR_CBOR_* / ERR_SCHEMA (also a version 2 bundle whose record's edition, or whose "c", is finer than its
 * window), ERR_KEY_FORMAT.
 */
export function openPrekeyRecord(address: string | Uint8Array, epoch: number, bytes: Uint8Array): { edition: number; bundle: PrekeyBundle } {
  const c = crypto();
  const { rk, key, blinded } = prekeyRecordKeys(address, epoch);
  const r = verifyRecord(rk, bytes);
  if (!c.equal(r.pk, blinded)) throw new CryptoError('ERR_SIGNATURE', 'prekey record from another key');
  if (r.ct.length < 24 + 16) throw new CryptoError('ERR_CONTENT_TAMPERED', 'prekey record does not decrypt');
  const plain = c.xaeadDecrypt(r.ct.subarray(24), rk, r.ct.subarray(0, 24), key);
  c.wipe(key);
  if (!plain) throw new CryptoError('ERR_CONTENT_TAMPERED', 'prekey record does not decrypt');
  const bundle = decodePrekeyBundle(plain);
  if (bundle.version === 2 && !windowed(r.ed, bundle.created))
    throw new ProtocolError('ERR_SCHEMA', 'prekey record of version 2 with an edition or creation finer than its window');
  return { edition: r.ed, bundle };
}
