/**
 * A coverage-guided fuzzing loop in the manner of libFuzzer, for decoders running in this thread.
 *
 * Coverage comes from istanbul's counters in the instrumented build (test/fuzz/build.ts): after each execution the
 * engine reads every statement, function and branch counter, buckets each count as AFL does (1, 2, 3, 4–7, 8–15,
 * 16–31, 32–127, 128+) and keeps the input if any (counter, bucket) pair is new. Inputs are mutated with libFuzzer's
 * basic mutators (bit and byte changes, erasing, inserting and repeating bytes, copying parts, crossing over with
 * another corpus entry, interesting integers, dictionary words) stacked one to four deep.
 *
 * The engine knows nothing of decoders: the caller gives it an `execute` that returns normally for an acceptable
 * outcome and throws a Finding for anything else (test/fuzz/targets.ts decides what is acceptable). Inputs slower
 * than `slowMs` are findings too. Hangs and memory exhaustion are caught by the process that runs the worker, which
 * reads the input under test from `current` (a shared buffer written before every execution).
 *
 * Why not a packaged fuzzer: Jazzer.js's native engine needs glibc 2.38 and will not load on this project's Debian 12
 * machines; the only other coverage-guided fuzzer on the npm registry (jsfuzz) is archived and sends every input to
 * a child process. Instrumentation, the part that is hard to get right, is istanbul's.
 */

export class Finding extends Error {
  constructor(
    readonly kind: 'crash' | 'slow' | 'hang' | 'oom',
    message: string,
  ) {
    super(message);
  }
}

export interface Coverage {
  /** Calls `visit(index, count)` for every non-zero counter and resets each to zero. */
  drain(visit: (index: number, count: number) => void): void;
  readonly size: number;
}

export interface EngineOptions {
  readonly execute: (input: Uint8Array) => void;
  readonly coverage: Coverage;
  readonly seeds: readonly Uint8Array[];
  readonly maxLen: number;
  readonly dictionary: readonly Uint8Array[];
  readonly random: () => number;
  readonly slowMs: number;
  /** Written before every execution: u32 length, then the input (the runner reads it after a hang). */
  readonly current?: Uint8Array;
  /** Called about every 100 ms with the executions so far (a heartbeat for the runner's watchdog). */
  readonly heartbeat?: (execs: number) => void;
}

export interface EngineResult {
  execs: number;
  ms: number;
  corpus: Uint8Array[];
  /** Inputs added to the corpus in this run (new coverage). */
  added: Uint8Array[];
  features: number;
  findings: { kind: Finding['kind']; message: string; input: Uint8Array; /** executions before it */ at: number }[];
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 23, 24, 25, 26, 27, 28, 31];
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

function bucket(count: number): number {
  if (count <= 3) return count - 1;
  if (count <= 7) return 3;
  if (count <= 15) return 4;
  if (count <= 31) return 5;
  if (count <= 127) return 6;
  return 7;
}

export class FuzzEngine {
  private readonly seen: Uint8Array;
  private features = 0;
  private readonly corpus: Uint8Array[] = [];
  private readonly added: Uint8Array[] = [];
  private readonly findings: EngineResult['findings'] = [];
  private readonly findingKeys = new Set<string>();
  private execs = 0;
  private newFeature = false;

  constructor(private readonly o: EngineOptions) {
    this.seen = new Uint8Array(o.coverage.size);
  }

  private rnd(n: number): number {
    return Math.floor(this.o.random() * n);
  }

  /** Slow inputs are findings only after the seeds ran once (the first calls pay for compilation and set-up). */
  private warm = false;

  /** Runs one input; returns true when it reached new coverage. */
  private run(input: Uint8Array): boolean {
    const cur = this.o.current;
    if (cur && input.length + 4 <= cur.length) {
      new DataView(cur.buffer, cur.byteOffset).setUint32(0, input.length);
      cur.set(input, 4);
    }
    this.newFeature = false;
    const t0 = performance.now();
    try {
      this.o.execute(input);
    } catch (e) {
      this.record(e instanceof Finding ? e : new Finding('crash', `the target itself threw: ${(e as Error).stack ?? String(e)}`), input);
    }
    const ms = performance.now() - t0;
    if (this.warm && ms > this.o.slowMs) this.record(new Finding('slow', `one input took ${ms.toFixed(0)} ms (limit ${this.o.slowMs} ms)`), input);
    this.execs++;
    this.o.coverage.drain((i, count) => {
      const bit = 1 << bucket(count);
      if ((this.seen[i]! & bit) === 0) {
        this.seen[i] = this.seen[i]! | bit;
        this.features++;
        this.newFeature = true;
      }
    });
    return this.newFeature;
  }

  private record(f: Finding, input: Uint8Array): void {
    const key = `${f.kind}:${f.message.split('\n')[0]!.replace(/\d+/g, '#')}`;
    if (this.findingKeys.has(key) || this.findings.length >= 20) return;
    this.findingKeys.add(key);
    this.findings.push({ kind: f.kind, message: f.message, input: Uint8Array.from(input), at: this.execs });
  }

  private mutateOnce(b: Uint8Array): Uint8Array {
    const max = this.o.maxLen;
    const pick = this.rnd(12);
    const at = (n: number): number => this.rnd(Math.max(1, n));
    switch (pick) {
      case 0: // flip a bit
        if (b.length === 0) return Uint8Array.of(this.rnd(256));
        {
          const out = Uint8Array.from(b);
          const i = at(b.length);
          out[i] = out[i]! ^ (1 << this.rnd(8));
          return out;
        }
      case 1: // set a byte to a random or interesting value
        if (b.length === 0) return Uint8Array.of(this.rnd(256));
        {
          const out = Uint8Array.from(b);
          out[at(b.length)] = this.rnd(2) ? this.rnd(256) : INTERESTING_8[this.rnd(INTERESTING_8.length)]!;
          return out;
        }
      case 2: {
        // erase a run
        if (b.length < 2) return b;
        const from = at(b.length);
        const len = 1 + at(Math.min(b.length - from, 16));
        return Uint8Array.from([...b.subarray(0, from), ...b.subarray(from + len)]);
      }
      case 3: {
        // insert one or a repeated byte
        if (b.length >= max) return b;
        const n = this.rnd(4) === 0 ? 1 + at(Math.min(64, max - b.length)) : 1;
        const pos = at(b.length + 1);
        const v = this.rnd(256);
        return Uint8Array.from([...b.subarray(0, pos), ...new Array<number>(n).fill(v), ...b.subarray(pos)]);
      }
      case 4: {
        // copy a part over another place, or insert it
        if (b.length < 2) return b;
        const from = at(b.length);
        const len = 1 + at(Math.min(b.length - from, 64));
        const part = b.slice(from, from + len);
        const to = at(b.length);
        if (this.rnd(2) && b.length + len <= max) return Uint8Array.from([...b.subarray(0, to), ...part, ...b.subarray(to)]);
        const out = Uint8Array.from(b);
        out.set(part.subarray(0, Math.min(part.length, out.length - to)), to);
        return out;
      }
      case 5: {
        // cross over with another corpus entry
        const other = this.corpus[this.rnd(this.corpus.length)] ?? b;
        const cut = at(b.length + 1);
        const from = at(other.length + 1);
        return Uint8Array.from([...b.subarray(0, cut), ...other.subarray(from)]).subarray(0, max);
      }
      case 6:
      case 7: {
        // insert or overwrite with a dictionary word
        const w = this.o.dictionary[this.rnd(this.o.dictionary.length)];
        if (!w) return b;
        const pos = at(b.length + 1);
        if (this.rnd(2) && b.length + w.length <= max) return Uint8Array.from([...b.subarray(0, pos), ...w, ...b.subarray(pos)]);
        const out = Uint8Array.from(b.length >= pos + w.length ? b : [...b, ...new Uint8Array(pos + w.length - b.length)]);
        out.set(w, pos);
        return out.subarray(0, max);
      }
      case 8: {
        // an interesting 32-bit integer, either byte order
        if (b.length < 4) return b;
        const out = Uint8Array.from(b);
        const v = INTERESTING_32[this.rnd(INTERESTING_32.length)]! + (this.rnd(3) - 1);
        new DataView(out.buffer).setUint32(at(b.length - 3), v >>> 0, this.rnd(2) === 0);
        return out;
      }
      case 9: {
        // add or subtract a small amount from one byte
        if (b.length === 0) return b;
        const out = Uint8Array.from(b);
        const i = at(b.length);
        out[i] = (out[i]! + this.rnd(35) - 17) & 0xff;
        return out;
      }
      case 10: {
        // shuffle a few bytes
        if (b.length < 2) return b;
        const out = Uint8Array.from(b);
        const from = at(b.length - 1);
        const len = 2 + at(Math.min(8, b.length - from - 1));
        for (let i = len - 1; i > 0; i--) {
          const j = this.rnd(i + 1);
          [out[from + i], out[from + j]] = [out[from + j]!, out[from + i]!];
        }
        return out;
      }
      default: {
        // change an ASCII number
        const s = Array.from(b);
        const digits: number[] = [];
        s.forEach((c, i) => c >= 0x30 && c <= 0x39 && digits.push(i));
        if (digits.length === 0) return b;
        const i = digits[this.rnd(digits.length)]!;
        const out = Uint8Array.from(b);
        out[i] = 0x30 + this.rnd(10);
        return out;
      }
    }
  }

  private mutate(b: Uint8Array): Uint8Array {
    let out = b;
    const n = 1 + this.rnd(4);
    for (let i = 0; i < n; i++) out = this.mutateOnce(out);
    return out.length > this.o.maxLen ? out.subarray(0, this.o.maxLen) : out;
  }

  /** Runs until `seconds` have passed (or `maxExecs`), starting from the seeds. */
  runFor(seconds: number, maxExecs = Number.POSITIVE_INFINITY): EngineResult {
    const start = performance.now();
    const deadline = start + seconds * 1000;
    for (const s of this.o.seeds.length ? this.o.seeds : [new Uint8Array(0)]) {
      const input = s.length > this.o.maxLen ? s.subarray(0, this.o.maxLen) : s;
      if (this.run(input) || this.corpus.length === 0) this.corpus.push(input);
    }
    this.warm = true;
    let lastBeat = performance.now();
    while (this.execs < maxExecs) {
      if ((this.execs & 63) === 0) {
        const now = performance.now();
        if (now >= deadline) break;
        if (now - lastBeat >= 100) {
          this.o.heartbeat?.(this.execs);
          lastBeat = now;
        }
      }
      // favour recent additions a little, as libFuzzer weights newer inputs
      const base =
        this.rnd(3) === 0 && this.added.length
          ? this.added[this.added.length - 1 - this.rnd(Math.min(8, this.added.length))]!
          : this.corpus[this.rnd(this.corpus.length)]!;
      const input = this.mutate(base);
      if (this.run(input)) {
        this.corpus.push(input);
        this.added.push(input);
      }
    }
    return { execs: this.execs, ms: performance.now() - start, corpus: this.corpus, added: this.added, features: this.features, findings: this.findings };
  }
}
