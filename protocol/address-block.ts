/**
 * Address blocks (specs/link.md §7): the unit in which a relay counts what peers of one network may hold.
 *
 * Keys are free and addresses nearly so, so every table a peer can fill is bounded per peer and per address block
 * too: an IPv4 address's block is its /24, an IPv6 address's its /48 (the smallest block an IPv6 site is commonly
 * assigned; one host alone often has a /64). An IPv4-mapped IPv6 address counts as the IPv4 address it maps. Pure:
 * callers pass the address their socket reports.
 */
import ipaddr from 'ipaddr.js';

/** An address as a key and its block: '203.0.113.7' in '203.0.113.0/24', '2001:db8:1::5' in '2001:db8:1::/48'. */
export interface AddressKeys {
  readonly address: string;
  readonly block: string;
}

function parse(remote: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    return ipaddr.process(remote); // an IPv4-mapped IPv6 address becomes its IPv4 address
  } catch {
    return null;
  }
}

function blockOf(ip: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (ip.kind() === 'ipv4') {
    const o = (ip as ipaddr.IPv4).octets;
    return `${o[0]}.${o[1]}.${o[2]}.0/24`;
  }
  const p = (ip as ipaddr.IPv6).parts;
  return `${p[0]!.toString(16)}:${p[1]!.toString(16)}:${p[2]!.toString(16)}::/48`;
}

/**
 * The address as a key and its block. Something that is not an IP address (a socket without one) is its own
 * address and its own block, marked with '?' so it cannot equal a real one.
 */
export function addressKeys(remote: string): AddressKeys {
  const ip = parse(remote);
  if (!ip) return { address: `?${remote}`, block: `?${remote}` };
  return { address: ip.kind() === 'ipv4' ? ip.toString() : (ip as ipaddr.IPv6).toNormalizedString(), block: blockOf(ip) };
}

/** The block of an address, or null when there is none (no address, or not an IP address: in-memory links). */
export function addressBlock(remote: string | null | undefined): string | null {
  if (!remote) return null;
  const ip = parse(remote);
  return ip ? blockOf(ip) : null;
}
