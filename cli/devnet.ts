/**
 * `allium devnet` (the README's main job): a real local Allium network on 127.0.0.1 — relay processes and a client —
 * showing each capability live, then a compact status line until Ctrl-C stops everything.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { Messenger } from '../client/messaging/node.js';
import { startSocksServer } from '../client/socks.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { AlliumError, ConfigError } from '../protocol/errors.js';
import { SQLITE_INSTALL, sqliteUnavailable } from '../relay/sqlite.js';
import { IdentityKey } from '../crypto/keys.js';
import { toHex } from '../protocol/bytes.js';
import { NETWORK_MAP_PAGE } from './network-map.js';
import { memoryBookmarkStorage } from '../client/gateway/bookmarks.js';
import { startGateway, type Gateway } from '../client/gateway/server.js';
import { publishSite, type SiteSource } from '../client/site.js';
import { SINGLE_HOST_NETWORK } from '../relay/config.js';
import { packageRoot, readMetric, RelayStartError, spawnRelay, type RelayProcess } from './relay-process.js';

/**
 * How to run `allium` in hints: `npx allium` from an installed package (a node_modules folder), else `node` and the
 * path of bin/allium.js from the working directory (`node bin/allium.js` in a checkout).
 */
export function alliumCommand(root = packageRoot(), cwd = process.cwd()): string {
  if (root.split(sep).includes('node_modules')) return 'npx allium';
  const rel = relative(cwd, join(root, 'bin', 'allium.js'));
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? join(root, 'bin', 'allium.js') : rel}`;
}

export interface DevnetOptions {
  relays: number;
  exits: number;
  basePort: number;
  socksPort: number;
  httpPort: number;
  mapPort: number;
  /** Port of the gateway (falls back to a free port if taken). */
  gatewayPort: number;
  keep: boolean;
}

/** The demo site devnet publishes: two pages, a stylesheet and an image, made here. */
function demoSite(): SiteSource[] {
  const files: Record<string, [string, string]> = {
    'index.html': [
      'text/html',
      `<!DOCTYPE html><html lang="en"><head><title>Allium demo site</title><link rel="stylesheet" href="style.css"></head><body>
<h1><img src="allium.svg" width="48" height="48" alt=""> A site published into Allium</h1>
<p>This page was published by <code>allium devnet</code> a moment ago, under an updatable key, and you are reading it through the
local gateway: every block came from store relays through anonymous circuits.</p>
<p>The gateway's content filter rebuilt this page from what it knows to be safe: <a href="https://example.com/">a link to the open web</a>
leads to a warning page, and nothing here can make your browser contact anything but the gateway.</p>
<p><a href="pages/how.html">How it works</a></p></body></html>`,
    ],
    'pages/how.html': [
      'text/html',
      `<!DOCTYPE html><html lang="en"><head><title>How it works</title><link rel="stylesheet" href="../style.css"></head><body>
<h1>How it works</h1><ol><li>allium publish DIR --name NAME cut each file into encrypted blocks and stored them at three relays each.</li>
<li>A site manifest maps paths to the files' links; a signed edition record points at it.</li>
<li>The gateway resolves the newest edition, fetches the blocks, filters the page and serves it.</li></ol>
<p><a href="../index.html">Back</a></p></body></html>`,
    ],
    'style.css': [
      'text/css',
      'body{font:17px/1.55 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;background:#f6fbf1;color:#1d2a1f}h1{color:#2f6b20}h1 img{vertical-align:middle}code{background:#e4efd9;padding:0 .2rem}',
    ],
    'allium.svg': [
      'image/svg+xml',
      '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><circle cx="24" cy="20" r="14" fill="#8e6bbf"/><circle cx="18" cy="16" r="4" fill="#b89be0"/><path d="M24 34 V46" stroke="#4d7a3a" stroke-width="3"/></svg>',
    ],
  };
  return Object.entries(files).map(([path, [type, text]]) => {
    const bytes = new TextEncoder().encode(text);
    return { path, type, size: bytes.length, sha256: path, read: async () => bytes };
  });
}

interface DevRelay {
  nick: string;
  proc: ChildProcess;
  dir: string;
  fingerprint: string;
  bootstrap: string;
  metrics: string;
  admin: string;
  port: number;
}

const c = {
  bold: (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s),
  green: (s: string) => (process.stdout.isTTY ? `\x1b[32m${s}\x1b[0m` : s),
  dim: (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s),
};

function say(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** A relay's metric, NaN while it does not answer. */
async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  try {
    return await readMetric(url, name, labels);
  } catch {
    return NaN;
  }
}

interface ConsensusStatus {
  signers: number;
  period: number;
  sharedRandom: string | null;
  commits: number;
  reveals: number;
  validAfter: string;
  listed: Record<string, { flags: string[]; weight: number }>;
}

/** The consensus a relay holds, from its status page. */
async function consensusOf(r: DevRelay): Promise<ConsensusStatus | null> {
  try {
    return ((await (await fetch(new URL('status.json', r.admin))).json()) as { consensus: ConsensusStatus | null }).consensus;
  } catch {
    return null;
  }
}

/** The devnet's directory authorities: the first relays, their identities made in advance (specs/directory.md §7). */
interface Authorities {
  readonly count: number;
  readonly keys: readonly IdentityKey[];
  readonly fingerprints: readonly string[];
}

/** Flags earned in seconds, so a devnet shows guards, holders and measured weights at once (specs/directory.md §7.4). */
const DEVNET_FLAGS = {
  fast_min: 1,
  stable_mtbf: 2000,
  guard_min_known: 4000,
  guard_min_wfu: 0.5,
  guard_bw_guarantee: 1,
  holder_min_uptime: 4000,
  dir_min_known: 2000,
};

async function startRelayProcess(root: string, i: number, o: DevnetOptions, bootstrap: string[], exit: boolean, auth: Authorities): Promise<DevRelay> {
  const nick = i < auth.count ? `auth${i}` : exit ? `exit${i}` : `relay${i}`;
  const dir = join(root, nick);
  const port = o.basePort === 0 ? 0 : o.basePort + i;
  const metricsPort = o.basePort === 0 ? 0 : o.basePort + 100 + i;
  const config = {
    nickname: nick,
    listen: `127.0.0.1:${port}`,
    data_dir: dir,
    bootstrap,
    ...SINGLE_HOST_NETWORK,
    exit_policy: exit ? ['accept 127.0.0.1:*', 'reject *:*'] : ['reject *:*'],
    metrics: `127.0.0.1:${metricsPort}`,
    admin: '127.0.0.1:0',
    log_level: 'warn',
    storage_quota: 256 * 1024 * 1024,
    directory_authorities: auth.fingerprints,
    ...(i < auth.count ? { authority: true, authority_flags: DEVNET_FLAGS } : {}),
    timing: {
      gossip_interval: 2000,
      maintenance_interval: 500,
      repair_interval: 5000,
      descriptor_lifetime: 120_000,
      descriptor_renew: 30_000,
      consensus_interval: 2000,
      reachability_interval: 3000,
      measurement_interval: 120_000,
      measurement_duration: 1000,
    },
  };
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (i < auth.count) writeFileSync(join(dir, 'identity.key'), toHex(auth.keys[i]!.seed) + '\n', { mode: 0o600 });
  let r: RelayProcess;
  try {
    r = await spawnRelay(dir, config, { startTimeoutMs: 30_000 });
  } catch (e) {
    throw new ConfigError(`relay ${nick} failed to start: ${e instanceof RelayStartError ? e.reason : String(e)}`);
  }
  return {
    nick,
    proc: r.proc,
    dir,
    fingerprint: r.fingerprint,
    bootstrap: r.bootstrap,
    metrics: r.metrics,
    admin: r.admin!,
    port: Number(new URL(r.address).port),
  };
}

/** The network map's data: relays (up or not), overlay links between them, and the client's circuit paths. */
async function mapJson(relays: DevRelay[], client: AlliumClient): Promise<unknown> {
  const statuses = await Promise.all(
    relays.map(async (r) => {
      try {
        return (await (await fetch(new URL('status.json', r.admin))).json()) as { neighbours: string[]; directory: { fingerprint: string; exit: boolean }[] };
      } catch {
        return null;
      }
    }),
  );
  const links = new Set<string>();
  statuses.forEach((s, i) => {
    for (const n of s?.neighbours ?? []) {
      const a = relays[i]!.fingerprint;
      links.add(a < n ? `${a} ${n}` : `${n} ${a}`);
    }
  });
  const exits = new Set(statuses.flatMap((s) => s?.directory.filter((d) => d.exit).map((d) => d.fingerprint) ?? []));
  return {
    relays: relays.map((r, i) => ({
      nickname: r.nick,
      fingerprint: r.fingerprint,
      up: statuses[i] !== null && r.proc.exitCode === null,
      exit: exits.has(r.fingerprint),
    })),
    links: [...links].map((l) => l.split(' ')),
    circuits: client.listCircuits().map((c) => c.path.map((d) => d.fingerprint)),
  };
}

export async function runDevnet(o: DevnetOptions): Promise<void> {
  if (o.relays < 3) throw new ConfigError('--relays must be at least 3 (a circuit has 3 hops)');
  if (o.exits < 1 || o.exits >= o.relays) throw new ConfigError('--exits must be between 1 and relays - 1');
  const noSqlite = sqliteUnavailable();
  if (noSqlite) throw new ConfigError(`devnet: its relays store content, which needs the better-sqlite3 package, which ${noSqlite}: run "${SQLITE_INSTALL}"`);
  const root = mkdtempSync(join(tmpdir(), 'allium-devnet-'));
  const relays: DevRelay[] = [];
  const authKeys = Array.from({ length: Math.min(3, o.relays - o.exits) }, () => IdentityKey.generate());
  const auth: Authorities = { count: authKeys.length, keys: authKeys, fingerprints: authKeys.map((k) => k.fingerprint) };
  let client: AlliumClient | null = null;
  let content: ContentClient | null = null;
  let socks: Awaited<ReturnType<typeof startSocksServer>> | null = null;
  let http: Server | null = null;
  let mapServer: Server | null = null;
  let gateway: Gateway | null = null;
  const extraClients: AlliumClient[] = [];
  const messengers: Messenger[] = [];
  let statusTimer: ReturnType<typeof setInterval> | null = null;
  let stopping = false;

  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (statusTimer) clearInterval(statusTimer);
    process.stdout.write('\n');
    say('Stopping: client, SOCKS listener, relays…');
    await gateway?.stop();
    content?.close();
    for (const m of messengers) m.close();
    for (const x of extraClients) await x.stop();
    await socks?.close();
    await client?.stop();
    http?.close();
    mapServer?.closeAllConnections();
    mapServer?.close();
    await Promise.all(
      relays.map(
        (r) =>
          new Promise<void>((res) => {
            if (r.proc.exitCode !== null) return res();
            r.proc.once('exit', () => res());
            r.proc.kill('SIGTERM');
          }),
      ),
    );
    if (!o.keep) rmSync(root, { recursive: true, force: true });
    say('Stopped cleanly.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    say(c.bold(`Allium local network: ${o.relays} relays (${o.exits} exits) on 127.0.0.1`));
    const t0 = Date.now();
    const first = await startRelayProcess(root, 0, o, [], false, auth);
    relays.push(first);
    say(`  ${first.nick.padEnd(7)} joined  ${c.dim(first.fingerprint.slice(0, 16))}  port ${first.port}  (bootstrap, directory authority)`);
    const rest = await Promise.all(
      Array.from({ length: o.relays - 1 }, (_, j) => {
        const i = j + 1;
        return startRelayProcess(root, i, o, [first.bootstrap], i >= o.relays - o.exits, auth);
      }),
    );
    for (const r of rest) {
      relays.push(r);
      say(
        `  ${r.nick.padEnd(7)} joined  ${c.dim(r.fingerprint.slice(0, 16))}  port ${r.port}${auth.fingerprints.includes(r.fingerprint) ? '  (directory authority)' : ''}`,
      );
    }
    for (;;) {
      const sizes = await Promise.all(relays.map((r) => metric(r.metrics, 'allium_directory_relays')));
      if (sizes.every((s) => s === o.relays)) break;
      if (Date.now() - t0 > 60_000) throw new ConfigError('the directory did not converge in 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    say(c.green(`✓ directory converged: every relay knows all ${o.relays} relays (${((Date.now() - t0) / 1000).toFixed(1)} s)`));

    // The authorities test every relay, measure it and vote; flags are earned within seconds here (days in a public network).
    const tAuth = Date.now();
    for (;;) {
      const listed = await Promise.all(relays.map((r) => metric(r.metrics, 'allium_consensus_relays', { flag: 'all' })));
      const flagged = await Promise.all(['guard', 'holder', 'measured'].map((f) => metric(first.metrics, 'allium_consensus_relays', { flag: f })));
      if (listed.every((n) => n >= o.relays * 1) && flagged.every((n) => n === o.relays)) break;
      if (Date.now() - tAuth > 90_000) throw new ConfigError('the authorities did not sign a consensus with flags and measured weights in 90 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const cs = await consensusOf(first);
    say(
      c.green(
        `✓ ${auth.count} directory authorities tested, measured and voted: one consensus of ${o.relays} relays, signed by ${cs?.signers ?? '?'} of ${auth.count} (${((Date.now() - tAuth) / 1000).toFixed(1)} s)`,
      ),
    );
    if (cs) {
      for (const r of relays) {
        const e = cs.listed[r.fingerprint];
        say(`    ${r.nick.padEnd(7)} ${(e ? e.flags.join(' ') : 'not listed').padEnd(44)} measured weight ${e ? `${(e.weight / 1e6).toFixed(1)} MB/s` : '—'}`);
      }
      say(
        `    ${c.dim(`placement period ${cs.period}, shared random value ${cs.sharedRandom ?? '(first period: not yet)'}; ${cs.commits} commits, ${cs.reveals} reveals so far`)}`,
      );
    }

    client = new AlliumClient({ bootstrap: [first.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, authorities: auth.fingerprints });
    await client.start();
    const cc = client.directory.consensus;
    say(
      c.green(
        `✓ client checked the consensus (${cc?.signers.length ?? 0} of ${auth.count} authority signatures) and fetched descriptors from ${Math.min(3, o.relays)} relays (${client.directory.all().length} usable relays)`,
      ),
    );

    http = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('Hello from a web server, reached anonymously through three Allium relays.\n');
    });
    await new Promise<void>((r, j) => {
      http!.once('error', j);
      http!.listen(o.httpPort, '127.0.0.1', () => r());
    });
    const httpPort = (http.address() as { port: number }).port;

    const tBuild = Date.now();
    const circuit = await client.newCircuit({ exitPort: httpPort });
    say(c.green(`✓ circuit built in ${Date.now() - tBuild} ms, one round trip: you → ${circuit.path.map((d) => d.nick).join(' → ')} → web server`));
    circuit.close();

    try {
      socks = await startSocksServer(client, { port: o.socksPort });
    } catch {
      socks = await startSocksServer(client, { port: 0 });
    }
    say(c.green(`✓ SOCKS5 listener on 127.0.0.1:${socks.port}. Try it in another terminal:`));
    say(`    curl --socks5-hostname 127.0.0.1:${socks.port} http://127.0.0.1:${httpPort}/`);
    const s = await client.connect('127.0.0.1', httpPort, { isolation: 'devnet-demo' });
    const reply = await new Promise<string>((res) => {
      let text = '';
      s.on('stream:data', (d) => {
        text += new TextDecoder().decode(d);
        s.consumed(1);
      });
      s.on('stream:end', () => res(text));
      s.write(new TextEncoder().encode(`GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`));
    });
    say(`    ${c.dim('→ ' + (reply.split('\r\n\r\n')[1] ?? '').trim())}`);

    content = new ContentClient(client);
    const file = new TextEncoder().encode(`A file published into Allium at ${new Date().toISOString()}.\n`.repeat(2000));
    const tPut = Date.now();
    const link = await content.put(file);
    say(c.green(`✓ published a ${(file.length / 1024).toFixed(0)} KiB file in ${Date.now() - tPut} ms, stored encrypted on 3 relays; its link:`));
    say(`    ${link}`);
    const tGet = Date.now();
    const back = await content.get(link);
    const same = back.length === file.length && back.every((v, i) => v === file[i]);
    say(c.green(`✓ fetched it back by its link through anonymous circuits in ${Date.now() - tGet} ms: ${same ? 'byte-exact' : 'MISMATCH'}`));
    say(`    try: ${alliumCommand()} get '${link}' -o out.txt --test-network --bootstrap "${first.bootstrap}"`);

    // Two identities exchange messages through introduction and rendezvous points; neither learns where the other is.
    const bobClient = new AlliumClient({
      bootstrap: [first.bootstrap],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      authorities: auth.fingerprints,
    });
    await bobClient.start();
    extraClients.push(bobClient);
    const alice = new Messenger(client);
    const bob = new Messenger(bobClient);
    messengers.push(alice, bob);
    const tMsg = Date.now();
    // Both listen, as any messaging app does: a reply reaches Bob live, or through his mailbox if it must.
    await Promise.all([alice.startListening(), bob.startListening()]);
    const next = (m: Messenger, what: string): Promise<string> =>
      new Promise<string>((res, rej) => {
        const t = setTimeout(() => rej(new AlliumError('ERR_TIMEOUT', `${what} did not arrive within 60 s`)), 60_000);
        m.once('message:received', (r) => {
          clearTimeout(t);
          res(new TextDecoder().decode(r.data));
        });
      });
    const received = next(alice, "Bob's message");
    const sent = await bob.send(alice.address, new TextEncoder().encode('Hello Alice, from Bob (end-to-end encrypted).'));
    const text = await received;
    const answered = next(bob, "Alice's answer");
    const replied = await alice.send(bob.address, new TextEncoder().encode('Hi Bob! Neither of us knows where the other is.'));
    const answer = await answered;
    const how = sent.status === 'delivered' && replied.status === 'delivered' ? 'through a rendezvous point' : 'through a rendezvous point and mailboxes';
    say(c.green(`✓ two identities exchanged messages ${how} in ${Date.now() - tMsg} ms:`));
    say(`    ${c.dim(bob.address.slice(0, 12) + '… → ' + alice.address.slice(0, 12) + '…: ' + text)}`);
    say(`    ${c.dim(alice.address.slice(0, 12) + '… → ' + bob.address.slice(0, 12) + '…: ' + answer)}`);

    mapServer = createServer((req, res) => {
      if (req.url === '/map.json') {
        void mapJson(relays, client!).then((m) =>
          res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(m)),
        );
      } else if (req.url === '/' || req.url === '/index.html') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(NETWORK_MAP_PAGE);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r, j) => {
      mapServer!.once('error', j);
      mapServer!.listen(o.mapPort, '127.0.0.1', () => r());
    });
    const mapPort = (mapServer.address() as { port: number }).port;
    say(c.green(`✓ network map: http://127.0.0.1:${mapPort}/   relay status pages: ${relays[0]!.admin} (one per relay)`));

    // A site under an updatable key, read through the local gateway (docs/publishing.md).
    const tSite = Date.now();
    const site = await publishSite(content, demoSite(), { publisher: IdentityKey.generate(), name: 'demo', note: 'The first edition.' });
    const bookmarks = memoryBookmarkStorage();
    try {
      gateway = await startGateway({ content, bookmarks }, { port: o.gatewayPort, pollIntervalMs: 60_000 });
    } catch {
      gateway = await startGateway({ content, bookmarks }, { port: 0, pollIntervalMs: 60_000 });
    }
    gateway.bookmarks.add(site.link, 'Allium demo site');
    say(
      c.green(
        `✓ published a site (${site.manifest.files.length} files) under an updatable key in ${Date.now() - tSite} ms; the local gateway serves it to any browser:`,
      ),
    );
    say(`    ${gateway.url.replace(/\/$/, '')}${gateway.pathOf(site.link)}/`);
    say(`    gateway home (bookmarks, what changed): ${gateway.url}`);

    say(c.bold('\nRunning. Ctrl-C stops everything.'));
    statusTimer = setInterval(() => {
      void (async () => {
        const alive = relays.filter((r) => r.proc.exitCode === null);
        const circuits = await Promise.all(alive.map((r) => metric(r.metrics, 'allium_circuits')));
        const bytes = await Promise.all(alive.map((r) => metric(r.metrics, 'allium_link_bytes_total', { direction: 'out' })));
        const blocks = await Promise.all(alive.map((r) => metric(r.metrics, 'allium_store_blocks')));
        const sum = (a: number[]): number => a.reduce((x, y) => x + (Number.isFinite(y) ? y : 0), 0);
        const cs = client!.directory.consensus;
        const line = `relays ${alive.length}/${relays.length} · consensus ${cs ? new Date(cs.validAfter).toISOString().slice(11, 19) : '—'} · circuit hops ${sum(circuits)} · client circuits ${client!.openCircuits} · relayed ${(sum(bytes) / 1e6).toFixed(1)} MB · stored blocks ${sum(blocks)}`;
        if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
        else say(line);
      })();
    }, 2000);
  } catch (e) {
    process.stderr.write(`allium devnet: ${(e as Error).message}\n`);
    await stop(1);
  }
}
