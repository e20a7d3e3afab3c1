/**
 * What the kernel says about processes and the machine (Linux /proc): CPU time of a process (utime + stime, in
 * clock ticks), its resident set (VmRSS), and the machine's busy time, so a benchmark can report how many cores
 * other tenants were using while it measured. The machine is shared; every timed window should say so.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

let tck: number | null = null;

/** Clock ticks per second (`getconf CLK_TCK`, normally 100). */
export function clkTck(): number {
  if (tck === null) {
    try {
      tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      tck = 100;
    }
  }
  return tck;
}

/** CPU seconds (user + system, all threads) a process has used; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may contain spaces: "state ppid ... utime(14) stime(15)".
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / clkTck();
  } catch {
    return NaN;
  }
}

/** System (kernel) CPU seconds a process has used (stime, all threads): socket writes and reads land here. */
export function systemSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) / clkTck();
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes (VmRSS); NaN once the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores: everything but idle and iowait). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already inside user)
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  return busy / clkTck();
}

/**
 * Measures a window: CPU seconds of each watched process, wall time, and the cores the rest of the machine (other
 * tenants, anything not watched) used on average.
 */
export class CpuWindow {
  private readonly t0 = process.hrtime.bigint();
  private readonly busy0 = machineBusySeconds();
  private readonly cpu0: Map<number, number>;
  private readonly sys0: Map<number, number>;

  constructor(private readonly pids: readonly number[]) {
    this.cpu0 = new Map(pids.map((p) => [p, cpuSeconds(p)]));
    this.sys0 = new Map(pids.map((p) => [p, systemSeconds(p)]));
  }

  /** cpu: user + system seconds of each process over the window; sys: the system part alone. */
  end(): { wallSeconds: number; cpu: Map<number, number>; sys: Map<number, number>; otherCores: number } {
    const wallSeconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const cpu = new Map(this.pids.map((p) => [p, cpuSeconds(p) - this.cpu0.get(p)!]));
    const sys = new Map(this.pids.map((p) => [p, systemSeconds(p) - this.sys0.get(p)!]));
    const ours = [...cpu.values()].reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    const otherCores = Math.max(0, (machineBusySeconds() - this.busy0 - ours) / wallSeconds);
    return { wallSeconds, cpu, sys, otherCores };
  }
}

export function machineLine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `node ${process.version}, ${cpus[0]?.model.trim() ?? 'unknown CPU'} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load average ${load}`;
}
