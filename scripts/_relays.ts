import { initCrypto } from '../crypto/index.js';
import { Relay } from '../relay/relay.js';
import { silentLogger } from '../relay/logger.js';
import { mkdtempSync } from 'node:fs';
await initCrypto();
const timing = { gossip_interval: 500, maintenance_interval: 200, descriptor_lifetime: 4000, descriptor_renew: 1000 };
const relays: Relay[] = [];
const boot = new Relay({ listen: '127.0.0.1:0', data_dir: mkdtempSync('/tmp/t/r'), timing, log_level: 'silent' }, { log: silentLogger() });
await boot.start(); relays.push(boot);
const t0 = Date.now();
for (let i = 0; i < 9; i++) {
  const r = new Relay({ listen: '127.0.0.1:0', data_dir: mkdtempSync('/tmp/t/r'), bootstrap: [boot.bootstrapLine], timing, overlay_degree: 4 }, { log: silentLogger() });
  await r.start(); relays.push(r);
}
while (!relays.every(r => r.directory.size === 10)) { await new Promise(r => setTimeout(r, 20)); if (Date.now() - t0 > 10000) break; }
console.log('converged in', Date.now() - t0, 'ms', relays.map(r => r.directory.size));
await relays[3]!.stop();
const t1 = Date.now();
while (!relays.filter((_, i) => i !== 3).every(r => r.directory.size === 9)) { await new Promise(r => setTimeout(r, 50)); if (Date.now() - t1 > 10000) break; }
console.log('expired in', Date.now() - t1, 'ms', relays.map(r => r.directory.size));
for (const r of relays) await r.stop();
