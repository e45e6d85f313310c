import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyModel, testBackend, tmpDir } from '../../helpers';
import { GPT } from '../../../src/engine/model';
import { defaultConfig } from '../../../src/engine/config';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { saveModel, readModelDir } from '../../../src/engine/checkpoint';
import { trainRewardModel, resumeRewardModel } from '../../../src/engine/stages/rm';
import { ppoTrain, resumePpo } from '../../../src/engine/stages/ppo';
import { readSafetensors, serializeSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';
import { Rng } from '../../../src/engine/rng';
import { labelRecord } from '../../../src/engine/labeler/labeler';

before(testBackend);

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
const words = ['good', 'bad', 'nice', 'sad', 'fun', 'dull'];

/** A tiny policy, rankings from the simulated labeler, and prompts, in a fresh folder. */
async function fixture() {
  const root = tmpDir();
  await saveTinyModel(path.join(root, 'sft'), tok);
  const rng = new Rng(3);
  const rm = Array.from({ length: 30 }, () => JSON.stringify(labelRecord('say it', Array.from({ length: 3 }, () => `it was ${words[rng.int(6)]}`), rng)));
  fs.writeFileSync(path.join(root, 'toy.rm.jsonl'), rm.join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  return root;
}

const sameBytes = (a: string, b: string) => {
  const ta = readSafetensors(a).tensors, tb = readSafetensors(b).tensors;
  assert.deepEqual([...ta.keys()], [...tb.keys()]);
  for (const [k, t] of ta) assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(tb.get(k)!.data.buffer)), k);
};

test('reward model: trains on rankings, saves its score head and reward statistics; resume equals an uninterrupted run', async () => {
  const root = await fixture();
  const o = { data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), train: { steps: 6, batchSize: 4, checkpointInterval: 2, evalInterval: 3 } };
  const a = await trainRewardModel({ ...o, runsDir: path.join(root, 'a'), runId: 'rm' });
  let polls = 0;
  await trainRewardModel({ ...o, runsDir: path.join(root, 'b'), runId: 'rm' }, { shouldStop: () => ++polls > 3 });
  const b = new RunDir(path.join(root, 'b', 'rm'));
  assert.equal(b.read().status, 'cancelled');
  await resumeRewardModel(b.dir);
  sameBytes(path.join(a.finalModel!, 'model.safetensors'), path.join(b.dir, 'checkpoints', 'final', 'model.safetensors'));
  const loaded = readModelDir(a.finalModel!);
  assert.deepEqual(loaded.extra.get('score.weight')!.shape, [16, 1]);
  assert.ok(Number.isFinite(loaded.rawConfig.reward_mean as number) && (loaded.rawConfig.reward_std as number) > 0);
  const m = new RunDir(path.join(root, 'a', 'rm')).readMetrics();
  for (const k of ['loss', 'accuracy', 'margin', 'reward_mean', 'reward_std']) assert.ok(k in m[0], k);
  assert.ok('eval/accuracy' in m[2]);
  assert.deepEqual(b.readMetrics().map((x) => x.loss), m.map((x) => x.loss));
});

test('PPO: runs, logs TRL metric names, and a resumed run equals an uninterrupted one', async () => {
  const root = await fixture();
  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, 'runs'), runId: 'rm', train: { steps: 2, batchSize: 4 } });
  const o = { prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: rm.finalModel!, ppo: { iterations: 4, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 12, checkpointInterval: 2, klTarget: 3, klHorizon: 100 } };
  const a = await ppoTrain({ ...o, runsDir: path.join(root, 'a'), runId: 'ppo' });
  assert.equal(a.run.status, 'completed');
  let polls = 0;
  await ppoTrain({ ...o, runsDir: path.join(root, 'b'), runId: 'ppo' }, { shouldStop: () => ++polls > 2 });
  const b = new RunDir(path.join(root, 'b', 'ppo'));
  assert.equal(b.latestCheckpoint()!.step, 2);
  await resumePpo(b.dir);
  sameBytes(path.join(a.finalModel!, 'model.safetensors'), path.join(b.dir, 'checkpoints', 'final', 'model.safetensors'));
  sameBytes(path.join(root, 'a', 'ppo', 'checkpoints', 'step-000004', 'value', 'model.safetensors'), path.join(b.dir, 'checkpoints', 'step-000004', 'value', 'model.safetensors'));
  const ma = new RunDir(path.join(root, 'a', 'ppo')).readMetrics();
  const keys = ['objective/kl', 'objective/entropy', 'objective/scores', 'objective/rlhf_reward', 'objective/non_score_reward', 'policy/approxkl_avg', 'policy/clipfrac_avg', 'policy/entropy_avg', 'loss/policy_avg', 'loss/value_avg', 'val/clipfrac_avg', 'val/ratio', 'objective/kl_coef'];
  for (const k of keys) assert.ok(Number.isFinite(ma[3][k]), k);
  // samples.jsonl: the spec's fields for every step, and the same file after a resume (checked below)
  const samplesOf = (dir: string) => fs.readFileSync(path.join(dir, 'samples.jsonl'), 'utf8');
  const sa = samplesOf(path.join(root, 'a', 'ppo')).trim().split('\n').map((l) => JSON.parse(l));
  for (const k of ['step', 'prompt', 'response', 'score', 'kl', 'advantage']) assert.ok(k in sa[0], k);
  assert.equal(ma[0]['objective/kl'], 0, 'the first rollout comes from the reference itself');
  assert.notEqual(ma[3]['objective/kl_coef'], ma[0]['objective/kl_coef'], 'the adaptive controller moved beta');
  assert.deepEqual(b.readMetrics().map((x) => [x['objective/kl'], x['objective/scores'], x['objective/kl_coef']]), ma.map((x) => [x['objective/kl'], x['objective/scores'], x['objective/kl_coef']]));
  assert.equal(samplesOf(b.dir), samplesOf(path.join(root, 'a', 'ppo')), 'samples.jsonl of the resumed run equals the uninterrupted one');
});

test('bad inputs: ranks outside 1..K, a reward model of another vocabulary, no prompts: a clear message, nothing written', async () => {
  const root = await fixture();
  const runs = path.join(root, 'runs');
  fs.writeFileSync(path.join(root, 'bad.rm.jsonl'), JSON.stringify({ prompt: 'p', responses: ['a', 'b', 'c'], ranks: [1, 2, 4] }) + '\n');
  await assert.rejects(trainRewardModel({ data: path.join(root, 'bad.rm.jsonl'), model: path.join(root, 'sft'), runsDir: runs }), /bad\.rm\.jsonl:1: ranks must be integers from 1 to 3/);
  assert.ok(!fs.existsSync(runs), 'no run folder');
  const other = CharTokenizer.fromText('xyz');
  const m = GPT.init(defaultConfig({ n_layer: 1, n_head: 1, n_embd: 8, n_positions: 16, vocab_size: other.vocabSize }), 1);
  await saveModel(m, other, path.join(root, 'other'));
  m.dispose();
  await assert.rejects(ppoTrain({ prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: path.join(root, 'other'), runsDir: runs }), /another vocabulary/);
  fs.writeFileSync(path.join(root, 'empty.ppo.jsonl'), '\n');
  await assert.rejects(ppoTrain({ prompts: path.join(root, 'empty.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: path.join(root, 'sft'), runsDir: runs }), /has no prompts/);
  assert.ok(!fs.existsSync(runs), 'still no run folder');
});

test('NaN anywhere stops PPO with the step and the quantity, and marks the run failed', async () => {
  const root = await fixture();
  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, 'runs'), runId: 'rm', train: { steps: 1, batchSize: 4 } });
  const file = path.join(rm.finalModel!, 'model.safetensors');
  const t = readSafetensors(file).tensors;
  t.get('score.weight')!.data.fill(NaN);
  fs.writeFileSync(file, serializeSafetensors(t));
  await assert.rejects(
    ppoTrain({ prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: rm.finalModel!, runsDir: path.join(root, 'runs'), runId: 'ppo', ppo: { iterations: 2, promptsPerRollout: 1, samplesPerPrompt: 2, maxNewTokens: 6 } }),
    /^Error: step 1: [\w/ ]+ is NaN; stopped, the last good checkpoint is kept$/,
  );
  const info = new RunDir(path.join(root, 'runs', 'ppo')).read();
  assert.equal(info.status, 'failed');
  assert.match(info.error!, /step 1/);
});

test('reward-model training split across two threads matches one thread', async () => {
  const root = await fixture();
  const o = { data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), runsDir: root };
  await trainRewardModel({ ...o, runId: 't1', train: { steps: 3, batchSize: 5, threads: 1 } });
  await trainRewardModel({ ...o, runId: 't2', train: { steps: 3, batchSize: 5, threads: 2 } });
  const m1 = new RunDir(path.join(root, 't1')).readMetrics(), m2 = new RunDir(path.join(root, 't2')).readMetrics();
  m1.forEach((m, i) => {
    assert.ok(Math.abs(m.loss - m2[i].loss) < 1e-5, `step ${i + 1}: ${m.loss} vs ${m2[i].loss}`);
    assert.ok(Math.abs(m.accuracy - m2[i].accuracy) < 1e-9);
  });
});

test('PPO with a reward model saved as a LoRA adapter scores the same on the second thread as on one (the adapter goes there too)', async () => {
  const root = await fixture();
  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), lora: { r: 4 }, runsDir: path.join(root, 'runs'), runId: 'rm', train: { steps: 3, batchSize: 4, lr: 1e-2, threads: 1 } });
  assert.ok(fs.existsSync(path.join(rm.finalModel!, 'adapter_model.safetensors')), 'an adapter folder');
  const o = { prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: rm.finalModel!, runsDir: root, ppo: { iterations: 2, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 8, minibatches: 2 } };
  const timing = new Set(['time', 'tokens_per_second', 'generation_seconds', 'iteration_seconds']);
  const figures = (id: string) => new RunDir(path.join(root, id)).readMetrics().map((m) => Object.entries(m).filter(([k]) => !timing.has(k)));
  await ppoTrain({ ...o, runId: 'one', threads: 1 });
  await ppoTrain({ ...o, runId: 'two', threads: 2 });
  // before the fix the thread built the reward model from its base alone: other scores
  assert.deepEqual(figures('two'), figures('one'));
});

test('PPO with the critic and the reward model on a second thread gives the numbers and checkpoints of one thread (full and LoRA)', async () => {
  const root = await fixture();
  const rm = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, 'runs'), runId: 'rm', train: { steps: 2, batchSize: 4 } });
  const o = { prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: rm.finalModel!, runsDir: root, ppo: { iterations: 3, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 12, minibatches: 2, checkpointInterval: 3 } };
  const timing = new Set(['time', 'tokens_per_second', 'generation_seconds', 'iteration_seconds']);
  const figures = (id: string) => new RunDir(path.join(root, id)).readMetrics().map((m) => Object.entries(m).filter(([k]) => !timing.has(k)));
  for (const lora of [undefined, { r: 4 }]) {
    const tag = lora ? 'lora' : 'full';
    await ppoTrain({ ...o, lora, runId: `${tag}1`, threads: 1 });
    await ppoTrain({ ...o, lora, runId: `${tag}2`, threads: 2 });
    const one = figures(`${tag}1`), two = figures(`${tag}2`);
    assert.equal(one.length, 3);
    assert.deepEqual(two, one, `${tag}: every logged figure, to the last digit`);
    assert.ok(one.every((m) => Number.isFinite(Object.fromEntries(m)['loss/value_avg'])));
    const weights = lora ? 'adapter_model.safetensors' : 'model.safetensors';
    for (const sub of ['', 'value']) sameBytes(path.join(root, `${tag}1`, 'checkpoints', 'step-000003', sub, weights), path.join(root, `${tag}2`, 'checkpoints', 'step-000003', sub, weights));
  }
});

