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
