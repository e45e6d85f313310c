/**
 * End-to-end tests of the two webview panels in a real VS Code (code-server 4.100.3): ranking
 * with the keyboard into an RM file (the exact line checked against the CLI's own generation),
 * undo, resume after closing and after a reload; the dashboard of a finished run, a 100k-point
 * run streaming (frame time reported), CSV export; screenshots in light, dark and high contrast.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { FrameLocator, Page } from 'playwright-core';
import { Session, e2eTest, pickItem, openRlhfView, openVsCode, runCommand } from './harness';
import { ROOT } from '../helpers';

let vs: Session;
let page: Page;
let workspace: string;
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SETTINGS = { 'rlhf.generation.maxTokens': 40, 'rlhf.ranking.annotator': 'e2e-annotator', 'rlhf.ranking.k': 4, 'rlhf.dpo.steps': 2 };
const target = () => path.join(workspace, 'data', 'rankings.rm.jsonl');
const lines = () => (fs.existsSync(target()) ? fs.readFileSync(target(), 'utf8').split('\n').filter(Boolean) : []);
/** The visible webview's content frame (hidden panels keep their iframes). */
const view = (): FrameLocator => page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');

async function until(f: () => boolean, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pick = (text: string) => pickItem(page, text);

async function openRanking(targetLabel: string): Promise<void> {
  await runCommand(page, 'RLHF: Rank Responses');
  await pick('reviews-heldout.ppo.jsonl');
  await pick('models/base-char');
  await pick(targetLabel);
}

before(async () => {
  vs = await openVsCode({ trusted: true, settings: SETTINGS });
  ({ page, workspace } = vs);
  page.on('console', (m) => m.type() === 'error' && /webview|Content Security|Refused/i.test(m.text()) && console.log(`browser console: ${m.text().slice(0, 300)}`));
  // a finished tiny run for the dashboard, written by the CLI as a user's run would be
  const r = spawnSync(process.execPath, [CLI, 'pretrain', '--steps', '30', '--layers', '1', '--heads', '2', '--embd', '32', '--block', '32', '--batch-size', '4', '--runs-dir', path.join(workspace, '.rlhf', 'runs'), '--run-id', 'tiny-pretrain'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await openRlhfView(page);
});

after(() => vs?.close());

e2eTest('ranking with the keyboard appends the exact K-way record to the RM file; U undoes it', async () => {
  await openRanking('data/rankings.rm.jsonl');
  const w = view();
  await w.locator('text=Prompt 1 of 20').waitFor({ timeout: 60_000 });
  await w.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 }); // all 4 responses generated
  assert.equal(await w.locator('.card').count(), 4);
  await vs.shot('ranking-light');
  await w.locator('vscode-textarea textarea').fill('close call between 1 and 4');
  await w.locator('.prompt h2').click(); // focus back on the page, away from the comment
  for (const k of ['3', '1', '4', 't']) await page.keyboard.press(k);
  // the one response left is shown last before the submission, not only ranked so at submit
  assert.equal(await w.locator('#order-text').innerText(), 'Ranking: 3 > 1 = 4 > 2 (2, the one left, last)');
  assert.equal(await w.locator('.rank.implied .chip').innerText(), '2');
  await vs.shot('ranking-last-implied');
  const t0 = Date.now();
  await page.keyboard.press('Enter');
  await until(() => lines().length === 1, 'the appended record');
  const line = lines()[0];
  const rec = JSON.parse(line);
  // the responses the panel showed are what `rlhf generate` gives with the same settings and seed
  const prompt = 'Write a review of the candle shop.';
  const g = spawnSync(process.execPath, [CLI, 'generate', '--model', path.join(workspace, 'models', 'base-char'), '--prompt', prompt, '--num-samples', '4', '--max-tokens', '40', '--temperature', '0.8', '--top-k', '0', '--top-p', '1', '--seed', '1', '--json'], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  const responses = JSON.parse(g.stdout.trim().split('\n').pop()!).responses;
  assert.ok(Number.isInteger(rec.time_ms) && rec.time_ms > 0 && rec.time_ms < 600_000, `time_ms ${rec.time_ms}`);
  assert.ok(Math.abs(Date.parse(rec.created_at) - t0) < 15_000, `created_at ${rec.created_at}`);
  assert.match(rec.id, /^rank-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'each ranking has its own id (undo finds its line by it)');
  const expected = { prompt, responses, ranks: [2, 3, 1, 2], annotator: 'e2e-annotator', time_ms: rec.time_ms, created_at: rec.created_at, model: 'models/base-char', flags: [], comment: 'close call between 1 and 4', id: rec.id };
  assert.equal(line, JSON.stringify(expected));
  // the panel moved on; the next prompt's responses were generated while this one was ranked
  await w.locator('text=Prompt 2 of 20').waitFor({ timeout: 60_000 });
  await w.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 });
  console.log(`ranking: the next prompt's 4 responses showed ${Date.now() - t0} ms after Enter`);
  assert.match(await w.locator('#progress-text').innerText(), /^1 \/ 20 ranked · 0 skipped · \d+ \/ hour$/);
  // U: the record leaves the file (atomically), and the panel returns to prompt 1 with its ranking
  await w.locator('.prompt h2').click();
  await page.keyboard.press('u');
  await until(() => lines().length === 0, 'the undone record to leave the file');
  await w.locator('text=Prompt 1 of 20').waitFor({ timeout: 30_000 });
  assert.equal(await w.locator('#order-text').innerText(), 'Ranking: 3 > 1 = 4 > 2', 'the submitted ranking is back, to change or resubmit');
  // change it with Backspace and submit again: Enter completes it, the response left is last
  await w.locator('.prompt h2').click();
  await page.keyboard.press('Backspace');
  assert.equal(await w.locator('#order-text').innerText(), 'Ranking: 3 > 1 = 4 > 2 (2, the one left, last)', 'Backspace takes back the response placed last by Enter (shown as the one left again)');
  assert.equal(await w.locator('.rank.implied').count(), 1);
  await page.keyboard.press('Backspace');
  assert.equal(await w.locator('#order-text').innerText(), 'Ranking: 3 > 1 > 4 > 2 (2, the one left, last)', 'then the tie');
  await page.keyboard.press('Enter');
  await until(() => lines().length === 1, 'the record again');
  assert.deepEqual(JSON.parse(lines()[0]).ranks, [2, 4, 1, 3]);
  await w.locator('text=Prompt 2 of 20').waitFor({ timeout: 60_000 });
});

e2eTest('a closed panel reopens where the annotator left off; after a reload it comes back by itself', async () => {
  await runCommand(page, 'View: Close All Editors');
  await page.locator('iframe.webview.ready:visible').first().waitFor({ state: 'detached', timeout: 30_000 }).catch(() => {});
  // a second annotator ranked the same responses (ranks 2,4,1,3 vs 1,4,2,3: 5 of 6 pairs agree)
  const mine = JSON.parse(lines()[0]);
  fs.appendFileSync(target(), JSON.stringify({ ...mine, ranks: [1, 4, 2, 3], annotator: 'second-annotator', comment: '', id: 'rank-second-annotator' }) + '\n');
  await openRanking('data/rankings.rm.jsonl'); // now listed first, as "last used"
  const w = view();
  await w.locator('text=Prompt 2 of 20').waitFor({ timeout: 60_000 });
  assert.match(await w.locator('#progress-text').innerText(), /^1 \/ 20 ranked · 0 skipped/);
  await w.locator('.agreement summary').click();
  assert.match(await w.locator('.agreement').innerText(), /1 item\(s\) ranked by 2\+ annotators[\s\S]*Pairwise agreement 83\.3%[\s\S]*e2e-annotator · second-annotator\s+0\.667\s+1/);
  await w.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 });
  await w.locator('.prompt h2').click();
  await page.keyboard.press('s');
  await w.locator('text=Prompt 3 of 20').waitFor({ timeout: 60_000 });
  assert.match(await w.locator('#progress-text').innerText(), /^1 \/ 20 ranked · 1 skipped/);
  await w.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 });
  await w.locator('.prompt h2').click();
  await page.keyboard.press('2'); // a step in progress survives the reload (webview state)
  await runCommand(page, 'Developer: Reload Window');
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  const r = view();
  await r.locator('text=Prompt 3 of 20').waitFor({ timeout: 120_000 });
  assert.match(await r.locator('#progress-text').innerText(), /^1 \/ 20 ranked · 1 skipped/);
  assert.equal(await r.locator('#order-text').innerText(), 'Ranking: 2');
  assert.equal(lines().length, 2, 'nothing written by reopening or reloading');
  await r.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 }); // the reloaded host generates them again
  // the mouse ranks too: a card dropped on the strip takes the next rank; a chip dropped on a rank ties
  await r.locator('.card[data-index="3"]').dragTo(r.locator('.rank.next'));
  await r.locator('#order-text', { hasText: 'Ranking: 2 > 4' }).waitFor({ timeout: 10_000 });
  await r.locator('.chip', { hasText: '4' }).dragTo(r.locator('.rank', { hasText: '#1' }));
  await r.locator('#order-text', { hasText: 'Ranking: 2 = 4' }).waitFor({ timeout: 10_000 });
  await r.locator('.chip', { hasText: '4' }).dragTo(r.locator('.cards'));
  await r.locator('#order-text', { hasText: /^Ranking: 2$/ }).waitFor({ timeout: 10_000 });
  // Regenerate: new responses stream into the same cards (a drag or a selection survives), the old ranking goes
  const before = await r.locator('.card[data-index="0"] .body').innerText();
  await r.locator('.card[data-index="0"]').evaluate((el) => el.setAttribute('data-test-mark', 'kept'));
  await r.locator('#regenerate').click();
  await r.locator('.generating').waitFor({ timeout: 30_000 });
  assert.equal(await r.locator('#order-text').innerText(), 'Not ranked yet');
  await r.locator('.generating').waitFor({ state: 'detached', timeout: 120_000 });
  assert.equal(await r.locator('.card[data-test-mark="kept"][data-index="0"]').count(), 1, 'the card was updated in place');
  assert.notEqual(await r.locator('.card[data-index="0"] .body').innerText(), before, 'new responses');
  assert.equal(lines().length, 2);
});

e2eTest('the dashboard of a finished tiny run shows a card per metric; CSV export writes the points', async () => {
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Open Training Dashboard');
  await pick('tiny-pretrain');
  const w = view();
  for (const m of ['loss', 'learning_rate', 'grad_norm', 'tokens_per_second']) await w.locator(`.card[data-metric="${m}"] canvas`).first().waitFor({ timeout: 60_000 });
  assert.deepEqual(await w.locator('.card h3').allInnerTexts(), ['loss', 'eval/loss', 'learning_rate', 'grad_norm', 'tokens_per_second']);
  assert.match(await w.locator('.legend').innerText(), /tiny-pretrain\s+completed/);
  assert.equal(await w.locator('body').getAttribute('data-points'), '30');
  await vs.shot('dashboard-light');
  await w.locator('.card[data-metric="loss"] vscode-button', { hasText: 'CSV' }).click();
  const csv = path.join(workspace, '.rlhf', 'exports', 'tiny-pretrain-loss.csv');
  await until(() => fs.existsSync(csv), 'the CSV export');
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
  assert.equal(rows[0], 'run,step,time,loss');
  assert.equal(rows.length, 31);
  const metrics = fs.readFileSync(path.join(workspace, '.rlhf', 'runs', 'tiny-pretrain', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rows.slice(1).map((r) => Number(r.split(',')[3])), metrics.map((m) => m.loss));
  await w.locator('.card[data-metric="loss"] vscode-button', { hasText: 'PNG' }).click();
  const png = path.join(workspace, '.rlhf', 'exports', 'tiny-pretrain-loss.png');
  await until(() => fs.existsSync(png), 'the PNG export');
  assert.deepEqual([...fs.readFileSync(png).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});

e2eTest('100k points per series while a run streams: the redraw time is measured', async () => {
  // an SFT-like run with 100,000 logged steps, then 50 more every 250 ms as a live run appends
  const dir = path.join(workspace, '.rlhf', 'runs', 'big-sft');
  fs.mkdirSync(dir, { recursive: true });
  const t = Date.now() / 1000;
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ id: 'big-sft', stage: 'sft', status: 'running', config: {}, started_at: new Date(t * 1000).toISOString() }));
  const row = (s: number) => JSON.stringify({ step: s, time: t + s / 100, loss: 2 * Math.exp(-s / 30000) + 0.3 * Math.sin(s / 7) ** 2, learning_rate: 3e-4 * Math.min(1, s / 1000), grad_norm: 1 + Math.cos(s / 13) ** 2, tokens_per_second: 3000 + (s % 97) });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), Array.from({ length: 100_000 }, (_, i) => row(i + 1)).join('\n') + '\n');
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Open Training Dashboard');
  await pick('big-sft');
  const w = view();
  await w.locator('body[data-points="100000"]').waitFor({ timeout: 120_000 }).catch(async (e) => {
    await vs.shot('failed-100k');
    throw e;
  });
  const frames: number[] = [];
  let step = 100_000;
  for (let i = 0; i < 40; i++) {
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), Array.from({ length: 50 }, () => row(++step)).join('\n') + '\n');
    await page.waitForTimeout(250);
    const ms = Number(await w.locator('body').getAttribute('data-frame-ms'));
    const points = Number(await w.locator('body').getAttribute('data-points'));
    if (points > 100_000) frames.push(ms);
  }
  await w.locator(`body[data-points="${step}"]`).waitFor({ timeout: 30_000 });
  frames.sort((a, b) => a - b);
  const median = frames[Math.floor(frames.length / 2)], max = frames[frames.length - 1];
  console.log(`dashboard: 4 cards x ${step} points, ${frames.length} samples while streaming: redraw median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
  await vs.shot('dashboard-100k');
  assert.ok(median < 100, `median redraw ${median} ms`);
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ id: 'big-sft', stage: 'sft', status: 'completed', config: {}, started_at: new Date(t * 1000).toISOString() }));
  await w.locator('.status.completed').waitFor({ timeout: 30_000 });
});

e2eTest('both panels in light, dark and high-contrast themes (screenshots)', async () => {
  await runCommand(page, 'View: Close All Editors');
  await runCommand(page, 'RLHF: Open Training Dashboard');
  await pick('All pretrain runs');
  await view().locator('.card[data-metric="loss"] canvas').first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1000); // the new panel takes focus once loaded
  await openRanking('data/rankings.rm.jsonl');
  await view().locator('.prompt h2', { hasText: /^Prompt \d+ of 20$/ }).waitFor({ timeout: 60_000 }); // wherever the tests before left it
  await view().locator('.generating').waitFor({ state: 'detached', timeout: 120_000 });
  const settings = path.join(workspace, '.vscode', 'settings.json');
  for (const [name, theme] of [['dark', 'Default Dark Modern'], ['high-contrast', 'Default High Contrast'], ['light', 'Default Light Modern']]) {
    fs.writeFileSync(settings, JSON.stringify({ ...SETTINGS, 'workbench.colorTheme': theme, 'rlhf.ranking.guidelines': 'guidelines.md' }));
    await page.waitForTimeout(2500);
    await page.locator('.tab', { hasText: 'Rank responses' }).first().click();
    const r = view();
    await r.locator('.card').first().waitFor({ timeout: 60_000 });
    if (!(await r.locator('aside.guidelines:not([hidden])').count())) {
      await r.locator('.prompt h2').click();
      await page.keyboard.press('g');
    }
    await r.locator('aside.guidelines h2', { hasText: 'guidelines.md' }).waitFor({ timeout: 30_000 });
    await r.locator('body').evaluate('document.fonts.ready.then(() => true)'); // the codicon font, after the tab's webview reloads
    await page.waitForTimeout(300);
    await vs.shot(`theme-${name}-ranking`);
    await page.locator('.tab', { hasText: 'Dashboard' }).first().click();
    await view().locator('.card[data-metric="loss"] canvas').first().waitFor({ timeout: 60_000 });
    await view().locator('body').evaluate('document.fonts.ready.then(() => true)');
    await page.waitForTimeout(500);
    await vs.shot(`theme-${name}-dashboard`);
  }
});

e2eTest('with enough rankings in its file the panel offers "Train DPO on these rankings", which trains DPO on that file', async () => {
  await runCommand(page, 'View: Close All Editors');
  // 16 rankings (the threshold) in a file of their own
  const file = path.join(workspace, 'data', 'sixteen.rm.jsonl');
  fs.writeFileSync(file, fs.readFileSync(path.join(workspace, 'data', 'reviews.rm.jsonl'), 'utf8').split('\n').slice(0, 16).join('\n') + '\n');
  await openRanking('data/sixteen.rm.jsonl');
  const w = view();
  await w.locator('#train-dpo').waitFor({ timeout: 60_000 });
  await vs.shot('ranking-train-dpo');
  await w.locator('#train-dpo').click();
  await pick('models/base-char'); // the file is the panel's: only the model is asked
  await page.locator('.notifications-toasts', { hasText: 'Train DPO Model finished' }).waitFor({ timeout: 180_000 });
  const runs = path.join(workspace, '.rlhf', 'runs');
  const id = fs.readdirSync(runs).find((d) => d.startsWith('dpo-'))!;
  const info = JSON.parse(fs.readFileSync(path.join(runs, id, 'run.json'), 'utf8'));
  assert.equal(info.status, 'completed');
  assert.equal(info.config.data, file);
  assert.equal(info.config.train.steps, 2);
});
