/**
 * End-to-end tests in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) with the packaged
 * .vsix installed, driven by playwright-core in Debian's chromium. The tools are installed once
 * by scripts/e2e-setup.mjs (cached). Screenshots go to test-artifacts/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { chromium, Browser, Page } from 'playwright-core';
import { FIXTURES, ROOT, tmpDir } from '../helpers';
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore: a plain ES module script
import { ensureE2E } from '../../scripts/e2e-setup.mjs';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');

let server: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let workspace: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function shot(name: string) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

const rows = () => page.locator('.pane-body .monaco-list-row').allInnerTexts();

before(async () => {
  const cache: string = ensureE2E();
  const pkg = spawnSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pkg.status, 0, pkg.stderr);
  const root = tmpDir('rlhf-e2e-');
  const data = path.join(root, 'user-data'), exts = path.join(root, 'extensions');
  workspace = path.join(root, 'workspace');
  fs.cpSync(path.join(ROOT, 'examples', 'workspace'), workspace, { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, 'datasets', 'bad-ranks.rm.jsonl'), path.join(workspace, 'data', 'bad-ranks.rm.jsonl'));
  // a tiny model, so a run started from the command palette ends in seconds
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'rlhf.pretrain.steps': 40, 'rlhf.pretrain.layers': 1, 'rlhf.pretrain.heads': 2, 'rlhf.pretrain.embd': 32, 'rlhf.pretrain.block': 32, 'rlhf.pretrain.batchSize': 4 }));
  const entry = path.join(cache, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const install = spawnSync(process.execPath, [entry, '--user-data-dir', data, '--extensions-dir', exts, '--install-extension', path.join(ROOT, 'rlhf-studio.vsix')], { encoding: 'utf8' });
  assert.match(install.stdout, /successfully installed/, install.stderr);
  const port = await freePort();
  server = spawn(process.execPath, [entry, '--user-data-dir', data, '--extensions-dir', exts, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-workspace-trust', '--disable-telemetry', workspace], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('code-server did not start within 60 s')), 60_000);
    server!.stdout!.on('data', (d) => String(d).includes('HTTP server listening') && (clearTimeout(t), resolve()));
    server!.on('exit', (c) => reject(new Error(`code-server exited with ${c}`)));
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
  await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify('reviews.sft.jsonl')})`, undefined, { timeout: 60_000 });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test('the RLHF container shows the example workspace\'s datasets by stage, with counts', async () => {
  const r = await rows();
  await shot('datasets-tree');
  for (const want of ['SFT1 file, 800 records', 'reviews.sft.jsonl800 records', 'RM2 files, 601 records', 'bad-ranks.rm.jsonl1 record · 6 errors', 'reviews.rm.jsonl600 records', 'reviews.ppo.jsonl400 records', 'reviews-heldout.ppo.jsonl60 records']) {
    assert.ok(r.some((x) => x.replace(/\s+/g, '').startsWith(want.replace(/\s+/g, ''))), `no row "${want}" in ${JSON.stringify(r)}`);
  }
});

test('a file opens 100 records at a time, and a record opens a readable preview', async () => {
  await page.locator('.pane-body .monaco-list-row', { hasText: 'reviews.rm.jsonl' }).first().click();
  const first = page.locator('.pane-body .monaco-list-row', { hasText: '1. Describe your visit to the boat rental.' }).first();
  await first.waitFor({ timeout: 30_000 });
  await first.click();
  const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  await frame.locator('text=Responses, best first (K = 4)').waitFor({ timeout: 30_000 });
  assert.ok(await frame.locator('text=Rank 1 — response 3').count());
  await shot('record-preview');
  // the list is virtual: go to its end (keyboard, as a user would) to see the page's "Show more" node
  await page.locator('.pane-body .monaco-list').first().focus();
  await page.keyboard.press('End');
  await page.locator('.pane-body .monaco-list-row', { hasText: 'Show more (500 left)' }).waitFor({ timeout: 30_000 });
  assert.ok((await rows()).some((x: string) => x.startsWith('100. ')), 'the page holds 100 records');
});

test('a bad dataset\'s problems appear in the Problems panel at their lines', async () => {
  await page.keyboard.press('Control+Shift+M');
  const panel = page.locator('.markers-panel');
  await panel.waitFor({ timeout: 30_000 });
  await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify('ranks must be integers from 1 to 3')})`, undefined, { timeout: 30_000 });
  const text = await panel.innerText();
  assert.match(text, /bad-ranks\.rm\.jsonl/);
  assert.match(text, /K = 10 responses; a ranking needs 2 to 9/);
  assert.match(text, /\[Ln 3, Col 1\]/);
  await shot('problems-panel');
});

test('problems follow the user\'s edits, before the file is saved', async () => {
  await page.keyboard.press('Control+P');
  await page.keyboard.insertText('reviews-heldout.ppo.jsonl');
  await page.waitForTimeout(800);
  await page.keyboard.press('Enter');
  await page.locator('.monaco-editor .view-lines').first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('{"prompt": ""}');
  const markers = page.locator('.markers-panel');
  await markers.getByText('Ln 61, Col 1').first().waitFor({ timeout: 30_000 });
  assert.match(await markers.innerText(), /reviews-heldout\.ppo\.jsonl[\s\S]*"prompt" must be a non-empty string[\s\S]*\[Ln 61, Col 1\]/);
  await shot('live-diagnostics');
  // fixing the line clears the problem
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Shift+Home');
  await page.keyboard.press('Backspace');
  await page.keyboard.insertText('{"prompt": "Tell me about the ferry."}');
  await markers.getByText('Ln 61, Col 1').first().waitFor({ state: 'detached', timeout: 30_000 });
});

test('a tiny training run started from the command palette shows progress in the status bar and appears in the Runs view', async () => {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  await page.keyboard.insertText('RLHF: Pretrain');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'RLHF: Pretrain' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  // the status bar item shows stage, step/total and loss while the worker trains
  const status = page.locator('.statusbar-item', { hasText: /pretrain \d+\/40 loss/ });
  await status.first().waitFor({ timeout: 60_000 });
  await shot('training-status-bar');
  await page.locator('.notifications-toasts', { hasText: 'RLHF: Pretrain finished.' }).waitFor({ timeout: 120_000 });
  const runRow = page.locator('.pane-body .monaco-list-row', { hasText: /^pretrain-.*completed/ });
  await runRow.first().waitFor({ timeout: 30_000 });
  assert.match(await runRow.first().innerText(), /completed · (eval )?loss \d\.\d{3}/);
  const runs = fs.readdirSync(path.join(workspace, '.rlhf', 'runs'));
  assert.equal(runs.length, 1);
  const info = JSON.parse(fs.readFileSync(path.join(workspace, '.rlhf', 'runs', runs[0], 'run.json'), 'utf8'));
  assert.deepEqual([info.status, info.config.train.steps, info.config.model.n_embd], ['completed', 40, 32]);
  await shot('runs-view');
});

test('cancel stops a run at a checkpoint, and the Runs view offers to resume it', async () => {
  // a longer run this time: the settings file is read again when it changes
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'rlhf.pretrain.steps': 20000, 'rlhf.pretrain.layers': 1, 'rlhf.pretrain.heads': 2, 'rlhf.pretrain.embd': 32, 'rlhf.pretrain.block': 32, 'rlhf.pretrain.batchSize': 4 }));
  await page.waitForTimeout(1500);
  await page.keyboard.press('F1');
  await page.keyboard.insertText('RLHF: Pretrain');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'RLHF: Pretrain' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  const status = page.locator('.statusbar-item', { hasText: /pretrain \d+\/20000/ });
  await status.first().waitFor({ timeout: 60_000 });
  const t0 = Date.now();
  await status.first().click(); // the status bar item cancels
  await page.locator('.notifications-toasts', { hasText: 'cancelled at a checkpoint' }).waitFor({ timeout: 30_000 });
  assert.ok(Date.now() - t0 < 10_000, 'stopped within a few seconds');
  const dirs = fs.readdirSync(path.join(workspace, '.rlhf', 'runs'));
  const infos = dirs.map((d) => JSON.parse(fs.readFileSync(path.join(workspace, '.rlhf', 'runs', d, 'run.json'), 'utf8')));
  assert.deepEqual(infos.map((i) => i.status).sort(), ['cancelled', 'completed']);
  await page.locator('.pane-body .monaco-list-row', { hasText: /^pretrain-.*cancelled/ }).first().waitFor({ timeout: 30_000 });
  await shot('cancelled-run');
});
