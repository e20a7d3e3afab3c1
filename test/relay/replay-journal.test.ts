/** relay/replay-journal.ts: when the journals count as complete, and which journals are trusted (specs/circuits.md §3.4.1). */
import { expect } from 'chai';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { JOURNAL_HEADER_LEN, ReplayJournals } from '../../relay/replay-journal.js';

describe('replay journals', () => {
  let dir: string;
  let identity: IdentityKey;
  let B: Uint8Array;
  before(() => {
    identity = IdentityKey.generate();
    B = crypto().x25519Keypair().publicKey;
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'allium-journal-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is complete after a clean stop, or in the same boot; not after another boot without one', () => {
    expect(new ReplayJournals(dir, identity, 'boot-a').begin().complete, 'first run').to.equal(false);
    // Same kernel, process died: complete.
    expect(new ReplayJournals(dir, identity, 'boot-a').begin().complete).to.equal(true);
    // Another kernel, no clean stop: not complete.
    expect(new ReplayJournals(dir, identity, 'boot-b').begin().complete).to.equal(false);
    // A clean stop, then another kernel: complete, and the marker is used once.
    const j = new ReplayJournals(dir, identity, 'boot-b');
    j.begin();
    j.close();
    expect(existsSync(join(dir, 'replay', 'clean'))).to.equal(true);
    expect(new ReplayJournals(dir, identity, 'boot-c').begin().complete).to.equal(true);
    expect(existsSync(join(dir, 'replay', 'clean'))).to.equal(false);
    expect(new ReplayJournals(dir, identity, 'boot-d').begin().complete).to.equal(false);
    // No boot id on this platform: only a clean stop counts.
    expect(new ReplayJournals(dir, identity, null).begin().complete).to.equal(false);
    expect(new ReplayJournals(dir, identity, null).begin().complete).to.equal(false);
  });

  it('reads back what was appended, and refuses a torn, foreign or misfiled journal', () => {
    const j = new ReplayJournals(dir, identity, 'boot');
    j.begin();
    j.openOnion(B, true);
    const tags = [crypto().random(16), crypto().random(16)];
    for (const t of tags) j.appendOnion(B, t);
    j.resetLink([[crypto().random(16), 1234]]);
    j.appendLink(crypto().random(16), 5678);
    j.close();
    const again = new ReplayJournals(dir, identity, 'boot');
    expect(Buffer.from(again.readOnion(B)!).equals(Buffer.concat(tags))).to.equal(true);
    expect(again.readLink()!.map(([, e]) => e)).to.deep.equal([1234, 5678]);

    // Another relay's identity, or another key's name: the header does not verify.
    expect(new ReplayJournals(dir, IdentityKey.generate(), 'boot').readOnion(B)).to.equal(null);
    const other = crypto().x25519Keypair().publicKey;
    writeFileSync(
      join(dir, 'replay', `onion-${Buffer.from(other).toString('hex')}.log`),
      readFileSync(join(dir, 'replay', `onion-${Buffer.from(B).toString('hex')}.log`)),
    );
    expect(again.readOnion(other)).to.equal(null);
    // A torn last record (a write that did not complete).
    const path = join(dir, 'replay', `onion-${Buffer.from(B).toString('hex')}.log`);
    appendFileSync(path, Buffer.alloc(5));
    expect(again.readOnion(B)).to.equal(null);
    truncateSync(path, JOURNAL_HEADER_LEN - 1);
    expect(again.readOnion(B)).to.equal(null);
  });

  it('a link replay cache restores journaled tags and, when cold, refuses msg1 timestamped before the end of the cold period', () => {
    const recorded: [Uint8Array, number][] = [];
    const cache = new HandshakeReplayCache(1000, 10, (tag, exp) => recorded.push([tag, exp]));
    const E = crypto().x25519Keypair().publicKey;
    expect(cache.checkAndRecord(E, 100)).to.equal(false);
    expect(recorded).to.have.length(1);
    const restored = new HandshakeReplayCache(1000, 10);
    expect(restored.restore(recorded, 200)).to.equal(true);
    expect(restored.checkAndRecord(E, 300), 'a replay after the restore').to.equal(true);
    expect(restored.restore(recorded, 200), 'only into an empty cache').to.equal(false);

    const cold = new HandshakeReplayCache(1000, 10);
    cold.startCold(5000);
    expect(cold.checkAndRecord(crypto().x25519Keypair().publicKey, 4000, 4999)).to.equal(true);
    expect(cold.checkAndRecord(crypto().x25519Keypair().publicKey, 4000, 5000)).to.equal(false);
  });
});
