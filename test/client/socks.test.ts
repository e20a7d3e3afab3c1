/**
 * SOCKS5 stream isolation (specs/streams.md §6.2): the key comes from the listener port and the RFC 1929 credentials
 * as received, length-prefixed, so different credentials never share a circuit — in particular user "a:b" with
 * password "c" and user "a" with password "b:c", which a key joining the two with ":" would merge. Driven over real
 * TCP to the listener on 127.0.0.1; the client behind it records the isolation key each connection asks for.
 */
import { expect } from 'chai';
import { connect as tcpConnect } from 'node:net';
import type { AlliumClient } from '../../client/client.js';
import { startSocksServer, SocksReply } from '../../client/socks.js';
import { AlliumError } from '../../protocol/errors.js';

/** A client that records each connection's isolation key and refuses it (SOCKS answers 0x04). */
function recorder(): { client: AlliumClient; keys: string[] } {
  const keys: string[] = [];
  const client = {
    connect: async (_host: string, _port: number, o: { isolation?: string }) => {
      keys.push(o.isolation ?? '(none)');
      throw new AlliumError('ERR_UNREACHABLE', 'recording only');
    },
  } as unknown as AlliumClient;
  return { client, keys };
}

/** One SOCKS5 CONNECT to example.com:80, with username/password (bytes) or no authentication; the reply code. */
function socksConnect(socksPort: number, credentials: [Uint8Array, Uint8Array] | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(socksPort, '127.0.0.1');
    const request = Buffer.concat([Buffer.from([5, 1, 0, 3, 11]), Buffer.from('example.com'), Buffer.from([0, 80])]);
    let stage = 0;
    s.on('data', (d) => {
      if (stage === 0 && credentials) {
        stage = 1;
        const [u, p] = credentials;
        s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
      } else if (stage <= 1) {
        stage = 2;
        s.write(request);
      } else {
        s.destroy();
        resolve(d[1]!);
      }
    });
    s.once('error', reject);
    s.write(Buffer.from(credentials ? [5, 1, 2] : [5, 1, 0]));
  });
}

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('SOCKS5 isolation keys (specs/streams.md §6.2)', () => {
  it('different credentials never give one key; the same credentials always do', async () => {
    const { client, keys } = recorder();
    const one = await startSocksServer(client, { port: 0 });
    const two = await startSocksServer(client, { port: 0 });
    try {
      const cases: [number, [Uint8Array, Uint8Array] | null][] = [
        [one.port, [b('a:b'), b('c')]], // 0
        [one.port, [b('a'), b('b:c')]], // 1: joined with ":" this was the same as 0
        [one.port, [b(''), b('')]], // 2: empty credentials …
        [one.port, null], // 3: … are not "no authentication"
        [one.port, [Uint8Array.of(0xff), b('x')]], // 4: bytes that are not UTF-8 …
        [one.port, [Uint8Array.of(0xfe), b('x')]], // 5: … are kept as bytes, not both decoded to U+FFFD
        [one.port, [b('a:b'), b('c')]], // 6: the same as 0
        [two.port, [b('a:b'), b('c')]], // 7: another listener
      ];
      for (const [port, creds] of cases) expect(await socksConnect(port, creds)).to.equal(SocksReply.HOST_UNREACHABLE);
      expect(keys).to.have.length(cases.length);
      expect(keys[6]).to.equal(keys[0]);
      const distinct = new Set([0, 1, 2, 3, 4, 5, 7].map((i) => keys[i]));
      expect(distinct.size, `keys: ${JSON.stringify(keys)}`).to.equal(7);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
