/**
 * Anonymity audit of path selection (docs/anonymity-audit.md): the client's own code — `choosePath` and `networkOf`
 * / `sameFamily` (client/path.ts), `GuardSet` (client/guards.ts), the directory cross-check (client/directory.ts) —
 * run on a synthetic directory of real signed descriptors (protocol/descriptor.ts), against an adversary that holds a
 * fraction f of the relays or of the bandwidth.
 *
 * Everything follows from one seed: relay keys come from the seeded byte generator (crypto/drbg.ts), every other
 * draw from a small seeded generator (sfc32), so a run is reproducible bit for bit. Nothing here is a model of the
 * client: the paths and guards are the ones the client would choose given the same directory and random numbers.
 * The one shortcut (a client-day whose usable guards are all honest cannot give the adversary an entry, because
 * choosePath never falls back from guards; specs/path.md §2.3) is checked on a sample of those days.
 */
import { crypto } from '../crypto/index.js';
import { seededRandom } from '../crypto/drbg.js';
import { IdentityKey } from '../crypto/keys.js';
import { crossCheck } from '../client/directory.js';
import { GuardSet } from '../client/guards.js';
import { allowsExit, choosePath, networkOf, sameFamily } from '../client/path.js';
import { signDescriptor, type Descriptor } from '../protocol/descriptor.js';
import { isExitPolicy, parseExitPolicy } from '../protocol/exit-policy.js';

export const DAY_MS = 24 * 3600 * 1000;
/** Simulated start (fixed, so descriptors verify the same way on every run). */
export const T0 = Date.UTC(2026, 0, 1);

// ---------------------------------------------------------------------------------------------------------------
// Seeded numbers

/** A uniform [0, 1) generator (sfc32) seeded from BLAKE2b of `seed`. Not for keys: for simulation draws only. */
export function uniform(seed: string): () => number {
  const s = crypto().hash(16, new TextEncoder().encode(seed));
  const v = new DataView(s.buffer, s.byteOffset, 16);
  let a = v.getUint32(0);
  let b = v.getUint32(4);
  let c = v.getUint32(8);
  let d = v.getUint32(12) | 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** Pareto(x_m, alpha), capped: a heavy-tailed bandwidth draw. */
export function pareto(random: () => number, xm: number, alpha: number, cap: number): number {
  return Math.min(cap, Math.round(xm / Math.pow(1 - random(), 1 / alpha)));
}

/** Wilson score interval (95 %) for `hits` out of `n`. */
export function wilson(hits: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const p = hits / n;
  const den = 1 + (z * z) / n;
  const centre = p + (z * z) / (2 * n);
  const half = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, (centre - half) / den), Math.min(1, (centre + half) / den)];
}

// ---------------------------------------------------------------------------------------------------------------
// The synthetic network

/** Bandwidth distribution of honest relays (bytes per second): Pareto with x_m 250 kB/s, alpha 1.3, cap 125 MB/s. */
export const BW = { xm: 250_000, alpha: 1.3, cap: 125_000_000 } as const;
/** Uptime of honest relays: most are up nearly every day, a quarter come and go. */
export const UPTIME = { stableShare: 0.75, stable: 0.995, flakyMin: 0.7, flakyMax: 0.98 } as const;
/** Share of honest relays that are exits, and the policies they publish (first allows 443, second all, third not). */
export const EXIT_SHARE = 0.22;
const EXIT_POLICIES: readonly (readonly string[])[] = [
  ['accept *:80', 'accept *:443', 'reject *:*'],
  ['accept *:*'],
  ['accept *:22', 'accept *:6667', 'reject *:*'],
];
/** Honest relays in popular hosting networks (a few /16s hold many relays), the rest anywhere. */
const HOSTING_SHARE = 0.35;
const HOSTING_NETS = 25;
/** Share of honest relays run by operators with several relays (declared families of 2 to 6). */
const FAMILY_SHARE = 0.15;

export interface RelaySpec {
  label: string;
  bw: number;
  exit: readonly string[];
  net: [number, number];
  /** Index of the family (relays with the same family index declare each other). */
  family: number | null;
  /** Probability that the relay is in a given day's directory. */
  availability: number;
}

export interface HonestNetworkOptions {
  honest: number;
  seed: string;
}

/** The honest relays: heavy-tailed bandwidth, some exits, clustered networks, some families, mixed uptime. */
export function honestSpecs(o: HonestNetworkOptions): RelaySpec[] {
  const r = uniform(`${o.seed}/honest`);
  const hosting = Array.from({ length: HOSTING_NETS }, () => [11 + Math.floor(r() * 180), Math.floor(r() * 256)] as [number, number]);
  const specs: RelaySpec[] = [];
  let family = 0;
  while (specs.length < o.honest) {
    const size = r() < FAMILY_SHARE / 3 ? 2 + Math.floor(r() * 5) : 1;
    const net: [number, number] =
      r() < HOSTING_SHARE ? hosting[Math.floor(Math.pow(r(), 2) * HOSTING_NETS)]! : [11 + Math.floor(r() * 180), Math.floor(r() * 256)];
    const isExit = r() < EXIT_SHARE;
    const policy = isExit ? EXIT_POLICIES[r() < 0.6 ? 0 : r() < 0.75 ? 1 : 2]! : ['reject *:*'];
    const stable = r() < UPTIME.stableShare;
    for (let k = 0; k < size && specs.length < o.honest; k++) {
      specs.push({
        label: `h${specs.length}`,
        bw: pareto(r, BW.xm, BW.alpha, BW.cap),
        exit: policy,
        net,
        family: size > 1 ? family : null,
        availability: stable ? UPTIME.stable : UPTIME.flakyMin + r() * (UPTIME.flakyMax - UPTIME.flakyMin),
      });
    }
    if (size > 1) family++;
  }
  return specs;
}

export type AdversaryKind = 'relays' | 'bandwidth' | 'sybil' | 'sybil-one-net';

export const ADVERSARY_KINDS: readonly AdversaryKind[] = ['relays', 'bandwidth', 'sybil', 'sybil-one-net'];

/** Adversary relays for a fraction `f` of the relays (by count) or of the bandwidth, always up. */
export function adversarySpecs(kind: AdversaryKind, f: number, honest: readonly RelaySpec[], seed: string): RelaySpec[] {
  const r = uniform(`${seed}/adversary/${kind}/${f}`);
  const spread = (): [number, number] => [191 + Math.floor(r() * 32), Math.floor(r() * 256)];
  const count = Math.round((f / (1 - f)) * honest.length);
  const out: RelaySpec[] = [];
  if (kind === 'bandwidth') {
    const honestBw = honest.reduce((s, h) => s + Math.max(1, h.bw), 0);
    const total = (f / (1 - f)) * honestBw;
    const n = Math.max(2, Math.ceil(f * 40));
    for (let i = 0; i < n; i++) out.push({ label: `a${i}`, bw: Math.round(total / n), exit: ['accept *:*'], net: spread(), family: null, availability: 1 });
    return out;
  }
  const sorted = honest.map((h) => h.bw).sort((a, b) => a - b);
  for (let i = 0; i < count; i++) {
    if (kind === 'relays') {
      // One relay at each of `count` evenly spaced quantiles, exits spread evenly among them: a representative
      // sample rather than a lucky or unlucky draw from a heavy tail.
      const bw = sorted[Math.min(sorted.length - 1, Math.floor(((i + 0.5) / count) * sorted.length))]!;
      const exit = Math.floor((i + 1) * EXIT_SHARE) > Math.floor(i * EXIT_SHARE) ? EXIT_POLICIES[0]! : ['reject *:*'];
      out.push({ label: `a${i}`, bw, exit, net: spread(), family: null, availability: 1 });
    } else {
      const net: [number, number] = kind === 'sybil-one-net' ? [198, 51] : spread();
      out.push({ label: `a${i}`, bw: 20_000, exit: ['accept *:*'], net, family: null, availability: 1 });
    }
  }
  return out;
}

/** Nickname prefix of the honest relays (adversary relays: "a<kind>-<f in per mille>-"). */
export const HONEST_PREFIX = 'h-';

/** Signed descriptors for `specs`, keys from the seed; families declared by both sides; published at `pubOf(i)` (T0), for 3 hours. */
export function signSpecs(specs: readonly RelaySpec[], seed: string, prefix: string, pubOf: (i: number) => number = () => T0): Uint8Array[] {
  return signSpecDescriptors(specs, seed, prefix, pubOf).map((d) => d.raw);
}

/** signSpecs, as parsed descriptors (the signer's own: no signature check). */
/** `onionEpochOf`: which onion key relay i's descriptor names (a new number, a new key: a rotation); 0 by default. */
export function signSpecDescriptors(
  specs: readonly RelaySpec[],
  seed: string,
  prefix: string,
  pubOf: (i: number) => number = () => T0,
  onionEpochOf: (i: number) => number = () => 0,
): Descriptor[] {
  const keys = specs.map((s) => IdentityKey.fromSeed(seededRandom(`${seed}/${prefix}/${s.label}/identity`)(32)));
  const families = new Map<number, Uint8Array[]>();
  specs.forEach((s, i) => {
    if (s.family !== null) families.set(s.family, [...(families.get(s.family) ?? []), keys[i]!.publicKey]);
  });
  return specs.map((s, i) => {
    const key = keys[i]!;
    const family = s.family === null ? [] : families.get(s.family)!.filter((id) => id !== key.publicKey);
    const host = `${s.net[0]}.${s.net[1]}.${(i * 7) & 255}.${1 + (i % 250)}`;
    return signDescriptor(
      {
        id: key.publicKey,
        onion: crypto().x25519Keypair(seededRandom(`${seed}/${prefix}/${s.label}/onion${onionEpochOf(i) ? `/${onionEpochOf(i)}` : ''}`)(32)).publicKey,
        addr: `ws://${host}:443/allium`,
        nick: `${prefix}${s.label}`,
        contact: '',
        family,
        bw: s.bw,
        exit: [...s.exit],
        caps: ['store'],
        pub: pubOf(i),
        exp: pubOf(i) + 3 * 3600_000,
      },
      key.secretKey,
    );
  });
}

export interface Population {
  readonly kind: AdversaryKind;
  readonly f: number;
  /** The directory as a client accepts it (cross-checked from three sources, every signature verified). */
  readonly relays: readonly Descriptor[];
  readonly adversary: ReadonlySet<string>;
  readonly availability: ReadonlyMap<string, number>;
  /** Realised shares of the adversary: of relays, of bandwidth, of the bandwidth of exits allowing port 443. */
  readonly share: { relays: number; bandwidth: number; exitBandwidth: number };
}

/** Honest relays plus the adversary's, as the client's directory holds them. */
export function population(
  kind: AdversaryKind,
  f: number,
  honest: readonly RelaySpec[],
  honestRaws: readonly Uint8Array[],
  seed: string,
  port: number,
): Population {
  const adv = adversarySpecs(kind, f, honest, seed);
  const prefix = `a${ADVERSARY_KINDS.indexOf(kind)}-${Math.round(f * 1000)}-`;
  const advRaws = signSpecs(adv, seed, prefix);
  const raws = [...honestRaws, ...advRaws];
  const { accepted } = crossCheck([raws, raws, raws], T0);
  const advFps = new Set(accepted.filter((d) => d.nick.startsWith(prefix)).map((d) => d.fingerprint));
  const availability = new Map<string, number>();
  const specByNick = new Map<string, RelaySpec>();
  honest.forEach((s) => specByNick.set(`${HONEST_PREFIX}${s.label}`, s));
  adv.forEach((s) => specByNick.set(`${prefix}${s.label}`, s));
  for (const d of accepted) availability.set(d.fingerprint, specByNick.get(d.nick)?.availability ?? 1);
  // Deterministic order (the cross-check returns relays in the order they were first seen, which is ours, but keep it explicit).
  const relays = [...accepted].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  const w = (d: Descriptor): number => Math.max(1, d.bw);
  const exits = relays.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, port));
  const sum = (xs: readonly Descriptor[]): number => xs.reduce((s, d) => s + w(d), 0);
  return {
    kind,
    f,
    relays,
    adversary: advFps,
    availability,
    share: {
      relays: advFps.size / relays.length,
      bandwidth: sum(relays.filter((d) => advFps.has(d.fingerprint))) / sum(relays),
      exitBandwidth: sum(exits.filter((d) => advFps.has(d.fingerprint))) / sum(exits),
    },
  };
}

/** Top-decile share of honest bandwidth (how heavy the tail is). */
export function topDecileShare(specs: readonly RelaySpec[]): number {
  const bws = specs.map((s) => Math.max(1, s.bw)).sort((a, b) => b - a);
  const total = bws.reduce((s, x) => s + x, 0);
  return bws.slice(0, Math.ceil(bws.length / 10)).reduce((s, x) => s + x, 0) / total;
}

// ---------------------------------------------------------------------------------------------------------------
// Circuits

function related(a: Descriptor, b: Descriptor): boolean {
  return a.fingerprint === b.fingerprint || sameFamily(a, b) || networkOf(a) === networkOf(b);
}

/**
 * The probability that first and last hop are both the adversary's, computed from the weights choosePath uses
 * (last hop weighted among exits allowing `port`; entry weighted among relays not related to it). A cross-check of
 * the measurement, not a substitute for it.
 */
export function predictedEndToEnd(pop: Population, port: number): { both: number; entry: number; exit: number } {
  const w = (d: Descriptor): number => Math.max(1, d.bw);
  const exits = pop.relays.filter((d) => isExitPolicy(parseExitPolicy(d.exit)) && allowsExit(d, port));
  const exitTotal = exits.reduce((s, d) => s + w(d), 0);
  let both = 0;
  let entry = 0;
  let exit = 0;
  for (const x of exits) {
    const px = w(x) / exitTotal;
    let all = 0;
    let adv = 0;
    for (const e of pop.relays) {
      if (related(e, x)) continue;
      all += w(e);
      if (pop.adversary.has(e.fingerprint)) adv += w(e);
    }
    const pe = all > 0 ? adv / all : 0;
    entry += px * pe;
    if (pop.adversary.has(x.fingerprint)) {
      exit += px;
      both += px * pe;
    }
  }
  return { both, entry, exit };
}

export interface CircuitCount {
  circuits: number;
  /** First and last hop both the adversary's. */
  both: number;
  entry: number;
  exit: number;
}

/** Builds `n` three-hop paths to `port` with no guards (a fresh entry per circuit) and counts what the adversary holds. */
export function measureCircuits(pop: Population, n: number, port: number, seed: string): CircuitCount {
  const random = uniform(`${seed}/circuits/${pop.kind}/${pop.f}`);
  const out: CircuitCount = { circuits: n, both: 0, entry: 0, exit: 0 };
  for (let i = 0; i < n; i++) {
    const path = choosePath(pop.relays, { hops: 3, exitPort: port, guards: [], enforceDistinctSubnets: true, random });
    const e = pop.adversary.has(path[0]!.fingerprint);
    const x = pop.adversary.has(path[path.length - 1]!.fingerprint);
    if (e) out.entry++;
    if (x) out.exit++;
    if (e && x) out.both++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Clients over months

export interface ClientRunOptions {
  clients: number;
  days: number;
  circuitsPerDay: number;
  /** Allium's guards (client/guards.ts), or a fresh weighted entry for every circuit. */
  guards: boolean;
  port: number;
  seed: string;
  /** Check the guard shortcut on one in this many honest-guard client-days (default 20). */
  verifyEvery?: number;
  /** Distinguishes the random streams of runs that share the other options. */
  label?: string;
}

export interface ClientRunResult {
  clients: number;
  days: number;
  circuitsPerDay: number;
  guards: boolean;
  /** compromised[d]: fraction of clients with a compromised circuit on day d or before. */
  compromised: number[];
  /** Mean number of distinct relays each client listed as a guard over the run (guards only). */
  meanGuardsListed: number;
  /** Circuits path selection actually ran (the rest were honest-guard days). */
  pathsRun: number;
  /** Honest-guard days on which a path was built to check that its entry was a usable guard. */
  shortcutChecks: number;
  /** Circuits for which path selection found no path (ERR_ONION_PATH: no usable guard compatible with the exit). */
  pathFailures: number;
}

/** choosePath, or null when the directory cannot satisfy the constraints (the client would fail that circuit). */
function tryPath(relays: readonly Descriptor[], guards: readonly Descriptor[], port: number, random: () => number): Descriptor[] | null {
  try {
    return choosePath(relays, { hops: 3, exitPort: port, guards, enforceDistinctSubnets: true, random });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_ONION_PATH') return null;
    throw e;
  }
}

/**
 * The directory of each day: with churn, honest relays present with their availability and adversary relays
 * always (the adversary keeps its relays up); without, every relay every day.
 */
export function dailyDirectories(pop: Population, days: number, seed: string, churn = true): (readonly Descriptor[])[] {
  if (!churn) return Array.from({ length: days }, () => pop.relays);
  const random = uniform(`${seed}/days/${pop.kind}/${pop.f}`);
  return Array.from({ length: days }, () => pop.relays.filter((d) => random() < (pop.availability.get(d.fingerprint) ?? 1)));
}

/**
 * Simulates `clients` clients for `days` days, each building `circuitsPerDay` circuits a day through the real path
 * selection (and, with guards, the real GuardSet refreshed against each day's directory). Records the first day on
 * which a client's circuit had both ends at the adversary.
 */
export async function simulateClients(pop: Population, directories: readonly (readonly Descriptor[])[], o: ClientRunOptions): Promise<ClientRunResult> {
  const first: number[] = [];
  const verifyEvery = o.verifyEvery ?? 20;
  let listedTotal = 0;
  let pathsRun = 0;
  let shortcutChecks = 0;
  let honestDays = 0;
  let pathFailures = 0;
  for (let c = 0; c < o.clients; c++) {
    const random = uniform(`${o.seed}/client/${pop.kind}/${pop.f}/${o.guards ? 'guards' : 'none'}/${o.label ?? ''}/${c}`);
    const guardSet = new GuardSet(null, random);
    const listed = new Set<string>();
    let compromisedOn = -1;
    for (let day = 0; day < o.days && compromisedOn < 0; day++) {
      const dir = directories[day]!;
      const now = T0 + day * DAY_MS + Math.floor(random() * DAY_MS);
      let guards: Descriptor[] = [];
      if (o.guards) {
        guards = await guardSet.refresh(dir, now);
        for (const r of guardSet.all) listed.add(r.fingerprint);
        if (guards.length > 0 && guards.every((g) => !pop.adversary.has(g.fingerprint))) {
          // No usable guard is the adversary's, and choosePath takes the entry only from the usable guards.
          if (honestDays++ % verifyEvery === 0) {
            shortcutChecks++;
            const path = tryPath(dir, guards, o.port, random);
            if (path && !guards.includes(path[0]!)) throw new Error('path selection fell back from the guards: the shortcut does not hold');
          }
          continue;
        }
      }
      for (let k = 0; k < o.circuitsPerDay; k++) {
        pathsRun++;
        const path = tryPath(dir, guards, o.port, random);
        if (!path) {
          pathFailures++;
          continue;
        }
        if (pop.adversary.has(path[0]!.fingerprint) && pop.adversary.has(path[path.length - 1]!.fingerprint)) {
          compromisedOn = day;
          break;
        }
      }
    }
    // Guards listed over the whole period, also after a compromise (the guard list does not depend on circuits).
    if (o.guards && compromisedOn >= 0) {
      for (let day = compromisedOn + 1; day < o.days; day++) {
        await guardSet.refresh(directories[day]!, T0 + day * DAY_MS);
        for (const r of guardSet.all) listed.add(r.fingerprint);
      }
    }
    listedTotal += listed.size;
    first.push(compromisedOn);
  }
  const compromised = Array.from({ length: o.days }, (_, d) => first.filter((x) => x >= 0 && x <= d).length / o.clients);
  return {
    clients: o.clients,
    days: o.days,
    circuitsPerDay: o.circuitsPerDay,
    guards: o.guards,
    compromised,
    meanGuardsListed: o.guards ? listedTotal / o.clients : 0,
    pathsRun,
    shortcutChecks,
    pathFailures,
  };
}
