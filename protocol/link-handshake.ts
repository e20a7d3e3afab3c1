/**
 * The link handshake and link frames (specs/link.md). Sans-I/O: these classes take and return bytes.
 *
 * Every WebSocket message on a link, handshake included, is exactly FRAME_LEN (4112) bytes.
 *
 *   msg1  I→R  E_i | AEAD(k1, 0, payload1, ad=E_i) | random padding
 *   msg2  R→I  E_r | AEAD(k2, 0, payload2, ad=th)  | random padding
 *   msg3  I→R  first traffic frame: role | identity | signature | zeros   (identity/signature zero for clients)
 *   then  frames: AEAD(k_dir, counter, FRAME_CELLS cells)
 *
 * The initiator always knows the responder's identity key R (from the directory or a bootstrap/bridge line); S is
 * its X25519 form. k1 mixes es = X25519(e_i, S), so only a party that knows R can produce a msg1 the relay accepts
 * (a prober that does not is answered as a plain web server would be), and only the holder of R's secret can
 * produce msg2: the responder is authenticated implicitly, as in Noise NK. A relay initiator then signs the session
 * binding with its identity key in msg3; a client sends no long-term key. The optional pre-shared key (a bridge
 * secret) is mixed into k1 and ck.
 */
import { crypto } from '../crypto/index.js';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './bytes.js';
import { CELL_LEN } from './constants.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import { H } from './kdf.js';

export const FRAME_CELLS = 4;
export const FRAME_PLAIN_LEN = FRAME_CELLS * CELL_LEN; // 4096
export const FRAME_LEN = FRAME_PLAIN_LEN + 16; // 4112
export const LINK_VERSION_MIN = 1;
export const LINK_VERSION_MAX = 1;
export const PAYLOAD1_LEN = 16;
export const PAYLOAD2_LEN = 16;

export const LinkRole = { CLIENT: 1, RELAY: 2 } as const;
export type LinkRole = (typeof LinkRole)[keyof typeof LinkRole];

const L = {
  k1: utf8('allium-v1:link:k1'),
  th: utf8('allium-v1:link:transcript'),
  ck: utf8('allium-v1:link:chaining-key'),
  k2: utf8('allium-v1:link:k2'),
  i2r: utf8('allium-v1:link:initiator-to-responder'),
  r2i: utf8('allium-v1:link:responder-to-initiator'),
  auth: utf8('allium-v1:link:initiator-auth'),
  replay: utf8('allium-v1:link:replay-tag'),
};
const SIGN_CONTEXT = utf8('allium-v1 link initiator signature');
const ZERO_PSK = new Uint8Array(32);
const NONCE0 = new Uint8Array(12);

function pad(prefix: Uint8Array): Uint8Array {
  const out = crypto().random(FRAME_LEN);
  out.set(prefix);
  return out;
}

function randomizeTopBit(X: Uint8Array): void {
  X[31] = (X[31]! & 0x7f) | (crypto().random(1)[0]! & 0x80);
}

export interface LinkKeys {
  readonly send: Uint8Array;
  readonly receive: Uint8Array;
}

/** Identity of the peer once the handshake completed. */
export interface LinkPeer {
  readonly role: LinkRole;
  /** Ed25519 identity of a relay peer; null for a client. */
  readonly identity: Uint8Array | null;
  readonly version: number;
}

export interface InitiatorOptions {
  /** Expected responder identity (Ed25519 public key). */
  readonly responder: Uint8Array;
  /** The initiator's own identity when it is a relay; omitted for a client. */
  readonly identity?: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly psk?: Uint8Array;
  readonly now: number;
}

/** The dialing side. */
export class LinkInitiator {
  private readonly e = crypto().x25519Keypair();
  private readonly E: Uint8Array;
  private readonly S: Uint8Array;
  private readonly es: Uint8Array;
  private readonly psk: Uint8Array;
  private msg1: Uint8Array | null = null;

  constructor(private readonly o: InitiatorOptions) {
    this.E = Uint8Array.from(this.e.publicKey);
    randomizeTopBit(this.E);
    this.S = crypto().edPublicToX25519(o.responder);
    this.es = crypto().x25519(this.e.secretKey, this.S);
    this.psk = o.psk ?? ZERO_PSK;
  }

  /** The first message. */
  start(): Uint8Array {
    const payload = new ByteWriter(PAYLOAD1_LEN)
      .u16(LINK_VERSION_MIN)
      .u16(LINK_VERSION_MAX)
      .u8(this.o.identity ? LinkRole.RELAY : LinkRole.CLIENT)
      .u8(0)
      .u16(0)
      .u64(BigInt(Math.floor(this.o.now)))
      .done();
    const k1 = H(L.k1, this.es, this.E, this.S, this.psk);
    const c1 = crypto().aeadEncrypt(payload, this.E, NONCE0, k1);
    crypto().wipe(k1);
    this.msg1 = pad(concatBytes(this.E, c1));
    return this.msg1;
  }

  /**
   * Reads msg2. Returns the traffic keys, the version and msg3's plaintext (to be sent as the first frame).
   * Throws ERR_LINK_AUTH when the responder does not hold the expected identity key.
   */
  finish(msg2: Uint8Array): { keys: LinkKeys; version: number; msg3: Uint8Array } {
    if (!this.msg1) throw new AlliumError('ERR_INTERNAL', 'finish() before start()');
    if (msg2.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_FRAME', `link messages are ${FRAME_LEN} bytes`);
    const Er = msg2.subarray(0, 32);
    const c2 = msg2.subarray(32, 32 + PAYLOAD2_LEN + 16);
    let ee: Uint8Array;
    try {
      ee = crypto().x25519(this.e.secretKey, Er);
    } catch {
      throw new CryptoError('ERR_LINK_AUTH', 'responder sent an invalid key');
    }
    const th = H(L.th, this.msg1.subarray(0, 32 + PAYLOAD1_LEN + 16), Er);
    const ck = H(L.ck, ee, this.es, this.psk, th);
    const k2 = H(L.k2, ck);
    const p2 = crypto().aeadDecrypt(c2, th, NONCE0, k2);
    crypto().wipe(ee, k2, this.e.secretKey, this.es);
    if (!p2) throw new CryptoError('ERR_LINK_AUTH', 'responder is not the expected relay');
    const r = new ByteReader(p2, 'link payload2');
    const version = r.u16();
    if (version < LINK_VERSION_MIN || version > LINK_VERSION_MAX) throw new ProtocolError('ERR_LINK_VERSION', `responder chose version ${version}`);
    const keys = { send: H(L.i2r, ck), receive: H(L.r2i, ck) };
    const msg3 = new Uint8Array(FRAME_PLAIN_LEN);
    if (this.o.identity) {
      msg3[0] = LinkRole.RELAY;
      msg3.set(this.o.identity.publicKey, 1);
      msg3.set(crypto().sign(concatBytes(SIGN_CONTEXT, H(L.auth, ck)), this.o.identity.secretKey), 33);
    } else msg3[0] = LinkRole.CLIENT;
    crypto().wipe(ck);
    return { keys, version, msg3 };
  }
}

/** Remembers msg1 ephemerals for twice the allowed clock skew, so a replayed msg1 is refused. */
export class HandshakeReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(
    readonly windowMs: number,
    readonly maxEntries: number,
  ) {}

  checkAndRecord(E: Uint8Array, now: number): boolean {
    for (const [k, exp] of this.seen) {
      if (exp > now) break;
      this.seen.delete(k);
    }
    const x = Uint8Array.from(E);
    x[31]! &= 0x7f;
    const tag = String.fromCharCode(...crypto().hash(16, x, L.replay));
    if (this.seen.has(tag)) return true;
    if (this.seen.size >= this.maxEntries) throw new LimitError('LINK_REPLAY_CACHE_MAX', 'too many recent handshakes');
    this.seen.set(tag, now + this.windowMs);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }
}

export interface ResponderOptions {
  readonly identity: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly psk?: Uint8Array;
  readonly replay: HandshakeReplayCache;
  readonly maxClockSkewMs: number;
}

/** The accepting side (a relay). */
export class LinkResponder {
  private ck: Uint8Array | null = null;
  private role: LinkRole = LinkRole.CLIENT;
  private version = 0;
  private readonly s: Uint8Array;
  private readonly S: Uint8Array;

  constructor(private readonly o: ResponderOptions) {
    this.s = crypto().edSecretToX25519(o.identity.secretKey);
    this.S = crypto().edPublicToX25519(o.identity.publicKey);
  }

  /**
   * Reads msg1 and returns msg2. Throws ERR_LINK_PROBE when msg1 does not decrypt (not an Allium peer that knows
   * this relay, or a wrong bridge secret), ERR_LINK_REPLAY for a replayed msg1, ERR_LINK_CLOCK for a timestamp
   * outside the allowed skew, ERR_LINK_VERSION when no version is shared.
   */
  respond(msg1: Uint8Array, now: number): Uint8Array {
    if (msg1.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_PROBE', 'first message has the wrong size');
    const c = crypto();
    const E = msg1.subarray(0, 32);
    let es: Uint8Array;
    try {
      es = c.x25519(this.s, E);
    } catch {
      throw new ProtocolError('ERR_LINK_PROBE', 'first message carries an invalid key');
    }
    const psk = this.o.psk ?? ZERO_PSK;
    const k1 = H(L.k1, es, E, this.S, psk);
    const p1 = c.aeadDecrypt(msg1.subarray(32, 32 + PAYLOAD1_LEN + 16), E, NONCE0, k1);
    c.wipe(k1);
    if (!p1) throw new ProtocolError('ERR_LINK_PROBE', 'first message does not authenticate');
    const r = new ByteReader(p1, 'link payload1');
    const vmin = r.u16();
    const vmax = r.u16();
    const role = r.u8();
    r.u8();
    r.u16();
    const ts = Number(r.u64());
    if (role !== LinkRole.CLIENT && role !== LinkRole.RELAY) throw new ProtocolError('ERR_LINK_HANDSHAKE', `unknown role ${role}`);
    if (Math.abs(ts - now) > this.o.maxClockSkewMs) throw new ProtocolError('ERR_LINK_CLOCK', 'handshake timestamp outside the allowed clock skew');
    if (this.o.replay.checkAndRecord(E, now)) throw new ProtocolError('ERR_LINK_REPLAY', 'first message replayed');
    const version = Math.min(vmax, LINK_VERSION_MAX);
    if (version < Math.max(vmin, LINK_VERSION_MIN)) throw new ProtocolError('ERR_LINK_VERSION', 'no shared link version');

    const e = c.x25519Keypair();
    const Er = Uint8Array.from(e.publicKey);
    randomizeTopBit(Er);
    const ee = c.x25519(e.secretKey, E);
    const th = H(L.th, msg1.subarray(0, 32 + PAYLOAD1_LEN + 16), Er);
    const ck = H(L.ck, ee, es, psk, th);
    const k2 = H(L.k2, ck);
    const payload2 = new ByteWriter(PAYLOAD2_LEN).u16(version).u16(0).u64(BigInt(Math.floor(now))).u32(0).done();
    const c2 = c.aeadEncrypt(payload2, th, NONCE0, k2);
    c.wipe(ee, es, k2, e.secretKey);
    this.ck = ck;
    this.role = role as LinkRole;
    this.version = version;
    return pad(concatBytes(Er, c2));
  }

  get keys(): LinkKeys {
    if (!this.ck) throw new AlliumError('ERR_INTERNAL', 'keys before respond()');
    return { send: H(L.r2i, this.ck), receive: H(L.i2r, this.ck) };
  }

  /** Reads msg3's plaintext (the first decrypted frame). Throws ERR_LINK_AUTH for a bad relay signature. */
  finish(msg3: Uint8Array): LinkPeer {
    if (!this.ck) throw new AlliumError('ERR_INTERNAL', 'finish() before respond()');
    const r = new ByteReader(msg3, 'link msg3');
    const role = r.u8();
    const identity = r.bytes(32);
    const sig = r.bytes(64);
    r.zeros();
    const ck = this.ck;
    this.ck = null;
    try {
      if (role !== this.role) throw new ProtocolError('ERR_LINK_HANDSHAKE', 'role changed during the handshake');
      if (role === LinkRole.CLIENT) {
        for (const b of identity) if (b !== 0) throw new ProtocolError('ERR_LINK_HANDSHAKE', 'a client link carries no identity');
        for (const b of sig) if (b !== 0) throw new ProtocolError('ERR_LINK_HANDSHAKE', 'a client link carries no signature');
        return { role: LinkRole.CLIENT, identity: null, version: this.version };
      }
      if (!crypto().verify(sig, concatBytes(SIGN_CONTEXT, H(L.auth, ck)), identity)) {
        throw new CryptoError('ERR_LINK_AUTH', 'initiator relay signature does not verify');
      }
      return { role: LinkRole.RELAY, identity: Uint8Array.from(identity), version: this.version };
    } finally {
      crypto().wipe(ck);
    }
  }
}

/** One direction of link frame encryption: ChaCha20-Poly1305-IETF, nonce = 0x00000000 | counter u64. */
export class FrameCipher {
  private counter = 0;
  private readonly nonce = new Uint8Array(12);
  constructor(private readonly key: Uint8Array) {}

  private next(): Uint8Array {
    if (this.counter >= 2 ** 48) throw new LimitError('MAX_FRAMES_PER_LINK', 'link must be reopened', 'ERR_LINK_FRAME');
    const n = this.counter++;
    const dv = new DataView(this.nonce.buffer);
    dv.setUint32(4, Math.floor(n / 2 ** 32));
    dv.setUint32(8, n >>> 0);
    return this.nonce;
  }

  seal(plain: Uint8Array): Uint8Array {
    if (plain.length !== FRAME_PLAIN_LEN) throw new AlliumError('ERR_INTERNAL', 'frame plaintext size');
    return crypto().aeadEncrypt(plain, null, this.next(), this.key);
  }

  /** Throws ERR_LINK_FRAME for a frame of the wrong size or one that does not authenticate. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_FRAME', `link frames are ${FRAME_LEN} bytes, got ${frame.length}`);
    const p = crypto().aeadDecrypt(frame, null, this.next(), this.key);
    if (!p) throw new CryptoError('ERR_LINK_FRAME', 'link frame does not authenticate');
    return p;
  }

  wipe(): void {
    crypto().wipe(this.key);
  }
}
