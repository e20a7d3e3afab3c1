/**
 * Signed updatable keys (specs/content.md §4), in the spirit of Hyphanet's SSK/USK: a publisher's Ed25519 key and
 * a name give a stable link; each edition is a small signed record pointing at content, and a newer edition
 * replaces an older one at every holder. Relays check the signature and the routing key, and keep only the newest
 * edition; they cannot read the record without the name.
 *
 *   nh  = H(name, "allium-v1:ssk:name")
 *   rk  = H(publisher | nh, "allium-v1:ssk:routing")
 *   key = H(publisher | name, "allium-v1:ssk:key")                  (needs the name itself)
 *   ct  = nonce (24) | XChaCha20-Poly1305(key, nonce, target link text)
 *   sig = Ed25519(publisher, "allium-v1 ssk" | rk | edition u64 | ct)
 *   record = CBOR { "v": 1, "pk": publisher, "nh": nh, "ed": edition, "ct": ct, "sig": sig }
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { CryptoError, ProtocolError } from './errors.js';

export const MAX_RECORD_BYTES = 2048;
const L = {
  name: utf8('allium-v1:ssk:name'),
  routing: utf8('allium-v1:ssk:routing'),
  key: utf8('allium-v1:ssk:key'),
};
const SIGN = utf8('allium-v1 ssk');

const recordSchema = z.strictObject({
  v: z.literal(1),
  pk: zBytes(32),
  nh: zBytes(32),
  ed: zUint(),
  ct: zBytes(undefined, 1024),
  sig: zBytes(64),
});
export type SskRecord = z.infer<typeof recordSchema>;

export function nameHash(name: string): Uint8Array {
  return crypto().hash(32, utf8(name), L.name);
}

export function sskRoutingKey(publisher: Uint8Array, nh: Uint8Array): Uint8Array {
  return crypto().hash(32, concatBytes(publisher, nh), L.routing);
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/**
 * Creates a signed edition pointing at `target` (a link text). `random` supplies the nonce (the CSPRNG unless a
 * vector or test injects a seeded source).
 */
export function createRecord(
  secretKey: Uint8Array,
  publisher: Uint8Array,
  name: string,
  edition: number,
  target: string,
  random: (n: number) => Uint8Array = (n) => crypto().random(n),
): { rk: Uint8Array; bytes: Uint8Array } {
  const nh = nameHash(name);
  const rk = sskRoutingKey(publisher, nh);
  const key = crypto().hash(32, concatBytes(publisher, utf8(name)), L.key);
  const nonce = random(24);
  const ct = concatBytes(nonce, crypto().xaeadEncrypt(utf8(target), rk, nonce, key));
  const sig = crypto().sign(concatBytes(SIGN, rk, u64(edition), ct), secretKey);
  return { rk, bytes: encodeCbor({ v: 1, pk: publisher, nh, ed: edition, ct, sig }) };
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

/** What a link holder does: verify, check it is for this publisher and name, and decrypt the target link. */
export function openRecord(publisher: Uint8Array, name: string, bytes: Uint8Array): { edition: number; target: string } {
  const nh = nameHash(name);
  const rk = sskRoutingKey(publisher, nh);
  const r = verifyRecord(rk, bytes);
  if (!crypto().equal(r.pk, publisher)) throw new CryptoError('ERR_SIGNATURE', 'record from another publisher');
  const key = crypto().hash(32, concatBytes(publisher, utf8(name)), L.key);
  const plain = crypto().xaeadDecrypt(r.ct.subarray(24), rk, r.ct.subarray(0, 24), key);
  if (!plain) throw new CryptoError('ERR_CONTENT_TAMPERED', 'record does not decrypt under the name');
  return { edition: r.ed, target: new TextDecoder().decode(plain) };
}
