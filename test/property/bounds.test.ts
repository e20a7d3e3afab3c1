/**
 * Every decoder of untrusted input does work linear in its input, for every input (specs/README.md §CBOR "Bounded
 * work"; STYLE: every parser of untrusted bytes is bounded). For each decoder of test/helpers/decoders.ts and each
 * attack shape (shared references, tags, indefinite lengths, maximal nesting, maximal counts, long repetitions):
 *
 *  - time: the cost per input byte is measured at n, 16·n and 256·n bytes (as far as the decoder's cap allows). For
 *    linear work it stays flat; the test allows it to grow 16× across the range (memory-hierarchy and garbage-
 *    collector steps cost up to ~6× here), which anything quadratic (256×) or worse exceeds. Costs are the fastest
 *    of several interleaved measurements, each repeated for at least a millisecond, so the test asserts a growth
 *    order, not a speed; a growth over the bound is measured again, and fails only when three runs all exceed it
 *    (a stall of the machine does not repeat; quadratic work does). It prints the worst growth it saw.
 *  - memory: a worker whose heap is limited to 64 MiB runs every decoder on every shape at its cap (up to 256 KiB);
 *    a decoder whose memory grew faster than linearly (the value-sharing bomb needed gigabytes for 300 bytes) runs
 *    it out of memory, and the test names the case.
 *  - totality: each call returns or throws an AlliumError of a documented code (never ERR_INTERNAL, a TypeError or
 *    a RangeError).
 *
 * The measurements run in worker threads (test/helpers/bounds-worker.ts) so that a decoder that hangs fails its
 * test after HANG_MS without progress, naming the case, rather than freezing the run.
 */
import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import type { BoundsReply, BoundsRequest } from '../helpers/bounds-worker.js';
import { decoderCases, type DecoderCase } from '../helpers/decoders.js';

const STEP = 16;
const ALLOWED_GROWTH = 16;
/** Runs a decoder's growth is measured in at most: it fails when every one exceeds ALLOWED_GROWTH. */
const MEASUREMENTS = 3;
const HANG_MS = 20_000;

function startWorker(heapMb: number): Worker {
  // the worker loads the TypeScript module through tsx's API (a worker does not inherit the test runner's loader)
  const script = new URL('../helpers/bounds-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(script)}, ${JSON.stringify(script)}))`, {
    eval: true,
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 16 },
  });
}

/** Sends one request and collects the replies until `done`; fails if the worker dies or makes no progress. */
function ask(worker: Worker, request: BoundsRequest): Promise<BoundsReply[]> {
  return new Promise((resolve, reject) => {
    const replies: BoundsReply[] = [];
    let last = '(starting)';
    let watchdog: NodeJS.Timeout;
    const finish = (e: Error | null): void => {
      clearTimeout(watchdog);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (e) reject(e);
      else resolve(replies);
    };
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        void worker.terminate();
        finish(new Error(`no progress for ${HANG_MS} ms during "${last}"`));
      }, HANG_MS);
    };
    const onMessage = (m: BoundsReply): void => {
      arm();
      if ('running' in m) last = m.running;
      else if ('done' in m) finish(null);
      else replies.push(m);
    };
    const onError = (e: Error): void => finish(new Error(`worker failed during "${last}": ${e.message}`));
    const onExit = (code: number): void => finish(new Error(`worker exited ${code} during "${last}"`));
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    arm();
    worker.postMessage(request);
  });
}

/** The input sizes a decoder is measured at: n, 16n and 256n, as far as its cap allows. */
function sizesFor(c: DecoderCase): number[] {
  const sizes: number[] = [];
  for (let n = Math.max(16, Math.min(64, c.cap >> 8)); n <= c.cap && sizes.length < 3; n *= STEP) sizes.push(n);
  return sizes;
}

const unexpectedIn = (replies: BoundsReply[]): string[] => replies.flatMap((r) => ('unexpected' in r ? [r.unexpected] : []));

describe('property: decoders do work linear in their input (time, memory, totality)', function () {
  this.timeout(300_000);
  let worker: Worker | null = null;
  let worst = { ratio: 0, what: '' };
  const timing = (): Worker => (worker ??= startWorker(512));

  after(async () => {
    await worker?.terminate();
    console.log(`      worst growth of the cost per byte: ${worst.ratio.toFixed(1)}× (${worst.what}); allowed ${ALLOWED_GROWTH}×`);
  });

  it('memory: every decoder on every shape at its cap fits in a 64 MiB heap, and fails only with documented codes', async () => {
    const w = startWorker(64);
    try {
      expect(unexpectedIn(await ask(w, { kind: 'memory' }))).to.deep.equal([]);
    } finally {
      await w.terminate();
    }
  });

  for (const c of decoderCases()) {
    it(`${c.name}: time grows linearly with input size`, async () => {
      const sizes = sizesFor(c);
      if (sizes.length < 2) return;
      // A growth over the bound is measured again: work that grows faster than linearly does so every time, while a
      // stall of the machine (this one is a shared virtual machine) does not repeat in the same place. The decoder
      // fails when every one of MEASUREMENTS runs exceeds the bound, with the first run's figures.
      let first: string | null = null;
      for (let run = 0; run < MEASUREMENTS; run++) {
        let replies: BoundsReply[];
        try {
          replies = await ask(timing(), { kind: 'time', name: c.name, sizes });
        } catch (e) {
          worker = null; // stopped by the watchdog: the next decoder gets a fresh worker
          throw e;
        }
        expect(unexpectedIn(replies)).to.deep.equal([]);
        const over = violations(c.name, sizes, replies);
        if (over === null) return;
        first ??= over;
      }
      expect.fail(`${first} (in each of ${MEASUREMENTS} runs)`);
    });
  }

  /** The first growth of the cost per byte over ALLOWED_GROWTH in one run's replies, or null; records the worst seen. */
  function violations(name: string, sizes: number[], replies: BoundsReply[]): string | null {
    let found: string | null = null;
    for (const r of replies) {
      if (!('shape' in r)) continue;
      const perByte = r.best.map((t, i) => t / sizes[i]!);
      for (let i = 1; i < sizes.length; i++) {
        for (let j = 0; j < i; j++) {
          const ratio = perByte[i]! / perByte[j]!;
          const what = `${name} / ${r.shape}, ${sizes[j]} → ${sizes[i]} bytes`;
          if (ratio > worst.ratio) worst = { ratio, what };
          if (ratio > ALLOWED_GROWTH)
            found ??= `${what}: ${(r.best[j]! * 1e3).toFixed(2)} µs → ${(r.best[i]! * 1e3).toFixed(2)} µs per call, growth ${ratio.toFixed(1)}× > ${ALLOWED_GROWTH}×`;
        }
      }
    }
    return found;
  }
});
