import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyChatLlama, testBackend, tmpDir } from '../helpers';
import { configFromJson, parameterCount } from '../../src/engine/config';
import { checkStageMemory, dataParallel, estimateBytes, threadBytes } from '../../src/engine/memory';
import { sft } from '../../src/engine/stages/sft';
import { trainRewardModel } from '../../src/engine/stages/rm';
import { ppoTrain } from '../../src/engine/stages/ppo';
import { dpo } from '../../src/engine/stages/dpo';
import { grpoTrain } from '../../src/engine/stages/grpo';
import { rlooTrain } from '../../src/engine/stages/rloo';
import { labelRecord } from '../../src/engine/labeler/labeler';
import { Rng } from '../../src/engine/rng';

before(testBackend);

const smol = (o: Record<string, unknown> = {}) => configFromJson({
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
  vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, rms_norm_eps: 1e-5, tie_word_embeddings: true, ...o,
});

test("parameter counts from config.json alone: SmolLM2-135M's published 134,515,008", () => {
  assert.equal(parameterCount(smol()), 134_515_008);
});

test('memory estimate: weights, gradients, AdamW state and activations; LoRA trains a small fraction', () => {
  const full = estimateBytes(smol(), { models: 1, trained: 1, batchSize: 4, seq: 256, loraR: 0 }, 'cpu');
  assert.equal(full.weights, 4 * 134_515_008);
  assert.equal(full.optimizer, 2 * full.grads);
  const lora = estimateBytes(smol(), { models: 1, trained: 1, batchSize: 4, seq: 256, loraR: 16 }, 'cpu');
  assert.ok(lora.grads < full.grads / 20, `LoRA gradients ${lora.grads} vs ${full.grads}`);
});

test('a stage that cannot fit is refused in one line naming what would fit (LoRA, a smaller batch, another backend)', () => {
  // SmolLM2-360M's shape, full fine-tuning at batch 8 x 256 tokens: over the wasm backend's 4 GiB
  const big = smol({ hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5 });
  assert.throws(() => checkStageMemory(big, { models: 1, trained: 1, batchSize: 8, seq: 256, loraR: 0 }, 'wasm', 64 * 2 ** 30),
    /this stage needs about [\d.]+ GiB \(weights [\d.]+ GiB, gradients 1\.3 GiB, optimizer 2\.7 GiB, activations [\d.]+ GiB\), more than the WebAssembly backend's memory \(4 GiB, 3\.5 GiB of it usable\) allows; what would fit: .*another backend/);
  assert.throws(() => checkStageMemory(big, { models: 1, trained: 1, batchSize: 4, seq: 128, loraR: 0 }, 'wasm', 3.5 * 2 ** 30), /more than this machine's free memory \(3\.5 GiB\) allows; what would fit: LoRA/);
  assert.doesNotThrow(() => checkStageMemory(big, { models: 1, trained: 1, batchSize: 1, seq: 128, loraR: 16 }, 'wasm', 64 * 2 ** 30));
});

test('an SFT run that cannot fit the free memory stops before its run folder exists', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'm'));
  fs.writeFileSync(path.join(root, 'd.sft.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `p${i}`, response: 'r' })).join('\n') + '\n');
  process.env.RLHF_FREE_MEMORY_BYTES = '1000';
  try {
    await assert.rejects(sft({ data: path.join(root, 'd.sft.jsonl'), model: path.join(root, 'm'), runsDir: path.join(root, 'runs'), runId: 'x' }), /more than this machine's free memory/);
  } finally {
    delete process.env.RLHF_FREE_MEMORY_BYTES;
  }
  assert.ok(!fs.existsSync(path.join(root, 'runs', 'x')));
});

test('other threads\' heaps count: a data-parallel replica with its share of the batch, on the machine\'s memory', () => {
  assert.deepEqual(dataParallel(2, 8), { count: 1, batchSize: 4, models: 1, trained: 1, lmHead: true });
  assert.deepEqual(dataParallel(2, 5)?.batchSize, 3, 'the first part gets the extra row');
  assert.equal(dataParallel(1, 8), undefined);
  assert.equal(dataParallel(2, 1), undefined, 'one row is not split');
  const m = { models: 1, trained: 1, batchSize: 4, seq: 256, loraR: 0 };
  // the native backend: the machine's memory is the one limit
  const main = estimateBytes(smol(), m, 'node').total;
  const withThread = { ...m, threads: dataParallel(2, 4) };
  const other = threadBytes(smol(), withThread, 'node');
  const alone = estimateBytes(smol(), { ...m, batchSize: 2 }, 'node');
  assert.equal(other, alone.total - alone.optimizer, 'a replica: weights, gradients and activations of its half, no optimizer state');
  // free memory for the main heap but not for both
  const free = (main + other / 2) / 0.9;
  assert.doesNotThrow(() => checkStageMemory(smol(), m, 'node', free));
  assert.throws(() => checkStageMemory(smol(), withThread, 'node', free), /needs about [\d.]+ GiB \(weights .*\), and [\d.]+ GiB on each of 1 other thread, more than this machine's free memory \([\d.]+ GiB\) allows; what would fit: --threads 1 \(no second heap: about [\d.]+ GiB\)/);
});

test('PPO counts its second thread (critic and reward model copies), SFT, RM and DPO their replicas, GRPO and RLOO their frozen models\' copies; --threads 1 does not', async () => {
  const root = tmpDir();
  const model = path.join(root, 'm');
  await saveTinyChatLlama(model);
  fs.writeFileSync(path.join(root, 'p.ppo.jsonl'), ['say it', 'go on'].map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'd.sft.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `p${i}`, response: 'r' })).join('\n') + '\n');
  const rng = new Rng(3);
  fs.writeFileSync(path.join(root, 'd.rm.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify(labelRecord(`p${i}`, ['it was good', 'it was bad', 'so so'], rng))).join('\n') + '\n');
  const rm = await trainRewardModel({ data: path.join(root, 'd.rm.jsonl'), model, runsDir: path.join(root, 'rm-runs'), runId: 'rm', train: { steps: 1, batchSize: 2, threads: 1 } });
  const runsDir = path.join(root, 'runs');
  process.env.RLHF_FREE_MEMORY_BYTES = '1000';
  try {
    const ppo = (threads: number) => ppoTrain({ prompts: path.join(root, 'p.ppo.jsonl'), policy: model, rewardModel: rm.finalModel!, runsDir, runId: `ppo-${threads}`, threads });
    await assert.rejects(ppo(2), /, and [\d.]+ GiB on each of 1 other thread, more than this machine's free memory/);
    await assert.rejects(ppo(1), (e: Error) => /more than this machine's free memory/.test(e.message) && !/other thread/.test(e.message));
    await assert.rejects(sft({ data: path.join(root, 'd.sft.jsonl'), model, runsDir, runId: 'sft', train: { threads: 2, batchSize: 4 } }), /on each of 1 other thread/);
    await assert.rejects(trainRewardModel({ data: path.join(root, 'd.rm.jsonl'), model, runsDir, runId: 'rm', train: { threads: 2, batchSize: 4 } }), /on each of 1 other thread/);
    await assert.rejects(dpo({ data: path.join(root, 'd.rm.jsonl'), model, runsDir, runId: 'dpo', train: { threads: 2, batchSize: 4 } }), /on each of 1 other thread/);
    // GRPO and RLOO: the reference and the reward model's copies on the second thread
    for (const train of [grpoTrain, rlooTrain]) {
      const group = (threads: number) => train({ prompts: path.join(root, 'p.ppo.jsonl'), policy: model, rewardModel: rm.finalModel!, runsDir, runId: `group-${threads}`, threads });
      await assert.rejects(group(2), /, and [\d.]+ GiB on each of 1 other thread, more than this machine's free memory/);
      await assert.rejects(group(1), (e: Error) => /more than this machine's free memory/.test(e.message) && !/other thread/.test(e.message));
    }
    await assert.rejects(dpo({ data: path.join(root, 'd.rm.jsonl'), model, runsDir, runId: 'dpo', train: { threads: 1, batchSize: 4 } }), (e: Error) => /more than this machine's free memory/.test(e.message) && !/other thread/.test(e.message));
  } finally {
    delete process.env.RLHF_FREE_MEMORY_BYTES;
  }
  assert.ok(!fs.existsSync(runsDir), 'nothing written');
});
