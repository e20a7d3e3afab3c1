/**
 * Exit policies in the manner of Tor's (specs/directory.md §3): an ordered list of lines, the first line that
 * matches decides, and a target no line matches is rejected (the default policy is "reject *:*").
 *
 *   line     = ("accept" / "reject") SP addrspec ":" portspec
 *   addrspec = "*" / IPv4 ["/" bits] / "[" IPv6 "]" ["/" bits]
 *   portspec = "*" / port / port "-" port
 */
import ipaddr from 'ipaddr.js';
import { ProtocolError } from './errors.js';

export interface PolicyRule {
  readonly accept: boolean;
  /** null = any address */
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number] | null;
  readonly portLo: number;
  readonly portHi: number;
  readonly text: string;
}

export type ExitPolicy = readonly PolicyRule[];

export const REJECT_ALL: readonly string[] = ['reject *:*'];

function bad(line: string, why: string): never {
  throw new ProtocolError('ERR_DESCRIPTOR', `exit policy line "${line.slice(0, 80)}": ${why}`);
}

export function parsePolicyLine(line: string): PolicyRule {
  const m = /^(accept|reject) (\*|\[[0-9a-fA-F:.]+\](?:\/\d{1,3})?|[0-9.]+(?:\/\d{1,2})?):(\*|\d{1,5}(?:-\d{1,5})?)$/.exec(line.trim());
  if (!m) bad(line, 'syntax');
  const [, verb, addr, ports] = m;
  let range: PolicyRule['range'] = null;
  if (addr !== '*') {
    const [host, bits] = addr!.startsWith('[') ? [addr!.slice(1, addr!.indexOf(']')), addr!.split(']/')[1]] : addr!.split('/');
    if (!host || !ipaddr.isValid(host)) bad(line, 'address');
    const ip = ipaddr.parse(host);
    const max = ip.kind() === 'ipv4' ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) bad(line, 'prefix length');
    range = [ip, prefix];
  }
  let portLo = 1;
  let portHi = 65535;
  if (ports !== '*') {
    const [a, b] = ports!.split('-');
    portLo = Number(a);
    portHi = b === undefined ? portLo : Number(b);
    if (portLo < 1 || portHi > 65535 || portLo > portHi) bad(line, 'port range');
  }
  return { accept: verb === 'accept', range, portLo, portHi, text: line.trim() };
}

export function parseExitPolicy(lines: readonly string[]): ExitPolicy {
  return lines.map(parsePolicyLine);
}

function addrMatches(rule: PolicyRule, ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (!rule.range) return true;
  let a = ip;
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
  if (a.kind() !== rule.range[0].kind()) return false;
  return a.match(rule.range as [typeof a, number]);
}

/** Does the policy allow a connection to this IP address and port? */
export function policyAllows(policy: ExitPolicy, address: string, port: number): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.parse(address);
  for (const rule of policy) {
    if (port >= rule.portLo && port <= rule.portHi && addrMatches(rule, ip)) return rule.accept;
  }
  return false;
}

/**
 * Could the policy allow this port for some address? Used by clients choosing an exit for a hostname that the exit
 * will resolve. Conservative like Tor's: true if some accept line covering the port is reached before a reject
 * line that covers the port for every address.
 */
export function policyMightAllowPort(policy: ExitPolicy, port: number): boolean {
  for (const rule of policy) {
    if (port < rule.portLo || port > rule.portHi) continue;
    if (rule.accept) return true;
    if (!rule.range) return false;
  }
  return false;
}

/** Does any target pass this policy? (Relays with "reject *:*" are not exits.) */
export function isExitPolicy(policy: ExitPolicy): boolean {
  return policy.some((r) => r.accept);
}
