/**
 * Offline mailboxes (specs/messaging.md §9): the relay store's slot rules (first item kept, no deletion, expiry,
 * release), and, with relay processes, an offline recipient that receives everything in order when it comes back
 * and nothing twice (a restart without state reads it again); relays that enforce expiry and the longest lifetime; holders that
 * cannot read what they keep; a wrong key that cannot decrypt; tampered, replayed and duplicated items refused;
 * the errors a sender sees; and a holder killed, after which relays copy the item to the slot's new holder.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { mailboxSlot } from '../../client/mailbox.js';
import { Messenger, type IncomingMessage, type SendReceipt } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import {
  encodeMailboxDeletion,
  inboxKey,
  MAILBOX_HOLD_MS,
  mailboxEpochAt,
  MAX_MAILBOX_ITEM_BYTES,
  MAX_MAILBOX_TTL_MS,
  openMailboxItem,
  sealMailboxItem,
  sealMailboxItemV1,
  slotLocator,
  solveMailboxItem,
} from '../../protocol/mailbox.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { BlockStore, bucketUp } from '../../relay/block-store.js';
import { fetchItem } from '../../net/content-requests.js';
import { circuitTo, filesContaining } from '../helpers/content.js';
import { sleep, startNetwork, tempDir, waitFor, type TestNetwork } from '../helpers/network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const HOUR = 3600_000;

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

describe('mailbox slots in the relay store', () => {
  let dir: string;
  let store: BlockStore;
  const now = Date.now();
  const alice = (): Identity => createIdentity();

  before(() => {
    dir = tempDir('allium-mailbox-');
    // Version 1 items (sealMailboxItemV1), stored as during the compatibility window whatever the date.
    store = new BlockStore(dir, 10 * 1024 * 1024, 'normal', { mailboxV1Until: Number.MAX_SAFE_INTEGER });
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the first item of a slot, refuses others and every deletion, expires and releases', () => {
    const a = alice();
    const rk = slotLocator(inboxKey(a.publicKey, mailboxEpochAt(now)), 0);
    const seal = (text: string, exp = now + HOUR) =>
      sealMailboxItemV1({ sender: createIdentity(), recipient: a.publicKey, slot: rk, exp, t: now, n: 0, data: enc(text) });
    const first = seal('first');
    expect(store.putMailbox(rk, first.bytes, now)).to.equal('stored');
    expect(store.putMailbox(rk, first.bytes, now)).to.equal('exists');
    expect(store.putMailbox(rk, seal('second').bytes, now)).to.equal('occupied');
    expect(toHex(store.getMailbox(rk, now)!)).to.equal(toHex(first.bytes));
    // No deletion is stored (specs/messaging.md §9.4), with the item's token or without, nor in a free slot.
    const codes: string[] = [];
    const free = slotLocator(inboxKey(a.publicKey, mailboxEpochAt(now)), 9);
    for (const [slot, token] of [
      [rk, crypto().random(32)],
      [rk, first.token],
      [free, crypto().random(32)],
    ] as const) {
      try {
        store.putMailbox(slot, encodeMailboxDeletion(token), now);
      } catch (e) {
        codes.push((e as AlliumError).code);
      }
    }
    expect(codes).to.deep.equal(['ERR_SCHEMA', 'ERR_SCHEMA', 'ERR_SCHEMA']);
    expect(toHex(store.getMailbox(rk, now)!)).to.equal(toHex(first.bytes));
    expect(store.getMailbox(free, now)).to.equal(null);

    // Expiry: the item is served until exp, then the slot is occupied with nothing in it; released after the hold.
    const rk2 = slotLocator(inboxKey(a.publicKey, mailboxEpochAt(now)), 1);
    const short = sealMailboxItemV1({ sender: createIdentity(), recipient: a.publicKey, slot: rk2, exp: now + 1000, t: now, n: 0, data: enc('short') });
    expect(store.putMailbox(rk2, short.bytes, now)).to.equal('stored');
    expect(store.getMailbox(rk2, now + 999)!.length).to.equal(short.bytes.length);
    expect(store.getMailbox(rk2, now + 1000)!.length).to.equal(0);
    expect(store.putMailbox(rk2, seal('late', now + 2 * HOUR).bytes, now + 2000)).to.equal('occupied');
    expect(store.stats().mailboxes).to.equal(2);
    // Released at the hold's end, rounded up to the store's time bucket (content.md §7: no exact store time on disk).
    const released = bucketUp(now + MAILBOX_HOLD_MS);
    expect(store.getMailbox(rk, released - 1)).to.not.equal(null);
    store.sweepExpired(released, true);
    expect(store.getMailbox(rk, released)).to.equal(null);
    expect(store.getMailbox(rk2, released)).to.equal(null);
    expect(store.stats().mailboxes).to.equal(0);
  });

  it('sweeps expired items so their bytes no longer count, and refuses items outside the time bounds', () => {
    const a = alice();
    const rk = slotLocator(inboxKey(a.publicKey, mailboxEpochAt(now)), 5);
    const item = sealMailboxItemV1({ sender: createIdentity(), recipient: a.publicKey, slot: rk, exp: now + 1000, t: now, n: 0, data: enc('x') });
    const before = store.stats().bytes;
    store.putMailbox(rk, item.bytes, now);
    expect(store.stats().bytes).to.equal(before + item.bytes.length);
    store.sweepExpired(now + 1000, true);
    expect(store.stats().bytes).to.equal(before);
    const far = sealMailboxItemV1({
      sender: createIdentity(),
      recipient: a.publicKey,
      slot: rk,
      exp: now + MAX_MAILBOX_TTL_MS + HOUR,
      t: now,
      n: 0,
      data: enc('x'),
    });
    let code = '';
    try {
      store.putMailbox(slotLocator(inboxKey(a.publicKey, 1), 0), far.bytes, now);
    } catch (e) {
      code = (e as AlliumError).code;
    }
    expect(code).to.equal('ERR_LIMIT');
  });
});

describe('offline messages through mailboxes (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let ca: AlliumClient;
  let cb: AlliumClient;
  let bob: Messenger;
  let probe: ContentClient;

  before(async () => {
    net = await startNetwork(6, { timing: { repair_interval: 1000 } });
    const fps = net.relays.map((r) => r.fingerprint);
    const client = (entry: string[]): AlliumClient =>
      new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
    ca = client([fps[1]!, fps[2]!]);
    cb = client([fps[3]!, fps[4]!]);
    await ca.start();
    await cb.start();
    bob = new Messenger(cb);
    probe = new ContentClient(cb);
  });

  after(async () => {
    try {
      bob?.close();
      probe?.close();
      await ca?.stop();
      await cb?.stop();
    } finally {
      await net?.stop();
    }
  });

  it('an offline recipient receives everything, in order, when it comes back, and nothing twice', async () => {
    const aliceId = createIdentity();
    const address = formatAddress(aliceId.publicKey);
    const stored: SendReceipt[] = [];
    const off = bob.on('message:stored-offline', (r) => stored.push(r));
    const receipts: SendReceipt[] = [];
    for (let i = 0; i < 30; i++) receipts.push(await bob.send(address, enc(`offline ${i}`)));
    off();
    expect(receipts.map((r) => r.status)).to.deep.equal(Array(30).fill('stored-offline'));
    expect(stored.length).to.equal(30);
    const ids = receipts.map((r) => (r.status === 'stored-offline' ? r.id : ''));
    expect(new Set(ids).size).to.equal(30);

    // Alice comes back: listening collects her mailbox and hands the messages over through the same iterator.
    const alice = new Messenger(ca, aliceId, { offline: { pollMs: 3_600_000 } });
    const got: IncomingMessage[] = [];
    const ctl = new AbortController();
    const reading = (async () => {
      for await (const m of alice.listen({ signal: ctl.signal })) {
        got.push(m);
        if (got.length === 31) break;
      }
    })();
    await waitFor(() => got.length >= 30, 120_000, '30 offline messages');
    expect(got.map((m) => dec(m.data))).to.deep.equal(Array.from({ length: 30 }, (_, i) => `offline ${i}`));
    expect(got.every((m) => m.offline && m.from === bob.address)).to.equal(true);
    expect(got.map((m) => m.id)).to.deep.equal(ids);
    expect(got.map((m) => m.seq)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));

    // Now that she listens, a message goes over a live session.
    const live = await bob.send(address, enc('you are back'), { offline: 'never' });
    expect(live.status).to.equal('delivered');
    await reading;
    expect(got[30]!.offline).to.equal(false);
    expect(dec(got[30]!.data)).to.equal('you are back');
    ctl.abort();
    alice.close();

    // Collecting wrote nothing (specs/messaging.md §9.4): the holders still serve the item, so the same identity,
    // restarted without its state, reads the messages again (at least once across restarts, the same ids).
    const epoch = mailboxEpochAt(Date.now());
    const first = await probe.fetchFromAll('mailbox', mailboxSlot(aliceId.publicKey, epoch, 0));
    expect(first.length).to.be.greaterThan(0);
    for (const copy of first) expect(dec(openMailboxItem(aliceId, mailboxSlot(aliceId.publicKey, epoch, 0), copy).data)).to.equal('offline 0');
    const again = new Messenger(ca, aliceId);
    const ids2: string[] = [];
    again.on('message:received', (m) => ids2.push(m.id ?? ''));
    try {
      expect(await again.checkMailbox()).to.equal(30);
      expect(ids2).to.deep.equal(ids);
    } finally {
      again.close();
    }
  });

  it("holders keep only ciphertext: a wrong key cannot decrypt, and no holder's disk has the plaintext", async () => {
    const dave = createIdentity();
    const mallory = createIdentity();
    const marker = `secret-marker-${toHex(crypto().random(8))}`;
    const r = await bob.send(formatAddress(dave.publicKey), enc(marker));
    expect(r.status).to.equal('stored-offline');
    const rk = mailboxSlot(dave.publicKey, mailboxEpochAt(Date.now()), 0);
    const copies = await probe.fetchFromAll('mailbox', rk);
    expect(copies.length).to.be.greaterThan(0);
    for (const c of copies) {
      expect(dec(openMailboxItem(dave, rk, c).data)).to.equal(marker);
      let code = '';
      try {
        openMailboxItem(mallory, rk, c);
      } catch (e) {
        code = (e as AlliumError).code;
      }
      expect(code).to.equal('ERR_MESSAGE_AUTH');
    }
    for (const relay of net.relays) expect(filesContaining(relay.dataDir, utf8(marker))).to.deep.equal([]);
  });

  it('relays enforce expiry and the longest lifetime', async () => {
    const carol = createIdentity();
    const r = await bob.send(formatAddress(carol.publicKey), enc('short-lived'), { ttlMs: 5000 });
    expect(r.status).to.equal('stored-offline'); // a holder accepted it
    const rk = mailboxSlot(carol.publicKey, mailboxEpochAt(Date.now()), 0);
    await sleep(Math.max(0, (r.status === 'stored-offline' ? r.expires : 0) - Date.now()) + 200);
    // The slot stays occupied (so later slots are still found) but nothing is served.
    const after = await probe.fetchFromAll('mailbox', rk);
    expect(after.length).to.be.greaterThan(0);
    expect(after.every((c) => c.length === 0)).to.equal(true);
    const m = new Messenger(ca, carol);
    try {
      expect(await m.checkMailbox()).to.equal(0);
    } finally {
      m.close();
    }
    // An item living longer than the maximum is refused by every holder.
    const rk1 = slotLocator(inboxKey(carol.publicKey, mailboxEpochAt(Date.now())), 1);
    const far = sealMailboxItemV1({
      sender: createIdentity(),
      recipient: carol.publicKey,
      slot: rk1,
      exp: Date.now() + MAX_MAILBOX_TTL_MS + HOUR,
      t: Date.now(),
      n: 0,
      data: enc('x'),
    });
    expect(await probe.storeAll('mailbox', rk1, far.bytes)).to.deep.equal(Array(probe.holders(rk1).length).fill('invalid'));
    expect(await codeOf(bob.send(formatAddress(carol.publicKey), enc('x'), { ttlMs: MAX_MAILBOX_TTL_MS + 1 }))).to.equal('ERR_CONFIG');
  });

  it('refuses tampered and replayed items, and delivers a message stored twice once', async () => {
    const erin = createIdentity();
    const address = formatAddress(erin.publicKey);
    const epoch = mailboxEpochAt(Date.now());
    const slot = (i: number): Uint8Array => mailboxSlot(erin.publicKey, epoch, i);
    expect((await bob.send(address, enc('genuine'))).status).to.equal('stored-offline');
    const captured = (await probe.fetchFromAll('mailbox', slot(0)))[0]!;

    const m = new Messenger(ca, erin);
    const got: IncomingMessage[] = [];
    const errors: string[] = [];
    m.on('message:received', (x) => got.push(x));
    m.on('endpoint:error', (e) => errors.push(e.code));
    try {
      expect(await m.checkMailbox()).to.equal(1);
      expect(got.map((x) => dec(x.data))).to.deep.equal(['genuine']);

      // Replayed at its own slot: every holder has it already.
      expect(new Set(await probe.storeAll('mailbox', slot(0), captured))).to.deep.equal(new Set(['exists']));
      // Replayed in the next free slot: the item names its slot and its work is bound to it, so relays refuse it.
      expect(new Set(await probe.storeAll('mailbox', slot(1), captured))).to.deep.equal(new Set(['invalid']));
      // Tampered: one ciphertext byte changed, which the proof of work binds too.
      const fields = decodeCbor(captured, MAX_MAILBOX_ITEM_BYTES) as Record<string, unknown>;
      const ct = Uint8Array.from(fields['ct'] as Uint8Array);
      ct[100]! ^= 0x40;
      expect(new Set(await probe.storeAll('mailbox', slot(1), encodeCbor({ ...fields, ct })))).to.deep.equal(new Set(['invalid']));
      // One message (one id) stored in two slots, as a sender does after a race: delivered once.
      const id = crypto().random(16);
      for (const i of [1, 2]) {
        const s = sealMailboxItem({
          sender: bob.identity,
          recipient: erin.publicKey,
          inbox: inboxKey(erin.publicKey, epoch),
          index: i,
          exp: Date.now() + HOUR,
          t: Date.now(),
          n: 99,
          data: enc('twice'),
          id,
        });
        expect(await probe.storeAll('mailbox', slot(i), solveMailboxItem(s.item, crypto().random(16))!)).to.include('ok');
      }
      expect(await m.checkMailbox()).to.equal(1);
      expect(got.map((x) => dec(x.data))).to.deep.equal(['genuine', 'twice']);
      expect(errors.filter((c) => c === 'ERR_MESSAGE_AUTH').length).to.equal(0);
      // A fresh collector (a restart, without state) reads the same items again: the two messages, once each.
      const restarted = new Messenger(ca, erin);
      try {
        expect(await restarted.checkMailbox()).to.equal(2);
      } finally {
        restarted.close();
      }
    } finally {
      m.close();
    }
  });

  it('clear errors: a bad address, a live-only send to an endpoint that is not listening, an abort, a timeout', async () => {
    const failures: string[] = [];
    const off = bob.on('message:failed', (f) => failures.push(f.error.code));
    const typo = bob.address.slice(0, 5) + (bob.address[5] === 'a' ? 'b' : 'a') + bob.address.slice(6);
    expect(await codeOf(bob.send(typo, enc('x')))).to.match(/^ERR_ADDRESS_/);
    expect(failures.shift()).to.match(/^ERR_ADDRESS_/);
    const nobody = formatAddress(createIdentity().publicKey);
    expect(await codeOf(bob.send(nobody, enc('x'), { offline: 'never' }))).to.equal('ERR_UNREACHABLE');
    expect(await codeOf(bob.send(nobody, enc('x'), { signal: AbortSignal.abort() }))).to.equal('ERR_ABORTED');
    expect(await codeOf(bob.send(formatAddress(createIdentity().publicKey), enc('x'), { timeoutMs: 1 }))).to.equal('ERR_TIMEOUT');
    expect(await codeOf(bob.connect(nobody, 80))).to.equal('ERR_UNREACHABLE');
    expect(await codeOf(bob.send(nobody, new Uint8Array(30_000), { offline: 'only' }))).to.equal('ERR_LIMIT');
    off();
    expect(failures).to.deep.equal(['ERR_UNREACHABLE', 'ERR_ABORTED', 'ERR_TIMEOUT', 'ERR_LIMIT']);
  });

  it("a holder of a slot killed: relays copy the item to the slot's new holder, and the recipient still gets it", async () => {
    const frank = createIdentity();
    expect((await bob.send(formatAddress(frank.publicKey), enc('kept safe'))).status).to.equal('stored-offline');
    const rk = mailboxSlot(frank.publicKey, mailboxEpochAt(Date.now()), 0);
    const victim = net.relays.find((r) => r.fingerprint === probe.holders(rk)[0]!.fingerprint)!;
    await victim.kill('SIGKILL');
    // Count copies through a client whose entries are all live relays: the clients above pin two entries each, and a
    // client pinned to {victim, r} has no path that ends at r (a path never repeats a relay).
    const live = net.relays.filter((r) => r !== victim);
    const cl = new AlliumClient({
      bootstrap: [live[0]!.bootstrap],
      socketFactory: nodeSocketFactory,
      ...SINGLE_HOST_CLIENT,
      poolSize: 0,
      entryRelays: live.map((r) => r.fingerprint),
    });
    await cl.start();
    const seen = new Map<string, string>();
    try {
      await waitFor(
        async () => {
          let copies = 0;
          for (const r of live) {
            try {
              const c = await circuitTo(cl, r, 5_000);
              const has = await fetchItem(c, 'mailbox', rk, { head: true });
              c.close();
              seen.set(r.fingerprint.slice(0, 8), has ? 'has it' : 'lacks it');
              if (has) copies++;
            } catch (e) {
              seen.set(r.fingerprint.slice(0, 8), String(e)); // busy or not yet known
            }
          }
          return copies >= 3;
        },
        180_000,
        () => `three live holders of the mailbox item (${[...seen].map(([f, s]) => `${f}: ${s}`).join('; ')})`,
      );
      const m = new Messenger(cl, frank);
      const got: string[] = [];
      m.on('message:received', (x) => got.push(dec(x.data)));
      try {
        expect(await m.checkMailbox()).to.equal(1);
        expect(got).to.deep.equal(['kept safe']);
      } finally {
        m.close();
      }
    } finally {
      await cl.stop();
    }
  });
});
