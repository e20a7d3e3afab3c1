/**
 * The session handshake (specs/messaging.md §4): X3DH (Marlinspike and Perrin, 2016) without one-time prekeys, and
 * with the initiator's identity sent encrypted, as in Noise's IK pattern, so that only the recipient learns who is
 * writing. Its output starts a double-ratchet session (ratchet.ts).
 *
 *   IK_A, IK_B   the initiator's and the recipient's identity keys (Ed25519; ika/IKA, ikb/IKB their X25519 forms)
 *   SPK_B        the recipient's prekey (X25519), authenticated by IK_B: an introduction point's "enc" key from the
 *                endpoint descriptor, which the blinded identity key signs (endpoint-descriptor.ts)
 *   EK_A         the initiator's ephemeral X25519 key, fresh for each handshake
 *
 *   th   = H("allium-v1 session" | IK_B | SPK_B | EK_A, "allium-v1:session:transcript")
 *   k_id = H(th | X25519(ek, SPK_B) | X25519(ek, IKB), "allium-v1:session:identity-key")
 *   c_id = ChaCha20-Poly1305(k_id, 0^12, IK_A, AD = th)                                  48 bytes
 *   DH1 = X25519(ika, SPK_B)   DH2 = X25519(ek, IKB)   DH3 = X25519(ek, SPK_B)
 *   RK  = H(th | c_id | IK_A | DH1 | DH2 | DH3, "allium-v1:session:root-key")
 *   AD  = IK_A | IK_B                                     the session's associated data, in every message's MAC
 *   handshake = version u8 (1) | EK_A (32) | c_id (48)                                  81 bytes
 *
 * The initiator then starts RatchetSession.initiator(RK, SPK_B, AD) and sends its first message with the handshake;
 * the recipient, RatchetSession.responder(RK, SPK_B key pair, AD). Only the holders of ika (or of SPK_B's secret,
 * as in X3DH) and of both ikb and SPK_B's secret reach the same RK, so each side authenticates the other.
 *
 * What this does not give, as X3DH without one-time prekeys does not: replay protection for the handshake
 * itself (the recipient keeps `replayTag` in a replay filter for as long as SPK_B is valid, as Tor's introduction
 * points do for INTRODUCE2), and protection against an attacker holding SPK_B's secret impersonating others to B
 * (key-compromise impersonation). Identity keys serve for both Ed25519 and X25519 (by the RFC 7748 map), as in
 * libsodium's conversion functions; each use is separated by its label.
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import type { Identity } from './address.js';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './bytes.js';
import { CryptoError, ProtocolError } from './errors.js';
import { RatchetSession } from './ratchet.js';

export const HANDSHAKE_VERSION = 1;
export const HANDSHAKE_LEN = 81;
const NONCE0 = new Uint8Array(12);
const CONTEXT = utf8('allium-v1 session');
const L = {
  transcript: utf8('allium-v1:session:transcript'),
  identity: utf8('allium-v1:session:identity-key'),
  root: utf8('allium-v1:session:root-key'),
  replay: utf8('allium-v1:session:replay-tag'),
};

/** What the initiator knows of the recipient: its identity key (from the address) and a prekey it vouched for. */
export interface RecipientKeys {
  readonly identityKey: Uint8Array;
  readonly prekey: Uint8Array;
}

export interface HandshakeResult {
  readonly rootKey: Uint8Array;
  readonly ad: Uint8Array;
  /** A value unique to this handshake under this prekey, for the recipient's replay filter. */
  readonly replayTag: Uint8Array;
  readonly session: RatchetSession;
}

function transcript(recipientIdentity: Uint8Array, prekey: Uint8Array, ephemeral: Uint8Array): Uint8Array {
  return crypto().hash(32, concatBytes(CONTEXT, recipientIdentity, prekey, ephemeral), L.transcript);
}

function derive(th: Uint8Array, cId: Uint8Array, initiator: Uint8Array, dh1: Uint8Array, dh2: Uint8Array, dh3: Uint8Array): Uint8Array {
  const input = concatBytes(th, cId, initiator, dh1, dh2, dh3);
  const rk = crypto().hash(32, input, L.root);
  crypto().wipe(input, dh1, dh2, dh3);
  return rk;
}

function replayTag(prekey: Uint8Array, ephemeral: Uint8Array): Uint8Array {
  return crypto().hash(32, concatBytes(prekey, ephemeral), L.replay);
}

/** The initiator's side: the 81-byte handshake to send and its session. `ephemeral` (wiped) is for test vectors only. */
export function initiatorHandshake(
  initiator: Identity,
  recipient: RecipientKeys,
  ephemeral: KeyPair = crypto().x25519Keypair(),
): HandshakeResult & { readonly handshake: Uint8Array } {
  const c = crypto();
  const ikb = c.edPublicToX25519(recipient.identityKey);
  const ika = c.edSecretToX25519(initiator.secretKey);
  const th = transcript(recipient.identityKey, recipient.prekey, ephemeral.publicKey);
  const dh3 = c.x25519(ephemeral.secretKey, recipient.prekey);
  const dh2 = c.x25519(ephemeral.secretKey, ikb);
  const kIdInput = concatBytes(th, dh3, dh2);
  const kId = c.hash(32, kIdInput, L.identity);
  const cId = c.aeadEncrypt(initiator.publicKey, th, NONCE0, kId);
  const dh1 = c.x25519(ika, recipient.prekey);
  const rootKey = derive(th, cId, initiator.publicKey, dh1, dh2, dh3);
  c.wipe(ika, kIdInput, kId, ephemeral.secretKey);
  const ad = concatBytes(initiator.publicKey, recipient.identityKey);
  const handshake = new ByteWriter(HANDSHAKE_LEN).u8(HANDSHAKE_VERSION).bytes(ephemeral.publicKey).bytes(cId).done();
  return {
    handshake,
    rootKey,
    ad,
    replayTag: replayTag(recipient.prekey, ephemeral.publicKey),
    session: RatchetSession.initiator(rootKey, recipient.prekey, ad),
  };
}

/**
 * The recipient's side: who is writing, and the session. Throws ERR_BAD_LENGTH / ERR_SCHEMA (malformed),
 * ERR_MESSAGE_AUTH (the identity does not decrypt: not for this identity and prekey, or tampered), ERR_KEY_FORMAT
 * (the initiator's key is not a valid point).
 */
export function responderHandshake(
  recipient: { readonly identity: Identity; readonly prekey: KeyPair },
  handshake: Uint8Array,
): HandshakeResult & { readonly initiatorIdentityKey: Uint8Array } {
  const c = crypto();
  if (handshake.length !== HANDSHAKE_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a session handshake is ${HANDSHAKE_LEN} bytes`);
  const r = new ByteReader(handshake, 'session handshake');
  const version = r.u8();
  if (version !== HANDSHAKE_VERSION) throw new ProtocolError('ERR_SCHEMA', `session handshake version ${version}`);
  const ek = r.bytes(32).slice();
  const cId = r.bytes(48).slice();
  r.end();
  const fail = (e?: unknown): never => {
    throw new CryptoError('ERR_MESSAGE_AUTH', 'session handshake does not authenticate', { cause: e });
  };
  const ikb = c.edSecretToX25519(recipient.identity.secretKey);
  const th = transcript(recipient.identity.publicKey, recipient.prekey.publicKey, ek);
  let dh2: Uint8Array;
  let dh3: Uint8Array;
  try {
    dh3 = c.x25519(recipient.prekey.secretKey, ek);
    dh2 = c.x25519(ikb, ek);
  } catch (e) {
    c.wipe(ikb);
    return fail(e);
  }
  c.wipe(ikb);
  const kIdInput = concatBytes(th, dh3, dh2);
  const kId = c.hash(32, kIdInput, L.identity);
  const initiatorKey = c.aeadDecrypt(cId, th, NONCE0, kId);
  c.wipe(kIdInput, kId);
  if (!initiatorKey) {
    c.wipe(dh2, dh3);
    return fail();
  }
  if (!c.edIsValidPoint(initiatorKey)) {
    c.wipe(dh2, dh3);
    throw new ProtocolError('ERR_KEY_FORMAT', 'initiator identity key is not a valid point');
  }
  const dh1 = c.x25519(recipient.prekey.secretKey, c.edPublicToX25519(initiatorKey));
  const rootKey = derive(th, cId, initiatorKey, dh1, dh2, dh3);
  const ad = concatBytes(initiatorKey, recipient.identity.publicKey);
  return {
    initiatorIdentityKey: initiatorKey,
    rootKey,
    ad,
    replayTag: replayTag(recipient.prekey.publicKey, ek),
    session: RatchetSession.responder(rootKey, recipient.prekey, ad),
  };
}
