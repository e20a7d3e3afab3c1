/**
 * A link's send queue (specs/link.md §4): cells waiting for a frame, held already encoded in the plaintext of the
 * frames they will travel in. A cell is copied into its frame when it is queued, so the sender's buffer is free as
 * soon as sendCell returns (a relay encodes every cell it originates into one scratch body) and the queue holds no
 * object per cell and no view into a buffer it does not own (a received frame, a socket's read buffer).
 *
 * Frames fill in order, FRAME_CELLS cells each; the frame taken next is the oldest, full or not, and its unused cells
 * are PADDING (all zero), exactly what framing the cells one by one at send time produced. Plaintext buffers of
 * frames sent are kept for reuse, up to SPARE_FRAMES across every link of the process.
 */
import { encodeCellInto, type CellCommand } from '../protocol/cell.js';
import { CELL_LEN } from '../protocol/constants.js';
import { AlliumError } from '../protocol/errors.js';
import { FRAME_CELLS, FRAME_PLAIN_LEN } from '../protocol/link-handshake.js';

/** Plaintext frame buffers kept for reuse by every link of the process (256 KiB). */
const SPARE_FRAMES = 64;
const spare: Uint8Array[] = [];

export class FrameQueue {
  /** Frames waiting: frames[head..); the last may be partly filled (tailCells of its cells used). */
  private frames: Uint8Array[] = [];
  private head = 0;
  private tailCells = FRAME_CELLS;
  private count = 0;

  /** Cells queued. */
  get cells(): number {
    return this.count;
  }

  /** Encodes a cell into the frame it will travel in (body: at most CELL_BODY_LEN bytes, the rest is zero). */
  push(circId: number, command: CellCommand, body: Uint8Array): void {
    if (this.tailCells === FRAME_CELLS) {
      this.frames.push(spare.pop() ?? new Uint8Array(FRAME_PLAIN_LEN));
      this.tailCells = 0;
    }
    encodeCellInto(this.frames[this.frames.length - 1]!, this.tailCells * CELL_LEN, circId, command, body);
    this.tailCells++;
    this.count++;
  }

  /** Cells in the oldest frame (what shift() takes): 0 when nothing is queued. */
  get nextCells(): number {
    if (this.count === 0) return 0;
    return this.head === this.frames.length - 1 ? this.tailCells : FRAME_CELLS;
  }

  /**
   * Takes the oldest frame's plaintext, its unused cells zeroed (PADDING). The caller seals it and then hands it back
   * with release(). Throws when nothing is queued.
   */
  shift(): Uint8Array {
    const n = this.nextCells;
    if (n === 0) throw new AlliumError('ERR_INTERNAL', 'frame queue is empty');
    const plain = this.frames[this.head]!;
    if (n < FRAME_CELLS) plain.fill(0, n * CELL_LEN);
    this.frames[this.head++] = EMPTY;
    this.count -= n;
    if (this.head === this.frames.length) {
      this.frames.length = 0;
      this.head = 0;
      this.tailCells = FRAME_CELLS;
    } else if (this.head >= 256) {
      this.frames.splice(0, this.head);
      this.head = 0;
    }
    return plain;
  }

  /** Returns a frame buffer from shift() once sealed, for reuse. */
  static release(plain: Uint8Array): void {
    if (spare.length < SPARE_FRAMES && plain.length === FRAME_PLAIN_LEN) spare.push(plain);
  }

  /** Drops every queued cell. */
  clear(): void {
    this.frames = [];
    this.head = 0;
    this.tailCells = FRAME_CELLS;
    this.count = 0;
  }
}

const EMPTY = new Uint8Array(0);
