import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyLlama, testBackend, tmpDir } from '../../helpers';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { readModelDir } from '../../../src/engine/checkpoint';
import { sft, resumeSft } from '../../../src/engine/stages/sft';
import { trainRewardModel } from '../../../src/engine/stages/rm';
import { ppoTrain } from '../../../src/engine/stages/ppo';
import { readSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';
import { Rng } from '../../../src/engine/rng';
import { labelRecord } from '../../../src/engine/labeler/labeler';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
const words = ['good', 'bad', 'nice', 'sad', 'fun', 'dull'];

function data(root: string) {
  const sftLines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `say ${'abc'[i % 3]}`, response: `${'abc'[i % 3]}${'abc'[i % 3]}.` }));
  fs.writeFileSync(path.join(root, 'toy.sft.jsonl'), sftLines.join('\n') + '\n');
  const rng = new Rng(3);
  const rm = Array.from({ length: 30 }, () => JSON.stringify(labelRecord('say it', Array.from({ length: 3 }, () => `it was ${words[rng.int(6)]}`), rng)));
  fs.writeFileSync(path.join(root, 'toy.rm.jsonl'), rm.join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
}

const metrics = (dir: string) => new RunDir(dir).readMetrics();

test('SFT -> reward model -> PPO on a Llama-layout model, on the CPU', async () => {
  const root = tmpDir();
  data(root);
  await saveTinyLlama(path.join(root, 'base'), tok, 3);
  const s = await sft({ data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'base'), runsDir: path.join(root, 'runs'), runId: 'sft', train: { steps: 30, batchSize: 8, lr: 1e-2, warmupSteps: 2, evalInterval: 5 } });
  assert.equal(s.run.status, 'completed');
  const m = metrics(path.join(root, 'runs', 'sft')).filter((x) => 'eval/loss' in x);
  assert.ok(m[m.length - 1]['eval/loss'] < 0.5 * m[0]['eval/loss'], `eval/loss ${m[0]['eval/loss']} -> ${m[m.length - 1]['eval/loss']}`);
  const sftModel = readModelDir(s.finalModel!);
  assert.equal(sftModel.config.arch, 'llama');
  assert.ok(readSafetensors(path.join(s.finalModel!, 'model.safetensors')).tensors.has('model.layers.1.mlp.gate_proj.weight'));

  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: s.finalModel!, runsDir: path.join(root, 'runs'), runId: 'rm', train: { steps: 6, batchSize: 4 } });
  assert.equal(rm.run.status, 'completed');
  const rmDir = readModelDir(rm.finalModel!);
  assert.deepEqual(rmDir.extra.get('score.weight')!.shape, [1, 16], 'LlamaForSequenceClassification: score [num_labels, hidden]');
  assert.equal((rmDir.rawConfig.architectures as string[])[0], 'LlamaForSequenceClassification');

  const ppo = await ppoTrain({ prompts: path.join(root, 'toy.ppo.jsonl'), policy: s.finalModel!, rewardModel: rm.finalModel!, runsDir: path.join(root, 'runs'), runId: 'ppo', ppo: { iterations: 3, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 8, klTarget: 3, klHorizon: 100 } });
  assert.equal(ppo.run.status, 'completed');
  const pm = metrics(path.join(root, 'runs', 'ppo'));
  assert.equal(pm.length, 3);
  for (const k of ['objective/kl', 'objective/scores', 'loss/policy_avg', 'loss/value_avg']) assert.ok(Number.isFinite(pm[2][k]), k);
  assert.equal(pm[0]['objective/kl'], 0, 'the first rollout comes from the reference itself');
  assert.equal(readModelDir(ppo.finalModel!).config.arch, 'llama');
});

test('SFT of a Qwen2-layout model: a resumed run equals an uninterrupted one', async () => {
  const root = tmpDir();
  data(root);
  await saveTinyLlama(path.join(root, 'base'), tok, 4, 'qwen2');
  const o = { data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'base'), train: { steps: 6, batchSize: 4, checkpointInterval: 2, evalInterval: 3 } };
  const a = await sft({ ...o, runsDir: path.join(root, 'a'), runId: 'sft' });
  let polls = 0;
  await sft({ ...o, runsDir: path.join(root, 'b'), runId: 'sft' }, { shouldStop: () => ++polls > 3 });
  const b = path.join(root, 'b', 'sft');
  assert.equal(new RunDir(b).read().status, 'cancelled');
  await resumeSft(b);
  const ta = readSafetensors(path.join(a.finalModel!, 'model.safetensors')).tensors;
  const tb = readSafetensors(path.join(b, 'checkpoints', 'final', 'model.safetensors')).tensors;
  assert.ok(ta.has('model.layers.0.self_attn.q_proj.bias'));
  for (const [k, t] of ta) assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(tb.get(k)!.data.buffer)), k);
});
