/**
 * relay/link-admission.ts (specs/link.md §7): links counted per address and per /24 or /48 — an IPv6 host has a /64
 * or more, so the /48 is what binds there — the slots kept for relays, and the longest-idle client link closed for
 * a newcomer when the slots are full. In process, with an injected clock; the IPv4 behaviour of a relay over real
 * sockets is in test/integration/link-admission.test.ts.
 */
import { expect } from 'chai';
import { LinkRole, type LinkPeer } from '../../protocol/link-handshake.js';
import { CLIENT_IDLE_EVICT_MS, LinkAdmission, type AdmittedLink } from '../../relay/link-admission.js';

class FakeLink implements AdmittedLink {
  closedWith: string | null = null;
  constructor(
    readonly peer: LinkPeer | null,
    readonly lastActiveAt: number,
  ) {}
  close(e: { code: string }): void {
    this.closedWith = e.code;
  }
}

const client = (at: number): FakeLink => new FakeLink({ role: LinkRole.CLIENT, identity: null, version: 1 }, at);
const relay = (at: number): FakeLink => new FakeLink({ role: LinkRole.RELAY, identity: new Uint8Array(32), version: 1 }, at);

describe('link admission', () => {
  it('counts IPv6 links per /48: addresses from many /64s of one /48 reach max_links_per_block; another /48 is admitted', () => {
    const a = new LinkAdmission({ maxLinks: 4096, maxLinksPerIp: 64, maxLinksPerBlock: 4, relayLinksReserved: 0 }, () => 0);
    const results = [1, 2, 3, 4, 5].map((i) => {
      const ip = `2001:db8:1:${i.toString(16)}::${i}`;
      const r = a.admit(ip, false, []);
      if (typeof r !== 'string') a.hold(ip);
      return typeof r === 'string' ? r : 'ok';
    });
    expect(results).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'max_links_per_block']);
    expect(a.admit('2001:db8:2::1', false, [])).to.deep.equal({ evict: null });
    // An IPv4-mapped address counts as the IPv4 address; released links are uncounted (once).
    const release = a.hold('::ffff:198.51.100.7');
    expect(a.countOf('198.51.100.9')).to.deep.equal({ address: 0, block: 1 });
    release();
    release();
    expect(a.countOf('198.51.100.7')).to.deep.equal({ address: 0, block: 0 });
  });

  it('keeps relay_links_reserved slots for relays; when full, the client link idle longest gives way, not an active one', () => {
    let now = 1_000_000;
    const a = new LinkAdmission({ maxLinks: 4, maxLinksPerIp: 64, maxLinksPerBlock: 64, relayLinksReserved: 1 }, () => now);
    const open: FakeLink[] = [client(now), client(now), client(now)];
    // Clients hold 3 of 4: another client is refused while they are active; a relay takes the reserved slot.
    expect(a.admit('198.51.100.1', false, open)).to.equal('max_links');
    expect(a.admit('198.51.100.1', true, open)).to.deep.equal({ evict: null });
    open.push(relay(now));
    expect(a.admit('198.51.100.1', true, open)).to.equal('max_links');
    // A minute later two clients have sent nothing but padding; one stayed active.
    now += CLIENT_IDLE_EVICT_MS;
    const active = client(now);
    open[1] = active;
    const plan = a.admit('198.51.100.1', false, open);
    expect(typeof plan === 'string' ? plan : open.indexOf(plan.evict as FakeLink)).to.equal(0);
    if (typeof plan !== 'string' && plan.evict) a.evict(plan.evict);
    expect(open[0]!.closedWith).to.equal('ERR_LIMIT');
    // Relay links are never evicted for anyone.
    expect(a.admit('198.51.100.1', true, [relay(0), relay(0), relay(0), relay(0)])).to.equal('max_links');
  });
});
