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
 * Scratch of one layer operation: block0 (otk | mask | unused) followed by the body being transformed, the MAC, and
 * the key and nonce of the operation. Every operation fills, uses and finishes with them synchronously, so one set
 * serves every key: a circuit holds no scratch of its own (memory per idle circuit stays small), and every wipe()
 * clears it with the key.
 */
const scratch = new Uint8Array(BLOCK + CELL_BODY_LEN);
const scratchOtk = scratch.subarray(0, 32);
const scratchWork = scratch.subarray(BLOCK);
const scratchFromTag = scratch.subarray(BLOCK + TAG);
const scratchFromArea = scratch.subarray(BLOCK + AREA);
const scratchMac = new Uint8Array(TAG);
const scratchKey = new Uint8Array(KEY);
const scratchNonce = new Uint8Array(NONCE);

function wipeScratch(): void {
  crypto().wipe(scratch, scratchMac, scratchKey);
}

/**
 * Loads the key at mem[keyOff..keyOff+32) and the nonce of cell number `n` into the scratch (the nonce is
 * 0x00000000 | n as u64 big-endian). Throws once the direction has carried MAX_CELLS_PER_DIRECTION cells.
 */
function load(mem: Uint8Array, keyOff: number, n: number): void {
  if (n >= MAX_CELLS_PER_DIRECTION) throw new LimitError('MAX_CELLS_PER_DIRECTION', 'circuit must be rebuilt', 'ERR_RELAY_COUNTER');
  for (let i = 0; i < KEY; i++) scratchKey[i] = mem[keyOff + i]!;
  const nonce = scratchNonce;
  nonce[4] = Math.floor(n / 2 ** 56) & 0xff;
  nonce[5] = Math.floor(n / 2 ** 48) & 0xff;
  nonce[6] = Math.floor(n / 2 ** 40) & 0xff;
  nonce[7] = Math.floor(n / 2 ** 32) & 0xff;
  nonce[8] = (n >>> 24) & 0xff;
  nonce[9] = (n >>> 16) & 0xff;
  nonce[10] = (n >>> 8) & 0xff;
  nonce[11] = n & 0xff;
}

/*
 * The layer operations, on the key at mem[keyOff..) and cell number `n` (the caller advances its counter once one
 * returns). KS starts exactly where block0 ends, so one ChaCha20 call over (0^64 | body) in the scratch yields
 * block0 and body ^ KS together: a layer costs two libsodium calls (ChaCha20, Poly1305) and allocates nothing.
 * The caller's body changes only once its tag has verified.
 */

/**
 * Unwrap, in place: forward at a relay (MAC from TAG), backward at the client (MAC from AREA). Returns true if the
 * tag is M ^ mask (the cell is for this hop), false if it is M. Throws ERR_RELAY_MAC, leaving body unchanged.
 */
function unwrapLayer(mem: Uint8Array, keyOff: number, n: number, body: Uint8Array, macFrom: number): boolean {
  load(mem, keyOff, n);
  const s = scratch;
  // scratch = 0^64 | body[16..128) | 0^16 | body[128..), then XOR the stream from block 0.
  s.fill(0, 0, BLOCK);
  s.set(body, BLOCK);
  s.copyWithin(BLOCK, BLOCK + TAG, BLOCK + AREA);
  s.fill(0, BLOCK + AREA - TAG, BLOCK + AREA);
  const c = crypto();
  c.chacha20Xor(s, s, scratchNonce, 0, scratchKey);
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
  return asM !== 0;
}

/**
 * Wrap, in place: X = body ^ KS; body' = T | X[0..112) | X[128..); T = Poly1305(otk, body'[macFrom..)), ^ mask
 * when `masked`. Backward at a relay (MAC from AREA; masked at the origin), outer forward layers at the client
 * (MAC from TAG).
 */
function wrapLayer(mem: Uint8Array, keyOff: number, n: number, body: Uint8Array, macFrom: typeof TAG | typeof AREA, masked: boolean): void {
  load(mem, keyOff, n);
  const s = scratch;
  s.fill(0, 0, BLOCK);
  s.set(body, BLOCK);
  const c = crypto();
  c.chacha20Xor(s, s, scratchNonce, 0, scratchKey);
  s.copyWithin(BLOCK + TAG, BLOCK, BLOCK + AREA - TAG);
  const m = scratchMac;
  c.poly1305(m, macFrom === AREA ? scratchFromArea : scratchFromTag, scratchOtk);
  if (masked) maskTag(m);
  s.set(m, BLOCK);
  body.set(scratchWork);
}

/**
 * The client's innermost forward layer, for the hop a cell is addressed to: body[AREA..) = payload ^ KS[AREA..),
 * then tag = Poly1305(otk, body[macFrom..)) ^ mask. body[0..AREA) already holds the tag area as that hop will see it.
 */
function sealInnermostLayer(mem: Uint8Array, keyOff: number, n: number, body: Uint8Array, payload: Uint8Array, macFrom: typeof TAG | typeof AREA): void {
  load(mem, keyOff, n);
  const s = scratch;
  // Only block0 and KS[AREA..) are needed; work[0..AREA) is XORed along and ignored.
  s.fill(0, 0, BLOCK);
  s.set(payload, BLOCK + AREA);
  const c = crypto();
  c.chacha20Xor(s, s, scratchNonce, 0, scratchKey);
  body.set(scratchFromArea, AREA);
  const m = scratchMac;
  c.poly1305(m, body.subarray(macFrom), scratchOtk);
  maskTag(m);
  body.set(m, 0);
}

/** XORs KS[0..area.length) of cell number `n` into `area` (the client's simulation of the tag area). */
function xorKeystreamLayer(mem: Uint8Array, keyOff: number, n: number, area: Uint8Array): void {
  load(mem, keyOff, n);
  crypto().chacha20Xor(area, area, scratchNonce, 1, scratchKey);
}

function maskTag(tag: Uint8Array): void {
  for (let i = 0; i < TAG; i++) tag[i]! ^= scratch[32 + i]!;
}

/** One direction of one hop at the client: its own key and a 64-bit cell counter. */
class DirectionKey {
  private counter = 0;
  private wiped = false;

  constructor(private readonly key: Uint8Array) {}

  get count(): number {
    return this.counter;
  }

  /** Throws once the key is wiped or exhausted (before a caller changes anything). */
  check(): void {
    if (this.wiped) throw new AlliumError('ERR_KEY_WIPED', 'relay key used after wipe');
    if (this.counter >= MAX_CELLS_PER_DIRECTION) throw new LimitError('MAX_CELLS_PER_DIRECTION', 'circuit must be rebuilt', 'ERR_RELAY_COUNTER');
  }

  unwrap(body: Uint8Array, macFrom: number): boolean {
    this.check();
    const mine = unwrapLayer(this.key, 0, this.counter, body, macFrom);
    this.counter++;
    return mine;
  }

  wrap(body: Uint8Array, macFrom: typeof TAG | typeof AREA, masked: boolean): void {
    this.check();
    wrapLayer(this.key, 0, this.counter, body, macFrom, masked);
    this.counter++;
  }

  sealInnermost(body: Uint8Array, payload: Uint8Array, macFrom: typeof TAG | typeof AREA = TAG): void {
    this.check();
    sealInnermostLayer(this.key, 0, this.counter, body, payload, macFrom);
    this.counter++;
  }

  /** XORs KS[0..area.length) of the next cell into `area` (does not advance the counter). */
  xorKeystream(area: Uint8Array): void {
    this.check();
    xorKeystreamLayer(this.key, 0, this.counter, area);
  }

  wipe(): void {
    crypto().wipe(this.key);
    wipeScratch();
    this.wiped = true;
  }
}

/** dst = body[0..16), without creating a view (this runs for every cell). */
function copyTag(dst: Uint8Array, body: Uint8Array): void {
  for (let i = 0; i < TAG; i++) dst[i] = body[i]!;
}

/** As copyTag, into mem[at..at+16). */
function copyTagAt(mem: Uint8Array, at: number, body: Uint8Array): void {
  for (let i = 0; i < TAG; i++) mem[at + i] = body[i]!;
}

function checkBody(body: Uint8Array): void {
  if (body.length !== CELL_BODY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay cell body is ${CELL_BODY_LEN} bytes`);
}

/**
 * A relay's hop state lives in slots of shared slabs, not in arrays of its own: a relay holds many idle circuits,
 * and every typed array costs an ArrayBuffer, a backing store and its bookkeeping — several times the bytes it
 * holds. A slot is forward key | backward key | binding | last forward tag | last origin tag (128 bytes); it is
 * wiped when its hop is, and then reused. A slab holds SLAB_SLOTS slots; slabs are made as circuits need them and
 * given back when empty (one empty slab is kept, so a relay that opens and closes circuits around a slab boundary
 * does not allocate one each time). How many slots are in use is bounded by the circuits a relay admits.
 */
const SLOT = 2 * KEY + KEY + 2 * TAG;
const SLOT_FWD = 0;
const SLOT_BWD = KEY;
const SLOT_BINDING = 2 * KEY;
const SLOT_FWD_TAG = 3 * KEY;
const SLOT_ORIGIN_TAG = 3 * KEY + TAG;
/** Slots per slab: 32 KiB each. */
export const SLAB_SLOTS = 256;

class Slab {
  readonly mem = new Uint8Array(SLOT * SLAB_SLOTS);
  /** Free slot numbers, a stack: free[0..top). */
  private readonly free = new Uint16Array(SLAB_SLOTS);
  private top = SLAB_SLOTS;

  constructor() {
    for (let i = 0; i < SLAB_SLOTS; i++) this.free[i] = SLAB_SLOTS - 1 - i;
  }

  get full(): boolean {
    return this.top === 0;
  }

  get freeSlots(): number {
    return this.top;
  }

  get empty(): boolean {
    return this.top === SLAB_SLOTS;
  }

  /** Takes a free slot; returns its byte offset. */
  take(): number {
    return this.free[--this.top]! * SLOT;
  }

  /** Wipes the slot at byte offset `off` and frees it. */
  give(off: number): void {
    crypto().wipe(this.mem.subarray(off, off + SLOT));
    this.free[this.top++] = off / SLOT;
  }
}

const slabs: Slab[] = [];

/** The slab a new hop's slot comes from: the first with room (so later slabs drain and are given back). */
function slabWithRoom(): Slab {
  for (const s of slabs) if (!s.full) return s;
  const s = new Slab();
  slabs.push(s);
  return s;
}

function releaseSlot(slab: Slab, off: number): void {
  slab.give(off);
  if (!slab.empty) return;
  // Keep one empty slab at most.
  if (slabs.some((s) => s !== slab && s.empty)) slabs.splice(slabs.indexOf(slab), 1);
}

/** Slabs and slots in use by relay hops in this process (tests, status). */
export function relayHopSlabs(): { slabs: number; slots: number } {
  let free = 0;
  for (const s of slabs) free += s.freeSlots;
  return { slabs: slabs.length, slots: slabs.length * SLAB_SLOTS - free };
}

/**
 * The relay's side of one hop: forward cells are unwrapped, backward cells wrapped. Its keys, binding and last tags
 * are in a slot of a shared slab; an idle hop is this one object and its slot (plus the views handed out, made on
 * first use).
 */
export class RelayHopCrypto {
  private slab: Slab | null;
  private readonly off: number;
  private fwdCount = 0;
  private bwdCount = 0;
  private fwdTagView: Uint8Array | null = null;
  private originTagView: Uint8Array | null = null;

  constructor(keys: HopKeys) {
    if (keys.forward.length !== KEY || keys.backward.length !== KEY || keys.binding.length !== KEY)
      throw new AlliumError('ERR_KEY_FORMAT', `relay keys are ${KEY} bytes`);
    const slab = slabWithRoom();
    this.slab = slab;
    this.off = slab.take();
    slab.mem.set(keys.forward, this.off + SLOT_FWD);
    slab.mem.set(keys.backward, this.off + SLOT_BWD);
    slab.mem.set(keys.binding, this.off + SLOT_BINDING);
  }

  private live(): Uint8Array {
    if (!this.slab) throw new AlliumError('ERR_KEY_WIPED', 'relay key used after wipe');
    return this.slab.mem;
  }

  private view(at: number): Uint8Array {
    // A wiped hop's slot belongs to another hop by now: it shows zeros.
    return this.slab
      ? this.slab.mem.subarray(this.off + at, this.off + at + (at === SLOT_BINDING ? KEY : TAG))
      : new Uint8Array(at === SLOT_BINDING ? KEY : TAG);
  }

  /**
   * Tag of the last forward cell this hop verified (authenticated SENDMEs echo it; specs/streams.md §4). A view into
   * the slab, for use at once: kept past wipe(), it would show the tags of the next hop given the slot.
   */
  get lastForwardTag(): Uint8Array {
    return this.slab ? (this.fwdTagView ??= this.view(SLOT_FWD_TAG)) : this.view(SLOT_FWD_TAG);
  }

  /** Tag of the last backward cell this hop originated (a view, for use at once, as lastForwardTag). */
  get lastOriginTag(): Uint8Array {
    return this.slab ? (this.originTagView ??= this.view(SLOT_ORIGIN_TAG)) : this.view(SLOT_ORIGIN_TAG);
  }

  /**
   * The hop's binding value from the handshake (rendezvous and introduction use it), as a copy: a view into the slab
   * kept past wipe() would show the binding of the next hop given the slot. Zeros once wiped.
   */
  get binding(): Uint8Array {
    return this.view(SLOT_BINDING).slice();
  }

  /**
   * Removes this hop's layer from a forward cell body, in place. Returns 'mine' when the cell is addressed to this
   * hop (its payload is then body[128..)), 'forward' when it continues. Throws ERR_RELAY_MAC.
   */
  unwrapForward(body: Uint8Array): 'mine' | 'forward' {
    checkBody(body);
    const mem = this.live();
    copyTagAt(mem, this.off + SLOT_FWD_TAG, body);
    const mine = unwrapLayer(mem, this.off + SLOT_FWD, this.fwdCount, body, TAG);
    this.fwdCount++;
    return mine ? 'mine' : 'forward';
  }

  /** Adds this hop's layer to a backward cell coming from further along the circuit, in place. */
  wrapBackward(body: Uint8Array): void {
    checkBody(body);
    wrapLayer(this.live(), this.off + SLOT_BWD, this.bwdCount, body, AREA, false);
    this.bwdCount++;
  }

  /** Builds a backward cell body originating at this hop from a 891-byte payload. */
  originateBackward(payload: Uint8Array): Uint8Array {
    if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
    const mem = this.live();
    const body = new Uint8Array(CELL_BODY_LEN);
    body.set(payload, AREA);
    wrapLayer(mem, this.off + SLOT_BWD, this.bwdCount, body, AREA, true);
    this.bwdCount++;
    copyTagAt(mem, this.off + SLOT_ORIGIN_TAG, body);
    return body;
  }

  /**
   * As originateBackward, in place: `body` is a CELL_BODY_LEN buffer whose payload (body[128..)) the caller has
   * written, so the relay encodes a message straight into the cell it sends. The tag area is cleared first.
   */
  originateBackwardInPlace(body: Uint8Array): Uint8Array {
    checkBody(body);
    const mem = this.live();
    body.fill(0, 0, AREA);
    wrapLayer(mem, this.off + SLOT_BWD, this.bwdCount, body, AREA, true);
    this.bwdCount++;
    copyTagAt(mem, this.off + SLOT_ORIGIN_TAG, body);
    return body;
  }

  get counters(): { forward: number; backward: number } {
    return { forward: this.fwdCount, backward: this.bwdCount };
  }

  /** Wipes the keys, binding and tags and gives the slot back; every later operation throws ERR_KEY_WIPED. */
  wipe(): void {
    const slab = this.slab;
    if (!slab) return;
    this.slab = null;
    this.fwdTagView = this.originTagView = null;
    releaseSlot(slab, this.off);
    wipeScratch();
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
    for (let j = 0; j <= k; j++) this.fwd[j]!.check();

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
