/**
 * Signed relay descriptors (specs/directory.md §2).
 *
 *   signed = CBOR { "b": body (CBOR bytes), "s": Ed25519 signature over ("allium-v1 descriptor" | body) }
 *   body   = CBOR map, fields below
 *
 * A descriptor is self-certifying: the signature must verify under the identity key it names. Verification also
 * checks the time window: not expired, not published in the future beyond the clock skew, and living at least
 * MIN_DESCRIPTOR_LIFETIME and at most MAX_DESCRIPTOR_LIFETIME.
 */
import { z } from 'zod';
import { crypto } from '../crypto/index.js';
import { concatBytes, toHex, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, validate, zBytes, zUint } from './cbor.js';
import { LINK_VERSION_MAX, LINK_VERSION_MIN } from './link-handshake.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import { parseExitPolicy } from './exit-policy.js';
import { isLinkUrl } from './dial-policy.js';

export const MAX_DESCRIPTOR_BYTES = 2048;
export const MAX_DESCRIPTOR_LIFETIME_MS = 24 * 3600 * 1000;
/**
 * Shortest `exp − pub` a descriptor may have (specs/directory.md §2.4): a descriptor that expires almost at once
 * serves no relay and only churns directories.
 */
export const MIN_DESCRIPTOR_LIFETIME_MS = 5_000;
export const DESCRIPTOR_CLOCK_SKEW_MS = 10 * 60 * 1000;
const SIGN_CONTEXT = utf8('allium-v1 descriptor');
/**
 * Bridges sign their descriptor under another context (specs/directory.md §9), so it never verifies as a public
 * descriptor: no relay can be made to accept a bridge into the directory, and a relay that gossips one loses the link.
 */
const BRIDGE_SIGN_CONTEXT = utf8('allium-v1 bridge descriptor');
/** 'relay': a public descriptor (the directory); 'bridge': a bridge's descriptor, handed only to its own clients. */
export type DescriptorKind = 'relay' | 'bridge';
const contextOf = (kind: DescriptorKind): Uint8Array => (kind === 'bridge' ? BRIDGE_SIGN_CONTEXT : SIGN_CONTEXT);

/** Capabilities a relay offers (specs/directory.md §2.2). */
export const RELAY_CAPABILITIES = ['store', 'intro', 'rendezvous', 'mix'] as const;

const bodySchema = z.strictObject({
  v: z.literal(1),
  id: zBytes(32),
  onion: zBytes(32),
  addr: z
    .string()
    .max(256)
    .regex(/^wss?:\/\/[^\s]+$/),
  nick: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z0-9_-]+$/),
  contact: z.string().max(256),
  family: z.array(zBytes(32)).max(32),
  bw: zUint(2 ** 40),
  exit: z.array(z.string().max(80)).max(64),
  caps: z.array(z.enum(RELAY_CAPABILITIES)).max(8),
  proto: z.array(zUint(0xffff)).min(1).max(8),
  pub: zUint(),
  exp: zUint(),
});
export type DescriptorBody = z.infer<typeof bodySchema>;

const signedSchema = z.strictObject({ b: zBytes(undefined, MAX_DESCRIPTOR_BYTES), s: zBytes(64) });

export interface Descriptor extends DescriptorBody {
  /** The signed encoding, as received or produced (what gossip forwards). */
  readonly raw: Uint8Array;
  /** BLAKE2b-256 of raw. */
  readonly digest: Uint8Array;
  readonly fingerprint: string;
}

export type DescriptorFields = Omit<DescriptorBody, 'v' | 'proto'> & { proto?: number[] };

/** Signs a descriptor with the relay's identity key. */
export function signDescriptor(fields: DescriptorFields, secretKey: Uint8Array, kind: DescriptorKind = 'relay'): Descriptor {
  const body: DescriptorBody = {
    v: 1,
    ...fields,
    proto: fields.proto ?? range(LINK_VERSION_MIN, LINK_VERSION_MAX),
  };
  validate(bodySchema, body, 'descriptor');
  if (!crypto().x25519IsUsable(body.onion)) throw new ProtocolError('ERR_DESCRIPTOR', 'onion key is an X25519 point of small order');
  parseExitPolicy(body.exit);
  if (!isLinkUrl(body.addr)) throw new ProtocolError('ERR_DESCRIPTOR', 'addr is not a link URL (no user information, query or fragment)');
  const b = encodeCbor(body);
  const s = crypto().sign(concatBytes(contextOf(kind), b), secretKey);
  const raw = encodeCbor({ b, s });
  if (raw.length > MAX_DESCRIPTOR_BYTES) throw new LimitError('MAX_DESCRIPTOR_BYTES', `descriptor is ${raw.length} bytes`);
  return { ...body, raw, digest: crypto().hash(32, raw), fingerprint: toHex(body.id) };
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}

/**
 * A signed descriptor decoded and checked against the schemas, its signature not yet checked (openDescriptor). Only
 * openDescriptor makes one, from its own copy of the bytes, so its fields are always those of its `raw`.
 */
class Opened {
  constructor(
    readonly raw: Uint8Array,
    readonly signed: { b: Uint8Array; s: Uint8Array },
    readonly body: DescriptorBody,
  ) {}
}
export type OpenedDescriptor = Pick<Opened, 'raw' | 'body'>;

/**
 * Decodes a signed descriptor and checks both layers against the schemas, without the signature or the time (specs/
 * directory.md §5.5: a relay decides whether it has room for a new identity before it spends a signature check). Hand
 * the result to verifyDescriptor, which then decodes nothing again. Throws ERR_CBOR_* / ERR_SCHEMA.
 */
export function openDescriptor(raw: Uint8Array): OpenedDescriptor {
  const own = Uint8Array.from(raw);
  const signed = decodeMessage(signedSchema, own, MAX_DESCRIPTOR_BYTES, 'signed descriptor');
  return new Opened(own, signed, decodeMessage(bodySchema, signed.b, MAX_DESCRIPTOR_BYTES, 'descriptor'));
}

/**
 * Decodes and verifies a signed descriptor at time `now` (or one openDescriptor decoded). Throws ERR_SIGNATURE
 * (forged), ERR_DESCRIPTOR_EXPIRED, ERR_DESCRIPTOR_FUTURE, ERR_DESCRIPTOR (inconsistent), ERR_CBOR_* / ERR_SCHEMA
 * (malformed), ERR_CBOR_TOO_LARGE.
 */
export function verifyDescriptor(
  input: Uint8Array | OpenedDescriptor,
  now: number,
  skewMs = DESCRIPTOR_CLOCK_SKEW_MS,
  kind: DescriptorKind = 'relay',
): Descriptor {
  const opened = input instanceof Uint8Array ? openDescriptor(input) : input;
  if (!(opened instanceof Opened)) throw new AlliumError('ERR_INTERNAL', 'a descriptor opened elsewhere than openDescriptor');
  const { raw, signed, body } = opened;
  if (!crypto().verify(signed.s, concatBytes(contextOf(kind), signed.b), body.id)) {
    throw new CryptoError('ERR_SIGNATURE', 'descriptor signature does not verify');
  }
  if (body.exp - body.pub < MIN_DESCRIPTOR_LIFETIME_MS || body.exp - body.pub > MAX_DESCRIPTOR_LIFETIME_MS) {
    throw new ProtocolError('ERR_DESCRIPTOR', 'descriptor lifetime out of range');
  }
  if (body.pub > now + skewMs) throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'descriptor published in the future');
  if (body.exp <= now) throw new ProtocolError('ERR_DESCRIPTOR_EXPIRED', 'descriptor expired');
  for (const f of body.family) if (crypto().equal(f, body.id)) throw new ProtocolError('ERR_DESCRIPTOR', 'a relay lists itself in its family');
  if (!crypto().x25519IsUsable(body.onion)) throw new ProtocolError('ERR_DESCRIPTOR', 'onion key is an X25519 point of small order');
  if (!isLinkUrl(body.addr)) throw new ProtocolError('ERR_DESCRIPTOR', 'addr is not a link URL (no user information, query or fragment)');
  parseExitPolicy(body.exit);
  return { ...body, raw, digest: crypto().hash(32, raw), fingerprint: toHex(body.id) };
}
