/**
 * Optional directory authorities (specs/directory.md §7), off by default. An operator community may name a few
 * authority relays; each periodically signs its view of the overlay, and clients configured with those authorities
 * use only relays listed by a strict majority of them. This bounds Sybil attacks to what the authorities admit,
 * at the cost of trusting them as Tor's clients trust theirs.
 *
 *   body   = CBOR { "v": 1, "va": valid-after ms, "vu": valid-until ms, "r": [ [identity (32), published] ... ] }
 *   signed = CBOR { "a": authority identity (32), "b": body bytes, "s": Ed25519(a, "allium-v1 consensus" | b) }
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { CryptoError, ProtocolError } from './errors.js';

/** A consensus of the most relays listed (3,000) is about 132 KB; one travels per CONTROL message. */
export const MAX_CONSENSUS_BYTES = 200 * 1024;
const SIGN = utf8('allium-v1 consensus');

const bodySchema = z.strictObject({
  v: z.literal(1),
  va: zUint(),
  vu: zUint(),
  r: z.array(z.tuple([zBytes(32), zUint()])).max(3000),
});
const signedSchema = z.strictObject({ a: zBytes(32), b: zBytes(undefined, MAX_CONSENSUS_BYTES), s: zBytes(64) });

export interface Consensus {
  readonly authority: string;
  readonly validAfter: number;
  readonly validUntil: number;
  /** Fingerprints listed. */
  readonly relays: ReadonlySet<string>;
  readonly raw: Uint8Array;
}

export function signConsensus(
  authority: { publicKey: Uint8Array; secretKey: Uint8Array },
  relays: readonly { id: Uint8Array; pub: number }[],
  validAfter: number,
  validUntil: number,
): Uint8Array {
  const sorted = [...relays].sort((x, y) => (fingerprintOf(x.id) < fingerprintOf(y.id) ? -1 : 1));
  const b = encodeCbor({ v: 1, va: validAfter, vu: validUntil, r: sorted.map((r) => [r.id, r.pub]) });
  const s = crypto().sign(concatBytes(SIGN, b), authority.secretKey);
  return encodeCbor({ a: authority.publicKey, b, s });
}

/**
 * Verifies a signed consensus from one of `authorities` (fingerprints) that is valid at `now`. Throws ERR_SIGNATURE,
 * ERR_DIRECTORY (unknown authority, not valid now), ERR_CBOR_* / ERR_SCHEMA.
 */
export function verifyConsensus(raw: Uint8Array, authorities: ReadonlySet<string>, now: number, skewMs = 10 * 60_000): Consensus {
  const signed = decodeMessage(signedSchema, raw, MAX_CONSENSUS_BYTES + 256, 'signed consensus');
  const authority = fingerprintOf(signed.a);
  if (!authorities.has(authority)) throw new ProtocolError('ERR_DIRECTORY', 'consensus from an authority not configured');
  if (!crypto().verify(signed.s, concatBytes(SIGN, signed.b), signed.a)) throw new CryptoError('ERR_SIGNATURE', 'consensus signature does not verify');
  const body = decodeMessage(bodySchema, signed.b, MAX_CONSENSUS_BYTES, 'consensus');
  if (body.va > now + skewMs || body.vu <= now) throw new ProtocolError('ERR_DIRECTORY', 'consensus not valid now');
  return { authority, validAfter: body.va, validUntil: body.vu, relays: new Set(body.r.map(([id]) => fingerprintOf(id))), raw: Uint8Array.from(raw) };
}

/**
 * The relays a strict majority of the configured authorities list, given the newest valid consensus of each.
 * With no valid consensus from a majority of authorities, nothing is usable (fail closed).
 */
export function majorityListed(consensuses: readonly Consensus[], authorities: ReadonlySet<string>): Set<string> {
  const newest = new Map<string, Consensus>();
  for (const c of consensuses) {
    const have = newest.get(c.authority);
    if (!have || c.validAfter > have.validAfter) newest.set(c.authority, c);
  }
  const need = Math.floor(authorities.size / 2) + 1;
  const votes = new Map<string, number>();
  for (const c of newest.values()) for (const fp of c.relays) votes.set(fp, (votes.get(fp) ?? 0) + 1);
  return new Set([...votes].filter(([, n]) => n >= need).map(([fp]) => fp));
}
