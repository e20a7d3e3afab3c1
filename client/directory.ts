/**
 * The client's directory (specs/directory.md §6): fetched from several relays, every signature verified, entries
 * kept only when a majority of the sources agree on them, cached, refreshed incrementally.
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
import type { ControlMessage } from '../protocol/control.js';
import { verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { DirectoryStore } from '../protocol/directory-store.js';
import { AlliumError, CryptoError, isAlliumError, LimitError, ProtocolError, TimeoutError } from '../protocol/errors.js';
import { crypto } from '../crypto/index.js';
import { majorityListed, verifyConsensus, type Consensus } from '../protocol/consensus.js';
import type { Link } from '../net/link.js';

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

const PAGE_TIMEOUT_MS = 10_000;
const MAX_PAGES = 1000;
/** Descriptors one fetch from one source may return (specs/limits.md MAX_DIRECTORY_FETCH_ENTRIES). */
export const MAX_DIRECTORY_FETCH_ENTRIES = 20_000;
/** … and their bytes (specs/limits.md MAX_DIRECTORY_FETCH_BYTES). */
export const MAX_DIRECTORY_FETCH_BYTES = 16 * 1024 * 1024;
/** Consensuses one fetch from one source may return: one per authority, at most 16 (specs/directory.md §7). */
export const MAX_CONSENSUSES_PER_FETCH = 16;
/** Expired descriptors stay in the cache this long, as addresses to try when nothing else answers. */
export const LEARNED_TTL_MS = 30 * 24 * 3600_000;
/** At most this many of them. */
export const MAX_LEARNED = 1000;

/** Bounds of one fetch (defaults MAX_DIRECTORY_FETCH_ENTRIES and MAX_DIRECTORY_FETCH_BYTES). */
export interface DirectoryFetchLimits {
  maxEntries?: number;
  maxBytes?: number;
}

/**
 * Fetches every descriptor a relay offers that arrived at or after `since`, page by page (specs/directory.md §6.1).
 * Each page is checked as it arrives: every entry must verify (signature and form; time is checked later, in the
 * cross-check) and fingerprints must rise strictly across the whole fetch, so a source can neither pad its pages with
 * junk nor serve one page again; else ERR_DIRECTORY. More than `maxEntries` descriptors or `maxBytes` bytes is
 * ERR_LIMIT (MAX_DIRECTORY_FETCH_ENTRIES, MAX_DIRECTORY_FETCH_BYTES). Either way the source is left out.
 */
export async function fetchFromRelay(link: Link, since: number, signal?: AbortSignal, limits: DirectoryFetchLimits = {}): Promise<{ raws: Uint8Array[]; at: number }> {
  const maxEntries = limits.maxEntries ?? MAX_DIRECTORY_FETCH_ENTRIES;
  const maxBytes = limits.maxBytes ?? MAX_DIRECTORY_FETCH_BYTES;
  const raws: Uint8Array[] = [];
  let bytes = 0;
  let after: Uint8Array | null = null;
  let last: string | null = null;
  let at = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const reply = await request(link, { t: 'dir-get', since, after }, signal);
    at = reply.at;
    for (const raw of reply.ds) {
      if (raws.length >= maxEntries) throw new LimitError('MAX_DIRECTORY_FETCH_ENTRIES', `a directory source offers more than ${maxEntries} descriptors`);
      bytes += raw.length;
      if (bytes > maxBytes) throw new LimitError('MAX_DIRECTORY_FETCH_BYTES', `a directory source offers more than ${maxBytes} bytes of descriptors`);
      let d: Descriptor;
      try {
        d = verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER);
      } catch (e) {
        throw new ProtocolError('ERR_DIRECTORY', 'a directory page holds an entry that does not verify', { cause: e });
      }
      if (last !== null && d.fingerprint <= last) throw new ProtocolError('ERR_DIRECTORY', 'directory page entries are not in strictly ascending order');
      last = d.fingerprint;
      after = d.id;
      raws.push(raw);
    }
    if (!reply.more || reply.ds.length === 0) return { raws, at };
  }
  throw new AlliumError('ERR_DIRECTORY', 'directory has too many pages');
}

function request(link: Link, m: ControlMessage, signal?: AbortSignal): Promise<Extract<ControlMessage, { t: 'dir' }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new TimeoutError('directory page timed out')), PAGE_TIMEOUT_MS);
    const offMsg = link.on('link:control', (reply) => {
      if (reply.t === 'dir') done(null, reply);
    });
    const offClose = link.once('link:close', (err) => done(err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed')));
    const onAbort = (): void => done(new AlliumError('ERR_ABORTED', 'aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    function done(err: AlliumError | null, reply?: Extract<ControlMessage, { t: 'dir' }>): void {
      clearTimeout(timer);
      offMsg();
      offClose();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(reply!);
    }
    try {
      link.sendControl(m);
    } catch (e) {
      done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
    }
  });
}

export interface CrossCheckResult {
  readonly accepted: Descriptor[];
  /** Fingerprints some source returned but fewer than a majority confirmed. */
  readonly rejected: string[];
  readonly sources: number;
}

/**
 * Majority cross-check: a relay is kept when more than half of the sources returned a valid descriptor for it; the
 * newest valid descriptor among them is used. Invalid descriptors are discarded (and count for nothing).
 */
export function crossCheck(perSource: readonly (readonly Uint8Array[])[], now: number): CrossCheckResult {
  const votes = new Map<string, { count: number; best: Descriptor }>();
  for (const raws of perSource) {
    const seen = new Set<string>();
    for (const raw of raws) {
      let d: Descriptor;
      try {
        d = verifyDescriptor(raw, now);
      } catch {
        continue;
      }
      if (seen.has(d.fingerprint)) continue;
      seen.add(d.fingerprint);
      const v = votes.get(d.fingerprint);
      if (!v) votes.set(d.fingerprint, { count: 1, best: d });
      else {
        v.count++;
        if (d.pub > v.best.pub) v.best = d;
      }
    }
  }
  const need = Math.floor(perSource.length / 2) + 1;
  const accepted: Descriptor[] = [];
  const rejected: string[] = [];
  for (const [fp, v] of votes) (v.count >= need ? accepted.push(v.best) : rejected.push(fp));
  return { accepted, rejected, sources: perSource.length };
}

/**
 * Asks a bridge for its own descriptor (specs/directory.md §9) and verifies it: signed under the bridge context, by
 * the identity the bridge line names, valid now. Throws ERR_LINK_AUTH for a descriptor of another identity,
 * ERR_SIGNATURE and the other descriptor errors, ERR_TIMEOUT, ERR_LINK_CLOSED, ERR_ABORTED.
 */
export function fetchBridgeDescriptor(link: Link, identity: Uint8Array, now: () => number, signal?: AbortSignal): Promise<Descriptor> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new TimeoutError('bridge descriptor request timed out')), PAGE_TIMEOUT_MS);
    const offMsg = link.on('link:control', (m) => {
      if (m.t !== 'bridge') return;
      try {
        const d = verifyDescriptor(m.d, now(), undefined, 'bridge');
        if (!crypto().equal(d.id, identity)) throw new CryptoError('ERR_LINK_AUTH', 'bridge descriptor names another identity');
        done(null, d);
      } catch (e) {
        done(isAlliumError(e) ? e : new AlliumError('ERR_DESCRIPTOR', 'bad bridge descriptor'));
      }
    });
    const offClose = link.once('link:close', (err) => done(err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed')));
    const onAbort = (): void => done(new AlliumError('ERR_ABORTED', 'aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    function done(err: AlliumError | null, d?: Descriptor): void {
      clearTimeout(timer);
      offMsg();
      offClose();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(d!);
    }
    try {
      link.sendControl({ t: 'bridge-get' });
    } catch (e) {
      done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
    }
  });
}

/**
 * Asks a relay for the authority consensuses it holds (specs/directory.md §7): one per authority, so the answer ends
 * after `max` (the number of configured authorities, at most MAX_CONSENSUSES_PER_FETCH), or at the empty message
 * that closes it.
 */
export function fetchConsensuses(link: Link, signal?: AbortSignal, max = MAX_CONSENSUSES_PER_FETCH): Promise<Uint8Array[]> {
  const cap = Math.min(max, MAX_CONSENSUSES_PER_FETCH);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new TimeoutError('consensus request timed out')), PAGE_TIMEOUT_MS);
    const got: Uint8Array[] = [];
    // One consensus per message; an empty message ends the answer.
    const off = link.on('link:control', (m) => {
      if (m.t !== 'consensus') return;
      for (const c of m.cs) if (got.length < cap) got.push(c);
      if (m.cs.length === 0 || got.length >= cap) done(null, got);
    });
    const onAbort = (): void => done(new AlliumError('ERR_ABORTED', 'aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    function done(err: AlliumError | null, cs?: Uint8Array[]): void {
      clearTimeout(timer);
      off();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(cs!);
    }
    try {
      link.sendControl({ t: 'consensus-get' });
    } catch (e) {
      done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
    }
  });
}

/** The client's verified view, kept current from its sources. */
export class ClientDirectory {
  readonly store = new DirectoryStore();
  /** Responder time of the last fetch from each open link (forgotten when the link closes). */
  private lastAt = new Map<Link, number>();
  /** Relays listed by a majority of the configured authorities (null: no authorities configured). */
  private listed: Set<string> | null = null;
  /** Expired descriptors kept for their addresses, by fingerprint. */
  private readonly learned = new Map<string, Descriptor>();

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

  all(): Descriptor[] {
    const all = this.store.all();
    return this.listed ? all.filter((d) => this.listed!.has(d.fingerprint)) : all;
  }

  get(identity: Uint8Array): Descriptor | undefined {
    return this.store.get(fingerprintOf(identity));
  }

  /**
   * Loads the cached directory (entries still valid now). Returns how many were loaded. Expired entries younger than
   * LEARNED_TTL_MS are kept aside as learned addresses.
   */
  async loadCache(now: number): Promise<number> {
    const raws = (await this.cache?.load()) ?? null;
    if (!raws) return 0;
    let n = 0;
    for (const raw of raws) {
      try {
        this.store.offer(raw, now);
        n++;
      } catch (e) {
        if (isAlliumError(e) && e.code === 'ERR_DESCRIPTOR_EXPIRED') {
          try {
            this.remember(verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER), now);
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

  /** Expires the view, keeping what expires as learned addresses. */
  private expireAndRemember(now: number): void {
    const before = new Map(this.store.all().map((d) => [d.fingerprint, d]));
    for (const fp of this.store.expire(now)) {
      const d = before.get(fp);
      if (d) this.remember(d, now);
    }
    for (const [fp, d] of this.learned) if (d.exp <= now - LEARNED_TTL_MS) this.learned.delete(fp);
  }

  private async save(): Promise<void> {
    const current = this.store.all();
    const held = new Set(current.map((d) => d.fingerprint));
    const learned = [...this.learned.values()].filter((d) => !held.has(d.fingerprint));
    await this.cache?.save([...current, ...learned].map((d) => d.raw));
  }

  /**
   * Full fetch from every link, cross-checked by majority. With one source the cross-check is trivially that
   * source (the caller is warned by `sources`).
   */
  async refresh(links: readonly Link[], now: () => number, signal?: AbortSignal): Promise<CrossCheckResult> {
    if (links.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source');
    const results = await Promise.allSettled(links.map((l) => fetchFromRelay(l, 0, signal)));
    const perSource: Uint8Array[][] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        perSource.push(r.value.raws);
        this.noteFetched(links[i]!, r.value.at);
      }
    });
    if (perSource.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no directory source answered');
    const result = crossCheck(perSource, now());
    if (this.authorities.size > 0) await this.applyConsensus(links, now(), signal);
    for (const d of result.accepted) {
      try {
        this.store.add(d, now());
      } catch {
        /* an older edition than ours */
      }
    }
    this.expireAndRemember(now());
    await this.save();
    return result;
  }

  /**
   * Fetches consensuses from the sources and keeps only relays a strict majority of authorities list. With no
   * valid consensus from a majority, nothing is usable (ERR_DIRECTORY): a client that requires authorities never
   * falls back to trusting relays alone.
   */
  private async applyConsensus(links: readonly Link[], now: number, signal?: AbortSignal): Promise<void> {
    const got = await Promise.allSettled(links.map((l) => fetchConsensuses(l, signal, this.authorities.size)));
    const valid: Consensus[] = [];
    for (const r of got) {
      if (r.status !== 'fulfilled') continue;
      for (const raw of r.value) {
        try {
          valid.push(verifyConsensus(raw, this.authorities, now));
        } catch {
          /* forged, expired or from an unknown authority */
        }
      }
    }
    const authoritiesHeard = new Set(valid.map((c) => c.authority)).size;
    if (authoritiesHeard < Math.floor(this.authorities.size / 2) + 1) {
      throw new AlliumError('ERR_DIRECTORY', `no valid consensus from a majority of the ${this.authorities.size} configured directory authorities`);
    }
    this.listed = majorityListed(valid, this.authorities);
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
  async update(link: Link, now: () => number, signal?: AbortSignal): Promise<number> {
    const since = Math.max(0, (this.lastAt.get(link) ?? 0) - 5_000);
    const { raws, at } = await fetchFromRelay(link, since, signal);
    this.noteFetched(link, at);
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
