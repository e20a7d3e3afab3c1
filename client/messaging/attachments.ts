/**
 * Attachments (specs/messaging.md §12): a file goes to the content store with random keys, and only its descriptor
 * (root reference, size, media type, name) travels in the message, inside the ratchet or the mailbox item. This
 * module stores a file (uploadAttachment) and fetches one (AttachmentDownload); the Messenger sends the descriptor.
 *
 * A download is resumable: it keeps the opened manifest, the number of bytes handed over, and every block fetched
 * until the bytes it covers have been handed over (at most the segment in progress, about 1.5 MiB). Interrupted
 * (aborted, or a segment unreachable for now) and read again, it asks the network for no block it already has
 * (protocol/file-codec.ts readFile, from the offset reached). It does not write anywhere: the application takes the
 * bytes from read() or bytes().
 */
import { toHex } from '../../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX, verifyStoredBlock, type BlockRef } from '../../protocol/chk.js';
import { parseLink } from '../../protocol/content-link.js';
import { attachmentName, attachmentType, type Attachment } from '../../protocol/attachment.js';
import { AlliumError, isAlliumError, LimitError, ProtocolError, throwIfAborted } from '../../protocol/errors.js';
import { openFile, readFile, SEGMENT_DATA, type OpenedFile } from '../../protocol/file-codec.js';
import type { AbortOptions } from '../../net/abort.js';
import { Emitter } from '../../net/emitter.js';
import type { ContentClient } from '../content.js';

/** Blocks a download fetches at once (as ContentClient's default concurrency). */
const READ_CONCURRENCY = 8;

/** Progress of an upload or a download, in bytes of the file. */
export interface AttachmentProgress {
  /** The message id (hex) the attachment travels under, the same at both ends. */
  readonly id: string;
  readonly direction: 'upload' | 'download';
  readonly done: number;
  readonly total: number;
}

/** A file to send: its bytes, and what the recipient is told of it. */
export interface FileInput {
  readonly data: Uint8Array;
  /** File name (the last path segment is kept; default none). */
  readonly name?: string;
  /** Media type (default application/octet-stream; `audio/*` for voice notes, `image/*` for images). */
  readonly type?: string;
}

/** Blocks a file of `size` bytes is stored as, manifest parts aside (content.md §3.1–§3.2): for progress only. */
function storedBlocks(size: number): number {
  if (size <= BLOCK_PAYLOAD_MAX) return 1;
  const data = Math.ceil(size / BLOCK_PAYLOAD_MAX);
  let check = 0;
  for (let left = data; left > 0; left -= SEGMENT_DATA) check += Math.ceil(Math.min(left, SEGMENT_DATA) / 2);
  return data + check + 1;
}

/**
 * Stores `file` with random keys and returns its descriptor. Refuses a file over `maxBytes` before storing anything
 * (LimitError MAX_ATTACHMENT_BYTES). Progress is reported in bytes of the file, from the blocks stored so far.
 */
export async function uploadAttachment(
  content: ContentClient,
  file: FileInput,
  maxBytes: number,
  progress: (done: number, total: number) => void,
  options: AbortOptions = {},
): Promise<Attachment> {
  const size = file.data.length;
  if (size > maxBytes) throw new LimitError('MAX_ATTACHMENT_BYTES', `a file of ${size} bytes is larger than attachments may be (${maxBytes})`);
  const blocks = storedBlocks(size);
  let stored = 0;
  progress(0, size);
  const link = await content.put(file.data, {
    ...(options.signal ? { signal: options.signal } : {}),
    onStored: () => progress(Math.min(size, Math.floor((++stored / blocks) * size)), size),
  });
  const root = parseLink(link);
  if (root.type !== 'chk') throw new AlliumError('ERR_INTERNAL', 'put gave a link that is not a chk link');
  progress(size, size);
  return { root: { rk: root.rk, dk: root.dk }, size, type: attachmentType(file.type), name: attachmentName(file.name ?? '') };
}

export type AttachmentDownloadEvents = {
  'download:progress': [AttachmentProgress];
};

/**
 * One attachment being fetched. read() yields the file's bytes from where the last read stopped; bytes() gathers
 * them all (and keeps what it gathered across interruptions). Both can be called again after an abort or a failure:
 * blocks fetched before are not fetched again.
 */
export class AttachmentDownload extends Emitter<AttachmentDownloadEvents> {
  /** Bytes handed over so far (the offset the next read starts from). */
  received = 0;
  /** Blocks fetched from the network, and blocks a resumed read found already fetched. */
  readonly stats = { fetched: 0, reused: 0 };
  private file: OpenedFile | null = null;
  /** Blocks fetched whose bytes are not all handed over yet, by routing key (hex). */
  private readonly held = new Map<string, Uint8Array>();
  /** Segments whose bytes are all handed over (their blocks are dropped from `held`). */
  private doneSegments = 0;
  private parts: Uint8Array[] = [];
  private reading = false;

  constructor(
    private readonly content: ContentClient,
    readonly attachment: Attachment,
    /** The message id (hex) the attachment came under. */
    readonly id: string,
    private readonly maxBytes: number,
    private readonly report: (p: AttachmentProgress) => void = () => undefined,
  ) {
    super();
  }

  get total(): number {
    return this.attachment.size;
  }

  get complete(): boolean {
    return this.received === this.attachment.size && this.file !== null;
  }

  /** Fetches through holders, each block once: what is held is served from memory. */
  private fetcher(signal: AbortSignal | undefined): (ref: BlockRef) => Promise<Uint8Array | null> {
    return async (ref) => {
      const key = toHex(ref.rk);
      const have = this.held.get(key);
      if (have) {
        this.stats.reused++;
        return have;
      }
      const got = await this.content.fetchAnywhere('block', ref.rk, (b) => verifyStoredBlock(ref.rk, b), signal ? { signal } : {});
      if (got) {
        this.stats.fetched++;
        this.held.set(key, got);
      }
      return got;
    };
  }

  /** Drops the blocks of segments whose bytes are all handed over. */
  private release(): void {
    const file = this.file!;
    let end = 0;
    for (let i = 0; i < file.segs.length; i++) {
      const [k, , refs] = file.segs[i]!;
      end = Math.min(file.size, end + k * BLOCK_PAYLOAD_MAX);
      if (i < this.doneSegments) continue;
      if (this.received < end) break;
      for (const r of refs) this.held.delete(toHex(r.rk));
      this.doneSegments = i + 1;
    }
    if (this.file && this.received === file.size) for (const r of file.manifestBlocks) this.held.delete(toHex(r.rk));
  }

  /**
   * Yields the file's bytes from `received` on, in order. Throws LimitError MAX_ATTACHMENT_BYTES (larger than this
   * messenger takes: nothing is fetched), ERR_CONTENT (the file is not the size the descriptor says),
   * ERR_NOT_FOUND, ERR_UNREACHABLE (try again later: resuming keeps what was fetched), ERR_ABORTED.
   */
  async *read(options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
    const { size } = this.attachment;
    if (size > this.maxBytes)
      throw new LimitError('MAX_ATTACHMENT_BYTES', `an attachment of ${size} bytes is larger than this messenger takes (${this.maxBytes})`);
    if (this.reading) throw new AlliumError('ERR_INTERNAL', 'a download is read by one reader at a time');
    this.reading = true;
    try {
      throwIfAborted(options.signal);
      const fetch = this.fetcher(options.signal);
      if (!this.file) {
        const file = await openFile(fetch, this.attachment.root, { concurrency: READ_CONCURRENCY });
        if (file.size !== size) throw new ProtocolError('ERR_CONTENT', 'the attachment is not the size its descriptor says');
        this.file = file;
        // The manifest blocks are in hand now; keep the root (small, and read again by nothing) out of the count.
        for (const r of file.manifestBlocks) this.held.delete(toHex(r.rk));
      }
      if (this.received >= size) return;
      this.emitProgress();
      for await (const chunk of readFile(this.file, fetch, { start: this.received, concurrency: READ_CONCURRENCY })) {
        this.received += chunk.length;
        this.release();
        this.emitProgress();
        yield chunk;
        throwIfAborted(options.signal);
      }
    } catch (e) {
      if (isAlliumError(e)) throw e;
      throw new AlliumError('ERR_INTERNAL', 'attachment download failed', { cause: e });
    } finally {
      this.reading = false;
    }
  }

  /** The whole file. Interrupted and called again, it goes on from where it stopped. */
  async bytes(options: AbortOptions = {}): Promise<Uint8Array> {
    const have = this.parts.reduce((n, p) => n + p.length, 0);
    if (have !== this.received) throw new AlliumError('ERR_CONFIG', 'the download was read with read(): bytes() cannot resume it');
    for await (const chunk of this.read(options)) this.parts.push(chunk);
    const out = new Uint8Array(this.attachment.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    this.parts = [out];
    return out;
  }

  private emitProgress(): void {
    const p: AttachmentProgress = { id: this.id, direction: 'download', done: this.received, total: this.attachment.size };
    this.emit('download:progress', p);
    this.report(p);
  }
}
