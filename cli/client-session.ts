/**
 * Starting a client for one CLI command: entries from flags, a client config file or the environment
 * (ALLIUM_BOOTSTRAP, ALLIUM_BRIDGES: comma-separated lines), storage in a data dir.
 *
 * The client config file (`--config FILE`, TOML) takes the keys below; validation is strict like the relay's (an
 * unknown key is refused with its name). Flags given on the command line replace the file's values.
 *
 *   bootstrap = ["ws://host:port/path FINGERPRINT"]   # or "… FINGERPRINT authorities=A1+A2+A3", as relays print it
 *   bridges = ["bridge wss://host/path FINGERPRINT secret=SECRET"]
 *   use_bridges = "always"        # or "fallback": public relays first, bridges when none answers
 *   link_padding = "auto"         # or "reduced" (metered connections) or "off" (specs/link.md §4.4)
 *   tls_ca = "/path/ca.pem"       # extra trusted certificates for wss:// relays and bridges
 *   authorities = []              # directory authority fingerprints (empty: the set every bootstrap line names)
 *   data_dir = "~/.local/state/allium"   # default: $ALLIUM_STATE_DIR, $XDG_STATE_HOME/allium, ~/.local/state/allium
 *   hops = 3
 *   socks = "127.0.0.1:9050"      # allium client only
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AlliumClient, type ClientOptions, SINGLE_HOST_CLIENT } from '../client/client.js';
import { parseBootstrap, parseBridgeLine } from '../client/bootstrap.js';
import { defaultStateDir, fileStorage } from '../client/storage-node.js';
import { checkDataDir } from '../relay/preflight.js';
import { ConfigError } from '../protocol/errors.js';
import type { LinkPaddingMode } from '../protocol/link-padding.js';
import { identityOf, parseTomlFile } from '../relay/config.js';
import { unknownKeyHint } from '../relay/config-hints.js';
import type { SocketFactory } from '../net/dial.js';
import { createNodeSocketFactory, nodeSocketFactory } from '../net/ws-node.js';

export const clientConfigSchema = z.strictObject({
  bootstrap: z.array(z.string()).optional(),
  bridges: z.array(z.string()).optional(),
  use_bridges: z.enum(['always', 'fallback']).optional(),
  link_padding: z.enum(['auto', 'reduced', 'off']).optional(),
  tls_ca: z.string().optional(),
  authorities: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/)).optional(),
  data_dir: z.string().optional(),
  hops: z.number().int().min(1).max(8).optional(),
  socks: z.string().optional(),
});
export type ClientConfig = z.infer<typeof clientConfigSchema>;

/** Reads and validates a client config file. Throws ERR_CONFIG naming the file and the first bad key. */
export function loadClientConfigFile(path: string): ClientConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`client config ${path}: cannot read the file`);
  }
  const data = parseTomlFile(`client config ${path}`, text);
  const r = clientConfigSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const hint = unknownKeyHint([], issue.keys[0]!, Object.keys(clientConfigSchema.shape), {});
      throw new ConfigError(`client config ${path}: unknown key "${issue.keys[0]}"${hint ? `: ${hint}` : ''}`);
    }
    throw new ConfigError(`client config ${path}: key "${issue.path.join('.')}": ${issue.message}`);
  }
  r.data.bootstrap?.forEach(parseBootstrap);
  r.data.bridges?.forEach(parseBridgeLine);
  r.data.authorities?.forEach((a) => identityOf(a, `client config ${path}: authorities entry "${a}"`));
  return r.data;
}

export interface ClientFlags {
  bootstrap: string[];
  bridge?: string[];
  useBridges?: string;
  linkPadding?: string;
  tlsCa?: string;
  config?: string;
  dataDir?: string;
  hops?: string;
  authority?: string[];
  testNetwork?: boolean;
  quiet?: boolean;
  /** Pre-built circuits (default 0: one-shot commands). */
  poolSize?: number;
}

/** The socket factory for a CA file (or the default one). */
export function socketFactoryFor(tlsCa: string | undefined): SocketFactory {
  if (!tlsCa) return nodeSocketFactory;
  let ca: Buffer;
  try {
    ca = readFileSync(tlsCa);
  } catch {
    throw new ConfigError(`tls_ca: cannot read ${tlsCa}`);
  }
  return createNodeSocketFactory({ ca });
}

const fromEnv = (name: string): string[] =>
  (process.env[name] ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);

/** Merges flags, the config file and the environment into client options (flags win). */
export function clientOptionsFrom(flags: ClientFlags): { options: ClientOptions; config: ClientConfig; dataDir: string } {
  const config = flags.config ? loadClientConfigFile(flags.config) : {};
  const bootstrap = flags.bootstrap.length ? flags.bootstrap : (config.bootstrap ?? fromEnv('ALLIUM_BOOTSTRAP'));
  const bridges = flags.bridge?.length ? flags.bridge : (config.bridges ?? fromEnv('ALLIUM_BRIDGES'));
  if (bootstrap.length === 0 && bridges.length === 0) {
    throw new ConfigError(
      'no relay to join through: pass --bootstrap "ws://host:port/path FINGERPRINT" or --bridge "bridge wss://… FINGERPRINT secret=…", or set ALLIUM_BOOTSTRAP or ALLIUM_BRIDGES',
    );
  }
  const useBridges = flags.useBridges ?? config.use_bridges;
  const linkPadding = flags.linkPadding ?? config.link_padding;
  if (linkPadding !== undefined && linkPadding !== 'auto' && linkPadding !== 'reduced' && linkPadding !== 'off')
    throw new ConfigError('--link-padding: "auto", "reduced" or "off"');
  if (useBridges !== undefined && useBridges !== 'always' && useBridges !== 'fallback') throw new ConfigError('--use-bridges: "always" or "fallback"');
  const dataDir = flags.dataDir ?? config.data_dir ?? defaultStateDir();
  checkDataDir(dataDir, flags.dataDir ? '--data-dir' : 'data_dir', ['directory.cbor', 'guards.json', 'vanguards.json']); // before the network
  const authorities = flags.authority?.length ? flags.authority : (config.authorities ?? []);
  const hops = Number(flags.hops ?? config.hops ?? 3);
  const options: ClientOptions = {
    bootstrap,
    bridges,
    socketFactory: socketFactoryFor(flags.tlsCa ?? config.tls_ca),
    storage: fileStorage(dataDir),
    hops,
    enforceDistinctSubnets: !flags.testNetwork,
    // A test network's relays allow 10,000 CREATEs a second per link (relay/config.ts SINGLE_HOST_NETWORK).
    ...(flags.testNetwork ? { createsPerSecond: SINGLE_HOST_CLIENT.createsPerSecond } : {}),
    authorities,
    poolSize: flags.poolSize ?? 0,
    ...(useBridges ? { useBridges: useBridges as 'always' | 'fallback' } : {}),
    ...(linkPadding ? { linkPadding: linkPadding as LinkPaddingMode } : {}),
  };
  return { options, config, dataDir };
}

export async function startClient(flags: ClientFlags): Promise<AlliumClient> {
  const client = new AlliumClient(clientOptionsFrom(flags).options);
  if (!flags.quiet) client.on('client:progress', (m) => process.stderr.write(`allium: ${m}\n`));
  await client.start();
  return client;
}
