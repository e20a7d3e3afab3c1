/**
 * Bookmarks and the sites readers follow (specs/content.md §11.2, §12.5): a bounded list kept in one JSON file,
 * polled for new editions of updatable links (the key and its edition hints), with what changed between the last
 * manifest seen and the new one. Also the sites whose scripts the reader turned on.
 */
import { toHex } from '../../protocol/bytes.js';
import { parseLink } from '../../protocol/content-link.js';
import { isAlliumError, LimitError } from '../../protocol/errors.js';
import type { ContentClient } from '../content.js';
import { readSite } from '../site.js';
import { signalOption, type AbortOptions } from '../../net/abort.js';

export const MAX_BOOKMARKS = 256;
export const BOOKMARK_POLL_INTERVAL_MS = 10 * 60_000;
const MAX_TITLE = 200;

export interface Bookmark {
  id: string;
  link: string;
  title: string;
  added: number;
  edition: number | null;
  target: string | null;
  lastChange: number | null;
  lastPoll: number | null;
  /** Root prefix (hex, 16 characters) of each file of the last manifest seen. */
  files: Record<string, string> | null;
  changes: { added: string[]; removed: string[]; changed: string[] } | null;
  note: string | null;
  /** True until the reader opens the site after a change. */
  fresh: boolean;
  error: string | null;
}

export interface BookmarkData {
  v: 1;
  bookmarks: Bookmark[];
  /** Site ids whose scripts are on. */
  scripts: string[];
}

/** Where bookmarks live (a JSON file in Node, anything in tests). */
export interface BookmarkStorage {
  load(): BookmarkData | null;
  save(data: BookmarkData): void;
}

export function memoryBookmarkStorage(): BookmarkStorage {
  let data: BookmarkData | null = null;
  return { load: () => data, save: (d) => void (data = structuredClone(d)) };
}

/** The identity of a site for script opt-ins and bookmarks: a CHK root, or a publisher key and name. */
export function siteIdOf(link: string): string {
  const l = parseLink(link.replace(/\/$/, ''));
  // The secret is part of an updatable key: the same publisher and name under another secret is another site.
  return l.type === 'chk' ? `chk:${toHex(l.rk)}` : `ssk:${toHex(l.publisher)}/${toHex(l.secret)}/${l.name}`;
}

export class Bookmarks {
  private data: BookmarkData;
  private polling: Promise<void> | null = null;

  constructor(
    private readonly storage: BookmarkStorage,
    private readonly content: ContentClient,
    private readonly now: () => number = Date.now,
  ) {
    const d = storage.load();
    this.data =
      d && d.v === 1 && Array.isArray(d.bookmarks)
        ? { v: 1, bookmarks: d.bookmarks.slice(0, MAX_BOOKMARKS), scripts: (d.scripts ?? []).slice(0, MAX_BOOKMARKS) }
        : { v: 1, bookmarks: [], scripts: [] };
  }

  list(): readonly Bookmark[] {
    return this.data.bookmarks;
  }

  get isPolling(): boolean {
    return this.polling !== null;
  }

  /** Adds a bookmark (the link is checked). Throws ERR_LINK_FORMAT, ERR_LINK_CHECKSUM, ERR_LIMIT (MAX_BOOKMARKS). */
  add(link: string, title?: string): Bookmark {
    const clean = link.trim().replace(/\/$/, '');
    const id = siteIdOf(clean);
    const have = this.data.bookmarks.find((b) => b.id === id);
    if (have) return have;
    if (this.data.bookmarks.length >= MAX_BOOKMARKS) throw new LimitError('MAX_BOOKMARKS', `at most ${MAX_BOOKMARKS} bookmarks`);
    const l = parseLink(clean);
    const b: Bookmark = {
      id,
      link: clean,
      title: (title?.trim() || (l.type === 'ssk' ? l.name : clean.slice(0, 24) + '…')).slice(0, MAX_TITLE),
      added: this.now(),
      edition: null,
      target: null,
      lastChange: null,
      lastPoll: null,
      files: null,
      changes: null,
      note: null,
      fresh: false,
      error: null,
    };
    this.data.bookmarks.push(b);
    this.save();
    return b;
  }

  remove(id: string): void {
    this.data.bookmarks = this.data.bookmarks.filter((b) => b.id !== id);
    this.save();
  }

  scriptsOn(siteId: string): boolean {
    return this.data.scripts.includes(siteId);
  }

  setScripts(siteId: string, on: boolean): void {
    this.data.scripts = this.data.scripts.filter((s) => s !== siteId);
    if (on) {
      if (this.data.scripts.length >= MAX_BOOKMARKS) throw new LimitError('MAX_BOOKMARKS', 'too many sites with scripts on');
      this.data.scripts.push(siteId);
    }
    this.save();
  }

  /** The newest edition a bookmark has seen of an updatable link (the gateway never serves an older one). */
  known(siteId: string): { edition: number; target: string } | null {
    const b = this.data.bookmarks.find((x) => x.id === siteId);
    return b && b.edition !== null && b.target ? { edition: b.edition, target: b.target } : null;
  }

  /** The reader opened a site: its change is no longer news. */
  seen(siteId: string): void {
    const b = this.data.bookmarks.find((x) => x.id === siteId);
    if (b?.fresh) {
      b.fresh = false;
      this.save();
    }
  }

  /** Polls every bookmark of an updatable link once (content.md §11.2); one poll at a time. */
  poll(options: AbortOptions = {}): Promise<void> {
    this.polling ??= this.pollAll(options.signal).finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  private async pollAll(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.data.bookmarks.filter((b) => b.link.startsWith('allium:ssk/')).map((b) => this.pollOne(b, signal)));
    this.save();
  }

  private async pollOne(b: Bookmark, signal?: AbortSignal): Promise<void> {
    let l;
    try {
      l = parseLink(b.link);
    } catch (e) {
      // A bookmark saved before SSK links carried a secret (ERR_LINK_OUTDATED): shown, never polled.
      b.error =
        isAlliumError(e) && e.code === 'ERR_LINK_OUTDATED' ? 'an old link without a secret: ask the publisher for the current link' : 'not a valid link';
      return;
    }
    if (l.type !== 'ssk') return;
    try {
      const latest = await this.content.latestEdition(l, { now: this.now(), ...(signal ? { signal } : {}) });
      b.lastPoll = this.now();
      b.error = null;
      if (!latest || (b.edition !== null && latest.edition <= b.edition)) return;
      const target = parseLink(latest.target);
      if (target.type !== 'chk') return;
      const site = await readSite(target, await this.content.open(target, signalOption(signal)), signalOption(signal));
      const files: Record<string, string> = {};
      for (const f of site?.manifest.files ?? []) files[f.path] = toHex(f.ref.rk).slice(0, 16);
      if (b.edition !== null && b.files) {
        const before = b.files;
        b.changes = {
          added: Object.keys(files).filter((p) => !(p in before)),
          removed: Object.keys(before).filter((p) => !(p in files)),
          changed: Object.keys(files).filter((p) => p in before && before[p] !== files[p]),
        };
        b.fresh = true;
        b.lastChange = this.now();
      } else if (b.lastChange === null) b.lastChange = this.now();
      b.edition = latest.edition;
      b.target = latest.target;
      b.files = files;
      b.note = site?.manifest.note ?? null;
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_ABORTED') throw e;
      b.lastPoll = this.now();
      b.error = isAlliumError(e)
        ? e.code === 'ERR_UNREACHABLE'
          ? 'holders unreachable: will try again'
          : e.code === 'ERR_NOT_FOUND'
            ? 'no edition found'
            : e.code
        : 'failed';
    }
  }

  private save(): void {
    this.storage.save(this.data);
  }
}
