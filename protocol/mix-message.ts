/**
 * A Messenger's message in message mode (specs/mix.md §8.1–§8.2): the mix address an identity derives for itself,
 * and the authenticated box that travels as the `data` of a mix payload.
 *
 *   inbox_secret = H(seed, "allium-v1:mix:inbox-secret");  y = H(seed, "allium-v1:mix:key");  key = X25519(y, G)
 *   k    = H(pair_secret, "allium-v1:mix:messenger")
 *   ad   = "allium-v1:mix:messenger" | u8(kind) | A_from | A_to
 *   data = u8(kind) | A_from (32) | nonce (24) | XChaCha20-Poly1305_k(nonce, ad, id (16) | body)
 *
 * kind 1 is a message, kind 2 an acknowledgement of the message `id` (empty body, mix.md §8.5), kind 3 an address
 * box whose body is version 1 | seq u64 | the sender's mix address (105 bytes, mix.md §8.2, §8.6: `seq` strictly
 * increasing at the sender, so a receiver can ignore an older address), kind 4 an acknowledgement batch whose body
 * is version 1 | 1 to MIX_ACK_BATCH (33) ids of 16 bytes (mix.md §8.5), kind 5 a fragment of a message over
 * MAX_MIX_MESSENGER_BYTES whose body is version 1 | index | count | chunk (mix.md §8.4: all fragments of a message
 * share its id); the kind is in the associated data, so a box of one kind never opens as another.
 *
 * A sender that reads kind 4 and kind 5 says so in every box it seals: its nonce is 16 random bytes followed by
 * MIX_READS_FRAGMENTS_MARK and MIX_READS_BATCHES_MARK (mix.md §8.2), which an older messenger draws at random like
 * the rest and ignores; the recipient acknowledges that box in a batch only when its nonce ends so (`readsBatches`,
 * mix.md §8.5), and a sender fragments to a contact only while the contact's last box carried the fragments mark
 * (`readsFragments`, mix.md §8.4).
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

/** Kind (and version) byte of a message box. */
export const MIX_MESSAGE_VERSION = 1;
/** Kind byte of an acknowledgement box (mix.md §8.5). */
export const MIX_ACK_KIND = 2;
/** Kind byte of an address box: the sender's (new) mix address (mix.md §8.6). */
export const MIX_ADDRESS_KIND = 3;
/** Kind byte of an acknowledgement batch: the ids of several boxes from its recipient (mix.md §8.2, §8.5). */
export const MIX_ACK_BATCH_KIND = 4;
/** Version byte of an acknowledgement batch's body. */
export const MIX_ACK_BATCH_VERSION = 1;
/** Kind byte of a fragment of a message over MAX_MIX_MESSENGER_BYTES (mix.md §8.4). */
export const MIX_FRAGMENT_KIND = 5;
/** Version byte of a fragment's body. */
export const MIX_FRAGMENT_VERSION = 1;
/** Data one message-mode packet carries (MAX_MIX_MESSAGE, mix.md §5.2): 691 − 48 (seal) − 19 (frame header). */
const MIX_DATA_LEN = MIX_PAYLOAD_LEN - 48 - 19;
const NONCE_LEN = 24;
const ID_LEN = 16;
const TAG_LEN = 16;
/** Bytes of the box around the body: version, sender, nonce, id, tag. */
export const MIX_MESSAGE_OVERHEAD = 1 + 32 + NONCE_LEN + ID_LEN + TAG_LEN; // 89
/** Longest body a Messenger sends in message mode (MAX_MIX_MESSENGER_BYTES): 535 bytes. */
export const MAX_MIX_MESSENGER_BYTES = MIX_DATA_LEN - MIX_MESSAGE_OVERHEAD;
/** Ids one acknowledgement batch carries at most (MIX_ACK_BATCH): version (1) + 16 n ≤ 535, so 33. */
export const MIX_ACK_BATCH = Math.floor((MAX_MIX_MESSENGER_BYTES - 1) / ID_LEN);
/** A message's bytes in one fragment (MIX_FRAGMENT_CHUNK, mix.md §8.4): 535 − version, index, count = 532. */
export const MIX_FRAGMENT_CHUNK = MAX_MIX_MESSENGER_BYTES - 3;
/** Fragments of one message at most (MIX_MAX_FRAGMENTS). */
export const MIX_MAX_FRAGMENTS = 16;
/** Longest body a Messenger sends in message mode, in fragments (MAX_MIX_FRAGMENTED_BYTES): 8,512 bytes. */
export const MAX_MIX_FRAGMENTED_BYTES = MIX_MAX_FRAGMENTS * MIX_FRAGMENT_CHUNK;

const LABEL = {
  inboxSecret: utf8('allium-v1:mix:inbox-secret'),
  key: utf8('allium-v1:mix:key'),
  messenger: utf8('allium-v1:mix:messenger'),
};

/**
 * The last 4 bytes of the nonce of every box from a messenger that reads acknowledgement batches (kind 4; mix.md §8.2,
 * §8.5): "ack4". A messenger from before batches draws all 24 bytes at random, so 1 box in 2^32 of its ends so by chance.
 */
export const MIX_READS_BATCHES_MARK = Uint8Array.of(0x61, 0x63, 0x6b, 0x34);

/**
 * Bytes 16 to 20 of the nonce of every box from a messenger that reads fragments (kind 5; mix.md §8.2, §8.4): "frg5".
 * An older messenger draws them at random, so 1 box in 2^32 of its carries it by chance.
 */
export const MIX_READS_FRAGMENTS_MARK = Uint8Array.of(0x66, 0x72, 0x67, 0x35);
const MARKS_AT = NONCE_LEN - MIX_READS_BATCHES_MARK.length - MIX_READS_FRAGMENTS_MARK.length; // 16

/** A fresh nonce for a box: 16 bytes from the CSPRNG, then MIX_READS_FRAGMENTS_MARK and MIX_READS_BATCHES_MARK (mix.md §8.2). */
export function mixBoxNonce(): Uint8Array {
  return concatBytes(crypto().random(MARKS_AT), MIX_READS_FRAGMENTS_MARK, MIX_READS_BATCHES_MARK);
}

/** Whether a box's nonce ends with MIX_READS_BATCHES_MARK: its sender reads kind 4 (mix.md §8.5). */
function readsBatchesOf(nonce: Uint8Array): boolean {
  return crypto().equal(nonce.subarray(NONCE_LEN - MIX_READS_BATCHES_MARK.length), MIX_READS_BATCHES_MARK);
}

/** Whether a box's nonce carries MIX_READS_FRAGMENTS_MARK before the last 4 bytes: its sender reads kind 5 (mix.md §8.4). */
function readsFragmentsOf(nonce: Uint8Array): boolean {
  return crypto().equal(nonce.subarray(MARKS_AT, MARKS_AT + MIX_READS_FRAGMENTS_MARK.length), MIX_READS_FRAGMENTS_MARK);
}

/** A mix address's 96 bytes: gateway | inbox | key (mix.md §1). */
export const MIX_ADDRESS_LEN = 96;
/** Version byte of an address box's body (mix.md §8.2). */
export const MIX_ADDRESS_BOX_VERSION = 1;
/** An address box's body: version (1) | seq u64 | mix address (96) = 105 bytes. */
export const MIX_ADDRESS_BODY_LEN = 1 + 8 + MIX_ADDRESS_LEN;
/**
 * How far ahead of the recipient's clock an address box's sequence may be (MIX_SEQ_AHEAD, mix.md §8.6): one further
 * ahead is refused, neither applied nor acknowledged, so a sender's clock that was once far ahead cannot freeze its
 * contacts' records until real time catches up.
 */
export const MIX_SEQ_AHEAD_MS = 86_400_000;

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

function adOf(kind: number, from: Uint8Array, to: Uint8Array): Uint8Array {
  return concatBytes(LABEL.messenger, Uint8Array.of(kind), from, to);
}

/**
 * A box of any `kind` and `body`, unchecked beyond the id and nonce lengths: for vectors and tests that build boxes
 * a receiver must refuse. Senders use sealMixMessage, sealMixAck, sealMixAckBatch and sealMixAddress.
 */
export function sealMixBox(
  kind: number,
  self: Identity,
  to: Uint8Array,
  id: Uint8Array,
  body: Uint8Array,
  nonce: Uint8Array = crypto().random(NONCE_LEN),
): Uint8Array {
  return seal(kind, self, to, id, body, nonce);
}

function seal(kind: number, self: Identity, to: Uint8Array, id: Uint8Array, body: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (id.length !== ID_LEN || nonce.length !== NONCE_LEN) throw new AlliumError('ERR_BAD_LENGTH', 'a message id is 16 bytes and a nonce 24');
  const k = boxKey(self, to);
  try {
    const box = crypto().xaeadEncrypt(concatBytes(id, body), adOf(kind, self.publicKey, to), nonce, k);
    return concatBytes(Uint8Array.of(kind), self.publicKey, nonce, box);
  } finally {
    crypto().wipe(k);
  }
}

/**
 * The box of `body` from `self` to `to` under message id `id` (`nonce`: 24 bytes, mixBoxNonce() unless a vector
 * gives it; so for every sealer below). Throws LimitError MAX_MIX_MESSENGER_BYTES, ERR_KEY_FORMAT (not a valid identity key).
 */
export function sealMixMessage(self: Identity, to: Uint8Array, id: Uint8Array, body: Uint8Array, nonce: Uint8Array = mixBoxNonce()): Uint8Array {
  if (body.length > MAX_MIX_MESSENGER_BYTES)
    throw new LimitError('MAX_MIX_MESSENGER_BYTES', `a message in message mode is at most ${MAX_MIX_MESSENGER_BYTES} bytes`);
  return seal(MIX_MESSAGE_VERSION, self, to, id, body, nonce);
}

/**
 * The acknowledgement from `self` to `to` of the message `id` (mix.md §8.5): a kind 2 box with an empty body, 89
 * bytes. Throws ERR_KEY_FORMAT (not a valid identity key), ERR_BAD_LENGTH.
 */
export function sealMixAck(self: Identity, to: Uint8Array, id: Uint8Array, nonce: Uint8Array = mixBoxNonce()): Uint8Array {
  return seal(MIX_ACK_KIND, self, to, id, new Uint8Array(0), nonce);
}

/**
 * The acknowledgement batch from `self` to `to` of the boxes `ids` (mix.md §8.2, §8.5): a kind 4 box under a random
 * `id` of its own (`batchId`, fresh unless a vector gives it), whose body is version 1 | the ids, 90 + 16 n bytes.
 * Throws ERR_BAD_LENGTH (no id, more than MIX_ACK_BATCH, an id that is not 16 bytes), ERR_KEY_FORMAT.
 */
export function sealMixAckBatch(
  self: Identity,
  to: Uint8Array,
  ids: readonly Uint8Array[],
  batchId: Uint8Array = crypto().random(ID_LEN),
  nonce: Uint8Array = mixBoxNonce(),
): Uint8Array {
  if (ids.length === 0 || ids.length > MIX_ACK_BATCH || ids.some((id) => id.length !== ID_LEN))
    throw new AlliumError('ERR_BAD_LENGTH', `an acknowledgement batch holds 1 to ${MIX_ACK_BATCH} ids of 16 bytes`);
  return seal(MIX_ACK_BATCH_KIND, self, to, batchId, concatBytes(Uint8Array.of(MIX_ACK_BATCH_VERSION), ...ids), nonce);
}

/**
 * The address box from `self` to `to` (mix.md §8.2, §8.6): a kind 3 box whose body is version 1 | `seq` (u64,
 * big-endian: the sender's address sequence, strictly increasing) | `self`'s mix address `mix`, 194 bytes. Throws
 * ERR_KEY_FORMAT (not a valid identity key, or a mix address that is not 3 × 32 bytes with a valid gateway point),
 * ERR_BAD_LENGTH (id, nonce, or a `seq` that is not an integer in [0, 2^53 − 1]).
 */
export function sealMixAddress(
  self: Identity,
  to: Uint8Array,
  id: Uint8Array,
  mix: { gateway: Uint8Array; inbox: Uint8Array; key: Uint8Array },
  seq: number,
  nonce: Uint8Array = mixBoxNonce(),
): Uint8Array {
  if (mix.gateway.length !== 32 || mix.inbox.length !== 32 || !crypto().x25519IsUsable(mix.key) || !crypto().edIsValidPoint(mix.gateway))
    throw new AlliumError('ERR_KEY_FORMAT', 'a mix address is a gateway identity, an inbox and a usable X25519 key of 32 bytes each');
  if (!Number.isSafeInteger(seq) || seq < 0) throw new AlliumError('ERR_BAD_LENGTH', 'an address sequence is an integer from 0 to 2^53 − 1');
  const head = new Uint8Array(9);
  head[0] = MIX_ADDRESS_BOX_VERSION;
  const dv = new DataView(head.buffer);
  dv.setUint32(1, Math.floor(seq / 2 ** 32));
  dv.setUint32(5, seq >>> 0);
  return seal(MIX_ADDRESS_KIND, self, to, id, concatBytes(head, mix.gateway, mix.inbox, mix.key), nonce);
}

/** How many fragments a message of `length` bytes is sent in (mix.md §8.4): 1 when it fits one box. */
export function mixFragmentCount(length: number): number {
  return length <= MAX_MIX_MESSENGER_BYTES ? 1 : Math.ceil(length / MIX_FRAGMENT_CHUNK);
}

/**
 * The fragment boxes of `body` from `self` to `to` under the message id `id` (mix.md §8.4), in order: kind 5 boxes
 * whose bodies are version 1 | index | count | the index-th MIX_FRAGMENT_CHUNK bytes (the last may be shorter).
 * `nonces`: one for each fragment, mixBoxNonce() unless a vector gives them. Throws LimitError
 * MAX_MIX_FRAGMENTED_BYTES (over it), ERR_BAD_LENGTH (a body that fits one box: it is never fragmented), ERR_KEY_FORMAT.
 */
export function sealMixFragments(self: Identity, to: Uint8Array, id: Uint8Array, body: Uint8Array, nonces?: readonly Uint8Array[]): Uint8Array[] {
  if (body.length > MAX_MIX_FRAGMENTED_BYTES)
    throw new LimitError('MAX_MIX_FRAGMENTED_BYTES', `a message in message mode is at most ${MAX_MIX_FRAGMENTED_BYTES} bytes`);
  const count = mixFragmentCount(body.length);
  if (count < 2) throw new AlliumError('ERR_BAD_LENGTH', `a message of at most ${MAX_MIX_MESSENGER_BYTES} bytes is not fragmented`);
  return Array.from({ length: count }, (_, i) => {
    const chunk = body.subarray(i * MIX_FRAGMENT_CHUNK, Math.min((i + 1) * MIX_FRAGMENT_CHUNK, body.length));
    return seal(MIX_FRAGMENT_KIND, self, to, id, concatBytes(Uint8Array.of(MIX_FRAGMENT_VERSION, i, count), chunk), nonces?.[i] ?? mixBoxNonce());
  });
}

/**
 * An opened box: a message (kind 1), an acknowledgement of the message `id` (kind 2, empty body), an address box
 * (kind 3: `body` is the 96-byte address, `mix` the same split into its parts, `seq` its address sequence), or an
 * acknowledgement batch (kind 4: `acked` the ids it acknowledges, 1 to MIX_ACK_BATCH, repeats as sent; `id` the
 * batch's own, which acknowledges nothing), or a fragment (kind 5: `fragment`, `id` the whole message's).
 */
export interface OpenedMixMessage {
  readonly kind: 'message' | 'ack' | 'address' | 'acks' | 'fragment';
  readonly from: Uint8Array;
  readonly id: Uint8Array;
  readonly body: Uint8Array;
  readonly mix?: { readonly gateway: Uint8Array; readonly inbox: Uint8Array; readonly key: Uint8Array };
  readonly seq?: number;
  readonly acked?: readonly Uint8Array[];
  /** A fragment (kind 5, mix.md §8.4): its index, the message's fragment count, and its bytes of the message. */
  readonly fragment?: { readonly index: number; readonly count: number; readonly chunk: Uint8Array };
  /** The box's nonce ends with MIX_READS_BATCHES_MARK: its sender reads acknowledgement batches (mix.md §8.5). */
  readonly readsBatches: boolean;
  /** The box's nonce carries MIX_READS_FRAGMENTS_MARK: its sender reads fragments (mix.md §8.4). */
  readonly readsFragments: boolean;
}

/**
 * Opens a box addressed to `self`: its kind, the sender's identity key, the message id and the body. Throws
 * ERR_MESSAGE_AUTH for anything that is not a kind 1 to 4 box from a valid identity key that opens under the
 * pair's key, for an acknowledgement with a body, for an address box whose body is not version 1, a sequence of
 * at most 2^53 − 1 and a mix address (105 bytes; the first, 96-byte form is refused), and for a batch whose body is
 * not version 1 and 1 to MIX_ACK_BATCH whole ids, and for a fragment that is not version 1, an index below a count
 * of 2 to MIX_MAX_FRAGMENTS, and a chunk of MIX_FRAGMENT_CHUNK bytes (1 to MIX_FRAGMENT_CHUNK for the last).
 */
export function openMixMessage(self: Identity, data: Uint8Array): OpenedMixMessage {
  const c = crypto();
  const kind = data[0];
  if (
    data.length < MIX_MESSAGE_OVERHEAD ||
    data.length > MIX_DATA_LEN ||
    (kind !== MIX_MESSAGE_VERSION && kind !== MIX_ACK_KIND && kind !== MIX_ADDRESS_KIND && kind !== MIX_ACK_BATCH_KIND && kind !== MIX_FRAGMENT_KIND)
  )
    throw new CryptoError('ERR_MESSAGE_AUTH', 'not a message-mode message');
  const from = data.slice(1, 33);
  if (!c.edIsValidPoint(from)) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode message names no valid sender');
  const nonce = data.subarray(33, 33 + NONCE_LEN);
  const k = boxKey(self, from);
  let plain: Uint8Array | null;
  try {
    plain = c.xaeadDecrypt(data.subarray(33 + NONCE_LEN), adOf(kind, from, self.publicKey), nonce, k);
  } finally {
    c.wipe(k);
  }
  if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode message does not open under the pair key');
  if (kind === MIX_ACK_KIND && plain.length !== ID_LEN) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode acknowledgement carries a body');
  const id = plain.slice(0, ID_LEN);
  const body = plain.slice(ID_LEN);
  const marks = { readsBatches: readsBatchesOf(nonce), readsFragments: readsFragmentsOf(nonce) };
  if (kind === MIX_FRAGMENT_KIND) {
    const [version, index, count] = [body[0], body[1]!, body[2]!];
    const chunk = body.slice(3);
    const last = index === count - 1;
    if (
      version !== MIX_FRAGMENT_VERSION ||
      count < 2 ||
      count > MIX_MAX_FRAGMENTS ||
      index >= count ||
      (last ? chunk.length < 1 || chunk.length > MIX_FRAGMENT_CHUNK : chunk.length !== MIX_FRAGMENT_CHUNK)
    )
      throw new CryptoError(
        'ERR_MESSAGE_AUTH',
        `a message-mode fragment is not version 1 with an index below a count of 2 to ${MIX_MAX_FRAGMENTS} and a whole chunk`,
      );
    return { kind: 'fragment', from, id, body, fragment: { index, count, chunk }, ...marks };
  }
  if (kind === MIX_ACK_BATCH_KIND) {
    const n = (body.length - 1) / ID_LEN;
    if (body[0] !== MIX_ACK_BATCH_VERSION || !Number.isInteger(n) || n < 1 || n > MIX_ACK_BATCH)
      throw new CryptoError('ERR_MESSAGE_AUTH', `a message-mode acknowledgement batch is not version 1 with 1 to ${MIX_ACK_BATCH} ids`);
    const acked = Array.from({ length: n }, (_, i) => body.slice(1 + i * ID_LEN, 1 + (i + 1) * ID_LEN));
    return { kind: 'acks', from, id, body, acked, ...marks };
  }
  if (kind === MIX_ADDRESS_KIND) {
    if (body.length !== MIX_ADDRESS_BODY_LEN || body[0] !== MIX_ADDRESS_BOX_VERSION)
      throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode address box is not of version 1');
    const dv = new DataView(body.buffer, body.byteOffset, 9);
    const high = dv.getUint32(1);
    if (high >= 2 ** 21) throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode address box has a sequence over 2^53 − 1');
    const seq = high * 2 ** 32 + dv.getUint32(5);
    const address = body.slice(9);
    const mix = { gateway: address.slice(0, 32), inbox: address.slice(32, 64), key: address.slice(64, MIX_ADDRESS_LEN) };
    if (!c.edIsValidPoint(mix.gateway) || !c.x25519IsUsable(mix.key))
      throw new CryptoError('ERR_MESSAGE_AUTH', 'a message-mode address box carries no mix address');
    return { kind: 'address', from, id, body: address, mix, seq, ...marks };
  }
  return { kind: kind === MIX_ACK_KIND ? 'ack' : 'message', from, id, body, ...marks };
}
