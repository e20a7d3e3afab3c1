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
import {
  CELL_BODY_LEN,
  MAX_HOPS,
  RELAY_PAYLOAD_LEN,
  RELAY_TAG_AREA_LEN,
  RELAY_TAG_LEN,
} from './constants.js';
import { AlliumError, CryptoError, LimitError, ProtocolError } from './errors.js';
import type { HopKeys } from './ntor.js';

/** A circuit is rebuilt long before this many cells in one direction (specs/limits.md). */
export const MAX_CELLS_PER_DIRECTION = 2 ** 48;

const TAG = RELAY_TAG_LEN;
const AREA = RELAY_TAG_AREA_LEN;

/** One direction of one hop: key, counter and scratch buffers. */
class DirectionKey {
  private counter = 0;
  private readonly nonce = new Uint8Array(12);
  private readonly block0 = new Uint8Array(64);
  private readonly zero64 = new Uint8Array(64);
  readonly mac = new Uint8Array(TAG);
  private wiped = false;

  constructor(private readonly key: Uint8Array) {}

  get count(): number {
    return this.counter;
  }

  /** Prepares otk/mask for the next cell (does not advance the counter). */
  begin(): void {
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
    crypto().chacha20Xor(this.block0, this.zero64, this.nonce, 0, this.key);
  }

  /** Poly1305 under this cell's one-time key into this.mac. */
  macOf(data: Uint8Array): Uint8Array {
    crypto().poly1305(this.mac, data, this.block0.subarray(0, 32));
    return this.mac;
  }

  maskInto(tag: Uint8Array): void {
    for (let i = 0; i < TAG; i++) tag[i]! ^= this.block0[32 + i]!;
  }

  /** XORs this cell's keystream (from block 1) into buf. */
  xor(buf: Uint8Array): void {
    crypto().chacha20Xor(buf, buf, this.nonce, 1, this.key);
  }

  /** The first n keystream bytes (from block 1), for the client's tag-area simulation. */
  keystream(n: number): Uint8Array {
    const out = new Uint8Array(n);
    crypto().chacha20Xor(out, out, this.nonce, 1, this.key);
    return out;
  }

  advance(): void {
    this.counter++;
  }

  wipe(): void {
    crypto().wipe(this.key, this.block0);
    this.wiped = true;
  }
}

function tagEquals(a: Uint8Array, b: Uint8Array): boolean {
  return crypto().equal(a, b);
}

function checkBody(body: Uint8Array): void {
  if (body.length !== CELL_BODY_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay cell body is ${CELL_BODY_LEN} bytes`);
}

/** Forward unwrap, in place. Returns true if the cell is for this hop. Throws ERR_RELAY_MAC. */
function unwrapInPlace(d: DirectionKey, body: Uint8Array, macFrom: number): boolean {
  d.begin();
  const m = d.macOf(body.subarray(macFrom));
  const tag = body.subarray(0, TAG);
  let mine: boolean;
  if (tagEquals(tag, m)) mine = false;
  else {
    d.maskInto(m);
    if (tagEquals(tag, m)) mine = true;
    else throw new CryptoError('ERR_RELAY_MAC', 'relay cell tag does not verify');
  }
  body.copyWithin(0, TAG, AREA);
  body.fill(0, AREA - TAG, AREA);
  d.xor(body);
  d.advance();
  return mine;
}

/** Backward wrap, in place. */
function wrapInPlace(d: DirectionKey, body: Uint8Array, origin: boolean): void {
  d.begin();
  d.xor(body);
  body.copyWithin(TAG, 0, AREA - TAG);
  const t = d.macOf(body.subarray(AREA));
  if (origin) d.maskInto(t);
  body.set(t, 0);
  d.advance();
}

/** The relay's side of one hop: forward cells are unwrapped, backward cells wrapped. */
export class RelayHopCrypto {
  private readonly fwd: DirectionKey;
  private readonly bwd: DirectionKey;
  /** Tag of the last forward cell this hop verified (authenticated SENDMEs echo it; specs/streams.md §4). */
  readonly lastForwardTag = new Uint8Array(TAG);
  /** Tag of the last backward cell this hop originated. */
  readonly lastOriginTag = new Uint8Array(TAG);

  constructor(keys: HopKeys) {
    this.fwd = new DirectionKey(Uint8Array.from(keys.forward));
    this.bwd = new DirectionKey(Uint8Array.from(keys.backward));
  }

  /**
   * Removes this hop's layer from a forward cell body, in place. Returns 'mine' when the cell is addressed to this
   * hop (its payload is then body[128..)), 'forward' when it continues. Throws ERR_RELAY_MAC.
   */
  unwrapForward(body: Uint8Array): 'mine' | 'forward' {
    checkBody(body);
    this.lastForwardTag.set(body.subarray(0, TAG));
    return unwrapInPlace(this.fwd, body, TAG) ? 'mine' : 'forward';
  }

  /** Adds this hop's layer to a backward cell coming from further along the circuit, in place. */
  wrapBackward(body: Uint8Array): void {
    checkBody(body);
    wrapInPlace(this.bwd, body, false);
  }

  /** Builds a backward cell body originating at this hop from a 891-byte payload. */
  originateBackward(payload: Uint8Array): Uint8Array {
    if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
    const body = new Uint8Array(CELL_BODY_LEN);
    body.set(payload, AREA);
    wrapInPlace(this.bwd, body, true);
    this.lastOriginTag.set(body.subarray(0, TAG));
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
  private readonly fill: (n: number) => Uint8Array;
  /** Tag the target hop will see for the last forward cell built (what its authenticated SENDME echoes). */
  readonly lastForwardTag = new Uint8Array(TAG);
  /** Tag of the originating hop's layer of the last backward cell unwrapped. */
  readonly lastBackwardTag = new Uint8Array(TAG);

  constructor(hops: readonly HopKeys[], options: { random?: (n: number) => Uint8Array } = {}) {
    if (hops.length < 1 || hops.length > MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `a circuit has 1..${MAX_HOPS} hops`);
    for (const h of hops) this.addHop(h);
    this.fill = options.random ?? ((n) => crypto().random(n));
  }

  get length(): number {
    return this.fwd.length;
  }

  /** Appends a hop (after an extension). */
  addHop(keys: HopKeys): void {
    if (this.fwd.length >= MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `a circuit has at most ${MAX_HOPS} hops`);
    this.fwd.push(new DirectionKey(Uint8Array.from(keys.forward)));
    this.bwd.push(new DirectionKey(Uint8Array.from(keys.backward)));
  }

  /**
   * Encrypts a 891-byte payload for hop `target` (0-based) and returns the 1019-byte body to send to the first hop.
   * Every hop up to `target` verifies its tag; hop `target` recognises the cell as its own.
   */
  wrapForward(payload: Uint8Array, target: number): Uint8Array {
    if (payload.length !== RELAY_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a relay payload is ${RELAY_PAYLOAD_LEN} bytes`);
    if (!Number.isInteger(target) || target < 0 || target >= this.fwd.length) throw new AlliumError('ERR_INTERNAL', 'no such hop');
    const k = target;
    for (let j = 0; j <= k; j++) this.fwd[j]!.begin();

    // Simulate the tag areas forward: slots 1..7 as hop k will receive them. Slots 0..k-1 of the first area carry
    // the tag chain and never reach slots 1..7 at hop k, so they can be left zero here.
    const area = new Uint8Array(AREA);
    area.set(this.fill(AREA - k * TAG), k * TAG);
    for (let j = 0; j < k; j++) {
      area.copyWithin(0, TAG, AREA);
      area.fill(0, AREA - TAG);
      const ks = this.fwd[j]!.keystream(AREA);
      for (let i = 0; i < AREA; i++) area[i]! ^= ks[i]!;
    }

    // Innermost layer: hop k's view, then wrap outwards.
    const body = new Uint8Array(CELL_BODY_LEN);
    body.set(area);
    body.set(payload, AREA);
    {
      const d = this.fwd[k]!;
      // Hop k XORs KS into (slots 1..7 | 0 | payload); only the payload part matters, so pre-XOR a copy.
      const tmp = new Uint8Array(CELL_BODY_LEN);
      tmp.set(payload, AREA);
      d.xor(tmp);
      body.set(tmp.subarray(AREA), AREA);
      const t = d.macOf(body.subarray(TAG));
      d.maskInto(t);
      body.set(t, 0);
      this.lastForwardTag.set(t);
    }
    for (let j = k - 1; j >= 0; j--) {
      const d = this.fwd[j]!;
      // Inverse of unwrapInPlace: X = body ^ KS; body' = T | X[0..112) | X[128..).
      d.xor(body);
      body.copyWithin(TAG, 0, AREA - TAG);
      body.set(d.macOf(body.subarray(TAG)), 0);
    }
    for (let j = 0; j <= k; j++) this.fwd[j]!.advance();
    return body;
  }

  /**
   * Removes the layers of a backward cell body, in place. Returns the index of the hop that originated it; its
   * payload is then body[128..). Throws ERR_RELAY_MAC if any layer fails.
   */
  unwrapBackward(body: Uint8Array): number {
    checkBody(body);
    for (let j = 0; j < this.bwd.length; j++) {
      this.lastBackwardTag.set(body.subarray(0, TAG));
      if (unwrapInPlace(this.bwd[j]!, body, AREA)) return j;
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
