/**
 * Relay configuration (docs/operator-guide.md has the reference): a TOML file, overridden by command-line flags,
 * validated strictly — an unknown key is refused with its name, a wrong value with what is expected.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { parseFingerprint } from '../crypto/keys.js';
import { ConfigError } from '../protocol/errors.js';
import { parseExitPolicy } from '../protocol/exit-policy.js';

const duration = z.number().int().positive();

export const relayConfigSchema = z.strictObject({
  /** A short public name for the relay. */
  nickname: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('unnamed'),
  /** How to reach the operator (public). */
  contact: z.string().max(256).default(''),
  /** host:port the WebSocket server listens on. */
  listen: z.string().default('127.0.0.1:9001'),
  /** URL path of the WebSocket endpoint. */
  path: z.string().startsWith('/').default('/allium'),
  /** The address published in the descriptor (or put in the bridge line); default ws(s)://<listen><path>. */
  public_address: z.string().regex(/^wss?:\/\/\S+$/).optional(),
  /** PEM certificate chain and private key files: listen with TLS (wss://) instead of plain WebSocket. */
  tls_cert: z.string().default(''),
  tls_key: z.string().default(''),
  /** Run as an unlisted bridge: never publish the descriptor; print a bridge line with a secret (implies probe_resistant). */
  bridge: z.boolean().default(false),
  /** Upgrade only requests whose upgrade token proves a valid first handshake message; answer all else as a 404. */
  probe_resistant: z.boolean().default(false),
  /** Where keys and state live (created with mode 0700). */
  data_dir: z.string().default('./allium-relay'),
  /** Relays to join through: "ws://host:port/path FINGERPRINT". */
  bootstrap: z.array(z.string()).default([]),
  /** Fingerprints of the operator's other relays (declared family; never two in one circuit). */
  family: z.array(z.string()).default([]),
  /** Sustained bandwidth, bytes per second (read side), and burst bytes. */
  bandwidth_rate: z.number().int().positive().default(50 * 1024 * 1024),
  bandwidth_burst: z.number().int().positive().default(100 * 1024 * 1024),
  /** Bandwidth advertised to clients for path weighting (default: bandwidth_rate). */
  advertised_bandwidth: z.number().int().positive().optional(),
  /** Open links at most, and per remote IP address. */
  max_links: z.number().int().positive().default(4096),
  max_links_per_ip: z.number().int().positive().default(64),
  /** New link handshakes accepted per second (burst: twice this). */
  handshakes_per_second: z.number().int().positive().default(200),
  /** Cells per second a single link may send us before its reads are paused. */
  cells_per_second_per_link: z.number().int().positive().default(50_000),
  /** Memory for queued cells across all links; beyond it the out-of-memory handler closes the link holding the most. */
  max_queue_bytes: z.number().int().positive().default(256 * 1024 * 1024),
  /** Copies of each content item kept in the overlay (the k nearest store relays hold it). */
  replication_factor: z.number().int().min(1).max(16).default(3),
  /** Bytes of content blocks this relay stores at most (0: not a store relay). */
  storage_quota: z.number().int().nonnegative().default(1024 * 1024 * 1024),
  /**
   * Free disk space (bytes) the store leaves alone: below it, or when a write fails for want of space, the relay
   * stops advertising `store` until there is twice this much again (specs/content.md §7.3).
   */
  storage_min_free_disk: z.number().int().nonnegative().default(256 * 1024 * 1024),
  /** "normal": acknowledged blocks survive the relay being killed; "full": also power loss (an fsync per write). */
  store_sync: z.enum(['normal', 'full']).default('normal'),
  /** Exit policy lines, first match wins; default: not an exit. */
  exit_policy: z.array(z.string()).default(['reject *:*']),
  /** Refuse exits to private, loopback and link-local addresses (prepended to exit_policy). */
  exit_reject_private: z.boolean().default(true),
  /** host:port of the Prometheus metrics endpoint; empty to disable. */
  metrics: z.string().default(''),
  /** host:port of the status page (HTML and status.json); empty to disable. Loopback unless admin_token is set. */
  admin: z.string().default(''),
  /** Token the status page requires (needed when admin is not on a loopback address). */
  admin_token: z.string().default(''),
  /** trace | debug | info | warn | error. */
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** Act as a directory authority: test, measure, vote and sign consensuses (specs/directory.md §7). */
  authority: z.boolean().default(false),
  /** As an authority: measure relays' capacity (specs/measurement.md); off: weights from others' measurements only. */
  authority_measure: z.boolean().default(true),
  /**
   * As an authority: when relays earn flags (specs/directory.md §7.4). Times in ms, capacities in bytes/s, WFU a
   * fraction; the defaults suit the public network, test networks shorten the times.
   */
  authority_flags: z
    .strictObject({
      fast_min: z.number().int().nonnegative().default(100_000),
      stable_mtbf: duration.default(7 * 24 * 3600_000),
      guard_min_known: duration.default(8 * 24 * 3600_000),
      guard_min_wfu: z.number().min(0).max(1).default(0.98),
      guard_bw_guarantee: z.number().int().nonnegative().default(2_000_000),
      holder_min_uptime: duration.default(4 * 24 * 3600_000),
      dir_min_known: duration.default(24 * 3600_000),
    })
    .prefault({}),
  /** As an authority: list only these relays (empty: every relay with a valid descriptor), like approved-routers. */
  authority_approved: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/)).default([]),
  /** Fingerprints of the directory authorities whose consensuses this relay keeps and passes on. */
  directory_authorities: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/)).default([]),
  /** Relays to keep links with for gossip. */
  overlay_degree: z.number().int().min(1).max(64).default(8),
  /** Timing, in milliseconds. The defaults suit the public network; tests shorten them. */
  timing: z
    .strictObject({
      descriptor_lifetime: duration.default(3 * 3600_000),
      descriptor_renew: duration.default(3600_000),
      gossip_interval: duration.default(300_000),
      maintenance_interval: duration.default(5_000),
      onion_key_lifetime: duration.default(7 * 24 * 3600_000),
      onion_key_overlap: duration.default(24 * 3600_000),
      link_keepalive: duration.default(5 * 60_000),
      link_idle_timeout: duration.default(15 * 60_000),
      handshake_timeout: duration.default(10_000),
      clock_skew: duration.default(10 * 60_000),
      repair_interval: duration.default(60_000),
      consensus_interval: duration.default(10 * 60_000),
      /** Placement period (the shared random value's, specs/directory.md §7.6); a multiple of consensus_interval. */
      sr_period: duration.default(24 * 3600_000),
      /** How often an authority tests that each relay answers at its address. */
      reachability_interval: duration.default(20 * 60_000),
      /** How often an authority measures each relay, and for how long (specs/measurement.md). */
      measurement_interval: duration.default(24 * 3600_000),
      measurement_duration: duration.default(10_000),
    })
    .prefault({}),
});

export type RelayConfig = z.infer<typeof relayConfigSchema>;
export type RelayConfigInput = z.input<typeof relayConfigSchema>;

export interface BootstrapEntry {
  readonly url: string;
  readonly identity: Uint8Array;
}

/** Parses "ws://host:port/path FINGERPRINT". */
export function parseBootstrapLine(line: string): BootstrapEntry {
  const parts = line.trim().split(/\s+/);
  if (parts.length !== 2 || !/^wss?:\/\//.test(parts[0]!)) {
    throw new ConfigError(`bootstrap line "${line}": expected "ws://host:port/path FINGERPRINT"`);
  }
  try {
    return { url: parts[0]!, identity: parseFingerprint(parts[1]!) };
  } catch {
    throw new ConfigError(`bootstrap line "${line}": the fingerprint must be 64 hex digits`);
  }
}

/** Validates a config object (from TOML or code). Throws ConfigError naming the first bad key. */
export function resolveRelayConfig(input: unknown): RelayConfig {
  const r = relayConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`unknown configuration key "${[...issue.path, ...issue.keys].join('.')}" (see the operator guide for valid keys)`);
    }
    throw new ConfigError(`configuration key "${key}": ${issue.message}`);
  }
  const cfg = r.data;
  cfg.bootstrap.forEach(parseBootstrapLine);
  for (const f of cfg.family) {
    if (!/^[0-9a-fA-F]{64}$/.test(f)) throw new ConfigError(`family entry "${f}": a fingerprint is 64 hex digits`);
  }
  try {
    parseExitPolicy(cfg.exit_policy);
  } catch (e) {
    throw new ConfigError(`exit_policy: ${(e as Error).message}`);
  }
  if (cfg.timing.descriptor_lifetime > 24 * 3600_000) throw new ConfigError('timing.descriptor_lifetime must be at most 24 hours (86400000 ms); other relays refuse longer-lived descriptors');
  if (cfg.timing.descriptor_renew >= cfg.timing.descriptor_lifetime) throw new ConfigError('timing.descriptor_renew must be shorter than timing.descriptor_lifetime');
  if (cfg.timing.onion_key_overlap < cfg.timing.descriptor_lifetime) {
    throw new ConfigError('timing.onion_key_overlap must be at least timing.descriptor_lifetime, or clients holding a valid descriptor could not build circuits');
  }
  if (!cfg.tls_cert !== !cfg.tls_key) throw new ConfigError('tls_cert and tls_key: set both (TLS) or neither (plain WebSocket)');
  if (cfg.bridge && cfg.authority) throw new ConfigError('bridge: a directory authority must be public; it cannot be a bridge');
  const t = cfg.timing;
  if (t.sr_period % t.consensus_interval !== 0 || t.sr_period < 2 * t.consensus_interval) {
    throw new ConfigError('timing.sr_period must be a multiple of timing.consensus_interval, and at least twice it');
  }

  if (/[?#]/.test(cfg.path)) throw new ConfigError('path: a URL path without query or fragment, like "/allium"');
  if (cfg.public_address) {
    let u: URL;
    try {
      u = new URL(cfg.public_address);
    } catch {
      throw new ConfigError(`public_address: "${cfg.public_address}" is not a URL`);
    }
    if (u.search || u.hash) throw new ConfigError('public_address: no query or fragment (the link adds its own query)');
  }
  parseHostPort(cfg.listen, 'listen');
  if (cfg.metrics) parseHostPort(cfg.metrics, 'metrics');
  if (cfg.admin) {
    const { host } = parseHostPort(cfg.admin, 'admin');
    if (!/^(127\.|::1$|localhost$)/.test(host) && !cfg.admin_token) throw new ConfigError('admin: a status page on a non-loopback address needs admin_token');
  }
  return cfg;
}

export function loadRelayConfigFile(path: string): RelayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read config file ${path}`);
  }
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  return resolveRelayConfig(data);
}

export function parseHostPort(s: string, key: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(s);
  if (!m) throw new ConfigError(`${key}: expected host:port, got "${s}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`${key}: port out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
