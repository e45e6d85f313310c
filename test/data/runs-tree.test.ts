import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { RunDir } from '../../src/data/run';
import { writeClusterJob } from '../../src/data/cluster-run';
import { age, checkpointNodes, keyMetric, listRuns, runNodes, runStageNodes } from '../../src/data/runs-tree';

test('runs are grouped by stage with status, key metric and age; checkpoints are their children', () => {
  const root = tmpDir();
  const a = RunDir.create(root, { stage: 'sft', config: {} }, 'sft-a');
  a.appendMetrics({ step: 1, time: 0, loss: 2 });
  a.appendMetrics({ step: 2, time: 0, loss: 1.5, 'eval/loss': 1.75 });
  a.update({ status: 'completed', ended_at: new Date(Date.now() - 3 * 3600e3).toISOString() });
  fs.mkdirSync(path.join(a.checkpointsDir, 'final'));
  fs.writeFileSync(path.join(a.checkpointsDir, 'final', 'config.json'), '{}');
  const b = RunDir.create(root, { stage: 'rm', config: {} }, 'rm-b');
  b.appendMetrics({ step: 1, time: 0, loss: 0.6, accuracy: 0.7 });
  fs.mkdirSync(b.stepCheckpointDir(1));
  fs.writeFileSync(path.join(b.stepCheckpointDir(1), 'trainer_state.json'), '{}');
  b.update({ status: 'cancelled' });
  fs.mkdirSync(path.join(root, 'not-a-run'));
  const runs = listRuns(root);
  assert.deepEqual(runStageNodes(runs).map((n) => n.label), ['SFT', 'Reward model']);
  const sft = runNodes(runs, 'sft');
  assert.equal(sft[0].label, 'sft-a');
  assert.equal((sft[0] as { description: string }).description, 'completed · eval loss 1.750 · 3 h ago');
  assert.equal((sft[0] as { resumable: boolean }).resumable, false);
  const rm = runNodes(runs, 'rm');
  assert.match((rm[0] as { description: string }).description, /^cancelled · acc 0\.700 · /);
  assert.equal((rm[0] as { resumable: boolean }).resumable, true);
  assert.deepEqual(checkpointNodes(runs.find((r) => r.info.id === 'rm-b')!).map((c) => c.label), ['step 1']);
  assert.deepEqual(checkpointNodes(runs.find((r) => r.info.id === 'sft-a')!).map((c) => c.label), ['final']);
});

test('key metrics per stage, and ages', () => {
  assert.equal(keyMetric('ppo', [{ 'objective/scores': 1.23456, 'objective/kl': 4.5 }]), 'score 1.235 · KL 4.50');
  assert.equal(keyMetric('pretrain', [{ loss: 3 }]), 'loss 3.000');
  assert.equal(keyMetric('rm', [{ accuracy: 0.5 }, { 'eval/accuracy': 0.8 }]), 'eval acc 0.800');
  const now = Date.parse('2026-11-29T12:00:00Z');
  assert.equal(age('2026-11-29T11:59:30Z', now), 'just now');
  assert.equal(age('2026-11-29T11:30:00Z', now), '30 min ago');
  assert.equal(age('2026-11-27T12:00:00Z', now), '2 d ago');
  assert.equal(keyMetric('grpo', [{ reward: 0.5, kl: 0.25 }]), 'reward 0.500 · KL 0.25');
  assert.equal(keyMetric('rloo', [{ reward: 1 }]), 'reward 1.000');
});

test('a run whose model was compared blind shows the result in its tooltip (win rate, interval, against which model)', async () => {
  const ws = tmpDir(), runs = path.join(ws, '.rlhf', 'runs');
  const run = RunDir.create(runs, { stage: 'ppo', config: {} }, 'ppo-1');
  fs.mkdirSync(path.join(run.dir, 'checkpoints', 'final'), { recursive: true });
  fs.writeFileSync(path.join(run.dir, 'checkpoints', 'final', 'config.json'), '{}');
  RunDir.create(runs, { stage: 'sft', config: {} }, 'sft-1');
  const { voteRecord } = await import('../../src/data/evaluation');
  const me = '.rlhf/runs/ppo-1/checkpoints/final', sft = 'models/sft';
  const votes = path.join(ws, 'data', 'evaluations.rm.jsonl');
  fs.mkdirSync(path.dirname(votes));
  const lines = (['left', 'left', 'left', 'right', 'tie'] as const).map((verdict, item) =>
    JSON.stringify({ ...voteRecord({ prompt: 'p', left: { model: me, response: 'a' }, right: { model: sft, response: 'b' }, verdict, annotator: 'ann', seed: item, item }), evaluation: 'e1' }));
  fs.writeFileSync(votes, lines.join('\n') + '\n');
  const all = listRuns(runs, { workspace: ws, files: [votes, path.join(ws, 'missing.rm.jsonl')] });
  const ppo = all.find((r) => r.info.id === 'ppo-1')!;
  // 3 wins, 1 loss, 1 tie: 3.5 of 5; Wilson by hand: centre 0.6131, half-width 0.3143
  assert.deepEqual(ppo.evaluations, ['blind e1: .rlhf/runs/ppo-1/checkpoints/final wins 70.0% [95% CI 29.9%, 92.7%] against models/sft (5 votes)']);
  assert.equal(all.find((r) => r.info.id === 'sft-1')!.evaluations, undefined);
  const [node] = runNodes(all, 'ppo');
  assert.match(node.kind === 'run' ? node.tooltip : '', /blind e1: .* wins 70\.0%/);
});

test('cluster runs: a queued job shows before its stage has started, then its Slurm state beside the run\'s own', () => {
  const root = tmpDir();
  const now = new Date().toISOString();
  // queued, the stage not started: only slurm.json
  fs.mkdirSync(path.join(root, 'dpo-0'));
  writeClusterJob(path.join(root, 'dpo-0'), { scheduler: 'slurm', job_id: '7_0', stage: 'dpo', argv: ['dpo'], script: 'job.sh', submitted_at: now, sweep: { index: 0, values: { beta: '0.1' } }, state: { name: 'PENDING', reason: 'Resources', updated_at: now } });
  // running on n2
  const b = RunDir.create(root, { stage: 'dpo', config: {} }, 'dpo-1');
  writeClusterJob(b.dir, { scheduler: 'slurm', job_id: '7_1', stage: 'dpo', argv: ['dpo'], script: 'job.sh', submitted_at: now, state: { name: 'RUNNING', node: 'n2', updated_at: now } });
  // the job failed before the stage could record it: the run is failed, with the job's error
  const c = RunDir.create(root, { stage: 'dpo', config: {} }, 'dpo-2');
  writeClusterJob(c.dir, { scheduler: 'slurm', job_id: '9', stage: 'dpo', argv: ['dpo'], script: 'job.sh', submitted_at: now, state: { name: 'FAILED', exit_code: '1:0', error: 'rlhf dpo: no such file', updated_at: now } });
  // half-written by a submission in progress: not shown
  fs.mkdirSync(path.join(root, 'dpo-3'));
  writeClusterJob(path.join(root, 'dpo-3'), { scheduler: 'slurm', job_id: 'submitting', stage: 'dpo', argv: ['dpo'], script: 'job.sh', submitted_at: now });
  const nodes = runNodes(listRuns(root), 'dpo') as { label: string; status: string; description: string; tooltip: string; cluster?: boolean }[];
  const by = Object.fromEntries(nodes.map((n) => [n.label, n]));
  assert.deepEqual(Object.keys(by).sort(), ['dpo-0', 'dpo-1', 'dpo-2']);
  assert.equal(by['dpo-0'].status, 'pending');
  assert.match(by['dpo-0'].description, /^PENDING \(Resources\) · beta=0\.1 · /);
  assert.match(by['dpo-0'].tooltip, /Slurm: PENDING \(Resources\) · job 7_0/);
  assert.equal(by['dpo-1'].status, 'running');
  assert.match(by['dpo-1'].description, /^RUNNING on n2/);
  assert.equal(by['dpo-2'].status, 'failed');
  assert.match(by['dpo-2'].description, /^FAILED \(exit 1:0\)/);
  assert.match(by['dpo-2'].tooltip, /job error: rlhf dpo: no such file/);
  assert.ok(nodes.every((n) => n.cluster));
});
