import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../helpers';
import { fusedAvailable } from '../../src/engine/kernels/fused';
import { initModel, parameterShapes, CausalLM } from '../../src/engine/causal-lm';
import { Lora, loraConfig, targetModules } from '../../src/engine/lora';
import { configFromJson, defaultConfig, ModelConfig } from '../../src/engine/config';
import { FusedDecoder } from '../../src/engine/decode';
import { generate, generateMany } from '../../src/engine/generate';
import { KVCache } from '../../src/engine/model';
import { Rng } from '../../src/engine/rng';
import { distFile } from '../../src/engine/paths';

before(async () => {
  await testBackend();
  assert.ok(fusedAvailable(), 'the fused kernels serve the wasm backend (dist/fused.wasm built)');
  assert.ok(distFile('decode-thread.js'), 'dist/decode-thread.js is built');
});

const MODELS: [string, ModelConfig][] = [
  ['GPT-2', defaultConfig({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 32, vocab_size: 21 })],
  ['Llama (grouped queries, untied head)', configFromJson({
    model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 32, vocab_size: 20, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, tokenizer: 'char',
  })],
  ['Qwen2 (q/k/v biases, tied head)', configFromJson({
    model_type: 'qwen2', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1,
    max_position_embeddings: 32, vocab_size: 20, rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: true, tokenizer: 'char',
  })],
];

/** A model whose every weight matters (norm gains and biases moved off 1 and 0), with or without a trained adapter. */
async function modelOf(cfg: ModelConfig, lora: boolean): Promise<CausalLM> {
  const model = initModel(cfg, 5);
  const w = await model.weights();
  const r = new Rng(9);
  for (const [k, v] of model.params) if (v.rank === 1) v.assign(tf.tensor(w.get(k)!.map((x) => x + 0.3 * r.normal()), v.shape));
  if (lora) {
    const lc = loraConfig(cfg.arch ?? 'gpt2', { r: 4, alpha: 8 });
    const modules = targetModules(parameterShapes(cfg), lc.targets);
    const weights = new Map([...modules].map(([m, [inF, outF]]) => [m, { A: Float32Array.from({ length: inF * 4 }, () => 0.3 * r.normal()), B: Float32Array.from({ length: 4 * outF }, () => 0.3 * r.normal()) }]));
    model.attachLora(new Lora(lc, modules, 1, weights, false));
  }
  return model;
}

/** Every step's logits of 5 sequences (a prompt of `promptLength` read by the ops first when > 0), on `threads` threads. */
function decodeAll(model: CausalLM, threads: number, promptLength: number): { logits: Float32Array[]; threads: number } {
  const B = 5, T = 14;
  const seqs = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7 + t * 3 + 1) % model.config.vocab_size));
  const cache: KVCache = { k: [], v: [], length: 0 };
  if (promptLength) tf.tidy(() => { model.hidden(tf.tensor2d(seqs.map((s) => s.slice(0, promptLength)), [B, promptLength], 'int32'), { cache }); });
  const dec = FusedDecoder.from(model, B, cache, 24, threads)!;
  const logits: Float32Array[] = [];
  // sequences at different positions, as a rollout's prompts of different lengths are: row b starts
  // b % 3 steps late, feeding its first position again meanwhile (as a row that waits does)
  for (let step = promptLength; step < T; step++) {
    const positions = seqs.map((_, b) => Math.max(promptLength, step - (b % 3)));
    logits.push(Float32Array.from(dec.step(seqs.map((s, b) => s[positions[b]]), positions)));
  }
  const used = dec.threads;
  dec.dispose();
  tf.dispose([...cache.k, ...cache.v]);
  return { logits, threads: used };
}

for (const [name, cfg] of MODELS) {
  test(`${name}: a batch split over two threads gives every sequence the same logits, bit for bit, as one thread (from position 0, after a prompt read by the ops, with a LoRA adapter)`, async () => {
    for (const [lora, prompt] of [[false, 0], [false, 6], [true, 0], [true, 6]] as const) {
      const model = await modelOf(cfg, lora);
      const before = tf.memory().numTensors;
      const one = decodeAll(model, 1, prompt), two = decodeAll(model, 2, prompt);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      assert.equal(one.threads, 1);
      assert.equal(two.threads, 2, 'the second thread took its rows');
      two.logits.forEach((l, i) => assert.deepEqual(l, one.logits[i], `step ${i}${lora ? ', with an adapter' : ''}, prompt ${prompt}`));
      model.dispose();
    }
  });
}

test('seeded generation and a rollout\'s batch give the same tokens on one thread and on two', async () => {
  const model = await modelOf(MODELS[0][1], false);
  const o = { maxNewTokens: 12, temperature: 1, topK: 0, topP: 1, seed: 4 };
  process.env.RLHF_DECODE_THREADS = '1';
  const a = await generate(model, [1, 2, 3], 6, o);
  const ra = await generateMany(model, [{ prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], samples: 3, seed: 11, maxNewTokens: 9 }, { prompt: [4, 2], samples: 4, seed: 12, maxNewTokens: 14 }], { temperature: 1, topK: 0, topP: 1, eot: 0 });
  process.env.RLHF_DECODE_THREADS = '2';
  const b = await generate(model, [1, 2, 3], 6, o);
  const rb = await generateMany(model, [{ prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], samples: 3, seed: 11, maxNewTokens: 9 }, { prompt: [4, 2], samples: 4, seed: 12, maxNewTokens: 14 }], { temperature: 1, topK: 0, topP: 1, eot: 0 });
  delete process.env.RLHF_DECODE_THREADS;
  assert.deepEqual(b.tokens, a.tokens);
  assert.deepEqual(rb.map((g) => g.tokens), ra.map((g) => g.tokens));
  model.dispose();
});

test('the decoding thread serves one decoder at a time (a second one decodes alone), and an error on it is thrown, not hung on', async () => {
  const model = await modelOf(MODELS[0][1], false);
  const empty = (): KVCache => ({ k: [], v: [], length: 0 });
  const first = FusedDecoder.from(model, 4, empty(), 16, 2)!;
  const second = FusedDecoder.from(model, 4, empty(), 16, 2)!;
  assert.equal(first.threads, 2);
  assert.equal(second.threads, 1, 'the thread is taken');
  const ids = [1, 2, 3, 4];
  assert.deepEqual(Float32Array.from(first.step(ids, 0)), Float32Array.from(second.step(ids, 0)));
  // a position past the thread's rows' context: the thread's error comes back to the caller
  assert.throws(() => first.step(ids, [1, 1, 1, 40]), /decoding thread: a position outside the context of 16/);
  first.dispose();
  second.dispose();
  // and the thread is free again
  const third = FusedDecoder.from(model, 4, empty(), 16, 2)!;
  assert.equal(third.threads, 2);
  assert.equal(third.step(ids, 0).length, 4 * model.config.vocab_size);
  third.dispose();
  model.dispose();
});
