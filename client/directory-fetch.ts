/**
 * Fetching the directory from one relay over its link (specs/directory.md §6.1, §9): every descriptor a relay offers,
 * page by page and bounded, and a bridge's own descriptor. What the client keeps of the answers is decided in
 * client/directory.ts (the cross-check in client/cross-check.ts); this module only fetches and checks form.
 */
import { crypto } from '../crypto/index.js';
import { MAX_DESCRIPTORS_PER_MESSAGE } from '../protocol/control.js';
import { checkFound } from '../protocol/directory-want.js';
import { verifyDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { AlliumError, CryptoError, isAlliumError, LimitError, ProtocolError } from '../protocol/errors.js';
import { settleWithin, signalOption, type AbortOptions } from '../net/abort.js';
import { ask, DIRECTORY_REQUEST_TIMEOUT_MS } from '../net/directory-requests.js';
import type { Link } from '../net/link.js';

const MAX_PAGES = 1000;
/** Descriptors one fetch from one source may return (specs/limits.md MAX_DIRECTORY_FETCH_ENTRIES). */
export const MAX_DIRECTORY_FETCH_ENTRIES = 20_000;
/** … and their bytes (specs/limits.md MAX_DIRECTORY_FETCH_BYTES). */
export const MAX_DIRECTORY_FETCH_BYTES = 16 * 1024 * 1024;

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
export async function fetchFromRelay(
  link: Link,
  since: number,
  options: DirectoryFetchLimits & AbortOptions = {},
): Promise<{ raws: Uint8Array[]; at: number }> {
  const maxEntries = options.maxEntries ?? MAX_DIRECTORY_FETCH_ENTRIES;
  const maxBytes = options.maxBytes ?? MAX_DIRECTORY_FETCH_BYTES;
  const raws: Uint8Array[] = [];
  let bytes = 0;
  let after: Uint8Array | null = null;
  let last: string | null = null;
  let at = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const reply = await ask(link, { t: 'dir-get', since, after }, (r) => (r.t === 'dir' ? r : undefined), signalOption(options.signal));
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

/**
 * Fetches the descriptors of `ids` (ascending, without repeats) from one source, by identity (specs/directory.md
 * §6.1): `dir-want` runs of at most MAX_DESCRIPTORS_PER_MESSAGE identities, one at a time. Each answer is checked as
 * it arrives (protocol/directory-want.ts checkFound: at most one descriptor per identity asked, each verifying and
 * asked for, in order; else ERR_DIRECTORY and the caller leaves the source out). Identities the source holds no
 * descriptor for are simply absent from the result. Times are the caller's to check.
 */
export async function fetchWanted(link: Link, ids: readonly Uint8Array[], options: AbortOptions = {}): Promise<Descriptor[]> {
  const found: Descriptor[] = [];
  for (let i = 0; i < ids.length; i += MAX_DESCRIPTORS_PER_MESSAGE) {
    const run = ids.slice(i, i + MAX_DESCRIPTORS_PER_MESSAGE);
    const reply = await ask(link, { t: 'dir-want', ids: run }, (r) => (r.t === 'dir-found' ? r : undefined), signalOption(options.signal));
    found.push(...checkFound(run, reply.ds));
  }
  return found;
}

/**
 * Asks a bridge for its own descriptor (specs/directory.md §9) and verifies it: signed under the bridge context, by
 * the identity the bridge line names, valid now. Throws ERR_LINK_AUTH for a descriptor of another identity,
 * ERR_SIGNATURE and the other descriptor errors, ERR_TIMEOUT, ERR_LINK_CLOSED, ERR_ABORTED.
 */
export function fetchBridgeDescriptor(link: Link, identity: Uint8Array, now: () => number, options: AbortOptions = {}): Promise<Descriptor> {
  return settleWithin<Descriptor>(
    (done) => {
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
      try {
        link.sendControl({ t: 'bridge-get' });
      } catch (e) {
        done(isAlliumError(e) ? e : new AlliumError('ERR_LINK_CLOSED', 'send failed'));
      }
      return () => {
        offMsg();
        offClose();
      };
    },
    { timeoutMs: DIRECTORY_REQUEST_TIMEOUT_MS, timeoutMessage: 'bridge descriptor request timed out', ...options },
  );
}
