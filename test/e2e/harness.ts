/**
 * The end-to-end harness: the packaged .vsix installed into code-server 4.100.3 (VS Code
 * 1.100.3), a copy of the example workspace, chromium driven by playwright-core. The tools are
 * installed once by scripts/e2e-setup.mjs (cached). Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
/** The session of this test file, for the diagnosis of a failed test. */
let current: Session | undefined;

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

/** Starts VS Code on a fresh copy of the example workspace (plus a bad RM file and settings), or on an empty folder. */
export async function openVsCode(o: { trusted: boolean; settings?: Record<string, unknown>; prepare?: (workspace: string) => void; empty?: boolean; walkthroughOnInstall?: boolean }): Promise<Session> {
  const cache: string = ensureE2E();
  if (!packaged) {
    const pkg = spawnSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(pkg.status, 0, pkg.stderr);
    packaged = true;
  }
  const root = tmpDir('rlhf-e2e-');
  const data = path.join(root, 'user-data'), exts = path.join(root, 'extensions');
  const workspace = path.join(root, 'workspace');
  if (o.empty) fs.mkdirSync(workspace, { recursive: true }); // a new user's empty folder
  else {
    fs.cpSync(path.join(ROOT, 'examples', 'workspace'), workspace, { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'datasets', 'bad-ranks.rm.jsonl'), path.join(workspace, 'data', 'bad-ranks.rm.jsonl'));
  }
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(o.settings ?? {}));
  o.prepare?.(workspace);
  // no welcome page or walkthrough opening over the editors under test at some later moment
  fs.mkdirSync(path.join(data, 'User'), { recursive: true });
  fs.writeFileSync(path.join(data, 'User', 'settings.json'), JSON.stringify({ 'workbench.startupEditor': 'none', 'workbench.welcomePage.walkthroughs.openOnInstall': o.walkthroughOnInstall ?? false, 'update.showReleaseNotes': false, 'workbench.tips.enabled': false }));
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
  return (current = {
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
  });
}

/**
 * A test that, when it fails, leaves `test-artifacts/failed-<name>.png` and prints what VS Code
 * showed: the quick input, notifications, and the text of every webview. CI keeps only the log.
 */
export function e2eTest(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      if (current) {
        await diagnose(current.page, name.replace(/\W+/g, '-').slice(0, 60)).catch((d) => console.log(`(no diagnosis: ${d})`));
        // a drag left half done, or a quick pick left open, would fail the next test too
        await current.page.mouse.up().catch(() => {});
        await current.page.keyboard.press('Escape').catch(() => {});
      }
      throw e;
    }
  });
}

async function diagnose(page: Page, slug: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `failed-${slug}.png`) });
  const text = async (sel: string) => ((await page.locator(sel).count()) ? (await page.locator(sel).first().innerText({ timeout: 2000 })).replace(/\s+/g, ' ').slice(0, 600) : '(none)');
  const lines = [`--- diagnosis of the failed test (screenshot failed-${slug}.png)`];
  lines.push(`quick input: ${(await page.locator('.quick-input-widget:visible').count()) ? await text('.quick-input-widget') : '(closed)'}`);
  lines.push(`notifications: ${await text('.notifications-toasts')}`);
  lines.push(`dialog: ${await text('.monaco-dialog-box')} · menu: ${await text('.context-view .monaco-menu')}`);
  lines.push(`tabs: ${(await page.locator('.tabs-container .tab').allInnerTexts()).join(' | ')}`);
  lines.push(`focus: ${await page.evaluate('document.activeElement?.className ?? ""')}`);
  for (const f of page.frames()) {
    if (f === page.mainFrame() || (await (await f.frameElement().catch(() => undefined))?.getAttribute('id')) !== 'active-frame') continue;
    const body = await f.evaluate('document.body ? document.body.innerText : ""', undefined).catch(() => '(unreadable)');
    const outer = await f.parentFrame()?.frameElement().catch(() => undefined);
    const shown = outer ? await outer.isVisible().catch(() => false) : false;
    lines.push(`webview (${shown ? 'visible' : 'hidden'}): ${String(body).replace(/\s+/g, ' ').slice(0, 600)}`);
  }
  console.log(lines.join('\n'));
}

/** Opens the RLHF container and waits for the example datasets. */
export async function openRlhfView(page: Page): Promise<void> {
  await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
  await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify('reviews.sft.jsonl')})`, undefined, { timeout: 60_000 });
}

/** Runs a command from the palette by its title. */
export async function runCommand(page: Page, title: string): Promise<void> {
  // from inside a webview the key travels to the workbench first: type only once the palette has focus.
  // F1 again if it has not opened: a key pressed while the window is still settling can be lost
  // (seen once in a fresh-clone run, right after the window opened).
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await page.keyboard.press('Escape');
    await page.keyboard.press(attempt % 2 ? 'F1' : 'Control+Shift+P');
    try {
      await quickInputFocused(page, 5_000);
      if (attempt > 1) console.log(`(the command palette opened at attempt ${attempt}, for "${title}")`);
      break;
    } catch (e) {
      if (attempt === 6) throw e;
    }
  }
  await page.keyboard.insertText(title);
  await choose(page, title);
}

/**
 * Types `text` into the quick pick that a command has just opened and accepts the matching item.
 * The new pick is the one with an empty filter (the palette or the previous pick still shows its
 * text while it closes); it gets the focus back if a panel that finished loading took it.
 */
export async function pickItem(page: Page, text: string): Promise<void> {
  const input = '.quick-input-widget .quick-input-box input';
  await page.waitForFunction(`(() => { const i = document.querySelector(${JSON.stringify(input)}); return !!i && i.offsetParent !== null && i.value === '' && !!document.querySelector('.quick-input-list .monaco-list-row'); })()`, undefined, { timeout: 30_000 });
  if (!(await page.evaluate(`document.activeElement === document.querySelector(${JSON.stringify(input)})`))) await page.locator(input).first().focus();
  await page.keyboard.insertText(text);
  await choose(page, text);
}

/**
 * Accepts the quick pick's item that contains `text`, once the filter has made it the focused row:
 * a matching row is often on screen before the filter runs, and Enter then takes the first item.
 */
export async function choose(page: Page, text: string): Promise<void> {
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: text }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
}

/** Waits until the keyboard is in the quick input (the palette, Quick Open or a pick). */
export async function quickInputFocused(page: Page, timeout = 30_000): Promise<void> {
  await page.waitForFunction(`!!document.activeElement?.closest('.quick-input-widget')`, undefined, { timeout });
}

/** Checks the rows labelled `labels` in a multi-select quick pick (filtering for each), then accepts. */
/** A quick pick row by its label exactly (its aria label is the label, then ", description" when it has one). */
export function rowOf(label: string, extra = ''): string {
  return `.quick-input-list .monaco-list-row[aria-label=${JSON.stringify(label)}]${extra}, .quick-input-list .monaco-list-row[aria-label^=${JSON.stringify(label + ', ')}]${extra}`;
}

export async function checkItems(page: Page, labels: string[]): Promise<void> {
  await page.locator('.quick-input-list .monaco-list-row').first().waitFor({ timeout: 30_000 });
  for (const label of labels) {
    await page.locator('.quick-input-widget .quick-input-box input').first().fill(label);
    // once the filter has run; a click on a row being re-rendered can be lost, so click until it says checked
    await page.waitForFunction(`(() => { const rows = [...document.querySelectorAll('.quick-input-list .monaco-list-row')]; return rows.length > 0 && rows.every((r) => (r.getAttribute('aria-label') ?? '').includes(${JSON.stringify(label)})); })()`, undefined, { timeout: 30_000 });
    const row = page.locator(rowOf(label)).first();
    for (let attempt = 1; (await row.getAttribute('aria-checked')) !== 'true'; attempt++) {
      assert.ok(attempt <= 3, `${label} could not be checked in the pick`);
      await row.locator('.monaco-checkbox').first().click();
      await page.locator(rowOf(label, '[aria-checked="true"]')).first().waitFor({ timeout: 3_000 }).catch(() => {});
    }
  }
  await page.keyboard.press('Enter');
}
