/**
 * RLHF: Run on Cluster… in the editor, against the private Slurm cluster of test/slurm-cluster.ts
 * (SLURM_CONF inherited by VS Code and the CLI it starts): the tiny pipeline as a chain of jobs,
 * whose rows in the Runs view go PENDING → RUNNING → COMPLETED; a DPO sweep over three betas,
 * overlaid in the dashboard with its table of final metrics; a run exported for OpenRLHF (its
 * README opens), and one the trainers cannot take (one error line). Screenshots of each.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Session, e2eTest, openRlhfView, openVsCode, pickItem, runCommand } from './harness';
import { Cluster, startCluster } from '../slurm-cluster';
import { readClusterJob } from '../../src/data/cluster-run';
import { saveTinyChatLlama, testBackend } from '../helpers';
import { dpo } from '../../src/engine/stages/dpo';

let vs: Session;
let cluster: Cluster;

const TINY = ['--pretrain-steps', '0', '--sft-steps', '2', '--rm-steps', '2', '--algos', 'dpo', '--dpo-steps', '2', '--backend', 'wasm'];

before(async () => {
  cluster = await startCluster();
  process.env.SLURM_CONF = cluster.conf; // VS Code, its extension host and the rlhf CLI inherit it
  vs = await openVsCode({
    trusted: true,
    settings: { 'rlhf.cluster.pollSeconds': 1, 'rlhf.cluster.node': process.execPath, 'rlhf.cluster.pipelineOptions': TINY, 'rlhf.dpo.steps': 4, 'rlhf.backend': 'wasm' },
  });
  await openRlhfView(vs.page);
  // room for the Runs view: the Datasets view folded, the side bar wide enough for the states
  await vs.page.locator('.pane-header', { hasText: 'Datasets' }).first().click();
  const side = await vs.page.locator('.part.sidebar').first().boundingBox();
  if (side) {
    const x = side.x + side.width - 1, y = side.y + side.height / 2;
    await vs.page.mouse.move(x, y);
    await vs.page.mouse.down();
    await vs.page.mouse.move(x + 400, y, { steps: 8 });
    await vs.page.mouse.up();
    await vs.page.mouse.move(side.x + 1200, side.y + 300);
  }
});

after(async () => {
  await vs?.close();
  await cluster?.stop();
});

const runsDir = () => path.join(vs.workspace, '.rlhf', 'runs');
const STATES = ['PENDING', 'RUNNING', 'COMPLETED'] as const;

/** Each Runs view row of these runs, as "id state" (state: the first Slurm word of the description). */
async function states(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const rows = await vs.rows();
  if (process.env.RLHF_E2E_DEBUG) console.log(JSON.stringify(rows));
  for (const row of rows) {
    const m = new RegExp(`(${prefix}[\\w.-]*?)\\s*(PENDING|RUNNING|COMPLETING|COMPLETED|FAILED|CANCELLED)`).exec(row);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/**
 * Answers the input box whose prompt contains `prompt` (waiting for that box, not the one closing
 * before it: a key pressed then goes to the old box): replaces its value with `value`, or keeps the
 * default when `value` is undefined, and accepts.
 */
async function answer(prompt: string, value?: string): Promise<void> {
  const box = vs.page.locator('.quick-input-widget', { hasText: prompt });
  await box.waitFor({ state: 'visible', timeout: 30_000 });
  const input = box.locator('.quick-input-box input').first();
  if (value !== undefined) await input.fill(value);
  await input.press('Enter');
  await box.waitFor({ state: 'hidden', timeout: 30_000 }).catch(() => {}); // the next box reuses the widget
}

async function submitFromPalette(what: string): Promise<void> {
  await runCommand(vs.page, 'RLHF: Run on Cluster…');
  await pickItem(vs.page, what);
  await pickItem(vs.page, 'debug');
  await answer('Time limit per job'); // its default
}

e2eTest('Run on Cluster submits the tiny pipeline; each stage goes PENDING → RUNNING → COMPLETED in the Runs view', async () => {
  const { page } = vs;
  // a busy cluster: both nodes taken for a few seconds, so the first stage waits for resources too
  for (let i = 0; i < 2; i++) assert.equal(cluster.run('sbatch', '--exclusive', '-o', '/dev/null', '--wrap', 'sleep 10').status, 0);
  for (let i = 0; i < 100 && cluster.run('squeue', '-h', '-t', 'R', '-o', '%i').stdout.trim().split('\n').filter(Boolean).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  await submitFromPalette('Pipeline');
  await page.locator('.notification-toast', { hasText: /submitted 3 Slurm jobs/ }).first().waitFor({ timeout: 60_000 });
  const seen = new Map<string, string[]>();
  const shots = new Set<string>();
  const t0 = Date.now();
  for (;;) {
    const now = await states('cluster-');
    for (const [id, s] of now) {
      const list = seen.get(id) ?? [];
      if (list.at(-1) !== s) seen.set(id, [...list, s]);
    }
    const all = [...now.values()];
    for (const s of STATES) {
      // PENDING once the scheduler has said why (Resources, Dependency); COMPLETED once all are
      const ready = s === 'PENDING' ? (await vs.rows()).some((r) => /PENDING \(/.test(r)) : s === 'COMPLETED' ? all.length === 3 && all.every((x) => x === s) : true;
      if (!shots.has(s) && all.includes(s) && ready) {
        shots.add(s);
        await vs.shot(`cluster-${s.toLowerCase()}`);
      }
    }
    if (all.length === 3 && all.every((s) => s === 'COMPLETED')) break;
    assert.ok(Date.now() - t0 < 240_000, `the chain did not finish: ${JSON.stringify([...seen])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`# Runs view states: ${[...seen].map(([id, s]) => `${id.replace(/^cluster-[\d-]+/, '')}: ${s.join(' → ')}`).join('; ')} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  assert.deepEqual([...seen.keys()].map((id) => id.replace(/^cluster-\d{8}-\d{6}-/, '')).sort(), ['dpo', 'rm', 'sft']);
  for (const [id, list] of seen) assert.deepEqual(list.filter((s) => (STATES as readonly string[]).includes(s)), [...STATES], `${id}: ${list.join(' → ')}`);
  for (const id of seen.keys()) assert.equal(readClusterJob(path.join(runsDir(), id))?.state?.name, 'COMPLETED');
});

e2eTest('a sweep from Run on Cluster: DPO at three betas as one job array, overlaid in the dashboard with each run\'s final metrics', async () => {
  const { page } = vs;
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Run on Cluster…');
  await pickItem(page, 'Train DPO Model');
  await pickItem(page, 'debug');
  await answer('Time limit per job');
  await answer('Sweep (optional)', 'beta=0.1,0.3,0.5');
  await pickItem(page, 'data/reviews.rm.jsonl');
  await pickItem(page, 'models/base-char');
  await page.locator('.notification-toast', { hasText: /submitted Slurm job \d+/ }).first().waitFor({ timeout: 60_000 });
  let ids: string[] = [];
  const t0 = Date.now();
  for (;;) {
    const now = await states('dpo-');
    ids = [...now.keys()].filter((id) => /-\d$/.test(id)).sort();
    if (ids.length === 3 && ids.every((id) => now.get(id) === 'COMPLETED')) break;
    assert.ok(Date.now() - t0 < 180_000, `the sweep did not finish: ${JSON.stringify([...now])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(ids.map((id) => readClusterJob(path.join(runsDir(), id))!.sweep!.values.beta), ['0.1', '0.3', '0.5']);
  await vs.shot('cluster-sweep-runs');
  await runCommand(page, 'RLHF: Open Training Dashboard');
  await pickItem(page, 'Compare several runs');
  // the sweep's three runs: filtered by their common name, then "check all"
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: 30_000 });
  await page.locator('.quick-input-widget .quick-input-box input').first().fill(ids[0].replace(/-0$/, '-'));
  await page.waitForFunction(`document.querySelectorAll('.quick-input-list .monaco-list-row').length === 3`, undefined, { timeout: 30_000 });
  for (let i = 0; i < 3; i++) {
    const row = page.locator('.quick-input-list .monaco-list-row').nth(i);
    for (let attempt = 1; (await row.getAttribute('aria-checked')) !== 'true'; attempt++) {
      assert.ok(attempt <= 3, `row ${i} could not be checked`);
      await row.locator('.monaco-checkbox').first().click();
      await page.waitForTimeout(200);
    }
  }
  await page.keyboard.press('Enter');
  const w = page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');
  await w.locator('.final-metrics tbody tr').nth(2).waitFor({ timeout: 60_000 });
  const legend = await w.locator('.legend').innerText();
  for (const id of ids) assert.match(legend, new RegExp(`${id}\\s+completed`));
  const rows = await w.locator('.final-metrics tbody tr').allInnerTexts();
  assert.equal(rows.length, 3);
  for (const [i, beta] of ['0.1', '0.3', '0.5'].entries()) assert.match(rows[i], new RegExp(`${ids[i]}\\s+beta=${beta}\\s+completed\\s+4\\s+-?\\d`));
  await w.locator('.card[data-metric="loss"] canvas').first().waitFor({ timeout: 30_000 });
  await vs.shot('cluster-sweep-dashboard');
  assert.ok(fs.existsSync(path.join(runsDir(), ids[0], 'job.sh')));
});

e2eTest('Export Run for TRL or OpenRLHF: a run on a Hugging Face model opens its export\'s README; a character-model run is refused in one line', async () => {
  const { page } = vs;
  await runCommand(page, 'View: Close All Editors');
  // a finished DPO run on a tiny chat model (Hugging Face tokenizer and chat template), made here
  await testBackend();
  const model = path.join(vs.workspace, 'models', 'tiny-chat');
  await saveTinyChatLlama(model, 4);
  await dpo({ data: path.join(vs.workspace, 'data', 'reviews.rm.jsonl'), model, dpo: { beta: 0.2, kway: 'pl' }, train: { steps: 2, batchSize: 2, checkpointInterval: 0, evalInterval: 100 }, runsDir: runsDir(), runId: 'dpo-tiny-chat' });
  await runCommand(page, 'RLHF: Refresh Runs');
  await page.locator('.pane-body .monaco-list-row', { hasText: 'dpo-tiny-chat' }).first().waitFor({ timeout: 30_000 });
  await runCommand(page, 'RLHF: Export Run for TRL or OpenRLHF…');
  await pickItem(page, 'dpo-tiny-chat');
  await pickItem(page, 'OpenRLHF 0.11');
  await page.locator('.notification-toast', { hasText: /exported dpo-tiny-chat for OpenRLHF 0\.11 into \.rlhf\/exports\/dpo-tiny-chat-openrlhf/ }).first().waitFor({ timeout: 60_000 });
  const out = path.join(vs.workspace, '.rlhf', 'exports', 'dpo-tiny-chat-openrlhf');
  for (const f of ['train.sh', 'train.slurm.sh', 'data/preferences.jsonl', 'model/config.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
  await page.locator('.tabs-container .tab', { hasText: 'README' }).first().waitFor({ timeout: 30_000 });
  // the preview has rendered the export's README
  await page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame').locator('h1', { hasText: 'for OpenRLHF 0.11.0' }).waitFor({ timeout: 30_000 });
  await vs.shot('export-openrlhf');
  // the sweep's runs are on the bundled character model: Transformers cannot load its tokenizer
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Export Run for TRL or OpenRLHF…');
  await pickItem(page, 'cluster-');
  await pickItem(page, 'TRL 1.9');
  const err = page.locator('.notification-toast', { hasText: /Transformers cannot load the model of this run \(it uses this project's character tokenizer\)/ }).first();
  await err.waitFor({ timeout: 60_000 });
  assert.match(await err.innerText(), /export a run on a Hugging Face model \(rlhf download/);
  await vs.shot('export-refused');
});
