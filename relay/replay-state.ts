/**
 * The replay state a relay starts with (specs/circuits.md §3.4.1, specs/link.md §2.4): each onion key's replay
 * filter and the link handshake replay cache, restored from the journals of the last run (relay/replay-journal.ts).
 *
 * When the journals may have lost writes (or a key's is missing or damaged), every onion key is retired and the link
 * replay cache starts cold instead, since this run cannot know what the last one accepted. A data directory in which
 * no relay ran before (`firstRun`: no onion-keys.json) has accepted nothing and needs neither. Runs before any link
 * is accepted; leaves a journal open for appending for every usable key and for the link cache.
 */
import type { Logger } from 'pino';
import type { IdentityKey, OnionKeyRing } from '../crypto/keys.js';
import type { HandshakeReplayCache } from '../protocol/link-handshake.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import { saveOnionKeys } from './keystore.js';
import { ReplayJournals } from './replay-journal.js';

export interface RestoreOptions {
  dataDir: string;
  identity: IdentityKey;
  ring: OnionKeyRing;
  /** No relay ran in this data directory before (no onion-keys.json). */
  firstRun: boolean;
  now: number;
  /** timing.clock_skew: how long a cold link cache refuses handshakes timestamped before it started. */
  clockSkewMs: number;
  /** Makes an empty link replay cache (sized from the handshake rate, journaling into `journals`). */
  newHandshakeReplay: (journals: ReplayJournals) => HandshakeReplayCache;
  log: Logger;
}

export interface ReplayState {
  /** The onion keys' replay filters. */
  replay: ReplayFilter;
  /** The link handshake replay cache. */
  handshakeReplay: HandshakeReplayCache;
  /** The journals, open for appending (closed by the relay when it stops). */
  journals: ReplayJournals;
}

export function restoreReplayState(o: RestoreOptions): ReplayState {
  const { ring, now } = o;
  const journals = new ReplayJournals(o.dataDir, o.identity);
  const begun = journals.begin();
  let problem: string | null = begun.complete ? null : begun.reason;
  const replay = new ReplayFilter();
  for (const k of ring.usable) {
    if (problem) break;
    const tags = journals.readOnion(k.publicKey);
    if (!tags) problem = 'an onion key has no intact replay journal';
    else for (let off = 0; off < tags.length; off += 16) replay.checkAndRecord(k.publicKey, tags.subarray(off, off + 16));
  }
  const handshakes = o.newHandshakeReplay(journals);
  if (!problem) {
    const entries = journals.readLink();
    if (!entries || !handshakes.restore(entries, now)) problem = 'the link replay journal is missing or damaged';
  }
  const state: ReplayState = problem
    ? { replay: new ReplayFilter(), handshakeReplay: o.newHandshakeReplay(journals), journals }
    : { replay, handshakeReplay: handshakes, journals };
  if (!problem) o.log.info('restored the replay state of the last run from its journals');
  else if (!o.firstRun) {
    ring.retireAll(now);
    saveOnionKeys(o.dataDir, ring);
    const coldUntil = now + o.clockSkewMs;
    state.handshakeReplay.startCold(coldUntil);
    o.log.warn(
      { reason: problem, linkColdUntil: new Date(coldUntil).toISOString() },
      'replay state of the last run not recoverable: retired the onion keys (clients holding the old descriptor cannot build through this relay until they fetch the new one) and refusing link handshakes timestamped before the cold period ends',
    );
  }
  journals.deleteOnionsExcept(ring.usable.map((k) => k.publicKey));
  for (const k of ring.usable) journals.openOnion(k.publicKey, problem !== null);
  journals.resetLink(state.handshakeReplay.entries(now));
  return state;
}
