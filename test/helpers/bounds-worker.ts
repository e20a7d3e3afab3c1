/**
 * The measuring side of test/property/bounds.test.ts, in a worker thread so that a decoder that hangs or exhausts
 * memory fails the test (the test stops the worker) instead of freezing the test run. Answers two requests:
 *   { kind: 'time', name, sizes }: for each input shape, the fastest cost per call at each size;
 *   { kind: 'memory' }: runs every decoder on every shape at its cap (the test limits this worker's heap).
 * Before each case it posts { running } so the test can name the case that hung. Not a test file.
 */
import { parentPort } from 'node:worker_threads';
import { initCrypto } from '../../crypto/index.js';
import { acceptableFailure, decoderCases, type DecoderCase, type DecoderInput } from './decoders.js';
import { inputsOfSize } from './decoder-inputs.js';

export type BoundsRequest = { kind: 'time'; name: string; sizes: number[] } | { kind: 'memory' };
export type BoundsReply = { running: string } | { unexpected: string } | { shape: string; best: number[] } | { done: true };

const post = (m: BoundsReply): void => parentPort!.postMessage(m);

function once(c: DecoderCase, input: DecoderInput, label: string): void {
  try {
    c.run(input);
  } catch (e) {
    if (!acceptableFailure(e)) post({ unexpected: `${label}: ${(e as Error).name} ${(e as { code?: string }).code ?? ''}: ${(e as Error).message}` });
  }
}

/** Milliseconds per call: repeats until at least `minMs` have passed. */
function perCall(c: DecoderCase, input: DecoderInput, label: string, minMs = 1): number {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once(c, input, label);
    const ms = performance.now() - t0;
    if (ms >= minMs || reps >= 1 << 20) return ms / reps;
    reps *= ms < minMs / 16 ? 8 : 2;
  }
}

function time(c: DecoderCase, sizes: number[]): void {
  const inputs = sizes.map((n) => inputsOfSize(c, n));
  for (const shape of Object.keys(inputs[0]!)) {
    const best = sizes.map(() => Number.POSITIVE_INFINITY);
    for (let round = 0; round < 3; round++) {
      sizes.forEach((n, i) => {
        const input = inputs[i]![shape];
        if (input === undefined) return;
        const label = `${c.name} / ${shape} at ${n} bytes`;
        post({ running: label });
        best[i] = Math.min(best[i]!, perCall(c, input, label));
      });
    }
    post({ shape, best });
  }
}

function memory(): void {
  for (const c of decoderCases()) {
    for (const [shape, input] of Object.entries(inputsOfSize(c, c.cap))) {
      const label = `${c.name} / ${shape} at ${c.cap} bytes`;
      post({ running: label });
      once(c, input, label);
    }
  }
}

await initCrypto();
parentPort!.on('message', (m: BoundsRequest) => {
  if (m.kind === 'time')
    time(
      decoderCases().find((c) => c.name === m.name)!,
      m.sizes,
    );
  else memory();
  post({ done: true });
});
