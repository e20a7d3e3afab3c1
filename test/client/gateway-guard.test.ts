/**
 * The gateway's request rules (specs/content.md §12.1) and its Range parsing (§12.3), as pure functions: which
 * Host, Origin and Sec-Fetch-* headers are answered, and which byte ranges.
 */
import { expect } from 'chai';
import { checkRequest, gatewayHosts } from '../../client/gateway/guard.js';
import { parseRange } from '../../client/gateway/range.js';

describe('gateway: Host, Origin and Sec-Fetch rules', () => {
  const hosts = gatewayHosts('127.0.0.1', 8888, ['allium.local']);
  const status = (method: string, headers: Record<string, string>): number => {
    const v = checkRequest(method, headers, hosts);
    return v.ok ? 200 : v.status;
  };

  it('answers its own names only: a rebound DNS name is 421', () => {
    for (const h of ['127.0.0.1:8888', 'localhost:8888', 'LOCALHOST:8888', 'allium.local:8888']) expect(status('GET', { host: h }), h).to.equal(200);
    for (const h of ['evil.example:8888', '127.0.0.1:8889', '127.0.0.2:8888', '[::1]:8888', 'localhost', ''])
      expect(status('GET', { host: h }), h).to.equal(421);
    expect(status('GET', {})).to.equal(421);
    expect(gatewayHosts('::1', 80).has('[::1]')).to.equal(true);
  });

  it('refuses another Origin; allows Origin null for reads only; changes need its own Origin', () => {
    const host = '127.0.0.1:8888';
    expect(status('GET', { host, origin: 'http://127.0.0.1:8888' })).to.equal(200);
    expect(status('GET', { host, origin: 'http://evil.example' })).to.equal(403);
    expect(status('GET', { host, origin: 'https://127.0.0.1:8888' })).to.equal(403);
    expect(status('GET', { host, origin: 'http://127.0.0.1:8888/x' })).to.equal(403);
    expect(status('GET', { host, origin: 'null' })).to.equal(200);
    expect(status('POST', { host, origin: 'http://localhost:8888' })).to.equal(200);
    expect(status('POST', { host })).to.equal(403);
    expect(status('POST', { host, origin: 'null' })).to.equal(403);
    expect(status('PUT', { host, origin: 'http://evil.example' })).to.equal(403);
  });

  it('lets other sites navigate to it, never embed or read it', () => {
    const host = '127.0.0.1:8888';
    expect(status('GET', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).to.equal(200);
    expect(status('GET', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' })).to.equal(403);
    expect(status('GET', { host, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' })).to.equal(403);
    expect(status('GET', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' })).to.equal(403);
    expect(
      status('POST', { host, origin: 'http://127.0.0.1:8888', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }),
    ).to.equal(403);
    expect(status('GET', { host, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' })).to.equal(200);
  });
});

describe('gateway: Range headers', () => {
  it('takes one range in its three forms; refuses what cannot be met; ignores the rest', () => {
    expect(parseRange(undefined, 100)).to.equal(null);
    expect(parseRange('bytes=0-9', 100)).to.deep.equal({ start: 0, end: 10 });
    expect(parseRange('bytes=90-', 100)).to.deep.equal({ start: 90, end: 100 });
    expect(parseRange('bytes=90-1000', 100)).to.deep.equal({ start: 90, end: 100 });
    expect(parseRange('bytes=-10', 100)).to.deep.equal({ start: 90, end: 100 });
    expect(parseRange('bytes=-1000', 100)).to.deep.equal({ start: 0, end: 100 });
    expect(parseRange('bytes=100-', 100)).to.equal('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).to.equal('unsatisfiable');
    for (const h of ['bytes=0-1,5-9', 'items=0-1', 'bytes=5-1', 'bytes=-', 'bytes=x-1', `bytes=0-${'9'.repeat(20)}`])
      expect(parseRange(h, 100), h).to.equal(null);
  });
});
