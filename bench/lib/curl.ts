/**
 * curl as the unmodified application: one download, directly or through a SOCKS5 listener with remote name
 * resolution (socks5h://, what --socks5-hostname does) and a username that selects stream isolation.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CurlResult {
  readonly code: number;
  /** Seconds from start to the first response byte (%{time_starttransfer}). */
  readonly ttfb: number;
  readonly total: number;
  readonly bytes: number;
  /** Bytes per second as curl reports it (%{speed_download}). */
  readonly speed: number;
}

export async function curl(url: string, o: { socksPort?: number; user?: string; timeoutS?: number } = {}): Promise<CurlResult> {
  const args = [
    '-s',
    '-o',
    '/dev/null',
    '--max-time',
    String(o.timeoutS ?? 120),
    '-w',
    '%{http_code} %{time_starttransfer} %{time_total} %{size_download} %{speed_download}',
  ];
  if (o.socksPort !== undefined) {
    const auth = o.user ? `${encodeURIComponent(o.user)}:x@` : '';
    args.push('-x', `socks5h://${auth}127.0.0.1:${o.socksPort}`);
  }
  args.push(url);
  const { stdout } = await run('curl', args).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '0 0 0 0 0' }));
  const [code, ttfb, total, bytes, speed] = stdout.trim().split(' ').map(Number);
  return { code: code!, ttfb: ttfb!, total: total!, bytes: bytes!, speed: speed! };
}
