/**
 * Bridges, probe resistance and bootstrap fallback against relay processes: four public relays (one a directory
 * authority, one an exit to 127.0.0.1) and an unlisted bridge. A prober without the bridge secret gets the bytes of a
 * plain 404; a replayed first message gets the same; a client whose public relays are all at closed ports gets in
 * through the bridge and builds circuits; a client set to use bridges dials nothing else; when nothing answers the
 * client says what it tried; and the bridge never enters any relay's directory or consensus.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { IdentityKey } from '../../crypto/keys.js';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { verifyConsensusHead } from '../../protocol/consensus.js';
import { verifyDescriptor } from '../../protocol/descriptor.js';
import { LinkInitiator } from '../../protocol/link-handshake.js';
import { AlliumClient, type BootstrapStage, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { NoEntryError, parseBootstrap, parseBridgeLine } from '../../client/bootstrap.js';
import { fetchBridgeDescriptor, fetchConsensusHead, fetchConsensusEntries, fetchFromRelay } from '../../client/directory.js';
import { openLink, type SocketFactory } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { fetchThrough, freePort, rawHttp, startBytesServer, startRelay, tempDir, waitFor, withoutDate, type RelayProcess } from '../helpers/network.js';
import { needProgram } from '../helpers/programs.js';
import { patternBytes } from '../helpers/content.js';
import { clientOptionsFrom } from '../../cli/client-session.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');

/** A socket factory that records every URL it is asked to dial. */
function recording(): { factory: SocketFactory; urls: string[] } {
  const urls: string[] = [];
  return { urls, factory: (url, signal) => (urls.push(url), nodeSocketFactory(url, signal)) };
}

const origin = (url: string): string => new URL(url).origin + new URL(url).pathname;

describe('bridges and probe resistance (relay processes)', function () {
  this.timeout(180_000);
  const relays: RelayProcess[] = [];
  let bridge: RelayProcess;
  let authority: string;
  let web: { port: number; close(): Promise<void> };
  const page = patternBytes(200_000, 9);

  before(async () => {
    const dir = tempDir('allium-auth-');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = IdentityKey.generate();
    writeFileSync(join(dir, 'identity.key'), toHex(key.seed) + '\n', { mode: 0o600 });
    authority = key.fingerprint;
    // Descriptors live 10 s (renewed every 3 s), so that the test of relay addresses learned earlier waits 10 s, not
    // the local networks' 30 s, for the cached ones to expire.
    const timing = { consensus_interval: 1000, descriptor_lifetime: 10_000, descriptor_renew: 3000 };
    const common = { directory_authorities: [authority] };
    relays.push(await startRelay({ dataDir: dir, nickname: 'auth', timing, extra: { ...common, authority: true } }));
    for (let i = 1; i < 4; i++) {
      const exitPolicy = i === 3 ? ['accept 127.0.0.1:*', 'reject *:*'] : ['reject *:*'];
      relays.push(await startRelay({ nickname: `r${i}`, bootstrap: [relays[0]!.bootstrap], exitPolicy, timing, extra: common }));
    }
    bridge = await startRelay({ nickname: 'bridge', bootstrap: [relays[0]!.bootstrap], timing, extra: { ...common, bridge: true } });
    await waitFor(
      async () => (await Promise.all([...relays, bridge].map((r) => r.metric('allium_directory_relays')))).every((n) => n === 4),
      30_000,
      'four public relays everywhere',
    );
    web = await startBytesServer(page);
  });
  after(async () => {
    await web?.close();
    for (const r of [...relays, bridge]) await r?.kill('SIGKILL');
  });

  it('`allium relay` with bridge = true prints a bridge line: address, fingerprint and a secret', () => {
    expect(bridge.bridge).to.match(/^bridge ws:\/\/127\.0\.0\.1:\d+\/allium [0-9a-f]{64} secret=[0-9a-f]{64}$/);
    const b = parseBridgeLine(bridge.bridge!);
    expect(toHex(b.identity)).to.equal(bridge.fingerprint);
    expect(bridge.logs()).to.include(`bridge line: ${bridge.bridge}`);
    expect(bridge.logs()).to.not.include('bootstrap line:');
    expect(relays[1]!.bridge).to.equal(null);
  });

  it('answers a prober without the secret exactly as a request for a missing page (HTTP and WebSocket)', async () => {
    const b = parseBridgeLine(bridge.bridge!);
    const port = Number(new URL(b.url).port);
    const miss = withoutDate(await rawHttp({ port, path: '/no-such-page.html' }));
    expect(miss).to.match(/^HTTP\/1\.1 404 Not Found\n/);
    const wrongSecret = new LinkInitiator({ responder: b.identity, psk: crypto().random(32), now: Date.now() }).upgradeToken();
    const noSecret = new LinkInitiator({ responder: b.identity, now: Date.now() }).upgradeToken();
    const probes = [
      { path: '/allium' },
      { path: '/allium', upgrade: true },
      { path: '/no-such-page.html', upgrade: true },
      { path: `/allium?token=${noSecret}`, upgrade: true },
      { path: `/allium?token=${wrongSecret}`, upgrade: true },
      { path: `/allium?token=${'A'.repeat(86)}`, upgrade: true },
      { path: '/allium?token=garbage', upgrade: true },
    ];
    for (const p of probes) expect(withoutDate(await rawHttp({ port, ...p })), JSON.stringify(p)).to.equal(miss);
    expect(await bridge.metric('allium_handshakes_total', { result: 'ERR_LINK_PROBE' })).to.be.at.least(5);
  });

  it('refuses a replayed first handshake message with the same 404, and upgrades a fresh one', async () => {
    const b = parseBridgeLine(bridge.bridge!);
    const port = Number(new URL(b.url).port);
    const miss = withoutDate(await rawHttp({ port, path: '/missing' }));
    const token = new LinkInitiator({ responder: b.identity, psk: b.secret, now: Date.now() }).upgradeToken();
    const first = await rawHttp({ port, path: `/allium?token=${token}`, upgrade: true });
    expect(first.status).to.equal(101);
    const replay = await rawHttp({ port, path: `/allium?token=${token}`, upgrade: true });
    expect(withoutDate(replay)).to.equal(miss);
    await waitFor(async () => (await bridge.metric('allium_handshakes_total', { result: 'ERR_LINK_REPLAY' })) >= 1, 5000, 'replay counted');
    // The real client gets in.
    const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity, psk: b.secret });
    const { raws } = await fetchFromRelay(link, 0);
    expect(raws.length).to.equal(4);
    link.close();
  });

  it('a client whose public relays are all at closed ports gets in through the bridge and builds circuits', async () => {
    const closed = [await freePort(), await freePort()];
    const bootstrap = closed.map((p, i) => `ws://127.0.0.1:${p}/allium ${relays[i]!.fingerprint}`);
    const rec = recording();
    const client = new AlliumClient({
      bootstrap,
      bridges: [bridge.bridge!],
      useBridges: 'fallback',
      socketFactory: rec.factory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
    });
    const stages: BootstrapStage[] = [];
    const progress: string[] = [];
    client.on('client:bootstrap', (s) => stages.push(s));
    client.on('client:progress', (m) => progress.push(m));
    try {
      await client.start({ signal: AbortSignal.timeout(60_000) });
      expect(stages).to.deep.equal([
        { stage: 'bootstrap', tried: 2, reached: 0 },
        { stage: 'bridges', tried: 1, reached: 1 },
      ]);
      expect(progress.join('\n')).to.match(/trying 2 bootstrap relays\n[^]*trying 1 bridge \(nothing reachable so far\)\n[^]*bridge: 1 of 1 reachable/);
      expect(client.bridgeMode).to.equal(true);
      expect(
        client.directory
          .all()
          .map((d) => d.fingerprint)
          .sort(),
      ).to.deep.equal(relays.map((r) => r.fingerprint).sort());
      for (let i = 0; i < 3; i++) {
        const r = await fetchThrough(client, web.port);
        expect(r.status).to.equal(200);
        expect(Buffer.compare(r.body, page)).to.equal(0);
        expect(r.path[0]).to.equal(bridge.fingerprint);
        expect(r.path).to.have.length(3);
      }
      const publicAddresses = new Set(relays.map((r) => origin(r.address)));
      const dialed = rec.urls.map(origin);
      expect(
        dialed.filter((u) => publicAddresses.has(u)),
        'public relays dialed directly',
      ).to.deep.equal([]);
      expect(new Set(dialed)).to.deep.equal(new Set([...bootstrap.map((l) => origin(parseBootstrap(l).url)), origin(parseBridgeLine(bridge.bridge!).url)]));
    } finally {
      await client.stop();
    }
  });

  it('a client whose bootstrap relays are unreachable falls back to its cached directory, then to relay addresses learned earlier', async () => {
    const link = await openLink(nodeSocketFactory, parseBootstrap(relays[0]!.bootstrap).url, {
      role: 'initiator',
      responder: parseBootstrap(relays[0]!.bootstrap).identity,
    });
    const { raws } = await fetchFromRelay(link, 0);
    link.close();
    const closed = [await freePort(), await freePort()];
    const bootstrap = closed.map((p, i) => `ws://127.0.0.1:${p}/allium ${relays[i]!.fingerprint}`);
    const attempt = async (cached: Uint8Array[]): Promise<BootstrapStage[]> => {
      const stages: BootstrapStage[] = [];
      const client = new AlliumClient({
        bootstrap,
        storage: { directory: { load: async () => cached, save: async () => undefined } },
        socketFactory: nodeSocketFactory,
        ...SINGLE_HOST_CLIENT,
        poolSize: 0,
      });
      client.on('client:bootstrap', (st) => stages.push(st));
      try {
        await client.start({ signal: AbortSignal.timeout(60_000) });
        expect(client.bridgeMode).to.equal(false);
        const r = await fetchThrough(client, web.port);
        expect(Buffer.compare(r.body, page)).to.equal(0);
      } finally {
        await client.stop();
      }
      return stages;
    };
    // Fresh cached descriptors: the cache stage answers.
    const withCache = await attempt(raws);
    // With fewer than three sources from the cache, the client widens to relays they list (specs/directory.md §6.4).
    expect(withCache.map((st) => st.stage)).to.deep.equal(withCache[1]!.reached < 3 ? ['bootstrap', 'cache', 'widen'] : ['bootstrap', 'cache']);
    expect(withCache[0]).to.deep.equal({ stage: 'bootstrap', tried: 2, reached: 0 });
    expect(withCache[1]!.reached).to.be.at.least(1);
    // The same descriptors once expired (this file's relays' descriptors live 10 s): only their addresses are left.
    const lastExpiry = Math.max(...raws.map((raw) => verifyDescriptor(raw, 0, Number.MAX_SAFE_INTEGER).exp));
    await new Promise((r) => setTimeout(r, Math.max(0, lastExpiry - Date.now() + 500)));
    const learned = await attempt(raws);
    expect(learned.map((st) => st.stage)).to.deep.equal(learned[1]!.reached < 3 ? ['bootstrap', 'learned', 'widen'] : ['bootstrap', 'learned']);
    expect(learned[1]!.tried).to.equal(4);
    expect(learned[1]!.reached).to.be.at.least(1);
  });

  it('a client with bridges (use bridges always) dials only the bridge, even with reachable public relays', async () => {
    const rec = recording();
    const client = new AlliumClient({
      bootstrap: [relays[0]!.bootstrap],
      bridges: [bridge.bridge!],
      socketFactory: rec.factory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
    });
    try {
      await client.start({ signal: AbortSignal.timeout(60_000) });
      const r = await fetchThrough(client, web.port);
      expect(Buffer.compare(r.body, page)).to.equal(0);
      expect(r.path[0]).to.equal(bridge.fingerprint);
      // Content-style circuits (no exit port, a chosen last hop) start at the bridge too.
      const c = await client.newCircuit({ exitPort: null, last: client.directory.all().find((d) => d.fingerprint === relays[1]!.fingerprint)! });
      expect(c.path.map((d) => d.fingerprint)[0]).to.equal(bridge.fingerprint);
      c.close();
      await client.refreshDirectory();
      expect(new Set(rec.urls.map(origin))).to.deep.equal(new Set([origin(parseBridgeLine(bridge.bridge!).url)]));
    } finally {
      await client.stop();
    }
  });

  it('when no relay and no bridge answers: NoEntryError "no entry reachable: tried 2 relays and 2 bridges"', async () => {
    const b = parseBridgeLine(bridge.bridge!);
    const closed = [await freePort(), await freePort(), await freePort()];
    const client = new AlliumClient({
      bootstrap: [`ws://127.0.0.1:${closed[0]}/allium ${relays[0]!.fingerprint}`, `ws://127.0.0.1:${closed[1]}/allium ${relays[1]!.fingerprint}`],
      bridges: [
        `bridge ws://127.0.0.1:${closed[2]}/allium ${bridge.fingerprint} secret=${toHex(b.secret)}`,
        `bridge ${b.url} ${bridge.fingerprint} secret=${toHex(crypto().random(32))}`,
      ],
      useBridges: 'fallback',
      socketFactory: nodeSocketFactory,
      poolSize: 0,
    });
    let err: unknown = null;
    try {
      await client.start({ signal: AbortSignal.timeout(60_000) });
    } catch (e) {
      err = e;
    } finally {
      await client.stop();
    }
    expect(err).to.be.instanceOf(NoEntryError);
    expect((err as NoEntryError).code).to.equal('ERR_UNREACHABLE');
    expect((err as NoEntryError).message).to.equal('no entry reachable: tried 2 relays and 2 bridges');
    expect([(err as NoEntryError).relays, (err as NoEntryError).bridges]).to.deep.equal([2, 2]);
  });

  it('`allium client --bridge LINE` serves SOCKS5 through the bridge', async function () {
    needProgram(this, 'curl');
    const dataDir = tempDir('allium-cli-client-');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'cli', 'allium.ts'),
        'client',
        '--bridge',
        bridge.bridge!,
        '--socks',
        '127.0.0.1:0',
        '--data-dir',
        dataDir,
        '--test-network',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => /SOCKS5 on 127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null, 60_000, 'the client CLI');
      const socks = Number(/SOCKS5 on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
      expect(socks, out).to.be.greaterThan(0);
      expect(out).to.include('bridge: 1 of 1 reachable');
      const { stdout } = await run('curl', ['-s', '--max-time', '60', '-x', `socks5h://127.0.0.1:${socks}`, `http://127.0.0.1:${web.port}/`], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      });
      expect(Buffer.compare(stdout, page)).to.equal(0);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });

  it('a client config file takes bridge lines (and refuses an unknown key by name)', async () => {
    const dir = tempDir('allium-client-config-');
    const file = join(dir, 'client.toml');
    writeFileSync(file, `bridges = ["${bridge.bridge}"]\ndata_dir = "${join(dir, 'data')}"\n`);
    const { options, dataDir } = clientOptionsFrom({ bootstrap: [], config: file, testNetwork: true });
    expect(dataDir).to.equal(join(dir, 'data'));
    const client = new AlliumClient(options);
    try {
      await client.start({ signal: AbortSignal.timeout(60_000) });
      expect(client.bridgeMode).to.equal(true);
      const r = await fetchThrough(client, web.port);
      expect(Buffer.compare(r.body, page)).to.equal(0);
      expect(r.path[0]).to.equal(bridge.fingerprint);
    } finally {
      await client.stop();
    }
    writeFileSync(file, `bridge = ["${bridge.bridge}"]\n`);
    expect(() => clientOptionsFrom({ bootstrap: [], config: file }))
      .to.throw(/unknown key "bridge"/)
      .with.property('code', 'ERR_CONFIG');
  });

  it('the bridge never appears in any relay directory or consensus, and relays refuse its descriptor', async () => {
    // Every relay has signed (authority) or received a consensus listing the four public relays.
    const now = (): number => Date.now();
    for (const r of relays) {
      const link = await openLink(nodeSocketFactory, parseBootstrap(r.bootstrap).url, { role: 'initiator', responder: parseBootstrap(r.bootstrap).identity });
      try {
        const { raws } = await fetchFromRelay(link, 0);
        const fps = raws.map((raw) => verifyDescriptor(raw, now()).fingerprint);
        expect(fps.sort(), `directory of ${r.fingerprint}`).to.deep.equal(relays.map((x) => x.fingerprint).sort());
        let listed: string[] = [];
        await waitFor(
          async () => {
            const raw = await fetchConsensusHead(link);
            if (!raw) return false;
            const c = await fetchConsensusEntries(link, verifyConsensusHead(raw, new Set([authority]), now()));
            listed = c.entries.map((e) => toHex(e.id));
            return listed.length >= 4;
          },
          15_000,
          'a consensus',
        );
        expect(listed).to.include.members(relays.map((x) => x.fingerprint));
        expect(listed).to.not.include(bridge.fingerprint);
      } finally {
        link.close();
      }
    }
    // The bridge's own directory pages do not list it either; its descriptor comes only from bridge-get.
    const b = parseBridgeLine(bridge.bridge!);
    const link = await openLink(nodeSocketFactory, b.url, { role: 'initiator', responder: b.identity, psk: b.secret });
    const { raws } = await fetchFromRelay(link, 0);
    expect(raws.map((raw) => verifyDescriptor(raw, now()).fingerprint)).to.not.include(bridge.fingerprint);
    const desc = await fetchBridgeDescriptor(link, b.identity, now);
    link.close();
    expect(desc.fingerprint).to.equal(bridge.fingerprint);
    expect(() => verifyDescriptor(desc.raw, now()))
      .to.throw()
      .with.property('code', 'ERR_SIGNATURE');
    // A relay that is handed the bridge descriptor in gossip drops the link and keeps its directory clean.
    const target = parseBootstrap(relays[1]!.bootstrap);
    const gossiper = await openLink(nodeSocketFactory, target.url, { role: 'initiator', responder: target.identity, identity: IdentityKey.generate() });
    const closed = new Promise<string | null>((r) => gossiper.once('link:close', (e) => r(e?.code ?? null)));
    gossiper.sendControl({ t: 'gossip-push', ds: [desc.raw] });
    await closed;
    await waitFor(async () => (await relays[1]!.metric('allium_errors_total', { code: 'ERR_SIGNATURE' })) >= 1, 5000, 'signature error counted');
    expect(await relays[1]!.metric('allium_directory_relays')).to.equal(4);
  });
});
