/**
 * Tor's figures beside ours: lines the rows of a result file of the real-Tor loopback anchor (shared/anchors/tor-local,
 * read by bench/lib/tor-results.ts) up with bench:circuit's. Run the two one after the other in
 * one session, never at once; the machine is shared, so each side also says how busy the rest of it was.
 */
import path from 'node:path';
import { table } from '../harness.js';
import { fmt, type Summary } from './stats.js';
import { ourMedian as ours, torMedian as med, type LoadedTor } from './tor-results.js';

export { loadTor } from './tor-results.js';

export interface AlliumSide {
  build: Summary;
  ttfbExisting: Summary;
  ttfbFresh: Summary;
  bulk: Summary;
  relayCpu: Summary;
  clientCpu: Summary;
  otherCores: Summary;
  rate: Map<number, Summary>;
  rssIdle: Summary;
  rssAfter: Summary;
  perCircuitKiB: number;
}

export function torComparison(t: LoadedTor, a: AlliumSide): string {
  const r = t.r;
  const relays = (m: Record<string, { VmRSS: number }> | undefined): number[] =>
    Object.entries(m ?? {})
      .filter(([k]) => k !== 'client')
      .map(([, v]) => v.VmRSS / 1000);
  const medianOf = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? s[s.length >> 1]! : NaN;
  };
  const rate = (k: number): string => {
    const c = r.A_circuit_build?.concurrent_builds.find((x) => x.K === k);
    return c ? `${fmt(c.circuits_per_s)}/s (${k} launched at once)` : '—';
  };
  const m = r.M_idle_circuit_memory;
  const guard = m ? Object.entries(m.circuits_per_relay_by_position).find(([, pos]) => pos[0] === m.circuits_built)?.[0] : undefined;
  const guardKiB = m && guard ? ((m.rss_delta_kB[guard] ?? NaN) * 1000) / 1024 / m.circuits_built : NaN;
  const bulk = r.C_bulk?.['pinned_3hop'];
  const rows: string[][] = [['', 'Allium (this run)', `Tor ${r.meta.tor_version} (${r.meta.started})`]];
  rows.push(['3-hop circuit build, ms', ours(a.build), med(r.A_circuit_build?.build_ms)]);
  rows.push(['first byte, existing circuit, ms', ours(a.ttfbExisting), med(r.B_ttfb?.['pinned_existing_3hop']?.ttfb_ms)]);
  rows.push(['first byte, fresh circuit, ms', ours(a.ttfbFresh), med(r.B_ttfb?.['fresh_on_demand_3hop']?.ttfb_ms)]);
  rows.push(['bulk 64 MiB, one 3-hop circuit, MB/s', ours(a.bulk), med(bulk?.MBps)]);
  rows.push(['  Tor stock client (conflux, 2 legs), MB/s', '', med(r.C_bulk?.['stock']?.MBps)]);
  rows.push(['relay CPU per MiB on the path, ms', ours(a.relayCpu), med(bulk?.busy_relay_cpu_ms_per_MiB)]);
  rows.push(['client CPU per MiB, ms', ours(a.clientCpu), med(bulk?.client_cpu_ms_per_MiB)]);
  rows.push(['other tenants during bulk, cores', ours(a.otherCores), med(bulk?.other_cores)]);
  for (const k of [8, 256]) rows.push([`circuits/s, ${k} in flight`, `${fmt(a.rate.get(k)?.median ?? NaN)}/s (closed loop)`, rate(k)]);
  rows.push(['relay RSS idle, MB (median)', fmt(a.rssIdle.median), fmt(medianOf(relays(r.rss_kB_idle)))]);
  rows.push([
    'relay RSS after bulk, MB (median / max)',
    `${fmt(a.rssAfter.median)} / ${fmt(a.rssAfter.max)}`,
    `${fmt(medianOf(relays(r.rss_kB_after_bulk)))} / ${fmt(Math.max(...relays(r.rss_kB_after_bulk)))}`,
  ]);
  rows.push(['memory per idle circuit at the guard, KiB (RSS delta)', fmt(a.perCircuitKiB), `${fmt(guardKiB)} (${m?.circuits_built ?? '—'} circuits)`]);
  return [`Beside real Tor on the same machine (${path.basename(t.file)}; its methods: shared/anchors/tor-local/RESULTS.md):`, table(rows, new Set())].join(
    '\n',
  );
}
