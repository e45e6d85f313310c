import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend, tmpDir } from '../../helpers';
import { pretrain, resumePretrain } from '../../../src/engine/stages/pretrain';
import { defaultCorpusPath } from '../../../src/engine/stages/common';
import { readSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';

before(testBackend);

const model = { n_layer: 2, n_head: 2, n_embd: 32, n_positions: 32, dropout: 0.1 };

function corpus(chars: number): string {
  const file = path.join(tmpDir(), 'moby.txt');
  fs.writeFileSync(file, fs.readFileSync(defaultCorpusPath(), 'utf8').slice(5000, 5000 + chars));
  return file;
}

test('loss falls when pretraining on the Moby-Dick corpus', async () => {
  const root = tmpDir();
  const r = await pretrain({ corpus: corpus(200_000), model: { ...model, dropout: 0 }, runsDir: root, runId: 'p', train: { steps: 150, batchSize: 8, lr: 3e-3, warmupSteps: 10, evalInterval: 50 } });
  const m = new RunDir(path.join(root, 'p')).readMetrics();
  assert.equal(m.length, 150);
  const first = m[0].loss, lastEval = m[149]['eval/loss'];
  assert.ok(first > 4, `starts near ln(vocab): ${first}`);
  assert.ok(lastEval < 3.0, `held-out loss after 150 steps: ${lastEval}`);
  assert.equal(r.run.status, 'completed');
  for (const k of ['loss', 'learning_rate', 'grad_norm', 'tokens_per_second', 'step', 'time']) assert.ok(k in m[5], k);
});

test('resume equals an uninterrupted run, bit for bit', async () => {
  const text = corpus(30_000);
  const train = { steps: 6, batchSize: 4, lr: 1e-3, warmupSteps: 2, evalInterval: 3, checkpointInterval: 2, gradAccum: 2 };
  const a = tmpDir(), b = tmpDir();
  await pretrain({ corpus: text, model, runsDir: a, runId: 'r', train });
  let polls = 0;
  await pretrain({ corpus: text, model, runsDir: b, runId: 'r', train }, { shouldStop: () => ++polls > 3 });
  const runB = new RunDir(path.join(b, 'r'));
  assert.equal(runB.read().status, 'cancelled');
  assert.equal(runB.latestCheckpoint()!.step, 3);
  const tensorsBefore = tf.memory().numTensors;
  await resumePretrain(runB.dir);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left behind by a whole run');
  assert.equal(runB.read().status, 'completed');
  const wa = readSafetensors(path.join(a, 'r', 'checkpoints', 'final', 'model.safetensors')).tensors;
  const wb = readSafetensors(path.join(b, 'r', 'checkpoints', 'final', 'model.safetensors')).tensors;
  for (const [name, t] of wa) assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(wb.get(name)!.data.buffer)), name);
  const oa = readSafetensors(path.join(a, 'r', 'checkpoints', 'step-000006', 'optimizer.safetensors')).tensors;
  const ob = readSafetensors(path.join(b, 'r', 'checkpoints', 'step-000006', 'optimizer.safetensors')).tensors;
  for (const [name, t] of oa) assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(ob.get(name)!.data.buffer)), name);
  const la = new RunDir(path.join(a, 'r')).readMetrics().map((m) => [m.step, m.loss, m['eval/loss']]);
  const lb = runB.readMetrics().map((m) => [m.step, m.loss, m['eval/loss']]);
  assert.deepEqual(lb, la, 'metrics.jsonl reads as one uninterrupted run');
});

test('data-parallel gradients over two threads match one thread', async () => {
  const text = corpus(30_000);
  const root = tmpDir();
  const train = { steps: 3, batchSize: 5, lr: 1e-3, warmupSteps: 1 };
  await pretrain({ corpus: text, model: { ...model, dropout: 0 }, runsDir: root, runId: 't1', train: { ...train, threads: 1 } });
  await pretrain({ corpus: text, model: { ...model, dropout: 0 }, runsDir: root, runId: 't2', train: { ...train, threads: 2 } });
  const a = new RunDir(path.join(root, 't1')).readMetrics(), b = new RunDir(path.join(root, 't2')).readMetrics();
  a.forEach((m, i) => {
    assert.ok(Math.abs(m.loss - b[i].loss) < 1e-4, `step ${i + 1}: loss ${m.loss} vs ${b[i].loss}`);
    assert.ok(Math.abs(m.grad_norm - b[i].grad_norm) < 1e-3 * m.grad_norm, `step ${i + 1}: grad_norm ${m.grad_norm} vs ${b[i].grad_norm}`);
  });
});
