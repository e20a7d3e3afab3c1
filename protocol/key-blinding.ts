/**
 * Key blinding per time period (specs/messaging.md §2), as Tor's v3 onion services do (rend-spec-v3 §2.1, App. A.2).
 *
 * Time is cut into periods: period = floor(unix seconds / PERIOD_SECONDS). For an identity key A = s·B and a period
 * p, everyone who knows the address can compute the blinded public key A'_p; only the identity's holder can sign
 * under it; and without the address A'_p of one period cannot be linked to A or to any other period's A'_q.
 *
 *   N      = p u64 | PERIOD_SECONDS u64
 *   h      = clamp(H(A | N, "allium-v1:blind-factor"))        clamp: h[0] &= 248, h[31] &= 63, h[31] |= 64
 *   A'     = h·A                                              (Ed25519 point multiplication, no further clamping)
 *   s'     = h·s mod L                                        so A' = s'·B
 *   prefix'= H(prefix | h, "allium-v1:blind-prefix")          prefix: the second half of SHA-512(seed), RFC 8032
 *   locator      = H(A' | p u64, "allium-v1:descriptor-locator")       where the endpoint descriptor is stored
 *   subcredential = H(A | A' | p u64, "allium-v1:descriptor-subcred")  the descriptor's key material (needs A)
 *
 * Signatures by (s', prefix') are ordinary Ed25519 signatures under A' (RFC 8032 §5.1.6 with an expanded key), so
 * relays verify them with crypto().verify and never learn A. As in Tor, clamping makes h a multiple of 8 (it
 * clears any small-order component) and keeps it in [2^254, 2^255), where no multiple of L that is also a
 * multiple of 8 lies, so h is never 0 mod L and the map A → A' is one to one.
 *
 * Unlinkability rests on h being unpredictable without A (a hash of A) and on the discrete-log problem: A' is
 * h·A for an unknown h, which looks like a random point to anyone who does not know A.
 *
 * Endpoints publish for the current period and, near its end, the next one; clients whose clock is near a boundary
 * look up both. Unlike Tor there is no offset between the period boundary and the start of the UTC day.
 */
import { crypto, type ExpandedSigningKey } from '../crypto/index.js';
import { parseAddress, type Identity } from './address.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { AlliumError } from './errors.js';

/** Length of a key-blinding period: one day. Part of the format (it is hashed into h). */
export const PERIOD_SECONDS = 86400;

const L = {
  factor: utf8('allium-v1:blind-factor'),
  prefix: utf8('allium-v1:blind-prefix'),
  locator: utf8('allium-v1:descriptor-locator'),
  subcredential: utf8('allium-v1:descriptor-subcred'),
};

/** The period containing a Unix time in seconds. */
export function periodAt(unixSeconds: number): number {
  if (!Number.isFinite(unixSeconds) || unixSeconds < 0) throw new AlliumError('ERR_INTERNAL', 'time before the epoch');
  return Math.floor(unixSeconds / PERIOD_SECONDS);
}

/** The Unix time in seconds at which a period starts. */
export function periodStart(period: number): number {
  return checkPeriod(period) * PERIOD_SECONDS;
}

function checkPeriod(period: number): number {
  if (!Number.isSafeInteger(period) || period < 0) throw new AlliumError('ERR_INTERNAL', 'a period is a non-negative integer');
  return period;
}

function u64(n: number): Uint8Array {
  return new ByteWriter(8).u64(BigInt(n)).done();
}

function identityKeyOf(address: string | Uint8Array): Uint8Array {
  return typeof address === 'string' ? parseAddress(address) : address;
}

/** The clamped blinding factor h for an identity key and a period. */
export function blindingFactor(identityKey: Uint8Array, period: number): Uint8Array {
  if (!crypto().edIsValidPoint(identityKey)) throw new AlliumError('ERR_KEY_FORMAT', 'not a valid Ed25519 identity key');
  const h = crypto().hash(32, concatBytes(identityKey, u64(checkPeriod(period)), u64(PERIOD_SECONDS)), L.factor);
  h[0]! &= 248;
  h[31]! &= 63;
  h[31]! |= 64;
  return h;
}

/** A'_p, computable by anyone who knows the address (text or identity key). */
export function blindPublicKey(address: string | Uint8Array, period: number): Uint8Array {
  const identityKey = identityKeyOf(address);
  return crypto().edScalarMult(blindingFactor(identityKey, period), identityKey);
}

/** The identity holder's signing key for period p: (s', prefix') under A'_p. Wipe it after use. */
export function blindSigningKey(identity: Identity, period: number): ExpandedSigningKey {
  const c = crypto();
  const h = blindingFactor(identity.publicKey, period);
  const expanded = c.edExpandSecret(identity.secretKey);
  const publicKey = c.edScalarMult(h, identity.publicKey);
  const scalar = c.edScalarMul(h, expanded.scalar);
  const prefixInput = concatBytes(expanded.prefix, h);
  const prefix = c.hash(32, prefixInput, L.prefix);
  c.wipe(expanded.scalar, expanded.prefix, prefixInput);
  // Signing with a scalar that does not match the public key hashed into k leaks the scalar (two keys, one nonce),
  // so an identity whose halves do not belong together is refused here. s'·B = h·A holds exactly when s·B = A,
  // since h is invertible mod L.
  if (!c.equal(c.edScalarMultBase(scalar), publicKey)) {
    c.wipe(scalar, prefix);
    throw new AlliumError('ERR_KEY_FORMAT', 'identity secret and public key do not match');
  }
  return { scalar, prefix, publicKey };
}

/** Signs with a blinded key; the signature verifies with crypto().verify under key.publicKey. */
export function signBlinded(key: ExpandedSigningKey, message: Uint8Array): Uint8Array {
  return crypto().signExpanded(message, key);
}

/** The routing key of a blinded key's descriptor: what a relay recomputes before storing or serving. */
export function locatorOfBlindedKey(blindedKey: Uint8Array, period: number): Uint8Array {
  return crypto().hash(32, concatBytes(blindedKey, u64(checkPeriod(period))), L.locator);
}

/** The routing key under which the endpoint descriptor of an address is stored for a period. */
export function descriptorLocator(address: string | Uint8Array, period: number): Uint8Array {
  return locatorOfBlindedKey(blindPublicKey(address, period), period);
}

/** Key material for a period's descriptor: needs the identity key itself, so relays cannot compute it. */
export function subcredential(address: string | Uint8Array, period: number): Uint8Array {
  const identityKey = identityKeyOf(address);
  const blinded = blindPublicKey(identityKey, period);
  return crypto().hash(32, concatBytes(identityKey, blinded, u64(period)), L.subcredential);
}
