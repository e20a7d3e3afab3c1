/**
 * Relays behind ordinary HTTPS, against relay processes and a real nginx (Debian's nginx-light) that the test starts
 * on 127.0.0.1 with its own prefix, config and a certificate made at test time, and stops afterwards. nginx runs
 * the location block of contrib/nginx-allium.conf as documented.
 *
 * - a public, probe-resistant relay on a path of the nginx site: a client that knows only its wss:// line enters
 *   there, builds a circuit and fetches bytes through it;
 * - a bridge on another path of the same site: a client with only its bridge line does the same;
 * - a relay that listens with TLS itself (tls_cert, tls_key) serves wss:// links;
 * - probes without the secret, at the relay paths, get exactly the site's 404 for a missing page.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { LinkInitiator } from '../../protocol/link-handshake.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { parseBootstrap, parseBridgeLine } from '../../client/bootstrap.js';
import { createNodeSocketFactory } from '../../net/ws-node.js';
import {
  fetchThrough,
  freePort,
  makeTestCertificate,
  rawHttp,
  startBytesServer,
  startNginx,
  startNetwork,
  startRelay,
  tempDir,
  waitFor,
  withoutDate,
  type NginxSite,
  type RelayProcess,
  type TestCertificate,
  type TestNetwork,
} from '../helpers/network.js';
import { patternBytes } from '../helpers/content.js';
import { needProgram } from '../helpers/programs.js';

const RELAY_PATH = '/api/v2/events';
const BRIDGE_PATH = '/static/live';

describe('TLS and relays behind nginx (relay processes, nginx)', function () {
  this.timeout(180_000);
  let cert: TestCertificate;
  let net: TestNetwork | null = null;
  let nginx: NginxSite | null = null;
  let proxied: RelayProcess | null = null;
  let bridge: RelayProcess | null = null;
  let native: RelayProcess | null = null;
  let web: { port: number; close(): Promise<void> } | null = null;
  const page = patternBytes(300_000, 4);
  const client = (o: { bootstrap?: string[]; bridges?: string[]; entryRelays?: string[] }): AlliumClient =>
    new AlliumClient({
      bootstrap: o.bootstrap ?? [],
      ...o,
      socketFactory: createNodeSocketFactory({ ca: cert.pem }),
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
    });

  before(async function () {
    needProgram(this, 'nginx', 'openssl');
    cert = makeTestCertificate(tempDir('allium-cert-'));
    // Relay processes trust the test certificate when they dial wss:// relays.
    const env = { NODE_EXTRA_CA_CERTS: cert.cert };
    net = await startNetwork(3, { exits: 1, env });
    const [relayPort, bridgePort] = [await freePort(), await freePort()];
    nginx = await startNginx({
      cert,
      proxies: [
        { path: RELAY_PATH, upstream: `127.0.0.1:${relayPort}` },
        { path: BRIDGE_PATH, upstream: `127.0.0.1:${bridgePort}` },
      ],
    });
    const behind = (path: string): Record<string, unknown> => ({ path, public_address: `wss://127.0.0.1:${nginx!.port}${path}` });
    proxied = await startRelay({
      nickname: 'proxied',
      listen: `127.0.0.1:${relayPort}`,
      bootstrap: [net.bootstrap],
      env,
      extra: { ...behind(RELAY_PATH), probe_resistant: true },
    });
    bridge = await startRelay({
      nickname: 'bridge',
      listen: `127.0.0.1:${bridgePort}`,
      bootstrap: [net.bootstrap],
      env,
      extra: { ...behind(BRIDGE_PATH), bridge: true },
    });
    native = await startRelay({
      nickname: 'native',
      bootstrap: [net.bootstrap],
      env,
      extra: { tls_cert: cert.cert, tls_key: cert.key, probe_resistant: true },
    });
    const everyone = [...net.relays, proxied, bridge, native];
    await waitFor(
      async () => (await Promise.all(everyone.map((r) => r.metric('allium_directory_relays')))).every((n) => n === 5),
      30_000,
      'five public relays everywhere',
    );
    web = await startBytesServer(page);
  });
  after(async () => {
    await web?.close();
    for (const r of [proxied, bridge, native]) await r?.kill('SIGKILL');
    await net?.stop();
    await nginx?.stop();
  });

  it('publishes wss:// addresses: the nginx path for the proxied relay and the bridge, its own port for the TLS relay', () => {
    expect(proxied!.address).to.equal(`wss://127.0.0.1:${nginx!.port}${RELAY_PATH}`);
    expect(bridge!.bridge).to.match(new RegExp(`^bridge wss://127\\.0\\.0\\.1:${nginx!.port}${BRIDGE_PATH} [0-9a-f]{64} secret=[0-9a-f]{64}$`));
    expect(native!.address).to.match(/^wss:\/\/127\.0\.0\.1:\d+\/allium$/);
  });

  it('a client reaches the network through nginx → relay, builds a circuit and fetches bytes through it', async () => {
    const c = client({ bootstrap: [proxied!.bootstrap], entryRelays: [proxied!.fingerprint] });
    try {
      await c.start({ signal: AbortSignal.timeout(60_000) });
      expect(c.directory.all()).to.have.length(5);
      const r = await fetchThrough(c, web!.port);
      expect(r.status).to.equal(200);
      expect(Buffer.compare(r.body, page)).to.equal(0);
      expect(r.path[0]).to.equal(proxied!.fingerprint);
      expect(r.path).to.have.length(3);
      expect(await proxied!.metric('allium_circuits_created_total', { role: 'entry' })).to.be.at.least(1);
    } finally {
      await c.stop();
    }
    // The links went through nginx: it logs an upgraded request (101) at the relay's path once its link has closed.
    const upgraded = new RegExp(`"GET ${RELAY_PATH}\\?token=[A-Za-z0-9_-]{86} HTTP/1\\.1" 101 `);
    await waitFor(() => upgraded.test(readFileSync(`${nginx!.dir}/access.log`, 'utf8')), 15_000, 'an upgrade in the nginx access log');
  });

  it('a client with only the bridge line (bridge behind nginx, TLS) builds circuits and fetches bytes', async () => {
    const c = client({ bridges: [bridge!.bridge!] });
    try {
      await c.start({ signal: AbortSignal.timeout(60_000) });
      expect(c.bridgeMode).to.equal(true);
      for (let i = 0; i < 2; i++) {
        const r = await fetchThrough(c, web!.port);
        expect(Buffer.compare(r.body, page)).to.equal(0);
        expect(r.path[0]).to.equal(bridge!.fingerprint);
      }
    } finally {
      await c.stop();
    }
  });

  it('a relay that listens with TLS itself (tls_cert, tls_key) serves wss:// links', async () => {
    const c = client({ bootstrap: [native!.bootstrap], entryRelays: [native!.fingerprint] });
    try {
      await c.start({ signal: AbortSignal.timeout(60_000) });
      const r = await fetchThrough(c, web!.port);
      expect(Buffer.compare(r.body, page)).to.equal(0);
      expect(r.path[0]).to.equal(native!.fingerprint);
    } finally {
      await c.stop();
    }
    // Without the certificate trusted, a client refuses the relay (certificates are checked, as a browser would).
    const strict = new AlliumClient({ bootstrap: [native!.bootstrap], socketFactory: createNodeSocketFactory(), poolSize: 0 });
    let code = '';
    try {
      await strict.start({ signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      code = (e as { code: string }).code;
    } finally {
      await strict.stop();
    }
    expect(code).to.equal('ERR_UNREACHABLE');
  });

  it('probes without the secret get the same response as a request for a missing page (status, headers, body)', async () => {
    const port = nginx!.port;
    const tls = { tls: true, ca: cert.pem };
    const miss = withoutDate(await rawHttp({ port, path: '/no-such-page.html', ...tls }));
    expect(miss).to.match(/^HTTP\/1\.1 404 Not Found\n/);
    expect(withoutDate(await rawHttp({ port, path: '/no-such-page.html', upgrade: true, ...tls }))).to.equal(miss);
    const relayId = parseBootstrap(proxied!.bootstrap).identity;
    const b = parseBridgeLine(bridge!.bridge!);
    const token = (responder: Uint8Array, psk?: Uint8Array): string =>
      new LinkInitiator({ responder, now: Date.now(), ...(psk ? { psk } : {}) }).upgradeToken();
    const probes: { path: string; upgrade?: boolean }[] = [];
    for (const path of [RELAY_PATH, BRIDGE_PATH]) {
      probes.push(
        { path },
        { path, upgrade: true },
        { path: `${path}?token=garbage`, upgrade: true },
        { path: `${path}?token=${token(IdentityKey.generate().publicKey)}`, upgrade: true },
      );
    }
    probes.push({ path: `${BRIDGE_PATH}?token=${token(b.identity)}`, upgrade: true }); // knows the identity, not the secret
    probes.push({ path: `${BRIDGE_PATH}?token=${token(b.identity, crypto().random(32))}`, upgrade: true }); // a wrong secret
    probes.push({ path: `${RELAY_PATH}?token=${token(relayId)}` }); // a valid token, but no upgrade
    for (const p of probes) expect(withoutDate(await rawHttp({ port, ...tls, ...p })), JSON.stringify(p)).to.equal(miss);

    // A replayed first message: the first use upgrades, the replay is a plain miss.
    const valid = token(b.identity, b.secret);
    expect((await rawHttp({ port, path: `${BRIDGE_PATH}?token=${valid}`, upgrade: true, ...tls })).status).to.equal(101);
    expect(withoutDate(await rawHttp({ port, path: `${BRIDGE_PATH}?token=${valid}`, upgrade: true, ...tls }))).to.equal(miss);
    await waitFor(async () => (await bridge!.metric('allium_handshakes_total', { result: 'ERR_LINK_REPLAY' })) >= 1, 5000, 'replay counted');

    // The relay with its own TLS: its miss page is its own, and probes at its path get exactly that.
    const nport = Number(new URL(parseBootstrap(native!.bootstrap).url).port);
    const nmiss = withoutDate(await rawHttp({ port: nport, path: '/index.html', ...tls }));
    expect(nmiss).to.match(/^HTTP\/1\.1 404 Not Found\n/);
    for (const p of [
      { path: '/allium' },
      { path: '/allium', upgrade: true },
      { path: `/allium?token=${token(IdentityKey.generate().publicKey)}`, upgrade: true },
    ]) {
      expect(withoutDate(await rawHttp({ port: nport, ...tls, ...p })), JSON.stringify(p)).to.equal(nmiss);
    }
  });
});
