/**
 * Content end to end against relay processes (specs/content.md): byte-exact round trips at the size boundaries
 * and for a 50 MiB file, what a holder's disk reveals (nothing: no plaintext, file name or key), random keys by
 * default (no confirmation test from a copy of the file), updatable keys whose records a holder that guesses the name
 * cannot read, updatable keys against forged and replayed records, and the errors a user sees.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { BLOCK_PAYLOAD_MAX, BlockType, decryptBlock, parseBlockPlaintext, verifyStoredBlock } from '../../protocol/chk.js';
import { formatLink, parseLink } from '../../protocol/content-link.js';
import { isAlliumError } from '../../protocol/errors.js';
import { createRecord, sskRoutingKeyOf, sskSecret, verifyRecord, type SskKey } from '../../protocol/ssk.js';
import { storeItem } from '../../net/content-requests.js';
import { circuitTo, fileLayout, filesContaining, filesUnder, openStore, patternBytes, sha256, startClient } from '../helpers/content.js';
import { startNetwork, tempDir, waitFor, type RelayProcess, type TestNetwork } from '../helpers/network.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const MiB = 1024 * 1024;

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string } | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return { code: e.code, message: e.message };
  }
}

describe('content: round trips, privacy, updatable keys, errors (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;

  before(async () => {
    net = await startNetwork(5, { timing: { repair_interval: 1000 } });
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  const relayOf = (fingerprint: string): RelayProcess => net.relays.find((r) => r.fingerprint === fingerprint)!;

  for (const [label, size] of [
    ['0 B', 0],
    ['1 B', 1],
    ['exactly one block (BLOCK_PAYLOAD_MAX bytes)', BLOCK_PAYLOAD_MAX],
    ['one block and one byte', BLOCK_PAYLOAD_MAX + 1],
  ] as const) {
    it(`round trips ${label} byte-exact through 3-hop circuits`, async () => {
      const data = patternBytes(size, size + 11);
      const link = await content.put(data);
      expect(link).to.match(/^allium:chk\/[a-z2-7]{111}$/);
      const back = await content.get(link);
      expect(back.length).to.equal(size);
      expect(sha256(back)).to.equal(sha256(data));
      // Convergent keys (an opt-in): the same bytes give the same link, whose blocks are those computed here.
      const convergent = await content.put(data, { convergent: true });
      expect(await content.put(data, { convergent: true })).to.equal(convergent);
      // Every block is at its 3 holders.
      const layout = await fileLayout(data);
      expect(toHex((parseLink(convergent) as { rk: Uint8Array }).rk)).to.equal(toHex(layout.root.rk));
      expect(layout.blocks.size).to.equal(size <= BLOCK_PAYLOAD_MAX ? 1 : 4);
      for (const { ref } of layout.blocks.values()) {
        for (const h of content.holders(ref.rk)) {
          const db = openStore(relayOf(h.fingerprint));
          try {
            expect(db.prepare('SELECT 1 FROM blocks WHERE rk = ?').get(ref.rk), `block at ${h.fingerprint.slice(0, 8)}`).to.not.equal(undefined);
          } finally {
            db.close();
          }
        }
      }
    });
  }

  it('puts of the same bytes give different routing keys by default, equal ones only with convergent keys', async () => {
    const data = patternBytes(40_000, 3);
    const rkOf = (link: string): string => toHex((parseLink(link) as { rk: Uint8Array }).rk);
    const a = await content.put(data);
    const b = await content.put(data);
    const c = await content.put(data, { convergent: true });
    const d = await content.put(data, { convergent: true });
    // What a holder of a copy of the file can compute: the convergent routing key. It must not find the default puts.
    expect({ defaultPutsShareKey: rkOf(a) === rkOf(b), convergentPutsShareKey: rkOf(c) === rkOf(d), defaultIsConvergent: rkOf(a) === rkOf(c) }).to.deep.equal({
      defaultPutsShareKey: false,
      convergentPutsShareKey: true,
      defaultIsConvergent: false,
    });
    for (const l of [a, b, c]) expect(sha256(await content.get(l))).to.equal(sha256(data));
  });

  it("a holder that knows the publisher key and guesses the name cannot read an updatable key's record; the link can", async () => {
    const publisher = IdentityKey.generate();
    const name = 'diary';
    const { link } = await content.publish(publisher, name, utf8('dear diary'));
    // Everything on every relay's disk, as a holder (or whoever seizes it) has it, plus the guessed name.
    let held = 0;
    let located = 0;
    let decrypted = 0;
    for (const r of net.relays) {
      const db = openStore(r);
      try {
        for (const row of db.prepare<[], { rk: Buffer; data: Buffer }>('SELECT rk, data FROM records').all()) {
          let rec: { pk?: Uint8Array; nh?: Uint8Array; ct?: Uint8Array };
          try {
            rec = decodeCbor(new Uint8Array(row.data), 8192) as typeof rec;
          } catch {
            continue; // an endpoint descriptor
          }
          if (!rec.pk || !rec.nh || !rec.ct || toHex(rec.pk) !== toHex(publisher.publicKey)) continue;
          held++;
          // The first format: nh and the content key from the name alone (the key's derivation was public).
          if (toHex(rec.nh) === toHex(crypto().hash(32, utf8(name), utf8('allium-v1:ssk:name')))) located++;
          const key = crypto().hash(32, new Uint8Array([...rec.pk, ...utf8(name)]), utf8('allium-v1:ssk:key'));
          if (crypto().xaeadDecrypt(rec.ct.subarray(24), new Uint8Array(row.rk), rec.ct.subarray(0, 24), key)) decrypted++;
        }
      } finally {
        db.close();
      }
    }
    expect({ heldSome: held > 0, located, decrypted }).to.deep.equal({ heldSome: true, located: 0, decrypted: 0 });
    expect(Buffer.from(await content.get(link)).toString()).to.equal('dear diary');
  });

  it("a holder's disk holds no plaintext, no file name and no decryption key", async () => {
    const marker = `ALLIUM-PLAINTEXT-MARKER-${randomBytes(6).toString('hex')}`;
    const fileName = `quarterly-report-${randomBytes(6).toString('hex')}.pdf`;
    // A multi-block file full of the marker, published with the command-line client from a file with that name.
    const data = Buffer.from(`${marker}\n`.repeat(Math.ceil((3 * BLOCK_PAYLOAD_MAX) / (marker.length + 1)))).subarray(0, 3 * BLOCK_PAYLOAD_MAX);
    const dir = tempDir('allium-put-');
    const path = join(dir, fileName);
    writeFileSync(path, data);
    let link: string;
    try {
      const out = await run(
        process.execPath,
        // --convergent: the blocks are then those fileLayout computes, so the scan can look for every block key.
        [
          '--import',
          'tsx',
          join(ROOT, 'cli', 'allium.ts'),
          'put',
          '--convergent',
          '--bootstrap',
          net.bootstrap,
          '--data-dir',
          join(dir, 'client'),
          '--test-network',
          path,
        ],
        { cwd: ROOT, maxBuffer: 1 << 20 },
      );
      link = out.stdout.trim();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(link).to.match(/^allium:chk\//);
    // A small (inline) file and an updatable-key edition carrying the marker too.
    const small = Buffer.from(`${marker} small`);
    const smallLink = await content.put(small);
    const publisher = IdentityKey.generate();
    const sskName = `notes-${marker}`;
    await content.publish(publisher, sskName, Buffer.from(`${marker} edition`));
    expect(sha256(await content.get(link))).to.equal(sha256(data));

    const layout = await fileLayout(data);
    const root = parseLink(link);
    if (root.type !== 'chk') throw new Error('expected a chk link');
    const small0 = parseLink(smallLink);
    if (small0.type !== 'chk') throw new Error('expected a chk link');
    const secrets: [string, Uint8Array][] = [
      ['plaintext marker', utf8(marker)],
      ['file name', utf8(fileName)],
      ['file name without extension', utf8(fileName.replace(/\.pdf$/, ''))],
      ['updatable-key name', utf8(sskName)],
      ['link text', utf8(link.slice('allium:chk/'.length))],
      ['root decryption key', root.dk],
      ['root decryption key (hex)', utf8(toHex(root.dk))],
      ['inline file decryption key', small0.dk],
      ...[...layout.blocks.values()].flatMap(({ ref }) => [
        [`block key ${toHex(ref.rk).slice(0, 8)}`, ref.dk] as [string, Uint8Array],
        [`block key ${toHex(ref.rk).slice(0, 8)} (hex)`, utf8(toHex(ref.dk))] as [string, Uint8Array],
      ]),
    ];
    expect(layout.blocks.size).to.equal(3 + 2 + 1);

    let scanned = 0;
    const inLogs = secrets.filter(([what]) => !what.endsWith('decryption key') && !/^block key [0-9a-f]{8}$/.test(what));
    for (const r of net.relays) {
      const files = filesUnder(r.dataDir);
      expect(files.some((f) => f.endsWith('store.sqlite'))).to.equal(true);
      scanned += files.length;
      for (const [what, bytes] of secrets) expect(filesContaining(r.dataDir, bytes), `${what} in ${r.dataDir}`).to.deep.equal([]);
      for (const [what, bytes] of inLogs) expect(r.logs().includes(Buffer.from(bytes).toString()), `${what} in the relay log`).to.equal(false);
    }
    expect(scanned).to.be.greaterThan(net.relays.length * 3);
    // Positive control: the same scan finds what the stores do hold: routing keys and encrypted block bytes.
    for (const { ref, stored } of layout.blocks.values()) {
      for (const h of content.holders(ref.rk).map((d) => relayOf(d.fingerprint))) {
        expect(filesContaining(h.dataDir, ref.rk), 'routing key found by the scan').to.not.deep.equal([]);
        const found = [100, 5000, 10_000, 20_000].filter((off) => filesContaining(h.dataDir, stored.subarray(off, off + 16)).length > 0);
        expect(found.length, 'pieces of the encrypted block found by the scan').to.be.at.least(3);
      }
    }
  });

  it('updatable keys: the newest edition wins; forged records are refused, a replayed old edition is stale', async () => {
    const publisher = IdentityKey.generate();
    const name = 'weekly-notes';
    const key: SskKey = { publisher: publisher.publicKey, secret: sskSecret(publisher.secretKey, name), name };
    const rk = sskRoutingKeyOf(key);
    const holders = content.holders(rk).map((h) => relayOf(h.fingerprint));
    expect(holders).to.have.length(3);
    const recordAt = (r: RelayProcess): { edition: number; data: Buffer } | undefined => {
      const db = openStore(r);
      try {
        return db.prepare<[Uint8Array], { edition: number; data: Buffer }>('SELECT edition, data FROM records WHERE rk = ?').get(rk);
      } finally {
        db.close();
      }
    };

    const one = await content.publish(publisher, name, utf8('edition one'));
    expect(one.edition).to.equal(1);
    const editionOne = recordAt(holders[0]!)!; // the exact bytes published, for a replay
    expect(editionOne.edition).to.equal(1);
    const two = await content.publish(publisher, name, utf8('edition two'));
    expect(two).to.deep.equal({ link: one.link, edition: 2 });
    expect(Buffer.from(await content.get(one.link)).toString()).to.equal('edition two');

    // What a forger would point the key at.
    const evil = await content.put(utf8('forged edition'));
    const other = IdentityKey.generate();
    const forgedByOther = createRecord(other.secretKey, key, 99, evil);
    const valid = createRecord(publisher.secretKey, key, 3, evil);
    const flipped = Uint8Array.from(valid.bytes);
    flipped[flipped.length - 1]! ^= 0x01; // the last byte is in "sig" (canonical CBOR puts the longest key last)
    expect(() => verifyRecord(rk, flipped))
      .to.throw()
      .with.property('code', 'ERR_SIGNATURE');
    expect(() => verifyRecord(rk, forgedByOther.bytes))
      .to.throw()
      .with.property('code', 'ERR_SIGNATURE');
    const underOtherKey = createRecord(other.secretKey, { ...key, publisher: other.publicKey }, 99, evil); // valid, but for another key

    for (const h of holders) {
      const c = await circuitTo(client, h);
      expect(await storeItem(c, 'record', rk, forgedByOther.bytes), 'signed by another key').to.equal('invalid');
      expect(await storeItem(c, 'record', rk, flipped), 'a bit flipped in the signature').to.equal('invalid');
      expect(await storeItem(c, 'record', rk, underOtherKey.bytes), "another key's record under this key").to.equal('invalid');
      expect(await storeItem(c, 'record', rk, editionOne.data), 'edition 1 replayed').to.equal('stale');
      c.close();
      expect(recordAt(h)!.edition).to.equal(2);
    }
    expect(Buffer.from(await content.get(one.link)).toString()).to.equal('edition two');
    const target = parseLink(await content.resolveSsk(key));
    expect(target.type === 'chk' && sha256(await content.get(formatLink(target)))).to.equal(sha256(utf8('edition two')));
  });

  it('errors users understand: unknown link → ERR_NOT_FOUND, a typo → ERR_LINK_CHECKSUM', async () => {
    const unknown = formatLink({ type: 'chk', rk: crypto().random(32), dk: crypto().random(32), flags: 0 });
    const nf = await codeOf(content.get(unknown));
    expect(nf?.code).to.equal('ERR_NOT_FOUND');
    expect(nf?.message)
      .to.match(/^content not found/)
      .and.not.match(/not found.*not found/);
    const unknownSsk = formatLink({ type: 'ssk', publisher: IdentityKey.generate().publicKey, secret: crypto().random(32), name: 'nothing here' });
    expect((await codeOf(content.get(unknownSsk)))?.code).to.equal('ERR_NOT_FOUND');

    const link = await content.put(utf8('typo target'));
    const i = 40;
    const typo = link.slice(0, i) + (link[i] === 'a' ? 'b' : 'a') + link.slice(i + 1);
    const e = await codeOf(content.get(typo));
    expect(e?.code).to.equal('ERR_LINK_CHECKSUM');
    expect(e?.message).to.include('corrupted');
    expect((await codeOf(content.get('https://example.com/file')))?.code).to.equal('ERR_LINK_FORMAT');
  });

  // Last in this group: it kills relays.
  it('a get or resolve whose holders are all down fails with ERR_UNREACHABLE, not ERR_NOT_FOUND', async () => {
    const publisher = IdentityKey.generate();
    const { link: sskLink } = await content.publish(publisher, 'soon unreachable', utf8('an edition'));
    const link = await content.put(utf8('held by relays about to stop'));
    const rk = (parseLink(link) as { rk: Uint8Array }).rk;
    const sskRk = sskRoutingKeyOf(parseLink(sskLink) as SskKey);
    const doomed = new Set([...content.holders(rk), ...content.holders(sskRk)].map((h) => h.fingerprint));
    // Keep two relays for paths: kill only the holders if that leaves two, else only those of the block.
    const victims = net.relays.filter((r) => doomed.has(r.fingerprint));
    const blockHolders = new Set(content.holders(rk).map((h) => h.fingerprint));
    const killed = net.relays.length - victims.length >= 2 ? victims : net.relays.filter((r) => blockHolders.has(r.fingerprint));
    await Promise.all(killed.map((r) => r.kill('SIGKILL')));
    const e = await codeOf(content.get(link));
    expect(e?.code).to.equal('ERR_UNREACHABLE');
    expect(e?.message).to.match(/3 of 3 holders could not be asked/);
    if (killed === victims) expect((await codeOf(content.get(sskLink)))?.code).to.equal('ERR_UNREACHABLE');
  });
});

describe('content: a 50 MiB file (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;

  // Three relays keeping one copy each, and one-hop circuits: the file crosses the links once each way, so the test
  // exercises size (51 segments, an indirect manifest of 5 parts, streaming) rather than the CPU cost of onion routing,
  // which circuits.test.ts covers with 64 MiB.
  before(async () => {
    net = await startNetwork(3, { extra: { replication_factor: 1 } });
    client = await startClient(net.bootstrap, 1);
    content = new ContentClient(client, { replication: 1, concurrency: 16 });
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  it('round trips 50 MiB byte-exact (put from one buffer, get streamed)', async () => {
    const size = 50 * MiB;
    // One buffer, as the command line and most callers pass it (a put used to copy the rest of the buffer for every
    // block: quadratic, minutes of CPU at this size).
    const data = patternBytes(size, 50);
    let progress = 0;
    const link = await content.put(data, { onProgress: (d) => (progress = d) });
    expect(progress).to.be.greaterThan(size); // stored bytes: data, check and manifest blocks
    // The manifest (2403 block references) is too large for one block: the root is an indirect manifest.
    const root = parseLink(link) as { rk: Uint8Array; dk: Uint8Array };
    const rootBlock = await content.fetchAnywhere('block', root.rk, (b) => verifyStoredBlock(root.rk, b));
    const rootPlain = parseBlockPlaintext(decryptBlock(root, rootBlock!));
    expect(rootPlain.type).to.equal(BlockType.MANIFEST);
    expect(decodeCbor(rootPlain.payload, rootPlain.payload.length))
      .to.have.property('parts')
      .with.length(5 * 64);
    const hashOut = createHash('sha256');
    let got = 0;
    for await (const part of content.getStream(link)) {
      hashOut.update(part);
      got += part.length;
    }
    expect(got).to.equal(size);
    expect(hashOut.digest('hex')).to.equal(sha256(data));
    const blocks = (await Promise.all(net.relays.map((r) => r.metric('allium_store_blocks')))).reduce((a, b) => a + b, 0);
    const dataBlocks = Math.ceil(size / BLOCK_PAYLOAD_MAX);
    expect(blocks).to.be.at.least(dataBlocks + Math.ceil(dataBlocks / 2));
  });
});

describe('content: storage quota (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;

  before(async () => {
    net = await startNetwork(3, { timing: { repair_interval: 1000 }, extra: { storage_quota: 100_000 } });
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  it('a put larger than the quotas fails with ERR_QUOTA, and destroys nothing already stored', async () => {
    const small = utf8('stored before the stores filled up');
    const smallLink = await content.put(small);
    // Wait until every relay's replication pass has counted the small file's 3 copies (what eviction consults).
    const smallRk = (parseLink(smallLink) as { rk: Uint8Array }).rk;
    const copiesAt = (r: RelayProcess): number | undefined => {
      const db = openStore(r);
      try {
        return db.prepare<[Uint8Array], { copies: number }>('SELECT copies FROM blocks WHERE rk = ?').get(smallRk)?.copies;
      } finally {
        db.close();
      }
    };
    await waitFor(() => net.relays.every((r) => copiesAt(r) === 3), 30_000, 'copies counted');

    const e = await codeOf(content.put(patternBytes(500_000, 8)));
    expect(e?.code).to.equal('ERR_QUOTA');
    expect(e?.message).to.match(/quota/);
    for (const r of net.relays) {
      expect(await r.metric('allium_store_bytes')).to.be.at.most(100_000);
      expect(await r.metric('allium_drops_total', { reason: 'store_quota' })).to.be.greaterThan(0);
    }
    expect(Buffer.from(await content.get(smallLink)).toString()).to.equal('stored before the stores filled up');
  });
});
