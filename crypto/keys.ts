/**
 * Relay keys (specs/directory.md §2):
 *  - the identity key, Ed25519, long-term: its public key is the relay's name on the wire (fingerprint = hex);
 *  - onion keys, X25519, medium-term: they open setup onions. A new onion key is made every `lifetime`; the old one
 *    keeps working for `overlap` so that clients holding an older descriptor still build circuits. A key replaced
 *    early (its replay filter filled: a flood of valid onions) keeps working for the shorter `earlyOverlap`, and the
 *    ring never holds more than `maxKeys` keys, dropping the oldest early-replaced key first (specs/circuits.md
 *    §3.3.1): every key held costs an X25519 per CREATE it does not open and a replay filter.
 * Persistence (files, modes, atomic writes) lives in relay/; this module is pure and takes the time as an argument.
 */
import { crypto, type KeyPair } from './index.js';
import { AlliumError } from '../errors/index.js';

export const DEFAULT_ONION_KEY_LIFETIME_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_ONION_KEY_OVERLAP_MS = 24 * 3600 * 1000;
/** How long a key replaced early still opens onions (capped at the overlap). */
export const DEFAULT_ONION_KEY_EARLY_OVERLAP_MS = 3600 * 1000;
/** Onion keys a relay holds at once, the current one included (specs/limits.md MAX_ONION_KEYS). */
export const MAX_ONION_KEYS = 3;

export class IdentityKey {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly seed: Uint8Array;

  private constructor(seed: Uint8Array) {
    const kp = crypto().ed25519Keypair(seed);
    this.publicKey = kp.publicKey;
    this.secretKey = kp.secretKey;
    this.seed = kp.seed;
  }

  static generate(): IdentityKey {
    return new IdentityKey(crypto().random(32));
  }

  static fromSeed(seed: Uint8Array): IdentityKey {
    if (seed.length !== 32) throw new AlliumError('ERR_KEY_FORMAT', 'identity seed must be 32 bytes');
    return new IdentityKey(seed);
  }

  sign(message: Uint8Array): Uint8Array {
    return crypto().sign(message, this.secretKey);
  }

  get fingerprint(): string {
    return fingerprintOf(this.publicKey);
  }
}

/** The text form of an identity public key: 64 lowercase hex digits. */
export function fingerprintOf(identity: Uint8Array): string {
  // One string per byte from a table rather than toString and padStart (two per byte): every signed head, vote and
  // view names its signers, so this runs a few times per control message.
  let s = '';
  for (let i = 0; i < identity.length; i++) s += HEX_BYTE[identity[i]!];
  return s;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function parseFingerprint(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new AlliumError('ERR_KEY_FORMAT', 'a fingerprint is 64 hex digits');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * A fingerprint that names a relay identity: 64 hex digits that are also a valid Ed25519 public key (a canonical
 * point of the prime-order subgroup). Throws ERR_KEY_FORMAT otherwise: a typo in a fingerprint almost always gives
 * a string that is not a key, which is worth saying at once rather than as "no entry reachable" later.
 */
export function parseIdentityFingerprint(text: string): Uint8Array {
  const key = parseFingerprint(text);
  if (!crypto().edIsValidPoint(key)) throw new AlliumError('ERR_KEY_FORMAT', 'not a relay identity key: 64 hex digits, but not a valid Ed25519 public key');
  return key;
}

export interface OnionKeyEntry {
  readonly keyPair: KeyPair;
  /** Milliseconds since the epoch. */
  readonly created: number;
  /** When a newer key replaced it (absent for the current key). */
  readonly replaced?: number;
  /** It was replaced early (its replay filter filled) and keeps the short overlap. */
  readonly early?: boolean;
}

export interface OnionKeyRingOptions {
  lifetimeMs?: number;
  overlapMs?: number;
  /** Overlap of a key replaced early (default DEFAULT_ONION_KEY_EARLY_OVERLAP_MS, at most overlapMs). */
  earlyOverlapMs?: number;
  /** Keys held at once, at least 2 (default MAX_ONION_KEYS). */
  maxKeys?: number;
}

export class OnionKeyRing {
  private entries: OnionKeyEntry[];
  readonly lifetimeMs: number;
  readonly overlapMs: number;
  readonly earlyOverlapMs: number;
  readonly maxKeys: number;

  constructor(entries: OnionKeyEntry[], options: OnionKeyRingOptions = {}) {
    if (entries.length === 0) throw new AlliumError('ERR_INTERNAL', 'an onion key ring needs a key');
    // Newest first; a key saved without its replacement time was replaced when the next newer key was made.
    this.entries = [...entries]
      .sort((a, b) => b.created - a.created)
      .map((e, i, all) => (i === 0 || e.replaced !== undefined ? e : { ...e, replaced: all[i - 1]!.created }));
    this.lifetimeMs = options.lifetimeMs ?? DEFAULT_ONION_KEY_LIFETIME_MS;
    this.overlapMs = options.overlapMs ?? DEFAULT_ONION_KEY_OVERLAP_MS;
    this.earlyOverlapMs = Math.min(this.overlapMs, options.earlyOverlapMs ?? DEFAULT_ONION_KEY_EARLY_OVERLAP_MS);
    this.maxKeys = Math.max(2, options.maxKeys ?? MAX_ONION_KEYS);
  }

  static create(now: number, options: OnionKeyRingOptions = {}): OnionKeyRing {
    return new OnionKeyRing([{ keyPair: crypto().x25519Keypair(), created: now }], options);
  }

  get current(): OnionKeyEntry {
    return this.entries[0]!;
  }

  /** Keys that still open onions: the current one, then older ones inside their overlap window. */
  get usable(): KeyPair[] {
    return this.entries.map((e) => e.keyPair);
  }

  get all(): readonly OnionKeyEntry[] {
    return this.entries;
  }

  /**
   * Makes a new current key when the current one is older than its lifetime (or `force`: its replay filter is full,
   * an early rotation), and drops keys whose overlap window has passed — `overlap` after they were replaced, or
   * `earlyOverlap` when they were replaced early — then, beyond `maxKeys`, the oldest key replaced early (else the
   * oldest). Returns the keys dropped, wiped (their replay filters and journals can go).
   */
  rotate(now: number, force = false): { rotated: boolean; dropped: KeyPair[] } {
    let rotated = false;
    const due = now - this.current.created >= this.lifetimeMs;
    if (force || due) {
      this.entries[0] = { ...this.entries[0]!, replaced: now, ...(due ? {} : { early: true }) };
      this.entries.unshift({ keyPair: crypto().x25519Keypair(), created: now });
      rotated = true;
    }
    const dropped: KeyPair[] = [];
    const drop = (e: OnionKeyEntry): void => {
      dropped.push(e.keyPair);
      crypto().wipe(e.keyPair.secretKey);
    };
    const keep: OnionKeyEntry[] = [this.entries[0]!];
    for (let i = 1; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      // an older key retires when it has been replaced for its overlap
      if (now - (e.replaced ?? now) >= (e.early ? this.earlyOverlapMs : this.overlapMs)) drop(e);
      else keep.push(e);
    }
    while (keep.length > this.maxKeys) {
      let i = keep.length - 1;
      while (i > 1 && !keep[i]!.early) i--;
      if (!keep[i]!.early) i = keep.length - 1;
      drop(keep.splice(i, 1)[0]!);
    }
    this.entries = keep;
    return { rotated, dropped };
  }

  /**
   * Retires every key at once — wipes each secret — and makes a new current key. For a start whose replay filters
   * did not survive (specs/circuits.md §3.4.1): no key may open onions it may have opened before. Returns the keys
   * retired.
   */
  retireAll(now: number): KeyPair[] {
    const retired = this.entries.map((e) => e.keyPair);
    for (const k of retired) crypto().wipe(k.secretKey);
    this.entries = [{ keyPair: crypto().x25519Keypair(), created: now }];
    return retired;
  }

  /** When the next rotation is due. */
  nextRotation(): number {
    return this.current.created + this.lifetimeMs;
  }
}
