/**
 * Relay keys (specs/directory.md §2):
 *  - the identity key, Ed25519, long-term: its public key is the relay's name on the wire (fingerprint = hex);
 *  - onion keys, X25519, medium-term: they open setup onions. A new onion key is made every `lifetime`; the old one
 *    keeps working for `overlap` so that clients holding an older descriptor still build circuits.
 * Persistence (files, modes, atomic writes) lives in relay/; this module is pure and takes the time as an argument.
 */
import { crypto, type KeyPair } from './index.js';
import { AlliumError } from '../protocol/errors.js';

export const DEFAULT_ONION_KEY_LIFETIME_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_ONION_KEY_OVERLAP_MS = 24 * 3600 * 1000;

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
  let s = '';
  for (const b of identity) s += b.toString(16).padStart(2, '0');
  return s;
}

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
}

export interface OnionKeyRingOptions {
  lifetimeMs?: number;
  overlapMs?: number;
}

export class OnionKeyRing {
  private entries: OnionKeyEntry[];
  readonly lifetimeMs: number;
  readonly overlapMs: number;

  constructor(entries: OnionKeyEntry[], options: OnionKeyRingOptions = {}) {
    if (entries.length === 0) throw new AlliumError('ERR_INTERNAL', 'an onion key ring needs a key');
    this.entries = [...entries].sort((a, b) => b.created - a.created);
    this.lifetimeMs = options.lifetimeMs ?? DEFAULT_ONION_KEY_LIFETIME_MS;
    this.overlapMs = options.overlapMs ?? DEFAULT_ONION_KEY_OVERLAP_MS;
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
   * Makes a new current key when the current one is older than its lifetime (or `force`), and drops keys whose
   * overlap window has passed. Returns the keys dropped (their replay filters can be forgotten).
   */
  rotate(now: number, force = false): { rotated: boolean; dropped: KeyPair[] } {
    let rotated = false;
    if (force || now - this.current.created >= this.lifetimeMs) {
      this.entries.unshift({ keyPair: crypto().x25519Keypair(), created: now });
      rotated = true;
    }
    const dropped: KeyPair[] = [];
    const keep: OnionKeyEntry[] = [this.entries[0]!];
    for (let i = 1; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      // an older key retires when the key that replaced it has been current for `overlap`
      const replacedAt = this.entries[i - 1]!.created;
      if (now - replacedAt >= this.overlapMs) {
        dropped.push(e.keyPair);
        crypto().wipe(e.keyPair.secretKey);
      } else keep.push(e);
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
