/**
 * A reachability proof (relay/admission.ts) that gives up after PROBE_TIMEOUT_MS does not leave behind the link its
 * dial opens later: the link is closed as soon as it arrives (net/abort.ts within(), `onLate`). Virtual clock; the
 * dial is a stand-in whose link is handed over when the test says.
 */
import { expect } from 'chai';
import type { Descriptor } from '../../protocol/descriptor.js';
import { Admission, PROBE_TIMEOUT_MS } from '../../relay/admission.js';
import { VirtualClock } from '../../sim/clock.js';

describe('relay admission: a reachability proof that times out', () => {
  it('closes the link that opens after the deadline, and counts the proof as failed', async () => {
    const clock = new VirtualClock();
    const restore = clock.install();
    try {
      let handOver: ((link: { close(): void }) => void) | null = null;
      let closed = 0;
      const counted: string[] = [];
      const admission = new Admission({
        prove: () => new Promise((resolve) => (handOver = resolve)),
        admitted: () => expect.fail('a proof that timed out admits nobody'),
        askAgain: () => undefined,
        isHeld: () => false,
        now: () => Date.now(),
        count: (e) => void counted.push(e),
      });
      const d = { fingerprint: 'ab'.repeat(32), id: new Uint8Array(32).fill(0xab), addr: 'ws://127.0.0.1:9/allium' } as unknown as Descriptor;
      expect(admission.offer(d, 'cd'.repeat(32))).to.equal('pending');
      await clock.runFor(0);
      expect(handOver, 'the proof dialed').to.not.equal(null);
      await clock.runFor(PROBE_TIMEOUT_MS + 1);
      expect(counted).to.include('failed');
      // The dial finishes late: its link must not be kept open by nobody.
      handOver!({ close: () => void closed++ });
      await clock.runFor(0);
      expect(closed).to.equal(1);
      admission.stop();
    } finally {
      restore();
    }
  });
});
