/**
 * A blind comparison in the real VS Code: two models, the ranking panel in evaluation mode, votes
 * with the keyboard (a win each way, an undo, a tie, "both bad"), a window reload in the middle;
 * the results it reveals at the end equal `rlhf evaluate` on the file it wrote. Screenshots of the
 * evaluation mode and of its results in three themes.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { FrameLocator, Page } from 'playwright-core';
import { Session, checkItems, e2eTest, openRlhfView, openVsCode, pickItem, runCommand } from './harness';
import { FIXTURES, ROOT } from '../helpers';

let vs: Session;
let page: Page;
const SETTINGS = { 'rlhf.evaluation.items': 4, 'rlhf.generation.maxTokens': 40, 'rlhf.ranking.annotator': 'e2e-annotator' };
const view = (): FrameLocator => page.frameLocator('iframe.webview.ready:visible').last().frameLocator('#active-frame');
const votesFile = () => path.join(vs.workspace, 'data', 'evaluations.rm.jsonl');
const votes = () => (fs.existsSync(votesFile()) ? fs.readFileSync(votesFile(), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

async function until(f: () => boolean, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Focus on the page (not a control), then the keys. */
async function keys(...ks: string[]): Promise<void> {
  await view().locator('.prompt h2').click();
  for (const k of ks) await page.keyboard.press(k);
}

before(async () => {
  vs = await openVsCode({
    trusted: true,
    settings: SETTINGS,
    // a second model to compare the bundled one with
    prepare: (ws) => fs.cpSync(path.join(FIXTURES, 'tiny-gpt2'), path.join(ws, 'models', 'tiny'), { recursive: true }),
  });
  page = vs.page;
  await openRlhfView(page);
});

after(() => vs?.close());

e2eTest('compare two models blind with the keyboard, undo, reload, finish: the revealed results equal rlhf evaluate on the written file', async () => {
  await runCommand(page, 'RLHF: Compare Models (blind)…');
  await checkItems(page, ['models/base-char', 'models/tiny']);
  // held-out prompts are offered first, and said to be the fair choice
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: 30_000 });
  assert.match(await page.locator('.quick-input-list .monaco-list-row').first().innerText(), /reviews-heldout\.ppo\.jsonl[\s\S]*held-out prompts \(recommended\)/);
  await pickItem(page, 'reviews-heldout.ppo.jsonl');
  const w = view();
  await w.locator('.prompt h2', { hasText: 'Item 1 of 4' }).waitFor({ timeout: 120_000 });
  assert.equal(await w.locator('.card').count(), 2);
  // blind: no model name anywhere the annotator can read, results closed
  const text = await w.locator('body').innerText();
  assert.doesNotMatch(text, /base-char|models\/tiny/);
  assert.equal(await w.locator('#results').getAttribute('open'), null);
  await vs.shot('evaluation-blind');
  const settings = path.join(vs.workspace, '.vscode', 'settings.json');
  const themes = [['Default Dark Modern', 'dark'], ['Default High Contrast', 'high-contrast'], ['Default Light Modern', 'light']];
  for (const [theme, label] of themes) {
    fs.writeFileSync(settings, JSON.stringify({ ...SETTINGS, 'workbench.colorTheme': theme }));
    await page.waitForTimeout(2500);
    await view().locator('.card').nth(1).waitFor({ timeout: 30_000 });
    await view().locator('body').evaluate('document.fonts.ready.then(() => true)');
    await vs.shot(`theme-${label}-evaluation`);
  }
  const evalDir = path.join(vs.workspace, '.rlhf', 'evals');
  const [name] = fs.readdirSync(evalDir);
  const items = fs.readFileSync(path.join(evalDir, name, 'items.jsonl'), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l));
  // item 1: the left one is better
  await keys('1', 'Enter');
  await until(() => votes().length === 1, 'the first vote');
  assert.deepEqual(votes()[0].models, { chosen: items[0].left.model, rejected: items[0].right.model });
  assert.equal(votes()[0].chosen, items[0].left.response);
  assert.deepEqual(votes()[0].order, [items[0].left.model, items[0].right.model]);
  assert.equal(votes()[0].evaluation, name);
  // item 2: the right one; then U takes it back
  await w.locator('.prompt h2', { hasText: 'Item 2 of 4' }).waitFor({ timeout: 30_000 });
  await keys('2', 'Enter');
  await until(() => votes().length === 2, 'the second vote');
  await w.locator('.prompt h2', { hasText: 'Item 3 of 4' }).waitFor({ timeout: 30_000 });
  await keys('u');
  await until(() => votes().length === 1, 'the undone vote to leave the file');
  await w.locator('.prompt h2', { hasText: 'Item 2 of 4' }).waitFor({ timeout: 30_000 });
  // a tie instead: 1, 2, T, Enter
  await keys('Backspace', 'Backspace', '1', '2', 't', 'Enter');
  await until(() => votes().length === 2, 'the tie');
  assert.deepEqual(votes()[1].ranks, [1, 1]);
  await w.locator('.prompt h2', { hasText: 'Item 3 of 4' }).waitFor({ timeout: 30_000 });
  // a reload in the middle: the panel comes back at item 3
  await runCommand(page, 'Developer: Reload Window');
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await view().locator('.prompt h2', { hasText: 'Item 3 of 4' }).waitFor({ timeout: 120_000 });
  assert.equal(votes().length, 2, 'nothing written by the reload');
  // item 3: both bad (B); item 4: the right one
  await keys('b', 'Enter');
  await until(() => votes().length === 3, 'the both-bad vote');
  assert.deepEqual(votes()[2].flags, ['not_rankable']);
  await view().locator('.prompt h2', { hasText: 'Item 4 of 4' }).waitFor({ timeout: 30_000 });
  await keys('2', 'Enter');
  await until(() => votes().length === 4, 'the last vote');
  // finished: the results open by themselves and name the models
  const r = view();
  await r.locator('#results[open] table.pairs').waitFor({ timeout: 30_000 });
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'evaluate', votesFile(), '--evaluation', name, '--json'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const res = JSON.parse(cli.stdout);
  assert.equal(res.votes, 4);
  const p = res.pairs[0];
  assert.deepEqual([p.wins_a + p.wins_b, p.ties, p.both_bad], [2, 1, 1]);
  const row = (await r.locator('table.pairs tbody tr').first().locator('td').allInnerTexts()).map((t) => t.trim());
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  assert.deepEqual(row, [p.a, p.b, pct(p.win_rate), `${pct(p.low)} – ${pct(p.high)}`, `${p.wins_a} · ${p.wins_b} · ${p.ties} · ${p.both_bad}`]);
  assert.equal(await r.locator('#results summary').innerText(), 'Results: 4 vote(s)');
  await vs.shot('evaluation-results');
  for (const [theme, label] of themes) {
    fs.writeFileSync(settings, JSON.stringify({ ...SETTINGS, 'workbench.colorTheme': theme }));
    await page.waitForTimeout(2500);
    await view().locator('#results[open] table.pairs').waitFor({ timeout: 30_000 });
    await view().locator('body').evaluate('document.fonts.ready.then(() => true)');
    await vs.shot(`theme-${label}-evaluation-results`);
  }
});
