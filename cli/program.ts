/**
 * The `allium` command's program (docs/operator-guide.md, docs/developer-guide.md): thin shells over the library —
 * argv, config, signals, logging. No protocol logic lives here. cli/allium.ts is the entry that runs it.
 *
 * Exit codes: cli/errors.ts (0 success, 1 runtime failure, 2 usage or configuration error, 3 network unreachable,
 * 4 not found).
 */
import { Command, Option } from 'commander';
import { initCrypto } from '../crypto/index.js';
import { EXIT, EXIT_CODES_HELP, fail } from './errors.js';
import { errnoText, probeListen } from '../net/listen.js';
import { parseLink } from '../protocol/content-link.js';
import { ALLIUM_VERSION } from '../relay/version.js';
import { parseHostPort } from '../relay/config.js';
import { writeFileAtomic } from '../relay/keystore.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { IdentityKey } from '../crypto/keys.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { ConfigError } from '../protocol/errors.js';
import type { ClientFlags } from './client-session.js';
import type { runGateway, runSitePublish } from './site-commands.js';

const isFolder = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

export { EXIT };

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** The trade-off of --convergent, said plainly (specs/content.md §9). */
const CONVERGENT_HELP =
  'use convergent keys: the same file gives the same link and is stored once, but anyone who has a copy of the file can compute its keys and test whether a relay stores it or who fetches it (default: random keys, which give no such test)';

/** A file named on the command line; a missing or unreadable one is a usage error naming it. */
function readInput(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new ConfigError(`${file}: ${errnoText((e as NodeJS.ErrnoException).code)}`);
  }
}

/** The client flags of a command's parsed options (commander's camelCase names). */
function clientFlags(opts: Record<string, unknown>): ClientFlags {
  const f: ClientFlags = { bootstrap: opts['bootstrap'] as string[], bridge: opts['bridge'] as string[], testNetwork: !!opts['testNetwork'] };
  if (opts['useBridges'] !== undefined) f.useBridges = String(opts['useBridges']);
  if (opts['tlsCa'] !== undefined) f.tlsCa = String(opts['tlsCa']);
  if (opts['config'] !== undefined) f.config = String(opts['config']);
  if (opts['dataDir'] !== undefined) f.dataDir = String(opts['dataDir']);
  if (opts['hops'] !== undefined) f.hops = String(opts['hops']);
  if (Array.isArray(opts['authority'])) f.authority = opts['authority'] as string[];
  return f;
}

/**
 * The code of the content commands, loaded when one of them runs: each command loads only what it uses, so a relay
 * process holds no client, content or site code (its resident memory; docs/operator-guide.md).
 */
async function contentCommands(): Promise<{
  startClient: typeof import('./client-session.js').startClient;
  ContentClient: typeof import('../client/content.js').ContentClient;
  progressBar: typeof import('./progress.js').progressBar;
}> {
  const [{ startClient }, { ContentClient }, { progressBar }] = await Promise.all([
    import('./client-session.js'),
    import('../client/content.js'),
    import('./progress.js'),
  ]);
  return { startClient, ContentClient, progressBar };
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(EXIT.OK),
      () => process.exit(EXIT.FAILURE),
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('allium')
    .description('Allium: an anonymous onion-routed overlay network — relays, circuits, censorship-resistant content and private messaging')
    .version(ALLIUM_VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n`)
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
    });

  program
    .command('relay')
    .description('run a relay (a volunteer supernode); prints the bootstrap line others use to join through it')
    .option('-c, --config <file>', 'TOML config file (see docs/operator-guide.md)')
    .option('--listen <host:port>', 'WebSocket listen address (default 127.0.0.1:9001)')
    .option('--data-dir <dir>', 'keys and state (default ./allium-relay)')
    .option('--bootstrap <line>', 'relay to join through: "ws://host:port/path FINGERPRINT" (repeatable)', collect, [])
    .option('--nickname <name>', 'public nickname')
    .option('--exit-policy <line>', 'exit policy line, e.g. "accept *:443" (repeatable; default reject *:*)', collect, [])
    .option('--metrics <host:port>', 'serve Prometheus metrics here')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .option('--log-format <format>', 'auto (readable on a terminal, JSON lines otherwise) | json | pretty')
    .option('--verify-config', 'check the configuration (keys, values, data_dir, that every listen address is free) and exit; makes nothing')
    .option('--bridge', 'run as an unlisted bridge: never published in the directory; prints a bridge line to hand out')
    .option('--ready-file <file>', 'write {fingerprint,address,metrics} as JSON here once running')
    .addOption(new Option('--test-network', 'loopback test network settings: fast timers, exits may reach 127.0.0.1, relays may dial 127.0.0.1').hideHelp())
    .action(async (opts: Record<string, unknown>) => {
      try {
        await initCrypto();
        const { runRelayCommand } = await import('./relay-command.js');
        await runRelayCommand(opts);
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('client')
    .description('run a client with a SOCKS5 listener (curl --socks5-hostname 127.0.0.1:9050 …)')
    .option('--bootstrap <line>', 'relay to join through (repeatable; or ALLIUM_BOOTSTRAP=line,line)', collect, [])
    .option('--bridge <line>', 'bridge to enter through: "bridge wss://host/path FINGERPRINT secret=SECRET" (repeatable; or ALLIUM_BRIDGES)', collect, [])
    .option('--use-bridges <when>', '"always" (default with bridges: never contact a public relay directly) or "fallback" (only when no public relay answers)')
    .option('--link-padding <mode>', 'link padding: "auto" (default), "reduced" (metered connections) or "off"')
    .option('--tls-ca <file>', 'extra trusted certificates (PEM) for wss:// relays and bridges')
    .option('-c, --config <file>', 'client config file (TOML: bootstrap, bridges, use_bridges, link_padding, tls_ca, authorities, data_dir, hops, socks)')
    .option('--socks <host:port>', 'SOCKS5 listen address (default 127.0.0.1:9050)')
    .option('--data-dir <dir>', 'directory cache and guards (default ~/.local/state/allium: see docs/developer-guide.md)')
    .option('--hops <n>', 'hops per circuit (1-8, default 3)')
    .option(
      '--authority <fingerprint>',
      'require the signed consensus of these directory authorities (repeatable; default: the set every bootstrap line names)',
      collect,
      [],
    )
    .addOption(new Option('--test-network', 'allow relays on one address (loopback test networks)').hideHelp())
    .action(async (opts: Record<string, unknown>) => {
      try {
        await initCrypto();
        const [{ clientOptionsFrom }, { AlliumClient }, { Messenger }, { startSocksServer }] = await Promise.all([
          import('./client-session.js'),
          import('../client/client.js'),
          import('../client/messaging/node.js'),
          import('../client/socks.js'),
        ]);
        const { options, config } = clientOptionsFrom({ ...clientFlags(opts), poolSize: 2 });
        const socksAt = parseHostPort(String(opts['socks'] ?? config.socks ?? '127.0.0.1:9050'), opts['socks'] ? '--socks' : 'socks');
        await probeListen(socksAt.host, socksAt.port, opts['socks'] ? '--socks' : 'socks'); // before the network is contacted
        const client = new AlliumClient(options);
        client.on('client:progress', (m) => process.stderr.write(`allium: ${m}\n`));
        await client.start();
        new Messenger(client); // lets SOCKS reach *.allium hidden services
        const { host, port } = socksAt;
        const socks = await startSocksServer(client, { host, port, setting: opts['socks'] ? '--socks' : 'socks' });
        process.stdout.write(
          `Allium client ready: SOCKS5 on ${host}:${socks.port}\n  try: curl --socks5-hostname ${host}:${socks.port} http://example.test/\n`,
        );
        onSignals(async () => {
          await socks.close();
          await client.stop();
        });
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('devnet')
    .description('start a local Allium network on 127.0.0.1 (relays, a client, SOCKS5) and show it working')
    .option('--relays <n>', 'relay processes', '5')
    .option('--exits <n>', 'of which exits (allowed to reach 127.0.0.1 only)', '2')
    .option('--base-port <port>', 'relay i listens on base+i, its metrics on base+100+i (0: any free ports)', '0')
    .option('--socks-port <port>', 'SOCKS5 listener port (falls back to a free port if taken)', '9050')
    .option('--http-port <port>', 'port of the demo web server (0: any)', '0')
    .option('--map-port <port>', 'port of the network map page (0: any)', '0')
    .option('--gateway-port <port>', 'port of the gateway serving the demo site (falls back to a free port if taken)', '8888')
    .option('--keep', "keep the relays' data directories after stopping")
    .action(async (opts: Record<string, unknown>) => {
      try {
        await initCrypto();
        const { runDevnet } = await import('./devnet.js');
        await runDevnet({
          relays: Number(opts['relays']),
          exits: Number(opts['exits']),
          basePort: Number(opts['basePort']),
          socksPort: Number(opts['socksPort']),
          httpPort: Number(opts['httpPort']),
          mapPort: Number(opts['mapPort']),
          gatewayPort: Number(opts['gatewayPort']),
          keep: !!opts['keep'],
        });
      } catch (e) {
        fail(e);
      }
    });

  const clientOptions = (cmd: Command): Command =>
    cmd
      .option('--bootstrap <line>', 'relay to join through (repeatable; or ALLIUM_BOOTSTRAP=line,line)', collect, [])
      .option('--bridge <line>', 'bridge to enter through (repeatable; or ALLIUM_BRIDGES=line,line)', collect, [])
      .option('--use-bridges <when>', '"always" (default with bridges) or "fallback"')
      .option('--link-padding <mode>', 'link padding: "auto" (default), "reduced" or "off"')
      .option('--tls-ca <file>', 'extra trusted certificates (PEM) for wss:// relays and bridges')
      .option('-c, --config <file>', 'client config file (TOML)')
      .option('--data-dir <dir>', 'directory cache and guards (default ~/.local/state/allium: see docs/developer-guide.md)')
      .option(
        '--authority <fingerprint>',
        'require the signed consensus of these directory authorities (repeatable; default: the set every bootstrap line names)',
        collect,
        [],
      )
      .addOption(new Option('--test-network', 'allow relays on one address (loopback test networks)').hideHelp());

  clientOptions(
    program
      .command('put')
      .description('publish a file, or a folder as a site; prints its allium:chk link (a site\'s ends with "/")')
      .argument('<file>', 'file or folder to publish')
      .option('--convergent', CONVERGENT_HELP)
      .addOption(new Option('--random-key', 'random keys (now the default; accepted for old scripts)').hideHelp()),
  ).action(async (file: string, opts: Record<string, unknown>) => {
    try {
      await initCrypto();
      if (isFolder(file))
        return await (await import('./site-commands.js')).runSitePublish('put', file, { ...clientFlags(opts), convergent: !!opts['convergent'] });
      const data = readInput(file);
      const { startClient, ContentClient, progressBar } = await contentCommands();
      const client = await startClient(clientFlags(opts));
      const content = new ContentClient(client);
      const bar = progressBar('put');
      const link = await content.put(data, { convergent: !!opts['convergent'], onProgress: bar.update });
      bar.stop();
      process.stdout.write(`${link}\n`);
      content.close();
      await client.stop();
      process.exit(EXIT.OK);
    } catch (e) {
      fail(e);
    }
  });

  clientOptions(
    program
      .command('get')
      .description('fetch content by its allium: link')
      .argument('<link>', 'allium:chk/… or allium:ssk/…/name')
      .requiredOption('-o, --output <file>', 'where to write the content ("-" for standard output)'),
  ).action(async (link: string, opts: Record<string, unknown>) => {
    try {
      await initCrypto();
      parseLink(link); // a mistyped link is refused before the network is contacted
      const { startClient, ContentClient, progressBar } = await contentCommands();
      const client = await startClient(clientFlags(opts));
      const content = new ContentClient(client);
      const bar = progressBar('get');
      const data = await content.get(link, { onProgress: bar.update });
      bar.stop();
      if (opts['output'] === '-') process.stdout.write(data);
      else writeFileAtomic(String(opts['output']), data, 0o644);
      content.close();
      await client.stop();
      process.exit(EXIT.OK);
    } catch (e) {
      fail(e);
    }
  });

  for (const name of ['publish', 'update'] as const) {
    clientOptions(
      program
        .command(name)
        .description(
          name === 'publish'
            ? 'publish a file, or a folder as a site, under an updatable key (a stable allium:ssk link); creates the key file if missing'
            : 'publish a new edition of an updatable key or site (the link stays the same; unchanged files are not sent again)',
        )
        .argument('<file>', 'file or folder to publish')
        .option('--name <name>', 'the name under your key (part of the link; a folder remembers it for "update")')
        .option('--key <file>', 'publisher key file (keep it secret; back it up; default ./allium-publisher.key)')
        .option('--note <text>', "a site's note on what this edition changed (shown to readers who follow it)")
        .option('--convergent', CONVERGENT_HELP)
        .addOption(new Option('--random-key', 'random keys (now the default; accepted for old scripts)').hideHelp()),
    ).action(async (file: string, opts: Record<string, unknown>) => {
      try {
        await initCrypto();
        if (isFolder(file)) {
          const f: Parameters<typeof runSitePublish>[2] = { ...clientFlags(opts), convergent: !!opts['convergent'] };
          if (opts['name'] !== undefined) f.name = String(opts['name']);
          if (opts['key'] !== undefined) f.key = String(opts['key']);
          if (opts['note'] !== undefined) f.note = String(opts['note']);
          return await (await import('./site-commands.js')).runSitePublish(name, file, f);
        }
        if (opts['name'] === undefined) throw new ConfigError(`${name} FILE needs --name NAME`);
        const keyFile = String(opts['key'] ?? './allium-publisher.key');
        readInput(file); // the file to publish must exist before a key is made
        let key: IdentityKey;
        if (existsSync(keyFile)) key = IdentityKey.fromSeed(fromHex(readFileSync(keyFile, 'utf8').trim()));
        else if (name === 'update') throw new ConfigError(`no publisher key at ${keyFile}: run "allium publish" first, or pass --key`);
        else {
          key = IdentityKey.generate();
          writeFileAtomic(keyFile, toHex(key.seed) + '\n');
          process.stderr.write(`allium: created publisher key ${keyFile} (back it up: it is the only way to update this link)\n`);
        }
        const data = readInput(file);
        const { startClient, ContentClient, progressBar } = await contentCommands();
        const client = await startClient(clientFlags(opts));
        const content = new ContentClient(client);
        const bar = progressBar(name);
        const r = await content.publish(key, String(opts['name']), data, { convergent: !!opts['convergent'], onProgress: bar.update });
        bar.stop();
        process.stdout.write(`${r.link}\n`);
        process.stderr.write(`allium: edition ${r.edition}\n`);
        content.close();
        await client.stop();
        process.exit(EXIT.OK);
      } catch (e) {
        fail(e);
      }
    });
  }

  clientOptions(
    program
      .command('status')
      .description("count how many of a file's or site's blocks are at their holders")
      .argument('<link>', 'allium:chk/… or allium:ssk/…/name'),
  ).action(async (link: string, opts: Record<string, unknown>) => {
    try {
      await initCrypto();
      await (await import('./site-commands.js')).runStatus(link, clientFlags(opts));
    } catch (e) {
      fail(e);
    }
  });

  clientOptions(
    program
      .command('gateway')
      .description('serve Allium content to any browser at http://127.0.0.1:8888/ (filtered so pages cannot reach the open web)')
      .option('--listen <host:port>', 'listen address (default 127.0.0.1:8888; loopback only unless --allow-remote)')
      .option('--allow-remote', 'listen on an address that is not loopback (the gateway has no authentication)')
      .option('--host-name <name>', 'another Host name to answer to, e.g. a name in /etc/hosts (repeatable)', collect, []),
  ).action(async (opts: Record<string, unknown>) => {
    try {
      await initCrypto();
      const f: Parameters<typeof runGateway>[0] = { ...clientFlags(opts), allowRemote: !!opts['allowRemote'], hostName: opts['hostName'] as string[] };
      if (opts['listen'] !== undefined) f.listen = String(opts['listen']);
      await (await import('./site-commands.js')).runGateway(f);
    } catch (e) {
      fail(e);
    }
  });

  return program;
}
