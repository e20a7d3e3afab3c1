/**
 * Endpoint descriptors (specs/messaging.md §3), after Tor's v3 onion-service descriptors (rend-spec-v3 §2.4-2.5):
 * where to reach an identity's endpoint this period, readable only by those who know its address (and, with client
 * authorisation, only by listed clients), stored by relays that can check its signature but cannot tell whose it is.
 *
 *   body   = CBOR { "v": 1, "intro": [{ "relay": id (32), "auth": Ed25519 key (32), "enc": X25519 key (32) }],
 *                   ? "pow": { "seed": (32), "e": suggested effort }, "created": ms, "expires": ms }
 *   middle = CBOR { "v": 1, "auth": [entry (80)], "inner": x }
 *              x = body                                              when "auth" is empty
 *              x = n2 (24) | XChaCha20-Poly1305(Kc, n2, body, AD2)   otherwise (Kc: descriptor-auth.ts)
 *   ct     = n1 (24) | XChaCha20-Poly1305(Ko, n1, padTo(middle, CT_LEN[g] − 40), AD1)   CT_LEN[g] bytes (below)
 *   sig    = Ed25519 under A' by (s', prefix'), over "allium-v1 endpoint-descriptor" | bk | p u64 | rev u64 | ct
 *   outer  = CBOR { "v": 1, "bk": A' (32), "p": period, "rev": revision, "ct": ct, "sig": sig }
 *
 *   Ko  = H(subcredential, "allium-v1:descriptor:outer-key")      subcredential, A', locator: key-blinding.ts
 *   AD1 = "allium-v1 endpoint-descriptor" | bk | p u64 | rev u64
 *   AD2 = "allium-v1 endpoint-client-layer" | bk | p u64
 *
 * The size of ct depends only on g, the number of groups of AUTH_GROUP client entries (0, 1 or 2): CT_LEN =
 * [1772, 3544, 7088], padding buckets of 2, 4 and 8 relay cells, each large enough for MAX_INTRO_POINTS. So a
 * relay, or a reader of the outer layer, learns whether a descriptor is public or for up to 16 or up to 32
 * clients, and nothing of the number of introduction points.
 *
 * A relay stores the outer structure under locator = H(bk | p) after verifyEndpointDescriptor: well formed, one of
 * the CT_LEN sizes, signed by bk, for a current period. It keeps the highest `rev` per locator. A client who knows
 * the address computes A', the locator and the subcredential, and openEndpointDescriptor checks everything again
 * and decrypts.
 *
 * Not done here: choosing introduction points, publishing, and the relay's replacement policy (relay/ and client/).
 */
import { z } from 'zod';
import { crypto, type KeyPair } from '../crypto/index.js';
import { parseAddress, type Identity } from './address.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, validate, zBytes, zUint } from './cbor.js';
import { DESCRIPTOR_CLOCK_SKEW_MS } from './descriptor.js';
import { AUTH_ENTRY_LEN, AUTH_GROUP, clientLayerKey, MAX_AUTH_CLIENTS, openCookie, sealCookie } from './descriptor-auth.js';
import { CryptoError, LimitError, ProtocolError } from './errors.js';
import { MAX_POW_EFFORT, POW_SEED_LEN } from './intro-pow.js';
import { blindPublicKey, blindSigningKey, locatorOfBlindedKey, periodAt, signBlinded, subcredential } from './key-blinding.js';
import { PAD_BUCKETS, padTo, unpadExact } from './padding.js';

/** Most introduction points one descriptor lists. */
export const MAX_INTRO_POINTS = 10;
/** Longest time between a descriptor's created and expires. */
export const MAX_ENDPOINT_DESCRIPTOR_LIFETIME_MS = 24 * 3600 * 1000;
/** The length of ct for 0, 1 and 2 groups of client entries. */
export const ENDPOINT_CT_LEN: readonly number[] = [PAD_BUCKETS[1]!, PAD_BUCKETS[2]!, PAD_BUCKETS[3]!];
export const MAX_ENDPOINT_CT_BYTES = ENDPOINT_CT_LEN[ENDPOINT_CT_LEN.length - 1]!; // 7088
/** Largest outer descriptor a relay or client decodes. */
export const MAX_ENDPOINT_DESCRIPTOR_BYTES = 8192;

const XNONCE = 24;
const TAG = 16;
const SIGN_CONTEXT = utf8('allium-v1 endpoint-descriptor');
const CLIENT_CONTEXT = utf8('allium-v1 endpoint-client-layer');
const OUTER_KEY = utf8('allium-v1:descriptor:outer-key');

const introSchema = () => z.strictObject({ relay: zBytes(32), auth: zBytes(32), enc: zBytes(32) });
/** The endpoint's proof-of-work parameters (rendezvous.md §4.3): its newest seed and the effort it suggests (0: none). */
const powParamsSchema = () => z.strictObject({ seed: zBytes(POW_SEED_LEN), e: zUint(MAX_POW_EFFORT) });
const bodySchema = z.lazy(() =>
  z.strictObject({
    v: z.literal(1),
    intro: z.array(introSchema()).min(1).max(MAX_INTRO_POINTS),
    pow: powParamsSchema().optional(),
    created: zUint(),
    expires: zUint(),
  }),
);
const middleSchema = z.lazy(() =>
  z.strictObject({
    v: z.literal(1),
    auth: z.array(zBytes(AUTH_ENTRY_LEN)).max(MAX_AUTH_CLIENTS),
    inner: zBytes(undefined, MAX_ENDPOINT_CT_BYTES),
  }),
);
const outerSchema = z.lazy(() =>
  z.strictObject({
    v: z.literal(1),
    bk: zBytes(32),
    p: zUint(),
    rev: zUint(),
    ct: zBytes(undefined, MAX_ENDPOINT_CT_BYTES),
    sig: zBytes(64),
  }),
);

export type IntroPoint = z.infer<ReturnType<typeof introSchema>>;
export type EndpointDescriptorBody = z.infer<typeof bodySchema>;

/** What a relay learns from a descriptor it verified. */
export interface VerifiedEndpointDescriptor {
  readonly blindedKey: Uint8Array;
  readonly period: number;
  readonly revision: number;
}

export interface CreateOptions {
  /** Replacement order at relays: a relay keeps the highest. Default: `created`. */
  readonly revision?: number;
  /** X25519 public keys of the clients allowed to read the body; absent or empty means anyone with the address. */
  readonly clients?: readonly Uint8Array[];
}

export interface OpenOptions {
  /** Our client-authorisation key pair, for descriptors that list clients. */
  readonly client?: KeyPair;
  /** The time (Unix ms) to check the period and expiry against; absent skips the time checks. */
  readonly now?: number;
}

function u64(n: number): Uint8Array {
  return new ByteWriter(8).u64(BigInt(n)).done();
}

function checkBody(body: EndpointDescriptorBody): void {
  if (body.expires <= body.created || body.expires - body.created > MAX_ENDPOINT_DESCRIPTOR_LIFETIME_MS) {
    throw new ProtocolError('ERR_ENDPOINT_DESCRIPTOR', 'endpoint descriptor lifetime out of range');
  }
  const relays = new Set<string>();
  for (const ip of body.intro) {
    const id = ip.relay.join(',');
    if (relays.has(id)) throw new ProtocolError('ERR_ENDPOINT_DESCRIPTOR', 'an introduction relay is listed twice');
    relays.add(id);
    if (!crypto().edIsValidPoint(ip.auth)) throw new ProtocolError('ERR_ENDPOINT_DESCRIPTOR', 'an introduction auth key is not a valid point');
  }
}

function outerKey(identityKey: Uint8Array, period: number): Uint8Array {
  const sub = subcredential(identityKey, period);
  const key = crypto().hash(32, sub, OUTER_KEY);
  crypto().wipe(sub);
  return key;
}

function encryptLayer(key: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array {
  const nonce = crypto().random(XNONCE);
  return concatBytes(nonce, crypto().xaeadEncrypt(plain, ad, nonce, key));
}

function decryptLayer(key: Uint8Array, ct: Uint8Array, ad: Uint8Array, what: string): Uint8Array {
  const plain = ct.length < XNONCE + TAG ? null : crypto().xaeadDecrypt(ct.subarray(XNONCE), ad, ct.subarray(0, XNONCE), key);
  if (!plain) throw new CryptoError('ERR_ENDPOINT_DECRYPT', `${what} does not decrypt`);
  return plain;
}

/** Makes the descriptor of `identity` for `period`. Returns the bytes and the locator to store them under. */
export function createEndpointDescriptor(
  identity: Identity,
  period: number,
  body: EndpointDescriptorBody,
  options: CreateOptions = {},
): { locator: Uint8Array; bytes: Uint8Array } {
  checkBody(validate(bodySchema, body, 'endpoint descriptor body'));
  const revision = options.revision ?? body.created;
  const key = blindSigningKey(identity, period);
  const bk = key.publicKey;
  const bodyBytes = encodeCbor(body);
  let auth: Uint8Array[] = [];
  let inner = bodyBytes;
  const sub = subcredential(identity.publicKey, period);
  if (options.clients && options.clients.length > 0) {
    const sealed = sealCookie(options.clients);
    auth = sealed.entries;
    const kc = clientLayerKey(sealed.cookie, sub);
    inner = encryptLayer(kc, bodyBytes, concatBytes(CLIENT_CONTEXT, bk, u64(period)));
    crypto().wipe(kc, sealed.cookie);
  }
  crypto().wipe(sub);
  const middle = encodeCbor({ v: 1, auth, inner });
  const ctLen = ENDPOINT_CT_LEN[auth.length / AUTH_GROUP]!;
  if (middle.length + 4 + XNONCE + TAG > ctLen) throw new LimitError('ENDPOINT_CT_LEN', `descriptor needs ${middle.length} bytes`);
  const ko = outerKey(identity.publicKey, period);
  const header = concatBytes(SIGN_CONTEXT, bk, u64(period), u64(revision));
  const ct = encryptLayer(ko, padTo(middle, ctLen - XNONCE - TAG), header);
  crypto().wipe(ko);
  const sig = signBlinded(key, concatBytes(header, ct));
  crypto().wipe(key.scalar, key.prefix);
  const bytes = encodeCbor({ v: 1, bk, p: period, rev: revision, ct, sig });
  return { locator: locatorOfBlindedKey(bk, period), bytes };
}

/**
 * What a relay checks before storing or serving: well formed, stored under its locator, ct a padding bucket,
 * signed by its blinded key and, given `now`, for the previous, current or next period. Throws ERR_CBOR_* /
 * ERR_SCHEMA, ERR_ENDPOINT_MISMATCH, ERR_ENDPOINT_DESCRIPTOR, ERR_DESCRIPTOR_EXPIRED, ERR_DESCRIPTOR_FUTURE,
 * ERR_SIGNATURE.
 */
export function verifyEndpointDescriptor(locator: Uint8Array, bytes: Uint8Array, now?: number): VerifiedEndpointDescriptor {
  const d = decodeVerified(locator, bytes, now);
  return { blindedKey: d.bk, period: d.p, revision: d.rev };
}

function decodeVerified(locator: Uint8Array, bytes: Uint8Array, now: number | undefined): z.infer<typeof outerSchema> {
  const d = decodeMessage(outerSchema, bytes, MAX_ENDPOINT_DESCRIPTOR_BYTES, 'endpoint descriptor');
  if (!crypto().equal(locatorOfBlindedKey(d.bk, d.p), locator)) {
    throw new ProtocolError('ERR_ENDPOINT_MISMATCH', 'endpoint descriptor stored under the wrong locator');
  }
  if (!ENDPOINT_CT_LEN.includes(d.ct.length)) throw new ProtocolError('ERR_ENDPOINT_DESCRIPTOR', 'endpoint descriptor is not padded');
  if (now !== undefined) {
    const current = periodAt(Math.floor(now / 1000));
    if (d.p < current - 1) throw new ProtocolError('ERR_DESCRIPTOR_EXPIRED', 'endpoint descriptor for a past period');
    if (d.p > current + 1) throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'endpoint descriptor for a future period');
  }
  const signed = concatBytes(SIGN_CONTEXT, d.bk, u64(d.p), u64(d.rev), d.ct);
  if (!crypto().verify(d.sig, signed, d.bk)) throw new CryptoError('ERR_SIGNATURE', 'endpoint descriptor signature does not verify');
  return d;
}

/**
 * What a client does with a descriptor fetched from locator(address, period): verify as a relay would, check it is
 * this address's for this period, and decrypt both layers. Throws what verifyEndpointDescriptor throws, and
 * ERR_ENDPOINT_DECRYPT, ERR_CLIENT_AUTH (the body is for listed clients and `client` is not one of them),
 * ERR_PADDING, ERR_ENDPOINT_DESCRIPTOR, ERR_DESCRIPTOR_EXPIRED / ERR_DESCRIPTOR_FUTURE (the body's times).
 */
export function openEndpointDescriptor(
  address: string | Uint8Array,
  period: number,
  bytes: Uint8Array,
  options: OpenOptions = {},
): EndpointDescriptorBody & { readonly revision: number } {
  const identityKey = typeof address === 'string' ? parseAddress(address) : address;
  const bk = blindPublicKey(identityKey, period);
  // The locator hashes bk and p, so a descriptor for another address or period fails here already; the explicit
  // comparison keeps that from resting on the hash alone.
  const d = decodeVerified(locatorOfBlindedKey(bk, period), bytes, options.now);
  if (d.p !== period || !crypto().equal(d.bk, bk)) {
    throw new ProtocolError('ERR_ENDPOINT_MISMATCH', 'endpoint descriptor is for another address or period');
  }
  const ko = outerKey(identityKey, period);
  const padded = decryptLayer(ko, d.ct, concatBytes(SIGN_CONTEXT, bk, u64(period), u64(d.rev)), 'endpoint descriptor');
  crypto().wipe(ko);
  const middle = decodeMessage(middleSchema, unpadExact(padded), MAX_ENDPOINT_CT_BYTES, 'endpoint descriptor layer');
  if (middle.auth.length % AUTH_GROUP !== 0 || ENDPOINT_CT_LEN[middle.auth.length / AUTH_GROUP] !== d.ct.length) {
    throw new ProtocolError('ERR_ENDPOINT_DESCRIPTOR', 'endpoint descriptor size does not match its client entries');
  }
  let bodyBytes = middle.inner;
  if (middle.auth.length > 0) {
    if (!options.client) throw new CryptoError('ERR_CLIENT_AUTH', 'endpoint descriptor is for authorised clients only');
    const cookie = openCookie(middle.auth, options.client);
    if (!cookie) throw new CryptoError('ERR_CLIENT_AUTH', 'endpoint descriptor does not list this client');
    const sub = subcredential(identityKey, period);
    const kc = clientLayerKey(cookie, sub);
    bodyBytes = decryptLayer(kc, middle.inner, concatBytes(CLIENT_CONTEXT, bk, u64(period)), 'endpoint descriptor client layer');
    crypto().wipe(kc, cookie, sub);
  }
  const body = decodeMessage(bodySchema, bodyBytes, MAX_ENDPOINT_CT_BYTES, 'endpoint descriptor body');
  checkBody(body);
  if (options.now !== undefined) {
    if (body.created > options.now + DESCRIPTOR_CLOCK_SKEW_MS) throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'endpoint descriptor created in the future');
    if (body.expires <= options.now) throw new ProtocolError('ERR_DESCRIPTOR_EXPIRED', 'endpoint descriptor expired');
  }
  return { ...body, revision: d.rev };
}
