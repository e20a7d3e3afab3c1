/**
 * The directory store of relays in large simulations: the real DirectoryStore (protocol/directory-store.ts) —
 * same entries, replay rules, summaries and diffs — with two shortcuts that change no message and no decision:
 *
 * - Verification once per descriptor. Every relay verifies every descriptor it is offered (signature, schema, time
 *   window). In one process the same signed bytes reach all N relays, so the signature and schema checks run once
 *   per distinct descriptor (`VerifyCache`, keyed by the bytes' object identity, which message-level links
 *   preserve) and the time window, which depends on the receiver's clock, is checked at every relay.
 * - An incremental digest. The real digest hashes the sorted (identity, published) list, O(N log N) each time the
 *   view changed; here it is the XOR of the descriptors' BLAKE2b digests, updated per change. Two views have equal
 *   digests exactly when they hold the same descriptors (up to a 2^-256 accident), which is all the gossip uses a
 *   digest for, and it has the same 32 bytes, so every gossip message keeps its size.
 *
 * Each change is reported to `onChange` so experiments can time how fast a descriptor reaches every relay.
 */
import type { Descriptor, OpenedDescriptor } from '../protocol/descriptor.js';
import { verifyDescriptor, DESCRIPTOR_CLOCK_SKEW_MS } from '../protocol/descriptor.js';
import { DirectoryStore, type OfferResult } from '../protocol/directory-store.js';
import { ProtocolError } from '../protocol/errors.js';

export class VerifyCache {
  private readonly byRaw = new WeakMap<Uint8Array, Descriptor>();
  /** Full verifications run (each distinct descriptor once). */
  verified = 0;
  /** Offers answered from the cache (each would be a signature check at a real relay). */
  hits = 0;

  /** Registers a descriptor signed in this process (its bytes need no check). */
  add(d: Descriptor): void {
    this.byRaw.set(d.raw, d);
  }

  /** verifyDescriptor(raw, now), with the signature and schema checks done once per distinct descriptor. */
  verify(raw: Uint8Array, now: number): Descriptor {
    let d = this.byRaw.get(raw);
    if (!d) {
      d = verifyDescriptor(raw, now);
      this.verified++;
      this.byRaw.set(raw, d);
      this.byRaw.set(d.raw, d);
      return d;
    }
    this.hits++;
    if (d.pub > now + DESCRIPTOR_CLOCK_SKEW_MS) throw new ProtocolError('ERR_DESCRIPTOR_FUTURE', 'descriptor published in the future');
    if (d.exp <= now) throw new ProtocolError('ERR_DESCRIPTOR_EXPIRED', 'descriptor expired');
    return d;
  }
}

/** The store's private entry map (the copy above needs it; checked so a renamed field fails loudly). */
function entriesOf(s: DirectoryStore): Map<string, unknown> {
  const m = (s as unknown as { entries?: unknown }).entries;
  if (!(m instanceof Map)) throw new Error('DirectoryStore no longer keeps its entries in `entries`: update sim/directory.ts');
  return m as Map<string, unknown>;
}

export type ChangeListener = (d: Descriptor, result: OfferResult, now: number) => void;

export class SimDirectoryStore extends DirectoryStore {
  private readonly acc = new Uint32Array(8);
  private digestBytes: Uint8Array | null = null;
  /** No entry expires before this (a lower bound): expire() skips its scan until then. */
  private minExp = Infinity;

  constructor(
    private readonly cache: VerifyCache,
    private readonly onChange?: ChangeListener,
  ) {
    super();
  }

  override offer(raw: Uint8Array, now: number): { result: OfferResult; descriptor: Descriptor } {
    const d = this.cache.verify(raw, now);
    return { result: this.add(d, now), descriptor: d };
  }

  override verify(input: Uint8Array | OpenedDescriptor, now: number): { descriptor: Descriptor; held: boolean } {
    const d = this.cache.verify(input instanceof Uint8Array ? input : input.raw, now);
    const have = this.get(d.fingerprint);
    return { descriptor: d, held: have === d };
  }

  override add(d: Descriptor, now: number): OfferResult {
    const old = this.get(d.fingerprint);
    const result = super.add(d, now);
    if (result !== 'same') {
      if (old) this.toggle(old);
      this.toggle(d);
      if (d.exp < this.minExp) this.minExp = d.exp;
      this.onChange?.(d, result, now);
    }
    return result;
  }

  override remove(fingerprint: string): void {
    const old = this.get(fingerprint);
    super.remove(fingerprint);
    if (old) this.toggle(old);
  }

  override expire(now: number): string[] {
    if (now < this.minExp) return [];
    const all = this.all();
    const going = all.filter((d) => d.exp <= now);
    const gone = super.expire(now);
    for (const d of going) this.toggle(d);
    this.minExp = Infinity;
    for (const d of all) if (d.exp > now && d.exp < this.minExp) this.minExp = d.exp;
    return gone;
  }

  /**
   * Starts this view as a copy of `template` (a network that has already converged): the entries are shared, not
   * copied, as the real store never changes an entry in place. Used to set up overlays of thousands of relays
   * without first flooding N² descriptors.
   */
  copyFrom(template: SimDirectoryStore): void {
    const mine = entriesOf(this);
    for (const [k, v] of entriesOf(template)) mine.set(k, v);
    this.acc.set(template.acc);
    this.digestBytes = null;
    this.minExp = Math.min(this.minExp, template.minExp);
  }

  override digest(): Uint8Array {
    if (!this.digestBytes) this.digestBytes = new Uint8Array(this.acc.slice().buffer);
    return this.digestBytes;
  }

  private toggle(d: Descriptor): void {
    const g = d.digest;
    const a = this.acc;
    for (let i = 0; i < 8; i++) a[i] = (a[i]! ^ (g[4 * i]! | (g[4 * i + 1]! << 8) | (g[4 * i + 2]! << 16) | (g[4 * i + 3]! << 24))) >>> 0;
    this.digestBytes = null;
  }
}
