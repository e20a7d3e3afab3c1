/** Starting a client for one CLI command: bootstrap lines from flags or ALLIUM_BOOTSTRAP, storage in a data dir. */
import { AlliumClient } from '../client/client.js';
import { fileStorage } from '../client/storage-node.js';
import { ConfigError } from '../protocol/errors.js';
import { nodeSocketFactory } from '../net/ws-node.js';

export interface ClientFlags {
  bootstrap: string[];
  dataDir: string;
  hops?: string;
  testNetwork?: boolean;
  quiet?: boolean;
}

export async function startClient(flags: ClientFlags): Promise<AlliumClient> {
  const bootstrap = flags.bootstrap.length ? flags.bootstrap : (process.env['ALLIUM_BOOTSTRAP'] ?? '').split(',').filter(Boolean);
  if (bootstrap.length === 0) throw new ConfigError('no relay to join through: pass --bootstrap "ws://host:port/path FINGERPRINT" or set ALLIUM_BOOTSTRAP');
  const client = new AlliumClient({
    bootstrap,
    socketFactory: nodeSocketFactory,
    storage: fileStorage(flags.dataDir),
    hops: Number(flags.hops ?? 3),
    enforceDistinctSubnets: !flags.testNetwork,
    poolSize: 0,
  });
  if (!flags.quiet) client.on('client:progress', (m) => process.stderr.write(`allium: ${m}\n`));
  await client.start();
  return client;
}
