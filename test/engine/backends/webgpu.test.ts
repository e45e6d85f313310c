// The WebGPU backend against the WebAssembly one, on whatever adapter Dawn finds: on this machine
// and in CI, Mesa's software Vulkan (llvmpipe), which scripts/webgpu-setup.mjs installs when no
// Vulkan driver is present. Without an adapter the tests skip, unless RLHF_REQUIRE_WEBGPU=1 (CI sets
// it): then they fail. Models are tiny: llvmpipe is slow, and most of its time is compiling shaders.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { saveTinyModel, startWebGpuForTests, tmpDir } from '../../helpers';
import { initBackend, currentBackend } from '../../../src/engine/backends/backend';
import { GPT } from '../../../src/engine/model';
import { defaultConfig } from '../../../src/engine/config';
import { CharTokenizer } from '../../../src/engine/tokenizer';
import { generate, tokenLogprobs } from '../../../src/engine/generate';
import { sft, resumeSft } from '../../../src/engine/stages/sft';
import { trainRewardModel } from '../../../src/engine/stages/rm';
import { ppoTrain } from '../../../src/engine/stages/ppo';
import { readSafetensors } from '../../../src/engine/safetensors';
import { RunDir } from '../../../src/data/run';
import { Rng } from '../../../src/engine/rng';
import { labelRecord } from '../../../src/engine/labeler/labeler';

let unavailable: string | undefined;
before(async () => {
  unavailable = await startWebGpuForTests('wasm');
});

/** Runs body on one backend, then the other; wasm first. */
async function onBoth<T>(body: (backend: 'wasm' | 'webgpu') => Promise<T>): Promise<{ wasm: T; webgpu: T }> {
  await initBackend('wasm');
  const wasm = await body('wasm');
  await initBackend('webgpu');
  assert.equal(currentBackend()?.name, 'webgpu');
  const webgpu = await body('webgpu');
  await initBackend('wasm');
  return { wasm, webgpu };
}

const gpuTest = (name: string, fn: () => Promise<void>) =>
  test(name, async (t) => {
    if (unavailable) return t.skip(`no WebGPU adapter: ${unavailable}`);
    await fn();
  });

const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
const words = ['good', 'bad', 'nice', 'sad', 'fun', 'dull'];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * ||a - b|| / ||a|| over the elements of two one-step AdamW updates (no weight decay) that Adam moved
 * by at least lr / 2. Adam's first step is lr * g / (|g| + eps): where the true gradient is 0 (the
 * reward model's bias, by the ranking loss's invariance to shifting every reward) or below ~10 eps,
 * that is a ratio of rounding noise to itself, different on any two machines; those elements are
 * counted apart (`noisy`), and bounded by lr on both sides.
 */
function relDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>, lr: number): { rel: number; noisy: number } {
  let num = 0, den = 0, noisy = 0, n = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) {
      n++;
      assert.ok(Math.abs(x[i]) <= lr * 1.01 && Math.abs(y[i]) <= lr * 1.01, `${k}[${i}]: a first Adam step larger than lr`);
      if (Math.abs(x[i]) < lr / 2) {
        noisy++;
        continue;
      }
      num += (x[i] - y[i]) ** 2;
      den += x[i] ** 2;
    }
  }
  return { rel: Math.sqrt(num / den), noisy: noisy / n };
}

/** final - initial weights of a run, per tensor. */
function update(before: string, after: string): Map<string, Float32Array> {
  const a = readSafetensors(before).tensors, b = readSafetensors(after).tensors;
  // the reward model's score head is not in the base model: compared by its final value instead
  return new Map([...b].filter(([k]) => a.has(k)).map(([k, t]) => [k, t.data.map((x, i) => x - a.get(k)!.data[i])]));
}

async function fixture(): Promise<string> {
  const root = tmpDir('rlhf-webgpu-');
  await saveTinyModel(path.join(root, 'sft'), tok);
  const rng = new Rng(3);
  fs.writeFileSync(path.join(root, 'toy.rm.jsonl'), Array.from({ length: 24 }, () => JSON.stringify(labelRecord('say it', Array.from({ length: 3 }, () => `it was ${words[rng.int(6)]}`), rng))).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.ppo.jsonl'), ['say it', 'tell me', 'go on'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'toy.sft.jsonl'), Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `say ${words[i % 6]}`, response: `it was ${words[(i * 5) % 6]}.` })).join('\n') + '\n');
  return root;
}

gpuTest('logits: the GPT-2 layout on WebGPU equals WebAssembly (max |logprob diff| < 1e-4)', async () => {
  const cfg = defaultConfig({ n_layer: 2, n_head: 4, n_embd: 32, n_positions: 40, vocab_size: 85 });
  const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 85);
  const { wasm, webgpu } = await onBoth(async () => {
    const model = GPT.init(cfg, 7);
    try {
      return await tokenLogprobs(model, tokens);
    } finally {
      model.dispose();
    }
  });
  const d = maxAbsDiff(wasm, webgpu);
  console.log(`# max |logprob diff| webgpu vs wasm: ${d.toExponential(2)} over ${wasm.length} positions`);
  assert.ok(d < 1e-4, `max |logprob diff| ${d}`);
});

gpuTest('the embedding gradient (UnsortedSegmentSum) on WebGPU: the same floats as WebAssembly, run after run', async () => {
  const N = 300, V = 37, D = 24;
  const ids = Array.from({ length: N }, (_, i) => (i % 11 === 0 ? -1 : i % 13 === 0 ? V + 2 : (i * 7919) % V)); // some dropped ids
  const x = Array.from({ length: N * D }, (_, i) => Math.sin(i * 0.37) * 10 ** ((i % 7) - 3)); // magnitudes that show summation order
  const sum = async () => {
    const t = tf.unsortedSegmentSum(tf.tensor2d(x, [N, D]), tf.tensor1d(ids, 'int32'), V);
    const out = await t.data();
    t.dispose();
    return out;
  };
  const { wasm, webgpu } = await onBoth(async () => [await sum(), await sum()]);
  assert.ok(Buffer.from(webgpu[0].buffer).equals(Buffer.from(webgpu[1].buffer)), 'two WebGPU runs differ');
  assert.ok(Buffer.from(webgpu[0].buffer).equals(Buffer.from(wasm[0].buffer)), `WebGPU and WebAssembly differ by ${maxAbsDiff(wasm[0], webgpu[0])}`);
});

gpuTest('generation with the key/value cache equals generation without it, on WebGPU', async () => {
  await initBackend('webgpu');
  const model = GPT.init(defaultConfig({ n_layer: 1, n_head: 2, n_embd: 16, n_positions: 12, vocab_size: 30 }), 3);
  try {
    const o = { maxNewTokens: 14, temperature: 1, topK: 0, topP: 1, seed: 9 }; // runs past the context: the cache is rebuilt
    const cached = await generate(model, [1, 2, 3], 2, { ...o, useCache: true });
    const uncached = await generate(model, [1, 2, 3], 2, { ...o, useCache: false });
    assert.deepEqual(cached.tokens, uncached.tokens);
    assert.equal(cached.tokens[0].length, 14);
  } finally {
    model.dispose();
    await initBackend('wasm');
  }
});

gpuTest('one step of SFT, the reward model and PPO: the same loss and parameter update as WebAssembly (relative 1e-3)', async () => {
  const root = await fixture();
  const base = path.join(root, 'sft', 'model.safetensors');
  const LR = 1e-2;
  const { wasm, webgpu } = await onBoth(async (b) => {
    const runs = path.join(root, b);
    const train = { steps: 1, batchSize: 4, threads: 1, lr: LR, warmupSteps: 0, weightDecay: 0 };
    const s = await sft({ data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'sft'), runsDir: runs, runId: 'sft', train });
    const r = await trainRewardModel({ data: path.join(root, 'toy.rm.jsonl'), model: path.join(root, 'sft'), runsDir: runs, runId: 'rm', train });
    // PPO against the same reward model on both backends (wasm's), so only the PPO step differs
    const rmDir = b === 'wasm' ? r.finalModel! : path.join(root, 'wasm', 'rm', 'checkpoints', 'final');
    const p = await ppoTrain({ prompts: path.join(root, 'toy.ppo.jsonl'), policy: path.join(root, 'sft'), rewardModel: rmDir, runsDir: runs, runId: 'ppo', ppo: { iterations: 1, promptsPerRollout: 2, samplesPerPrompt: 2, maxNewTokens: 8, lr: LR, ppoEpochs: 1, minibatches: 1 } });
    const metric = (id: string, k: string) => new RunDir(path.join(runs, id)).readMetrics()[0][k] as number;
    assert.equal(new RunDir(path.join(runs, 'sft')).read().backend, b);
    return {
      sftLoss: metric('sft', 'loss'),
      rmLoss: metric('rm', 'loss'),
      ppoLoss: metric('ppo', 'loss/policy_avg'),
      ppoValueLoss: metric('ppo', 'loss/value_avg'),
      sft: update(base, path.join(s.finalModel!, 'model.safetensors')),
      rm: update(base, path.join(r.finalModel!, 'model.safetensors')),
      ppo: update(base, path.join(p.finalModel!, 'model.safetensors')),
      score: readSafetensors(path.join(r.finalModel!, 'model.safetensors')).tensors.get('score.weight')!.data,
    };
  });
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-8, Math.abs(a));
  const updates = { sft: relDiff(wasm.sft, webgpu.sft, LR), rm: relDiff(wasm.rm, webgpu.rm, LR), ppo: relDiff(wasm.ppo, webgpu.ppo, LR) };
  const figures = {
    sft_loss: rel(wasm.sftLoss, webgpu.sftLoss), rm_loss: rel(wasm.rmLoss, webgpu.rmLoss), ppo_value_loss: rel(wasm.ppoValueLoss, webgpu.ppoValueLoss),
    sft_update: updates.sft.rel, rm_update: updates.rm.rel, ppo_update: updates.ppo.rel,
    rm_score_head: Math.sqrt(wasm.score.reduce((t, x, i) => t + (x - webgpu.score[i]) ** 2, 0) / wasm.score.reduce((t, x) => t + x * x, 0)),
  };
  console.log(`# webgpu vs wasm, relative differences: ${JSON.stringify(figures)}; elements with a noise-sized first Adam step: sft ${updates.sft.noisy.toFixed(3)}, rm ${updates.rm.noisy.toFixed(3)}, ppo ${updates.ppo.noisy.toFixed(3)}`);
  for (const [k, v] of Object.entries(figures)) assert.ok(v < 1e-3, `${k}: ${v}`);
  // the policy loss of PPO's first step is a mean of whitened advantages times ratios of 1: near 0, so absolute
  assert.ok(Math.abs(wasm.ppoLoss - webgpu.ppoLoss) < 1e-5, `PPO policy loss ${wasm.ppoLoss} vs ${webgpu.ppoLoss}`);
});

gpuTest('a 30-step SFT run on WebGPU: its loss curve matches WebAssembly\'s within 1e-3; no tensor or GPU memory grows; resume equals the uninterrupted run', async () => {
  const root = await fixture();
  const train = { steps: 30, batchSize: 4, threads: 1, lr: 3e-3, warmupSteps: 2, evalInterval: 10, checkpointInterval: 10 };
  const memory: { tensors: number; bytes: number }[] = [];
  const { wasm, webgpu } = await onBoth(async (b) => {
    const r = await sft({ data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, b), runId: 'sft', train }, b === 'webgpu' ? { onProgress: () => memory.push({ tensors: tf.memory().numTensors, bytes: tf.memory().numBytes }) } : {});
    return { losses: new RunDir(path.join(root, b, 'sft')).readMetrics().map((m) => m.loss as number), final: path.join(r.finalModel!, 'model.safetensors') };
  });
  const d = maxAbsDiff(wasm.losses, webgpu.losses);
  console.log(`# 30-step SFT loss curve, max |diff| webgpu vs wasm: ${d.toExponential(2)} (first ${webgpu.losses[0].toFixed(4)}, last ${webgpu.losses[29].toFixed(4)})`);
  assert.equal(webgpu.losses.length, 30);
  assert.ok(d < 1e-3, `loss curves differ by ${d}`);
  assert.ok(webgpu.losses[29] < webgpu.losses[0] - 0.5, 'it learns');
  // after the first step (optimizer state allocated), the same tensors and bytes at every step
  const steady = memory.slice(1);
  assert.ok(steady.every((m) => m.tensors === steady[0].tensors && m.bytes === steady[0].bytes), `memory moved: ${JSON.stringify(memory.slice(0, 4))} ... ${JSON.stringify(memory.slice(-2))}`);

  // resume on WebGPU: stop after step 10's checkpoint, resume, the same final weights as the run above
  await initBackend('webgpu');
  try {
    let polls = 0;
    await sft({ data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'sft'), runsDir: path.join(root, 'resumed'), runId: 'sft', train }, { shouldStop: () => ++polls > 11 });
    const run = new RunDir(path.join(root, 'resumed', 'sft'));
    assert.equal(run.read().status, 'cancelled');
    await resumeSft(run.dir);
    const a = readSafetensors(webgpu.final).tensors, b = readSafetensors(path.join(run.dir, 'checkpoints', 'final', 'model.safetensors')).tensors;
    for (const [k, t] of a) assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(b.get(k)!.data.buffer)), `${k} differs after resume`);
    assert.deepEqual(run.readMetrics().map((m) => m.loss), webgpu.losses);
  } finally {
    await initBackend('wasm');
  }
});
