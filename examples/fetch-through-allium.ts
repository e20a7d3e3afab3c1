/**
 * Fetches a web page through Allium: a three-hop circuit, one stream to the server, plain HTTP/1.0.
 *
 *   ALLIUM_BOOTSTRAP="ws://host:port/allium FINGERPRINT" ALLIUM_TARGET=http://example.com/ \
 *     node --import tsx examples/fetch-through-allium.ts
 *
 * ALLIUM_TEST_NETWORK=1 lets a circuit use relays on one address (a local test network such as `allium devnet`).
 */
import { AlliumClient, initCrypto, nodeSocketFactory } from 'allium/client';

const target = new URL(process.env['ALLIUM_TARGET'] ?? 'http://example.com/');
await initCrypto();
const client = new AlliumClient({
  bootstrap: (process.env['ALLIUM_BOOTSTRAP'] ?? '').split(',').filter(Boolean),
  socketFactory: nodeSocketFactory,
  enforceDistinctSubnets: !process.env['ALLIUM_TEST_NETWORK'],
  poolSize: 0, // one stream: build its circuit on demand instead of keeping circuits ready
});
try {
  await client.start({ signal: AbortSignal.timeout(30_000) });
  // The exit resolves the name and opens the TCP connection; we get a stream once it has connected.
  const stream = await client.connect(target.hostname, Number(target.port || 80), { signal: AbortSignal.timeout(60_000) });
  const received: Uint8Array[] = [];
  stream.on('stream:data', (chunk) => {
    received.push(chunk);
    stream.consumed(1); // one cell handled: this is what lets the exit send more (flow control)
  });
  const ended = new Promise((resolve) => stream.once('stream:end', resolve));
  stream.write(new TextEncoder().encode(`GET ${target.pathname}${target.search} HTTP/1.0\r\nHost: ${target.host}\r\n\r\n`));
  await ended; // the server closes the connection after an HTTP/1.0 response; the exit then ends the stream
  process.stdout.write(Buffer.concat(received));
} finally {
  await client.stop();
}
