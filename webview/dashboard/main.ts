/**
 * The training dashboard (browser side): one card per metric, grouped by stage, runs overlaid
 * with a legend; smoothing (TensorBoard's debiased EMA), log scale, x = step or relative time;
 * CSV and PNG export per card (the host writes the files). Points arrive from the host, which
 * tails metrics.jsonl; redraws are batched to one per animation frame.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import { DashboardScope, DashboardToHost, HostToDashboard, RunMeta, orderMetrics, parseHostToDashboard } from '../../src/protocol/dashboard';
import { connect, h } from '../shared/vscode-api';
import { toast } from '../shared/toast';
import { MetricChart, RunSeries, Theme } from './chart';
import { EmaSmoother } from '../../src/data/smoothing';
import { stageName, stageRank } from '../../src/data/stages';
import { SamplesState, SamplesView, defaultSamplesState } from './samples';

interface UiState {
  scope?: DashboardScope;
  smoothing: number;
  log: boolean;
  x: 'step' | 'time';
  hidden: string[];
  view: 'curves' | 'samples';
  samples: SamplesState;
}

interface RunData {
  meta: RunMeta;
  step: number[];
  time: number[];
  /** Seconds since the run started (the x axis "relative time"), extended as points arrive. */
  rel: number[];
  metrics: Map<string, (number | null)[]>;
  /** Each metric smoothed with the current weight, extended as points arrive. */
  smoothed: Map<string, { smoother: EmaSmoother; values: (number | null)[] }>;
}

const emptyRun = (meta: RunMeta): RunData => ({ meta, step: [], time: [], rel: [], metrics: new Map(), smoothed: new Map() });

const COLORS = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];

const vscode = connect<UiState, HostToDashboard, DashboardToHost>(parseHostToDashboard, receive);
const saved = vscode.getState();
const ui: UiState = { smoothing: 0.6, log: false, x: 'step', hidden: [], view: 'curves', ...saved, samples: { ...defaultSamplesState(), ...saved?.samples } };
const runs = new Map<string, RunData>();
const charts = new Map<string, { chart: MetricChart; card: HTMLElement; visible: boolean; stale: boolean }>();
/** Cards scrolled out of view are not redrawn; they catch up when they come into view. */
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const c = charts.get((e.target as HTMLElement).dataset.key ?? '');
    if (!c) continue;
    c.visible = e.isIntersecting;
    if (c.visible && c.stale) schedule();
  }
}, { rootMargin: '200px' });
let dirty = false;
let structureChanged = true;

const app = document.getElementById('app')!;
const toolbar = h('header', { class: 'toolbar' });
const groups = h('main', { class: 'groups' });
const samples = new SamplesView(ui.samples, save);
const samplesPanel = h('main', { class: 'samples-panel', id: 'panel-samples', role: 'tabpanel', 'aria-labelledby': 'tab-samples' }, samples.el);
const tabs = h('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'Dashboard views' });
const { el: live, say } = toast();
app.append(tabs, toolbar, groups, samplesPanel, live);
groups.id = 'panel-curves';
groups.setAttribute('role', 'tabpanel');
groups.setAttribute('aria-labelledby', 'tab-curves');

function save(): void {
  vscode.setState(ui);
}

/** Curves or Samples: a tab bar (arrow keys move between the tabs, as ARIA's tabs pattern says). */
function renderTabs(): void {
  const tab = (view: UiState['view'], label: string) => {
    const selected = ui.view === view;
    const b = h('button', { role: 'tab', id: `tab-${view}`, class: 'tab', 'aria-selected': selected ? 'true' : 'false', 'aria-controls': `panel-${view}`, tabindex: selected ? '0' : '-1' }, label);
    b.addEventListener('click', () => showView(view));
    b.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      showView(ui.view === 'curves' ? 'samples' : 'curves');
      document.getElementById(`tab-${ui.view}`)?.focus();
    });
    return b;
  };
  const n = samples.count();
  tabs.replaceChildren(tab('curves', 'Curves'), tab('samples', n ? `Samples (${n.toLocaleString()})` : 'Samples'));
  toolbar.hidden = groups.hidden = ui.view !== 'curves';
  samplesPanel.hidden = ui.view !== 'samples';
}

function showView(view: UiState['view']): void {
  ui.view = view;
  save();
  renderTabs();
  if (view === 'samples') samples.render();
  else {
    structureChanged = true;
    schedule();
  }
}

function receive(m: HostToDashboard): void {
  if (m.type === 'runs') {
    ui.scope = m.scope;
    save();
    for (const meta of m.runs) {
      const r = runs.get(meta.id);
      if (r) r.meta = meta;
      else runs.set(meta.id, emptyRun(meta));
    }
    structureChanged = true;
  } else if (m.type === 'points') {
    const r = runs.get(m.run);
    if (!r) return;
    if (m.reset) {
      runs.set(m.run, emptyRun(r.meta));
      structureChanged = true;
      return receive({ ...m, reset: false });
    }
    const before = r.step.length;
    const t0 = r.meta.startedAt / 1000 || m.time[0] || 0;
    for (let i = 0; i < m.step.length; i++) {
      r.step.push(m.step[i]);
      r.time.push(m.time[i]);
      r.rel.push(m.time[i] - t0);
    }
    for (const [name, col] of Object.entries(m.metrics)) {
      let c = r.metrics.get(name);
      if (!c) {
        c = new Array(before).fill(null);
        r.metrics.set(name, c);
        structureChanged = true;
      }
      for (const v of col) c.push(v);
    }
    for (const c of r.metrics.values()) while (c.length < r.step.length) c.push(null);
  } else if (m.type === 'samples') {
    const before = samples.count();
    samples.add(m.run, m.reset, m.rows);
    if ((before === 0) !== (samples.count() === 0) || m.rows.length) renderTabs();
    if (ui.view === 'samples') samples.update();
    return;
  } else if (m.type === 'status') {
    const r = runs.get(m.run);
    if (r) r.meta = { ...r.meta, status: m.status };
    structureChanged = true;
  } else if (m.type === 'error') {
    say(`Error: ${m.message}`);
    return;
  }
  schedule();
}

function schedule(): void {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(() => {
    dirty = false;
    draw();
  });
}

// ---- theme --------------------------------------------------------------------------------

function css(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function theme(): Theme {
  return {
    foreground: css('--vscode-foreground', '#888'),
    muted: css('--vscode-descriptionForeground', '#888'),
    grid: css('--vscode-editorWidget-border', css('--vscode-widget-border', 'rgba(128,128,128,0.25)')),
    background: css('--vscode-editor-background', '#fff'),
    font: css('--vscode-font-family', 'sans-serif'),
  };
}

function runColor(i: number): string {
  return css(`--vscode-charts-${COLORS[i % COLORS.length]}`, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i % COLORS.length]);
}

// a theme change (body class vscode-light / vscode-dark / vscode-high-contrast) redraws everything
new MutationObserver(() => {
  structureChanged = true;
  schedule();
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

// ---- toolbar ------------------------------------------------------------------------------

function renderToolbar(): void {
  const ordered = [...runs.values()];
  const legend = h('div', { class: 'legend', role: 'group', 'aria-label': 'Runs' });
  ordered.forEach((r, i) => {
    const box = h('vscode-checkbox', { checked: !ui.hidden.includes(r.meta.id), title: `Show or hide ${r.meta.id}` }) as HTMLElement & { checked: boolean };
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = runColor(i);
    box.append(swatch, ` ${r.meta.id} `, h('span', { class: `status ${r.meta.status}` }, r.meta.status));
    box.addEventListener('change', () => {
      ui.hidden = box.checked ? ui.hidden.filter((x) => x !== r.meta.id) : [...ui.hidden, r.meta.id];
      save();
      structureChanged = true;
      schedule();
    });
    legend.append(box);
  });
  const slider = h('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: String(ui.smoothing), id: 'smoothing', 'aria-label': 'Smoothing weight' }) as HTMLInputElement;
  const value = h('output', { for: 'smoothing', class: 'value' }, ui.smoothing.toFixed(2));
  slider.addEventListener('input', () => {
    ui.smoothing = Number(slider.value);
    value.textContent = ui.smoothing.toFixed(2);
    save();
    schedule();
  });
  const log = h('vscode-checkbox', { checked: ui.log, label: 'Log scale' }) as HTMLElement & { checked: boolean };
  log.addEventListener('change', () => {
    ui.log = log.checked;
    save();
    schedule();
  });
  const xs = h('vscode-radio-group', { 'aria-label': 'X axis' },
    h('vscode-radio', { name: 'x', value: 'step', checked: ui.x === 'step', label: 'Step' }),
    h('vscode-radio', { name: 'x', value: 'time', checked: ui.x === 'time', label: 'Relative time' }),
  );
  xs.addEventListener('change', (e) => {
    const v = (e.target as HTMLInputElement).value;
    if (v !== 'step' && v !== 'time') return;
    ui.x = v;
    save();
    schedule();
  });
  toolbar.replaceChildren(
    legend,
    h('div', { class: 'controls' },
      h('label', { class: 'smoothing', for: 'smoothing' }, 'Smoothing '), slider, value,
      log,
      h('span', { class: 'x-label' }, 'X axis'), xs,
      h('span', { class: 'frame', id: 'frame', title: 'Time to smooth and draw the last update (all cards)' }),
    ),
  );
}

// ---- cards --------------------------------------------------------------------------------

function duration(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
}

/** The metric smoothed with the current weight: only points that arrived since the last draw are new work. */
function smoothed(r: RunData, metric: string, y: (number | null)[]): (number | null)[] {
  if (ui.smoothing <= 0) return y;
  let s = r.smoothed.get(metric);
  if (!s || s.smoother.weight !== new EmaSmoother(ui.smoothing).weight || s.values.length > y.length) {
    s = { smoother: new EmaSmoother(ui.smoothing), values: [] };
    r.smoothed.set(metric, s);
  }
  for (let i = s.values.length; i < y.length; i++) {
    const v = y[i];
    s.values.push(v === null ? null : s.smoother.next(v));
  }
  return s.values;
}

function series(metric: string, stage: string): RunSeries[] {
  const out: RunSeries[] = [];
  [...runs.values()].forEach((r, i) => {
    if (r.meta.stage !== stage || ui.hidden.includes(r.meta.id)) return;
    const y = r.metrics.get(metric);
    if (!y || !y.some((v) => v !== null)) return;
    out.push({ id: r.meta.id, color: runColor(i), x: ui.x === 'step' ? r.step : r.rel, y, smoothed: smoothed(r, metric, y) });
  });
  return out;
}

function makeCard(key: string, stage: string, metric: string): { chart: MetricChart; card: HTMLElement; visible: boolean; stale: boolean } {
  const readout = h('div', { class: 'readout', 'aria-live': 'off' });
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': `${metric} chart` });
  const chart = new MetricChart(plot, metric, readout);
  const exportBtn = (label: string, icon: string, f: () => void) => {
    const b = h('vscode-button', { secondary: true, icon, title: `${label} (${metric})`, 'aria-label': `${label} ${metric}` }, label);
    b.addEventListener('click', f);
    return b;
  };
  const card = h('section', { class: 'card', 'data-metric': metric, 'data-key': key, 'aria-label': metric },
    h('div', { class: 'card-head' },
      h('h3', {}, metric),
      exportBtn('CSV', 'export', () => vscode.post({ type: 'exportCsv', metric })),
      exportBtn('PNG', 'file-media', () => {
        const png = chart.png(theme(), metric);
        if (png) vscode.post({ type: 'exportPng', metric, png });
      }),
    ),
    plot,
    readout,
  );
  seen.observe(card);
  // drawn once when created (it is about to be laid out), then only while in view
  return { chart, card, visible: true, stale: true };
}

function draw(): void {
  const t0 = performance.now();
  if (structureChanged) renderToolbar();
  const stages = [...new Set([...runs.values()].map((r) => r.meta.stage))].sort((a, b) => stageRank(a) - stageRank(b));
  const wanted = new Map<string, { stage: string; metric: string }>();
  for (const stage of stages) {
    const names = new Set<string>();
    for (const r of runs.values()) if (r.meta.stage === stage) for (const [k, c] of r.metrics) if (c.some((v) => v !== null)) names.add(k);
    for (const metric of orderMetrics(stage, names)) wanted.set(`${stage}\u0000${metric}`, { stage, metric });
  }
  if (structureChanged) {
    finals.clear();
    for (const [key, c] of charts) if (!wanted.has(key)) (c.chart.destroy(), seen.unobserve(c.card), charts.delete(key));
    const sections: HTMLElement[] = [];
    for (const stage of stages) {
      const grid = h('div', { class: 'grid' });
      for (const [key, w] of wanted) {
        if (w.stage !== stage) continue;
        if (!charts.has(key)) charts.set(key, makeCard(key, stage, w.metric));
        grid.append(charts.get(key)!.card);
      }
      const compared = [...runs.values()].filter((r) => r.meta.stage === stage).length > 1;
      const table = compared ? h('table', { class: 'final-metrics', 'aria-label': `${stageName(stage)}: each run's last value of each metric` }) : undefined;
      if (table) finals.set(stage, table);
      sections.push(h('section', { class: 'stage', 'aria-label': stageName(stage) }, h('h2', {}, stageName(stage)), ...(table ? [h('div', { class: 'final-metrics-scroll' }, table)] : []), grid));
    }
    if (!sections.length) sections.push(h('p', { class: 'empty' }, runs.size ? 'No metrics yet: the first step is still running.' : 'Loading runs…'));
    groups.replaceChildren(...sections);
    structureChanged = false;
  }
  for (const [stage, table] of finals) fillFinals(table, stage, [...wanted.values()].filter((w) => w.stage === stage).map((w) => w.metric));
  const th = theme();
  const formatX = ui.x === 'step' ? (x: number) => String(Math.round(x)) : duration;
  for (const [key, c] of charts) {
    c.stale = true;
    if (!c.visible) continue;
    c.stale = false;
    const w = wanted.get(key)!;
    c.chart.update(series(w.metric, w.stage), { smoothing: ui.smoothing, log: ui.log, xLabel: ui.x === 'step' ? 'step' : 'time', formatX, theme: th });
  }
  // uPlot draws in a microtask after setData: this one runs after those draws
  queueMicrotask(() => {
    const total = performance.now() - t0;
    const points = Math.max(0, ...[...runs.values()].map((r) => r.step.length));
    const f = document.getElementById('frame');
    if (f) f.textContent = `${points.toLocaleString()} points · redraw ${total.toFixed(0)} ms`;
    document.body.dataset.frameMs = total.toFixed(1);
    document.body.dataset.points = String(points);
  });
}

/** Tables of compared runs' last values, by stage (refilled at every draw: a few runs x a few metrics). */
const finals = new Map<string, HTMLElement>();

const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(4))));

/** One row per run of the stage: its sweep values, status, last step and the last value of each metric. */
function fillFinals(table: HTMLElement, stage: string, metrics: string[]): void {
  // in name order (a sweep's runs by their index), whatever order they started in
  const rows = [...runs.values()].filter((r) => r.meta.stage === stage).sort((a, b) => a.meta.id.localeCompare(b.meta.id, undefined, { numeric: true }));
  const last = (r: RunData, m: string) => {
    const c = r.metrics.get(m) ?? [];
    for (let i = c.length - 1; i >= 0; i--) if (c[i] !== null) return c[i]!;
    return undefined;
  };
  const swept = rows.some((r) => r.meta.sweep);
  table.replaceChildren(
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'run'), ...(swept ? [h('th', { scope: 'col' }, 'sweep')] : []), h('th', { scope: 'col' }, 'status'), h('th', { scope: 'col' }, 'step'), ...metrics.map((m) => h('th', { scope: 'col' }, m)))),
    h('tbody', {}, ...rows.map((r) => h('tr', { 'data-run': r.meta.id },
      h('th', { scope: 'row' }, r.meta.id), ...(swept ? [h('td', {}, r.meta.sweep ?? '')] : []), h('td', {}, r.meta.status), h('td', { class: 'num' }, r.step.length ? String(r.step[r.step.length - 1]) : ''),
      ...metrics.map((m) => {
        const v = last(r, m);
        return h('td', { class: 'num' }, v === undefined ? '' : fmt(v));
      }),
    ))),
  );
}

new ResizeObserver(() => {
  for (const { chart } of charts.values()) chart.resize();
}).observe(groups);

renderToolbar();
renderTabs();
if (ui.view === 'samples') samples.render();
vscode.post({ type: 'ready' });
