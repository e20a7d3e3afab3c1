/**
 * A client process for the benchmarks: what `allium client --test-network` runs (the client library and its SOCKS5
 * listener on 127.0.0.1), with the pre-built circuit pool size as a flag, so "fresh circuit" rows really build on
 * demand. Prints one JSON line {socksPort, pid} once the listener is up; stops on SIGTERM. `--defences-off`: link
 * padding and circuit padding off, to measure what they cost (bench:circuit --defences-off-too).
 *
 *   node client-main.js --bootstrap LINE [--bootstrap LINE …] [--bridge LINE …] [--tls-ca FILE] [--pool N] [--defences-off]
 */
import { readFileSync } from 'node:fs';
import { initCrypto } from '../../crypto/index.js';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { startSocksServer } from '../../client/socks.js';
import { createNodeSocketFactory } from '../../net/ws-node.js';

const bootstrap: string[] = [];
const bridges: string[] = [];
let ca: Buffer | null = null;
let poolSize = 2;
let defencesOff = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--bootstrap') bootstrap.push(argv[++i]!);
  else if (argv[i] === '--bridge') bridges.push(argv[++i]!);
  else if (argv[i] === '--tls-ca') ca = readFileSync(argv[++i]!);
  else if (argv[i] === '--pool') poolSize = Number(argv[++i]);
  else if (argv[i] === '--defences-off') defencesOff = true;
  else throw new Error(`client-main: unknown argument ${argv[i]}`);
}

await initCrypto();
const socketFactory = createNodeSocketFactory(ca ? { ca } : {});
const client = new AlliumClient({
  bootstrap,
  bridges,
  socketFactory,
  ...SINGLE_HOST_CLIENT,
  poolSize,
  ...(defencesOff ? { linkPadding: 'off' as const, circuitPadding: false } : {}),
});
await client.start();
const socks = await startSocksServer(client, { host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ socksPort: socks.port, pid: process.pid }) + '\n');
process.on('SIGTERM', () => {
  void socks
    .close()
    .then(() => client.stop())
    .finally(() => process.exit(0));
});
