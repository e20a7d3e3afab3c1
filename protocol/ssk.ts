/**
 * Signed updatable keys (specs/content.md §4), in the spirit of Hyphanet's SSK/USK: a publisher's Ed25519 key, a
 * name and a 32-byte link secret (Hyphanet's SSK crypto key) give a stable link; each edition is a small signed record
 * pointing at content, and a newer edition replaces an older one at every holder. Relays check the signature and the
 * routing key, and keep only the newest edition; without the link's secret nobody can find a name's record or
 * decrypt it, even knowing the publisher's key and guessing the name.
 *
 *   secret = H(sk | name, "allium-v1:ssk:secret")                   (the publisher's default, sskSecret)
 *   nh     = H(secret | name, "allium-v1:ssk:locator")
 *   rk     = H(publisher | nh, "allium-v1:ssk:routing")             (what relays check)
 *   key    = H(secret | publisher | name, "allium-v1:ssk:content")
 *   ct     = nonce (24) | XChaCha20-Poly1305(key, nonce, target link text, ad = rk)
 *   sig    = Ed25519(publisher, "allium-v1 ssk" | rk | edition u64 | ct)
 *   record = CBOR { "v": 1, "pk": publisher, "nh": nh, "ed": edition, "ct": ct, "sig": sig }
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { AlliumError, CryptoError, ProtocolError } from './errors.js';

export const MAX_RECORD_BYTES = 2048;
/** A record whose edition, read as Unix ms, is at most this far past a holder's clock is served (content.md §4). */
export const RECORD_CLOCK_SKEW_MS = 10 * 60 * 1000;
/**
 * An edition further ahead than the skew but at most this far ahead of a holder's clock is an edition to come:
 * held, one per key, until its time (content.md §4). Beyond it, an edition is kept and served at once.
 */
export const RECORD_HOLD_MAX_MS = 13 * 3600 * 1000;

/** True when edition `ed` is one to come at a holder whose clock reads `now` (content.md §4, "Editions to come"). */
export function editionToCome(ed: number, now: number): boolean {
  return ed > now + RECORD_CLOCK_SKEW_MS && ed <= now + RECORD_HOLD_MAX_MS;
}
/** Length of an SSK link's secret (content.md §4–§5). */
export const SSK_SECRET_LEN = 32;
const L = {
  secret: utf8('allium-v1:ssk:secret'),
  locator: utf8('allium-v1:ssk:locator'),
  routing: utf8('allium-v1:ssk:routing'),
  content: utf8('allium-v1:ssk:content'),
};
const SIGN = utf8('allium-v1 ssk');

const recordSchema = z.lazy(() =>
  z.strictObject({
    v: z.literal(1),
    pk: zBytes(32),
    nh: zBytes(32),
    ed: zUint(),
    ct: zBytes(undefined, 1024),
    sig: zBytes(64),
  }),
);
export type SskRecord = z.infer<typeof recordSchema>;

/** What finds and opens a name's records: the publisher's key, the link's secret and the name (all in the link). */
export interface SskKey {
  readonly publisher: Uint8Array;
  readonly secret: Uint8Array;
  readonly name: string;
}

function checkSecret(secret: Uint8Array): void {
  if (secret.length !== SSK_SECRET_LEN) throw new AlliumError('ERR_INTERNAL', 'an ssk secret has 32 bytes');
}

/**
 * The publisher's default link secret for `name`: derived from its Ed25519 secret key, so the same key and name give
 * the same link on any machine without other state.
 */
export function sskSecret(secretKey: Uint8Array, name: string): Uint8Array {
  return crypto().hash(32, concatBytes(secretKey, utf8(name)), L.secret);
}

/** The name's locator `nh`: needs the secret, so a guessed name alone does not find its record. */
export function sskLocator(secret: Uint8Array, name: string): Uint8Array {
  checkSecret(secret);
  return crypto().hash(32, concatBytes(secret, utf8(name)), L.locator);
}

export function sskRoutingKey(publisher: Uint8Array, nh: Uint8Array): Uint8Array {
  return crypto().hash(32, concatBytes(publisher, nh), L.routing);
}

/** The routing key of a link's records (what a reader asks holders for). */
export function sskRoutingKeyOf(k: SskKey): Uint8Array {
  return sskRoutingKey(k.publisher, sskLocator(k.secret, k.name));
}

function contentKey(k: SskKey): Uint8Array {
  return crypto().hash(32, concatBytes(k.secret, k.publisher, utf8(k.name)), L.content);
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/**
 * Creates a signed edition of `k` (whose publisher must be `secretKey`'s) pointing at `target` (a link text).
 * `random` supplies the nonce (the CSPRNG unless a vector or test injects a seeded source).
 */
export function createRecord(
  secretKey: Uint8Array,
  k: SskKey,
  edition: number,
  target: string,
  random: (n: number) => Uint8Array = (n) => crypto().random(n),
): { rk: Uint8Array; bytes: Uint8Array } {
  const nh = sskLocator(k.secret, k.name);
  const rk = sskRoutingKey(k.publisher, nh);
  const nonce = random(24);
  const ct = concatBytes(nonce, crypto().xaeadEncrypt(utf8(target), rk, nonce, contentKey(k)));
  const sig = crypto().sign(concatBytes(SIGN, rk, u64(edition), ct), secretKey);
  return { rk, bytes: encodeCbor({ v: 1, pk: k.publisher, nh, ed: edition, ct, sig }) };
}

/**
 * What a relay checks: well formed, signature valid, stored under the right routing key. Throws ERR_SIGNATURE,
 * ERR_CONTENT, ERR_CBOR_*.
 */
export function verifyRecord(rk: Uint8Array, bytes: Uint8Array): SskRecord {
  const r = decodeMessage(recordSchema, bytes, MAX_RECORD_BYTES, 'ssk record');
  if (!crypto().equal(sskRoutingKey(r.pk, r.nh), rk)) throw new ProtocolError('ERR_CONTENT', 'record stored under the wrong routing key');
  if (!crypto().verify(r.sig, concatBytes(SIGN, rk, u64(r.ed), r.ct), r.pk)) throw new CryptoError('ERR_SIGNATURE', 'record signature does not verify');
  return r;
}

/**
 * What a link holder does: verify, check it is for this publisher, secret and name, and decrypt the target link.
 * Throws ERR_CONTENT (another key's record), ERR_SIGNATURE, ERR_CONTENT_TAMPERED, ERR_CBOR_*, ERR_SCHEMA.
 */
export function openRecord(k: SskKey, bytes: Uint8Array): { edition: number; target: string } {
  const rk = sskRoutingKeyOf(k);
  const r = verifyRecord(rk, bytes);
  if (!crypto().equal(r.pk, k.publisher)) throw new CryptoError('ERR_SIGNATURE', 'record from another publisher');
  const plain = crypto().xaeadDecrypt(r.ct.subarray(24), rk, r.ct.subarray(0, 24), contentKey(k));
  if (!plain) throw new CryptoError('ERR_CONTENT_TAMPERED', 'record does not decrypt under the link');
  return { edition: r.ed, target: new TextDecoder().decode(plain) };
}
