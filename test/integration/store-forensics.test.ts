/**
 * What a seized holder shows (specs/content.md §7), with relay processes: a client puts a file, publishes an updatable
 * key and fetches both several times through circuits; then every relay's store.sqlite (and its WAL) is scanned — the
 * columns, every integer cell, and the raw bytes for every millisecond (and second) of the time the test ran. No
 * access time, no read count and no store time may be there: only what serving needs.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { IdentityKey } from '../../crypto/keys.js';
import { patternBytes, sha256, startClient } from '../helpers/content.js';
import { startNetwork, type TestNetwork } from '../helpers/network.js';
import { scanTables, storeFiles, timestampsIn } from '../helpers/store-scan.js';

describe('store forensics: relays that stored and served content keep no access or store times (relay processes)', function () {
  this.timeout(180_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;

  before(async () => {
    net = await startNetwork(4);
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  it('after puts and repeated fetches, no relay store holds a time of them, a read count or a time column', async () => {
    const from = Date.now();
    const data = patternBytes(150_000, 5);
    const link = await content.put(data);
    const { link: sskLink } = await content.publish(IdentityKey.generate(), 'diary', data.subarray(0, 1000));
    for (let i = 0; i < 4; i++) {
      expect(sha256(await content.get(link))).to.equal(sha256(data));
      expect((await content.get(sskLink)).length).to.equal(1000);
    }
    const to = Date.now();
    const findings: string[] = [];
    let scanned = 0;
    for (const r of net.relays) {
      const files = storeFiles(r.dataDir);
      if (!files.has('store.sqlite')) continue;
      scanned++;
      for (const [name, bytes] of files) findings.push(...timestampsIn(`${r.fingerprint.slice(0, 8)}/${name}`, bytes, [from, to]));
      findings.push(...scanTables(`${r.dataDir}/store.sqlite`, from, to, new Set()).map((f) => `${r.fingerprint.slice(0, 8)}: ${f}`));
    }
    expect({ scanned, findings }).to.deep.equal({ scanned: net.relays.length, findings: [] });
  });
});
