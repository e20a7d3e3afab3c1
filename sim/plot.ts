/**
 * Small SVG charts for the simulator's experiments: line charts (linear or logarithmic axes, several series, a
 * legend) and grouped bar charts. Plain SVG 1.1 text with no scripts, fonts or external references, deterministic
 * for given data, so the plots in docs/plots/ change only when the numbers do.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Dashed line (reference curves such as a theoretical bound). */
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logX?: boolean;
  logY?: boolean;
  /** Axis ranges (default: the data's, with zero included on linear y axes). */
  yMin?: number;
  yMax?: number;
  xMin?: number;
  xMax?: number;
  width?: number;
  height?: number;
  /** Draw a marker at every point. */
  markers?: boolean;
}

export interface BarChart {
  title: string;
  yLabel: string;
  /** Category labels along the x axis. */
  categories: readonly string[];
  /** One bar per category for each group. */
  groups: readonly { name: string; values: readonly number[] }[];
  logY?: boolean;
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

function num(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

/** "Nice" tick values covering [lo, hi]. */
function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const span = b - a;
  for (let e = a; e <= b; e++) {
    for (const m of span <= 2 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

interface Scale {
  (v: number): number;
  ticks: number[];
}

function scale(lo: number, hi: number, from: number, to: number, log: boolean): Scale {
  if (log) {
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    const f = ((v: number) => from + ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0 || 1)) * (to - from)) as Scale;
    f.ticks = logTicks(lo, hi);
    return f;
  }
  const f = ((v: number) => from + ((v - lo) / (hi - lo || 1)) * (to - from)) as Scale;
  f.ticks = linearTicks(lo, hi);
  return f;
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" ${FONT} fill="#222">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Room for the legend: swatch and the longest name (about 6.2 px a character at 11 px). */
function legendWidth(names: readonly string[]): number {
  return Math.round(Math.min(320, Math.max(120, 50 + 6.2 * Math.max(0, ...names.map((n) => n.length)))));
}

/** Renders a line chart as SVG text. */
export function lineChart(c: LineChart): string {
  const legendW = legendWidth(c.series.map((s) => s.name));
  const width = c.width ?? 530 + legendW;
  const height = c.height ?? 420;
  const m = { left: 72, right: legendW + 16, top: 40, bottom: 56 };
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0) && (!c.logY || y > 0));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  let x0 = c.xMin ?? (xs.length ? Math.min(...xs) : 0);
  let x1 = c.xMax ?? (xs.length ? Math.max(...xs) : 1);
  let y0 = c.yMin ?? (ys.length ? Math.min(...ys) : 0);
  let y1 = c.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (!c.logY && c.yMin === undefined) y0 = Math.min(0, y0);
  if (c.logY) {
    y0 = 10 ** Math.floor(Math.log10(y0 || 1));
    y1 = 10 ** Math.ceil(Math.log10(y1 || 1));
  } else if (c.yMax === undefined) {
    const t = linearTicks(y0, y1);
    y1 = Math.max(y1, t[t.length - 1] ?? y1);
  }
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) y1 = y0 + 1;
  if (c.logX) {
    x0 = Math.min(x0, 10 ** Math.floor(Math.log10(x0)));
    x1 = Math.max(x1, 10 ** Math.ceil(Math.log10(x1)));
  }
  const sx = scale(x0, x1, m.left, width - m.right, !!c.logX);
  const sy = scale(y0, y1, height - m.bottom, m.top, !!c.logY);
  const body: string[] = [];
  const plotR = width - m.right;
  const plotB = height - m.bottom;
  for (const t of sy.ticks) {
    const y = num(sy(t));
    body.push(`<line x1="${m.left}" y1="${y}" x2="${plotR}" y2="${y}" stroke="#e6e6e6"/>`);
    body.push(`<text x="${m.left - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" ${FONT} fill="#444">${fmt(t)}</text>`);
  }
  for (const t of sx.ticks) {
    const x = num(sx(t));
    body.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${plotB}" stroke="#f0f0f0"/>`);
    body.push(`<text x="${x}" y="${plotB + 16}" text-anchor="middle" font-size="11" ${FONT} fill="#444">${fmt(t)}</text>`);
  }
  body.push(`<rect x="${m.left}" y="${m.top}" width="${plotR - m.left}" height="${plotB - m.top}" fill="none" stroke="#888"/>`);
  body.push(`<text x="${(m.left + plotR) / 2}" y="${height - 14}" text-anchor="middle" font-size="12" ${FONT} fill="#222">${esc(c.xLabel)}</text>`);
  body.push(
    `<text x="16" y="${(m.top + plotB) / 2}" text-anchor="middle" font-size="12" ${FONT} fill="#222" transform="rotate(-90 16 ${(m.top + plotB) / 2})">${esc(c.yLabel)}</text>`,
  );
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0) && (!c.logY || y > 0));
    if (ok.length > 0) {
      const d = ok.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${num(sx(x))},${num(sy(y))}`).join(' ');
      body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
      if (c.markers ?? ok.length <= 30) for (const [x, y] of ok) body.push(`<circle cx="${num(sx(x))}" cy="${num(sy(y))}" r="3" fill="${color}"/>`);
    }
    const ly = m.top + 8 + i * 18;
    body.push(
      `<line x1="${plotR + 14}" y1="${ly}" x2="${plotR + 38}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`,
    );
    body.push(`<text x="${plotR + 44}" y="${ly}" dy="4" font-size="11" ${FONT} fill="#222">${esc(s.name)}</text>`);
  });
  return frame(width, height, c.title, body);
}

/** Renders a grouped bar chart as SVG text. */
export function barChart(c: BarChart): string {
  const legendW = legendWidth(c.groups.map((g) => g.name));
  const width = c.width ?? 530 + legendW;
  const height = c.height ?? 420;
  const m = { left: 72, right: legendW + 16, top: 40, bottom: 64 };
  const values = c.groups.flatMap((g) => g.values).filter((v) => Number.isFinite(v) && (!c.logY || v > 0));
  let y0 = 0;
  let y1 = values.length ? Math.max(...values) : 1;
  if (c.logY) {
    y0 = 10 ** Math.floor(Math.log10(Math.min(...values)));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    const t = linearTicks(0, y1);
    y1 = Math.max(y1, t[t.length - 1] ?? y1) || 1;
  }
  const plotR = width - m.right;
  const plotB = height - m.bottom;
  const sy = scale(y0, y1, plotB, m.top, !!c.logY);
  const body: string[] = [];
  for (const t of sy.ticks) {
    const y = num(sy(t));
    body.push(`<line x1="${m.left}" y1="${y}" x2="${plotR}" y2="${y}" stroke="#e6e6e6"/>`);
    body.push(`<text x="${m.left - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" ${FONT} fill="#444">${fmt(t)}</text>`);
  }
  const slot = (plotR - m.left) / Math.max(1, c.categories.length);
  const barW = (slot * 0.8) / Math.max(1, c.groups.length);
  c.categories.forEach((cat, i) => {
    const x = m.left + i * slot + slot * 0.1;
    c.groups.forEach((g, j) => {
      const v = g.values[i] ?? 0;
      if (!Number.isFinite(v) || (c.logY && v <= 0)) return;
      const top = sy(v);
      body.push(
        `<rect x="${num(x + j * barW)}" y="${num(top)}" width="${num(barW * 0.92)}" height="${num(plotB - top)}" fill="${COLORS[j % COLORS.length]}"/>`,
      );
    });
    body.push(`<text x="${num(m.left + (i + 0.5) * slot)}" y="${plotB + 16}" text-anchor="middle" font-size="11" ${FONT} fill="#444">${esc(cat)}</text>`);
  });
  body.push(`<rect x="${m.left}" y="${m.top}" width="${plotR - m.left}" height="${plotB - m.top}" fill="none" stroke="#888"/>`);
  body.push(
    `<text x="16" y="${(m.top + plotB) / 2}" text-anchor="middle" font-size="12" ${FONT} fill="#222" transform="rotate(-90 16 ${(m.top + plotB) / 2})">${esc(c.yLabel)}</text>`,
  );
  c.groups.forEach((g, i) => {
    const ly = m.top + 8 + i * 18;
    body.push(`<rect x="${plotR + 14}" y="${ly - 6}" width="24" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    body.push(`<text x="${plotR + 44}" y="${ly}" dy="4" font-size="11" ${FONT} fill="#222">${esc(g.name)}</text>`);
  });
  return frame(width, height, c.title, body);
}
