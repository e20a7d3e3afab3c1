/** protocol/dial-policy.ts (specs/link.md §1.1, specs/directory.md §2.3) and its use by net/ws-node.ts. */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { isLinkUrl, isPublicUnicast } from '../../protocol/dial-policy.js';
import { createNodeSocketFactory } from '../../net/ws-node.js';

describe('dial policy', () => {
  it('accepts global unicast addresses only', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::1']) expect(isPublicUnicast(ip), ip).to.equal(true);
    const refused = [
      '127.0.0.1',
      '127.255.0.9',
      '0.0.0.0',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '169.254.169.254',
      '224.0.0.1',
      '239.255.255.250',
      '255.255.255.255',
      '240.0.0.1',
      '192.0.2.1',
      '198.18.0.1',
      '::',
      '::1',
      'fe80::1',
      'fe80::1%eth0',
      'fc00::1',
      'fd12:3456::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '::7f00:1',
      '64:ff9b::a00:1',
      '64:ff9b:1::1',
      '2002:a00:1::',
      '2001::1',
      '2001:db8::1',
      'localhost',
      'example.org',
      '',
      'not an address',
    ];
    for (const ip of refused) expect(isPublicUnicast(ip), ip).to.equal(false);
  });

  it('takes link URLs without user information, query or fragment', () => {
    for (const u of [
      'ws://198.51.100.7:9001/allium',
      'wss://example.org/some/path',
      'ws://[2001:db8::1]:9001/allium',
      'ws://relay.example',
      'wss://a.example:443/%7Euser/x',
    ]) {
      expect(isLinkUrl(u), u).to.equal(true);
    }
    for (const u of [
      'ws://127.0.0.1:8080/admin?token=x',
      'ws://h/p#frag',
      'ws://user@h/p',
      'ws://user:pw@h/p',
      'ws://h/a@b',
      'ws://h\\x',
      'http://h/p',
      'ws:///p',
      'ws://h/p q',
      'wss://',
      'ws://h:99999/',
      'ws://[::1/x',
    ]) {
      expect(isLinkUrl(u), u).to.equal(false);
    }
  });

  describe('the Node socket factory with allowAddress', () => {
    let canary: Server;
    let port: number;
    let hits = 0;
    before(async () => {
      canary = createServer((_q, r) => (hits++, r.writeHead(404).end()));
      canary.on('upgrade', (_q, s) => (hits++, s.destroy()));
      await new Promise<void>((r) => canary.listen(0, '127.0.0.1', () => r()));
      port = (canary.address() as { port: number }).port;
    });
    after(() => canary.close());

    it('refuses an IP literal and a name that resolves only to loopback, without sending anything', async () => {
      const factory = createNodeSocketFactory({ allowAddress: isPublicUnicast });
      for (const url of [
        `ws://127.0.0.1:${port}/admin`,
        `ws://[::ffff:127.0.0.1]:${port}/admin`,
        `ws://localhost:${port}/admin`,
        `ws://0x7f.1:${port}/admin`,
      ]) {
        let code = '';
        await factory(url).then(
          () => (code = 'connected'),
          (e: { code?: string }) => (code = e.code ?? 'none'),
        );
        expect(code, url).to.equal('ERR_DIAL_REFUSED');
      }
      expect(hits).to.equal(0);
      // Without the policy the same dial reaches the canary (which answers 404, so the dial fails as unreachable).
      const code = await createNodeSocketFactory()(`ws://localhost:${port}/admin`).then(
        () => 'connected',
        (e: { code?: string }) => e.code ?? 'none',
      );
      expect(code).to.equal('ERR_UNREACHABLE');
      expect(hits).to.equal(1);
    });
  });
});
