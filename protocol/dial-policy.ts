/**
 * What a relay may dial (specs/link.md §1.1) and what a published link URL may look like (specs/directory.md §2.3).
 *
 * A relay dials addresses from self-signed descriptors that anyone can publish, so unless its operator allows private
 * addresses it connects only to global unicast IP addresses: never to loopback, private, shared, link-local,
 * multicast, broadcast, unspecified, reserved or translated ranges (IPv4-mapped IPv6 is judged as the IPv4 address it
 * maps). The test is ipaddr.js's `range() === 'unicast'`, so anything that library classifies — and the few ranges
 * below that it does not — is refused. Pure: the socket code (net/ws-node.ts) applies it to the address it connects
 * to, after its own name resolution.
 */
import ipaddr from 'ipaddr.js';

/** IPv6 ranges ipaddr.js calls unicast that a relay still must not dial. */
const EXTRA_REFUSED: [ipaddr.IPv6, number][] = [
  [ipaddr.IPv6.parse('::'), 96], // IPv4-compatible (deprecated): ::a.b.c.d
  [ipaddr.IPv6.parse('64:ff9b:1::'), 48], // local-use NAT64 (RFC 8215)
];

/** True when `ip` (an IP literal, IPv6 without brackets) is a global unicast address; false for anything else. */
export function isPublicUnicast(ip: string): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(ip);
  } catch {
    return false;
  }
  if (a.kind() === 'ipv6') {
    const v6 = a as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) a = v6.toIPv4Address();
    else if (EXTRA_REFUSED.some((r) => v6.match(r))) return false;
  }
  return a.range() === 'unicast';
}

/**
 * True when `addr` is a link URL (specs/directory.md §2.3): ws:// or wss://, a host, an optional port and path, and
 * no white space, user information, query, fragment or backslash.
 */
export function isLinkUrl(addr: string): boolean {
  if (!/^wss?:\/\/[^\s/?#@\\]+(\/[^\s?#@\\]*)?$/.test(addr)) return false;
  let u: URL;
  try {
    u = new URL(addr);
  } catch {
    return false;
  }
  return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '' && u.username === '' && u.password === '' && u.search === '' && u.hash === '';
}
