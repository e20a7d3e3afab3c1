/** The SOCKS5 handshake machine (client/socks-handshake.ts, specs/streams.md §6.3), driven with bytes. */
import { expect } from 'chai';
import { MAX_SOCKS_HANDSHAKE_BYTES, SocksHandshake, SocksReply, socksReply, type SocksAction } from '../../client/socks-handshake.js';
import { expectCode } from '../helpers/vectors.js';

const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');
const show = (actions: SocksAction[]): unknown[] =>
  actions.map((a) =>
    a.kind === 'write' || a.kind === 'close'
      ? `${a.kind} ${hex(a.bytes)}`
      : a.kind === 'connect'
        ? { host: a.host, port: a.port, user: a.credentials ? Buffer.from(a.credentials.user).toString() : null, early: hex(a.early) }
        : a.kind,
  );
const name = (s: string): number[] => [s.length, ...Buffer.from(s)];

/** Feeds `input` whole, and again one byte at a time (stopping when the machine is done): same actions, but early. */
function run(input: number[]): unknown[] {
  const whole = show(new SocksHandshake().push(Uint8Array.from(input)));
  const m = new SocksHandshake();
  const bytewise: SocksAction[] = [];
  for (const b of input) if (!m.done) bytewise.push(...m.push(Uint8Array.of(b)));
  const noEarly = (x: unknown): unknown => (typeof x === 'object' && x !== null && 'early' in x ? { ...x, early: '' } : x);
  expect(show(bytewise), 'byte by byte').to.deep.equal(whole.map(noEarly));
  return whole;
}

describe('SOCKS5 handshake machine', () => {
  it('no authentication, a domain name, early data', () => {
    expect(run([5, 1, 0, 5, 1, 0, 3, ...name('example.com'), 0x01, 0xbb, 0x47, 0x45])).to.deep.equal([
      'write 0500',
      { host: 'example.com', port: 443, user: null, early: '4745' },
    ]);
  });

  it('username/password preferred when offered, IPv4 and IPv6 requests', () => {
    expect(run([5, 2, 0, 2, 1, ...name('alice'), ...name('pw'), 5, 1, 0, 1, 127, 0, 0, 1, 0, 80])).to.deep.equal([
      'write 0502',
      'write 0100',
      { host: '127.0.0.1', port: 80, user: 'alice', early: '' },
    ]);
    const v6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
    expect(run([5, 1, 0, 5, 1, 0, 4, ...v6, 0, 80])).to.deep.equal(['write 0500', { host: '2001:db8:0:0:0:0:0:1', port: 80, user: null, early: '' }]);
  });

  it('refusals with their reply codes: no acceptable method, a command other than CONNECT, an address type, port 0', () => {
    expect(run([5, 1, 1])).to.deep.equal(['close 05ff']);
    expect(run([5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80])).to.deep.equal(['write 0500', `close ${hex(socksReply(SocksReply.COMMAND_NOT_SUPPORTED))}`]);
    expect(run([5, 1, 0, 5, 1, 0, 9, 0, 0])).to.deep.equal(['write 0500', `close ${hex(socksReply(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED))}`]);
    expect(run([5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 0])).to.deep.equal(['write 0500', `close ${hex(socksReply(SocksReply.GENERAL_FAILURE))}`]);
    expect(run([5, 1, 0, 5, 1, 0, 3, 0, 0, 80])).to.deep.equal(['write 0500', `close ${hex(socksReply(SocksReply.GENERAL_FAILURE))}`]);
  });

  it('an HTTP request is recognised; other versions and malformed messages are ERR_SOCKS', () => {
    expect(show(new SocksHandshake().push(Buffer.from('GET / HTTP/1.1\r\n')))).to.deep.equal(['http']);
    expectCode(() => new SocksHandshake().push(Uint8Array.of(4, 1, 0, 80)), 'ERR_SOCKS');
    expectCode(() => new SocksHandshake().push(Uint8Array.of(5, 0)), 'ERR_SOCKS');
    expectCode(() => new SocksHandshake().push(Uint8Array.of(5, 1, 2, 2, 0)), 'ERR_SOCKS');
    expectCode(() => new SocksHandshake().push(Uint8Array.of(5, 1, 0, 4, 1, 0, 1)), 'ERR_SOCKS');
  });

  it(`at most ${MAX_SOCKS_HANDSHAKE_BYTES} bytes up to the end of the request, early data included; nothing after it`, () => {
    const m = new SocksHandshake();
    m.push(Uint8Array.of(5, 1, 0));
    expectCode(() => m.push(new Uint8Array(MAX_SOCKS_HANDSHAKE_BYTES)), 'ERR_LIMIT');
    // the largest credentials and name RFC 1928/1929 allow add up to more than the cap
    const big = [
      5,
      1,
      2,
      1,
      255,
      ...new Array<number>(255).fill(0x61),
      255,
      ...new Array<number>(255).fill(0x62),
      5,
      1,
      0,
      3,
      255,
      ...new Array<number>(255).fill(0x63),
      0,
      80,
    ];
    const slow = new SocksHandshake();
    expectCode(() => {
      for (const b of big) slow.push(Uint8Array.of(b));
    }, 'ERR_LIMIT');
    const done = new SocksHandshake();
    done.push(Uint8Array.of(5, 1, 1));
    expectCode(() => done.push(Uint8Array.of(0)), 'ERR_SOCKS');
  });
});
