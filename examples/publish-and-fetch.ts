/**
 * Publishes bytes to Allium, prints their link, fetches them back by the link and compares.
 *
 *   ALLIUM_BOOTSTRAP="ws://host:port/allium FINGERPRINT" node --import tsx examples/publish-and-fetch.ts [TEXT]
 *
 * ALLIUM_TEST_NETWORK=1 lets a circuit use relays on one address (a local test network such as `allium devnet`).
 */
import { AlliumClient, ContentClient, initCrypto, nodeSocketFactory } from 'allium/client';

await initCrypto();
const client = new AlliumClient({
  bootstrap: (process.env['ALLIUM_BOOTSTRAP'] ?? '').split(',').filter(Boolean),
  socketFactory: nodeSocketFactory,
  enforceDistinctSubnets: !process.env['ALLIUM_TEST_NETWORK'],
  poolSize: 0, // content travels on circuits to the relays that store it, so no exit circuits are kept ready
});
await client.start();
const content = new ContentClient(client);
try {
  const bytes = new TextEncoder().encode(process.argv[2] ?? `Hello from Allium, ${new Date().toISOString()}`);
  const link = await content.put(bytes, { signal: AbortSignal.timeout(60_000) });
  console.log(`link: ${link}`);
  const back = await content.get(link, { signal: AbortSignal.timeout(60_000) });
  const same = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
  console.log(same ? `fetched ${back.length} bytes: identical` : 'fetched bytes differ');
  process.exitCode = same ? 0 : 1;
} finally {
  content.close();
  await client.stop();
}
