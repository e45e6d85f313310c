/**
 * The security review's hostile workspace in a real VS Code, opened untrusted as a cloned repository
 * would be: run.json links to /dev/zero and FIFOs, a null run.json, deeply nested and huge dataset
 * lines, a FIFO dataset, links out of the workspace. The extension host must stay responsive (a
 * command answers within 1 s) while the views read it, and show every good file and run.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Session, e2eTest, openVsCode, quickInputFocused } from './harness';
import { hostileWorkspace } from '../security/hostile';

let vs: Session;
let opened = 0;

before(async () => {
  vs = await openVsCode({ trusted: false, prepare: (ws) => void hostileWorkspace(ws) });
  opened = Date.now();
  const no = vs.page.getByRole('button', { name: /No, I don.t trust the authors/ });
  await no.waitFor({ timeout: 60_000 });
  await no.click();
});

after(() => vs?.close());

e2eTest('a hostile untrusted workspace: the extension host answers a command within 1 s, again and again, while the views read it', async () => {
  const page = vs.page;
  const times: number[] = [];
  // The first quick pick a window shows from an extension takes about 1 s in a plain workspace too
  // (958 ms measured there): VS Code warming up. It is made once, untimed, before the views read.
  // Then, from the moment the views start reading until well after, each time the host's own pick.
  for (let i = -1; i < 6; i++) {
    if (i === 0) await page.locator('.activitybar [aria-label="RLHF"]').first().click({ timeout: 60_000 });
    await page.keyboard.press('F1');
    await quickInputFocused(page);
    await page.keyboard.insertText('RLHF: Select Backend');
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'Select Backend' }).first().waitFor({ timeout: 30_000 });
    const t0 = Date.now();
    await page.keyboard.press('Enter');
    // the pick of backends comes from the extension host: it shows only if the host is free
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'wasm' }).first().waitFor({ timeout: 30_000 });
    if (i >= 0) times.push(Date.now() - t0);
    else console.log(`# warm-up: the first pick took ${Date.now() - t0} ms`);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(500);
  }
  console.log(`# Select Backend answered in ${times.join(', ')} ms (from ${((Date.now() - opened) / 1000).toFixed(0)} s after the window opened)`);
  assert.ok(Math.max(...times) < 1000, `a command took ${Math.max(...times)} ms`);
  // the good files and the good run are there; the hostile files show their reason
  await page.waitForFunction(`document.body.innerText.includes('z-good.rm.jsonl')`, undefined, { timeout: 60_000 });
  const rows = await vs.rows();
  // (VS Code's file search lists neither the FIFO nor the link to /dev/zero: nothing to show there)
  for (const want of ['reviews.sft.jsonl', 'g-good.rm.jsonl', 'z-good.rm.jsonl', 'a-deep.rm.jsonl', 'b-deep-id.rm.jsonl', 'f-outside.rm.jsonl']) {
    assert.ok(rows.some((r) => r.startsWith(want)), `no row ${want} in ${JSON.stringify(rows)}`);
  }
  assert.ok(rows.some((r) => /^a-deep\.rm\.jsonl.*1 error/.test(r.replace(/\s+/g, ' '))), JSON.stringify(rows));
  await page.locator('.pane-body .monaco-list-row', { hasText: /^good/ }).first().waitFor({ timeout: 30_000 });
  await vs.shot('hostile-workspace');
});
