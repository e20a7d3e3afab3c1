/**
 * The relay's heartbeat (as Tor's): every timing.heartbeat_interval one info line that says how it is doing —
 *
 *     heartbeat: up 6h 0m; 7 relay links, 35 client links; 120 circuits; 1.2 GB in, 1.1 GB out;
 *     directory 412 relays; store 12 % of 1.07 GB (4,102 blocks)
 *
 * — and the same figures as fields of the JSON line. Counts only: nothing about any client or circuit.
 */
import type { Logger } from 'pino';

export interface HeartbeatStatus {
  uptimeSeconds: number;
  links: { relay: number; client: number };
  circuits: number;
  bytes: { in: number; out: number };
  directory: readonly unknown[];
  store: { blocks: number; bytes: number; quota: number };
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

/** The heartbeat line's text and fields for a status (Relay.status()). */
export function heartbeatLine(s: HeartbeatStatus): { msg: string; fields: Record<string, number> } {
  const store =
    s.store.quota > 0
      ? `store ${((100 * s.store.bytes) / s.store.quota).toFixed(0)} % of ${formatBytes(s.store.quota)} (${s.store.blocks.toLocaleString('en')} blocks)`
      : 'no content store';
  const msg =
    `heartbeat: up ${formatUptime(s.uptimeSeconds)}; ${s.links.relay} relay links, ${s.links.client} client links; ${s.circuits} circuits; ` +
    `${formatBytes(s.bytes.in)} in, ${formatBytes(s.bytes.out)} out; directory ${s.directory.length} relays; ${store}`;
  return {
    msg,
    fields: {
      uptime: s.uptimeSeconds,
      relayLinks: s.links.relay,
      clientLinks: s.links.client,
      circuits: s.circuits,
      bytesIn: s.bytes.in,
      bytesOut: s.bytes.out,
      relays: s.directory.length,
      storeBytes: s.store.bytes,
      storeQuota: s.store.quota,
    },
  };
}

/** Logs a heartbeat every `intervalMs` until stopped. */
export function startHeartbeat(o: { status: () => Promise<HeartbeatStatus>; log: Logger; intervalMs: number }): { stop(): void } {
  const timer = setInterval(() => {
    o.status().then(
      (s) => {
        const { msg, fields } = heartbeatLine(s);
        o.log.info(fields, msg);
      },
      () => undefined,
    );
  }, o.intervalMs);
  timer.unref?.();
  return { stop: () => clearInterval(timer) };
}
