/**
 * Which relays are related (specs/path.md §2.1): the network a relay's address is in — a /16 for IPv4, a /32 for
 * IPv6, the host name itself otherwise — and declared families, honoured when either side declares the other. Path
 * selection keeps related relays off one circuit; placement keeps them from holding the same item.
 */
import ipaddr from 'ipaddr.js';
import type { Descriptor } from './descriptor.js';

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

/** The host part of a relay's address (an IP literal or a name), for per-address limits. */
export function hostOf(d: Pick<Descriptor, 'addr'>): string {
  try {
    return new URL(d.addr).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return d.addr;
  }
}

/** True for loopback hosts (test networks run every relay on 127.0.0.1). */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  const ip = ipaddr.process(host);
  return ip.range() === 'loopback';
}

export function sameFamily(a: Descriptor, b: Descriptor): boolean {
  const has = (x: Descriptor, id: Uint8Array): boolean => x.family.some((f) => f.length === id.length && f.every((v, i) => v === id[i]));
  return has(a, b.id) || has(b, a.id);
}
