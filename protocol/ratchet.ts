/**
 * The double ratchet (specs/messaging.md §5), as in Signal's specification (Perrin and Marlinspike, 2016), over
 * X25519, BLAKE2b and ChaCha20-Poly1305-IETF. A session starts from the root key and associated data of the
 * handshake (message-handshake.ts).
 *
 *   KDF_RK(rk, dh) = (K(rk, "allium-v1:ratchet:rk" | dh), K(rk, "allium-v1:ratchet:ck" | dh))  → (rk', ck)
 *   KDF_CK(ck)     = (K(ck, "allium-v1:ratchet:next"), K(ck, "allium-v1:ratchet:mk"))        → (ck', mk)
 *     where K(k, x) = BLAKE2b-256 keyed with k over x (a PRF in k, as HMAC is in Signal's KDF chains)
 *   header  = version u8 (1) | dh (32) | c u32 | pn u32 | n u32                              45 bytes
 *   message = header | ChaCha20-Poly1305(mk, 0^12, plaintext, AD = session AD | header)
 *
 * dh, pn and n are Signal's: the sender's ratchet key, the length of its previous sending chain, and the message's
 * number in its chain. c is an addition: the number of the sender's sending chain (0, 1, 2, ...). A side makes a
 * new sending chain only after receiving a message of the other's latest chain, so chains arrive in order: a
 * message of chain c is either of the current receiving chain, or of the next (a DH ratchet step), or of an older
 * one, whose keys are all used or kept as skipped keys. So a replay from any closed chain is recognised exactly,
 * with no list of old ratchet keys (Signal's implementations keep a few and cannot tell older replays from
 * forgeries).
 *
 * Each mk encrypts one message, so the zero nonce never repeats under a key. The header is not encrypted but is
 * authenticated with the body; the session AD binds both identity keys, so a message authenticates its sender.
 *
 * Out of order: a message ahead of the chain makes its predecessors' keys be derived and kept (at most MAX_SKIP
 * per step; the session holds at most MAX_SKIP, dropping the oldest). A message whose key is no longer held (its
 * key was used or dropped, or its chain is closed) is refused with ERR_MESSAGE_REPLAY: a key decrypts once.
 * decrypt() changes nothing unless the message authenticates, so forged or tampered messages cannot disturb the
 * session. Used and replaced keys are wiped (forward secrecy); every round trip brings fresh X25519 keys into the
 * root chain (post-compromise security).
 *
 * Ordering is the transport's job, but every message carries what the receiver needs to put it back in order:
 * `seq`, the sender's count of messages before this one in the session (0, 1, 2, ...), computed from the chain
 * lengths (pn) in the headers.
 *
 * Not done here: header encryption (Signal's variant), one-time prekeys, and deleting skipped keys by age (the
 * caller may drop a session's oldest keys at any time by persisting and pruning; MAX_SKIP bounds them regardless).
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './bytes.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import { PAD_MAX_BUCKET } from './padding.js';
import { decodeRatchetState, encodeRatchetState, MAX_SESSION_AD_BYTES, MAX_SKIP, skippedId, type RatchetState, type SkippedKey } from './ratchet-state.js';

export { MAX_SKIP } from './ratchet-state.js';

export const RATCHET_VERSION = 1;
export const RATCHET_HEADER_LEN = 45;
export const RATCHET_TAG_LEN = 16;
/** Bytes a message adds to its plaintext: pad with this overhead so that messages fill padding buckets exactly. */
export const RATCHET_OVERHEAD = RATCHET_HEADER_LEN + RATCHET_TAG_LEN; // 61
/** Longest message accepted: the largest padding bucket. */
export const MAX_MESSAGE_BYTES = PAD_MAX_BUCKET;
const MAX_COUNTER = 0xffffffff;

const NONCE0 = new Uint8Array(12);
const L = {
  rk: utf8('allium-v1:ratchet:rk'),
  ck: utf8('allium-v1:ratchet:ck'),
  next: utf8('allium-v1:ratchet:next'),
  mk: utf8('allium-v1:ratchet:mk'),
};

export interface MessageHeader {
  readonly dh: Uint8Array;
  /** The sender's sending-chain number. */
  readonly c: number;
  readonly pn: number;
  readonly n: number;
}

export interface Decrypted {
  readonly plaintext: Uint8Array;
  readonly header: MessageHeader;
  /** The sender's sequence number of this message: 0 for its first message in the session, then 1, 2, ... */
  readonly seq: number;
}

function K(key: Uint8Array, label: Uint8Array, x?: Uint8Array): Uint8Array {
  return crypto().hash(32, x ? concatBytes(label, x) : label, key);
}

function encodeHeader(h: MessageHeader): Uint8Array {
  return new ByteWriter(RATCHET_HEADER_LEN).u8(RATCHET_VERSION).bytes(h.dh).u32(h.c).u32(h.pn).u32(h.n).done();
}

/** Splits a message into header and body. Throws ERR_TRUNCATED, ERR_SCHEMA (version), ERR_LIMIT. */
export function parseMessage(message: Uint8Array): { header: MessageHeader; headerBytes: Uint8Array; body: Uint8Array } {
  if (message.length > MAX_MESSAGE_BYTES) throw new LimitError('MAX_MESSAGE_BYTES', `message of ${message.length} bytes`);
  const r = new ByteReader(message, 'ratchet message');
  const version = r.u8();
  if (version !== RATCHET_VERSION) throw new ProtocolError('ERR_SCHEMA', `ratchet message version ${version}`);
  const dh = r.bytes(32).slice();
  const c = r.u32();
  const pn = r.u32();
  const n = r.u32();
  if (r.remaining < RATCHET_TAG_LEN) throw new ProtocolError('ERR_TRUNCATED', 'ratchet message shorter than its tag');
  return { header: { dh, c, pn, n }, headerBytes: message.subarray(0, RATCHET_HEADER_LEN), body: r.rest() };
}

/** Secrets made or replaced during one decrypt: committed or wiped together. */
class Ledger {
  /** New values the session keeps if the message authenticates. */
  readonly made: Uint8Array[] = [];
  /** Values of the session replaced if the message authenticates. */
  readonly retired: Uint8Array[] = [];
  /** Intermediate values, wiped either way. */
  readonly temp: Uint8Array[] = [];
  commit(): void {
    crypto().wipe(...this.retired, ...this.temp);
  }
  abort(): void {
    crypto().wipe(...this.made, ...this.temp);
  }
}

/** (ck', mk) from ck. */
function kdfCk(ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [K(ck, L.next), K(ck, L.mk)];
}

/** (rk', ck) from rk and a DH output. */
function kdfRk(rk: Uint8Array, dh: Uint8Array): [Uint8Array, Uint8Array] {
  return [K(rk, L.rk, dh), K(rk, L.ck, dh)];
}

export class RatchetSession {
  private s: RatchetState | null;

  private constructor(state: RatchetState) {
    this.s = state;
  }

  /** The initiator's session: it can send at once. `remoteRatchetKey` is the recipient's prekey. */
  static initiator(rootKey: Uint8Array, remoteRatchetKey: Uint8Array, ad: Uint8Array): RatchetSession {
    checkAd(ad);
    const dhs = crypto().x25519Keypair();
    const dh = crypto().x25519(dhs.secretKey, remoteRatchetKey);
    const [rk, cks] = kdfRk(rootKey, dh);
    crypto().wipe(dh);
    return new RatchetSession(newState({ rk, dhs, dhr: remoteRatchetKey.slice(), cks, cs: 1, ad }));
  }

  /** The responder's session: it can send once it has received the initiator's first message. */
  static responder(rootKey: Uint8Array, ownRatchetKey: KeyPair, ad: Uint8Array): RatchetSession {
    checkAd(ad);
    const dhs = { publicKey: ownRatchetKey.publicKey.slice(), secretKey: ownRatchetKey.secretKey.slice() };
    return new RatchetSession(newState({ rk: rootKey.slice(), dhs, dhr: null, cks: null, cs: 0, ad }));
  }

  /** Restores a session from serialize()'s output. */
  static restore(bytes: Uint8Array): RatchetSession {
    return new RatchetSession(decodeRatchetState(bytes));
  }

  /** The whole state, secrets included: store it encrypted (ratchet-state.ts). */
  serialize(): Uint8Array {
    return encodeRatchetState(this.live());
  }

  get canSend(): boolean {
    return this.live().cks !== null;
  }

  /** Number of skipped message keys held. */
  get skippedKeys(): number {
    return this.live().skipped.size;
  }

  /** Encrypts one message. */
  encrypt(plaintext: Uint8Array): { message: Uint8Array; header: MessageHeader; seq: number } {
    const s = this.live();
    if (!s.cks) throw new AlliumError('ERR_INTERNAL', 'the responder can send only after it has received a message');
    if (plaintext.length > MAX_MESSAGE_BYTES - RATCHET_OVERHEAD) throw new LimitError('MAX_MESSAGE_BYTES', `plaintext of ${plaintext.length} bytes`);
    if (s.ns >= MAX_COUNTER) throw new LimitError('MAX_CHAIN_LENGTH', 'sending chain exhausted; the peer must reply first');
    const [next, mk] = kdfCk(s.cks);
    crypto().wipe(s.cks);
    s.cks = next;
    const header: MessageHeader = { dh: s.dhs.publicKey.slice(), c: s.cs - 1, pn: s.pn, n: s.ns };
    const headerBytes = encodeHeader(header);
    const ct = crypto().aeadEncrypt(plaintext, concatBytes(s.ad, headerBytes), NONCE0, mk);
    crypto().wipe(mk);
    const seq = s.sb + s.ns;
    s.ns += 1;
    return { message: concatBytes(headerBytes, ct), header, seq };
  }

  /**
   * Decrypts one message. Throws ERR_MESSAGE_AUTH (wrong key, tampered), ERR_MESSAGE_REPLAY (key already used or
   * gone), ERR_RATCHET_SKIP (too far ahead), ERR_TRUNCATED / ERR_SCHEMA / ERR_LIMIT (malformed). On any error the
   * session is unchanged.
   */
  decrypt(message: Uint8Array): Decrypted {
    const s = this.live();
    const { header, headerBytes, body } = parseMessage(message);
    const ad = concatBytes(s.ad, headerBytes);
    const id = skippedId(header.dh, header.n);
    const held = s.skipped.get(id);
    if (held) {
      const plaintext = crypto().aeadDecrypt(body, ad, NONCE0, held.mk);
      if (!plaintext) throw new CryptoError('ERR_MESSAGE_AUTH', 'message does not authenticate');
      s.skipped.delete(id);
      crypto().wipe(held.mk);
      return { plaintext, header, seq: held.seq };
    }
    // Which chain: the current receiving chain (number cr − 1), the next one, or an older one.
    const current = s.cr > 0 && header.c === s.cr - 1;
    if (header.c < s.cr - 1 || (current && header.n < s.nr)) {
      throw new ProtocolError('ERR_MESSAGE_REPLAY', 'message key already used or discarded');
    }
    if (header.c > s.cr || (current && !crypto().equal(header.dh, s.dhr!))) {
      throw new CryptoError('ERR_MESSAGE_AUTH', 'message does not authenticate');
    }

    // Work on copies of the variables: the session changes only if the message authenticates.
    const ledger = new Ledger();
    const skipped: SkippedKey[] = [];
    let { rk, dhs, dhr, cks, ckr, ns, nr, pn, cs, cr, sb, rb } = s;
    try {
      if (!current) {
        // Close the current receiving chain: keep keys for its messages still to come, up to the sender's pn.
        if (s.ckr && s.dhr) skip(s.ckr, nr, header.pn, s.dhr, rb, skipped, ledger);
        if (s.ckr) ledger.retired.push(s.ckr);
        if (s.cks) ledger.retired.push(s.cks);
        ledger.retired.push(s.rk, s.dhs.secretKey);
        if (cs >= MAX_COUNTER) throw new LimitError('MAX_CHAINS', 'session has made 2^32 chains');
        rb += s.cr > 0 ? header.pn : 0;
        sb += ns;
        pn = ns;
        ns = 0;
        nr = 0;
        cr += 1;
        cs += 1;
        dhr = header.dh;
        // DH ratchet step: a receiving chain from our old key, then a new key pair and a sending chain.
        const dh1 = dhOrAuthFailure(s.dhs.secretKey, dhr);
        const [rk1, ck1] = kdfRk(s.rk, dh1);
        ledger.temp.push(dh1, rk1, ck1); // ck1 is consumed by the chain step below
        dhs = crypto().x25519Keypair();
        ledger.made.push(dhs.secretKey);
        const dh2 = dhOrAuthFailure(dhs.secretKey, dhr);
        const [rk2, ck2] = kdfRk(rk1, dh2);
        ledger.temp.push(dh2);
        ledger.made.push(rk2, ck2);
        rk = rk2;
        cks = ck2;
        ckr = ck1;
      } else if (ckr) {
        ledger.retired.push(ckr);
      }
      if (!ckr) throw new AlliumError('ERR_INTERNAL', 'no receiving chain'); // cr > 0 implies one
      const chain = skip(ckr, nr, header.n, header.dh, rb, skipped, ledger);
      const [next, mk] = kdfCk(chain);
      ledger.temp.push(mk);
      ledger.made.push(next);
      const plaintext = crypto().aeadDecrypt(body, ad, NONCE0, mk);
      if (!plaintext) throw new CryptoError('ERR_MESSAGE_AUTH', 'message does not authenticate');
      ckr = next;
      nr = header.n + 1;

      // Commit.
      Object.assign(s, { rk, dhs, dhr, cks, ckr, ns, nr, pn, cs, cr, sb, rb });
      for (const k of skipped) s.skipped.set(skippedId(k.dh, k.n), k);
      for (const [oldId, old] of s.skipped) {
        if (s.skipped.size <= MAX_SKIP) break;
        crypto().wipe(old.mk);
        s.skipped.delete(oldId);
      }
      ledger.commit();
      return { plaintext, header, seq: rb + header.n };
    } catch (e) {
      ledger.abort();
      throw e;
    }
  }

  /** Wipes every secret; the session cannot be used afterwards. */
  destroy(): void {
    const s = this.s;
    if (!s) return;
    crypto().wipe(s.rk, s.dhs.secretKey, ...(s.cks ? [s.cks] : []), ...(s.ckr ? [s.ckr] : []));
    for (const k of s.skipped.values()) crypto().wipe(k.mk);
    s.skipped.clear();
    this.s = null;
  }

  private live(): RatchetState {
    if (!this.s) throw new AlliumError('ERR_KEY_WIPED', 'ratchet session used after destroy()');
    return this.s;
  }
}

function checkAd(ad: Uint8Array): void {
  if (ad.length > MAX_SESSION_AD_BYTES) throw new AlliumError('ERR_INTERNAL', 'session associated data too long');
}

function newState(v: { rk: Uint8Array; dhs: KeyPair; dhr: Uint8Array | null; cks: Uint8Array | null; cs: number; ad: Uint8Array }): RatchetState {
  return { ...v, ckr: null, ns: 0, nr: 0, pn: 0, cr: 0, sb: 0, rb: 0, ad: v.ad.slice(), skipped: new Map() };
}

/** X25519 with a peer's unauthenticated ratchet key: a small-order key is a forged message. */
function dhOrAuthFailure(secretKey: Uint8Array, peer: Uint8Array): Uint8Array {
  try {
    return crypto().x25519(secretKey, peer);
  } catch (e) {
    throw new CryptoError('ERR_MESSAGE_AUTH', 'message ratchet key is not usable', { cause: e });
  }
}

/**
 * Advances a receiving chain from message `from` to message `until`, keeping the keys of the messages passed over
 * (ledger.made). Returns the chain key for message `until`; the chain keys made on the way are consumed either
 * way (ledger.temp), and `ck` itself is the caller's to account for.
 */
function skip(ck: Uint8Array, from: number, until: number, dh: Uint8Array, base: number, out: SkippedKey[], ledger: Ledger): Uint8Array {
  if (until - from > MAX_SKIP) throw new LimitError('MAX_SKIP', `message ${until - from} ahead of its chain`, 'ERR_RATCHET_SKIP');
  let chain = ck;
  for (let n = from; n < until; n++) {
    const [next, mk] = kdfCk(chain);
    ledger.made.push(mk);
    out.push({ dh, n, mk, seq: base + n });
    ledger.temp.push(next);
    chain = next;
  }
  return chain;
}
