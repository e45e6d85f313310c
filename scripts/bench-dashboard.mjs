// The dashboard's redraw time outside VS Code: the real webview bundle in Debian's chromium (the
// e2e tools), fed 100,000 points of 4 metrics and then 50 new points 30 times, as a live run
// appends. Prints the median and maximum time of a redraw (smoothing, decimation, uPlot's draw).
import { chromium } from 'playwright-core';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureE2E } from './e2e-setup.mjs';

ensureE2E();
const dist = path.resolve('dist', 'webview');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-dash-'));
fs.writeFileSync(path.join(dir, 'index.html'), `<!DOCTYPE html><html><head>
<link rel="stylesheet" href="file://${dist}/uplot.css"><link rel="stylesheet" href="file://${dist}/common.css"><link rel="stylesheet" href="file://${dist}/dashboard.css"></head>
<body class="vscode-light"><div id="app"></div>
<script>window.acquireVsCodeApi = () => ({ postMessage() {}, getState() {}, setState() {} });</script>
<script src="file://${dist}/dashboard.js"></script></body></html>`);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(`file://${dir}/index.html`);
const POINTS = 100_000;
const times = await page.evaluate(async (N) => {
  const post = (data) => window.dispatchEvent(new MessageEvent('message', { data }));
  post({ type: 'runs', scope: { ids: ['bench'] }, runs: [{ id: 'bench', stage: 'sft', status: 'running', startedAt: 0 }] });
  const cols = () => ({ step: [], time: [], metrics: { loss: [], learning_rate: [], grad_norm: [], tokens_per_second: [] } });
  const add = (c, s) => {
    c.step.push(s);
    c.time.push(s / 100);
    c.metrics.loss.push(2 * Math.exp(-s / 30000) + 0.3 * Math.sin(s / 7) ** 2);
    c.metrics.learning_rate.push(3e-4 * Math.min(1, s / 1000));
    c.metrics.grad_norm.push(1 + Math.cos(s / 13) ** 2);
    c.metrics.tokens_per_second.push(3000 + (s % 97));
  };
  const first = cols();
  for (let s = 1; s <= N; s++) add(first, s);
  post({ type: 'points', run: 'bench', reset: true, ...first });
  await new Promise((r) => setTimeout(r, 1500));
  const out = [];
  for (let i = 0, s = N; i < 30; i++) {
    const c = cols();
    for (let j = 0; j < 50; j++) add(c, ++s);
    post({ type: 'points', run: 'bench', reset: false, ...c });
    await new Promise((r) => setTimeout(r, 200));
    out.push(Number(document.body.dataset.frameMs));
  }
  return out;
}, POINTS);
await browser.close();
fs.rmSync(dir, { recursive: true, force: true });
times.sort((a, b) => a - b);
console.log(`\nDashboard, 4 cards x ${POINTS.toLocaleString('en')}+ points, 30 streamed updates: redraw median ${times[15].toFixed(1)} ms, max ${times[29].toFixed(1)} ms`);
