import { initCrypto } from '../crypto/index.js';
import { Relay } from '../relay/relay.js';
import { silentLogger } from '../relay/logger.js';
import { AlliumClient } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { IdentityKey } from '../crypto/keys.js';
import { nodeSocketFactory } from '../net/ws-node.js';
import { mkdtempSync } from 'node:fs';
await initCrypto();
const timing = { gossip_interval: 500, maintenance_interval: 200, repair_interval: 1000 };
const relays: Relay[] = [];
for (let i = 0; i < 6; i++) {
  const r = new Relay({ listen: '127.0.0.1:0', data_dir: mkdtempSync('/tmp/t/r'), bootstrap: relays.length ? [relays[0]!.bootstrapLine] : [], timing }, { log: silentLogger() });
  await r.start(); relays.push(r);
}
while (!relays.every(r => r.directory.size === 6)) await new Promise(r => setTimeout(r, 20));
const client = new AlliumClient({ bootstrap: [relays[0]!.bootstrapLine], socketFactory: nodeSocketFactory, enforceDistinctSubnets: false, poolSize: 0 });
await client.start();
const content = new ContentClient(client);
for (const size of [0, 1, 32746, 5_000_000]) {
  const data = new Uint8Array(size); for (let i = 0; i < size; i++) data[i] = (i * 13 + 5) % 251;
  let t = Date.now();
  const link = await content.put(data);
  const tp = Date.now() - t; t = Date.now();
  const back = await content.get(link);
  console.log(size, link.slice(0, 40), 'put', tp, 'ms get', Date.now() - t, 'ms', back.length === size && back.every((v, i) => v === data[i]));
}
const pub = IdentityKey.generate();
const a = await content.publish(pub, 'hello', new TextEncoder().encode('edition one'));
const b = await content.publish(pub, 'hello', new TextEncoder().encode('edition two'));
console.log(a, b, new TextDecoder().decode(await content.get(b.link)));
console.log('stored blocks', relays.map(r => r.store!.stats().blocks));
content.close(); await client.stop();
for (const r of relays) await r.stop();
process.exit(0);
