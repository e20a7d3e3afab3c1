/** relay/address-buckets.ts: keys, per-address and per-block charging, and the bounds of the tables (specs/link.md §7). */
import { expect } from 'chai';
import { addressKeys } from '../../protocol/address-block.js';
import { AddressBuckets, BucketTable } from '../../relay/address-buckets.js';

describe('handshake buckets per address and block', () => {
  it('keys an address and its /24 or /48; IPv4-mapped IPv6 is its IPv4 address', () => {
    expect(addressKeys('203.0.113.7')).to.deep.equal({ address: '203.0.113.7', block: '203.0.113.0/24' });
    expect(addressKeys('::ffff:203.0.113.7')).to.deep.equal({ address: '203.0.113.7', block: '203.0.113.0/24' });
    expect(addressKeys('2001:db8:abcd:12::1').block).to.equal('2001:db8:abcd::/48');
    expect(addressKeys('2001:db8:abcd:ffff::2').block).to.equal(addressKeys('2001:db8:abcd:12::1').block);
    expect(addressKeys('2001:db8:abce::1').block).to.not.equal(addressKeys('2001:db8:abcd::1').block);
    expect(addressKeys('unknown').address).to.equal('?unknown');
  });

  it('refuses an address beyond its burst, then a block beyond its own, and leaves others alone', () => {
    let t = 0;
    const b = new AddressBuckets({ perIp: 2, perBlock: 3, now: () => t });
    expect([1, 2, 3, 4, 5].map(() => b.admit('198.51.100.1'))).to.deep.equal([null, null, null, null, 'ip']);
    // Its /24 has taken 4 of 6; two more addresses there exhaust it.
    expect(b.admit('198.51.100.2')).to.equal(null);
    expect(b.admit('198.51.100.3')).to.equal(null);
    expect(b.admit('198.51.100.4')).to.equal('block');
    expect(b.admit('198.51.101.1'), 'another /24').to.equal(null);
    t += 1000; // refills 2 per address, 3 per block
    expect(b.admit('198.51.100.1')).to.equal(null);
  });

  it('holds at most `max` buckets: full ones are swept, then the least recently used goes', () => {
    let t = 0;
    const table = new BucketTable(1, 2, () => t, 3);
    for (const k of ['a', 'b', 'c']) table.tryTake(k);
    expect(table.size).to.equal(3);
    table.tryTake('a'); // a is now the most recent, and empty
    table.tryTake('d'); // none full yet: b, the least recently used, goes
    expect(table.size).to.equal(3);
    expect(table.tryTake('a'), 'a kept its debt').to.equal(false);
    t += 10_000;
    table.sweep();
    expect(table.size, 'every bucket refilled').to.equal(0);
  });
});
