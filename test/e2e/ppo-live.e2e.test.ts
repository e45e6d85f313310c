/**
 * A live PPO run in the editor: the dashboard's Samples view fills, follows, sorts and filters
 * while it trains (screenshots in three themes); then Cancel stops it within seconds, at a
 * checkpoint (a review found Cancel ignored until the run ended).
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { FrameLocator } from 'playwright-core';
import { Session, e2eTest, openRlhfView, openVsCode, pickItem, runCommand } from './harness';
import { ROOT, tmpDir } from '../helpers';

let vs: Session;
const SETTINGS = { 'rlhf.ppo.iterations': 1000 };
/** The visible webview's content frame. */
const view = (): FrameLocator => vs.page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');
const runsDir = () => path.join(vs.workspace, '.rlhf', 'runs');
const ppoRun = () => fs.readdirSync(runsDir()).find((d) => d.startsWith('ppo-'))!;
const sampleLines = () => fs.readFileSync(path.join(runsDir(), ppoRun(), 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

before(async () => {
  vs = await openVsCode({
    trusted: true,
    settings: SETTINGS,
    // a reward model to run PPO with: two steps of `rlhf rm` on the example rankings
    prepare: (ws) => {
      const runs = tmpDir();
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'rm', '--data', path.join(ws, 'data', 'reviews.rm.jsonl'), '--model', path.join(ws, 'models', 'base-char'), '--steps', '2', '--batch-size', '2', '--runs-dir', runs, '--run-id', 'rm', '--backend', 'wasm'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      fs.cpSync(path.join(runs, 'rm', 'checkpoints', 'final'), path.join(ws, 'models', 'reward'), { recursive: true });
    },
  });
  await openRlhfView(vs.page);
});

after(() => vs?.close());

e2eTest('the Samples view of a live PPO run fills, follows the latest step, sorts, filters and shows a prompt across steps', async () => {
  const page = vs.page;
  await runCommand(page, 'RLHF: Run PPO');
  // the pickers protect: training prompts first (the held-out file last, marked), no reward model
  // offered as the policy, only reward models (a score head) offered as the reward model
  const rows = () => page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: 30_000 });
  const prompts = await rows();
  assert.match(prompts[0], /^data\/reviews\.ppo\.jsonl/, prompts.join(' | '));
  assert.match(prompts.at(-1)!, /reviews-heldout\.ppo\.jsonl[\s\S]*held-out: for evaluation, not training/);
  await pickItem(page, 'data/reviews.ppo.jsonl');
  await page.waitForFunction(`[...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.innerText.includes('Browse'))`, undefined, { timeout: 30_000 });
  const policies = await rows();
  assert.ok(policies.some((r) => r.startsWith('models/base-char')) && !policies.some((r) => r.startsWith('models/reward')), policies.join(' | '));
  await pickItem(page, 'models/base-char');
  await page.waitForFunction(`[...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.innerText.includes('Browse')) && ![...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.innerText.includes('base-char'))`, undefined, { timeout: 30_000 });
  const rewards = await rows();
  assert.equal(rewards.length, 3, rewards.join(' | '));
  assert.ok(rewards[0].startsWith('models/reward'), rewards[0]);
  assert.match(rewards[1], /Browse…/);
  assert.match(rewards[2], /Download from Hugging Face…/);
  await vs.shot('pick-reward-model');
  await pickItem(page, 'models/reward');
  await page.locator('.statusbar-item', { hasText: /ppo 1\/1000/ }).first().waitFor({ timeout: 120_000 });
  await vs.shot('ppo-running');
  await runCommand(page, 'RLHF: Open Training Dashboard');
  await pickItem(page, ppoRun());
  const w = view();
  await w.locator('.card[data-metric="objective/scores"] canvas').first().waitFor({ timeout: 60_000 });
  await w.locator('#tab-samples', { hasText: /Samples \(\d+\)/ }).click();
  // the table fills with the latest step's 16 samples (4 prompts x 4 responses), as samples.jsonl has them
  await w.locator('.samples-table tbody tr').nth(15).waitFor({ timeout: 60_000 });
  const stepShown = async () => Number((await w.locator('.samples-summary').innerText()).match(/at step (\d+)/)![1]);
  const first = await stepShown();
  const inFile = sampleLines().filter((r) => r.step === first);
  assert.equal(inFile.length, 16);
  assert.equal(await w.locator('.samples-table tbody tr').count(), 16);
  // sorted by score, best first (the default); the responses are the file's
  const scores = (await w.locator('.samples-table td.col-score').allInnerTexts()).map(Number);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.deepEqual((await w.locator('.samples-table td.col-response').allInnerTexts()).map((t) => t.trim()).sort(), inFile.map((r) => r.response.trim()).sort());
  assert.deepEqual(await w.locator('.samples-table thead th').allInnerTexts(), ['Prompt', 'Response', 'Score ▼', 'KL', 'Advantage']);
  // "Latest" follows the run: a later step replaces the table without a click
  await w.locator('.samples-summary', { hasText: new RegExp(`at step (?!${first}\\b)\\d+`) }).waitFor({ timeout: 120_000 });
  const later = await stepShown();
  assert.ok(later > first, `${later} > ${first}`);
  // pin that step, then sort by KL ascending (two clicks: descending first)
  await w.locator('#samples-step').selectOption(String(later));
  await w.locator('th.col-kl button').click();
  await w.locator('th.col-kl button').click();
  assert.equal(await w.locator('th.col-kl').getAttribute('aria-sort'), 'ascending');
  const kls = (await w.locator('.samples-table td.col-kl').allInnerTexts()).map(Number);
  assert.deepEqual(kls, [...kls].sort((a, b) => a - b));
  // the filter keeps the rows whose prompt or response has the text
  const atLater = sampleLines().filter((r) => r.step === later);
  const word = atLater[0].prompt.split(' ').slice(-2).join(' ');
  await w.locator('#samples-filter').fill(word);
  const expected = atLater.filter((r) => (r.prompt + '\u0000' + r.response).toLowerCase().includes(word.toLowerCase())).length;
  await w.locator('.samples-summary', { hasText: `${expected} match the filter` }).waitFor({ timeout: 10_000 });
  assert.equal(await w.locator('.samples-table tbody tr').count(), expected);
  await vs.shot('samples-filtered');
  // a prompt across steps: one column per step at which it was sampled
  await w.locator('#samples-filter').fill('');
  const prompt = atLater[0].prompt;
  await w.locator('.prompt-link', { hasText: prompt }).first().click();
  const ofPrompt = sampleLines().filter((r) => r.prompt === prompt);
  const steps = [...new Set(ofPrompt.map((r) => r.step))].sort((a, b) => a - b);
  assert.ok((await w.locator('.step-column').count()) >= steps.length, 'a column for every step so far');
  assert.equal(await w.locator('.step-column h3').first().innerText(), `Step ${steps[0]}`);
  // every response to it at that step (4 a time it was drawn: the demo's prompt file repeats prompts)
  assert.equal(await w.locator('.step-column').first().locator('.response-card').count(), ofPrompt.filter((r) => r.step === steps[0]).length);
  await w.locator('button.back').click();
  await w.locator('.samples-table').waitFor();
  // three themes
  await w.locator('#samples-step').selectOption('latest');
  const settings = path.join(vs.workspace, '.vscode', 'settings.json');
  for (const [name, theme] of [['dark', 'Default Dark Modern'], ['high-contrast', 'Default High Contrast'], ['light', 'Default Light Modern']]) {
    fs.writeFileSync(settings, JSON.stringify({ ...SETTINGS, 'workbench.colorTheme': theme }));
    await page.waitForTimeout(2500);
    await view().locator('.samples-table tbody tr').nth(15).waitFor({ timeout: 30_000 });
    await vs.shot(`theme-${name}-samples`);
  }
  await view().locator('.prompt-link').first().click();
  await view().locator('.step-column').first().waitFor();
  await vs.shot('samples-across-steps');
});

e2eTest('Cancel Training stops a PPO run within seconds, with a checkpoint, and run.json says cancelled', async () => {
  const page = vs.page;
  await page.locator('.statusbar-item', { hasText: /ppo \d+\/1000/ }).first().waitFor({ timeout: 120_000 });
  const t0 = Date.now();
  await runCommand(page, 'RLHF: Cancel Training');
  await page.locator('.notifications-toasts', { hasText: 'cancelled at a checkpoint' }).waitFor({ timeout: 60_000 });
  const seconds = (Date.now() - t0) / 1000;
  const runs = path.join(vs.workspace, '.rlhf', 'runs');
  const [id] = fs.readdirSync(runs).filter((d) => d.startsWith('ppo-'));
  const info = JSON.parse(fs.readFileSync(path.join(runs, id, 'run.json'), 'utf8'));
  const ckpts = fs.readdirSync(path.join(runs, id, 'checkpoints')).filter((d) => d.startsWith('step-'));
  console.log(`# PPO cancelled from the editor in ${seconds.toFixed(1)} s, at ${ckpts.join(', ')}`);
  assert.equal(info.status, 'cancelled');
  assert.ok(ckpts.length >= 1);
  assert.ok(seconds < 30, `${seconds} s`);
  assert.ok(!fs.existsSync(path.join(runs, id, 'run.lock')), 'the run lock is released');
  await vs.shot('ppo-cancelled');
});
