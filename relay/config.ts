/**
 * Relay configuration (docs/operator-guide.md has the reference): a TOML file, overridden by command-line flags,
 * validated strictly — an unknown key is refused with its name (and the key it was probably meant to be), a wrong
 * value with what is expected, a TOML error with its line and column. Sizes and durations take units ("10 MB",
 * "5 min": relay/config-units.ts). Fingerprints must be valid identity keys, not only 64 hex digits.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError } from '../protocol/errors.js';
import { parseExitPolicy } from '../protocol/exit-policy.js';
import { isLinkUrl } from '../protocol/dial-policy.js';
import { identityOf, namedAuthorities, parseBootstrapLine, type BootstrapLine } from '../protocol/bootstrap-line.js';
import { MAILBOX_V1_UNTIL_MS } from '../protocol/mailbox.js';
import { zDuration, zSize } from './config-units.js';
import { unknownKeyHint } from './config-hints.js';

/**
 * The configuration's schema, built when a configuration is read and dropped after: a running relay does not keep
 * it (its few hundred zod objects were the largest part of relay/config.ts's cost to a relay at rest; issue 18).
 */
function relayConfigSchema() {
  const duration = zDuration();
  return z.strictObject({
    /** A short public name for the relay. */
    nickname: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/)
      .default('unnamed'),
    /** How to reach the operator (public). */
    contact: z.string().max(256).default(''),
    /** host:port the WebSocket server listens on. */
    listen: z.string().default('127.0.0.1:9001'),
    /** URL path of the WebSocket endpoint. */
    path: z.string().startsWith('/').default('/allium'),
    /** The address published in the descriptor (or put in the bridge line); default ws(s)://<listen><path>. */
    public_address: z
      .string()
      .regex(/^wss?:\/\/\S+$/)
      .optional(),
    /** PEM certificate chain and private key files: listen with TLS (wss://) instead of plain WebSocket. */
    tls_cert: z.string().default(''),
    tls_key: z.string().default(''),
    /** Run as an unlisted bridge: never publish the descriptor; print a bridge line with a secret (implies probe_resistant). */
    bridge: z.boolean().default(false),
    /** Upgrade only requests whose upgrade token proves a valid first handshake message; answer all else as a 404. */
    probe_resistant: z.boolean().default(false),
    /** Where keys and state live (created with mode 0700). */
    data_dir: z.string().default('./allium-relay'),
    /**
     * Dial relays at loopback, private, link-local and other non-public addresses (specs/link.md §1.1). Off: such
     * addresses in descriptors (anyone can publish one) are refused, so the relay cannot be made to send requests into
     * its own host or network. Turn on only for a test network on one machine or a network of your own.
     */
    allow_private_addresses: z.boolean().default(false),
    /**
     * Sybil admission (specs/directory.md §5.5): a gossiped descriptor of an identity neither held nor listed by the
     * consensus enters the directory only after its relay proved it answers at its address. Turning it off is allowed
     * only with allow_private_addresses (a closed test network), where tests fill a directory with made-up relays.
     */
    sybil_admission: z.boolean().default(true),
    /** Relays to join through: "ws://host:port/path FINGERPRINT". */
    bootstrap: z.array(z.string()).default([]),
    /** Fingerprints of the operator's other relays (declared family; never two in one circuit). */
    family: z.array(z.string()).default([]),
    /** Sustained bandwidth, bytes per second (read side), and burst bytes. */
    bandwidth_rate: zSize({ rate: true }).default(50 * 1024 * 1024),
    bandwidth_burst: zSize().default(100 * 1024 * 1024),
    /** Bandwidth advertised to clients for path weighting (default: bandwidth_rate). */
    advertised_bandwidth: zSize({ rate: true }).optional(),
    /** Honour clients' requests for link padding (specs/link.md §4.4). */
    link_padding: z.boolean().default(true),
    /** Act as a mix relay of message mode (specs/mix.md §4): open, delay and pass on mix packets, hold inboxes. */
    mix: z.boolean().default(false),
    /** Padding bytes per second the relay sends across all links (default: a tenth of bandwidth_rate). */
    link_padding_budget: zSize({ rate: true }).optional(),
    /** Run the circuit padding machines clients negotiate with this relay as a middle hop (specs/padding.md). */
    circuit_padding: z.boolean().default(true),
    /** Circuit padding bytes per second across all circuits (default: a twentieth of bandwidth_rate). */
    circuit_padding_budget: zSize({ rate: true }).optional(),
    /** Open links at most, and per remote IP address and per address block (an IPv4 /24, an IPv6 /48). */
    max_links: z.number().int().positive().default(4096),
    max_links_per_ip: z.number().int().positive().default(64),
    max_links_per_block: z.number().int().positive().default(256),
    /** Of max_links, the links only relays may take: clients (and upgrades of unknown role) hold at most the rest. */
    relay_links_reserved: z.number().int().nonnegative().default(512),
    /** New link handshakes accepted per second over all peers (burst: twice this). */
    handshakes_per_second: z.number().int().positive().default(200),
    /** New link handshakes accepted per second from one IP address, charged before the relay-wide bucket (burst: twice this). */
    handshakes_per_second_per_ip: z.number().int().positive().default(10),
    /** The same for one address block: an IPv4 /24, an IPv6 /48 (burst: twice this). */
    handshakes_per_second_per_block: z.number().int().positive().default(50),
    /**
     * Circuits whose previous hop is a client link from one address block (an IPv4 /24, an IPv6 /48), and a relay
     * link (specs/circuits.md §7.1); beyond them CREATE is answered with DESTROY RESOURCE_LIMIT.
     */
    max_circuits_per_block: z.number().int().positive().default(1024),
    max_circuits_per_relay_block: z.number().int().positive().default(8192),
    /**
     * CREATEs accepted per second from one client link, from the client links of one address block, and from the
     * relay links of one block; bursts of ten seconds' worth (specs/circuits.md §7.2). Beyond them DESTROY
     * RESOURCE_LIMIT, before the onion is opened.
     */
    creates_per_second_per_link: z.number().int().positive().default(10),
    creates_per_second_per_block: z.number().int().positive().default(50),
    creates_per_second_per_relay_block: z.number().int().positive().default(500),
    /** Cells per second a single link may send us before its reads are paused. */
    cells_per_second_per_link: z.number().int().positive().default(50_000),
    /** Memory for queued cells across all links; beyond it the out-of-memory handler closes the link holding the most. */
    max_queue_bytes: zSize().default(256 * 1024 * 1024),
    /** Copies of each content item kept in the overlay (the k nearest store relays hold it). */
    replication_factor: z.number().int().min(1).max(16).default(3),
    /** Bytes of content blocks this relay stores at most (0: not a store relay). */
    storage_quota: zSize({ min: 0 }).default(1024 * 1024 * 1024),
    /**
     * Free disk space (bytes) the store leaves alone: below it, or when a write fails for want of space, the relay
     * stops advertising `store` until there is twice this much again (specs/content.md §7.3).
     */
    storage_min_free_disk: zSize({ min: 0 }).default(256 * 1024 * 1024),
    /** "normal": acknowledged blocks survive the relay being killed; "full": also power loss (an fsync per write). */
    store_sync: z.enum(['normal', 'full']).default('normal'),
    /**
     * Until when (Unix ms) mailbox items of version 1, which carry no proof of work, are stored (specs/messaging.md
     * §9.3): default one MAX_MAILBOX_TTL_MS after version 2 shipped. 0 refuses them now.
     */
    mailbox_v1_until: z.number().int().min(0).default(MAILBOX_V1_UNTIL_MS),
    /** Exit policy lines, first match wins; default: not an exit. */
    exit_policy: z.array(z.string()).default(['reject *:*']),
    /** Refuse exits to private, loopback and link-local addresses (prepended to exit_policy). */
    exit_reject_private: z.boolean().default(true),
    /** DNS servers the exit resolves names with: "ip", "ip:port" or "[ipv6]:port" (default: the system's). */
    exit_dns_servers: z.array(z.string()).max(16).default([]),
    /** DNS lookups an exit has outstanding at once, and for one circuit (specs/streams.md §3). */
    exit_max_pending_resolves: z.number().int().positive().default(256),
    exit_max_pending_resolves_per_circuit: z.number().int().positive().default(16),
    /**
     * Exit streams (resolving, connecting or connected) of one circuit, and of the one-hop circuits from one client
     * address block, an IPv4 /24 or IPv6 /48 (specs/streams.md §3.1).
     */
    exit_max_streams_per_circuit: z.number().int().positive().default(128),
    exit_max_streams_per_client_block: z.number().int().positive().default(256),
    /** host:port of the Prometheus metrics endpoint; empty to disable. */
    metrics: z.string().default(''),
    /** host:port of the status page (HTML and status.json); empty to disable. Loopback unless admin_token is set. */
    admin: z.string().default(''),
    /** Token the status page requires (needed when admin is not on a loopback address). */
    admin_token: z.string().default(''),
    /** trace | debug | info | warn | error. */
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
    /** "auto": readable lines when standard error is a terminal, JSON lines otherwise; or always "json" or "pretty". */
    log_format: z.enum(['auto', 'json', 'pretty']).default('auto'),
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
    /** Relays to dial and keep links with for gossip. */
    overlay_degree: z.number().int().min(1).max(64).default(8),
    /** Relays that dialed this one taken as gossip neighbours per /24 or /48 (a loopback test network raises it). */
    max_inbound_neighbours_per_block: z.number().int().positive().default(8),
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
        /** Deadline of one exit DNS lookup. */
        exit_resolve_timeout: duration.default(5_000),
        /** How often the relay logs its heartbeat line (uptime, links, circuits, bytes, store). */
        heartbeat_interval: duration.default(3600_000),
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
}

export type RelayConfig = z.infer<ReturnType<typeof relayConfigSchema>>;
export type RelayConfigInput = z.input<ReturnType<typeof relayConfigSchema>>;

/**
 * The settings of a network whose relays all run on one machine (a test network, the devnet, `--test-network`):
 * relays dial each other at loopback addresses (specs/link.md §1.1), and every peer has the same address, so the
 * per-address and per-block limits (specs/limits.md) would count the whole network as one peer. Never for a relay on
 * a real network: these lift the defences against one address or network taking a relay's resources.
 */
export const SINGLE_HOST_NETWORK = {
  allow_private_addresses: true,
  exit_reject_private: false,
  max_links_per_ip: 4096,
  max_links_per_block: 4096,
  max_inbound_neighbours_per_block: 4096,
  handshakes_per_second_per_ip: 10_000,
  handshakes_per_second_per_block: 10_000,
  max_circuits_per_block: 65_536,
  max_circuits_per_relay_block: 65_536,
  exit_max_streams_per_client_block: 4096,
  creates_per_second_per_link: 10_000,
  creates_per_second_per_block: 10_000,
  creates_per_second_per_relay_block: 10_000,
} as const satisfies Partial<RelayConfigInput>;

export type BootstrapEntry = BootstrapLine;

export { identityOf, parseBootstrapLine };

/** Validates a config object (from TOML or code). Throws ConfigError naming the first bad key. */
export function resolveRelayConfig(input: unknown): RelayConfig {
  const schema = relayConfigSchema();
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const path = issue.path.map(String);
      const hint = unknownKeyHint(path, issue.keys[0]!, Object.keys(schema.shape), { timing: Object.keys(schema.shape.timing.unwrap().shape) });
      throw new ConfigError(
        `unknown configuration key "${[...path, issue.keys[0]!].join('.')}"${hint ? `: ${hint}` : ' (see the operator guide for valid keys)'}`,
      );
    }
    throw new ConfigError(`configuration key "${key}": ${issue.message}`);
  }
  const cfg = r.data;
  const lines = cfg.bootstrap.map(parseBootstrapLine);
  for (const f of cfg.family) identityOf(f, `family entry "${f}"`);
  for (const f of cfg.authority_approved) identityOf(f, `authority_approved entry "${f}"`);
  for (const f of cfg.directory_authorities) identityOf(f, `directory_authorities entry "${f}"`);
  // Bootstrap lines that name authorities must agree with each other and with directory_authorities (§6.7 of
  // specs/directory.md); a relay takes its authorities from directory_authorities only (relay/notices.ts warns when
  // the lines name some and it has none), so lines of both forms are no conflict here, unlike at a client.
  namedAuthorities(lines, cfg.directory_authorities);
  try {
    parseExitPolicy(cfg.exit_policy);
  } catch (e) {
    throw new ConfigError(`exit_policy: ${(e as Error).message}`);
  }
  if (cfg.timing.descriptor_lifetime < 5_000)
    throw new ConfigError('timing.descriptor_lifetime must be at least 5 seconds (5000 ms); other relays refuse shorter-lived descriptors');
  if (cfg.timing.descriptor_lifetime > 24 * 3600_000)
    throw new ConfigError('timing.descriptor_lifetime must be at most 24 hours (86400000 ms); other relays refuse longer-lived descriptors');
  if (cfg.timing.descriptor_renew >= cfg.timing.descriptor_lifetime)
    throw new ConfigError('timing.descriptor_renew must be shorter than timing.descriptor_lifetime');
  if (cfg.timing.onion_key_overlap < cfg.timing.descriptor_lifetime) {
    throw new ConfigError(
      'timing.onion_key_overlap must be at least timing.descriptor_lifetime, or clients holding a valid descriptor could not build circuits',
    );
  }
  if (cfg.relay_links_reserved >= cfg.max_links) throw new ConfigError('relay_links_reserved must be less than max_links (clients need some links)');
  if (!cfg.tls_cert !== !cfg.tls_key) throw new ConfigError('tls_cert and tls_key: set both (TLS) or neither (plain WebSocket)');
  if (!cfg.sybil_admission && !cfg.allow_private_addresses) {
    throw new ConfigError(
      'sybil_admission: may be turned off only on a closed test network (with allow_private_addresses); on a public network it is what keeps made-up relays out of the directory',
    );
  }
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
    if (u.search || u.hash || !isLinkUrl(cfg.public_address))
      throw new ConfigError('public_address: a ws:// or wss:// URL without user name, query or fragment (the link adds its own query)');
  }
  for (const s of cfg.exit_dns_servers) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([0-9.]+)(?::(\d{1,5}))?|([0-9a-fA-F:]+))$/.exec(s);
    const ip = m ? (m[1] ?? m[3] ?? m[5])! : '';
    const port = m ? Number(m[2] ?? m[4] ?? 53) : 0;
    if (!m || !isIP(ip) || port < 1 || port > 65535) throw new ConfigError(`exit_dns_servers: "${s}" is not "ip", "ip:port" or "[ipv6]:port"`);
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
  return resolveRelayConfig(parseTomlFile(`config file ${path}`, text));
}

/**
 * Parses a TOML config file's text. A syntax error is ERR_CONFIG with the file (`label`), line and column:
 * `config file relay.toml, line 3, column 12: not valid TOML: …`.
 */
export function parseTomlFile(label: string, text: string): unknown {
  try {
    return parseToml(text);
  } catch (e) {
    const t = e as Error & { line?: number; column?: number };
    const what = t.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    const where = t.line !== undefined ? `, line ${t.line}, column ${t.column ?? 1}` : '';
    throw new ConfigError(`${label}${where}: not valid TOML: ${what}`);
  }
}

export function parseHostPort(s: string, key: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(s);
  if (!m) throw new ConfigError(`${key}: expected host:port, got "${s}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`${key}: port out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
