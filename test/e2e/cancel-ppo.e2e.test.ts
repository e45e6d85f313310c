/** Cancel from the editor stops PPO within seconds, at a checkpoint (the review found it ignored until the run ended). */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Session, e2eTest, openRlhfView, openVsCode, pickItem, runCommand } from './harness';
import { ROOT, tmpDir } from '../helpers';

let vs: Session;

before(async () => {
  vs = await openVsCode({
    trusted: true,
    settings: { 'rlhf.ppo.iterations': 1000 },
    // a reward model to run PPO with: two steps of `rlhf rm` on the example rankings
    prepare: (ws) => {
      const runs = tmpDir();
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'rm', '--data', path.join(ws, 'data', 'reviews.rm.jsonl'), '--model', path.join(ws, 'models', 'base-char'), '--steps', '2', '--batch-size', '2', '--runs-dir', runs, '--run-id', 'rm', '--backend', 'wasm'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      fs.cpSync(path.join(runs, 'rm', 'checkpoints', 'final'), path.join(ws, 'models', 'reward'), { recursive: true });
    },
  });
  await openRlhfView(vs.page);
});

after(() => vs?.close());

e2eTest('Cancel Training stops a PPO run within seconds, with a checkpoint, and run.json says cancelled', async () => {
  const page = vs.page;
  await runCommand(page, 'RLHF: Run PPO');
  await pickItem(page, 'data/reviews.ppo.jsonl');
  await pickItem(page, 'models/base-char');
  await pickItem(page, 'models/reward');
  await page.locator('.statusbar-item', { hasText: /ppo 1\/1000/ }).first().waitFor({ timeout: 120_000 });
  await vs.shot('ppo-running');
  const t0 = Date.now();
  await runCommand(page, 'RLHF: Cancel Training');
  await page.locator('.notifications-toasts', { hasText: 'cancelled at a checkpoint' }).waitFor({ timeout: 60_000 });
  const seconds = (Date.now() - t0) / 1000;
  const runs = path.join(vs.workspace, '.rlhf', 'runs');
  const [id] = fs.readdirSync(runs).filter((d) => d.startsWith('ppo-'));
  const info = JSON.parse(fs.readFileSync(path.join(runs, id, 'run.json'), 'utf8'));
  const ckpts = fs.readdirSync(path.join(runs, id, 'checkpoints')).filter((d) => d.startsWith('step-'));
  console.log(`# PPO cancelled from the editor in ${seconds.toFixed(1)} s, at ${ckpts.join(', ')}`);
  assert.equal(info.status, 'cancelled');
  assert.ok(ckpts.length >= 1);
  assert.ok(seconds < 30, `${seconds} s`);
  assert.ok(!fs.existsSync(path.join(runs, id, 'run.lock')), 'the run lock is released');
  await vs.shot('ppo-cancelled');
});
