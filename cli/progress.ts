/** A progress bar on stderr for long transfers (silent when stderr is not a terminal). */
import cliProgress from 'cli-progress';

export function progressBar(label: string): { update: (done: number, total: number | null) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% {value_mb}/{total_mb} MB`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      const t = total ?? Math.max(done, 1);
      if (!started) {
        bar.start(t, 0, { value_mb: '0.0', total_mb: (t / 1e6).toFixed(1) });
        started = true;
      }
      bar.setTotal(t);
      bar.update(done, { value_mb: (done / 1e6).toFixed(1), total_mb: (t / 1e6).toFixed(1) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A progress bar counting blocks, with an estimate of the time left (silent when stderr is not a terminal). */
export function blocksBar(label: string): { update: (done: number, total: number, current: string) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% {value}/{total} blocks, {eta_formatted} left  {current}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, current) {
      if (!started) {
        bar.start(total, 0, { current });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { current: current.length > 30 ? '…' + current.slice(-29) : current });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
