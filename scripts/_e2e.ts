import { initCrypto } from '../crypto/index.js';
import { Relay } from '../relay/relay.js';
import { silentLogger } from '../relay/logger.js';
import { AlliumClient } from '../client/client.js';
import { startSocksServer } from '../client/socks.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
const run = promisify(execFile);
await initCrypto();
const timing = { gossip_interval: 500, maintenance_interval: 200 };
const relays: Relay[] = [];
for (let i = 0; i < 5; i++) {
  const exit = i >= 3;
  const r = new Relay({ listen: '127.0.0.1:0', data_dir: mkdtempSync('/tmp/t/r'), bootstrap: relays.length ? [relays[0]!.bootstrapLine] : [], timing,
    exit_policy: exit ? ['accept 127.0.0.1:*', 'reject *:*'] : ['reject *:*'], exit_reject_private: false }, { log: silentLogger() });
  await r.start(); relays.push(r);
}
while (!relays.every(r => r.directory.size === 5)) await new Promise(r => setTimeout(r, 20));
const body = Buffer.alloc(Number(process.argv[2] ?? 1000000), 7);
const http = createServer((req, res) => { res.writeHead(200, {'content-length': body.length}); res.end(body); });
await new Promise<void>(r => http.listen(0, '127.0.0.1', () => r()));
const hport = (http.address() as any).port;
const client = new AlliumClient({ bootstrap: [relays[0]!.bootstrapLine], socketFactory: nodeSocketFactory, enforceDistinctSubnets: false });
let t = Date.now();
await client.start();
console.log('client ready', Date.now() - t, 'ms, dir', client.directory.size);
t = Date.now();
const c = await client.newCircuit({ exitPort: hport });
console.log('circuit built', Date.now() - t, 'ms', c.path.map(d => d.nick));
const socks = await startSocksServer(client, { port: 0 });
t = Date.now();
const out = (await run('curl', ['-s', '--socks5-hostname', `127.0.0.1:${socks.port}`, `http://127.0.0.1:${hport}/x`, '-o', '/tmp/t/out.bin', '-w', '%{http_code} %{size_download} %{speed_download}'])).stdout;
console.log('curl', out, Date.now() - t, 'ms');
await socks.close(); await client.stop(); http.close();
for (const r of relays) await r.stop();
process.exit(0);
