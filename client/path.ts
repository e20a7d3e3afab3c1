/**
 * Path selection (specs/path.md): distinct relays, never two from one declared family or one network (/16 for
 * IPv4, /32 for IPv6, the host name otherwise), chosen with probability proportional to advertised bandwidth, an
 * exit whose policy allows the target, and the entry taken from the client's persistent guards.
 *
 * Families: relays declare the identities of their operator's other relays. Two relays are treated as one family
 * when either lists the other (stricter than requiring both to agree, so an operator who forgets one side is still
 * kept apart).
 */
import ipaddr from 'ipaddr.js';
import { crypto } from '../crypto/index.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { AlliumError } from '../protocol/errors.js';
import { isExitPolicy, parseExitPolicy, policyAllows, policyMightAllowPort, type ExitPolicy } from '../protocol/exit-policy.js';
import { MAX_HOPS } from '../protocol/constants.js';

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
  random?: () => number;
}

/**
 * Networks, by descriptor: a path is checked against every relay in the directory, and parsing each address every
 * time cost more than the rest of choosing a path (descriptors do not change).
 */
const networks = new WeakMap<Descriptor, string>();

export function networkOf(d: Descriptor): string {
  let n = networks.get(d);
  if (n === undefined) networks.set(d, (n = parseNetwork(d)));
  return n;
}

function parseNetwork(d: Descriptor): string {
  let host: string;
  try {
    host = new URL(d.addr).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return d.addr;
  }
  if (!ipaddr.isValid(host)) return `name:${host}`;
  const ip = ipaddr.parse(host);
  if (ip.kind() === 'ipv4') {
    const o = (ip as ipaddr.IPv4).octets;
    return `v4:${o[0]}.${o[1]}`;
  }
  const p = (ip as ipaddr.IPv6).parts;
  return `v6:${p[0]!.toString(16)}:${p[1]!.toString(16)}`;
}

export function sameFamily(a: Descriptor, b: Descriptor): boolean {
  const has = (x: Descriptor, id: Uint8Array): boolean => x.family.some((f) => f.length === id.length && f.every((v, i) => v === id[i]));
  return has(a, b.id) || has(b, a.id);
}

function compatible(path: readonly Descriptor[], d: Descriptor, subnets: boolean): boolean {
  for (const p of path) {
    if (p.fingerprint === d.fingerprint) return false;
    if (sameFamily(p, d)) return false;
    if (subnets && networkOf(p) === networkOf(d)) return false;
  }
  return true;
}

/** Picks one descriptor with probability proportional to bandwidth (at least 1). */
export function weightedPick(list: readonly Descriptor[], random: () => number): Descriptor | undefined {
  if (list.length === 0) return undefined;
  let total = 0;
  for (const d of list) total += Math.max(1, d.bw);
  let r = random() * total;
  for (const d of list) {
    r -= Math.max(1, d.bw);
    if (r < 0) return d;
  }
  return list[list.length - 1];
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

  // Exit (or the required last hop) first: it is the scarcest.
  let last: Descriptor | undefined = o.last;
  if (!last) {
    const exits =
      o.exitPort === null
        ? usable
        : usable.filter((d) => isExitPolicy(exitPolicyOf(d)) && allowsExit(d, o.exitPort!, o.exitAddress));
    last = weightedPick(exits, random);
    if (!last) throw new AlliumError('ERR_ONION_PATH', o.exitPort === null ? 'directory is empty' : `no exit allows port ${o.exitPort}`);
  }
  if (o.hops === 1) return [last];

  // Entry from the guards, in order, compatible with the exit.
  let entry: Descriptor | undefined;
  const guards = o.guards.filter((g) => !o.exclude?.has(g.fingerprint));
  for (const g of guards) {
    if (compatible([last], g, o.enforceDistinctSubnets)) {
      entry = g;
      break;
    }
  }
  if (!entry) {
    if (guards.length > 0) throw new AlliumError('ERR_ONION_PATH', 'no guard is compatible with the chosen last hop');
    // Guards that failed recently are not replaced by arbitrary entries: that would spread this client's first hops
    // over the network, the exposure guards exist to prevent (the caller may try again without the exclusions).
    if (o.guards.length > 0) throw new AlliumError('ERR_ONION_PATH', 'every guard failed recently');
    entry = weightedPick(
      usable.filter((d) => compatible([last!], d, o.enforceDistinctSubnets)),
      random,
    );
  }
  if (!entry) throw new AlliumError('ERR_ONION_PATH', 'no entry relay compatible with the last hop');
  path.push(entry);

  for (let i = 1; i < o.hops - 1; i++) {
    const mid = weightedPick(
      usable.filter((d) => compatible([...path, last!], d, o.enforceDistinctSubnets)),
      random,
    );
    if (!mid) throw new AlliumError('ERR_ONION_PATH', `not enough distinct relays for ${o.hops} hops`);
    path.push(mid);
  }
  path.push(last);
  return path;
}
