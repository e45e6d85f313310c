/** Workspace trust in a real VS Code: an untrusted workspace browses datasets but trains and writes nothing. */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Session, e2eTest, openRlhfView, openVsCode, runCommand } from './harness';

let vs: Session;

before(async () => {
  vs = await openVsCode({ trusted: false });
  // VS Code asks whether to trust the folder's authors: answer no (Restricted Mode)
  const no = vs.page.getByRole('button', { name: /No, I don.t trust the authors/ });
  await no.waitFor({ timeout: 60_000 });
  await no.click();
  await openRlhfView(vs.page);
});

after(() => vs?.close());

e2eTest('in an untrusted workspace the views browse, but nothing trains', async () => {
  const rows = await vs.rows();
  assert.ok(rows.some((r) => r.startsWith('reviews.rm.jsonl')), JSON.stringify(rows));
  await runCommand(vs.page, 'RLHF: Pretrain');
  await vs.page.locator('.notifications-toasts', { hasText: 'training is disabled in an untrusted workspace' }).waitFor({ timeout: 30_000 });
  assert.ok(!fs.existsSync(path.join(vs.workspace, '.rlhf')), 'no run was written');
  await vs.shot('untrusted-workspace');
  // importing and exporting write into the workspace too
  await runCommand(vs.page, 'RLHF: Import Model or Training Log…');
  await vs.page.locator('.notifications-toasts', { hasText: 'importing writes into the workspace; it is disabled in an untrusted workspace' }).waitFor({ timeout: 30_000 });
  assert.equal(await vs.page.locator('.quick-input-widget .quick-input-title', { hasText: "Import a trainer's output" }).count(), 0, 'no folder dialog');
});
