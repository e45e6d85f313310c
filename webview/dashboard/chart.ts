/**
 * One metric card's chart: uPlot on a canvas, a faint raw line and the smoothed line per run,
 * a shared cursor across cards, log or linear y, and a readout of the values under the cursor.
 */
import uPlot from 'uplot';
import { m4 } from './decimate';

export interface RunSeries {
  id: string;
  color: string;
  x: number[];
  y: (number | null)[];
  /** y smoothed (the caller keeps it up to date as points arrive); y itself when smoothing is off. */
  smoothed: (number | null)[];
}

export interface ChartOptions {
  smoothing: number;
  log: boolean;
  xLabel: string;
  formatX: (x: number) => string;
  theme: Theme;
}

export interface Theme {
  foreground: string;
  muted: string;
  grid: string;
  background: string;
  font: string;
}

const faint = (color: string, alpha: number): string => {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(color.trim());
  if (m) return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
  const r = /^rgba?\(([^,]+),([^,]+),([^,)]+)/.exec(color.trim());
  return r ? `rgba(${r[1]},${r[2]},${r[3]}, ${alpha})` : color;
};

export const fmt = (v: number | null | undefined): string => {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
};

/** Short y tick labels: 3 significant digits, no trailing zeros (0.001, 5e-7, 12500). */
const tick = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4 ? v.toExponential(1).replace('.0e', 'e') : String(Number(v.toPrecision(3))));

/**
 * uPlot wants one x array for all series. Runs logged at the same x share it (no join); others are
 * joined (missing = null). Each run is first cut to its M4 points for `columns` pixel columns
 * (and, when zoomed, for the x range shown), so a redraw draws a few thousand points at most.
 */
function align(runs: RunSeries[], columns: number, lo: number, hi: number): uPlot.AlignedData {
  const take = <T>(a: T[], idx: number[] | undefined) => (idx ? idx.map((i) => a[i]) : a);
  const cut = (x: number[], ys: (number | null)[][]) => {
    let idx = m4(x, ys, columns);
    // zoomed: full detail in view, the coarse rest kept so a double-click can zoom back out
    if (lo > -Infinity || hi < Infinity) idx = [...new Set([...idx, ...m4(x, ys, columns, lo, hi)])].sort((a, b) => a - b);
    return idx.length === x.length ? undefined : idx; // nothing dropped: the arrays as they are
  };
  const x0 = runs[0]?.x ?? [];
  const sameX = runs.every((r) => r.x === x0 || (r.x.length === x0.length && r.x.every((x, i) => x === x0[i])));
  if (sameX) {
    const idx = cut(x0, runs.flatMap((r) => [r.y, r.smoothed]));
    return [take(x0, idx), ...runs.flatMap((r) => [take(r.y, idx), r.smoothed === r.y ? take(r.y, idx) : take(r.smoothed, idx)])] as uPlot.AlignedData;
  }
  return uPlot.join(
    runs.map((r) => {
      const idx = cut(r.x, [r.y, r.smoothed]);
      return [take(r.x, idx), take(r.y, idx), take(r.smoothed, idx)] as uPlot.AlignedData;
    }),
  );
}

/** Few points (an eval every N steps, one final value): drawn as dots too, or a lone point would not show. */
function sparse(r: RunSeries): boolean {
  let n = 0;
  for (let i = 0; i < r.y.length && n <= 60; i++) if (r.y[i] !== null) n++;
  return n <= 60;
}

const allPositive = (runs: RunSeries[]) => runs.every((r) => r.y.every((v) => v === null || v > 0));

const STEP_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7].map((p) => m * p)).sort((a, b) => a - b);

export class MetricChart {
  private u: uPlot | undefined;
  private key = '';
  /** The x range the user zoomed to (drag to zoom, double-click to reset); undefined = all. */
  private zoom: [number, number] | undefined;
  private last: { runs: RunSeries[]; o: ChartOptions } | undefined;

  constructor(readonly el: HTMLElement, readonly metric: string, private readonly readout: HTMLElement) {}

  private columns(): number {
    return Math.max(50, Math.round(this.el.clientWidth * devicePixelRatio));
  }

  update(runs: RunSeries[], o: ChartOptions): void {
    this.last = { runs, o };
    const data = align(runs, this.columns(), this.zoom?.[0] ?? -Infinity, this.zoom?.[1] ?? Infinity);
    const log = o.log && allPositive(runs);
    // a new chart when the runs, scale or theme change; otherwise only new data
    const key = JSON.stringify([runs.map((r) => [r.id, r.color, sparse(r)]), log, o.smoothing > 0, o.xLabel, o.theme]);
    if (this.u && key === this.key) {
      this.u.setData(data, !this.zoom); // a zoomed view stays where the user put it
      return;
    }
    this.key = key;
    this.zoom = undefined;
    this.u?.destroy();
    const series: uPlot.Series[] = [{ label: o.xLabel }];
    for (const r of runs) {
      // sparse metrics (eval every N steps, a single final value) show their points
      const points = { show: sparse(r), size: 5, fill: r.color, stroke: r.color };
      series.push({ label: `${r.id} (raw)`, stroke: o.smoothing > 0 ? faint(r.color, 0.28) : r.color, width: 1, spanGaps: true, points: o.smoothing > 0 ? { show: false } : points });
      series.push({ label: r.id, stroke: r.color, width: 1.5, spanGaps: true, show: o.smoothing > 0, points });
    }
    const axis = (label?: string): uPlot.Axis => ({
      stroke: o.theme.muted,
      font: `11px ${o.theme.font}`,
      labelFont: `11px ${o.theme.font}`,
      grid: { stroke: o.theme.grid, width: 1 },
      ticks: { stroke: o.theme.grid, width: 1 },
      label,
      values: label ? (_u, vals) => vals.map((v) => o.formatX(v)) : (_u, vals) => vals.map(tick),
      size: label ? 40 : 62,
      // steps are whole numbers: ticks at 1, 2, 5, 10, ... apart, never at 1.5 (shown as a second "2")
      ...(label === 'step' ? { incrs: STEP_INCRS } : {}),
    });
    const width = Math.max(200, this.el.clientWidth);
    this.u = new uPlot(
      {
        width,
        height: 200,
        pxAlign: 0,
        legend: { show: false },
        cursor: { sync: { key: 'rlhf-dashboard' }, drag: { x: true, y: false } },
        scales: { x: { time: false }, y: log ? { distr: 3 } : { auto: true } },
        axes: [axis(o.xLabel), axis()],
        series,
        hooks: {
          setCursor: [(u) => this.showReadout(u, this.last?.runs ?? runs, o)],
          setScale: [(u, key) => key === 'x' && this.zoomed(u)],
        },
      },
      data,
      this.el,
    );
    this.readout.textContent = log !== o.log ? 'linear scale: this metric has values ≤ 0' : '';
  }

  /** After a zoom (or its reset), the M4 points are recomputed for the range shown. */
  private zoomed(u: uPlot): void {
    const { min, max } = u.scales.x;
    if (min === undefined || max === undefined || min === null || max === null || !this.last) return;
    const xs = this.last.runs.flatMap((r) => (r.x.length ? [r.x[0], r.x[r.x.length - 1]] : []));
    const all = min <= Math.min(...xs) && max >= Math.max(...xs);
    const next: [number, number] | undefined = all ? undefined : [min, max];
    if (JSON.stringify(next) === JSON.stringify(this.zoom)) return;
    this.zoom = next;
    const { runs } = this.last;
    queueMicrotask(() => this.u?.setData(align(runs, this.columns(), next?.[0] ?? -Infinity, next?.[1] ?? Infinity), false));
  }

  private showReadout(u: uPlot, runs: RunSeries[], o: ChartOptions): void {
    const i = u.cursor.idx;
    if (i === null || i === undefined) return void (this.readout.textContent = '');
    const x = u.data[0][i];
    const parts = runs.map((r, j) => {
      const raw = u.data[1 + 2 * j][i] as number | null | undefined;
      const sm = u.data[2 + 2 * j][i] as number | null | undefined;
      return `${runs.length > 1 ? `${r.id}: ` : ''}${fmt(o.smoothing > 0 ? sm : raw)}${o.smoothing > 0 ? ` (raw ${fmt(raw)})` : ''}`;
    });
    this.readout.textContent = `${o.xLabel} ${o.formatX(x)} · ${parts.join(' · ')}`;
  }

  resize(): void {
    if (this.u) this.u.setSize({ width: Math.max(200, this.el.clientWidth), height: 200 });
  }

  /** The card as a PNG (title and chart on the theme's background), base64 without the data: prefix. */
  png(theme: Theme, title: string): string | undefined {
    if (!this.u) return undefined;
    const src = this.u.ctx.canvas;
    const pad = 28 * devicePixelRatio;
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height + pad;
    const g = c.getContext('2d')!;
    g.fillStyle = theme.background;
    g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = theme.foreground;
    g.font = `${13 * devicePixelRatio}px ${theme.font}`;
    g.fillText(title, 8 * devicePixelRatio, 19 * devicePixelRatio);
    g.drawImage(src, 0, pad);
    return c.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
  }

  destroy(): void {
    this.u?.destroy();
    this.u = undefined;
  }
}
