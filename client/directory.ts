/**
 * The client's directory (specs/directory.md §6): fetched from several relays, every signature verified, entries
 * kept only when a majority of the sources agree on them, cached, refreshed incrementally. With directory
 * authorities, the consensus (as a diff) says which descriptors are usable, and a refresh downloads only those the
 * client lacks or will soon lack, by identity (§6.2). The consensus md covers the onion key, so a descriptor whose md
 * the consensus in use lists stays usable after its `exp`, up to VOUCHED_DESCRIPTOR_MAX_AGE_MS after its `pub`
 * (§6.6): a descriptor is downloaded again only when its md changes.
 *
 * A lying bootstrap relay can omit relays or inject relays (Sybils with valid self-signed descriptors). Asking
 * several relays over independent links and keeping what a strict majority returns means a minority of liars can
 * do neither. Against a majority of liars this offers nothing; optional directory authorities are the answer there.
 *
 * The cache also keeps, for LEARNED_TTL_MS, descriptors that have expired: their addresses are the last fallback of a
 * client whose every other entry is blocked ("relay addresses learned earlier", specs/directory.md §6.4). A bridge's
 * descriptor is fetched from the bridge itself (`bridge-get`, §9) and never enters the view.
 */
import { fingerprintOf } from '../crypto/keys.js';
import { DESCRIPTOR_CLOCK_SKEW_MS, verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { AbortedError, AlliumError, isAlliumError } from '../protocol/errors.js';
import { toHex } from '../protocol/bytes.js';
import { crypto } from '../crypto/index.js';
import { descriptorMd, verifyConsensusHead, type Consensus, type ConsensusHead } from '../protocol/consensus.js';
import { DirectoryView } from '../protocol/view.js';
import type { ViewStatement } from '../protocol/view-statement.js';
import { signalOption, type AbortOptions } from '../net/abort.js';
import { fetchConsensusDiff, fetchConsensusEntries, fetchConsensusHead, fetchViewStatement } from '../net/directory-requests.js';

export { fetchConsensusDiff, fetchConsensusEntries, fetchConsensusHead, fetchViewStatement } from '../net/directory-requests.js';
export {
  fetchBridgeDescriptor,
  fetchFromRelay,
  fetchWanted,
  MAX_DIRECTORY_FETCH_BYTES,
  MAX_DIRECTORY_FETCH_ENTRIES,
  type DirectoryFetchLimits,
} from './directory-fetch.js';
export { crossCheck, type CrossCheckResult } from './cross-check.js';
import type { Link } from '../net/link.js';
import { crossCheckVerified, verifiedOf, type CrossCheckResult } from './cross-check.js';
import { fetchFromRelay, fetchWanted } from './directory-fetch.js';

export interface DirectorySource {
  /** Open link to a relay. */
  readonly link: Link;
  /** Responder time of the last page we got from it (for incremental fetches). */
  lastAt?: number;
}

/** Storage for the cached directory; Node uses a file (client/storage-node.ts), browsers IndexedDB or memory. */
export interface DirectoryCache {
  load(): Promise<Uint8Array[] | null>;
  save(raws: Uint8Array[]): Promise<void>;
}

/** Consensuses one fetch from one source may return: one per authority, at most 16 (specs/directory.md §7). */
export const MAX_CONSENSUSES_PER_FETCH = 16;
/** Expired descriptors stay in the cache this long, as addresses to try when nothing else answers. */
export const LEARNED_TTL_MS = 30 * 24 * 3600_000;
/** At most this many of them. */
export const MAX_LEARNED = 1000;

/** Two consensuses valid after the same time, both signed by a majority: proof that authorities equivocated. */
export interface ConsensusConflict {
  readonly validAfter: number;
  readonly heads: readonly [Uint8Array, Uint8Array];
}

/**
 * Two directory sources whose signed statements name views that differ by more than propagation explains
 * (specs/directory.md §6.5): evidence that at least one of them serves different clients different views.
 */
export interface ViewConflict {
  readonly sources: readonly string[];
  readonly statements: readonly ViewStatement[];
  /** Identities some answering source returned and the accepted view lacks, or the reverse. */
  readonly differing: number;
}

/** The client's verified view, kept current from its sources. */
export interface RefreshResult extends CrossCheckResult {
  /** The consensus in use after the refresh (null without authorities). */
  readonly consensus: ConsensusHead | null;
  /** Two majority-signed consensuses for one time (authorities equivocated); neither was adopted. */
  readonly consensusConflict: ConsensusConflict | null;
  /** Without authorities: sources whose view differs from the accepted one by more than propagation explains. */
  readonly divergent: readonly string[];
  /** The divergence with the sources' signed statements (evidence), or null. */
  readonly conflict: ViewConflict | null;
  /** Every valid descriptor any source returned (the newest per relay), accepted or not. */
  readonly seen: readonly Descriptor[];
  /** What this refresh downloaded: descriptors and their bytes, and how the consensus came (null: no authorities). */
  readonly downloaded: DirectoryDownload;
}

/** What one refresh downloaded (specs/directory.md §6.2), for metrics and the simulator. */
export interface DirectoryDownload {
  /** Descriptors received from every source together. */
  readonly descriptors: number;
  /** Their bytes. */
  readonly descriptorBytes: number;
  /** With authorities: 'diff' or 'whole' when a newer consensus was adopted, 'kept' when none was; else null. */
  readonly consensus: 'diff' | 'whole' | 'kept' | null;
  /**
   * A consensus diff was asked for and not used — the source had none (`ok` false), or it failed to apply or check
   * (ERR_DIRECTORY: refused) — before the whole consensus was fetched.
   */
  readonly diffFailed: boolean;
}

/**
 * With authorities, a held descriptor that expires sooner than this is fetched again at a refresh
 * (specs/limits.md DESCRIPTOR_REFETCH_WINDOW): how long a client can go without a refresh before relays leave its view.
 */
export const DESCRIPTOR_REFETCH_WINDOW_MS = 3600_000;

/**
 * With authorities, a descriptor past its `exp` is usable while the consensus in use lists its md, for at most this
 * long after its `pub` (specs/limits.md VOUCHED_DESCRIPTOR_MAX_AGE): ONION_KEY_LIFETIME + ONION_KEY_OVERLAP, after
 * which no relay still holds the onion key it names (the key was made before the descriptor was signed).
 */
export const VOUCHED_DESCRIPTOR_MAX_AGE_MS = 8 * 24 * 3600_000;

/**
 * Whether a consensus vouches for a descriptor at `now` (specs/directory.md §6.6): the consensus is valid (vu > now),
 * it lists the descriptor's md for its identity, and the descriptor is younger than VOUCHED_DESCRIPTOR_MAX_AGE_MS.
 * Such a descriptor is usable after its `exp`.
 */
export function vouches(consensus: Pick<Consensus, 'validUntil' | 'entries'> | null, d: Descriptor, now: number): boolean {
  if (!consensus || consensus.validUntil <= now || d.pub + VOUCHED_DESCRIPTOR_MAX_AGE_MS <= now) return false;
  const md = listedMds(consensus).get(d.fingerprint);
  return md !== undefined && crypto().equal(md, descriptorMd(d));
}

const listedByConsensus = new WeakMap<object, Map<string, Uint8Array>>();
function listedMds(consensus: Pick<Consensus, 'entries'>): Map<string, Uint8Array> {
  let m = listedByConsensus.get(consensus);
  if (!m) listedByConsensus.set(consensus, (m = new Map(consensus.entries.map((e) => [toHex(e.id), e.md]))));
  return m;
}

/** A source's view differs "markedly" from the accepted one beyond this many identities (or 2 % of the view). */
export const DIVERGENCE_MIN = 5;

export class ClientDirectory {
  readonly store = new DirectoryStore();
  /** Responder time of the last fetch from each open link (forgotten when the link closes). */
  private lastAt = new Map<Link, number>();
  /** The newest valid consensus with its entries (null: none yet, or no authorities configured). */
  private consensusDoc: Consensus | null = null;
  private viewCache: DirectoryView | null = null;
  /** Expired descriptors kept for their addresses, by fingerprint. */
  private readonly learned = new Map<string, Descriptor>();
  /**
   * With authorities: descriptors past their `exp` and younger than VOUCHED_DESCRIPTOR_MAX_AGE_MS that no consensus
   * in use vouches for (none held: at start, or after the consensus lapsed), by fingerprint. They are not usable; a
   * refresh moves those its consensus lists into the store instead of downloading them (§6.2). At most as many as
   * the store holds; they come from the client's own store and cache.
   */
  private readonly waiting = new Map<string, Descriptor>();

  /**
   * `authorities`: fingerprints of directory authorities whose consensus the client requires (empty: the
   * majority cross-check of relays alone).
   */
  constructor(
    private readonly cache?: DirectoryCache,
    private readonly authorities: ReadonlySet<string> = new Set(),
  ) {}

  get size(): number {
    return this.store.size;
  }

  /** True when the client requires a consensus of configured authorities. */
  get usesAuthorities(): boolean {
    return this.authorities.size > 0;
  }

  /** The consensus in use (null without authorities, or before the first refresh). */
  get consensus(): Consensus | null {
    return this.consensusDoc;
  }

  /** The usable view: relays with their flags and weights (protocol/view.ts). */
  get view(): DirectoryView {
    this.viewCache ??= new DirectoryView(this.store.all(), this.consensusDoc);
    return this.viewCache;
  }

  /** The usable relays: with a consensus, those it lists with a matching descriptor. */
  all(): Descriptor[] {
    return [...this.view.relays];
  }

  get(identity: Uint8Array): Descriptor | undefined {
    const d = this.store.get(fingerprintOf(identity));
    if (!d || !this.consensusDoc) return d;
    return this.view.relays.includes(d) ? d : undefined;
  }

  /**
   * Loads the cached directory (entries still valid now). Returns how many were loaded. Expired entries younger than
   * LEARNED_TTL_MS are kept aside as learned addresses.
   */
  async loadCache(now: number): Promise<number> {
    const raws = (await this.cache?.load()) ?? null;
    if (!raws) return 0;
    this.viewCache = null;
    let n = 0;
    for (const raw of raws) {
      try {
        this.store.offer(raw, now);
        n++;
      } catch (e) {
        if (isAlliumError(e) && e.code === 'ERR_DESCRIPTOR_EXPIRED') {
          try {
            const d = verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER);
            this.remember(d, now);
            this.wait(d, now);
          } catch {
            /* damaged */
          }
        }
        /* damaged entries are skipped */
      }
    }
    return n;
  }

  /** Addresses of relays whose descriptors expired (newest first), for the last bootstrap fallback. */
  learnedAddresses(): { url: string; identity: Uint8Array }[] {
    return [...this.learned.values()]
      .filter((d) => !this.store.get(d.fingerprint))
      .sort((a, b) => b.exp - a.exp)
      .map((d) => ({ url: d.addr, identity: d.id }));
  }

  private remember(d: Descriptor, now: number): void {
    if (d.exp <= now - LEARNED_TTL_MS) return;
    const have = this.learned.get(d.fingerprint);
    if (have && have.pub >= d.pub) return;
    this.learned.set(d.fingerprint, d);
    if (this.learned.size > MAX_LEARNED) {
      const oldest = [...this.learned.values()].sort((a, b) => a.exp - b.exp)[0]!;
      this.learned.delete(oldest.fingerprint);
    }
  }

  /** With authorities, keeps an expired descriptor young enough to be vouched for by a later consensus (§6.3). */
  private wait(d: Descriptor, now: number): void {
    if (!this.usesAuthorities || d.pub + VOUCHED_DESCRIPTOR_MAX_AGE_MS <= now || this.store.get(d.fingerprint)) return;
    const have = this.waiting.get(d.fingerprint);
    if (have && have.pub >= d.pub) return;
    this.waiting.set(d.fingerprint, d);
    if (this.waiting.size > this.store.maxEntries) {
      const oldest = [...this.waiting.values()].sort((a, b) => a.pub - b.pub)[0]!;
      this.waiting.delete(oldest.fingerprint);
    }
  }

  /**
   * Expires the view, keeping what expires as learned addresses. With authorities, a descriptor past its `exp` stays
   * while the consensus in use vouches for it (§6.6); one it does not vouch for waits for a later consensus.
   */
  private expireAndRemember(now: number): void {
    this.viewCache = null;
    if (this.consensusDoc && this.consensusDoc.validUntil <= now) this.consensusDoc = null;
    for (const d of this.store.all()) {
      if (d.exp > now || vouches(this.consensusDoc, d, now)) continue;
      this.store.remove(d.fingerprint);
      this.remember(d, now);
      this.wait(d, now);
    }
    for (const [fp, d] of this.learned) if (d.exp <= now - LEARNED_TTL_MS) this.learned.delete(fp);
    for (const [fp, d] of this.waiting) if (d.pub + VOUCHED_DESCRIPTOR_MAX_AGE_MS <= now || this.store.get(fp)) this.waiting.delete(fp);
  }

  /**
   * Drops the consensus in use once it has lapsed (vu ≤ now) and every descriptor only it kept usable (§6.6). A
   * refresh does this first; a caller may run it between refreshes.
   */
  expire(now: number): void {
    this.expireAndRemember(now);
  }

  private async save(): Promise<void> {
    const current = this.store.all();
    const held = new Set(current.map((d) => d.fingerprint));
    const waiting = [...this.waiting.values()].filter((d) => !held.has(d.fingerprint));
    for (const d of waiting) held.add(d.fingerprint);
    const learned = [...this.learned.values()].filter((d) => !held.has(d.fingerprint));
    await this.cache?.save([...current, ...waiting, ...learned].map((d) => d.raw));
  }

  /**
   * A refresh from these links (specs/directory.md §6.2). With authorities: refreshByNeed below. Without: a full fetch
   * from every link, the majority cross-check, and a comparison of each source's view with the accepted one, with the
   * sources' signed statements as evidence when they differ (§6.5). With one source the cross-check is trivially
   * that source (the caller is warned by `sources`).
   */
  async refresh(links: readonly Link[], now: () => number, options: AbortOptions = {}): Promise<RefreshResult> {
    const { signal } = options;
    this.expireAndRemember(now());
    if (links.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source');
    if (this.authorities.size > 0) return this.refreshByNeed(links, now, signal);
    const results = await Promise.allSettled(links.map((l) => fetchFromRelay(l, 0, signalOption(signal))));
    const perSource: Uint8Array[][] = [];
    const answered: Link[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        perSource.push(r.value.raws);
        answered.push(links[i]!);
        this.noteFetched(links[i]!, r.value.at);
      }
    });
    if (perSource.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source answered');
    // Each descriptor is verified once, whatever checks below look at it.
    const verified = perSource.map((raws) => verifiedOf(raws, now()));
    const newest = new Map<string, Descriptor>();
    for (const ds of verified) {
      for (const d of ds) {
        const have = newest.get(d.fingerprint);
        if (!have || d.pub > have.pub) newest.set(d.fingerprint, d);
      }
    }
    const result = crossCheckVerified(verified);
    const { divergent, conflict } = await this.compareSources(answered, verified, result, signal);
    this.viewCache = null;
    for (const d of result.accepted) {
      try {
        this.store.add(d, now());
      } catch {
        /* an older edition than ours */
      }
    }
    this.expireAndRemember(now());
    await this.save();
    const downloaded: DirectoryDownload = {
      descriptors: perSource.reduce((n, raws) => n + raws.length, 0),
      descriptorBytes: perSource.reduce((n, raws) => raws.reduce((m, r) => m + r.length, n), 0),
      consensus: null,
      diffFailed: false,
    };
    return { ...result, consensus: null, consensusConflict: null, divergent, conflict, seen: [...newest.values()], downloaded };
  }

  /**
   * With authorities (specs/directory.md §6.2): the newest consensus a majority of them signed (as a diff against the
   * one held when possible), then only the descriptors the client needs — those the consensus lists that it holds
   * with another md or none, or that the consensus will no longer vouch for within DESCRIPTOR_REFETCH_WINDOW_MS
   * (older than VOUCHED_DESCRIPTOR_MAX_AGE_MS by then) — by identity, from the first source
   * that gives them, the next sources asked only for what it did not give. A source whose answer breaks the rules
   * (fetchWanted) is left out. Descriptors certify themselves and the consensus names the md each must have, so one
   * source's will do.
   */
  private async refreshByNeed(links: readonly Link[], now: () => number, signal?: AbortSignal): Promise<RefreshResult> {
    const adopted = await this.applyConsensus(links, now(), signal);
    const consensus = this.consensusDoc!;
    const listed = new Map<string, Uint8Array>();
    for (const e of consensus.entries) listed.set(toHex(e.id), e.md);
    const horizon = now() + DESCRIPTOR_REFETCH_WINDOW_MS;
    const need = new Map<string, Uint8Array>();
    this.viewCache = null;
    for (const e of consensus.entries) {
      const fp = toHex(e.id);
      let d = this.store.get(fp);
      const w = this.waiting.get(fp);
      if (w && (!d || w.pub > d.pub) && crypto().equal(descriptorMd(w), e.md) && w.pub + VOUCHED_DESCRIPTOR_MAX_AGE_MS > now()) {
        // Held from before (the cache, or a consensus that lapsed) and vouched for again: not downloaded.
        try {
          this.store.add(w, now());
          this.waiting.delete(fp);
          d = w;
        } catch {
          /* the store is full: asked of the sources like any other */
        }
      }
      const lasts = (x: Descriptor): boolean => x.exp > horizon || x.pub + VOUCHED_DESCRIPTOR_MAX_AGE_MS > horizon;
      if (!d || !lasts(d) || !crypto().equal(descriptorMd(d), e.md)) need.set(fp, e.id);
    }
    let descriptors = 0;
    let descriptorBytes = 0;
    let answered = adopted.answered;
    const got = new Map<string, Descriptor>();
    for (const link of links) {
      if (need.size === 0) break;
      let found: Descriptor[];
      try {
        // Consensus entries are in ascending order of identity, and so is `need`.
        found = await fetchWanted(link, [...need.values()], signalOption(signal));
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        continue; // this source is left out; the next is asked for what is still needed
      }
      answered = Math.max(answered, 1);
      for (const d of found) {
        descriptors++;
        descriptorBytes += d.raw.length;
        // Its signature was checked as it arrived (fetchWanted); its times are checked here, at this client's time.
        if (d.exp <= now() || d.pub > now() + DESCRIPTOR_CLOCK_SKEW_MS) continue; // asked of the next source
        if (!crypto().equal(descriptorMd(d), listed.get(d.fingerprint)!)) continue; // not the edition the consensus lists
        try {
          this.store.add(d, now());
        } catch {
          /* older than held: ours has another md, or expires sooner; asked of the next source */
          continue;
        }
        got.set(d.fingerprint, d);
        need.delete(d.fingerprint);
      }
    }
    if (answered === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source answered');
    this.expireAndRemember(now());
    await this.save();
    const downloaded: DirectoryDownload = { descriptors, descriptorBytes, consensus: adopted.how, diffFailed: adopted.diffFailed };
    return {
      accepted: [...got.values()],
      rejected: [],
      sources: answered,
      consensus: this.consensusDoc,
      consensusConflict: adopted.conflict,
      divergent: [],
      conflict: null,
      seen: [...got.values()],
      downloaded,
    };
  }

  /**
   * Without authorities: which sources returned a view that differs from the accepted one by more than
   * max(DIVERGENCE_MIN, 2 %) identities, with the signed statements of every source when any does (§6.5).
   */
  private async compareSources(
    links: readonly Link[],
    perSource: readonly (readonly Descriptor[])[],
    result: CrossCheckResult,
    signal?: AbortSignal,
  ): Promise<{ divergent: string[]; conflict: ViewConflict | null }> {
    const accepted = new Set(result.accepted.map((d) => d.fingerprint));
    const threshold = Math.max(DIVERGENCE_MIN, Math.ceil(accepted.size * 0.02));
    const divergent: string[] = [];
    let most = 0;
    perSource.forEach((ds, i) => {
      const mine = new Set(ds.map((d) => d.fingerprint));
      let differing = 0;
      for (const fp of mine) if (!accepted.has(fp)) differing++;
      for (const fp of accepted) if (!mine.has(fp)) differing++;
      most = Math.max(most, differing);
      const id = links[i]!.peer?.identity;
      if (differing > threshold && id) divergent.push(fingerprintOf(id));
    });
    if (divergent.length === 0) return { divergent, conflict: null };
    const got = await Promise.allSettled(links.map((l) => fetchViewStatement(l, signalOption(signal))));
    const statements = got.filter((r): r is PromiseFulfilledResult<ViewStatement> => r.status === 'fulfilled').map((r) => r.value);
    return { divergent, conflict: { sources: links.map((l) => (l.peer?.identity ? fingerprintOf(l.peer.identity) : '')), statements, differing: most } };
  }

  /**
   * Adopts the newest consensus that a strict majority of the configured authorities signed, from the heads the
   * sources hold: as a diff against the consensus held when a source has one, else whole. Keeps the one held while
   * it is valid and nothing newer verifies. Two different majority-signed heads for one time are a conflict: neither
   * is adopted. Throws ERR_DIRECTORY when no valid consensus is held afterwards — a client that requires authorities
   * never falls back to trusting relays alone.
   */
  private async applyConsensus(
    links: readonly Link[],
    now: number,
    signal?: AbortSignal,
  ): Promise<{ conflict: ConsensusConflict | null; answered: number; how: 'diff' | 'whole' | 'kept'; diffFailed: boolean }> {
    const got = await Promise.allSettled(links.map((l) => fetchConsensusHead(l, signalOption(signal))));
    const aborted = got.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof AbortedError);
    if (aborted) throw aborted.reason;
    const answered = got.filter((r) => r.status === 'fulfilled').length;
    const heads: { head: ConsensusHead; link: Link }[] = [];
    let how: 'diff' | 'whole' | 'kept' = 'kept';
    let diffFailed = false;
    got.forEach((r, i) => {
      if (r.status !== 'fulfilled' || !r.value) return;
      try {
        heads.push({ head: verifyConsensusHead(r.value, this.authorities, now), link: links[i]! });
      } catch {
        /* forged, expired, or signed by too few of our authorities */
      }
    });
    let conflict: ConsensusConflict | null = null;
    const byVa = new Map<number, Map<string, ConsensusHead>>();
    for (const { head } of heads) {
      let m = byVa.get(head.validAfter);
      if (!m) byVa.set(head.validAfter, (m = new Map()));
      m.set(toHex(head.digest), head);
    }
    for (const [va, m] of byVa) {
      if (m.size > 1) {
        const [a, b] = [...m.values()];
        conflict = { validAfter: va, heads: [a!.raw, b!.raw] };
      }
    }
    const candidates = heads
      .filter(({ head }) => (byVa.get(head.validAfter)?.size ?? 0) === 1)
      .filter(({ head }) => !this.consensusDoc || head.validAfter > this.consensusDoc.validAfter)
      .sort((x, y) => y.head.validAfter - x.head.validAfter);
    for (const { head, link } of candidates) {
      try {
        const held = this.consensusDoc;
        let next: Consensus | null = null;
        if (held) {
          try {
            next = await fetchConsensusDiff(link, held, head, signalOption(signal));
            how = 'diff';
          } catch (e) {
            if (e instanceof AbortedError) throw e;
            // No diff at the source, or one that does not apply or check (ERR_DIRECTORY, refused): the whole instead.
            diffFailed = true;
          }
        }
        if (!next) {
          next = await fetchConsensusEntries(link, head, signalOption(signal));
          how = 'whole';
        }
        this.consensusDoc = next;
        this.viewCache = null;
        break;
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        /* that source could not give the entries: the next */
      }
    }
    if (!this.consensusDoc || this.consensusDoc.validUntil <= now) {
      this.consensusDoc = null;
      this.viewCache = null;
      // Nothing vouches for descriptors past their exp any more.
      this.expireAndRemember(now);
      if (answered === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source answered');
      throw new AlliumError('ERR_DIRECTORY', `no consensus signed by a majority of the ${this.authorities.size} configured directory authorities`);
    }
    return { conflict, answered, how, diffFailed };
  }

  /** Remembers a source's time for the next incremental fetch from it, for as long as its link is open. */
  private noteFetched(link: Link, at: number): void {
    if (!link.isOpen) return void this.lastAt.delete(link);
    if (!this.lastAt.has(link)) link.once('link:close', () => this.lastAt.delete(link));
    this.lastAt.set(link, at);
  }

  /**
   * Incremental update from one link: newer editions of relays we already hold (self-signed by the same key, so one
   * source suffices). Relays we do not know yet wait for the next cross-checked refresh.
   */
  async update(link: Link, now: () => number, options: AbortOptions = {}): Promise<number> {
    const since = Math.max(0, (this.lastAt.get(link) ?? 0) - 5_000);
    const { raws, at } = await fetchFromRelay(link, since, signalOption(options.signal));
    this.noteFetched(link, at);
    this.viewCache = null;
    let n = 0;
    for (const raw of raws) {
      try {
        const d = verifyDescriptor(raw, now());
        if (!this.store.get(d.fingerprint)) continue;
        if (this.store.add(d, now()) !== 'same') n++;
      } catch {
        /* invalid, expired or stale entries are skipped */
      }
    }
    this.expireAndRemember(now());
    if (n) await this.save();
    return n;
  }
}
