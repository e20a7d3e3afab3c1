/** Host-name normalisation (specs/streams.md §6.4): one spelling per name, odd forms refused. */
import { expect } from 'chai';
import { isAlliumError } from '../../protocol/errors.js';
import { normalizeHost, type NormalizedHost } from '../../protocol/hostname.js';

function code(host: string): string | null {
  try {
    normalizeHost(host);
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

describe('host names (specs/streams.md §6.4)', () => {
  it('every spelling of a hidden address is the hidden address', () => {
    const hidden: NormalizedHost = { host: 'x.allium', kind: 'hidden' };
    for (const h of ['x.allium', 'x.allium.', 'X.ALLIUM', 'X.Allium.', 'x.ALLIUM.']) expect(normalizeHost(h), h).to.deep.equal(hidden);
    expect(normalizeHost('sub.abc.allium.')).to.deep.equal({ host: 'sub.abc.allium', kind: 'hidden' });
    expect(normalizeHost('allium')).to.deep.equal({ host: 'allium', kind: 'hidden' });
  });

  it('keeps ordinary names, lower case and without their trailing dot, and IP literals', () => {
    expect(normalizeHost('Example.COM.')).to.deep.equal({ host: 'example.com', kind: 'dns' });
    expect(normalizeHost('x.allium.example.com')).to.deep.equal({ host: 'x.allium.example.com', kind: 'dns' });
    expect(normalizeHost('_dmarc.example-1.org')).to.deep.equal({ host: '_dmarc.example-1.org', kind: 'dns' });
    expect(normalizeHost('xn--bcher-kva.example')).to.deep.equal({ host: 'xn--bcher-kva.example', kind: 'dns' });
    expect(normalizeHost('localhost')).to.deep.equal({ host: 'localhost', kind: 'dns' });
    expect(normalizeHost('127.0.0.1')).to.deep.equal({ host: '127.0.0.1', kind: 'ipv4' });
    expect(normalizeHost('::1')).to.deep.equal({ host: '::1', kind: 'ipv6' });
    expect(normalizeHost('[2001:DB8::1]')).to.deep.equal({ host: '[2001:db8::1]', kind: 'ipv6' });
    expect(normalizeHost('a'.repeat(63) + '.' + 'b'.repeat(63))).to.deep.equal({ host: 'a'.repeat(63) + '.' + 'b'.repeat(63), kind: 'dns' });
  });

  it('refuses odd forms instead of repairing them', () => {
    const refused = [
      '', // empty
      '.', // nothing but the root
      'x.allium..', // two trailing dots
      '.x.allium', // leading dot
      'x..allium', // empty label
      ' x.allium', // white space
      'x.allium ',
      'x.allium\0',
      'x.allium\t',
      'x\uff0eallium', // a full-width dot, which IDNA maps to "."
      'x\u3002allium', // an ideographic full stop, likewise
      'bücher.example', // non-ASCII: send xn--
      'xn--allium-', // an A-label that decodes to plain "allium" (labels may not end in "-")
      'x.xn--allium-',
      '-x.example',
      'x-.example',
      'x/y.example',
      'x%2eallium',
      'user@x.allium',
      'a'.repeat(64) + '.example', // a label longer than 63
      `${'a.'.repeat(126)}ab`, // 254 characters
      '127.1', // IPv4 in other notations
      '2130706433',
      '0x7f.0.0.1',
      '0x7f000001',
      '01.2.3.4',
      '256.1.1.1',
      '1.2.3.4.5',
      '[::1', // broken IPv6 literals
      '::1]',
      'fe80::1%eth0',
      '[fe80::1%25eth0]',
      'x.allium:80',
    ];
    for (const h of refused) expect(code(h), JSON.stringify(h)).to.equal('ERR_ADDRESS_FORMAT');
  });
});
