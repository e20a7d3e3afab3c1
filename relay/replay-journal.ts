/**
 * Replay journals (specs/circuits.md §3.4.1, specs/link.md §2.4): what lets an onion key keep opening onions, and the
 * link replay cache keep its tags, after the relay process restarts.
 *
 * Every onion the relay accepts has its 16-byte replay tag appended to its onion key's journal, and every msg1 its
 * tag and expiry to the link journal, before the relay answers: one write(2) each, no fsync. A write that returned
 * sits in the kernel's page cache, which outlives the process (a crash, an OOM kill, SIGKILL) but not the kernel. So
 * at start the journals hold every write of the last run if that run stopped cleanly (it fsynced them and left the
 * `clean` marker) or if the kernel is the same one (the `boot` marker equals the current boot id). Otherwise the
 * relay must retire its onion keys and start its link cache cold — that policy is relay/relay.ts's.
 *
 *   data_dir/replay/onion-<hex B>.log   header | tag (16) …
 *   data_dir/replay/link.log            header | tag (16) | expires u64 …
 *   header = "ALRJRNL1" | kind u8 (1 onion, 2 link) | B (32; zero for link) | mac (32)
 *   mac    = BLAKE2b-256(key = H(identity seed, "allium-v1:relay:replay-state"), magic | kind | B)
 *
 * Not here: the filters and the cache themselves (protocol/replay-filter.ts, protocol/link-handshake.ts).
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../crypto/index.js';
import type { IdentityKey } from '../crypto/keys.js';
import { ByteWriter, concatBytes, equalBytes, toHex, utf8 } from '../protocol/bytes.js';
import { AlliumError } from '../protocol/errors.js';
import { H, LABELS } from '../protocol/kdf.js';
import { writeFileAtomic } from './keystore.js';

const MAGIC = utf8('ALRJRNL1');
export const JOURNAL_HEADER_LEN = MAGIC.length + 1 + 32 + 32;
const ONION = 1;
const LINK = 2;
const ONION_RECORD = 16;
const LINK_RECORD = 24;

/**
 * Zeros kept written past the end of each journal, so that records still fit once the disk is full: a relay whose
 * content store filled its disk keeps carrying circuits for the next 4,096 onions (2,730 link handshakes) of each
 * journal, and tops the reserve up whenever the disk has room again. Only when a reserve is used up does a write fail,
 * and the onion or handshake is then refused (fail closed). An all-zero record ends a journal's records.
 */
export const JOURNAL_RESERVE = 64 * 1024;

/** An open journal: its descriptor, where the next record goes, and how far the file is written (zeros past `end`). */
interface Journal {
  readonly fd: number;
  end: number;
  allocated: number;
  readonly record: number;
}

function allZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** The records up to the first all-zero one (the reserve). */
function liveRecords(records: Uint8Array, record: number): Uint8Array {
  for (let o = 0; o < records.length; o += record) if (allZero(records.subarray(o, o + record))) return records.subarray(0, o);
  return records;
}

/** The kernel's boot id (Linux); null where the platform has none, so only a clean stop proves the journals whole. */
export function currentBootId(): string | null {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return /^[0-9a-f-]{36}$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    /* directory fsync is best effort, as in keystore.ts */
  }
}

export class ReplayJournals {
  readonly dir: string;
  private readonly macKey: Uint8Array;
  private readonly onionFds = new Map<string, Journal>();
  private linkFd: Journal | null = null;
  private linkRecords = 0;
  private lastId: { readonly key: Uint8Array; readonly id: string } | null = null;

  constructor(
    dataDir: string,
    identity: IdentityKey,
    private readonly bootId: string | null = currentBootId(),
  ) {
    this.dir = join(dataDir, 'replay');
    this.macKey = H(LABELS.replayState, identity.seed);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  /**
   * The start of a run: says whether the journals hold every write of the last run, then marks this run — the boot
   * marker set to this kernel, the clean marker removed, both durably — so that the answer is right again after this
   * run, however it ends. Call before accepting any link.
   */
  begin(): { complete: boolean; reason: string } {
    const clean = join(this.dir, 'clean');
    const boot = join(this.dir, 'boot');
    let complete = false;
    let reason = 'no journals from an earlier run';
    if (existsSync(clean)) {
      complete = true;
    } else if (existsSync(boot)) {
      const last = readFileSync(boot, 'utf8').trim();
      if (this.bootId !== null && last === this.bootId) complete = true;
      else
        reason =
          this.bootId === null
            ? 'the last stop was not clean, and this platform has no boot id to show the writes survived'
            : 'the machine restarted since the last clean stop: the last writes may be lost';
    }
    writeFileAtomic(boot, `${this.bootId ?? 'unknown'}\n`);
    if (existsSync(clean)) {
      unlinkSync(clean);
      syncDir(this.dir);
    }
    return { complete, reason: complete ? '' : reason };
  }

  private header(kind: number, key: Uint8Array): Uint8Array {
    const head = new ByteWriter(MAGIC.length + 1 + 32).bytes(MAGIC).u8(kind).bytes(key).done();
    return concatBytes(head, crypto().hash(32, head, this.macKey));
  }

  private onionPath(B: Uint8Array): string {
    return join(this.dir, `onion-${toHex(B)}.log`);
  }

  /** The records of a journal, or null when it is missing, not this relay's or this key's, or has a torn record. */
  private read(path: string, kind: number, key: Uint8Array, record: number): Uint8Array | null {
    if (!existsSync(path)) return null;
    const bytes = new Uint8Array(readFileSync(path));
    if (bytes.length < JOURNAL_HEADER_LEN || (bytes.length - JOURNAL_HEADER_LEN) % record !== 0) return null;
    if (!crypto().equal(bytes.subarray(0, JOURNAL_HEADER_LEN), this.header(kind, key))) return null;
    return liveRecords(bytes.subarray(JOURNAL_HEADER_LEN), record);
  }

  /** Opens a journal for writing after its live records, and writes its reserve. */
  private open(path: string, record: number): Journal {
    const fd = openSync(path, 'r+', 0o600);
    const bytes = new Uint8Array(readFileSync(fd));
    const size = bytes.length;
    const live =
      size >= JOURNAL_HEADER_LEN ? liveRecords(bytes.subarray(JOURNAL_HEADER_LEN, size - ((size - JOURNAL_HEADER_LEN) % record)), record) : new Uint8Array(0);
    const j: Journal = { fd, end: JOURNAL_HEADER_LEN + live.length, allocated: size, record };
    this.reserve(j);
    return j;
  }

  /** Tops a journal's reserve of zeros up to JOURNAL_RESERVE past its end, as far as the disk allows. */
  private reserve(j: Journal): void {
    const want = j.end + Math.ceil(JOURNAL_RESERVE / j.record) * j.record;
    if (j.allocated >= want) return;
    const from = Math.max(j.allocated, j.end);
    try {
      if (writeSync(j.fd, new Uint8Array(want - from), 0, want - from, from) === want - from) {
        j.allocated = want;
        return;
      }
    } catch {
      /* the disk is full: the reserve written so far still takes records */
    }
    this.realign(j);
  }

  /** After a short or failed write: the file cut back to whole records (a torn tail would make it unreadable). */
  private realign(j: Journal): void {
    const size = fstatSync(j.fd).size;
    const whole = Math.max(j.end, JOURNAL_HEADER_LEN + Math.floor((size - JOURNAL_HEADER_LEN) / j.record) * j.record);
    if (size !== whole) ftruncateSync(j.fd, whole);
    j.allocated = whole;
  }

  /** Writes one record at the journal's end; throws when it cannot (a full disk and no reserve left). */
  private write(j: Journal, rec: Uint8Array): void {
    let cause: unknown = 'a short write';
    try {
      if (writeSync(j.fd, rec, 0, rec.length, j.end) === rec.length) cause = null;
    } catch (e) {
      cause = e;
    }
    if (cause !== null) {
      this.realign(j);
      throw new AlliumError('ERR_INTERNAL', 'replay journal write failed', { cause });
    }
    j.end += rec.length;
    if (j.allocated - j.end < JOURNAL_RESERVE / 2) this.reserve(j);
  }

  /** The tags of an onion key's journal, 16 bytes each, end to end; null when it cannot be trusted. */
  readOnion(B: Uint8Array): Uint8Array | null {
    return this.read(this.onionPath(B), ONION, B, ONION_RECORD);
  }

  /** The link journal's tags and expiry times; null when it cannot be trusted. */
  readLink(): [Uint8Array, number][] | null {
    const r = this.read(join(this.dir, 'link.log'), LINK, new Uint8Array(32), LINK_RECORD);
    if (!r) return null;
    const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
    const out: [Uint8Array, number][] = [];
    for (let o = 0; o < r.length; o += LINK_RECORD) out.push([r.slice(o, o + 16), Number(dv.getBigUint64(o + 16))]);
    return out;
  }

  /** Opens an onion key's journal for appending; `fresh` creates it empty first (a key made now). */
  openOnion(B: Uint8Array, fresh: boolean): void {
    const id = toHex(B);
    if (this.onionFds.has(id)) return;
    const path = this.onionPath(B);
    if (fresh || !existsSync(path)) writeFileAtomic(path, this.header(ONION, B));
    this.onionFds.set(id, this.open(path, ONION_RECORD));
  }

  /** Records an accepted onion. Throws ERR_INTERNAL when it cannot (the onion must then be refused). */
  appendOnion(B: Uint8Array, tag: Uint8Array): void {
    const j = this.onionFds.get(this.idOf(B));
    if (j === undefined) throw new AlliumError('ERR_INTERNAL', 'no replay journal for this onion key');
    this.write(j, tag);
  }

  /** The map key of an onion key; nearly every onion is for the current key, so the last one's hex is kept. */
  private idOf(B: Uint8Array): string {
    const last = this.lastId;
    if (last && equalBytes(last.key, B)) return last.id;
    const id = toHex(B);
    this.lastId = { key: Uint8Array.from(B), id };
    return id;
  }

  /** Deletes a retired key's journal. */
  deleteOnion(B: Uint8Array): void {
    const id = toHex(B);
    const j = this.onionFds.get(id);
    if (j !== undefined) closeSync(j.fd);
    this.onionFds.delete(id);
    try {
      unlinkSync(this.onionPath(B));
    } catch {
      /* already gone */
    }
  }

  /** Deletes every onion journal except those of `keep` (retirement, and journals of keys no longer held). */
  deleteOnionsExcept(keep: readonly Uint8Array[]): void {
    const kept = new Set(keep.map((k) => `onion-${toHex(k)}.log`));
    for (const name of readdirSync(this.dir)) {
      if (!name.startsWith('onion-') || kept.has(name)) continue;
      const j = this.onionFds.get(name.slice(6, -4));
      if (j !== undefined) closeSync(j.fd);
      this.onionFds.delete(name.slice(6, -4));
      unlinkSync(join(this.dir, name));
    }
    syncDir(this.dir);
  }

  /** Replaces the link journal by these entries (atomically) and opens it for appending. */
  resetLink(entries: readonly (readonly [Uint8Array, number])[]): void {
    if (this.linkFd !== null) closeSync(this.linkFd.fd);
    this.linkFd = null;
    const w = new ByteWriter(JOURNAL_HEADER_LEN + entries.length * LINK_RECORD).bytes(this.header(LINK, new Uint8Array(32)));
    for (const [tag, exp] of entries) w.bytes(tag).u64(BigInt(Math.floor(exp)));
    const path = join(this.dir, 'link.log');
    writeFileAtomic(path, w.done());
    this.linkFd = this.open(path, LINK_RECORD);
    this.linkRecords = entries.length;
  }

  /** Records an accepted msg1. Throws ERR_INTERNAL when it cannot (the handshake must then be refused). */
  appendLink(tag: Uint8Array, expires: number): void {
    if (this.linkFd === null) throw new AlliumError('ERR_INTERNAL', 'no link replay journal');
    const rec = new ByteWriter(LINK_RECORD)
      .bytes(tag)
      .u64(BigInt(Math.floor(expires)))
      .done();
    this.write(this.linkFd, rec);
    this.linkRecords++;
  }

  /** Records in the link journal (live and expired), to decide when to rewrite it. */
  get linkJournalRecords(): number {
    return this.linkRecords;
  }

  /** Bytes of every journal on disk (for the status page and tests). */
  bytes(): number {
    let n = 0;
    for (const name of readdirSync(this.dir)) if (name.endsWith('.log')) n += statSync(join(this.dir, name)).size;
    return n;
  }

  /**
   * A clean stop: fsyncs and closes every journal, then writes the clean marker. Call once nothing can be accepted
   * any more (the listener and every link are closed).
   */
  close(): void {
    for (const j of [...this.onionFds.values(), ...(this.linkFd === null ? [] : [this.linkFd])]) {
      fsyncSync(j.fd);
      closeSync(j.fd);
    }
    this.onionFds.clear();
    this.linkFd = null;
    writeFileAtomic(join(this.dir, 'clean'), 'clean\n');
  }
}
