/**
 * What a client downloads per hourly directory refresh (specs/directory.md §6.2), measured with the real client code
 * (client/directory.ts `ClientDirectory.refresh`) against three sources that answer as relays do (relay/overlay.ts:
 * pages, identities wanted, consensus heads, entries and diffs from relay/consensus-cache.ts), over N relays that
 * each renew their descriptor every hour at their own phase (descriptor_renew 1 h, descriptor_lifetime 3 h) and
 * rotate their onion key every week at their own phase (onion_key_lifetime 7 days: a new md), and
 * an hourly consensus of three authorities (sim/adversary/authorities.ts) that measure each relay once a day at its
 * own phase, ±10 % (specs/measurement.md), so a relay's weight moves about once a day.
 *
 * Bytes are those of the CONTROL messages each way (CBOR, specs/link.md §5), without link framing. Compared:
 *   - with authorities, by need (the client code run): the consensus as a diff, then only the descriptors whose md
 *     changed (a descriptor the consensus lists stays usable after its exp: proposal 002 step 2), by identity, from
 *     one source;
 *   - without authorities (unchanged): every descriptor from each of three sources for the majority cross-check —
 *     the `dir` pages a source serves for `dir-get` since 0, three times (the same messages; the client is not run);
 *   - with authorities as before proposal 002: those pages plus the by-need client's consensus traffic (heads, diff);
 *   - step 1 of proposal 002 (computed, not run): the consensus traffic plus every descriptor whose held copy expires
 *     within DESCRIPTOR_REFETCH_WINDOW (renewed hourly, living three hours: each one every second refresh).
 */
import { ClientDirectory } from '../../client/directory.js';
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import { CONSENSUS_PAGE_ENTRIES, type Consensus } from '../../protocol/consensus.js';
import { encodeControl, type ControlMessage } from '../../protocol/control.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import { Emitter } from '../../net/emitter.js';
import type { Link, LinkEvents } from '../../net/link.js';
import { ConsensusCache } from '../../relay/consensus-cache.js';
import { honestSpecs, signSpecDescriptors, T0, uniform } from '../anonymity.js';
import { authorities, DAY, INTERVAL, runConsensus, type Observed } from '../adversary/authorities.js';

const HOUR = 3600_000;
const WEEK = 7 * 24 * HOUR;

/** A directory source as the client sees it: answers as relay/overlay.ts does, and counts bytes both ways. */
class CountingSource extends Emitter<LinkEvents> {
  readonly peer;
  readonly isOpen = true;
  /** Bytes sent to the client, by message type. */
  readonly sent = new Map<string, number>();
  received = 0;
  private sorted: { raw: Uint8Array; fp: string; exp: number }[] = [];
  private readonly byFp = new Map<string, { raw: Uint8Array; exp: number }>();
  private now = 0;

  constructor(
    seed: string,
    readonly cache: ConsensusCache,
  ) {
    super();
    this.peer = { role: LinkRole.RELAY, identity: IdentityKey.fromSeed(seededRandom(seed)(32)).publicKey, version: 1 };
  }

  /** The descriptors the source holds at `now` (every relay's newest edition). */
  hold(ds: readonly Descriptor[], now: number): void {
    this.now = now;
    this.byFp.clear();
    this.sorted = ds
      .map((d) => {
        this.byFp.set(d.fingerprint, { raw: d.raw, exp: d.exp });
        return { raw: d.raw, fp: d.fingerprint, exp: d.exp };
      })
      .sort((a, b) => (a.fp < b.fp ? -1 : 1));
  }

  sendControl(m: ControlMessage): void {
    this.received += encodeControl(m).length;
    queueMicrotask(() => this.answer(m));
  }

  private reply(r: ControlMessage): void {
    const bytes = encodeControl(r).length;
    this.sent.set(r.t, (this.sent.get(r.t) ?? 0) + bytes);
    this.emit('link:control', r, bytes);
  }

  private answer(m: ControlMessage): void {
    const c = this.cache;
    switch (m.t) {
      case 'dir-get': {
        const after = m.after ? Buffer.from(m.after).toString('hex') : '';
        const rest = this.sorted.filter((x) => x.fp > after && x.exp > this.now);
        return this.reply({ t: 'dir', at: this.now, ds: rest.slice(0, 100).map((x) => x.raw), more: rest.length > 100 });
      }
      case 'dir-want': {
        const ds: Uint8Array[] = [];
        for (const id of m.ids) {
          const x = this.byFp.get(Buffer.from(id).toString('hex'));
          if (x && x.exp > this.now) ds.push(x.raw);
        }
        return this.reply({ t: 'dir-found', ds });
      }
      case 'consensus-head-get':
        return this.reply({ t: 'consensus-head', c: c.current?.raw ?? null });
      case 'consensus-entries-get':
        return this.reply({ t: 'consensus-entries', d: m.d, from: m.from, ...c.entriesPage(m.d, m.from) });
      case 'consensus-diff-get':
        return this.reply({ t: 'consensus-diff', from: m.from, to: m.to, ...c.diffPage(m.from, m.to, m.after) });
      default:
        return;
    }
  }

  /** Bytes of the `dir` pages this source serves for a whole fetch (`dir-get` since 0), as relay/overlay.ts pages. */
  pageBytes(): number {
    let n = 0;
    const live = this.sorted.filter((x) => x.exp > this.now);
    for (let i = 0; i === 0 || i < live.length; i += 100) {
      n += encodeControl({ t: 'dir', at: this.now, ds: live.slice(i, i + 100).map((x) => x.raw), more: i + 100 < live.length }).length;
    }
    return n;
  }

  /** Bytes sent so far (all types, or those named), then counters reset. */
  take(): { down: number; descriptors: number; consensus: number; up: number } {
    const get = (...ts: string[]): number => ts.reduce((n, t) => n + (this.sent.get(t) ?? 0), 0);
    const out = {
      down: get(...this.sent.keys()),
      descriptors: get('dir', 'dir-found'),
      consensus: get('consensus-head', 'consensus-entries', 'consensus-diff'),
      up: this.received,
    };
    this.sent.clear();
    this.received = 0;
    return out;
  }

  close(): void {}
}

export interface RefreshBytes {
  n: number;
  /** Refreshes after the first that the means below are over. */
  refreshes: number;
  /** Without authorities (unchanged): bytes received per refresh, the first and every one after it. */
  free: number;
  /** With authorities as before: every descriptor from three sources, plus the consensus traffic. */
  beforeFirst: number;
  before: number;
  /** With authorities, by need: the first refresh, and per refresh after it (mean). */
  byNeedFirst: number;
  byNeed: number;
  /** Of byNeed: the consensus (heads and diff) and the descriptors, bytes; descriptors downloaded; diff entries. */
  byNeedConsensus: number;
  byNeedDescriptorBytes: number;
  byNeedDescriptors: number;
  diffEntries: number;
  /** Bytes the by-need client sent per refresh after the first (its dir-want identities and requests). */
  byNeedUp: number;
  /** Refreshes after the first at which the consensus came as a diff. */
  viaDiff: number;
  /** Step 1 of the proposal, computed: consensus traffic plus every descriptor every second refresh. */
  step1: number;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/**
 * `hours` + 1 hourly refreshes over `n` relays; the first is the first download. Each relay i renews at phase φ_i
 * of the hour; the client refreshes five minutes after each hourly consensus. An even `hours` averages over whole
 * cycles: by need, a descriptor is fetched again every second hour.
 */
export async function refreshBytes(seed: number, n: number, hours: number, log: (s: string) => void = () => undefined): Promise<RefreshBytes> {
  const s = `${seed}/refresh/${n}`;
  const specs = honestSpecs({ honest: n, seed: s });
  const phase = uniform(`${s}/phase`);
  const phases = specs.map(() => Math.floor(phase() * HOUR));
  const weekPhase = uniform(`${s}/onion-phase`);
  const onionPhases = specs.map(() => Math.floor(weekPhase() * WEEK));
  const a = authorities(s);
  // Each authority measures each relay once per measurement_interval (24 h, specs/measurement.md) at the relay's own
  // phase of the day, ±10 %; between measurements its vote repeats the last one.
  const measurePhase = uniform(`${s}/measure-phase`);
  const phaseOf = new Map(specs.map((_, i) => [i, measurePhase() * DAY]));
  const indexOf = new Map<string, number>();
  let votedAt = 0;
  const measure = (o: Observed, authority: number): number => {
    const i = indexOf.get(o.d.fingerprint)!;
    const epoch = Math.floor((votedAt - phaseOf.get(i)!) / DAY);
    return Math.max(1, Math.round(o.capacity * (0.9 + 0.2 * uniform(`${s}/measure/${i}/${authority}/${epoch}`)())));
  };
  const caches = [new ConsensusCache(), new ConsensusCache(), new ConsensusCache()];
  const sources = caches.map((c, i) => new CountingSource(`${s}/source/${i}`, c));
  const byNeed = new ClientDirectory(undefined, a.fingerprints);
  let prev: Consensus | null = null;
  const rows: {
    free: number;
    byNeed: number;
    consensus: number;
    descriptorBytes: number;
    descriptors: number;
    up: number;
    diff: boolean;
    diffEntries: number;
  }[] = [];
  let descriptorSize = 0;
  for (let h = 0; h <= hours; h++) {
    const va = T0 + 24 * HOUR + h * INTERVAL;
    const t = va + 5 * 60_000;
    // Every relay's newest edition at t: renewed hourly at its phase.
    const pubOf = (i: number): number => va - HOUR + phases[i]! + (phases[i]! <= t - va ? HOUR : 0);
    // A relay's onion key rotates weekly at its own phase; the descriptor published then names the new key.
    const ds = signSpecDescriptors(specs, s, 'h-', pubOf, (i) => Math.floor((pubOf(i) + onionPhases[i]!) / WEEK));
    ds.forEach((d, i) => indexOf.set(d.fingerprint, i));
    descriptorSize = ds.reduce((n, d) => n + d.raw.length, 0) / ds.length;
    votedAt = va;
    const obs: Observed[] = ds.map((d) => ({ d, capacity: Math.max(1, d.bw), knownDays: 60, availability: 0.99, up: true, uptimeDays: 10 }));
    const c = runConsensus(a, obs, va, prev?.sr ?? null, s, measure);
    for (const cache of caches) {
      cache.adopt(c);
      cache.expire(t);
    }
    for (const src of sources) src.hold(ds, t);
    const links = sources as unknown as Link[];
    const diffEntries = prev ? diffCount(caches[0]!, prev, c) : 0;
    prev = c;

    const free = sources.reduce((n, x) => n + x.pageBytes(), 0);
    const r = await byNeed.refresh(links, () => t);
    const b = sources.map((x) => x.take());
    rows.push({
      free,
      byNeed: b.reduce((n, x) => n + x.down, 0),
      consensus: b.reduce((n, x) => n + x.consensus, 0),
      descriptorBytes: b.reduce((n, x) => n + x.descriptors, 0),
      descriptors: r.downloaded.descriptors,
      up: b.reduce((n, x) => n + x.up, 0),
      diff: r.downloaded.consensus === 'diff',
      diffEntries,
    });
    const last = rows[rows.length - 1]!;
    log(
      `  N=${n} hour ${h}: without authorities ${(last.free / 1024).toFixed(0)} KiB; by need ${(last.byNeed / 1024).toFixed(1)} KiB (${last.descriptors} descriptors, consensus ${(last.consensus / 1024).toFixed(1)} KiB${last.diff ? ` as a diff of ${diffEntries} entries` : ''})`,
    );
  }
  const after = rows.slice(1);
  const first = rows[0]!;
  return {
    n,
    refreshes: after.length,
    free: mean(after.map((x) => x.free)),
    beforeFirst: first.free + first.consensus,
    before: mean(after.map((x) => x.free + x.consensus)),
    byNeedFirst: first.byNeed,
    byNeed: mean(after.map((x) => x.byNeed)),
    byNeedConsensus: mean(after.map((x) => x.consensus)),
    byNeedDescriptorBytes: mean(after.map((x) => x.descriptorBytes)),
    byNeedDescriptors: mean(after.map((x) => x.descriptors)),
    diffEntries: mean(after.map((x) => x.diffEntries)),
    byNeedUp: mean(after.map((x) => x.up)),
    viaDiff: after.filter((x) => x.diff).length,
    step1: mean(after.map((x) => x.consensus)) + (n / 2) * descriptorSize,
  };
}

/** Entries of the diff between two consensuses, as a relay serves it (pages of CONSENSUS_PAGE_ENTRIES). */
function diffCount(cache: ConsensusCache, from: Consensus, to: Consensus): number {
  let n = 0;
  let after: Uint8Array | null = null;
  for (;;) {
    const p = cache.diffPage(from.digest, to.digest, after);
    if (!p.ok) return 0;
    n += p.ch.length;
    if (!p.more || p.ch.length < CONSENSUS_PAGE_ENTRIES) return n;
    after = p.ch[p.ch.length - 1]![0];
  }
}
