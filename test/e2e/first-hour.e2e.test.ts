/**
 * The first hour's headline problems, as a new user met them (issue "The first hour"), in the
 * real VS Code: a failed stage's notification said only "see the RLHF output"; the Runs view
 * stayed empty during the first run, and it and the dashboard kept saying "cancelled" after a
 * resume.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { FrameLocator, Page } from 'playwright-core';
import { Session, checkItems, e2eTest, openVsCode, pickItem, runCommand } from './harness';

let vs: Session;
let page: Page;
const view = (): FrameLocator => page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');
const runsDir = () => path.join(vs.workspace, '.rlhf', 'runs');

before(async () => {
  // a new user's empty folder
  vs = await openVsCode({ trusted: true, empty: true, walkthroughOnInstall: true, settings: { 'rlhf.sft.steps': 80, 'rlhf.rm.steps': 20, 'rlhf.ppo.iterations': 3, 'rlhf.generation.maxTokens': 40 } });
  page = vs.page;
  await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
});

e2eTest('an empty folder shows what to do; New RLHF Project fills the Datasets view at once, PPO files included', async () => {
  const welcome = page.locator('.welcome-view-content', { hasText: 'No datasets in this folder yet' });
  await welcome.waitFor({ timeout: 60_000 });
  await page.locator('.welcome-view-content', { hasText: 'No runs yet' }).waitFor({ timeout: 30_000 });
  // the first activation after install opened the walkthrough (once)
  await page.locator('.tab', { hasText: 'Walkthrough: RLHF Studio' }).first().waitFor({ timeout: 30_000 });
  await page.locator('.gettingStartedContainer', { hasText: 'Get started with RLHF Studio' }).first().waitFor({ timeout: 30_000 });
  await vs.shot('empty-folder-welcome');
  const t0 = Date.now();
  await welcome.locator('a.monaco-button', { hasText: 'New RLHF Project' }).click();
  // every stage with its files, without a manual refresh
  const row = (label: string, files: RegExp) => page.locator('.pane-body .monaco-list-row', { hasText: label }).filter({ hasText: files }).first();
  await row('PPO', /2 files, 460 records/).waitFor({ timeout: 15_000 });
  await row('SFT', /1 file, 800 records/).waitFor({ timeout: 15_000 });
  await row('RM', /1 file, 600 records/).waitFor({ timeout: 15_000 });
  console.log(`# the Datasets view showed the new project's files ${((Date.now() - t0) / 1000).toFixed(1)} s after New RLHF Project`);
  await vs.shot('new-project');
});

after(() => vs?.close());

e2eTest('a failed stage says why in its notification, and Open File goes to the bad line', async () => {
  fs.writeFileSync(path.join(vs.workspace, 'data', 'broken.sft.jsonl'), '{"prompt":"Tell me about the ferry.","response":"A fine ride."}\n{"prompt": 3}\n{"prompt":"Tell me about the inn.","response":"Warm."}\n');
  // the Datasets view has read it (its problem shows there)
  await page.locator('.pane-body .monaco-list-row', { hasText: 'broken.sft.jsonl' }).filter({ hasText: /1 err/ }).first().waitFor({ timeout: 30_000 });
  await runCommand(page, 'RLHF: Train SFT Model');
  // the file with a problem is offered last, marked; the good one first
  await page.locator('.quick-input-list .monaco-list-row', { hasText: /1 problem/ }).first().waitFor({ timeout: 30_000 });
  const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  assert.ok(rows[0].startsWith('data/reviews.sft.jsonl'), rows.join(' | '));
  assert.match(rows.at(-1)!, /^data\/broken\.sft\.jsonl[\s\S]*1 problem: see the Problems panel/);
  await vs.shot('pick-dataset-problems');
  await pickItem(page, 'data/broken.sft.jsonl');
  await pickItem(page, 'models/base-char');
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Train SFT Model failed' });
  await toast.waitFor({ timeout: 60_000 });
  assert.match(await toast.innerText(), /Train SFT Model failed: 1 bad record\(s\) in the SFT data; the first: .*broken\.sft\.jsonl:2: "prompt" must be a non-empty string/);
  await vs.shot('failed-stage-notification');
  await toast.locator('.monaco-button', { hasText: 'Open File' }).click();
  await page.locator('.tabs-container .tab.active', { hasText: 'broken.sft.jsonl' }).waitFor({ timeout: 30_000 });
  await page.locator('.statusbar-item', { hasText: /Ln 2, Col/ }).first().waitFor({ timeout: 30_000 });
});

/** The Runs view row of a run (its label and description: status, metric, age). */
const runRow = (id: string) => page.locator('.pane-body .monaco-list-row', { hasText: id });

e2eTest('a run is in the Runs view within 2 s of its start; the Runs view and the dashboard follow it through cancel, resume and completion', async () => {
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Train SFT Model');
  await pickItem(page, 'data/reviews.sft.jsonl');
  await pickItem(page, 'models/base-char');
  // the run folder appears; the Runs view shows it within 2 s
  let id: string | undefined;
  const t0 = Date.now();
  while (!(id = fs.existsSync(runsDir()) ? fs.readdirSync(runsDir()).find((d) => d.startsWith('sft-')) : undefined)) {
    assert.ok(Date.now() - t0 < 60_000, 'no run folder');
    await page.waitForTimeout(50);
  }
  const born = fs.statSync(path.join(runsDir(), id)).birthtimeMs || Date.now();
  await runRow(id).first().waitFor({ timeout: 10_000 });
  const seen = (Date.now() - born) / 1000;
  console.log(`# the run showed in the Runs view ${seen.toFixed(2)} s after its folder was made`);
  assert.ok(seen <= 2.5, `${seen} s`);
  await runRow(id).filter({ hasText: 'running' }).first().waitFor({ timeout: 10_000 });
  // the dashboard of the running run, from the status bar
  await page.locator('.statusbar-item', { hasText: /sft \d+\/80/ }).first().click();
  const w = view();
  await w.locator('.legend .status.running').waitFor({ timeout: 60_000 });
  // cancel: both say cancelled
  await runCommand(page, 'RLHF: Cancel Training');
  const cancelled = page.locator('.notifications-toasts .notification-toast', { hasText: 'cancelled at a checkpoint' });
  await cancelled.waitFor({ timeout: 60_000 });
  await runRow(id).filter({ hasText: 'cancelled' }).first().waitFor({ timeout: 10_000 });
  await view().locator('.legend .status.cancelled').waitFor({ timeout: 10_000 });
  await vs.shot('run-cancelled');
  // resume, from the notification's own button: both say running within seconds, then completed
  await cancelled.locator('.monaco-button', { hasText: 'Resume' }).click();
  await runRow(id).filter({ hasText: 'running' }).first().waitFor({ timeout: 10_000 });
  await view().locator('.legend .status.running').waitFor({ timeout: 10_000 });
  await vs.shot('run-resumed');
  // the finished notification names the model and offers the next step of the recipe
  const done = page.locator('.notifications-toasts .notification-toast', { hasText: 'Resume Run finished' });
  await done.waitFor({ timeout: 180_000 });
  assert.match(await done.innerText(), new RegExp(`the model is in \\.rlhf/runs/${id}/checkpoints/final \\(eval loss \\d\\.\\d{3}\\)`));
  for (const b of ['Train Reward Model from it', 'Open Dashboard']) assert.equal(await done.locator('.monaco-button', { hasText: b }).count(), 1, b);
  await vs.shot('run-finished-next-step');
  await runRow(id).filter({ hasText: 'completed' }).first().waitFor({ timeout: 10_000 });
  await view().locator('.legend .status.completed').waitFor({ timeout: 10_000 });
  assert.equal(JSON.parse(fs.readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8')).status, 'completed');
  await vs.shot('run-completed');
});

e2eTest('the first hour goes on: a reward model from the SFT model, PPO with both, its dashboard, ranking its answers, Generate side by side', async () => {
  await runCommand(page, 'View: Close All Editors');
  const sft = fs.readdirSync(runsDir()).find((d) => d.startsWith('sft-'))!;
  // the reward model, from the SFT model
  await runCommand(page, 'RLHF: Train Reward Model');
  await pickItem(page, 'data/reviews.rm.jsonl');
  await pickItem(page, `${sft}/checkpoints/final`);
  const rmDone = page.locator('.notifications-toasts .notification-toast', { hasText: 'Train Reward Model finished' });
  await rmDone.waitFor({ timeout: 180_000 });
  assert.match(await rmDone.innerText(), /the model is in \.rlhf\/runs\/rm-[^/]+\/checkpoints\/final \(eval acc \d\.\d+\)/);
  await vs.shot('walk-rm-finished');
  // PPO from its notification: the reward model just made is offered first as the reward model
  await rmDone.locator('.monaco-button', { hasText: 'Run PPO with it' }).click();
  await pickItem(page, 'data/reviews.ppo.jsonl');
  await pickItem(page, `${sft}/checkpoints/final`);
  const rm = fs.readdirSync(runsDir()).find((d) => d.startsWith('rm-'))!;
  await page.locator('.quick-input-list .monaco-list-row', { hasText: rm }).first().waitFor({ timeout: 30_000 });
  assert.match((await page.locator('.quick-input-list .monaco-list-row').allInnerTexts())[0], new RegExp(`^\\.rlhf/runs/${rm}/checkpoints/final`));
  await pickItem(page, `${rm}/checkpoints/final`);
  const ppoDone = page.locator('.notifications-toasts .notification-toast', { hasText: 'Run PPO finished' });
  await ppoDone.waitFor({ timeout: 300_000 });
  await vs.shot('walk-ppo-finished');
  const ppo = fs.readdirSync(runsDir()).find((d) => d.startsWith('ppo-'))!;
  // its dashboard, from the notification
  await ppoDone.locator('.monaco-button', { hasText: 'Open Dashboard' }).click();
  await view().locator('.card[data-metric="objective/scores"] canvas').first().waitFor({ timeout: 60_000 });
  await view().locator('.legend .status.completed').waitFor({ timeout: 10_000 });
  await vs.shot('walk-ppo-dashboard');
  // ranking the PPO model's answers
  await runCommand(page, 'RLHF: Rank Responses');
  await pickItem(page, 'data/reviews.ppo.jsonl');
  await pickItem(page, `${ppo}/checkpoints/final`);
  await pickItem(page, 'data/rankings.rm.jsonl');
  const r = view();
  await r.locator('.card').nth(3).waitFor({ timeout: 60_000 });
  // the responses written (the panel refuses to rank half-written ones), then ranked
  await r.locator('#regenerate:not([disabled])').waitFor({ timeout: 120_000 });
  await r.locator('.prompt h2').click();
  for (const k of ['2', '4', '1']) await page.keyboard.press(k);
  await r.locator('.rank.implied').waitFor({ timeout: 5_000 });
  await vs.shot('walk-ranking-ppo-answers');
  // Generate: the SFT and the PPO model side by side
  await runCommand(page, 'RLHF: Generate');
  await checkItems(page, [`.rlhf/runs/${sft}/checkpoints/final`, `.rlhf/runs/${ppo}/checkpoints/final`]);
  await page.locator('.quick-input-message', { hasText: 'Prompt' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.insertText('Write a review of the candle shop.');
  await page.keyboard.press('Enter');
  const g = page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');
  await g.locator('.column').nth(1).waitFor({ timeout: 30_000 });
  assert.equal(await g.locator('.column').count(), 2);
  // side by side: the two columns start at the same height
  const [a, b] = [await g.locator('.column').nth(0).boundingBox(), await g.locator('.column').nth(1).boundingBox()];
  assert.ok(a && b && Math.abs(a.y - b.y) < 2 && b.x > a.x + a.width - 1, `columns at ${JSON.stringify([a, b])}`);
  await g.locator('.column .state-done').nth(1).waitFor({ timeout: 120_000 });
  await vs.shot('walk-generate-side-by-side');
  // Rank these: the four responses shown (2 per model) in the ranking panel, into an RM file
  const shown = await g.locator('pre').allInnerTexts();
  await g.locator('#rank').click();
  await pickItem(page, 'data/rankings.rm.jsonl');
  const rk = view();
  await rk.locator('text=the responses of 2 model(s) from Generate').waitFor({ timeout: 30_000 });
  assert.equal(await rk.locator('.card').count(), 4);
  await rk.locator('.prompt h2').click();
  for (const k of ['4', '1', '3']) await page.keyboard.press(k);
  await vs.shot('walk-rank-these');
  await page.keyboard.press('Enter');
  const file = path.join(vs.workspace, 'data', 'rankings.rm.jsonl');
  const t0 = Date.now();
  while (!(fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim())) {
    assert.ok(Date.now() - t0 < 15_000, 'no ranking written');
    await page.waitForTimeout(100);
  }
  const rec = JSON.parse(fs.readFileSync(file, 'utf8').trim().split('\n').at(-1)!);
  assert.equal(rec.prompt, 'Write a review of the candle shop.');
  assert.deepEqual([...rec.responses].sort(), [...shown].sort(), 'the responses shown, in a random order (the columns would tell who wrote what)');
  assert.deepEqual(rec.ranks, [2, 4, 3, 1]);
  assert.equal(rec.model, [`.rlhf/runs/${sft}/checkpoints/final`, `.rlhf/runs/${ppo}/checkpoints/final`].sort().join(' + '));
  // each stage remembers its own last model: SFT offers the base model first again, though the
  // reward model, PPO and the ranking panel have picked other models since
  await runCommand(page, 'RLHF: Train SFT Model');
  await pickItem(page, 'data/reviews.sft.jsonl');
  await page.waitForFunction(`[...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.innerText.includes('Browse'))`, undefined, { timeout: 30_000 });
  const models = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  assert.match(models[0], /^models\/base-char[\s\S]*last used/, models.join(' | '));
  await page.keyboard.press('Escape');
});

e2eTest('Run Full Pipeline asks first, says what it does and how long; its runs are in the Runs view; its cancel message is true', async () => {
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Run Full Pipeline');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 30_000 });
  assert.match(await dialog.innerText(), /about 9 minutes on a 2-core CPU[\s\S]*not your datasets[\s\S]*Runs view/);
  await vs.shot('pipeline-confirm');
  await dialog.locator('.monaco-button', { hasText: 'Run Pipeline' }).click();
  let id: string | undefined;
  const t0 = Date.now();
  while (!(id = fs.existsSync(runsDir()) ? fs.readdirSync(runsDir()).find((d) => /^pipeline-.*-pretrain$/.test(d)) : undefined)) {
    assert.ok(Date.now() - t0 < 60_000, 'no pipeline run');
    await page.waitForTimeout(100);
  }
  await runRow(id).first().waitFor({ timeout: 10_000 });
  await page.locator('.statusbar-item', { hasText: /(pretrain|sft) \d+\/\d+/ }).first().waitFor({ timeout: 60_000 });
  await runCommand(page, 'RLHF: Cancel Training');
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Run Full Pipeline cancelled' });
  await toast.waitFor({ timeout: 60_000 });
  // the short pretraining may be over by the time Cancel lands: the message names the stage run it stopped in
  const m = /during its (pretrain|sft) run \((pipeline-[^)]+)\), at a checkpoint\. Resume continues that run; the pipeline's later stages do not run/.exec(await toast.innerText());
  assert.ok(m, await toast.innerText());
  assert.ok(m[2].endsWith(`-${m[1]}`) && fs.existsSync(path.join(runsDir(), m[2])));
  assert.equal(await toast.locator('.monaco-button', { hasText: 'Resume that run' }).count(), 1);
  await runRow(m[2]).filter({ hasText: 'cancelled' }).first().waitFor({ timeout: 10_000 });
  await vs.shot('pipeline-cancelled');
});
