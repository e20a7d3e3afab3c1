/**
 * Path selection (specs/path.md): distinct relays, never two from one declared family or one network (/16 for
 * IPv4, /32 for IPv6, the host name otherwise), each chosen with probability proportional to its weight for its
 * position (the consensus's measured weight times the position weight of its class; protocol/view.ts), an exit
 * whose policy allows the target, and the entry taken from the client's guards.
 *
 * Families: relays declare the identities of their operator's other relays. Two relays are treated as one family
 * when either lists the other (stricter than requiring both to agree, so an operator who forgets one side is still
 * kept apart).
 */
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { AlliumError, isAlliumError } from '../protocol/errors.js';
import { isExitPolicy, parseExitPolicy, policyAllows, policyMightAllowPort, type ExitPolicy } from '../protocol/exit-policy.js';
import { MAX_HOPS } from '../protocol/constants.js';
import { networkOf, sameFamily } from '../protocol/relay-network.js';
import { servicePointEligible, type SelectionWeights } from '../protocol/view.js';
import type { Position } from '../protocol/weights.js';

export interface PathOptions {
  hops: number;
  /** Target port (for choosing an exit); null for a circuit with no exit requirement (content, rendezvous). */
  exitPort: number | null;
  /** Target IP address if known, for an exact policy check. */
  exitAddress?: string;
  /** Entry candidates in order of preference (the client's guards); empty = any relay. */
  guards: readonly Descriptor[];
  /** Keep relays in one /16 apart (off only on test networks where every relay is on 127.0.0.1). */
  enforceDistinctSubnets: boolean;
  /** Relays never to use (failed recently). */
  exclude?: ReadonlySet<string>;
  /** A relay that must be the last hop (rendezvous points, introduction points, content holders). */
  last?: Descriptor;
  /**
   * Weights and flags by position (protocol/view.ts): the consensus's measured weights and position weights, or
   * capped claims without authorities. Absent: advertised bandwidth as is (tests and benchmarks only).
   */
  weights?: SelectionWeights;
  /**
   * An endpoint circuit (specs/path.md §3.2): the second hop is one of these vanguards, never a fresh relay, and at
   * least one fresh middle follows it before the last hop.
   */
  vanguards?: readonly Descriptor[];
  random?: () => number;
}

export { networkOf, sameFamily } from '../protocol/relay-network.js';

/** Whether `d` may join a path holding `path`: not one of them, not of a family with one, and (with `subnets`) not in one's network (§2.1). */
export function compatible(path: readonly Descriptor[], d: Descriptor, subnets: boolean): boolean {
  for (const p of path) {
    if (p.fingerprint === d.fingerprint) return false;
    if (sameFamily(p, d)) return false;
    if (subnets && networkOf(p) === networkOf(d)) return false;
  }
  return true;
}

/** A relay's weight for a position: from `weights` when given, else its advertised bandwidth (at least 1). */
export function weightFor(d: Descriptor, position: Position, weights?: SelectionWeights): number {
  return weights ? weights.weight(d, position) : Math.max(1, d.bw);
}

/**
 * Picks one descriptor with probability proportional to its weight for `position` (relays of weight 0 never).
 * Without `weights`, the weight is the advertised bandwidth (at least 1).
 */
export function weightedPick(
  list: readonly Descriptor[],
  random: () => number,
  position: Position = 'middle',
  weights?: SelectionWeights,
): Descriptor | undefined {
  if (list.length === 0) return undefined;
  let total = 0;
  const ws = list.map((d) => weightFor(d, position, weights));
  for (const w of ws) total += w;
  if (total <= 0) return undefined;
  let r = random() * total;
  let lastPositive: Descriptor | undefined;
  for (let i = 0; i < list.length; i++) {
    if (ws[i]! <= 0) continue;
    lastPositive = list[i];
    r -= ws[i]!;
    if (r < 0) return list[i];
  }
  return lastPositive;
}

/** What choosing an introduction or rendezvous point reads: the usable relays with their weights and flags. */
export interface ServicePointView extends SelectionWeights {
  readonly relays: readonly Descriptor[];
}

/**
 * Picks an introduction or rendezvous point (specs/messaging.md §8, directory.md §6.6): a relay offering the
 * capability, Fast and Stable when the view has a consensus, not in `exclude`, drawn with probability proportional to
 * its middle-position weight — never uniformly by count, which whoever runs the most relays would win. Undefined when
 * none is eligible.
 */
export function pickServicePoint(
  view: ServicePointView,
  capability: 'intro' | 'rendezvous',
  exclude: ReadonlySet<string>,
  random: () => number = () => crypto().uniform(),
): Descriptor | undefined {
  const candidates = view.relays.filter((d) => !exclude.has(d.fingerprint) && servicePointEligible(d, capability, view));
  return weightedPick(candidates, random, 'middle', view);
}

/**
 * Parsed exit policies, by the descriptor's policy lines: descriptors do not change, and path selection checks the
 * policy of every relay in the directory for every circuit (parsing each line, addresses included, every time cost
 * more than the rest of choosing a path).
 */
const parsedPolicies = new WeakMap<readonly string[], ExitPolicy>();

function exitPolicyOf(d: Descriptor): ExitPolicy {
  let p = parsedPolicies.get(d.exit);
  if (!p) parsedPolicies.set(d.exit, (p = parseExitPolicy(d.exit)));
  return p;
}

export function allowsExit(d: Descriptor, port: number, address?: string): boolean {
  const policy = exitPolicyOf(d);
  return address ? policyAllows(policy, address, port) : policyMightAllowPort(policy, port);
}

/**
 * Chooses a path. Throws ERR_ONION_PATH when the directory cannot satisfy the constraints (the message says
 * which one).
 */
export function choosePath(relays: readonly Descriptor[], o: PathOptions): Descriptor[] {
  if (o.hops < 1 || o.hops > MAX_HOPS) throw new AlliumError('ERR_ONION_PATH', `hops must be 1..${MAX_HOPS}`);
  const random = o.random ?? (() => crypto().uniform());
  const usable = relays.filter((d) => !o.exclude?.has(d.fingerprint));
  const path: Descriptor[] = [];

  const exitsFor = (): Descriptor[] =>
    o.exitPort === null ? usable : usable.filter((d) => isExitPolicy(exitPolicyOf(d)) && allowsExit(d, o.exitPort!, o.exitAddress));
  // The last hop of an internal circuit (no exit port: content, introduction, rendezvous) is weighted as a middle, as
  // Tor does for internal circuits: exit weights would leave out every relay that does not exit (specs/path.md §3).
  const lastPosition: Position = o.exitPort === null ? 'middle' : 'exit';
  const noExit = (): AlliumError => new AlliumError('ERR_ONION_PATH', o.exitPort === null ? 'directory is empty' : `no exit allows port ${o.exitPort}`);
  const guards = o.guards.filter((g) => !o.exclude?.has(g.fingerprint));
  let last: Descriptor | undefined = o.last;
  let entry: Descriptor | undefined;

  if (o.hops === 1) {
    last ??= weightedPick(exitsFor(), random, lastPosition, o.weights);
    if (!last) throw noExit();
    return [last];
  }
  if (guards.length > 0) {
    // The entry first, from the guards in order: the first guard for which a last hop exists, and the last hop among
    // those compatible with it, so that the first guard carries every circuit it can (specs/path.md §2.3).
    const exits = last ? null : exitsFor();
    if (exits && exits.length === 0) throw noExit();
    for (const g of guards) {
      if (last) {
        if (compatible([last], g, o.enforceDistinctSubnets)) entry = g;
      } else {
        const x = weightedPick(
          exits!.filter((d) => compatible([g], d, o.enforceDistinctSubnets)),
          random,
          lastPosition,
          o.weights,
        );
        if (x) {
          entry = g;
          last = x;
        }
      }
      if (entry) break;
    }
    if (!entry) throw new AlliumError('ERR_ONION_PATH', last ? 'no guard is compatible with the chosen last hop' : 'no last hop is compatible with any guard');
  } else {
    // Guards that failed recently are not replaced by arbitrary entries: that would spread this client's first hops
    // over the network, the exposure guards exist to prevent (the caller may try again without the exclusions).
    if (o.guards.length > 0) throw new AlliumError('ERR_ONION_PATH', 'every guard failed recently');
    last ??= weightedPick(exitsFor(), random, lastPosition, o.weights);
    if (!last) throw noExit();
    entry = weightedPick(
      usable.filter((d) => compatible([last!], d, o.enforceDistinctSubnets)),
      random,
      'guard',
      o.weights,
    );
  }
  if (!entry || !last) throw new AlliumError('ERR_ONION_PATH', 'no entry relay compatible with the last hop');
  path.push(entry);

  let middles = o.hops - 2;
  if (o.vanguards) {
    // Checked against the last hop by identity only: the adversary chooses the last hop of a rendezvous circuit, and
    // one declaring every honest relay its family would otherwise push the endpoint off all its vanguards.
    const v = o.vanguards.filter(
      (d) => !o.exclude?.has(d.fingerprint) && d.fingerprint !== last!.fingerprint && compatible([entry!], d, o.enforceDistinctSubnets),
    );
    if (v.length === 0) throw new AlliumError('ERR_ONION_PATH', 'no vanguard is usable with this guard and last hop');
    path.push(v[Math.floor(random() * v.length)]!);
    middles = Math.max(1, middles);
  }
  const total = path.length + middles + 1;
  for (let i = 0; i < middles; i++) {
    const mid = weightedPick(
      usable.filter((d) => compatible([...path, last!], d, o.enforceDistinctSubnets)),
      random,
      'middle',
      o.weights,
    );
    if (!mid) throw new AlliumError('ERR_ONION_PATH', `not enough distinct relays for ${total} hops`);
    path.push(mid);
  }
  path.push(last);
  return path;
}

/**
 * One attempt's choice with its fallbacks (specs/path.md §3 SampleForLastHop, §5): ChoosePath with `o.exclude`; when
 * no path fits, the failed relays are tried again; when there is still none, `sampleGuard` may add a guard (it
 * returns whether it did, having updated `o.guards`), and the path through it is chosen with the failed relays
 * excluded again — cleared once more only if that leaves no path. Returns the path, or the last ERR_ONION_PATH.
 */
export async function choosePathWithFallbacks(
  relays: readonly Descriptor[],
  o: PathOptions & { exclude: Set<string> },
  sampleGuard: () => Promise<boolean>,
): Promise<Descriptor[] | AlliumError> {
  const choose = (): Descriptor[] | AlliumError => {
    try {
      return choosePath(relays, o);
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_ONION_PATH') return e;
      throw e;
    }
  };
  const exclude = o.exclude;
  const failed = [...exclude];
  let path = choose();
  if (path instanceof AlliumError && exclude.size > 0) {
    exclude.clear();
    path = choose();
  }
  if (path instanceof AlliumError && (await sampleGuard())) {
    for (const fp of failed) exclude.add(fp);
    path = choose();
    if (path instanceof AlliumError && exclude.size > 0) {
      exclude.clear();
      path = choose();
    }
  }
  return path;
}
