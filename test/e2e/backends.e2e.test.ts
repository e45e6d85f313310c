/**
 * Backends in the real VS Code (issue "Train on the GPU people have"): Select Backend shows what
 * starts on this machine, with the WebGPU adapter (llvmpipe here) and why auto passes over it; a
 * stage trains on WebGPU when it is chosen; Install GPU Backend offers WebGPU and CUDA and says
 * when the only adapter is a software renderer.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { Session, e2eTest, openVsCode, pickItem, runCommand } from './harness';
import { ensureVulkan } from '../helpers';

let vs: Session;
let page: Page;

before(async () => {
  await ensureVulkan();
  vs = await openVsCode({ trusted: true, settings: { 'rlhf.sft.steps': 3, 'rlhf.sft.batchSize': 4 } });
  page = vs.page;
  await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
});

after(() => vs?.close());

e2eTest('Select Backend shows which backends start here, the WebGPU adapter, and why auto passes over it', async () => {
  await runCommand(page, 'RLHF: Select Backend');
  const webgpu = page.locator('.quick-input-list .monaco-list-row', { hasText: 'webgpu' }).filter({ hasText: /llvmpipe/ });
  await webgpu.first().waitFor({ timeout: 60_000 });
  const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  assert.match(rows.find((r) => /webgpu/.test(r) && /llvmpipe/.test(r))!, /auto passes over it: .*software adapter, slower than WebAssembly/);
  assert.match(rows[0], /^auto[\s\S]*takes wasm here/);
  assert.match(rows.find((r) => /^\s*gpu|\bgpu\b/.test(r) && /does not start/.test(r)) ?? '', /tfjs-node-gpu is not installed/);
  await vs.shot('select-backend-webgpu');
  await pickItem(page, 'webgpu');
  await page.locator('.statusbar-item', { hasText: 'webgpu' }).first().waitFor({ timeout: 15_000 });
});

e2eTest('a stage started from the editor trains on WebGPU; run.json names the adapter', async () => {
  await runCommand(page, 'RLHF: Train SFT Model');
  await pickItem(page, 'data/reviews.sft.jsonl');
  await pickItem(page, 'models/base-char');
  const done = page.locator('.notifications-toasts .notification-toast', { hasText: 'Train SFT Model finished' });
  await done.waitFor({ timeout: 180_000 });
  await page.locator('.statusbar-item', { hasText: 'webgpu' }).first().waitFor({ timeout: 5_000 });
  const runs = path.join(vs.workspace, '.rlhf', 'runs');
  const run = fs.readdirSync(runs).find((d) => d.startsWith('sft-'))!;
  const info = JSON.parse(fs.readFileSync(path.join(runs, run, 'run.json'), 'utf8'));
  assert.equal(info.backend, 'webgpu');
  assert.match(info.adapter, /llvmpipe.*software/);
  await vs.shot('trained-on-webgpu');
});

e2eTest('Install GPU Backend offers WebGPU and CUDA, and says when the only adapter is a software renderer', async () => {
  await page.keyboard.press('Escape');
  await runCommand(page, 'RLHF: Install GPU Backend');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'CUDA' }).first().waitFor({ timeout: 15_000 });
  const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  assert.match(rows[0], /WebGPU[\s\S]*any GPU: NVIDIA, AMD, Intel, Apple[\s\S]*Dawn is in this extension/);
  assert.match(rows[1], /CUDA[\s\S]*CUDA 11\.2 and cuDNN 8\.1/);
  await vs.shot('install-gpu-backend-pick');
  await pickItem(page, 'WebGPU');
  const warn = page.locator('.notifications-toasts .notification-toast', { hasText: 'software renderer' });
  await warn.waitFor({ timeout: 60_000 });
  assert.match(await warn.innerText(), /slower than WebAssembly, so "auto" keeps training on wasm/);
  assert.equal(await warn.locator('.monaco-button', { hasText: 'Use WebGPU anyway' }).count(), 1);
  await vs.shot('install-webgpu-software-adapter');
});
