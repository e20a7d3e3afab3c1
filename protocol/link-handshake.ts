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
 *
 * The authenticated head of msg1 (E_i | c1, 64 bytes) also travels in the WebSocket upgrade request as the *upgrade
 * token* (specs/link.md §2.6): a relay checks it before it upgrades, so a party that cannot make a valid msg1 only
 * ever sees an HTTP 404, and the relay answers the upgrade with msg2 at once.
 */
import { crypto } from '../crypto/index.js';
import type { RandomSource } from '../crypto/drbg.js';
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
/** The authenticated head of msg1: E_i (32) | c1 (PAYLOAD1_LEN + 16). */
export const MSG1_HEAD_LEN = 32 + PAYLOAD1_LEN + 16;
/** Length of the upgrade token: MSG1_HEAD_LEN bytes in unpadded base64url. */
export const UPGRADE_TOKEN_LEN = Math.ceil((MSG1_HEAD_LEN * 4) / 3);
/** Query parameter of the WebSocket URL that carries the upgrade token. */
export const UPGRADE_TOKEN_PARAM = 'token';

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

const systemRandom: RandomSource = (n) => crypto().random(n);

function pad(prefix: Uint8Array, random: RandomSource): Uint8Array {
  const out = random(FRAME_LEN);
  out.set(prefix);
  return out;
}

function randomizeTopBit(X: Uint8Array, random: RandomSource): void {
  X[31] = (X[31]! & 0x7f) | (random(1)[0]! & 0x80);
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
  /**
   * Random bytes, in this order: the ephemeral X25519 secret (32), the top bit of E_i (1), msg1's padding (4112).
   * For test vectors only; default crypto().random.
   */
  readonly random?: RandomSource;
}

/** The dialing side. */
export class LinkInitiator {
  private readonly random: RandomSource;
  private readonly e: { publicKey: Uint8Array; secretKey: Uint8Array };
  private readonly E: Uint8Array;
  private readonly S: Uint8Array;
  private readonly es: Uint8Array;
  private readonly psk: Uint8Array;
  private msg1: Uint8Array | null = null;

  constructor(private readonly o: InitiatorOptions) {
    this.random = o.random ?? systemRandom;
    this.e = crypto().x25519Keypair(this.random(32));
    this.E = Uint8Array.from(this.e.publicKey);
    randomizeTopBit(this.E, this.random);
    this.S = crypto().edPublicToX25519(o.responder);
    this.es = crypto().x25519(this.e.secretKey, this.S);
    this.psk = o.psk ?? ZERO_PSK;
  }

  /** The first message (also kept, so that upgradeToken() can be read after it). */
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
    this.msg1 = pad(concatBytes(this.E, c1), this.random);
    return this.msg1;
  }

  /** The upgrade token: msg1's authenticated head in base64url (specs/link.md §2.6). Calls start() if needed. */
  upgradeToken(): string {
    const msg1 = this.msg1 ?? this.start();
    return encodeUpgradeToken(msg1.subarray(0, MSG1_HEAD_LEN));
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
    const th = H(L.th, this.msg1.subarray(0, MSG1_HEAD_LEN), Er);
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

/**
 * Remembers msg1 ephemerals for twice the allowed clock skew, so a replayed msg1 is refused (specs/link.md §2.4).
 * Across a restart the relay journals each tag (`onRecord`) and restores them (`restore`); when the journal may have
 * lost writes it starts cold instead (`startCold`): every msg1 timestamped before the given time counts as a
 * possible replay.
 */
export class HandshakeReplayCache {
  private readonly seen = new Map<string, number>();
  /** msg1 timestamps below this are refused as possible replays of a lost cache (0: none). */
  private coldBefore = 0;
  constructor(
    readonly windowMs: number,
    readonly maxEntries: number,
    /** Called with each tag recorded and its expiry, before checkAndRecord returns; throwing refuses the handshake. */
    private readonly onRecord?: (tag: Uint8Array, expires: number) => void,
  ) {}

  /**
   * True if msg1 with ephemeral `E` (and timestamp `ts`, when given) must be refused as a replay; otherwise records it.
   * Throws LimitError LINK_REPLAY_CACHE_MAX when full.
   */
  checkAndRecord(E: Uint8Array, now: number, ts?: number): boolean {
    this.expire(now);
    if (ts !== undefined && ts < this.coldBefore) return true;
    const tag = tagString(E);
    if (this.seen.has(tag)) return true;
    if (this.seen.size >= this.maxEntries) throw new LimitError('LINK_REPLAY_CACHE_MAX', 'too many recent handshakes');
    const expires = now + this.windowMs;
    this.onRecord?.(
      Uint8Array.from(tag, (c) => c.charCodeAt(0)),
      expires,
    );
    this.seen.set(tag, expires);
    return false;
  }

  private expire(now: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > now) break;
      this.seen.delete(k);
    }
  }

  /** Refuses every msg1 timestamped before `ts` (an unclean start: the cache of the last run is lost). */
  startCold(ts: number): void {
    this.coldBefore = Math.max(this.coldBefore, ts);
  }

  /** The unexpired tags (16 bytes each) with their expiry times, oldest first, for a snapshot. */
  entries(now: number): [Uint8Array, number][] {
    this.expire(now);
    return [...this.seen].map(([k, exp]) => [Uint8Array.from(k, (c) => c.charCodeAt(0)), exp]);
  }

  /**
   * Restores journaled tags into an empty cache (those already expired are skipped). Returns false, adding nothing,
   * when a tag is not 16 bytes or more than `maxEntries` are still live.
   */
  restore(entries: readonly (readonly [Uint8Array, number])[], now: number): boolean {
    if (this.seen.size !== 0) return false;
    const live = entries.filter(([tag, exp]) => tag.length === 16 && Number.isSafeInteger(exp) && exp > now);
    if (entries.some(([tag]) => tag.length !== 16) || live.length > this.maxEntries) return false;
    // Oldest expiry first: expire() stops at the first live entry.
    live.sort((a, b) => a[1] - b[1]);
    for (const [tag, exp] of live) this.seen.set(String.fromCharCode(...tag), exp);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

function tagString(E: Uint8Array): string {
  const x = Uint8Array.from(E);
  x[31]! &= 0x7f;
  return String.fromCharCode(...crypto().hash(16, x, L.replay));
}

export interface ResponderOptions {
  readonly identity: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly psk?: Uint8Array;
  readonly replay: HandshakeReplayCache;
  readonly maxClockSkewMs: number;
  /**
   * Random bytes for reply(), in this order: the ephemeral X25519 secret (32), the top bit of E_r (1), msg2's
   * padding (4112). For test vectors only; default crypto().random.
   */
  readonly random?: RandomSource;
}

/** The accepting side (a relay). */
export class LinkResponder {
  private ck: Uint8Array | null = null;
  private role: LinkRole = LinkRole.CLIENT;
  private version = 0;
  private readonly s: Uint8Array;
  private readonly S: Uint8Array;
  /** State between open() and reply(). */
  private opened: { head: Uint8Array; E: Uint8Array; es: Uint8Array; vmin: number; vmax: number; ts: number } | null = null;
  private admitted = false;

  constructor(private readonly o: ResponderOptions) {
    this.s = crypto().edSecretToX25519(o.identity.secretKey);
    this.S = crypto().edPublicToX25519(o.identity.publicKey);
  }

  /** The role msg1 claims, once open() has read it (the handshake proves a relay's in msg3). */
  get claimedRole(): LinkRole {
    return this.role;
  }

  /**
   * Reads msg1 and returns msg2: open(), admit() and reply() in one. Throws ERR_LINK_PROBE when msg1 does not
   * decrypt (not an Allium peer that knows this relay, or a wrong bridge secret), ERR_LINK_REPLAY for a replayed
   * msg1, ERR_LINK_CLOCK for a timestamp outside the allowed skew, ERR_LINK_VERSION when no version is shared.
   */
  respond(msg1: Uint8Array, now: number): Uint8Array {
    if (msg1.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_PROBE', 'first message has the wrong size');
    this.open(msg1.subarray(0, MSG1_HEAD_LEN));
    this.admit(now);
    return this.reply(now);
  }

  /**
   * Authenticates msg1's head (E_i | c1): only a party that knows this relay's identity key, and the pre-shared key
   * if one is set, can make one that opens. Keeps no state beyond this object: a failure here costs the relay one
   * X25519 and one AEAD open, and records nothing. Throws ERR_LINK_PROBE, or ERR_LINK_HANDSHAKE for an unknown role.
   */
  open(head: Uint8Array): void {
    if (this.opened || this.ck) throw new AlliumError('ERR_INTERNAL', 'open() called twice');
    if (head.length !== MSG1_HEAD_LEN) throw new ProtocolError('ERR_LINK_PROBE', 'first message has the wrong size');
    const c = crypto();
    const E = Uint8Array.from(head.subarray(0, 32));
    let es: Uint8Array;
    try {
      es = c.x25519(this.s, E);
    } catch {
      throw new ProtocolError('ERR_LINK_PROBE', 'first message carries an invalid key');
    }
    const psk = this.o.psk ?? ZERO_PSK;
    const k1 = H(L.k1, es, E, this.S, psk);
    const p1 = c.aeadDecrypt(head.subarray(32, MSG1_HEAD_LEN), E, NONCE0, k1);
    c.wipe(k1);
    if (!p1) {
      c.wipe(es);
      throw new ProtocolError('ERR_LINK_PROBE', 'first message does not authenticate');
    }
    const r = new ByteReader(p1, 'link payload1');
    const vmin = r.u16();
    const vmax = r.u16();
    const role = r.u8();
    r.u8();
    r.u16();
    const ts = Number(r.u64());
    if (role !== LinkRole.CLIENT && role !== LinkRole.RELAY) {
      c.wipe(es);
      throw new ProtocolError('ERR_LINK_HANDSHAKE', `unknown role ${role}`);
    }
    this.role = role as LinkRole;
    this.opened = { head: Uint8Array.from(head), E, es, vmin, vmax, ts };
  }

  /**
   * The checks that follow authentication (specs/link.md §2.3): clock skew, then the replay cache (which records the
   * message: call this only once the relay has decided to serve the link), then the version. Throws ERR_LINK_CLOCK,
   * ERR_LINK_REPLAY, ERR_LIMIT (LINK_REPLAY_CACHE_MAX) or ERR_LINK_VERSION.
   */
  admit(now: number): void {
    const m = this.opened;
    if (!m || this.admitted) throw new AlliumError('ERR_INTERNAL', 'admit() before open(), or twice');
    if (Math.abs(m.ts - now) > this.o.maxClockSkewMs) throw new ProtocolError('ERR_LINK_CLOCK', 'handshake timestamp outside the allowed clock skew');
    if (this.o.replay.checkAndRecord(m.E, now, m.ts)) throw new ProtocolError('ERR_LINK_REPLAY', 'first message replayed');
    const version = Math.min(m.vmax, LINK_VERSION_MAX);
    if (version < Math.max(m.vmin, LINK_VERSION_MIN)) throw new ProtocolError('ERR_LINK_VERSION', 'no shared link version');
    this.version = version;
    this.admitted = true;
  }

  /** Makes msg2 once msg1 is admitted. */
  reply(now: number): Uint8Array {
    const m = this.opened;
    if (!m || !this.admitted) throw new AlliumError('ERR_INTERNAL', 'reply() before admit()');
    this.opened = null;
    const c = crypto();
    const psk = this.o.psk ?? ZERO_PSK;
    const random = this.o.random ?? systemRandom;
    const e = c.x25519Keypair(random(32));
    const Er = Uint8Array.from(e.publicKey);
    randomizeTopBit(Er, random);
    const ee = c.x25519(e.secretKey, m.E);
    const th = H(L.th, m.head, Er);
    const ck = H(L.ck, ee, m.es, psk, th);
    const k2 = H(L.k2, ck);
    const payload2 = new ByteWriter(PAYLOAD2_LEN)
      .u16(this.version)
      .u16(0)
      .u64(BigInt(Math.floor(now)))
      .u32(0)
      .done();
    const c2 = c.aeadEncrypt(payload2, th, NONCE0, k2);
    c.wipe(ee, m.es, k2, e.secretKey);
    this.ck = ck;
    return pad(concatBytes(Er, c2), random);
  }

  /** Drops the state of an opened msg1 that will not be answered. */
  discard(): void {
    if (this.opened) crypto().wipe(this.opened.es);
    this.opened = null;
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
    // 0x00000000 | n as u64 big-endian, written byte by byte (no DataView per frame).
    const b = this.nonce;
    const hi = Math.floor(n / 2 ** 32);
    b[4] = hi >>> 24;
    b[5] = (hi >>> 16) & 0xff;
    b[6] = (hi >>> 8) & 0xff;
    b[7] = hi & 0xff;
    b[8] = n >>> 24;
    b[9] = (n >>> 16) & 0xff;
    b[10] = (n >>> 8) & 0xff;
    b[11] = n & 0xff;
    return b;
  }

  seal(plain: Uint8Array): Uint8Array {
    if (plain.length !== FRAME_PLAIN_LEN) throw new AlliumError('ERR_INTERNAL', 'frame plaintext size');
    return crypto().aeadEncrypt(plain, null, this.next(), this.key);
  }

  /**
   * As seal, into `out` (FRAME_LEN bytes, e.g. one slot of a buffer holding every frame of one flush, so a link
   * allocates once per flush rather than once per frame). The next nonce is used whatever `out` is.
   */
  sealInto(plain: Uint8Array, out: Uint8Array): Uint8Array {
    if (plain.length !== FRAME_PLAIN_LEN) throw new AlliumError('ERR_INTERNAL', 'frame plaintext size');
    if (out.length !== FRAME_LEN) throw new AlliumError('ERR_INTERNAL', 'frame size');
    crypto().aeadEncryptInto(out, plain, null, this.next(), this.key);
    return out;
  }

  /**
   * Decrypts in place (the frame buffer becomes its plaintext; the result is a view of it: a relay moves every byte it
   * forwards without a copy). Throws ERR_LINK_FRAME for a frame of the wrong size or one that does not authenticate.
   */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length !== FRAME_LEN) throw new ProtocolError('ERR_LINK_FRAME', `link frames are ${FRAME_LEN} bytes, got ${frame.length}`);
    const p = crypto().aeadDecryptInPlace(frame, null, this.next(), this.key);
    if (!p) throw new CryptoError('ERR_LINK_FRAME', 'link frame does not authenticate');
    return p;
  }

  wipe(): void {
    crypto().wipe(this.key);
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Unpadded base64url (RFC 4648 §5) of msg1's head. */
export function encodeUpgradeToken(head: Uint8Array): string {
  if (head.length !== MSG1_HEAD_LEN) throw new AlliumError('ERR_INTERNAL', 'upgrade token from a head of the wrong size');
  let out = '';
  for (let i = 0; i < head.length; i += 3) {
    const n = (head[i]! << 16) | ((head[i + 1] ?? 0) << 8) | (head[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((head.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64URL[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/**
 * Decodes an upgrade token strictly: exactly UPGRADE_TOKEN_LEN characters of the base64url alphabet, with the unused
 * low bits of the last character zero, so every head has one token. Throws ERR_LINK_PROBE otherwise.
 */
export function decodeUpgradeToken(token: string): Uint8Array {
  if (token.length !== UPGRADE_TOKEN_LEN) throw new ProtocolError('ERR_LINK_PROBE', 'upgrade token has the wrong length');
  const out = new Uint8Array(MSG1_HEAD_LEN);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < token.length; i++) {
    const v = B64URL.indexOf(token[i]!);
    if (v < 0) throw new ProtocolError('ERR_LINK_PROBE', 'upgrade token is not base64url');
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new ProtocolError('ERR_LINK_PROBE', 'upgrade token is not canonical');
  return out;
}
