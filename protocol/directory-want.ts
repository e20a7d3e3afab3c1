/**
 * Descriptors fetched by identity (specs/directory.md §6.1, `dir-want` / `dir-found`): the checks a client applies to
 * an answer before it keeps anything of it. Pure: the request and its answer travel over a link elsewhere
 * (client/directory-fetch.ts fetchWanted); relays answer in relay/overlay.ts.
 *
 *   CheckFound(asked, ds):                       asked: the identities of one dir-want, strictly ascending
 *       require len(ds) ≤ len(asked)                                                   else ERR_DIRECTORY
 *       for each raw in ds:
 *           d = verify raw: form and signature (§2.4; times are the refresh's to check)  else ERR_DIRECTORY
 *           require id(d) ∈ asked, fingerprints rising strictly                        else ERR_DIRECTORY
 *       return the descriptors
 *
 * So an answer holds at most one descriptor per identity asked, each for an identity asked: a source can make the
 * client verify at most as many signatures as it asked for, and no descriptor reaches the client unasked. Work is
 * linear in the answer: one signature check per descriptor, each at most MAX_DESCRIPTOR_BYTES.
 */
import { toHex } from './bytes.js';
import { verifyDescriptor, type Descriptor } from './descriptor.js';
import { ProtocolError } from './errors.js';

/** The descriptors of a `dir-found` answer to a `dir-want` of `asked`, checked. Throws ERR_DIRECTORY. */
export function checkFound(asked: readonly Uint8Array[], ds: readonly Uint8Array[]): Descriptor[] {
  if (ds.length > asked.length) throw new ProtocolError('ERR_DIRECTORY', 'a directory source answers with more descriptors than were asked for');
  const wanted = new Set(asked.map(toHex));
  const found: Descriptor[] = [];
  let last: string | null = null;
  for (const raw of ds) {
    let d: Descriptor;
    try {
      d = verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER);
    } catch (e) {
      throw new ProtocolError('ERR_DIRECTORY', 'a directory source answers with a descriptor that does not verify', { cause: e });
    }
    if (!wanted.has(d.fingerprint)) throw new ProtocolError('ERR_DIRECTORY', 'a directory source answers with a descriptor that was not asked for');
    if (last !== null && d.fingerprint <= last) throw new ProtocolError('ERR_DIRECTORY', 'descriptors found are not in strictly ascending order');
    last = d.fingerprint;
    found.push(d);
  }
  return found;
}
