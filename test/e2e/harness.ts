/**
 * The end-to-end harness: the packaged .vsix installed into code-server 4.100.3 (VS Code
 * 1.100.3), a copy of the example workspace, chromium driven by playwright-core. The tools are
 * installed once by scripts/e2e-setup.mjs (cached). Screenshots go to test-artifacts/.
 */
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
let packaged = false;

export interface Session {
  page: Page;
  workspace: string;
  shot(name: string): Promise<void>;
  rows(): Promise<string[]>;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts VS Code on a fresh copy of the example workspace (plus a bad RM file and settings). */
export async function openVsCode(o: { trusted: boolean; settings?: Record<string, unknown> }): Promise<Session> {
  const cache: string = ensureE2E();
  if (!packaged) {
    for (const f of fs.existsSync(ARTIFACTS) ? fs.readdirSync(ARTIFACTS) : []) if (f.startsWith('failed-')) fs.rmSync(path.join(ARTIFACTS, f));
    const pkg = spawnSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(pkg.status, 0, pkg.stderr);
    packaged = true;
  }
  const root = tmpDir('rlhf-e2e-');
  const data = path.join(root, 'user-data'), exts = path.join(root, 'extensions');
  const workspace = path.join(root, 'workspace');
  fs.cpSync(path.join(ROOT, 'examples', 'workspace'), workspace, { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, 'datasets', 'bad-ranks.rm.jsonl'), path.join(workspace, 'data', 'bad-ranks.rm.jsonl'));
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(o.settings ?? {}));
  const entry = path.join(cache, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const install = spawnSync(process.execPath, [entry, '--user-data-dir', data, '--extensions-dir', exts, '--install-extension', path.join(ROOT, 'rlhf-studio.vsix')], { encoding: 'utf8' });
  assert.match(install.stdout, /successfully installed/, install.stderr);
  const port = await freePort();
  const args = [entry, '--user-data-dir', data, '--extensions-dir', exts, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', ...(o.trusted ? ['--disable-workspace-trust'] : []), workspace];
  const server: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('code-server did not start within 60 s')), 60_000);
    server.stdout!.on('data', (d) => String(d).includes('HTTP server listening') && (clearTimeout(t), resolve()));
    server.on('exit', (c) => reject(new Error(`code-server exited with ${c}`)));
  });
  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  return {
    page,
    workspace,
    async shot(name) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
    },
    rows: () => page.locator('.pane-body .monaco-list-row').allInnerTexts(),
    async close() {
      await browser.close();
      server.kill();
    },
  };
}

/** Opens the RLHF container and waits for the example datasets. */
export async function openRlhfView(page: Page): Promise<void> {
  await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
  await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify('reviews.sft.jsonl')})`, undefined, { timeout: 60_000 });
}

/** Runs a command from the palette by its title. */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  // from inside a webview the key travels to the workbench first: type only once the palette has focus
  await page.waitForFunction(`!!document.activeElement?.closest('.quick-input-widget')`, undefined, { timeout: 30_000 });
  await page.keyboard.insertText(title);
  try {
    await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 30_000 });
  } catch (e) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `failed-command-${title.replace(/\W+/g, '-')}.png`) });
    throw e;
  }
  await page.keyboard.press('Enter');
}
