/**
 * Relay-cell encryption: one layer per hop on fixed-size cell bodies, with a per-hop tag that every hop verifies
 * (specs/relay-crypto.md).
 *
 *   body (1019) = tag area (MAX_HOPS slots of 16 bytes) | payload (891)
 *
 * Each hop and direction has its own key and a 64-bit cell counter; the counter is the ChaCha20 nonce, so a nonce
 * never repeats under a key. For cell number n under key K:
 *   block0 = ChaCha20(K, n, block 0): otk = block0[0..32), mask = block0[32..48)
 *   KS     = ChaCha20(K, n, from block 1), 1019 bytes
 *
 * Forward (client → hops), at each hop ("unwrap"):
 *   M = Poly1305(otk, body[16..1019))           — covers the other tag slots and the payload
 *   tag slot 0 == M        → the cell continues to the next hop
 *   tag slot 0 == M ^ mask → the cell is for this hop
 *   anything else          → ERR_RELAY_MAC: the circuit is torn down
 *   body' = (body[16..128) | 0^16 | body[128..)) ^ KS
 * The tag area shifts by one slot per hop and the appended slot is keystream, so the body keeps its length and a hop
 * cannot tell its position. The client computes every tag in advance, Sphinx-style (wrapForward).
 *
 * Backward (hop → client), at the originating hop and each hop on the way ("wrap"):
 *   X = body ^ KS;  body' = T | X[0..112) | X[128..);  T = Poly1305(otk, body'[128..)) (^ mask at the origin)
 * The client unwraps layer by layer until a tag matches with the mask (the originating hop).
 *
 * Because every hop checks a MAC over everything later hops will read, a modified, injected, replayed, reordered or
 * dropped cell (the last three shift the counter) fails at the next honest hop: there is no tagging attack of the
 * AES-CTR kind.
 */
import { crypto } from '../crypto/index.js';
import { CELL_BODY_LEN, MAX_HOPS, RELAY_PAYLOAD_LEN, RELAY_TAG_AREA_LEN, RELAY_TAG_LEN } from './constants.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import type { HopKeys } from './ntor.js';

/** A circuit is rebuilt long before this many cells in one direction (specs/limits.md). */
export const MAX_CELLS_PER_DIRECTION = 2 ** 48;

const TAG = RELAY_TAG_LEN;
const AREA = RELAY_TAG_AREA_LEN;
/** One ChaCha20 block: block0 is the first, KS starts at the second. */
const BLOCK = 64;
const KEY = 32;
const NONCE = 12;

/**
 * Scratch of one layer operation: block0 (otk | mask | unused) followed by the body being transformed, and the MAC.
 * Every operation fills, uses and finishes with them synchronously, so one set serves every key: a circuit holds no
 * scratch of its own (memory per idle circuit stays small), and wipe() clears it with the key.
 */
const scratch = new Uint8Array(BLOCK + CELL_BODY_LEN);
const scratchOtk = scratch.subarray(0, 32);
const scratchWork = scratch.subarray(BLOCK);
const scratchFromTag = scratch.subarray(BLOCK + TAG);
const scratchFromArea = scratch.subarray(BLOCK + AREA);
const scratchMac = new Uint8Array(TAG);

/**
 * One direction of one hop: key and counter. KS starts exactly where block0 ends, so one ChaCha20 call over
 * (0^64 | body) in the scratch yields block0 and body ^ KS together: a layer costs two libsodium calls (ChaCha20,
 * Poly1305) instead of three, and allocates nothing. The caller's body changes only once its tag has verified.
 */
class DirectionKey {
  private counter = 0;
  private wiped = false;

  /**
   * `key` is this direction's 32-byte key; `nonce` its 12 bytes of nonce, per key because callers prepare several
   * keys before using them (ClientCircuitCrypto.wrapForward). Both may be views into one buffer a hop shares.
   */
  constructor(
    private readonly key: Uint8Array,
    private readonly nonce: Uint8Array = new Uint8Array(NONCE),
  ) {}

  get count(): number {
    return this.counter;
  }

  /** Sets the nonce of the next cell (does not advance the counter). Throws once the key is wiped or exhausted. */
  prepare(): void {
    if (this.wiped) throw new AlliumError('ERR_KEY_WIPED', 'relay key used after wipe');
    if (this.counter >= MAX_CELLS_PER_DIRECTION) throw new LimitError('MAX_CELLS_PER_DIRECTION', 'circuit must be rebuilt', 'ERR_RELAY_COUNTER');
    const n = this.counter;
    // nonce = 0x00000000 | counter (u64, big-endian)
    this.nonce[4] = Math.floor(n / 2 ** 56) & 0xff;
    this.nonce[5] = Math.floor(n / 2 ** 48) & 0xff;
    this.nonce[6] = Math.floor(n / 2 ** 40) & 0xff;
    this.nonce[7] = Math.floor(n / 2 ** 32) & 0xff;
    this.nonce[8] = (n >>> 24) & 0xff;
    this.nonce[9] = (n >>> 16) & 0xff;
    this.nonce[10] = (n >>> 8) & 0xff;
    this.nonce[11] = n & 0xff;
  }

  /**
   * Unwrap, in place: forward at a relay (MAC from TAG), backward at the client (MAC from AREA). Returns true if the
   * tag is M ^ mask (the cell is for this hop), false if it is M. Throws ERR_RELAY_MAC, leaving body unchanged.
   */
  unwrap(body: Uint8Array, macFrom: number): boolean {
    this.prepare();
    const s = scratch;
    // scratch = 0^64 | body[16..128) | 0^16 | body[128..), then XOR the stream from block 0.
    s.fill(0, 0, BLOCK);
    s.set(body, BLOCK);
    s.copyWithin(BLOCK, BLOCK + TAG, BLOCK + AREA);
    s.fill(0, BLOCK + AREA - TAG, BLOCK + AREA);
    const c = crypto();
    c.chacha20Xor(s, s, this.nonce, 0, this.key);
    const m = scratchMac;
    c.poly1305(m, body.subarray(macFrom), scratchOtk);
    // Constant time, as crypto().equal: both candidates compared in full, no early exit, no allocation.
    let asM = 0;
    let asMine = 0;
    for (let i = 0; i < TAG; i++) {
      const x = body[i]! ^ m[i]!;
      asM |= x;
      asMine |= x ^ s[32 + i]!;
    }
    if (asM !== 0 && asMine !== 0) throw new CryptoError('ERR_RELAY_MAC', 'relay cell tag does not verify');
    body.set(scratchWork);
    this.counter++;
    return asM !== 0;
  }

  /**
   * Wrap, in place: X = body ^ KS; body' = T | X[0..112) | X[128..); T = Poly1305(otk, body'[macFrom..)), ^ mask
   * when `masked`. Backward at a relay (MAC from AREA; masked at the origin), outer forward layers at the client
   * (MAC from TAG).
   */
  wrap(body: Uint8Array, macFrom: typeof TAG | typeof AREA, masked: boolean): void {
    this.prepare();
    const s = scratch;
    s.fill(0, 0, BLOCK);
    s.set(body, BLOCK);
    const c = crypto();
    c.chacha20Xor(s, s, this.nonce, 0, this.key);
    s.copyWithin(BLOCK + TAG, BLOCK, BLOCK + AREA - TAG);
    const m = scratchMac;
    c.poly1305(m, macFrom === AREA ? scratchFromArea : scratchFromTag, scratchOtk);
    if (masked) this.mask(m);
    s.set(m, BLOCK);
    body.set(scratchWork);
    this.counter++;
  }

  /**
   * The client's innermost forward layer, for the hop a cell is addressed to: body[AREA..) = payload ^ KS[AREA..),
   * then tag = Poly1305(otk, body[16..)) ^ mask. body[0..AREA) already holds the tag area as that hop will see it.
   */
  sealInnermost(body: Uint8Array, payload: Uint8Array, macFrom: typeof TAG | typeof AREA = TAG): void {
    this.prepare();
    const s = scratch;
    // Only block0 and KS[AREA..) are needed; work[0..AREA) is XORed along and ignored.
    s.fill(0, 0, BLOCK);
    s.set(payload, BLOCK + AREA);
    const c = crypto();
    c.chacha20Xor(s, s, this.nonce, 0, this.key);
    body.set(scratchFromArea, AREA);
    const m = scratchMac;
    c.poly1305(m, body.subarray(macFrom), scratchOtk);
    this.mask(m);
    body.set(m, 0);
    this.counter++;
  }

  /** XORs KS[0..area.length) into `area` (the client's simulation of the tag area), with the prepared nonce. */
  xorKeystream(area: Uint8Array): void {
    crypto().chacha20Xor(area, area, this.nonce, 1, this.key);
  }

  private mask(tag: Uint8Array): void {
    for (let i = 0; i < TAG; i++) tag[i]! ^= scratch[32 + i]!;
  }

  wipe(): void {
    crypto().wipe(this.key, scratch, scratchMac);
    this.wiped = true;
  }
}

/** dst = body[0..16), without creating a view (this runs for every cell). */
function copyTag(dst: Uint8Array, body: Uint8Array): void {
  for (let i = 0; i < TAG; i++) dst[i] = body[i]!;
}

function checkBody(body: Uint8Array): void {
  if (body.length !== CELL_BODY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay cell body is ${CELL_BODY_LEN} bytes`);
}

/** The relay's side of one hop: forward cells are unwrapped, backward cells wrapped. */
export class RelayHopCrypto {
  private readonly fwd: DirectionKey;
  private readonly bwd: DirectionKey;
  /** Tag of the last forward cell this hop verified (authenticated SENDMEs echo it; specs/streams.md §4). */
  readonly lastForwardTag: Uint8Array;
  /** Tag of the last backward cell this hop originated. */
  readonly lastOriginTag: Uint8Array;

  constructor(keys: HopKeys) {
    if (keys.forward.length !== KEY || keys.backward.length !== KEY) throw new AlliumError('ERR_KEY_FORMAT', `relay keys are ${KEY} bytes`);
    // Keys, nonces and tags share one buffer: a relay holds many idle circuits, and each small typed array of its
    // own costs more in object headers than in bytes.
    const mem = new Uint8Array(2 * (KEY + NONCE + TAG));
    mem.set(keys.forward, 0);
    mem.set(keys.backward, KEY);
    this.fwd = new DirectionKey(mem.subarray(0, KEY), mem.subarray(2 * KEY, 2 * KEY + NONCE));
    this.bwd = new DirectionKey(mem.subarray(KEY, 2 * KEY), mem.subarray(2 * KEY + NONCE, 2 * (KEY + NONCE)));
    this.lastForwardTag = mem.subarray(2 * (KEY + NONCE), 2 * (KEY + NONCE) + TAG);
    this.lastOriginTag = mem.subarray(2 * (KEY + NONCE) + TAG);
  }

  /**
   * Removes this hop's layer from a forward cell body, in place. Returns 'mine' when the cell is addressed to this
   * hop (its payload is then body[128..)), 'forward' when it continues. Throws ERR_RELAY_MAC.
   */
  unwrapForward(body: Uint8Array): 'mine' | 'forward' {
    checkBody(body);
    copyTag(this.lastForwardTag, body);
    return this.fwd.unwrap(body, TAG) ? 'mine' : 'forward';
  }

  /** Adds this hop's layer to a backward cell coming from further along the circuit, in place. */
  wrapBackward(body: Uint8Array): void {
    checkBody(body);
    this.bwd.wrap(body, AREA, false);
  }

  /** Builds a backward cell body originating at this hop from a 891-byte payload. */
  originateBackward(payload: Uint8Array): Uint8Array {
    if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
    const body = new Uint8Array(CELL_BODY_LEN);
    body.set(payload, AREA);
    this.bwd.wrap(body, AREA, true);
    copyTag(this.lastOriginTag, body);
    return body;
  }

  /**
   * As originateBackward, in place: `body` is a CELL_BODY_LEN buffer whose payload (body[128..)) the caller has
   * written, so the relay encodes a message straight into the cell it sends. The tag area is cleared first.
   */
  originateBackwardInPlace(body: Uint8Array): Uint8Array {
    checkBody(body);
    body.fill(0, 0, AREA);
    this.bwd.wrap(body, AREA, true);
    copyTag(this.lastOriginTag, body);
    return body;
  }

  get counters(): { forward: number; backward: number } {
    return { forward: this.fwd.count, backward: this.bwd.count };
  }

  wipe(): void {
    this.fwd.wipe();
    this.bwd.wipe();
  }
}

/** The client's side of a whole circuit: the keys of every hop, first hop first. */
export class ClientCircuitCrypto {
  private readonly fwd: DirectionKey[] = [];
  private readonly bwd: DirectionKey[] = [];
  /** Virtual hops: the far end of a rendezvous, reached through a relay that splices two circuits. */
  private readonly virtual: boolean[] = [];
  /** A caller-supplied random source (tests, vectors); libsodium's CSPRNG fills the cell in place otherwise. */
  private readonly fill: ((n: number) => Uint8Array) | undefined;
  /** Tag the target hop will see for the last forward cell built (what its authenticated SENDME echoes). */
  readonly lastForwardTag = new Uint8Array(TAG);
  /** Tag of the originating hop's layer of the last backward cell unwrapped. */
  readonly lastBackwardTag = new Uint8Array(TAG);

  constructor(hops: readonly HopKeys[], options: { random?: (n: number) => Uint8Array } = {}) {
    if (hops.length < 1 || hops.length > MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `a circuit has 1..${MAX_HOPS} hops`);
    for (const h of hops) this.addHop(h);
    this.fill = options.random;
  }

  get length(): number {
    return this.fwd.length;
  }

  /**
   * Appends a hop, or a virtual hop (specs/rendezvous.md §5): the peer at the other side of a
   * rendezvous point. A virtual hop's tag covers only the payload, because between the two circuits the tag area
   * passes through backward layers that shift it; every real hop on both circuits still checks its own tag.
   */
  addHop(keys: HopKeys, options: { virtual?: boolean } = {}): void {
    if (this.fwd.length >= MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `a circuit has at most ${MAX_HOPS} hops`);
    this.fwd.push(new DirectionKey(Uint8Array.from(keys.forward)));
    this.bwd.push(new DirectionKey(Uint8Array.from(keys.backward)));
    this.virtual.push(options.virtual ?? false);
  }

  /**
   * Encrypts a 891-byte payload for hop `target` (0-based) and returns the 1019-byte body to send to the first hop.
   * Every hop up to `target` verifies its tag; hop `target` recognises the cell as its own.
   */
  wrapForward(payload: Uint8Array, target: number): Uint8Array {
    return this.wrapForwardInto(new Uint8Array(CELL_BODY_LEN), payload, target);
  }

  /**
   * As wrapForward, into `body` (CELL_BODY_LEN bytes, whatever it holds: every byte that reaches the wire is
   * written), so a client that sends many cells encrypts them all in one buffer. Returns `body`.
   */
  wrapForwardInto(body: Uint8Array, payload: Uint8Array, target: number): Uint8Array {
    checkBody(body);
    if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
    if (!Number.isInteger(target) || target < 0 || target >= this.fwd.length) throw new AlliumError('ERR_INTERNAL', 'no such hop');
    const k = target;
    for (let j = 0; j <= k; j++) this.fwd[j]!.prepare();

    // Simulate the tag areas forward, in place in body[0..AREA): slots 1..7 as hop k will receive them. Slots 0..k-1
    // of the first area carry the tag chain and are shifted out before slots 1..7 reach hop k, so what they hold
    // does not matter (zero in a fresh buffer, anything in a reused one).
    const area = body.subarray(0, AREA);
    if (this.fill) area.set(this.fill(AREA - k * TAG), k * TAG);
    else crypto().randomFill(area.subarray(k * TAG));
    for (let j = 0; j < k; j++) {
      area.copyWithin(0, TAG, AREA);
      area.fill(0, AREA - TAG);
      this.fwd[j]!.xorKeystream(area);
    }

    // Innermost layer: hop k's view, then wrap outwards, each the inverse of a relay's unwrapForward.
    this.fwd[k]!.sealInnermost(body, payload, this.virtual[k] ? AREA : TAG);
    copyTag(this.lastForwardTag, body);
    for (let j = k - 1; j >= 0; j--) this.fwd[j]!.wrap(body, TAG, false);
    return body;
  }

  /**
   * Removes the layers of a backward cell body, in place. Returns the index of the hop that originated it; its
   * payload is then body[128..). Throws ERR_RELAY_MAC if any layer fails.
   */
  unwrapBackward(body: Uint8Array): number {
    checkBody(body);
    for (let j = 0; j < this.bwd.length; j++) {
      copyTag(this.lastBackwardTag, body);
      if (this.bwd[j]!.unwrap(body, AREA)) return j;
    }
    throw new ProtocolError('ERR_RELAY_NOT_RECOGNIZED', 'backward cell not recognised by any hop');
  }

  wipe(): void {
    for (const d of this.fwd) d.wipe();
    for (const d of this.bwd) d.wipe();
  }
}

/** The payload part of a cell body after the layer for its destination has been removed. */
export function payloadOf(body: Uint8Array): Uint8Array {
  return body.subarray(AREA);
}
