import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, testBackend, tmpDir, writeToyWorkspace } from '../helpers';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { trainRewardModel } from '../../src/engine/stages/rm';
import { RunDir } from '../../src/data/run';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
let root = '';

before(async () => {
  await testBackend();
  root = tmpDir();
  await writeToyWorkspace(root, tok);
  fs.writeFileSync(path.join(root, 'corpus.txt'), 'call me ishmael. some years ago, never mind how long precisely. '.repeat(200));
  await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), train: { steps: 2, batchSize: 4 }, runsDir: path.join(root, 'runs'), runId: 'rm-fixture' });
});

const common = ['--json', '--backend', 'wasm', '--runs-dir'];
const stages: Record<string, () => string[]> = {
  pretrain: () => ['pretrain', '--corpus', path.join(root, 'corpus.txt'), '--layers', '1', '--heads', '2', '--embd', '16', '--block', '32', '--steps', '100000', '--batch-size', '2', '--checkpoint-interval', '0'],
  sft: () => ['sft', '--data', path.join(root, 'toy.sft.jsonl'), '--model', path.join(root, 'sft'), '--steps', '100000', '--batch-size', '2', '--checkpoint-interval', '0', '--threads', '1'],
  rm: () => ['rm', '--data', path.join(root, 'toy.rm.jsonl'), '--model', path.join(root, 'sft'), '--steps', '100000', '--batch-size', '2', '--checkpoint-interval', '0', '--threads', '1'],
  dpo: () => ['dpo', '--data', path.join(root, 'toy.rm.jsonl'), '--model', path.join(root, 'sft'), '--steps', '100000', '--batch-size', '2', '--checkpoint-interval', '0'],
  grpo: () => ['grpo', '--prompts', path.join(root, 'toy.ppo.jsonl'), '--policy', path.join(root, 'sft'), '--reward-model', path.join(root, 'runs', 'rm-fixture', 'checkpoints', 'final'), '--iterations', '100000', '--prompts-per-step', '2', '--num-generations', '2', '--max-new-tokens', '6', '--checkpoint-interval', '0'],
  rloo: () => ['rloo', '--prompts', path.join(root, 'toy.ppo.jsonl'), '--policy', path.join(root, 'sft'), '--reward-model', path.join(root, 'runs', 'rm-fixture', 'checkpoints', 'final'), '--iterations', '100000', '--prompts-per-step', '2', '--num-generations', '2', '--max-new-tokens', '6', '--checkpoint-interval', '0'],
  ppo: () => ['ppo', '--prompts', path.join(root, 'toy.ppo.jsonl'), '--policy', path.join(root, 'sft'), '--reward-model', path.join(root, 'runs', 'rm-fixture', 'checkpoints', 'final'), '--iterations', '100000', '--prompts-per-rollout', '2', '--samples-per-prompt', '2', '--max-new-tokens', '6', '--checkpoint-interval', '0'],
};

/** Starts a stage, sends `signal` once it has made `atStep` steps; resolves with what happened. */
function runUntil(argv: string[], atStep: number, onStep: (p: ReturnType<typeof spawn>, step: number) => void) {
  return new Promise<{ code: number | null; signalledAt: number; exitedAt: number; stepAtSignal: number; out: string }>((resolve) => {
    const p = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', buf = '', signalledAt = 0, stepAtSignal = -1;
    p.stdout!.on('data', (d) => {
      out += d;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = line.startsWith('{') ? JSON.parse(line) : undefined;
        if (m?.type === 'progress' && m.step >= atStep && !signalledAt) {
          signalledAt = Date.now();
          stepAtSignal = m.step;
          onStep(p, m.step);
        }
      }
    });
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code, signalledAt, exitedAt: Date.now(), stepAtSignal, out }));
  });
}

for (const stage of Object.keys(stages)) {
  test(`Ctrl-C stops ${stage} within a step, with a checkpoint to resume from`, { timeout: 120_000 }, async () => {
    const id = `cancel-${stage}`;
    const r = await runUntil([...stages[stage](), ...common, path.join(root, 'runs'), '--run-id', id], 2, (p) => p.kill('SIGINT'));
    assert.ok(r.signalledAt, `the stage never reported step 2:\n${r.out}`);
    const run = new RunDir(path.join(root, 'runs', id));
    assert.equal(run.read().status, 'cancelled', r.out);
    const last = run.latestCheckpoint();
    // Steps of these toy runs take a millisecond or less, so the stage may finish a few more before
    // the signal even arrives. Its progress lines carry the wall-clock time each step ended: the
    // steps done by the moment the signal was sent, plus the one under way, are all it may make.
    const ends = r.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((m) => m.type === 'progress');
    const doneAtSignal = Math.max(r.stepAtSignal, ...ends.filter((m) => m.time * 1000 <= r.signalledAt).map((m) => m.step));
    assert.ok(last && last.step <= doneAtSignal + 1, `stopped at step ${last?.step}; ${doneAtSignal} steps were done when the signal was sent`);
    console.log(`# ${stage}: SIGINT at step ${r.stepAtSignal} (${doneAtSignal} done by then), stopped at step ${last!.step} with a checkpoint, ${r.exitedAt - r.signalledAt} ms after the signal`);
    assert.ok(!fs.existsSync(run.lockFile), 'the run lock is released');
  });
}

test('resume of a run that is still running refuses with one line naming the run and its process', { timeout: 120_000 }, async () => {
  const id = 'live-sft';
  const dir = path.join(root, 'runs', id);
  let second: ReturnType<typeof spawnSync> | undefined;
  const r = await runUntil([...stages.sft(), '--checkpoint-interval', '1', ...common, path.join(root, 'runs'), '--run-id', id], 2, (p) => {
    second = spawnSync(process.execPath, [CLI, 'resume', dir, '--backend', 'wasm'], { encoding: 'utf8' });
    p.kill('SIGINT');
  });
  assert.ok(second, r.out);
  assert.notEqual(second.status, 0);
  const lines = String(second.stderr).trimEnd().split('\n');
  assert.equal(lines.length, 1, String(second.stderr));
  assert.match(lines[0], new RegExp(`live-sft is being written by pid \\d+ on .* since`));
  // the first process was not disturbed: it stopped cleanly, and the run resumes once it is gone
  assert.equal(new RunDir(dir).read().status, 'cancelled');
  const third = spawnSync(process.execPath, [CLI, 'resume', dir, '--backend', 'wasm', '--json'], { encoding: 'utf8', timeout: 3000, killSignal: 'SIGINT' });
  assert.doesNotMatch(String(third.stderr), /being written by/);
});

test('a resumed run goes on on the backend it started on; when that one does not start here, one line says so', { timeout: 120_000 }, async () => {
  const id = 'cpu-sft';
  const dir = path.join(root, 'runs', id);
  const r = await runUntil([...stages.sft(), '--checkpoint-interval', '1', '--json', '--backend', 'cpu', '--runs-dir', path.join(root, 'runs'), '--run-id', id], 2, (p) => p.kill('SIGINT'));
  assert.equal(new RunDir(dir).read().status, 'cancelled', r.out);
  assert.equal(new RunDir(dir).read().backend, 'cpu');
  // no --backend: the recorded one (the run's own stop after 3 s, by SIGINT, is a checkpoint)
  const resume = () => spawnSync(process.execPath, [CLI, 'resume', dir], { encoding: 'utf8', timeout: 3000, killSignal: 'SIGINT' });
  assert.match(String(resume().stderr), /^backend: cpu — /m);
  new RunDir(dir).update({ backend: 'gpu', status: 'cancelled' });
  const moved = String(resume().stderr);
  assert.match(moved, /^the run started on the gpu backend, which does not start here \(.*\); resuming on auto: from here its numbers may differ from an uninterrupted run's$/m);
  assert.match(moved, /^backend: (wasm|cpu|node|webgpu) — /m);
});
