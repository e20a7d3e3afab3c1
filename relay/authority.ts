/**
 * A directory authority's voting (specs/directory.md §7.1–§7.2, §7.6). Consensuses are valid after multiples of
 * the interval; for the one valid after `va`:
 *
 *   va − interval/2   each authority signs its vote — the relays it found reachable with the flags they earned,
 *                     their claimed and measured capacity, its shared-random commit (and its reveal in the reveal
 *                     phase) — and sends it to every other authority over a relay link, in `vote-part`s
 *   va − interval/4   each computes the consensus from the votes it holds (computeConsensus: deterministic, so
 *                     authorities holding the same votes and the same previous consensus compute the same bytes)
 *                     and sends its signature over the head to the others (`consensus-sig`)
 *   va                an authority holding signatures of a strict majority over the head it computed adopts the
 *                     consensus and floods its head (relay/overlay.ts)
 *
 * An authority that missed votes computes another head, gathers no majority for it, and takes the published
 * consensus from its neighbours like any relay. The reveal of each period is drawn once and kept in
 * `sr-state.json` in the data directory, so a restart within a period reveals what it committed to.
 *
 * Why this file is at ~400 lines: the voting schedule above is one timeline whose steps (vote, gather, sign, adopt)
 * read the same per-interval state; split across files they would pass that state back and forth.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import { type IdentityKey, parseFingerprint } from '../crypto/keys.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import {
  checkEntries,
  computeConsensus,
  descriptorMd,
  encodeSignedHead,
  headDigest,
  headSignatureValid,
  majorityOf,
  readHead,
  signHead,
  signVote,
  verifyVote,
  type Consensus,
  type ConsensusEntry,
  type Vote,
  type VoteEntry,
} from '../protocol/consensus.js';
import { VOTE_PART_BYTES, type ControlMessage } from '../protocol/control.js';
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { isExitPolicy, parseExitPolicy, policyMightAllowPort } from '../protocol/exit-policy.js';
import { assignFlags, DEFAULT_FLAG_THRESHOLDS, type FlagThresholds, type RelayObservation } from '../protocol/flags.js';
import { hostOf, isLoopbackHost } from '../protocol/relay-network.js';
import { srCommit, srPeriodOf, srRound } from '../protocol/shared-random.js';
import { UNMEASURED_CAP } from '../protocol/weights.js';
import type { Link } from '../net/link.js';
import { RelayHistory } from './authority-history.js';
import { ReachabilityTester } from './authority-reachability.js';
import type { RelayConfig } from './config.js';
import type { CircuitTable } from '../net/circuit.js';
import { measureRelay } from './measurement.js';
import type { Overlay } from './overlay.js';
import type { Consensus as ConsensusDoc } from '../protocol/consensus.js';
import { writeFileAtomic } from './keystore.js';

/** Relays per IP address an authority lists at most (loopback excepted), as Tor's AuthDirMaxServersPerAddr. */
export const AUTHORITY_MAX_PER_ADDRESS = 2;

export interface AuthorityOptions {
  identity: IdentityKey;
  /** Fingerprints of every configured authority, this one included. */
  authorities: ReadonlySet<string>;
  directory: DirectoryStore;
  history: RelayHistory;
  tester: ReachabilityTester;
  /** The consensus this relay holds (the previous one, for the shared-random state). */
  current: () => Consensus | null;
  /** Adopts and floods a consensus. */
  adopt: (c: Consensus) => void;
  /** A relay link to another authority. */
  linkTo: (identity: Uint8Array) => Promise<Link>;
  interval: number;
  srPeriod: number;
  /** How long a relay may go untested and still be voted for. */
  testIntervalMs: number;
  measures: boolean;
  thresholds?: FlagThresholds;
  /** Only these relays are voted for (empty: any), as Tor's approved-routers. */
  approved?: ReadonlySet<string>;
  dataDir: string | null;
  now: () => number;
  log: Logger;
}

interface Round {
  readonly votes: Map<string, Vote>;
  readonly parts: Map<string, { n: number; got: (Uint8Array | undefined)[] }>;
  head?: Uint8Array;
  entries?: ConsensusEntry[];
  digest?: string;
  readonly sigs: Map<string, Uint8Array>;
  readonly early: Map<string, { d: Uint8Array; s: Uint8Array }>;
  voted: boolean;
  published: boolean;
}

export class AuthorityService {
  private readonly rounds = new Map<number, Round>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private reveal: { pn: number; r: Uint8Array } | null = null;
  /** For status pages and tests. */
  lastPublished = 0;
  lastVoteSize = 0;

  constructor(private readonly o: AuthorityOptions) {}

  private get self(): string {
    return this.o.identity.fingerprint;
  }

  start(): void {
    if (this.timer) return;
    const tick = Math.max(25, Math.min(5_000, Math.floor(this.o.interval / 20)));
    this.timer = setInterval(() => this.tick(), tick);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  private round(va: number): Round {
    let r = this.rounds.get(va);
    if (!r) {
      r = { votes: new Map(), parts: new Map(), sigs: new Map(), early: new Map(), voted: false, published: false };
      this.rounds.set(va, r);
      for (const k of this.rounds.keys()) if (k < va - 3 * this.o.interval) this.rounds.delete(k);
    }
    return r;
  }

  tick(): void {
    if (this.stopped) return;
    const now = this.o.now();
    const iv = this.o.interval;
    const next = (Math.floor(now / iv) + 1) * iv;
    const r = this.round(next);
    try {
      if (!r.voted && now >= next - iv / 2) this.vote(next, r);
      if (!r.head && now >= next - iv / 4) this.compute(next, r);
      // The round that just began: publish once a majority signed the head we computed.
      const cur = next - iv;
      const c = this.rounds.get(cur);
      if (c && !c.published) this.tryPublish(cur, c);
    } catch (e) {
      this.o.log.warn({ err: e }, 'authority round failed');
    }
  }

  private others(): string[] {
    return [...this.o.authorities].filter((fp) => fp !== this.self);
  }

  private send(fp: string, msgs: ControlMessage[]): void {
    this.o.linkTo(parseFingerprint(fp)).then(
      (link) => {
        for (const m of msgs) if (link.isOpen) link.sendControl(m);
      },
      (e: unknown) => this.o.log.debug({ authority: fp.slice(0, 8), err: e }, 'authority unreachable'),
    );
  }

  /** This period's reveal, drawn once and kept on disk. */
  private revealFor(pn: number): Uint8Array {
    if (this.reveal?.pn === pn) return this.reveal.r;
    const file = this.o.dataDir ? join(this.o.dataDir, 'sr-state.json') : null;
    if (file && existsSync(file)) {
      try {
        const s = JSON.parse(readFileSync(file, 'utf8')) as { pn: number; reveal: string };
        if (s.pn === pn && /^[0-9a-f]{64}$/.test(s.reveal)) return (this.reveal = { pn, r: fromHex(s.reveal) }).r;
      } catch {
        /* a damaged state: a new reveal (this authority may have to sit this period out: its commit differs) */
      }
    }
    this.reveal = { pn, r: crypto().random(32) };
    if (file) writeFileAtomic(file, JSON.stringify({ pn, reveal: toHex(this.reveal.r) }) + '\n');
    return this.reveal.r;
  }

  /** The relays this authority votes for, with what it observed of each. */
  private observe(now: number): { d: Descriptor; obs: RelayObservation; m: number }[] {
    const approved = this.o.approved ?? new Set<string>();
    const out: { d: Descriptor; obs: RelayObservation; m: number }[] = [];
    for (const d of this.o.directory.all()) {
      if (approved.size > 0 && !approved.has(d.fingerprint)) continue;
      const f = this.o.history.figures(d.fingerprint, now);
      if (!f || !f.up || now - f.lastTest > 2 * this.o.testIntervalMs + this.o.interval) continue;
      const m = this.o.measures ? this.o.tester.measurementOf(d.fingerprint) : 0;
      const policy = parseExitPolicy(d.exit);
      out.push({
        d,
        m,
        obs: {
          capacity: m > 0 ? Math.min(m, d.bw) : Math.min(d.bw, UNMEASURED_CAP),
          known: f.known,
          wfu: f.wfu,
          mtbf: f.mtbf,
          uptime: f.uptime,
          exit: isExitPolicy(policy) && policyMightAllowPort(policy, 80) && policyMightAllowPort(policy, 443),
          store: d.caps.includes('store'),
          measured: m > 0,
        },
      });
    }
    // At most AUTHORITY_MAX_PER_ADDRESS relays per address: those known longest.
    const byHost = new Map<string, typeof out>();
    for (const x of out) {
      const h = hostOf(x.d);
      if (isLoopbackHost(h)) continue;
      let l = byHost.get(h);
      if (!l) byHost.set(h, (l = []));
      l.push(x);
    }
    const dropped = new Set<string>();
    for (const l of byHost.values()) {
      l.sort((a, b) => b.obs.known - a.obs.known || (a.d.fingerprint < b.d.fingerprint ? -1 : 1));
      for (const x of l.slice(AUTHORITY_MAX_PER_ADDRESS)) dropped.add(x.d.fingerprint);
    }
    return out.filter((x) => !dropped.has(x.d.fingerprint));
  }

  private vote(va: number, r: Round): void {
    r.voted = true;
    const now = this.o.now();
    const seen = this.observe(now);
    const flags = assignFlags(new Map(seen.map((x) => [x.d.fingerprint, x.obs])), this.o.thresholds ?? DEFAULT_FLAG_THRESHOLDS);
    const entries: VoteEntry[] = seen.map((x) => ({ id: x.d.id, md: descriptorMd(x.d), flags: flags.get(x.d.fingerprint)!, bw: x.d.bw, m: x.m }));
    const pn = srPeriodOf(va, this.o.srPeriod);
    const R = this.revealFor(pn);
    const { commitPhase } = srRound(va, this.o.srPeriod, this.o.interval);
    const raw = signVote(
      { authority: this.o.identity.publicKey, validAfter: va, measures: this.o.measures, commit: srCommit(R, pn), reveal: commitPhase ? null : R, entries },
      this.o.identity.secretKey,
    );
    this.lastVoteSize = raw.length;
    r.votes.set(this.self, verifyVote(raw, this.o.authorities));
    const n = Math.max(1, Math.ceil(raw.length / VOTE_PART_BYTES));
    const parts: ControlMessage[] = [];
    for (let i = 0; i < n; i++) parts.push({ t: 'vote-part', va, i, n, b: raw.subarray(i * VOTE_PART_BYTES, (i + 1) * VOTE_PART_BYTES) });
    for (const fp of this.others()) this.send(fp, parts);
  }

  private compute(va: number, r: Round): void {
    if (r.votes.size < majorityOf(this.o.authorities.size)) return;
    const prev = this.o.current();
    const before = prev && prev.validAfter < va ? prev.sr : null;
    const { head, entries } = computeConsensus([...r.votes.values()], before, {
      validAfter: va,
      interval: this.o.interval,
      srPeriod: this.o.srPeriod,
      authorities: this.o.authorities,
    });
    r.head = head;
    r.entries = entries;
    r.digest = toHex(headDigest(head));
    const s = signHead(head, this.o.identity.secretKey);
    r.sigs.set(this.self, s);
    for (const [fp, x] of r.early) this.takeSig(r, fp, x.d, x.s);
    r.early.clear();
    const d = headDigest(head);
    for (const fp of this.others()) this.send(fp, [{ t: 'consensus-sig', va, d, s }]);
  }

  private takeSig(r: Round, fp: string, d: Uint8Array, s: Uint8Array): void {
    if (!r.head || toHex(d) !== r.digest) return; // signed another head: it saw other votes
    if (headSignatureValid(r.head, parseFingerprint(fp), s)) r.sigs.set(fp, s);
  }

  private tryPublish(va: number, r: Round): void {
    if (!r.head || !r.entries || r.sigs.size < majorityOf(this.o.authorities.size)) return;
    r.published = true;
    const signed = encodeSignedHead(
      r.head,
      [...r.sigs].map(([fp, s]) => [parseFingerprint(fp), s] as const),
    );
    const c = checkEntries(readHead(r.head, signed, [...r.sigs.keys()].sort()), r.entries);
    this.lastPublished = va;
    this.o.log.info({ validAfter: new Date(va).toISOString(), relays: c.count, signatures: r.sigs.size }, 'consensus published');
    this.o.adopt(c);
  }

  /** A `vote-part` or `consensus-sig` from a relay link (specs/directory.md §7.1–§7.2). */
  onMessage(link: Link, m: Extract<ControlMessage, { t: 'vote-part' | 'consensus-sig' }>): void {
    const id = link.peer?.identity;
    if (!id) return;
    const fp = toHex(id);
    if (fp === this.self || !this.o.authorities.has(fp)) return; // only the other authorities vote
    const now = this.o.now();
    const iv = this.o.interval;
    if (m.va < now - iv || m.va > now + 2 * iv || m.va % iv !== 0) return;
    const r = this.round(m.va);
    if (m.t === 'consensus-sig') {
      if (r.head) this.takeSig(r, fp, m.d, m.s);
      else r.early.set(fp, { d: m.d, s: m.s });
      if (!r.published && now >= m.va) this.tryPublish(m.va, r);
      return;
    }
    if (r.votes.has(fp) || m.i >= m.n) return;
    let p = r.parts.get(fp);
    if (!p || p.n !== m.n) r.parts.set(fp, (p = { n: m.n, got: new Array<Uint8Array | undefined>(m.n) }));
    p.got[m.i] = Uint8Array.from(m.b);
    if (p.got.some((x) => x === undefined)) return;
    r.parts.delete(fp);
    const total = p.got.reduce((s, x) => s + x!.length, 0);
    const raw = new Uint8Array(total);
    let o = 0;
    for (const x of p.got) {
      raw.set(x!, o);
      o += x!.length;
    }
    try {
      const v = verifyVote(raw, this.o.authorities);
      if (v.fingerprint !== fp || v.validAfter !== m.va) throw new Error('a vote from another authority or for another time');
      r.votes.set(fp, v);
    } catch (e) {
      this.o.log.info({ authority: fp.slice(0, 8), err: e }, 'refused a vote');
    }
  }

  status(): Record<string, unknown> {
    return {
      lastPublished: this.lastPublished ? new Date(this.lastPublished).toISOString() : null,
      voteBytes: this.lastVoteSize,
      measured: this.o.tester.measuredCount,
      history: this.o.history.size,
    };
  }
}

/** An authority's parts: its history, the reachability tester and measurer, and the voting service. */
export interface AuthorityParts {
  history: RelayHistory;
  tester: ReachabilityTester;
  service: AuthorityService;
}

/**
 * An authority's parts, from the relay's configuration: its history (authority-history.json), the reachability
 * tester and measurer, and the voting service. The relay node starts them after its overlay (relay/node.ts).
 */
export function createAuthority(o: {
  config: RelayConfig;
  /** Where the history and the shared-random state are kept (null: in memory only). */
  stateDir: string | null;
  identity: IdentityKey;
  authorities: ReadonlySet<string>;
  directory: DirectoryStore;
  overlay: Pick<Overlay, 'linkTo' | 'adoptConsensus' | 'consensus'>;
  dial: (url: string, identity: Uint8Array) => Promise<Link>;
  circuits: CircuitTable;
  now: () => number;
  log: Logger;
}): AuthorityParts {
  const cfg = o.config;
  const t = cfg.timing;
  const f = cfg.authority_flags;
  const history = o.stateDir ? RelayHistory.inDir(o.stateDir) : new RelayHistory(null);
  const tester = new ReachabilityTester({
    directory: o.directory,
    history,
    prove: (d) => o.dial(d.addr, d.id),
    ...(cfg.authority_measure
      ? {
          measure: (d: Descriptor) =>
            o.overlay.linkTo(d.id).then((link) => measureRelay(link, o.circuits, d, { durationMs: t.measurement_duration, now: o.now })),
        }
      : {}),
    testIntervalMs: t.reachability_interval,
    measureIntervalMs: t.measurement_interval,
    now: o.now,
    onMeasureFailed: (d, failures, retryMs, err) =>
      o.log.info({ relay: d.fingerprint.slice(0, 8), failures, retryMs, err }, 'measurement failed: trying again sooner'),
  });
  const service = new AuthorityService({
    identity: o.identity,
    authorities: o.authorities,
    directory: o.directory,
    history,
    tester,
    current: (): ConsensusDoc | null => o.overlay.consensus.current,
    adopt: (c) => void o.overlay.adoptConsensus(c),
    linkTo: (id) => o.overlay.linkTo(id),
    interval: t.consensus_interval,
    srPeriod: t.sr_period,
    testIntervalMs: t.reachability_interval,
    measures: cfg.authority_measure,
    thresholds: {
      fastMin: f.fast_min,
      stableMtbf: f.stable_mtbf,
      guardMinKnown: f.guard_min_known,
      guardMinWfu: f.guard_min_wfu,
      guardBwGuarantee: f.guard_bw_guarantee,
      holderMinUptime: f.holder_min_uptime,
      dirMinKnown: f.dir_min_known,
    },
    approved: new Set(cfg.authority_approved.map((x) => x.toLowerCase())),
    dataDir: o.stateDir,
    now: o.now,
    log: o.log,
  });
  return { history, tester, service };
}
