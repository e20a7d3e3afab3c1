/**
 * The constant-size circuit-setup onion and its one-round-trip reply (specs/circuits.md §3–§5).
 *
 * One onion carries every hop's handshake and next-hop instruction. Its header has the same length (816 bytes) at
 * every hop, whatever the path length (1..MAX_HOPS) and the hop's position: each hop removes its routing slot,
 * shifts the rest forward and appends a slot of deterministic padding, as in Sphinx. The client precomputes that
 * padding (the "filler") so every hop's MAC verifies.
 *
 *   header = X (32) | gamma (16) | beta (MAX_HOPS * 96)
 *
 * Hop i owns X_i. It computes s = X25519(b, X), derives rho/mu/pi, checks gamma = BLAKE2b-128_mu(beta), and decrypts
 * (beta || 0^96) with the ChaCha20 stream of rho: the first 96 bytes are its routing slot, the rest is the next beta.
 *
 * Each hop then runs the relay side of the ntor-style handshake (protocol/ntor.ts) with X_i and its onion key, and
 * puts (status, Y, AUTH) in an 80-byte reply slot. Replies travel back through the same hops: each prepends its slot
 * to the first 560 bytes of the reply from further on and encrypts the 640 bytes with its pi stream. The client
 * peels them in order, so the whole circuit is keyed after one round trip.
 *
 * Not here: which relays to choose (client/path), cell framing (protocol/cell.ts), the replay cache's storage
 * (protocol/replay-filter.ts).
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { concatBytes, xorInto } from './bytes.js';
import { MAX_HOPS, ONION_BETA_LEN, ONION_HEADER_LEN, ONION_MAC_LEN, ONION_SLOT_LEN, ONION_X_LEN, REPLY_LEN, REPLY_SLOT_LEN } from './constants.js';
import { CryptoError, ProtocolError, AlliumError } from './errors.js';
import { H, LABELS } from './kdf.js';
import type { HopKeys, OnionHop } from './hop.js';
import { ntorClientFinish, ntorServer } from './ntor.js';

export type { OnionHop } from './hop.js';

export const SLOT_EXTEND = 1;
export const SLOT_TERMINAL = 2;

/** Reply-slot status codes (specs/circuits.md §5.2). */
export const ReplyStatus = {
  OK: 0,
  /** This hop is built, but it could not reach the next hop. */
  NEXT_UNREACHABLE: 1,
  /** This hop is built, but the next hop refused or failed the extension. */
  NEXT_FAILED: 2,
  /** This hop is built, but it refuses to extend (limits, policy). */
  REFUSED: 3,
} as const;

const NONCE0 = new Uint8Array(12);

interface LayerKeys {
  rho: Uint8Array;
  mu: Uint8Array;
  pi: Uint8Array;
}

function layerKeys(s: Uint8Array, identity: Uint8Array, onionKey: Uint8Array, X: Uint8Array): LayerKeys {
  const input = concatBytes(s, identity, onionKey, X);
  return { rho: H(LABELS.onionRho, input), mu: H(LABELS.onionMu, input), pi: H(LABELS.onionPi, input) };
}

/** The ChaCha20 keystream of `key` (nonce 0) XORed into buf from block 0. Keys are single-use, so nonce 0 is safe. */
function streamXor(buf: Uint8Array, key: Uint8Array): void {
  crypto().chacha20Xor(buf, buf, NONCE0, 0, key);
}

function headerMac(mu: Uint8Array, beta: Uint8Array): Uint8Array {
  return crypto().hash(ONION_MAC_LEN, beta, mu);
}

/** Per-hop secrets the client keeps between sending the onion and reading the reply. */
export interface ClientHopState {
  readonly hop: OnionHop;
  readonly x: Uint8Array; // ephemeral secret
  readonly X: Uint8Array; // ephemeral public, as sent (top bit randomised)
  /** EXP(B, x): the onion's shared secret with this hop, which the handshake's secret input uses again. */
  readonly xb: Uint8Array;
  readonly pi: Uint8Array;
}

export interface ClientOnion {
  /** The 816-byte header for the first hop's CREATE cell. */
  readonly header: Uint8Array;
  readonly hops: readonly ClientHopState[];
}

export interface CreateOnionOptions {
  /** Random source; tests and vectors pass a seeded one. Default: libsodium's CSPRNG. */
  random?: (n: number) => Uint8Array;
}

/**
 * Builds the setup onion for `path` (1..MAX_HOPS distinct relays, first hop first).
 * Throws ERR_ONION_PATH for an empty, too long or repeating path.
 */
export function createOnion(path: readonly OnionHop[], options: CreateOnionOptions = {}): ClientOnion {
  const c = crypto();
  const random = options.random ?? ((n: number) => c.random(n));
  const n = path.length;
  if (n < 1 || n > MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `a path has 1..${MAX_HOPS} hops, not ${n}`);
  const seen = new Set<string>();
  for (const hop of path) {
    if (hop.identity.length !== 32 || hop.onionKey.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'hop keys must be 32 bytes');
    const id = String.fromCharCode(...hop.identity);
    if (seen.has(id)) throw new AlliumError('ERR_ONION_PATH', 'a path must not repeat a relay');
    seen.add(id);
  }

  // Per-hop ephemeral keys and layer keys.
  const hops: ClientHopState[] = [];
  const keys: LayerKeys[] = [];
  for (const hop of path) {
    const x = random(32);
    const X = c.x25519Public(x);
    // X25519 ignores the top bit of a public key (RFC 7748 §5); we send it random so X looks uniform.
    X[31] = (X[31]! & 0x7f) | (random(1)[0]! & 0x80);
    const s = c.x25519(x, hop.onionKey);
    const k = layerKeys(s, hop.identity, hop.onionKey, X);
    // s is kept (wiped with x) for the hop's reply, whose key derivation needs EXP(B, x) again.
    hops.push({ hop, x, X, xb: s, pi: k.pi });
    keys.push(k);
  }

  // Filler: what hops 1..n-1 append, as hop n will see it (Sphinx's phi).
  let filler: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < n - 1; i++) {
    const stream = new Uint8Array(ONION_BETA_LEN + ONION_SLOT_LEN);
    streamXor(stream, keys[i]!.rho);
    const grown = concatBytes(filler, new Uint8Array(ONION_SLOT_LEN));
    // The appended region of hop i's output starts at ONION_BETA_LEN - filler.length of its keystream (after the slot).
    const start = ONION_BETA_LEN + ONION_SLOT_LEN - grown.length;
    xorInto(grown, stream.subarray(start));
    filler = grown;
  }

  // Innermost layer: the terminal slot, random padding, then the filler.
  const last = n - 1;
  const terminalLen = ONION_BETA_LEN - filler.length;
  const inner = new Uint8Array(terminalLen);
  inner[0] = SLOT_TERMINAL; // bytes 1..95 of the slot stay zero (reserved)
  inner.set(random(terminalLen - ONION_SLOT_LEN), ONION_SLOT_LEN);
  {
    const stream = new Uint8Array(ONION_BETA_LEN);
    streamXor(stream, keys[last]!.rho);
    xorInto(inner, stream);
  }
  let beta = concatBytes(inner, filler);
  let gamma = headerMac(keys[last]!.mu, beta);

  for (let i = n - 2; i >= 0; i--) {
    const next = hops[i + 1]!;
    const slot = new Uint8Array(ONION_SLOT_LEN);
    slot[0] = SLOT_EXTEND;
    slot.set(next.hop.identity, 1);
    slot.set(next.X, 33);
    slot.set(gamma, 65);
    const b = concatBytes(slot, beta.subarray(0, ONION_BETA_LEN - ONION_SLOT_LEN));
    const stream = new Uint8Array(ONION_BETA_LEN);
    streamXor(stream, keys[i]!.rho);
    xorInto(b, stream);
    beta = b;
    gamma = headerMac(keys[i]!.mu, beta);
  }
  for (const k of keys) c.wipe(k.rho, k.mu);
  return { header: concatBytes(hops[0]!.X, gamma, beta), hops };
}

/** Remembers onion tags for the life of an onion key (protocol/replay-filter.ts implements it). */
export interface ReplayGuard {
  /** True if `tag` was already recorded under this onion key; records it otherwise. */
  checkAndRecord(onionKeyPublic: Uint8Array, tag: Uint8Array): boolean;
}

export interface RelayOnionContext {
  readonly identity: Uint8Array;
  /** Current onion key first, then keys still inside their overlap window. */
  readonly onionKeys: readonly KeyPair[];
  readonly replay: ReplayGuard;
  random?: (n: number) => Uint8Array;
}

export type RelayOnionResult =
  | { readonly kind: 'extend'; readonly next: Uint8Array; readonly header: Uint8Array; readonly hop: RelayHop }
  | { readonly kind: 'terminal'; readonly hop: RelayHop };

/** What a relay keeps for one hop of a circuit it is building: its keys and how to wrap its reply. */
export class RelayHop {
  constructor(
    readonly keys: HopKeys,
    private readonly slot: Uint8Array, // status 0 | reserved | Y | AUTH
    private readonly pi: Uint8Array,
    private readonly random: (n: number) => Uint8Array,
  ) {}

  /**
   * The 640-byte reply this hop sends back. `fromNext` is the reply that came from the next hop (null for a terminal
   * hop or when extension failed); `status` reports a failed extension (ReplyStatus).
   */
  reply(fromNext: Uint8Array | null, status: number = ReplyStatus.OK): Uint8Array {
    if (fromNext && fromNext.length !== REPLY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a reply is ${REPLY_LEN} bytes`);
    const out = new Uint8Array(REPLY_LEN);
    out.set(this.slot);
    out[0] = status;
    out.set(fromNext ? fromNext.subarray(0, REPLY_LEN - REPLY_SLOT_LEN) : this.random(REPLY_LEN - REPLY_SLOT_LEN), REPLY_SLOT_LEN);
    streamXor(out, this.pi);
    return out;
  }

  /** Wipes what the reply needs and the hop's keys (a relay has copied them into its RelayHopCrypto by now). */
  wipe(): void {
    crypto().wipe(this.pi, this.slot, this.keys.forward, this.keys.backward, this.keys.binding);
  }
}

/** The replay tag of an onion: a hash of X with its unused top bit cleared. */
export function onionReplayTag(X: Uint8Array): Uint8Array {
  const x = Uint8Array.from(X);
  x[31]! &= 0x7f;
  return crypto().hash(16, x, LABELS.replayTag);
}

/**
 * Processes a setup onion at a relay: finds the onion key whose MAC verifies, refuses replays, decrypts the routing
 * slot, and runs the relay side of the handshake.
 */
export function processOnion(header: Uint8Array, ctx: RelayOnionContext): RelayOnionResult {
  const c = crypto();
  if (header.length !== ONION_HEADER_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `an onion header is ${ONION_HEADER_LEN} bytes`);
  const X = header.subarray(0, ONION_X_LEN);
  const gamma = header.subarray(ONION_X_LEN, ONION_X_LEN + ONION_MAC_LEN);
  const beta = header.subarray(ONION_X_LEN + ONION_MAC_LEN);

  let found: { key: KeyPair; s: Uint8Array; k: LayerKeys } | null = null;
  for (const key of ctx.onionKeys) {
    let s: Uint8Array;
    try {
      s = c.x25519(key.secretKey, X);
    } catch {
      throw new CryptoError('ERR_BAD_POINT', 'onion carries a small-order point');
    }
    const k = layerKeys(s, ctx.identity, key.publicKey, X);
    if (c.equal(headerMac(k.mu, beta), gamma)) {
      found = { key, s, k };
      break;
    }
    c.wipe(s, k.rho, k.mu, k.pi);
  }
  if (!found) throw new CryptoError('ERR_ONION_MAC', 'onion MAC does not verify under any current onion key');
  if (ctx.replay.checkAndRecord(found.key.publicKey, onionReplayTag(X))) {
    c.wipe(found.s, found.k.rho, found.k.mu, found.k.pi);
    throw new ProtocolError('ERR_ONION_REPLAY', 'onion replayed');
  }

  const plain = new Uint8Array(ONION_BETA_LEN + ONION_SLOT_LEN);
  plain.set(beta);
  streamXor(plain, found.k.rho);
  const slot = plain.subarray(0, ONION_SLOT_LEN);
  const cmd = slot[0];
  const random = ctx.random ?? ((n: number) => c.random(n));

  const makeHop = (): RelayHop => {
    const { keys, Y, auth } = ntorServer(found.s, found.key, ctx.identity, X, random);
    const replySlot = new Uint8Array(REPLY_SLOT_LEN);
    replySlot.set(Y, 16);
    replySlot.set(auth, 48);
    c.wipe(found.s, found.k.rho, found.k.mu);
    return new RelayHop(keys, replySlot, found.k.pi, random);
  };

  if (cmd === SLOT_TERMINAL) {
    for (let i = 1; i < ONION_SLOT_LEN; i++) if (slot[i] !== 0) throw new ProtocolError('ERR_ONION_SLOT', 'reserved bytes of a terminal slot are not zero');
    return { kind: 'terminal', hop: makeHop() };
  }
  if (cmd === SLOT_EXTEND) {
    for (let i = 81; i < ONION_SLOT_LEN; i++) if (slot[i] !== 0) throw new ProtocolError('ERR_ONION_SLOT', 'reserved bytes of an extend slot are not zero');
    const next = Uint8Array.from(slot.subarray(1, 33));
    const nextHeader = concatBytes(slot.subarray(33, 65), slot.subarray(65, 81), plain.subarray(ONION_SLOT_LEN));
    if (c.equal(next, ctx.identity)) throw new ProtocolError('ERR_ONION_SLOT', 'an onion may not extend a relay to itself');
    return { kind: 'extend', next, header: nextHeader, hop: makeHop() };
  }
  throw new ProtocolError('ERR_ONION_SLOT', `unknown routing slot command ${cmd}`);
}

export interface OpenedReply {
  /** Keys of every hop that replied, first hop first. */
  readonly hops: HopKeys[];
  /** Status of the last hop that replied (ReplyStatus.OK when the whole path was built). */
  readonly status: number;
}

/**
 * Reads the 640-byte reply to a setup onion: peels each hop's layer, checks its key confirmation, and derives its
 * circuit keys. A hop whose status is non-zero ends the reply (the hops after it were not built).
 * Throws ERR_HANDSHAKE_AUTH if any hop's AUTH fails to verify, ERR_ONION_SLOT for malformed reply slots.
 */
export function openReply(onion: ClientOnion, reply: Uint8Array): OpenedReply {
  if (reply.length !== REPLY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a reply is ${REPLY_LEN} bytes`);
  let rest: Uint8Array = Uint8Array.from(reply);
  const keys: HopKeys[] = [];
  for (let i = 0; i < onion.hops.length; i++) {
    const h = onion.hops[i]!;
    streamXor(rest, h.pi);
    const slot = rest.subarray(0, REPLY_SLOT_LEN);
    for (let j = 1; j < 16; j++) if (slot[j] !== 0) throw new ProtocolError('ERR_ONION_SLOT', 'reserved bytes of a reply slot are not zero');
    const status = slot[0]!;
    const hopKeys = ntorClientFinish(h.x, h.X, h.hop, slot.subarray(16, 48), slot.subarray(48, 80), h.xb);
    keys.push(hopKeys);
    if (status !== ReplyStatus.OK) return { hops: keys, status };
    rest = rest.slice(REPLY_SLOT_LEN);
  }
  return { hops: keys, status: ReplyStatus.OK };
}

/** Wipes the client's per-hop secrets once the reply has been read or the build abandoned. */
export function wipeClientOnion(onion: ClientOnion): void {
  for (const h of onion.hops) crypto().wipe(h.x, h.xb, h.pi);
}
