/**
 * What SIGHUP changes in a running relay (docs/operator-guide.md, "Signals and exit codes"). The new configuration
 * is validated whole first; a bad one changes nothing. Of a valid one, the keys below take effect at once; every
 * other changed key is reported as needing a restart and left as it was, so a reload never half-applies a change
 * the running relay cannot honour (a new listen address, data directory or exit policy).
 *
 *   log_level                                   at once
 *   nickname, contact, family,                  a fresh descriptor is signed and published
 *   advertised_bandwidth
 *   bandwidth_rate, bandwidth_burst             a new bucket (starting full)
 *   max_links, max_links_per_ip,                checked on every new link / link queue from now on
 *   cells_per_second_per_link (new links),
 *   max_queue_bytes, storage_min_free_disk
 *   tls_cert, tls_key                           the certificate files are read again even if unchanged (renewed
 *                                               in place); a pair that does not load keeps the old one
 *   timing.heartbeat_interval                   not reloadable (a timer), like the rest of timing
 *
 * Not reloadable (a restart applies them): listen, path, public_address, data_dir, bridge, probe_resistant,
 * bootstrap, exit_policy, exit_reject_private, metrics, admin, admin_token, storage_quota, store_sync,
 * replication_factor, handshakes_per_second, overlay_degree, authority, authority_approved, directory_authorities,
 * log_format, link_padding, link_padding_budget, circuit_padding, circuit_padding_budget, turning TLS on or off, and every timing key.
 */
import type { Logger } from 'pino';
import type { RelayConfig } from './config.js';

const AT_ONCE = ['log_level', 'max_links', 'max_links_per_ip', 'cells_per_second_per_link', 'max_queue_bytes', 'storage_min_free_disk'] as const;
const DESCRIPTOR = ['nickname', 'contact', 'family', 'advertised_bandwidth'] as const;
const BANDWIDTH = ['bandwidth_rate', 'bandwidth_burst'] as const;
const TLS = ['tls_cert', 'tls_key'] as const;

export interface ReloadHooks {
  log: Logger;
  setBandwidth(rate: number, burst: number): void;
  /** Reads the certificate files again now; false when they did not load (the old ones stay). */
  reloadTls(): boolean;
  republish(): void;
}

export interface ReloadReport {
  /** Keys whose new values took effect. */
  applied: string[];
  /** Changed keys that need a restart (left as they were). */
  restart: string[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Applies `next` to the running `current` (mutated in place) as far as that is safe; logs what it did. */
export function applyReload(current: RelayConfig, next: RelayConfig, hooks: ReloadHooks): ReloadReport {
  const applied: string[] = [];
  const restart: string[] = [];
  const reloadable = new Set<string>([...AT_ONCE, ...DESCRIPTOR, ...BANDWIDTH]);
  const tlsOnOff = !current.tls_cert !== !next.tls_cert;
  for (const key of Object.keys(next) as (keyof RelayConfig)[]) {
    if (key === 'timing') {
      for (const t of Object.keys(next.timing) as (keyof RelayConfig['timing'])[]) if (!same(current.timing[t], next.timing[t])) restart.push(`timing.${t}`);
      continue;
    }
    if (same(current[key], next[key])) continue;
    if (reloadable.has(key) || ((TLS as readonly string[]).includes(key) && !tlsOnOff)) {
      (current as Record<string, unknown>)[key] = next[key];
      applied.push(key);
    } else restart.push(key);
  }
  if (applied.includes('log_level')) hooks.log.level = current.log_level;
  if (BANDWIDTH.some((k) => applied.includes(k))) hooks.setBandwidth(current.bandwidth_rate, current.bandwidth_burst);
  if (DESCRIPTOR.some((k) => applied.includes(k))) hooks.republish();
  let tlsNote = '';
  if (current.tls_cert && !tlsOnOff) tlsNote = hooks.reloadTls() ? '; TLS certificate read again' : '; the TLS files did not load: kept the old certificate';
  hooks.log.info({ applied, restart }, `reloaded the configuration: ${applied.length ? `applied ${applied.join(', ')}` : 'nothing to apply'}${tlsNote}`);
  if (restart.length) hooks.log.warn({ restart }, `these changes need a restart and were not applied: ${restart.join(', ')}`);
  return { applied, restart };
}
