/**
 * A relay's or client's view of the overlay: verified descriptors by identity (specs/directory.md §4). Pure: the
 * caller passes the time. Holds at most one descriptor per identity, the newest by publication time; an older or
 * equal descriptor offered again is a replay and is ignored.
 */
import { crypto } from '../crypto/index.js';
import { toHex } from './bytes.js';
import { LimitError, ProtocolError } from './errors.js';
import { verifyDescriptor, type Descriptor, type OpenedDescriptor } from './descriptor.js';

export interface DirectoryEntry {
  readonly descriptor: Descriptor;
  /** Local time the entry arrived (responders use it for incremental fetches). */
  readonly receivedAt: number;
}

export type OfferResult = 'new' | 'updated' | 'same';

export class DirectoryStore {
  private readonly entries = new Map<string, DirectoryEntry>();
  private cachedDigest: Uint8Array | null = null;
  /** Hash of each held descriptor's bytes → its fingerprint (duplicates skip the signature check). */
  private readonly byRaw = new Map<string, string>();

  constructor(readonly maxEntries = 100_000) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Verifies and adds a signed descriptor. Returns whether it was new, newer than ours, or already known.
   * Throws the verification errors of verifyDescriptor, ERR_DESCRIPTOR_STALE for an older edition.
   */
  offer(raw: Uint8Array, now: number): { result: OfferResult; descriptor: Descriptor } {
    const { descriptor: d, held } = this.verify(raw, now);
    if (held) return { result: 'same', descriptor: d };
    return { result: this.add(d, now), descriptor: d };
  }

  /**
   * Verifies a signed descriptor without adding it (the caller decides: specs/directory.md §5.5). `held`: these
   * very bytes are held and unexpired — known without a signature check (a duplicate in gossip, or a replay).
   * Throws the errors of verifyDescriptor. `input` may be what openDescriptor made of the bytes (nothing is decoded
   * twice).
   */
  verify(input: Uint8Array | OpenedDescriptor, now: number): { descriptor: Descriptor; held: boolean } {
    const held = this.held(input instanceof Uint8Array ? input : input.raw, now);
    if (held) return { descriptor: held, held: true };
    return { descriptor: verifyDescriptor(input, now), held: false };
  }

  /** The descriptor held with exactly these bytes, unexpired at `now` (null: none). No decoding, no signature check. */
  held(raw: Uint8Array, now: number): Descriptor | null {
    const fp = this.byRaw.get(rawKey(raw));
    const e = fp === undefined ? undefined : this.entries.get(fp);
    return e && e.descriptor.exp > now ? e.descriptor : null;
  }

  /** Adds an already verified descriptor. */
  add(d: Descriptor, now: number): OfferResult {
    const have = this.entries.get(d.fingerprint);
    if (have) {
      if (d.pub < have.descriptor.pub) throw new ProtocolError('ERR_DESCRIPTOR_STALE', 'an older descriptor than the one held');
      if (d.pub === have.descriptor.pub) return 'same';
    } else if (this.entries.size >= this.maxEntries) {
      throw new LimitError('MAX_DIRECTORY_ENTRIES', 'directory full');
    }
    if (have) this.byRaw.delete(rawKey(have.descriptor.raw));
    this.entries.set(d.fingerprint, { descriptor: d, receivedAt: now });
    this.byRaw.set(rawKey(d.raw), d.fingerprint);
    this.cachedDigest = null;
    return have ? 'updated' : 'new';
  }

  /** Drops expired entries; returns their fingerprints. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [fp, e] of this.entries) {
      if (e.descriptor.exp <= now) {
        this.entries.delete(fp);
        this.byRaw.delete(rawKey(e.descriptor.raw));
        gone.push(fp);
      }
    }
    if (gone.length) this.cachedDigest = null;
    return gone;
  }

  remove(fingerprint: string): void {
    const e = this.entries.get(fingerprint);
    if (!e) return;
    this.entries.delete(fingerprint);
    this.byRaw.delete(rawKey(e.descriptor.raw));
    this.cachedDigest = null;
  }

  get(fingerprint: string): Descriptor | undefined {
    return this.entries.get(fingerprint)?.descriptor;
  }

  getById(identity: Uint8Array): Descriptor | undefined {
    return this.get(toHex(identity));
  }

  all(): Descriptor[] {
    return [...this.entries.values()].map((e) => e.descriptor);
  }

  /** Entries that arrived at or after `since` (local time). */
  since(since: number): Descriptor[] {
    const out: Descriptor[] = [];
    for (const e of this.entries.values()) if (e.receivedAt >= since) out.push(e.descriptor);
    return out;
  }

  /** A digest of the whole view: BLAKE2b over the sorted (identity | pub u64) pairs. Equal views, equal digests. */
  digest(): Uint8Array {
    if (this.cachedDigest) return this.cachedDigest;
    this.cachedDigest = directoryDigest(this.all());
    return this.cachedDigest;
  }

  /** A compact summary for anti-entropy: [identity, pub] pairs. */
  summary(): [Uint8Array, number][] {
    return [...this.entries.values()].map((e) => [e.descriptor.id, e.descriptor.pub]);
  }

  /**
   * One page of the summary (specs/directory.md §5.3): the [identity, pub] pairs of the entries whose fingerprint
   * is above hex(`after`) (all entries when null), in ascending fingerprint order, at most `max`. `more` says the
   * list was cut: entries above its last one exist and are not in it.
   */
  summaryPage(after: Uint8Array | null, max: number): { e: [Uint8Array, number][]; more: boolean } {
    const lo = after ? toHex(after) : null;
    const keys = [...this.entries.keys()].filter((fp) => lo === null || fp > lo).sort();
    const e = keys.slice(0, max).map((fp): [Uint8Array, number] => {
      const d = this.entries.get(fp)!.descriptor;
      return [d.id, d.pub];
    });
    return { e, more: keys.length > max };
  }

  /**
   * Compares a peer's summary with ours: the identities we should ask for (missing or older here) and the
   * descriptors we should send (missing or older there). A summary page speaks only for the fingerprints it covers —
   * above hex(`after`) and, when it was cut (`more`), up to its last entry — so nothing outside that range is given.
   */
  diff(
    peer: readonly (readonly [Uint8Array, number])[],
    range: { after?: Uint8Array | null; more?: boolean } = {},
  ): { want: Uint8Array[]; give: Descriptor[] } {
    const theirs = new Map<string, number>();
    const want: Uint8Array[] = [];
    let last = '';
    for (const [id, pub] of peer) {
      const fp = toHex(id);
      theirs.set(fp, pub);
      if (fp > last) last = fp;
      const mine = this.entries.get(fp);
      if (!mine || mine.descriptor.pub < pub) want.push(id);
    }
    const lo = range.after ? toHex(range.after) : null;
    const give: Descriptor[] = [];
    // A cut page with no entries covers nothing (the schema refuses one).
    if (range.more && peer.length === 0) return { want, give };
    for (const [fp, e] of this.entries) {
      if (lo !== null && fp <= lo) continue;
      if (range.more && fp > last) continue;
      const t = theirs.get(fp);
      if (t === undefined || t < e.descriptor.pub) give.push(e.descriptor);
    }
    return { want, give };
  }
}

/**
 * DirectoryDigest (specs/directory.md §4) of a set of descriptors: BLAKE2b-256 over id | u64(pub) of each, in
 * ascending order of fingerprint. Written into one buffer (a view of 100,000 entries has 200,000 parts).
 */
export function directoryDigest(descriptors: readonly Pick<Descriptor, 'id' | 'pub' | 'fingerprint'>[]): Uint8Array {
  const sorted = [...descriptors].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
  const all = new Uint8Array(sorted.length * 40);
  const view = new DataView(all.buffer);
  sorted.forEach((d, i) => {
    all.set(d.id, i * 40);
    view.setBigUint64(i * 40 + 32, BigInt(d.pub));
  });
  return crypto().hash(32, all);
}

/** A short hash of a descriptor's bytes: equal bytes, equal key (a collision would need a 128-bit hash collision). */
function rawKey(raw: Uint8Array): string {
  return toHex(crypto().hash(16, raw));
}
