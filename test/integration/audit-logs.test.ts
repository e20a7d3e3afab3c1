/**
 * What relays write to their logs at the default level (info), after a full run through relay processes: streams
 * (curl through SOCKS5, a refused connection), content (put, get, a missing link), private messages, a relay
 * restarted mid-run. The logs — every relay's standard output and error, and any file in its data directory that is
 * not a key, the store or the config — must contain none of:
 *
 * - the client's address or ports: the clients link from 127.0.0.2, an address nothing else uses;
 * - destinations: the web server listens on 127.0.0.3, and its port;
 * - key material: relay identity seeds and secret keys, onion secret keys, the clients' link keys and circuit
 *   bindings, the messaging identities' keys — as hex (whole or its first 8 bytes), base64 and base64url;
 * - content links and their keys, the endpoint addresses, message plaintext and the fetched page.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { IdentityKey } from '../../crypto/keys.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { Messenger, type IncomingMessage } from '../../client/messaging/node.js';
import { startSocksServer } from '../../client/socks.js';
import { fromHex } from '../../protocol/bytes.js';
import { parseLink } from '../../protocol/content-link.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import type { SocketFactory } from '../../net/dial.js';
import type { Link } from '../../net/link.js';
import { fromWs } from '../../net/socket.js';
import { resolveRelayConfig } from '../../relay/config.js';
import { patternBytes, sha256 } from '../helpers/content.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';
import { needProgram } from '../helpers/programs.js';

const run = promisify(execFile);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The level under audit: the default; ALLIUM_AUDIT_LOG_LEVEL=debug runs the same audit on debug logs. */
const LEVEL = process.env['ALLIUM_AUDIT_LOG_LEVEL'] ?? 'info';
const CLIENT_ADDRESS = '127.0.0.2';
const TARGET_ADDRESS = '127.0.0.3';

/** Client sockets bound to CLIENT_ADDRESS; records the local ports the relays see. */
function boundSocketFactory(ports: Set<number>): SocketFactory {
  return (url, { signal } = {}) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: FRAME_LEN, localAddress: CLIENT_ADDRESS });
      ws.binaryType = 'nodebuffer';
      signal?.addEventListener('abort', () => ws.terminate(), { once: true });
      ws.once('upgrade', (res) => ports.add(res.socket.localPort!));
      ws.once('open', () => resolve(fromWs(ws as never, null)));
      ws.once('error', reject);
    });
}

/** The forms a secret could take in a log line. */
function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  const hex = b.toString('hex');
  return [hex, hex.toUpperCase(), b.toString('base64').replace(/=+$/, ''), b.toString('base64url'), ...(b.length > 8 ? [hex.slice(0, 16)] : [])];
}

function logFiles(dir: string): string[] {
  const skip = new Set(['identity.key', 'onion-keys.json', 'relay.toml', 'ready.json']);
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...logFiles(p));
    else if (!skip.has(name) && !name.startsWith('store.sqlite')) out.push(p);
  }
  return out;
}

describe('log audit: no client address, key, link or destination at the default level (relay processes)', function () {
  this.timeout(300_000);
  let relays: RelayProcess[] = [];
  let web: Server;
  let webPort = 0;
  const clientPorts = new Set<number>();
  const secrets: { what: string; forms: string[] }[] = [];
  const add = (what: string, forms: string[]): void => void secrets.push({ what, forms });
  let logs = '';

  before(async () => {
    const exitPolicy = ['accept 127.0.0.0/8:*', 'reject *:*'];
    const extra = { log_level: LEVEL };
    const first = await startRelay({ nickname: 'l0', extra });
    const rest = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        startRelay({ nickname: `l${i + 1}`, bootstrap: [first.bootstrap], exitPolicy: i === 4 ? exitPolicy : ['reject *:*'], extra }),
      ),
    );
    relays = [first, ...rest];
    await waitFor(
      async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((x) => x === relays.length),
      30_000,
      'directory',
    );
    web = createServer((_req, res) => res.end(patternBytes(50_000, 3)));
    await new Promise<void>((r) => web.listen(0, TARGET_ADDRESS, () => r()));
    webPort = (web.address() as { port: number }).port;
  });

  after(async () => {
    web?.close();
    await Promise.all(relays.map((r) => r.kill('SIGKILL')));
    for (const r of relays) rmSync(r.dataDir, { recursive: true, force: true });
  });

  it('runs streams, content and messages through relay processes, with a relay restarted', async function () {
    needProgram(this, 'curl');
    const fps = relays.map((r) => r.fingerprint);
    const factory = boundSocketFactory(clientPorts);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [relays[0]!.bootstrap], socketFactory: factory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    const ca = client([fps[1]!, fps[2]!]);
    const cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();

    const socks = await startSocksServer(ca, { port: 0 });
    const curl = (url: string): Promise<{ stdout: Buffer }> =>
      run('curl', ['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${socks.port}`, url], { encoding: 'buffer', maxBuffer: 1 << 22 });
    const { stdout } = await curl(`http://${TARGET_ADDRESS}:${webPort}/secret-path-7f3a`);
    expect(sha256(stdout)).to.equal(sha256(patternBytes(50_000, 3)));
    // A refused connection: the exit's error path.
    const closedPort = webPort === 65535 ? webPort - 1 : webPort + 1;
    await curl(`http://${TARGET_ADDRESS}:${closedPort}/`).then(
      () => expect.fail('connection to a closed port succeeded'),
      () => undefined,
    );

    const content = new ContentClient(ca);
    const data = patternBytes(80_000, 5);
    const link = await content.put(data);
    expect(sha256(await new ContentClient(cb).get(link, { signal: AbortSignal.timeout(60_000) }))).to.equal(sha256(data));
    const parsed = parseLink(link);
    add('content link', [link, link.slice(-20)]);
    if (parsed.type === 'chk') {
      add('content routing key', encodings(parsed.rk));
      add('content decryption key', encodings(parsed.dk));
    }
    // A link nobody stored: not found.
    // (the character before the last 8 replaced by another one: a different link, whatever the random key made)
    const missing = link.replace(/(.)(.{8})$/, (_m, c: string, tail: string) => `${c === 'a' ? 'b' : 'a'}${tail}`);
    await new ContentClient(cb).get(missing, { signal: AbortSignal.timeout(30_000) }).then(
      () => expect.fail('a link nobody stored was found'),
      () => undefined,
    );

    const alice = new Messenger(ca);
    const bob = new Messenger(cb);
    await alice.startListening();
    const got: IncomingMessage[] = [];
    alice.on('message:received', (m) => got.push(m));
    const plaintext = 'audit plaintext: the eagle lands at dawn';
    for (let i = 0; i < 5; i++) await bob.send(alice.address, enc(`${plaintext} #${i}`));
    await waitFor(() => got.length >= 5, 60_000, 'messages');
    add('message plaintext', [plaintext, 'eagle lands']);
    add('endpoint addresses', [alice.address, bob.address, alice.address.split('.')[0]!, bob.address.split('.')[0]!]);
    for (const m of [alice, bob]) {
      const id = m.identity as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(id)) if (v instanceof Uint8Array) add(`messaging identity ${k}`, encodings(v));
    }

    // A relay restarted mid-run (the exit): links to it break and are made again.
    const exit = relays[5]!;
    await exit.kill('SIGKILL');
    relays[5] = await startRelay({
      nickname: 'l5',
      dataDir: exit.dataDir,
      listen: exit.address.replace(/^ws:\/\/|\/allium$/g, ''),
      bootstrap: [relays[0]!.bootstrap],
      exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'],
      extra: { log_level: LEVEL },
    });
    await waitFor(async () => (await relays[0]!.metric('allium_directory_relays')) === relays.length, 30_000, 'restarted relay back');
    const again = await curl(`http://${TARGET_ADDRESS}:${webPort}/after-restart`).catch(() => null);
    if (again) expect(again.stdout.length).to.equal(50_000);

    // Session secrets the clients hold while their links and circuits are open.
    for (const c of [ca, cb]) {
      for (const l of (c as unknown as { links: Map<string, Link> }).links.values()) {
        for (const side of ['sendCipher', 'recvCipher']) {
          const key = (l as unknown as Record<string, { key?: Uint8Array } | null>)[side]?.key;
          if (key) add(`client link ${side} key`, encodings(Uint8Array.from(key)));
        }
      }
      for (const circuit of c.listCircuits()) for (const b of circuit.bindings) add('circuit binding', encodings(b));
    }
    alice.close();
    bob.close();
    content.close();
    await socks.close();
    await ca.stop();
    await cb.stop();
    await new Promise((r) => setTimeout(r, 1500)); // relays log the closes
    // Logs are read while their relays still run, and the first exit was killed (SIGKILL) mid-run: a last line not
    // yet ended by its newline is left out, of a log file (it once read as "{" and failed to parse) as of a process's
    // captured output.
    const complete = (text: string): string => text.slice(0, text.lastIndexOf('\n') + 1);
    logs = [exit.logs(), ...relays.map((r) => r.logs()), ...relays.flatMap((r) => logFiles(r.dataDir).map((f) => readFileSync(f, 'utf8')))]
      .map(complete)
      .join('\n');
  });

  it('the logs are there and say something (info, the default level)', function () {
    if (!logs) this.skip();
    // The relays ran at log_level "info" (test/helpers/network.ts), which is the configuration's default.
    expect(resolveRelayConfig({}).log_level).to.equal('info');
    // The exit killed mid-line and restarted appends to the same log file, so its next line can follow the
    // unfinished one on one line ("{{…"): each record begins at a "{" the one before it did not close.
    const lines = logs
      .split('\n')
      .flatMap((l) => l.split(/(?=\{"level":)/))
      .filter((l) => l.startsWith('{') && l.endsWith('}'));
    expect(lines.length).to.be.greaterThan(10);
    if (LEVEL === 'info') expect(lines.every((l) => JSON.parse(l).level >= 30)).to.equal(true);
    console.log(
      `      ${lines.length} log lines from ${relays.length + 1} relay runs; messages: ${[...new Set(lines.map((l) => JSON.parse(l).msg as string))].join('; ')}`,
    );
  });

  it('contain no client address or port, and no destination address or port', function () {
    if (!logs) this.skip();
    // Relay log lines carry the relay's own pid, and the relays' own published addresses (public, in every
    // descriptor): neither is a client's, so both are left out of the port search — a client's local port on
    // CLIENT_ADDRESS can be the same number as a relay's listening port on 127.0.0.1.
    const text = logs.replace(/"pid":\d+/g, '').replace(/ws:\/\/127\.0\.0\.1:\d+\/allium/g, '');
    expect(clientPorts.size).to.be.greaterThan(2);
    expect(text.includes(CLIENT_ADDRESS), 'client address').to.equal(false);
    expect(text.includes(TARGET_ADDRESS), 'destination address').to.equal(false);
    expect(text.includes('secret-path-7f3a'), 'destination path').to.equal(false);
    for (const p of [...clientPorts, webPort]) expect(new RegExp(`(^|[^0-9])${p}([^0-9]|$)`).test(text), `port ${p}`).to.equal(false);
  });

  it('contain no key material of relays, clients or messaging identities', function () {
    if (!logs) this.skip();
    for (const r of relays) {
      const seed = fromHex(readFileSync(join(r.dataDir, 'identity.key'), 'utf8').trim());
      add('relay identity seed', encodings(seed));
      add('relay identity secret key', encodings(IdentityKey.fromSeed(seed).secretKey));
      const onion = JSON.parse(readFileSync(join(r.dataDir, 'onion-keys.json'), 'utf8')) as { secret: string }[];
      for (const k of onion) add('relay onion secret key', encodings(fromHex(k.secret)));
    }
    const keys = secrets.filter((s) => /key|binding|identity/.test(s.what));
    expect(keys.length).to.be.greaterThan(relays.length * 3);
    for (const s of keys) for (const form of s.forms) expect(logs.includes(form), `${s.what} (${form.slice(0, 12)}…)`).to.equal(false);
  });

  it('contain no content link, endpoint address or message plaintext', function () {
    if (!logs) this.skip();
    const rest = secrets.filter((s) => !/key|binding|identity/.test(s.what));
    expect(rest.map((s) => s.what)).to.include.members(['content link', 'message plaintext', 'endpoint addresses']);
    for (const s of rest) for (const form of s.forms) expect(logs.includes(form), `${s.what} (${form.slice(0, 12)}…)`).to.equal(false);
  });
});
