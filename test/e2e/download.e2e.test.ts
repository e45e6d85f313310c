/**
 * RLHF: Download Model from Hugging Face… in the editor, against the test Hub on 127.0.0.1
 * (HF_ENDPOINT, inherited by VS Code and its CLI child): the progress notification with bytes,
 * speed and time left, and the message when it is done; a model that does not exist ends in one
 * error notification; Generate's picker then offers the model (the stage pickers' Hub entries are
 * checked in ppo-live.e2e.test.ts).
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Session, e2eTest, openRlhfView, openVsCode, quickInputFocused, runCommand } from './harness';
import { saveTinyChatLlama, testBackend, tmpDir } from '../helpers';
import { HubServer, startHubServer } from '../hub-server';

let vs: Session;
let hub: HubServer;
let home: string;

before(async () => {
  await testBackend();
  const model = path.join(tmpDir(), 'tiny-chat');
  await saveTinyChatLlama(model, 11);
  hub = await startHubServer([{ id: 'test-org/tiny-chat', dir: model }]);
  hub.throttle(40_000); // slow enough to see the notification move
  home = tmpDir();
  // VS Code (and the CLI it starts) inherit these
  process.env.HF_ENDPOINT = hub.url;
  process.env.HF_HOME = home;
  process.env.HF_HUB_OFFLINE = '';
  vs = await openVsCode({ trusted: true });
  await openRlhfView(vs.page);
});

after(async () => {
  await vs?.close();
  await hub?.close();
});

const notification = (text: string | RegExp) => vs.page.locator('.notification-toast', { hasText: text }).first();

async function download(id: string): Promise<void> {
  await runCommand(vs.page, 'RLHF: Download Model from Hugging Face…');
  await quickInputFocused(vs.page);
  await vs.page.locator('.quick-input-widget .quick-input-box input').first().fill(id);
  await vs.page.keyboard.press('Enter');
}

e2eTest('the download shows its progress and says where the model is', async () => {
  await download('test-org/tiny-chat');
  const progress = notification(/Downloading test-org\/tiny-chat/);
  await progress.waitFor({ timeout: 30_000 });
  await vs.page.waitForFunction(`[...document.querySelectorAll('.notification-toast')].some((t) => /Downloading test-org\\/tiny-chat[\\s\\S]*[\\d.]+ [KM]iB of [\\d.]+ [KM]iB · [\\d.]+ [KM]iB\\/s/.test(t.innerText))`, undefined, { timeout: 30_000 });
  await vs.shot('download-progress');
  await notification(/test-org\/tiny-chat is in the Hugging Face cache; it is offered in every model picker/).waitFor({ timeout: 120_000 });
  await vs.shot('download-done');
  assert.ok(fs.existsSync(path.join(home, 'hub', 'models--test-org--tiny-chat', 'snapshots')), 'in HF_HOME\'s cache');
  // Generate's model picker offers it, by its Hub id
  await runCommand(vs.page, 'RLHF: Generate');
  const row = vs.page.locator('.quick-input-list .monaco-list-row', { hasText: 'test-org/tiny-chat' }).first();
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.innerText(), /test-org\/tiny-chat[\s\S]*Hugging Face cache/);
  await vs.shot('generate-picker-hub');
  await vs.page.keyboard.press('Escape');
});

e2eTest('a model that does not exist: one error notification naming it', async () => {
  await download('test-org/nope');
  await notification(/RLHF: test-org\/nope: no such model on http:\/\/127\.0\.0\.1:\d+ \(status 404\)/).waitFor({ timeout: 60_000 });
  await vs.shot('download-404');
});
