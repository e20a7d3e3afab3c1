/**
 * npm run audit:prekeys — what an observer who knows an identity's address learns, from its prekey record
 * (specs/messaging.md §9.6), of when the owner was online (issue 16, audit item 4). Runs the shipped owner
 * (client/prekeys.ts PrekeyOwner) with an injected clock: the owner comes online at random moments (listening
 * publishes its records, as Messenger.listen does; a first contact's item may make it roll its one-time prekeys
 * over), and after each session an observer fetches the current epoch's record once and opens it with the address.
 *
 * Figures, over every fetch:
 *   - resolution: the length of the interval of publication times the observer's view is consistent with (the
 *     record's edition and its bundle's "c"): 0 when the edition is the publication time in ms;
 *   - error: how far the observer's best single guess (the middle of that interval) is from the true moment;
 *   - count: the KS distance between the edition's offset in its window for owners that published once and owners
 *     that published several times in the window (0: a single fetch does not tell how often it published).
 *
 *   - polling: an observer that fetches the current epoch's record from a holder (the relay's store,
 *     relay/block-store.ts, on the same clock) every --poll minutes takes each change of edition for a publication
 *     the owner made between the two fetches and guesses its moment as their middle; the error of that guess, over
 *     every change it saw (before holders kept a record back until its edition's window, about half the interval),
 *     and how many changes it saw away from a window's start (editions served at once: each timed to the interval).
 *
 *   --sessions N   online sessions simulated (default 400)
 *   --poll M       the polling observer's interval in minutes (default 5)
 *   --seed S       seed of the owner's behaviour (default "allium-prekey-editions-1")
 *   --json         print the result as JSON
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContentClient } from '../client/content.js';
import { memoryGroupStorage } from '../client/messaging/group-store.js';
import { PrekeyOwner } from '../client/prekeys.js';
import { seededRandom } from '../crypto/drbg.js';
import { initCrypto } from '../crypto/index.js';
import { createIdentity } from '../protocol/address.js';
import { mailboxEpochAt } from '../protocol/mailbox.js';
import { openPrekeyRecord, prekeyRecordKeys } from '../protocol/prekeys.js';
import { RECORD_CLOCK_SKEW_MS } from '../protocol/ssk.js';
import { BlockStore } from '../relay/block-store.js';
import { parseFlags } from './lib/options.js';

const USAGE = 'usage: npm run audit:prekeys -- [--sessions N] [--poll M] [--seed S] [--json]';
const HOUR = 3600_000;
/** The coarsest period the observer can be sure of without reading the record: the epoch of its routing key. */
const WINDOW_GUESS = 12 * HOUR;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

function ks(a: number[], b: number[]): number {
  const all = [...new Set([...a, ...b])].sort((x, y) => x - y);
  const cdf = (xs: number[], v: number): number => xs.filter((x) => x <= v).length / xs.length;
  return Math.max(0, ...all.map((v) => Math.abs(cdf(a, v) - cdf(b, v))));
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { sessions: 'number', poll: 'number', seed: 'string', json: 'boolean' }, USAGE);
  const sessions = flags.sessions ?? 400;
  const poll = Math.max(1, flags.poll ?? 5) * 60_000;
  await initCrypto();
  const rand = seededRandom(flags.seed ?? 'allium-prekey-editions-1');
  const uniform = (): number => new DataView(rand(4).buffer).getUint32(0) / 2 ** 32;

  const identity = createIdentity();
  let now = Date.UTC(2026, 11, 7);
  const owner = new PrekeyOwner(identity, memoryGroupStorage(), () => now);
  let latest: Uint8Array | null = null;
  // One holder of every record, the relay's own store on the audit's clock, for the polling observer.
  const dir = mkdtempSync(join(tmpdir(), 'allium-audit-prekeys-'));
  const store = new BlockStore(dir, 64 * 1024 * 1024);
  const holders = {
    storeAll: (_kind: string, rk: Uint8Array, bytes: Uint8Array) => {
      latest ??= bytes; // the first record of the publication: the epoch of its edition
      try {
        store.putRecord(rk, bytes, now);
      } catch {
        /* an edition the holder already has a newer one of */
      }
      return Promise.resolve(['ok']);
    },
  } as unknown as ContentClient;
  /** Publication moments by edition (the polling observer's truth). */
  const publishedAt = new Map<number, number>();
  const pollError: number[] = [];
  /** The same observer knowing the rule: an edition served at its window's start was published in the window before. */
  const pollInformed: number[] = [];
  /** Changes the observer saw away from a window's start: an edition served at once, timed to the polling interval. */
  let pollAtOnce = 0;
  let polled = now;
  let seenEdition = -1;
  /** The polling observer fetches every `poll` ms up to `until`, guessing a publication at each change it sees. */
  const pollUntil = (until: number): void => {
    for (; polled + poll <= until;) {
      const before = polled;
      polled += poll;
      const bytes = store.getRecord(prekeyRecordKeys(identity.publicKey, mailboxEpochAt(polled)).rk, polled);
      if (!bytes) continue;
      const ed = openPrekeyRecord(identity.publicKey, mailboxEpochAt(polled), bytes).edition;
      if (ed === seenEdition) continue;
      const first = seenEdition === -1;
      seenEdition = ed;
      const truth = publishedAt.get(ed);
      if (!first && truth !== undefined) {
        pollError.push(Math.abs((before + polled) / 2 - truth));
        // At the window's start: the middle of the window before; otherwise (served at once) the change's middle.
        const w = ed - (ed % WINDOW_GUESS);
        // A held edition is served from its time less the holders' clock allowance, and the observer reads a new
        // epoch's record from that epoch's start: seen first at the first fetch after then, unless served earlier.
        const servedFrom = mailboxEpochAt(w) !== mailboxEpochAt(w - 1) ? w : ed - RECORD_CLOCK_SKEW_MS;
        const atStart = before < servedFrom && polled >= servedFrom;
        pollInformed.push(Math.abs((atStart ? w - WINDOW_GUESS / 2 : (before + polled) / 2) - truth));
        if (!atStart) pollAtOnce += 1;
      }
    }
  };

  const resolution: number[] = [];
  const error: number[] = [];
  const offsetOnce: number[] = [];
  const offsetMany: number[] = [];
  let window = -1;
  let inWindow = 0;
  for (let i = 0; i < sessions; i++) {
    // Offline for 1–30 hours, then online: listening publishes the records.
    const online = now + Math.floor((1 + 29 * uniform()) * HOUR);
    pollUntil(online);
    now = online;
    const w = Math.floor(now / WINDOW_GUESS);
    inWindow = w === window ? inWindow + 1 : 1;
    window = w;
    latest = null;
    const edBefore = owner.lastEdition();
    await owner.publish(holders);
    const published = now;
    if (owner.lastEdition() !== edBefore) publishedAt.set(owner.lastEdition(), published);
    if (latest === null) continue; // nothing published this time (the owner had no edition left in the window)
    // The observer fetches the edition once, when it is served, and opens the record with the address.
    const r = openPrekeyRecord(identity.publicKey, mailboxEpochAt(owner.lastEdition()), latest);
    // The times consistent with what it saw: an edition in ms is the publication time; an edition of version 2 is
    // the start of its window plus a counter, published in that window (at once) or in the one before (ahead): the
    // observer cannot tell which, so the publication fell in the two windows around the edition's start.
    const coarse = r.edition % WINDOW_GUESS < 4096 && r.bundle.created % WINDOW_GUESS === 0;
    const lo = coarse ? r.edition - (r.edition % WINDOW_GUESS) - WINDOW_GUESS : r.edition;
    const hi = coarse ? lo + 2 * WINDOW_GUESS : r.edition;
    resolution.push(hi - lo);
    error.push(Math.abs((lo + hi) / 2 - published));
    (inWindow === 1 ? offsetOnce : offsetMany).push(r.edition % WINDOW_GUESS);
  }
  const h = (ms: number): string => (ms >= HOUR ? `${(ms / HOUR).toFixed(2)} h` : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${ms} ms`);
  const result = {
    sessions,
    fetches: resolution.length,
    resolutionMedianMs: quantile(resolution, 0.5),
    resolutionMinMs: quantile(resolution, 0),
    errorMedianMs: quantile(error, 0.5),
    errorP90Ms: quantile(error, 0.9),
    countKs: offsetOnce.length > 0 && offsetMany.length > 0 ? ks(offsetOnce, offsetMany) : null,
    /** The KS distance two samples of these sizes from one distribution exceed with probability 0.05. */
    ksCritical: 1.358 * Math.sqrt((offsetOnce.length + offsetMany.length) / Math.max(1, offsetOnce.length * offsetMany.length)),
    once: offsetOnce.length,
    many: offsetMany.length,
    pollMinutes: poll / 60_000,
    pollChanges: pollError.length,
    pollErrorMedianMs: quantile(pollError, 0.5),
    pollErrorP90Ms: quantile(pollError, 0.9),
    pollInformedMedianMs: quantile(pollInformed, 0.5),
    pollInformedP90Ms: quantile(pollInformed, 0.9),
    pollAtOnce,
  };
  store.close();
  rmSync(dir, { recursive: true, force: true });
  if (flags.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(
    [
      `prekey record observer: ${result.fetches} single fetches over ${sessions} online sessions`,
      `  resolution of the owner's online moment: median ${h(result.resolutionMedianMs)}, smallest ${h(result.resolutionMinMs)}`,
      `  error of the best guess: median ${h(result.errorMedianMs)}, 90th percentile ${h(result.errorP90Ms)}`,
      `  polling every ${result.pollMinutes} min: ${result.pollChanges} changes of edition seen; error of the guessed publication moment: median ${h(result.pollErrorMedianMs)}, 90th percentile ${h(result.pollErrorP90Ms)}; knowing the rule (the window before): median ${h(result.pollInformedMedianMs)}, 90th percentile ${h(result.pollInformedP90Ms)}; changes away from a window's start (timed to the interval): ${result.pollAtOnce}`,
      `  publications in the window (1 vs more, ${result.once} vs ${result.many} fetches): KS distance of the edition's offset ${result.countKs?.toFixed(3) ?? '-'} (critical at 0.05: ${result.ksCritical.toFixed(3)})`,
    ].join('\n'),
  );
}

await main();
