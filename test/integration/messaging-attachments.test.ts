/**
 * Attachments and contacts with relay processes (specs/messaging.md §11–§12): a file sent by one Messenger arrives
 * byte-exact at another, live and through the mailbox, with progress both ways; a download aborted half way and
 * resumed asks the network for no block twice; the size limit holds on both sides; address cards and safety numbers
 * between the two, an identity change warned about, a corrupted card refused.
 *
 * The file sent is ALLIUM_ATTACHMENT_MIB MiB (default 20, the size issue 21 names: about 19 s on the quiet 2-core
 * machine, every block at 3 holders over 3-hop circuits). The resumed download is of a 3 MiB file: one segment, so
 * the blocks it asks for are exactly the root and the data blocks.
 */
import { expect } from 'chai';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import type { ContentClient } from '../../client/content.js';
import { Messenger, type AttachmentProgress, type IdentityChange, type IncomingMessage } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX } from '../../protocol/chk.js';
import { isAlliumError } from '../../protocol/errors.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env['ALLIUM_ATTACHMENT_MIB'] ?? 20) * MiB;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isAlliumError(e) ? e.code : `not an AlliumError: ${String(e)}`;
  }
  return 'no error';
}

/** Records every block the messenger's attachment store fetches from the network, by routing key. */
function spyFetches(m: Messenger): string[] {
  const files = (m as unknown as { files: ContentClient }).files;
  const seen: string[] = [];
  const original = files.fetchAnywhere.bind(files);
  files.fetchAnywhere = async (kind, rk, check, o) => {
    const got = await original(kind, rk, check, o);
    if (got) seen.push(toHex(rk));
    return got;
  };
  return seen;
}

describe('messaging: attachments and contacts (relay processes)', function () {
  this.timeout(600_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let alice: Messenger;
  let bob: Messenger;
  const atBob: IncomingMessage[] = [];

  before(async () => {
    net = await startNetwork(6);
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    alice = new Messenger(ca, createIdentity(), { offline: { collect: false } });
    bob = new Messenger(cb, createIdentity(), { offline: { collect: false } });
    bob.on('message:received', (m) => atBob.push(m));
    await bob.startListening();
  });

  after(async () => {
    try {
      alice?.close();
      bob?.close();
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it(`sends a ${SIZE / MiB} MiB file that arrives byte-exact, its name and type inside the message, with progress both ways`, async () => {
    const data = crypto().random(SIZE);
    const up: AttachmentProgress[] = [];
    const started = Date.now();
    const receipt = await alice.sendFile(bob.address, { data, name: 'photos/leek.jpg', type: 'image/JPEG; q=1' }, { onProgress: (p) => up.push(p) });
    const uploadMs = Date.now() - started;
    expect(receipt.status).to.equal('delivered');
    expect(receipt.attachment).to.include({ size: SIZE, name: 'leek.jpg', type: 'image/jpeg' });
    expect(up.at(-1)).to.deep.equal({ id: receipt.id, direction: 'upload', done: SIZE, total: SIZE });
    expect(up.map((p) => p.done)).to.deep.equal([...up.map((p) => p.done)].sort((a, b) => a - b));
    await waitFor(() => atBob.some((m) => m.id === receipt.id), 60_000, 'the attachment message at bob');
    const m = atBob.find((x) => x.id === receipt.id)!;
    expect(m.attachment).to.include({ size: SIZE, name: 'leek.jpg', type: 'image/jpeg' });
    const down: AttachmentProgress[] = [];
    const t1 = Date.now();
    const got = await bob.download(m, { onProgress: (p) => down.push(p) }).bytes({ signal: AbortSignal.timeout(300_000) });
    const downloadMs = Date.now() - t1;
    expect(got.length).to.equal(SIZE);
    expect(crypto().equal(got, data)).to.equal(true);
    expect(down.at(-1)).to.deep.equal({ id: receipt.id, direction: 'download', done: SIZE, total: SIZE });
    console.log(`      ${SIZE / MiB} MiB attachment: upload and send ${uploadMs} ms, download ${downloadMs} ms`);
  });

  it('resumes a download aborted half way without fetching any block twice', async () => {
    const size = 3 * MiB;
    const data = crypto().random(size);
    const receipt = await alice.sendFile(bob.address, { data, name: 'voice.ogg', type: 'audio/ogg' });
    await waitFor(() => atBob.some((m) => m.id === receipt.id), 60_000, 'the attachment message at bob');
    const m = atBob.find((x) => x.id === receipt.id)!;
    const fetched = spyFetches(bob);
    const dl = bob.download(m);
    const ac = new AbortController();
    const stopAt = Math.floor(size * 0.45);
    dl.on('download:progress', (p) => {
      if (p.done >= stopAt) ac.abort();
    });
    expect(await codeOf(dl.bytes({ signal: ac.signal }))).to.equal('ERR_ABORTED');
    const before = fetched.length;
    const reached = dl.received;
    expect(reached).to.be.within(stopAt, size - 1);
    const got = await dl.bytes({ signal: AbortSignal.timeout(300_000) });
    expect(crypto().equal(got, data)).to.equal(true);
    // Every block asked of the network once: the root, then each data block (no check block was needed).
    const dataBlocks = Math.ceil(size / BLOCK_PAYLOAD_MAX);
    expect(new Set(fetched).size, 'no block fetched twice').to.equal(fetched.length);
    expect(fetched.length).to.equal(1 + dataBlocks);
    expect(dl.stats.fetched).to.equal(fetched.length);
    console.log(
      `      aborted at ${reached} of ${size} bytes after ${before} blocks; resumed with ${fetched.length - before} more, ${dl.stats.reused} reused from memory`,
    );
  });

  it('leaves an attachment in the mailbox when asked, and the recipient downloads it from there', async () => {
    const data = crypto().random(100_000);
    const receipt = await alice.sendFile(bob.address, { data, name: 'notes.txt', type: 'text/plain' }, { offline: 'only' });
    expect(receipt.status).to.equal('stored-offline');
    await bob.checkMailbox();
    const m = atBob.find((x) => x.id === receipt.id);
    expect(m?.offline).to.equal(true);
    expect(m?.attachment).to.include({ size: 100_000, name: 'notes.txt', type: 'text/plain' });
    expect(crypto().equal(await bob.download(m!).bytes(), data)).to.equal(true);
  });

  it('refuses a file over the size limit at the sender before storing anything, and at a recipient with a lower limit', async () => {
    const small = new Messenger(ca, createIdentity(), { maxAttachmentBytes: 64 * 1024, offline: { collect: false } });
    try {
      const stored: unknown[] = [];
      const files = (small as unknown as { files: ContentClient }).files;
      const storeAll = files.storeAll.bind(files);
      files.storeAll = (...a) => (stored.push(a), storeAll(...a));
      const e = await small.sendFile(bob.address, { data: new Uint8Array(64 * 1024 + 1) }).catch((x: unknown) => x);
      expect(e).to.include({ code: 'ERR_LIMIT', limit: 'MAX_ATTACHMENT_BYTES' });
      expect(stored).to.have.length(0);
      // Bob sends 100 KiB to the small messenger's address... which it refuses to fetch: its limit, before any block.
      const m = { id: 'x', attachment: { root: { rk: new Uint8Array(32), dk: new Uint8Array(32) }, size: 100 * 1024, type: 'text/plain', name: '' } };
      const fetched = spyFetches(small);
      const e2 = await small
        .download(m)
        .bytes()
        .catch((x: unknown) => x);
      expect(e2).to.include({ code: 'ERR_LIMIT', limit: 'MAX_ATTACHMENT_BYTES' });
      expect(fetched).to.have.length(0);
    } finally {
      small.close();
    }
  });

  it('exchanges cards and safety numbers, warns when a known contact comes with another key, and refuses a corrupted card', async () => {
    const aliceCard = alice.card('Alice');
    const bobCard = bob.cardBytes('Bob'); // as a QR code would carry it
    expect((await bob.contacts.add(aliceCard)).contact).to.include({ name: 'Alice', address: alice.address, changed: false });
    expect((await alice.contacts.add(bobCard)).contact).to.include({ name: 'Bob', address: bob.address });
    // Both sides compute the same number, whichever way round.
    const atA = alice.safetyNumber(bobCard);
    expect(atA).to.equal(bob.safetyNumber(aliceCard));
    expect(atA).to.match(/^(\d{5} ){11}\d{5}$/);
    await bob.contacts.markVerified('Alice');

    // A card claiming to be Alice with another key (a substituted card): warned, flagged, no longer verified.
    const changes: IdentityChange[] = [];
    bob.on('contact:identity-changed', (c) => changes.push(c));
    const impostor = new Messenger(ca, createIdentity(), { offline: { collect: false } });
    try {
      const r = await bob.contacts.add(impostor.card('Alice'));
      expect(r.change).to.equal('identity-changed');
      expect(changes).to.have.length(1);
      expect(changes[0]).to.include({ wasVerified: true, previousAddress: alice.address });
      expect(await bob.contacts.get('Alice')).to.include({ address: impostor.address, changed: true, verified: false });
      // The number bob would now read out differs from the one alice reads.
      expect(bob.safetyNumber(impostor.address)).to.not.equal(atA);
    } finally {
      impostor.close();
    }

    // A mistyped or truncated card is refused with a typed error, and nothing is added.
    const typo = aliceCard.slice(0, 40) + (aliceCard[40] === 'a' ? 'b' : 'a') + aliceCard.slice(41);
    expect(await codeOf(bob.contacts.add(typo, { name: 'Typo' }))).to.equal('ERR_ADDRESS_CHECKSUM');
    expect(await codeOf(bob.contacts.add(aliceCard.slice(0, -8), { name: 'Cut' }))).to.equal('ERR_ADDRESS_CHECKSUM');
    expect(await codeOf(bob.contacts.add(bobCard.subarray(0, 30), { name: 'Cut' }))).to.equal('ERR_ADDRESS_CHECKSUM');
    expect(await bob.contacts.get('Typo')).to.equal(undefined);
  });
});
