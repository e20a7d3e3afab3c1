/** relay/store-room.ts: when the store closes and when it opens again (specs/content.md §7.3), as a pure function. */
import { expect } from 'chai';
import { storeRoom, STORE_ROOM_OPEN, STORE_WRITE_FAILURE_HOLD_MS, type StoreRoomInputs, type StoreRoomState } from '../../relay/store-room.js';

const QUOTA = 1000;
const MIN_FREE = 100;
const RENEW = 60_000;

function inputs(now: number, over: Partial<StoreRoomInputs> = {}): StoreRoomInputs {
  return { now, quota: QUOTA, roomLeft: 500, diskFree: 10 * MIN_FREE, minFreeDisk: MIN_FREE, lastWriteFailureAt: 0, renewMs: RENEW, ...over };
}

/** Runs the inputs in order from an open store; returns each call's change. */
function run(steps: StoreRoomInputs[]): ('closed' | 'opened' | null)[] {
  let s: StoreRoomState = STORE_ROOM_OPEN;
  return steps.map((i) => {
    const r = storeRoom(s, i);
    s = r.state;
    return r.change;
  });
}

describe('store room', () => {
  it('closes at once when 98 % of the quota is used, when the disk is short, or after a failed write', () => {
    expect(run([inputs(1, { roomLeft: 20 })])).to.deep.equal(['closed']);
    expect(run([inputs(1, { roomLeft: 21 })])).to.deep.equal([null]);
    expect(run([inputs(1, { diskFree: MIN_FREE - 1 })])).to.deep.equal(['closed']);
    expect(run([inputs(10_000, { lastWriteFailureAt: 9_000 })])).to.deep.equal(['closed']);
    expect(run([inputs(10_000 + STORE_WRITE_FAILURE_HOLD_MS, { lastWriteFailureAt: 10_000 })])).to.deep.equal([null]);
  });

  it('opens again only after everything has been clear, with room to spare, for a renewal interval', () => {
    const changes = run([
      inputs(0, { roomLeft: 0 }), // closes
      inputs(1_000, { roomLeft: 50 }), // not full, but below 10 % of the quota free: not clear
      inputs(2_000, { roomLeft: 200 }), // clear from here
      inputs(2_000 + RENEW - 1, { roomLeft: 200 }),
      inputs(3_000 + RENEW, { roomLeft: 50 }), // not clear again: the interval starts over
      inputs(4_000 + RENEW, { roomLeft: 200 }),
      inputs(4_000 + 2 * RENEW, { roomLeft: 200 }), // clear for a whole interval: opens
    ]);
    expect(changes).to.deep.equal(['closed', null, null, null, null, null, 'opened']);
  });

  it('waits at most ten minutes however long the renewal interval', () => {
    const long = 3_600_000;
    expect(run([inputs(0, { roomLeft: 0, renewMs: long }), inputs(1, { renewMs: long }), inputs(1 + 10 * 60_000, { renewMs: long })])).to.deep.equal([
      'closed',
      null,
      'opened',
    ]);
  });
});
