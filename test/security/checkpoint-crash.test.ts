import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { RunDir } from '../../src/data/run';

// A child process replaces step-000002 (holding "old") by a checkpoint holding "new" and is killed
// (SIGKILL) at one point of the sequence; then the run is opened for resume as `rlhf resume` does.
const WRITER = `
  const { writeDirAtomic } = require(${JSON.stringify(path.resolve(__dirname, '../../src/data/durable.ts'))});
  writeDirAtomic(process.argv[1], (tmp) => {
    require('fs').writeFileSync(tmp + '/model.safetensors', 'new');
    require('fs').writeFileSync(tmp + '/trainer_state.json', '{"step": 2}');
  });`;

function crashAt(point: string) {
  const run = new RunDir(path.join(tmpDir(), 'run'));
  const ckpt = run.stepCheckpointDir(2);
  fs.mkdirSync(ckpt, { recursive: true });
  fs.writeFileSync(path.join(ckpt, 'model.safetensors'), 'old');
  fs.writeFileSync(path.join(ckpt, 'trainer_state.json'), '{"step": 2}');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', WRITER, ckpt], { env: { ...process.env, RLHF_TEST_CRASH_AT: point }, encoding: 'utf8' });
  return { run, ckpt, r };
}

for (const [point, expect] of [['filled', 'old'], ['old-aside', 'new'], ['new-in-place', 'new'], ['none', 'new']] as const) {
  test(`a checkpoint write killed at "${point}" leaves one good checkpoint (${expect}); resume keeps it`, () => {
    const { run, ckpt, r } = crashAt(point);
    if (point !== 'none') assert.equal(r.signal, 'SIGKILL', r.stderr);
    run.cleanTemporary(); // what resume does first
    assert.deepEqual(run.stepCheckpoints().map((c) => c.step), [2], 'the checkpoint is there');
    assert.equal(fs.readFileSync(path.join(ckpt, 'model.safetensors'), 'utf8'), expect);
    assert.deepEqual(fs.readdirSync(run.checkpointsDir), ['step-000002'], 'nothing temporary left');
  });
}
