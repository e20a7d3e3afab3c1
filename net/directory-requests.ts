/**
 * Directory requests over a link (specs/directory.md §6–§7.3), used by clients and by relays alike: the newest
 * consensus head a peer holds, a consensus's entries page by page or as a diff, and a source's signed statement of
 * what it serves. Each request waits for the matching CONTROL reply, with a timeout.
 */
import { crypto } from '../crypto/index.js';
import type { ControlMessage } from '../protocol/control.js';
import { applyDiff, checkEntries, entryFromTuple, type Consensus, type ConsensusEntry, type ConsensusHead } from '../protocol/consensus.js';
import { AlliumError, isAlliumError } from '../protocol/errors.js';
import { verifyViewStatement, type ViewStatement } from '../protocol/view-statement.js';
import { settleWithin, type AbortOptions } from './abort.js';
import type { Link } from './link.js';

/** Each reply must arrive within this long. */
export const DIRECTORY_REQUEST_TIMEOUT_MS = 10_000;
const PAGE_TIMEOUT_MS = DIRECTORY_REQUEST_TIMEOUT_MS;

/** Sends `m` on `link` and resolves with the first CONTROL reply `match` accepts (PAGE_TIMEOUT_MS). */
export function ask<T>(link: Link, m: ControlMessage, match: (r: ControlMessage) => T | undefined, options: AbortOptions = {}): Promise<T> {
  return settleWithin<T>(
    (done) => {
      const offMsg = link.on('link:control', (r) => {
        const v = match(r);
        if (v !== undefined) done(null, v);
      });
      const offClose = link.once('link:close', (err) => done(err ?? new AlliumError('ERR_LINK_CLOSED', 'link closed')));
      try {
        link.sendControl(m);
      } catch (e) {
        done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
      }
      return () => {
        offMsg();
        offClose();
      };
    },
    { timeoutMs: PAGE_TIMEOUT_MS, timeoutMessage: 'directory request timed out', ...options },
  );
}

/** Asks a relay for the newest signed consensus head it holds (specs/directory.md §7.3); null when it has none. */
export function fetchConsensusHead(link: Link, options: AbortOptions = {}): Promise<Uint8Array | null> {
  return ask(link, { t: 'consensus-head-get' }, (r) => (r.t === 'consensus-head' ? r.c : undefined), options);
}

/** Fetches the entries of consensus `head` page by page and checks them against it. Throws ERR_DIRECTORY. */
export async function fetchConsensusEntries(link: Link, head: ConsensusHead, options: AbortOptions = {}): Promise<Consensus> {
  const entries: ConsensusEntry[] = [];
  for (let page = 0; entries.length < head.count || page === 0; page++) {
    if (page > Math.ceil(head.count / 100) + 1) throw new AlliumError('ERR_DIRECTORY', 'consensus has too many pages');
    const from = entries.length;
    const r = await ask(
      link,
      { t: 'consensus-entries-get', d: head.digest, from },
      (x) => (x.t === 'consensus-entries' && crypto().equal(x.d, head.digest) && x.from === from ? x : undefined),
      options,
    );
    if (!r.ok) throw new AlliumError('ERR_DIRECTORY', 'source does not hold the consensus it announced');
    entries.push(...r.e.map(entryFromTuple));
    if (!r.more || r.e.length === 0) break;
  }
  return checkEntries(head, entries);
}

/**
 * Fetches the changes from `from` to `head` and applies them; the result is checked against the head. Throws
 * ERR_DIRECTORY (also when the source has no such diff: the caller fetches the whole consensus instead).
 */
export async function fetchConsensusDiff(link: Link, from: Consensus, head: ConsensusHead, options: AbortOptions = {}): Promise<Consensus> {
  const changes: [Uint8Array, ConsensusEntry | null][] = [];
  let after: Uint8Array | null = null;
  for (let page = 0; page < Math.ceil(MAX_CONSENSUS_CHANGES / 100); page++) {
    const at: Uint8Array | null = after;
    const r: Extract<ControlMessage, { t: 'consensus-diff' }> = await ask(
      link,
      { t: 'consensus-diff-get', from: from.digest, to: head.digest, after: at },
      (x) => (x.t === 'consensus-diff' && crypto().equal(x.from, from.digest) && crypto().equal(x.to, head.digest) ? x : undefined),
      options,
    );
    if (!r.ok) throw new AlliumError('ERR_DIRECTORY', 'source has no diff between these consensuses');
    for (const [id, e] of r.ch) changes.push([id, e ? entryFromTuple(e) : null]);
    // A diff changes at most every entry of both consensuses: a source sending more is refused at once, before it
    // can make the client hold more than the two consensuses would.
    if (changes.length > from.entries.length + head.count) throw new AlliumError('ERR_DIRECTORY', 'consensus diff longer than both consensuses');
    if (!r.more || r.ch.length === 0) return checkEntries(head, applyDiff(from.entries, changes));
    after = r.ch[r.ch.length - 1]![0];
  }
  throw new AlliumError('ERR_DIRECTORY', 'consensus diff has too many pages');
}

/** Asks a directory source for its signed statement of what it serves (specs/directory.md §6.5). */
export async function fetchViewStatement(link: Link, options: AbortOptions = {}): Promise<ViewStatement> {
  const id = link.peer?.identity;
  if (!id) throw new AlliumError('ERR_LINK_AUTH', 'source without an identity');
  const m = await ask(link, { t: 'view-get' }, (r) => (r.t === 'view' ? r : undefined), options);
  return verifyViewStatement(id, m);
}

const MAX_CONSENSUS_CHANGES = 200_000;
