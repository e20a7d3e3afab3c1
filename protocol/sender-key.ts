/**
 * Sender keys (specs/messaging.md §13.3): each member of a group encrypts its messages once, under a symmetric hash
 * ratchet of its own, and signs them with a signing key of that ratchet's generation. Every other member holds a copy
 * of the chain (received over a pairwise session) and so can derive the message keys from the copy's index on.
 *
 *   KDF_GCK(ck) = ( K(ck, "allium-v1:group:next"), K(ck, "allium-v1:group:mk") )    → (ck', mk)   K as §5.1
 *   hdr  = "allium-v1 group" | g (32) | A (32) | u32(e) | u32(n)                      A: the sender's identity key
 *   ct   = AEAD(mk_n, 0^12, data, ad = hdr)
 *   sig  = Ed25519(ssk_e, hdr | ct)                                                 verified under sp_e
 *
 * Why signatures and not MACs: every member holds every other member's chain, so a MAC under a chain key would let
 * any member forge messages from any other. The signing key's secret half never leaves its owner, so a message
 * verifies only as its sender's. (Signal's sender keys make the same choice.)
 *
 * Forward secrecy within a chain: a message key is used once and wiped, the chain key replaced by its successor, so
 * a leaked state (`ck_n`) reads nothing before index n. Post-compromise security is only what a new generation gives
 * (rotate()): fresh random chain and signing keys, handed out over the pairwise sessions, which themselves heal by
 * their DH ratchet (§5). A leaked chain keeps reading that generation until its owner rotates.
 *
 * Out of order and duplicates: a message ahead of the chain makes the keys it skips be kept (at most MAX_GROUP_SKIP
 * per sender, oldest dropped); a key decrypts once, so a copy is ERR_MESSAGE_REPLAY. A new generation keeps the
 * keys of the previous one up to its announced length `pn`. decrypt() changes nothing unless the message verifies
 * and decrypts. Chains may also share SkipPools (a group's, a messenger's): a bound on their keys together, paid by
 * the chain that holds the most (§13.3).
 *
 * State for storage (§13.7): OwnSenderKey.state()/fromParts() and SenderChain.state()/restore() copy every secret out
 * and back; the caller seals what it stores.
 *
 * Pure: randomness only through the crypto facade (seedable in tests), no clock, no I/O.
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { ByteWriter, concatBytes, utf8 } from './bytes.js';
import { CryptoError, LimitError, NotFoundError, ProtocolError } from './errors.js';
import { GROUP_ID_LEN, MAX_GROUP_MESSAGE_BYTES, type GroupMessage, type SenderKeyDistribution } from './group-messages.js';

/** Skipped message keys a member holds per sender (specs/limits.md). */
export const MAX_GROUP_SKIP = 1000;
const MAX_U32 = 0xffffffff;
const NONCE0 = new Uint8Array(12);
const L = { next: utf8('allium-v1:group:next'), mk: utf8('allium-v1:group:mk') };
export const GROUP_CONTEXT = utf8('allium-v1 group');

function K(key: Uint8Array, label: Uint8Array): Uint8Array {
  return crypto().hash(32, label, key);
}

/** (ck', mk) from ck. */
export function kdfGroupChain(ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [K(ck, L.next), K(ck, L.mk)];
}

/** The header a group message's AEAD and signature bind: context, group, sender, generation, index. */
export function groupHeader(group: Uint8Array, sender: Uint8Array, e: number, n: number): Uint8Array {
  return new ByteWriter(GROUP_CONTEXT.length + 2 * GROUP_ID_LEN + 8).bytes(GROUP_CONTEXT).bytes(group).bytes(sender).u32(e).u32(n).done();
}

/** Our own sender key in one group: the chain we encrypt with and its generation's signing key. */
export class OwnSenderKey {
  private constructor(
    private ck: Uint8Array,
    private signing: KeyPair & { readonly seed: Uint8Array },
    /** Generation. */
    public e: number,
    /** Index of the next message. */
    public n: number,
    /** Messages sent under the previous generation. */
    public pn: number,
  ) {}

  /** A new generation-0 sender key: random chain key and signing key (CSPRNG, or the facade's seeded source). */
  static create(): OwnSenderKey {
    return new OwnSenderKey(crypto().random(32), crypto().ed25519Keypair(), 0, 0, 0);
  }

  /** A sender key from given parts (vectors and tests; a real one is create()d). */
  static fromParts(p: { ck: Uint8Array; signingSeed: Uint8Array; e?: number; n?: number; pn?: number }): OwnSenderKey {
    return new OwnSenderKey(p.ck.slice(), crypto().ed25519Keypair(p.signingSeed), p.e ?? 0, p.n ?? 0, p.pn ?? 0);
  }

  /** Replaces the chain and signing key with fresh random ones (the next generation); the old ones are wiped. */
  rotate(): void {
    if (this.e >= MAX_U32) throw new LimitError('MAX_CHAIN_LENGTH', 'sender key generations exhausted');
    crypto().wipe(this.ck, this.signing.secretKey, this.signing.seed);
    this.ck = crypto().random(32);
    this.signing = crypto().ed25519Keypair();
    this.pn = this.n;
    this.n = 0;
    this.e += 1;
  }

  /** Everything fromParts() needs to rebuild this key (copies: the caller stores them sealed and wipes them). */
  state(): { ck: Uint8Array; signingSeed: Uint8Array; e: number; n: number; pn: number } {
    return { ck: this.ck.slice(), signingSeed: this.signing.seed.slice(), e: this.e, n: this.n, pn: this.pn };
  }

  /** Wipes the chain and signing keys (we left the group, or it was forgotten). */
  destroy(): void {
    crypto().wipe(this.ck, this.signing.secretKey, this.signing.seed);
  }

  /** What other members need to read our messages from index n of this generation on (never earlier ones). */
  distribution(group: Uint8Array): SenderKeyDistribution {
    return { kind: 'sender-key', group: group.slice(), e: this.e, n: this.n, pn: this.pn, ck: this.ck.slice(), sp: this.signing.publicKey.slice() };
  }

  /** Encrypts and signs one message as `sender` (our identity key); the message key is wiped at once. */
  encrypt(group: Uint8Array, sender: Uint8Array, data: Uint8Array): GroupMessage {
    if (data.length > MAX_GROUP_MESSAGE_BYTES) throw new LimitError('MAX_GROUP_MESSAGE_BYTES', `message of ${data.length} bytes`);
    if (this.n >= MAX_U32) throw new LimitError('MAX_CHAIN_LENGTH', 'sender chain exhausted; update the key');
    const [next, mk] = kdfGroupChain(this.ck);
    crypto().wipe(this.ck);
    this.ck = next;
    const n = this.n++;
    const hdr = groupHeader(group, sender, this.e, n);
    const ct = crypto().aeadEncrypt(data, hdr, NONCE0, mk);
    crypto().wipe(mk);
    const sig = crypto().sign(concatBytes(hdr, ct), this.signing.secretKey);
    return { kind: 'message', group: group.slice(), e: this.e, n, ct, sig };
  }
}

interface Held {
  readonly mk: Uint8Array;
  readonly sp: Uint8Array;
}

/** A skipped key as stored: the generation and index it opens, the key, and the signing key of its generation. */
export interface SkippedKeyState {
  readonly e: number;
  readonly n: number;
  readonly mk: Uint8Array;
  readonly sp: Uint8Array;
}

/** A chain as stored: its position, chain key and signing key, and its skipped keys, oldest first. */
export interface SenderChainState {
  readonly e: number;
  readonly n: number;
  readonly ck: Uint8Array;
  readonly sp: Uint8Array;
  readonly skipped: readonly SkippedKeyState[];
}

/**
 * A bound on the skipped keys of several chains together: a group's chains (MAX_GROUP_SKIPPED_PER_GROUP) or a
 * messenger's (MAX_GROUP_SKIPPED). When a chain's new keys take the pool over `max`, the chain of the pool holding
 * the most gives up its oldest keys until the pool is at `max` again: a member that skips far ahead pays first, and
 * a member holding a few keys for messages in flight keeps them while anyone holds more (specs/messaging.md §13.3).
 */
export class SkipPool {
  private held = 0;
  /** Chains of this pool holding at least one key. */
  private readonly holders = new Set<SenderChain>();

  constructor(readonly max: number) {}

  /** Skipped keys held by the pool's chains together. */
  get size(): number {
    return this.held;
  }

  /** @internal SenderChain's bookkeeping: `k` keys more (or fewer) held by `chain`. */
  count(chain: SenderChain, k: number): void {
    this.held += k;
    if (chain.skippedKeys > 0) this.holders.add(chain);
    else this.holders.delete(chain);
  }

  /** Drops keys from the largest holders until the pool holds at most `max`. */
  enforce(): void {
    while (this.held > this.max) {
      let big: SenderChain | undefined;
      for (const c of this.holders) if (!big || c.skippedKeys > big.skippedKeys) big = c;
      const before = this.held;
      if (big) big.dropOldest(Math.min(this.held - this.max, big.skippedKeys));
      if (this.held === before) return; // nothing left to drop (never, while the counts are kept right)
    }
  }
}

/** Another member's chain as we hold it: current generation, and the keys we skipped (bounded). */
export class SenderChain {
  private ck: Uint8Array;
  private sp: Uint8Array;
  private skipped = new Map<string, Held>();

  private constructor(
    d: { readonly e: number; readonly n: number; readonly ck: Uint8Array; readonly sp: Uint8Array },
    readonly maxSkip: number,
    private readonly pools: readonly SkipPool[],
  ) {
    this.ck = d.ck.slice();
    this.sp = d.sp.slice();
    this.e = d.e;
    this.n = d.n;
  }
  /** Current generation. */
  e: number;
  /** Index of the next message expected in it. */
  n: number;

  /** A chain from a member's distribution; its skipped keys count in `pools` as well as against maxSkip. */
  static from(d: SenderKeyDistribution, maxSkip = MAX_GROUP_SKIP, pools: readonly SkipPool[] = []): SenderChain {
    if (!crypto().edIsValidPoint(d.sp)) throw new ProtocolError('ERR_KEY_FORMAT', 'sender signing key is not a valid point');
    return new SenderChain(d, maxSkip, pools);
  }

  /** A chain as state() gave it (from storage); bounds apply as they would have when the keys were kept. */
  static restore(s: SenderChainState, maxSkip = MAX_GROUP_SKIP, pools: readonly SkipPool[] = []): SenderChain {
    for (const k of [s.sp, ...s.skipped.map((x) => x.sp)]) {
      if (!crypto().edIsValidPoint(k)) throw new ProtocolError('ERR_KEY_FORMAT', 'sender signing key is not a valid point');
    }
    const c = new SenderChain(s, maxSkip, pools);
    for (const x of s.skipped) c.hold(x.e, x.n, { mk: x.mk.slice(), sp: x.sp.slice() });
    c.settle();
    return c;
  }

  /** Copies of everything restore() needs. */
  state(): SenderChainState {
    return {
      e: this.e,
      n: this.n,
      ck: this.ck.slice(),
      sp: this.sp.slice(),
      skipped: [...this.skipped].map(([id, h]) => {
        const [e, n] = id.split(':').map(Number) as [number, number];
        return { e, n, mk: h.mk.slice(), sp: h.sp.slice() };
      }),
    };
  }

  get skippedKeys(): number {
    return this.skipped.size;
  }

  /**
   * Takes a later generation (`d.e > e`); keeps the current generation's keys from n up to `d.pn` when `d.e == e + 1`
   * (within the skip bound). Returns false for a generation not newer than ours (a copy, or an old key: ignored).
   * Throws ERR_KEY_FORMAT.
   */
  update(d: SenderKeyDistribution): boolean {
    if (d.e <= this.e) return false;
    if (!crypto().edIsValidPoint(d.sp)) throw new ProtocolError('ERR_KEY_FORMAT', 'sender signing key is not a valid point');
    if (d.e === this.e + 1 && d.pn > this.n && d.pn - this.n <= this.maxSkip) {
      let ck = this.ck;
      for (let i = this.n; i < d.pn; i++) {
        const [next, mk] = kdfGroupChain(ck);
        if (ck !== this.ck) crypto().wipe(ck);
        ck = next;
        this.hold(this.e, i, { mk, sp: this.sp });
      }
      crypto().wipe(ck);
    }
    crypto().wipe(this.ck);
    this.ck = d.ck.slice();
    this.sp = d.sp.slice();
    this.e = d.e;
    this.n = d.n;
    this.settle();
    return true;
  }

  private hold(e: number, n: number, h: Held): void {
    this.skipped.set(`${e}:${n}`, h);
    for (const p of this.pools) p.count(this, 1);
    if (this.skipped.size > this.maxSkip) this.dropOldest(this.skipped.size - this.maxSkip);
  }

  /** Brings every pool this chain is in back within its bound (after keys were held). */
  private settle(): void {
    for (const p of this.pools) p.enforce();
  }

  /** Drops (and wipes) the `k` oldest skipped keys: their messages will be ERR_MESSAGE_REPLAY. */
  dropOldest(k: number): void {
    let dropped = 0;
    for (const [id, old] of this.skipped) {
      if (dropped >= k) break;
      crypto().wipe(old.mk);
      this.skipped.delete(id);
      dropped++;
    }
    for (const p of this.pools) p.count(this, -dropped);
  }

  /**
   * Verifies and decrypts a message from `sender` (its identity key). Throws NotFoundError (a later generation than
   * we hold: its key has not come yet), ERR_MESSAGE_REPLAY (its key was used or dropped: a copy or an old message),
   * ERR_RATCHET_SKIP (more than maxSkip ahead), ERR_SIGNATURE, ERR_MESSAGE_AUTH. Nothing changes unless it opens.
   */
  decrypt(sender: Uint8Array, m: GroupMessage): Uint8Array {
    const hdr = groupHeader(m.group, sender, m.e, m.n);
    const signed = concatBytes(hdr, m.ct);
    const id = `${m.e}:${m.n}`;
    const held = this.skipped.get(id);
    if (held) {
      if (!crypto().verify(m.sig, signed, held.sp)) throw new CryptoError('ERR_SIGNATURE', 'group message signature');
      const data = crypto().aeadDecrypt(m.ct, hdr, NONCE0, held.mk);
      if (!data) throw new CryptoError('ERR_MESSAGE_AUTH', 'group message does not decrypt');
      crypto().wipe(held.mk);
      this.skipped.delete(id);
      for (const p of this.pools) p.count(this, -1);
      return data;
    }
    if (m.e > this.e) throw new NotFoundError('no sender key yet for this generation');
    if (m.e < this.e || m.n < this.n) throw new ProtocolError('ERR_MESSAGE_REPLAY', 'group message key already used or dropped');
    if (m.n - this.n > this.maxSkip) throw new LimitError('MAX_GROUP_SKIP', `message ${m.n - this.n} ahead of the chain`, 'ERR_RATCHET_SKIP');
    if (!crypto().verify(m.sig, signed, this.sp)) throw new CryptoError('ERR_SIGNATURE', 'group message signature');
    // Derive along the chain without touching state; commit only once the message opens.
    const made: Array<[number, Uint8Array]> = [];
    let ck = this.ck;
    const temp: Uint8Array[] = [];
    let mk: Uint8Array | null = null;
    for (let i = this.n; i <= m.n; i++) {
      const [next, k] = kdfGroupChain(ck);
      if (ck !== this.ck) temp.push(ck);
      ck = next;
      if (i < m.n) made.push([i, k]);
      else mk = k;
    }
    const data = crypto().aeadDecrypt(m.ct, hdr, NONCE0, mk!);
    crypto().wipe(mk!, ...temp);
    if (!data) {
      crypto().wipe(ck, ...made.map(([, k]) => k));
      throw new CryptoError('ERR_MESSAGE_AUTH', 'group message does not decrypt');
    }
    for (const [i, k] of made) this.hold(this.e, i, { mk: k, sp: this.sp });
    crypto().wipe(this.ck);
    this.ck = ck;
    this.n = m.n + 1;
    this.settle();
    return data;
  }

  /** Wipes every key held (the sender left, or we did). */
  destroy(): void {
    crypto().wipe(this.ck, ...[...this.skipped.values()].map((h) => h.mk));
    const had = this.skipped.size;
    this.skipped.clear();
    for (const p of this.pools) p.count(this, -had);
  }
}
