/**
 * The message-mode mix packet (specs/mix.md §2): a Sphinx-style packet of one cell body (1019 bytes) at every hop.
 *
 *   packet = alpha (32) | gamma (16) | beta (MAX_MIX_HOPS * 56) | delta (691)
 *
 * Hop i computes s = X25519(y_i, alpha_i), derives rho/mu/pi/b from it, checks gamma = BLAKE2b-128_mu(beta | delta),
 * decrypts (beta || 0^56) with the ChaCha20 stream of rho (its routing slot, then the next beta), strips one payload
 * layer with the stream of pi, and blinds alpha for the next hop: alpha_{i+1} = X25519(b_i, alpha_i). The sender
 * draws one secret x and reaches every hop's s_i by applying x and then b_0..b_{i-1} to Y_i, since clamped X25519
 * scalars commute (§2.2). One group element per packet rather than one per hop keeps the slot at 56 bytes.
 *
 * Unlike Sphinx the MAC covers delta: without reply blocks the sender knows every hop's payload, so a tagging hop
 * is caught at the next honest one. The replay tag is a hash of s (§2.1), recorded under the key that opened it.
 *
 * Pure: randomness comes from the caller (the CSPRNG by default, a seeded source for vectors). Not here: the delay
 * queue and bounds (relay/mix.ts), path choice and cover streams (client/messaging/mix-mode.ts).
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { concatBytes, utf8, xorInto } from './bytes.js';
import { CELL_BODY_LEN } from './constants.js';
import { AlliumError, CryptoError, ProtocolError } from './errors.js';
import type { ReplayGuard } from './onion.js';

export const MIX_PACKET_LEN = CELL_BODY_LEN; // 1019
export const MAX_MIX_HOPS = 5;
export const MIX_ALPHA_LEN = 32;
export const MIX_MAC_LEN = 16;
export const MIX_SLOT_LEN = 56;
export const MIX_BETA_LEN = MAX_MIX_HOPS * MIX_SLOT_LEN; // 280
export const MIX_HEADER_LEN = MIX_ALPHA_LEN + MIX_MAC_LEN + MIX_BETA_LEN; // 328
export const MIX_PAYLOAD_LEN = MIX_PACKET_LEN - MIX_HEADER_LEN; // 691
/** Longest hold a routing slot may ask of a mix (specs/limits.md MAX_MIX_DELAY). */
export const MAX_MIX_DELAY_MS = 30_000;

export const MixSlotKind = { FORWARD: 1, DELIVER: 2, DROP: 3 } as const;

const LABEL = {
  rho: utf8('allium-v1:mix:rho'),
  mu: utf8('allium-v1:mix:mu'),
  pi: utf8('allium-v1:mix:pi'),
  blind: utf8('allium-v1:mix:blind'),
  replay: utf8('allium-v1:mix:replay'),
  inbox: utf8('allium-v1:mix:inbox'),
} as const;

const NONCE0 = new Uint8Array(12);

interface HopSecrets {
  rho: Uint8Array;
  mu: Uint8Array;
  pi: Uint8Array;
  b: Uint8Array;
  tag: Uint8Array;
}

function hopSecrets(alpha: Uint8Array, s: Uint8Array): HopSecrets {
  const c = crypto();
  return {
    rho: c.hash(32, s, LABEL.rho),
    mu: c.hash(32, s, LABEL.mu),
    pi: c.hash(32, s, LABEL.pi),
    b: c.hash(32, concatBytes(alpha, s), LABEL.blind),
    tag: c.hash(32, s, LABEL.replay).subarray(0, 16),
  };
}

function stream(key: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  crypto().chacha20Xor(out, out, NONCE0, 0, key);
  return out;
}

function mac(mu: Uint8Array, beta: Uint8Array, delta: Uint8Array): Uint8Array {
  return crypto().hash(MIX_MAC_LEN, concatBytes(beta, delta), mu);
}

/** The inbox a gateway files DELIVER payloads under: H(inbox_secret, "allium-v1:mix:inbox") (specs/mix.md §4.3). */
export function mixInbox(inboxSecret: Uint8Array): Uint8Array {
  if (inboxSecret.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'an inbox secret is 32 bytes');
  return crypto().hash(32, inboxSecret, LABEL.inbox);
}

/** One hop of a sender's path: the relay's identity, its mix (onion) key, and how long it is to hold the packet. */
export interface MixHop {
  readonly identity: Uint8Array;
  readonly mixKey: Uint8Array;
  readonly delayMs: number;
}

export type MixFinal = { readonly kind: 'deliver'; readonly inbox: Uint8Array } | { readonly kind: 'drop' };

export interface CreateMixPacketOptions {
  /** Random source; vectors pass a seeded one. Default: the CSPRNG. */
  random?: (n: number) => Uint8Array;
}

function writeSlot(kind: number, delayMs: number, address: Uint8Array | null, nextGamma: Uint8Array | null): Uint8Array {
  const slot = new Uint8Array(MIX_SLOT_LEN);
  slot[0] = kind;
  new DataView(slot.buffer).setUint32(1, delayMs);
  if (address) slot.set(address, 5);
  if (nextGamma) slot.set(nextGamma, 37);
  return slot;
}

/**
 * Builds a packet for `path` (first hop first) ending in `final`, carrying `payload` (exactly MIX_PAYLOAD_LEN
 * bytes). Throws ERR_MIX_PATH for an empty or too long path, one relay twice in a row, or a delay out of range.
 */
export function createMixPacket(path: readonly MixHop[], final: MixFinal, payload: Uint8Array, options: CreateMixPacketOptions = {}): Uint8Array {
  const c = crypto();
  const random = options.random ?? ((n: number) => c.random(n));
  const n = path.length;
  if (n < 1 || n > MAX_MIX_HOPS) throw new AlliumError('ERR_MIX_PATH', `a mix path has 1..${MAX_MIX_HOPS} hops, not ${n}`);
  if (payload.length !== MIX_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a mix payload is ${MIX_PAYLOAD_LEN} bytes`);
  path.forEach((hop, i) => {
    if (hop.identity.length !== 32 || hop.mixKey.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'mix hop keys must be 32 bytes');
    if (!Number.isInteger(hop.delayMs) || hop.delayMs < 0 || hop.delayMs > MAX_MIX_DELAY_MS) throw new AlliumError('ERR_MIX_PATH', 'mix delay out of range');
    // A relay may appear twice (a loop starts and ends at the sender's gateway), never twice in a row (§2).
    if (i > 0 && c.equal(hop.identity, path[i - 1]!.identity)) throw new AlliumError('ERR_MIX_PATH', 'consecutive mix hops must differ');
  });
  if (final.kind === 'deliver' && final.inbox.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'an inbox is 32 bytes');

  // Group elements and shared secrets (§2.2).
  const x = random(32);
  const alphas: Uint8Array[] = [c.x25519Public(x)];
  const secrets: HopSecrets[] = [];
  for (let i = 0; i < n; i++) {
    let s = c.x25519(x, path[i]!.mixKey);
    for (let j = 0; j < i; j++) s = c.x25519(secrets[j]!.b, s);
    const k = hopSecrets(alphas[i]!, s);
    c.wipe(s);
    secrets.push(k);
    if (i + 1 < n) alphas.push(c.x25519(k.b, alphas[i]!));
  }
  c.wipe(x);

  // Filler: what hops 0..n-2 append, as hop n-1 sees it (circuits.md §3.2).
  let filler: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < n - 1; i++) {
    const s = stream(secrets[i]!.rho, MIX_BETA_LEN + MIX_SLOT_LEN);
    const grown = concatBytes(filler, new Uint8Array(MIX_SLOT_LEN));
    xorInto(grown, s.subarray(MIX_BETA_LEN + MIX_SLOT_LEN - grown.length));
    filler = grown;
  }

  // Payload layers, innermost first: deltas[i] is what hop i receives.
  const deltas: Uint8Array[] = new Array<Uint8Array>(n + 1);
  deltas[n] = Uint8Array.from(payload);
  for (let i = n - 1; i >= 0; i--) {
    const d = Uint8Array.from(deltas[i + 1]!);
    xorInto(d, stream(secrets[i]!.pi, MIX_PAYLOAD_LEN));
    deltas[i] = d;
  }

  const last = n - 1;
  const finalSlot =
    final.kind === 'deliver'
      ? writeSlot(MixSlotKind.DELIVER, path[last]!.delayMs, final.inbox, null)
      : writeSlot(MixSlotKind.DROP, path[last]!.delayMs, null, null);
  const innerLen = MIX_BETA_LEN - filler.length;
  const inner = concatBytes(finalSlot, random(innerLen - MIX_SLOT_LEN));
  xorInto(inner, stream(secrets[last]!.rho, innerLen));
  let beta = concatBytes(inner, filler);
  let gamma = mac(secrets[last]!.mu, beta, deltas[last]!);
  for (let i = n - 2; i >= 0; i--) {
    const slot = writeSlot(MixSlotKind.FORWARD, path[i]!.delayMs, path[i + 1]!.identity, gamma);
    const b = concatBytes(slot, beta.subarray(0, MIX_BETA_LEN - MIX_SLOT_LEN));
    xorInto(b, stream(secrets[i]!.rho, MIX_BETA_LEN));
    beta = b;
    gamma = mac(secrets[i]!.mu, beta, deltas[i]!);
  }
  for (const k of secrets) c.wipe(k.rho, k.mu, k.pi, k.b);
  return concatBytes(alphas[0]!, gamma, beta, deltas[0]!);
}

export interface MixRelayContext {
  readonly identity: Uint8Array;
  /** Usable mix (onion) keys, current first. */
  readonly keys: readonly KeyPair[];
  readonly replay: ReplayGuard;
}

export type MixResult =
  | { readonly kind: 'forward'; readonly delayMs: number; readonly next: Uint8Array; readonly packet: Uint8Array }
  | { readonly kind: 'deliver'; readonly delayMs: number; readonly inbox: Uint8Array; readonly payload: Uint8Array }
  | { readonly kind: 'drop'; readonly delayMs: number };

function zeroFrom(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Processes a mix packet at a relay (specs/mix.md §2.3). Throws ERR_BAD_LENGTH, ERR_BAD_POINT, ERR_MIX_MAC,
 * ERR_MIX_REPLAY or ERR_MIX_SLOT; the caller drops the packet.
 */
export function processMixPacket(packet: Uint8Array, ctx: MixRelayContext): MixResult {
  const c = crypto();
  if (packet.length !== MIX_PACKET_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a mix packet is ${MIX_PACKET_LEN} bytes`);
  const alpha = packet.subarray(0, MIX_ALPHA_LEN);
  const gamma = packet.subarray(MIX_ALPHA_LEN, MIX_ALPHA_LEN + MIX_MAC_LEN);
  const beta = packet.subarray(MIX_ALPHA_LEN + MIX_MAC_LEN, MIX_HEADER_LEN);
  const delta = packet.subarray(MIX_HEADER_LEN);

  let found: { key: KeyPair; k: HopSecrets } | null = null;
  for (const key of ctx.keys) {
    const s = c.x25519(key.secretKey, alpha); // ERR_BAD_POINT for a small-order alpha
    const k = hopSecrets(alpha, s);
    c.wipe(s);
    if (c.equal(mac(k.mu, beta, delta), gamma)) {
      found = { key, k };
      break;
    }
    c.wipe(k.rho, k.mu, k.pi, k.b);
  }
  if (!found) throw new CryptoError('ERR_MIX_MAC', 'mix packet MAC does not verify under any mix key');
  const { k } = found;
  try {
    if (ctx.replay.checkAndRecord(found.key.publicKey, k.tag)) throw new ProtocolError('ERR_MIX_REPLAY', 'mix packet replayed');
    const plain = new Uint8Array(MIX_BETA_LEN + MIX_SLOT_LEN);
    plain.set(beta);
    xorInto(plain, stream(k.rho, plain.length));
    const slot = plain.subarray(0, MIX_SLOT_LEN);
    const kind = slot[0];
    const delayMs = new DataView(slot.buffer, slot.byteOffset).getUint32(1);
    if (delayMs > MAX_MIX_DELAY_MS) throw new ProtocolError('ERR_MIX_SLOT', 'mix delay over the limit');
    if (!zeroFrom(slot, 53, MIX_SLOT_LEN)) throw new ProtocolError('ERR_MIX_SLOT', 'reserved bytes of a mix slot are not zero');
    const payload = Uint8Array.from(delta);
    xorInto(payload, stream(k.pi, MIX_PAYLOAD_LEN));
    if (kind === MixSlotKind.FORWARD) {
      const next = Uint8Array.from(slot.subarray(5, 37));
      if (c.equal(next, ctx.identity)) throw new ProtocolError('ERR_MIX_SLOT', 'a mix packet may not be forwarded to its own relay');
      const out = concatBytes(c.x25519(k.b, alpha), slot.subarray(37, 53), plain.subarray(MIX_SLOT_LEN), payload);
      return { kind: 'forward', delayMs, next, packet: out };
    }
    if (!zeroFrom(slot, 37, 53)) throw new ProtocolError('ERR_MIX_SLOT', 'reserved bytes of a mix slot are not zero');
    if (kind === MixSlotKind.DELIVER) return { kind: 'deliver', delayMs, inbox: Uint8Array.from(slot.subarray(5, 37)), payload };
    if (kind === MixSlotKind.DROP) {
      if (!zeroFrom(slot, 5, 37)) throw new ProtocolError('ERR_MIX_SLOT', 'a drop slot has no address');
      return { kind: 'drop', delayMs };
    }
    throw new ProtocolError('ERR_MIX_SLOT', `unknown mix slot kind ${kind}`);
  } finally {
    c.wipe(k.rho, k.mu, k.pi, k.b);
  }
}
