/**
 * Two identities exchange address cards, compare safety numbers, and send a file as an attachment: stored in the
 * content store with random keys, its key inside the encrypted message, fetched by the recipient with progress.
 *
 *   ALLIUM_BOOTSTRAP="ws://host:port/allium FINGERPRINT" node --import tsx examples/send-a-file.ts [BYTES]
 *
 * ALLIUM_TEST_NETWORK=1 lets a circuit use relays on one address (a local test network such as `allium devnet`).
 */
import { AlliumClient, Messenger, initCrypto, nodeSocketFactory } from 'allium/client';

await initCrypto();
const client = new AlliumClient({
  bootstrap: (process.env['ALLIUM_BOOTSTRAP'] ?? '').split(',').filter(Boolean),
  socketFactory: nodeSocketFactory,
  enforceDistinctSubnets: !process.env['ALLIUM_TEST_NETWORK'],
  poolSize: 0,
});
await client.start();
const alice = new Messenger(client);
const bob = new Messenger(client);
try {
  await bob.startListening({ signal: AbortSignal.timeout(120_000) });
  await alice.contacts.add(bob.card('Bob')); // a card travels as text (a link) or as bytes in a QR code
  console.log(`safety number: ${alice.safetyNumber(bob.card())} (bob reads the same: ${bob.safetyNumber(alice.card()) === alice.safetyNumber(bob.card())})`);
  const file = new Uint8Array(Number(process.argv[2] ?? 200_000)).map((_, i) => i % 251);
  const arrived = new Promise<Uint8Array>((resolve, reject) =>
    bob.on(
      'message:received',
      (m) =>
        m.attachment &&
        void bob
          .download(m)
          .bytes({ signal: AbortSignal.timeout(300_000) })
          .then(resolve, reject),
    ),
  );
  const sent = await alice.sendFile(bob.address, { data: file, name: 'pattern.bin' }, { timeoutMs: 300_000 });
  console.log(`sent ${sent.attachment.name} (${sent.attachment.size} bytes): ${sent.status}`);
  const got = await arrived;
  const same = got.length === file.length && got.every((b, i) => b === file[i]);
  console.log(same ? `received ${got.length} bytes: identical` : 'received bytes differ');
  process.exitCode = same ? 0 : 1;
} finally {
  alice.close();
  bob.close();
  await client.stop();
}
