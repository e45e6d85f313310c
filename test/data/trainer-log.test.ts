/**
 * A Trainer's log (trainer_state.json) read as this project's metrics rows, on the file a real TRL
 * run wrote (test/fixtures/trl: an SFTTrainer LoRA run, checkpoint-2800).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from '../helpers';
import { findTrainerState, readTrainerLog } from '../../src/data/trainer-log';
import { parseHostToDashboard } from '../../src/protocol/dashboard';

const REAL = path.join(FIXTURES, 'trl', 'trainer_state.json');
const history = () => (JSON.parse(fs.readFileSync(REAL, 'utf8')) as { log_history: Record<string, number>[] }).log_history;

test('a real TRL SFT log: one row per step, every logged number under its name (eval_x as eval/x), stage sft', () => {
  const log = readTrainerLog(REAL);
  const h = history();
  assert.equal(log.stage, 'sft');
  assert.equal(log.globalStep, 2800);
  assert.deepEqual(log.rows.map((r) => r.step), [...new Set(h.map((e) => e.step))].sort((a, b) => a - b), 'one row per logged step, in order');
  const byStep = new Map(log.rows.map((r) => [r.step, r]));
  for (const e of h) {
    for (const [k, v] of Object.entries(e)) {
      if (k === 'step') continue;
      const name = k.startsWith('eval_') ? `eval/${k.slice(5)}` : k;
      assert.equal(byStep.get(e.step)![name], v, `step ${e.step}: ${k}`);
    }
  }
  // a step with both a training entry and an evaluation is one row holding both
  const both = log.rows.filter((r) => 'loss' in r && 'eval/loss' in r);
  assert.ok(both.length > 0);
  // no summary entry in a checkpoint's state: every row carries the file's time, and says so
  assert.equal(log.time, 'the file time (the log records none)');
  assert.ok(log.rows.every((r) => r.time === fs.statSync(REAL).mtimeMs / 1000));
});

test('the end-of-training summary sets the run\'s length; rows are placed in time by their step', () => {
  const dir = tmpDir();
  const state = JSON.parse(fs.readFileSync(REAL, 'utf8'));
  // the entry Trainer.train() appends when training ends
  state.log_history.push({ epoch: 2, step: 2800, total_flos: 7.1e16, train_loss: 1.3, train_runtime: 5600, train_samples_per_second: 2, train_steps_per_second: 0.5 });
  const file = path.join(dir, 'trainer_state.json');
  fs.writeFileSync(file, JSON.stringify(state));
  const log = readTrainerLog(file);
  assert.equal(log.summary.train_runtime, 5600);
  assert.ok(!log.rows.some((r) => 'train_runtime' in r || 'total_flos' in r), 'the summary is not a logging step');
  assert.equal(log.time, 'interpolated from train_runtime');
  assert.ok(Math.abs(log.endedAt - log.startedAt - 5600) < 1e-6);
  const r = log.rows.find((x) => x.step === 1400)!;
  assert.ok(Math.abs(r.time - (log.startedAt + 2800)) < 1e-6, 'step 1400 of 2800 is half-way through');
  // the rows make a valid dashboard message (times are numbers, never null)
  const msg = parseHostToDashboard({ type: 'points', run: 'x', reset: true, step: log.rows.map((x) => x.step), time: log.rows.map((x) => x.time), metrics: { loss: log.rows.map((x) => x.loss ?? null) } });
  assert.ok(msg, 'the dashboard accepts the points');
});

test('the log is found in the folder or in its latest checkpoint-N/; a file without log_history is refused in one line', () => {
  const dir = tmpDir();
  for (const n of ['checkpoint-200', 'checkpoint-1000', 'checkpoint-900']) {
    fs.mkdirSync(path.join(dir, n));
    fs.copyFileSync(REAL, path.join(dir, n, 'trainer_state.json'));
  }
  fs.mkdirSync(path.join(dir, 'checkpoint-5000')); // no state in it
  assert.equal(findTrainerState(dir), path.join(dir, 'checkpoint-1000', 'trainer_state.json'));
  fs.copyFileSync(REAL, path.join(dir, 'trainer_state.json'));
  assert.equal(findTrainerState(dir), path.join(dir, 'trainer_state.json'));
  assert.equal(findTrainerState(tmpDir()), undefined);
  const bad = path.join(tmpDir(), 'trainer_state.json');
  fs.writeFileSync(bad, '{"global_step": 3}');
  assert.throws(() => readTrainerLog(bad), /has no log_history: not a Trainer's trainer_state\.json$/);
});
