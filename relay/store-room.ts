/**
 * Whether a relay's store takes new items (specs/content.md §7.3), as a pure function of what the relay measured.
 *
 * It closes at once — and the relay republishes without `store`, so placement moves to other relays and repair
 * copies what it holds there — when the items it must keep fill 98 % of the quota, when the disk has less than
 * `storage_min_free_disk` free, or when a write failed for want of space within the last minute. It opens again once
 * all of that has cleared with room to spare (below 90 % of the quota, twice the minimum free on disk, no failed
 * write for a minute) for a renewal interval (at most ten minutes), so a relay at the edge does not flap.
 *
 * The caller keeps the state between calls, and logs and counts the changes.
 */

/** A write that failed for want of space closes the store for this long. */
export const STORE_WRITE_FAILURE_HOLD_MS = 60_000;
/** The longest the store stays closed once everything has cleared. */
export const STORE_REOPEN_MAX_MS = 10 * 60_000;

export interface StoreRoomState {
  /** The store takes new items (the descriptor lists `store`). */
  readonly open: boolean;
  /** When it last closed (0: never). */
  readonly closedAt: number;
  /** Since when everything has been clear while closed (0: not clear now). */
  readonly clearSince: number;
}

export const STORE_ROOM_OPEN: StoreRoomState = { open: true, closedAt: 0, clearSince: 0 };

export interface StoreRoomInputs {
  now: number;
  /** The store's quota and the bytes left under it for items it must keep. */
  quota: number;
  roomLeft: number;
  /** Free bytes on the store's disk (Infinity when unknown). */
  diskFree: number;
  /** storage_min_free_disk. */
  minFreeDisk: number;
  /** When a write last failed for want of space (0: never). */
  lastWriteFailureAt: number;
  /** timing.descriptor_renew: how long everything must stay clear before the store opens again (at most ten minutes). */
  renewMs: number;
}

export interface StoreRoom {
  readonly state: StoreRoomState;
  /** What changed with this call: the store closed, opened, or neither. */
  readonly change: 'closed' | 'opened' | null;
}

export function storeRoom(s: StoreRoomState, i: StoreRoomInputs): StoreRoom {
  const failedRecently = i.lastWriteFailureAt > 0 && i.now - i.lastWriteFailureAt < STORE_WRITE_FAILURE_HOLD_MS;
  const full = i.roomLeft <= i.quota * 0.02 || i.diskFree < i.minFreeDisk || failedRecently;
  const clear = i.roomLeft >= i.quota * 0.1 && i.diskFree >= 2 * i.minFreeDisk && !failedRecently;
  if (s.open) return full ? { state: { open: false, closedAt: i.now, clearSince: 0 }, change: 'closed' } : { state: s, change: null };
  if (!clear) return { state: s.clearSince === 0 ? s : { ...s, clearSince: 0 }, change: null };
  const clearSince = s.clearSince || i.now;
  if (i.now - clearSince >= Math.min(i.renewMs, STORE_REOPEN_MAX_MS)) return { state: { open: true, closedAt: s.closedAt, clearSince: 0 }, change: 'opened' };
  return { state: { ...s, clearSince }, change: null };
}
