/**
 * A Messenger's message in message mode (specs/mix.md §8.1–§8.2): the mix address an identity derives for itself,
 * and the authenticated box that travels as the `data` of a mix payload.
 *
 *   inbox_secret = H(seed, "allium-v1:mix:inbox-secret");  y = H(seed, "allium-v1:mix:key");  key = X25519(y, G)
 *   k    = H(pair_secret, "allium-v1:mix:messenger")
 *   ad   = "allium-v1:mix:messenger" | u8(1) | A_from | A_to
 *   data = u8(1) | A_from (32) | nonce (24) | XChaCha20-Poly1305_k(nonce, ad, id (16) | body)
 *
 * The tag is a MAC under the pair's key (as offline items', specs/messaging.md §9): it authenticates the sender to
 * the recipient alone, never to a third party. Pure: no I/O.
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import type { Identity } from './address.js';
import { concatBytes, utf8 } from './bytes.js';
import { AlliumError, CryptoError, LimitError } from './errors.js';
import { pairSecret } from './mailbox.js';
import { MIX_PAYLOAD_LEN, mixInbox } from './mix-packet.js';

/** Version of the message box. */
export const MIX_MESSAGE_VERSION = 1;
/** Data one message-mode packet carries (MAX_MIX_MESSAGE, mix.md §5.2): 691 − 48 (seal) − 19 (frame header). */
const MIX_DATA_LEN = MIX_PAYLOAD_LEN - 48 - 19;
const NONCE_LEN = 24;
const ID_LEN = 16;
const TAG_LEN = 16;
/** Bytes of the box around the body: version, sender, nonce, id, tag. */
export const MIX_MESSAGE_OVERHEAD = 1 + 32 + NONCE_LEN + ID_LEN + TAG_LEN; // 89
/** Longest body a Messenger sends in message mode (MAX_MIX_MESSENGER_BYTES): 535 bytes. */
export const MAX_MIX_MESSENGER_BYTES = MIX_DATA_LEN - MIX_MESSAGE_OVERHEAD;

const LABEL = {
  inboxSecret: utf8('allium-v1:mix:inbox-secret'),
  key: utf8('allium-v1:mix:key'),
  messenger: utf8('allium-v1:mix:messenger'),
};

/** A mix address's 96 bytes: gateway | inbox | key (mix.md §1). */
export const MIX_ADDRESS_LEN = 96;

/** The inbox secret and X25519 key pair an identity uses in message mode (mix.md §8.1). */
export function mixSecretsOf(identity: Identity): { inboxSecret: Uint8Array; keys: KeyPair; inbox: Uint8Array } {
  const c = crypto();
  const seed = identity.secretKey.subarray(0, 32);
  const inboxSecret = c.hash(32, seed, LABEL.inboxSecret);
  const keys = c.x25519Keypair(c.hash(32, seed, LABEL.key));
  return { inboxSecret, keys, inbox: mixInbox(inboxSecret) };
}

function boxKey(self: Identity, peer: Uint8Array): Uint8Array {
  const pair = pairSecret(self, peer);
  const k = crypto().hash(32, pair, LABEL.messenger);
  crypto().wipe(pair);
  return k;
}

function adOf(from: Uint8Array, to: Uint8Array): Uint8Array {
  return concatBytes(LABEL.messenger, Uint8Array.of(MIX_MESSAGE_VERSION), from, to);
}

/**
 * The box of `body` from `self` to `to` under message id `id` (`nonce`: 24 bytes, fresh from the CSPRNG unless a
 * vector gives it). Throws LimitError MAX_MIX_MESSENGER_BYTES, ERR_KEY_FORMAT (not a valid identity key).
 */
export function sealMixMessage(self: Identity, to: Uint8Array, id: Uint8Array, body: Uint8Array, nonce: Uint8Array = crypto().random(NONCE_LEN)): Uint8Array {
  if (body.length > MAX_MIX_MESSENGER_BYTES)
    throw new LimitError('MAX_MIX_MESSENGER_BYTES', `a message in message mode is at most ${MAX_MIX_MESSENGER_BYTES} bytes`);
  if (id.length !== ID_LEN || nonce.length !== NONCE_LEN) throw new AlliumError('ERR_BAD_LENGTH', 'a message id is 16 bytes and a nonce 24');
  const k = boxKey(self, to);
  try {
    const box = crypto().xaeadEncrypt(concatBytes(id, body), adOf(self.publicKey, to), nonce, k);
    return concatBytes(Uint8Array.of(MIX_MESSAGE_VERSION), self.publicKey, nonce, box);
  } finally {
    crypto().wipe(k);
  }
}

/**
 * Opens a box addressed to `self`: the sender's identity key, the message id and the body. Throws ERR_MESSAGE_AUTH
 * for anything that is not a version 1 box from a valid identity key that opens under the pair's key.
 */
export function openMixMessage(self: Identity, data: Uint8Array): { from: Uint8Array; id: Uint8Array; body: Uint8Array } {
  const c = crypto();
  if (data.length < MIX_MESSAGE_OVERHEAD || data.length > MIX_DATA_LEN || data[0] !== MIX_MESSAGE_VERSION)
    throw new CryptoError('ERR_MESSAGE_AUTH', 'not a message-mode message');
  const from = data.slice(1, 33);
  if (!c.edIsValidPoint(from)) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode message names no valid sender');
  const nonce = data.subarray(33, 33 + NONCE_LEN);
  const k = boxKey(self, from);
  let plain: Uint8Array | null;
  try {
    plain = c.xaeadDecrypt(data.subarray(33 + NONCE_LEN), adOf(from, self.publicKey), nonce, k);
  } finally {
    c.wipe(k);
  }
  if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode message does not open under the pair key');
  return { from, id: plain.slice(0, ID_LEN), body: plain.slice(ID_LEN) };
}
