/**
 * Replay journals on a full disk (relay/replay-journal.ts): each journal keeps JOURNAL_RESERVE bytes of zeros written
 * past its end, so a relay whose content store filled the disk keeps accepting onions (and journaling them) until a
 * reserve is used up, and only then refuses them (fail closed). Runs on a tmpfs of its own (mounting needs root; where
 * it is not permitted the test says so and is skipped).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { isAlliumError } from '../../protocol/errors.js';
import { ReplayJournals } from '../../relay/replay-journal.js';

/** JOURNAL_RESERVE in records: 64 KiB of 16-byte onion tags. */
const RESERVE_RECORDS = 4096;

describe('replay journals on a full disk', () => {
  let dir: string;
  let mounted = false;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'allium-fulldisk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1048576,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
      mounted = true;
    } catch {
      mounted = false;
    }
    if (!mounted) this.skip(); // not permitted here (not root): nothing to fill
  });
  after(() => {
    if (mounted) execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); // lazily: the process may still hold a descriptor
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps journaling onions after the disk fills, up to its reserve, then refuses (fail closed)', () => {
    const identity = IdentityKey.generate();
    const journals = new ReplayJournals(dir, identity);
    journals.begin();
    const B = crypto().random(32);
    journals.openOnion(B, true);
    // Fill the disk: whatever room is left goes to one file.
    let filler = 0;
    for (const size of [65536, 4096, 512, 16, 1]) {
      for (;;) {
        try {
          writeFileSync(join(dir, `fill-${filler++}`), new Uint8Array(size));
        } catch {
          break;
        }
      }
    }
    let accepted = 0;
    let refusal = '';
    for (let i = 0; i < 3 * RESERVE_RECORDS; i++) {
      try {
        journals.appendOnion(B, crypto().random(16));
        accepted++;
      } catch (e) {
        refusal = isAlliumError(e) ? `${e.code}: ${e.message}` : String(e);
        break;
      }
    }
    const tags = journals.readOnion(B) ?? new Uint8Array(0);
    journals.deleteOnion(B); // closes it, so the tmpfs can be unmounted
    expect({ atLeastReserve: accepted >= RESERVE_RECORDS - 1, readBack: tags.length / 16 === accepted, refusal }).to.deep.equal({
      atLeastReserve: true,
      readBack: true,
      refusal: 'ERR_INTERNAL: replay journal write failed',
    });
  });
});
