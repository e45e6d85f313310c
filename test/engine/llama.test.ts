import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { FIXTURES, testBackend } from '../helpers';
import { loadModel, readModelDir, writeModelDir } from '../../src/engine/checkpoint';
import { createModel, initModel } from '../../src/engine/causal-lm';
import { configFromJson, parameterCount } from '../../src/engine/config';
import { rmsNorm, swiglu } from '../../src/engine/layers';
import { readSafetensors, serializeSafetensors } from '../../src/engine/safetensors';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { KVCache, disposeCache } from '../../src/engine/model';

before(testBackend);

const VARIANTS = ['llama-gqa', 'llama3-bf16', 'qwen2-f16'];
const dirOf = (v: string) => path.join(FIXTURES, 'tiny-llama', v);

/** A small Llama-layout config (GQA 4/2, untied) for tests that need no fixture. */
function tinyLlama(overrides: Record<string, unknown> = {}) {
  return configFromJson({
    model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, max_position_embeddings: 32, vocab_size: 20, rms_norm_eps: 1e-5, rope_theta: 10000,
    tie_word_embeddings: false, tokenizer: 'char', ...overrides,
  });
}

for (const v of VARIANTS) {
  test(`${v}: log-probabilities equal the PyTorch reference of Transformers' forward pass (< 2e-3)`, async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(dirOf(v), 'expected.json'), 'utf8'));
    const { model, loaded } = loadModel(dirOf(v), false);
    assert.equal(loaded.config.arch, v.startsWith('qwen2') ? 'qwen2' : 'llama');
    assert.equal(loaded.dtype, v.endsWith('bf16') ? 'BF16' : v.endsWith('f16') ? 'F16' : 'F32');
    const ids: number[] = expected.ids;
    const logp = tf.tidy(() => tf.logSoftmax(model.logits(tf.tensor2d([ids], [1, ids.length], 'int32'))));
    const got = (await logp.data()) as Float32Array;
    logp.dispose();
    const V = loaded.config.vocab_size;
    let worst = 0;
    expected.logprobs.forEach((row: number[], t: number) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - got[t * V + j])))));
    assert.ok(worst < 2e-3, `max |logprob diff| ${worst}`);
    model.dispose();
  });
}

test('the key/value cache gives the logits of the full forward pass (grouped-query heads, rotary positions)', async () => {
  const { model } = loadModel(dirOf('llama3-bf16'), false);
  const ids = [5, 9, 3, 40, 7, 11, 2, 60, 33, 1];
  const full = tf.tidy(() => model.logits(tf.tensor2d([ids], [1, ids.length], 'int32')));
  const want = (await full.data()) as Float32Array;
  full.dispose();
  const cache: KVCache = { k: [], v: [], length: 0 };
  const V = model.config.vocab_size;
  // a prompt of 4, then one token at a time
  const chunks = [ids.slice(0, 4), ...ids.slice(4).map((x) => [x])];
  let pos = 0;
  for (const c of chunks) {
    const l = tf.tidy(() => model.logits(tf.tensor2d([c], [1, c.length], 'int32'), { cache }));
    const got = (await l.data()) as Float32Array;
    l.dispose();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[pos * V + i]) < 1e-4, `position ${pos + Math.floor(i / V)}`);
    pos += c.length;
  }
  disposeCache(cache);
  model.dispose();
});

test('a Llama checkpoint saves in Transformers\' names and [out, in] layout, and loads back equal', async () => {
  const loaded = readModelDir(dirOf('qwen2-f16'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llama-save-'));
  try {
    writeModelDir(path.join(tmp, 'm'), loaded.config, loaded.weights, loaded.tokenizer);
    const st = readSafetensors(path.join(tmp, 'm', 'model.safetensors')).tensors;
    assert.deepEqual(st.get('model.layers.0.self_attn.k_proj.weight')!.shape, [16, 32], 'k_proj [KV*hd, hidden]');
    assert.ok(st.has('model.layers.1.self_attn.q_proj.bias') && !st.has('model.layers.1.self_attn.o_proj.bias'), 'Qwen2: q/k/v biases, no o bias');
    assert.ok(st.has('lm_head.weight') && st.has('model.norm.weight'));
    const cfg = JSON.parse(fs.readFileSync(path.join(tmp, 'm', 'config.json'), 'utf8'));
    assert.equal(cfg.model_type, 'qwen2');
    assert.equal(cfg.torch_dtype, 'float32', 'our checkpoints are float32 (fine-tuning steps would round away in half precision)');
    const back = readModelDir(path.join(tmp, 'm'));
    for (const [name, w] of loaded.weights) assert.deepEqual(back.weights.get(name), w, name);
    // a bfloat16 copy on request: the values a bfloat16 file held come back exactly
    const bf = readModelDir(dirOf('llama3-bf16'));
    writeModelDir(path.join(tmp, 'bf'), bf.config, bf.weights, bf.tokenizer, { dtype: 'BF16' });
    const bfBack = readModelDir(path.join(tmp, 'bf'));
    assert.equal(bfBack.dtype, 'BF16');
    for (const [name, w] of bf.weights) assert.deepEqual(bfBack.weights.get(name), w, name);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a sharded checkpoint (model.safetensors.index.json) loads as the single file does', async () => {
  const loaded = readModelDir(dirOf('llama-gqa'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llama-shards-'));
  try {
    for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(dirOf('llama-gqa'), f), path.join(tmp, f));
    const all = readSafetensors(path.join(dirOf('llama-gqa'), 'model.safetensors')).tensors;
    const names = [...all.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((ns, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      fs.writeFileSync(path.join(tmp, file), serializeSafetensors(new Map(ns.map((n) => [n, all.get(n)!]))));
      for (const n of ns) weightMap[n] = file;
    });
    fs.writeFileSync(path.join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const sharded = readModelDir(tmp);
    for (const [name, w] of loaded.weights) assert.deepEqual(sharded.weights.get(name), w, name);
    // a shard missing is one clear line
    fs.rmSync(path.join(tmp, 'model-00002-of-00002.safetensors'));
    assert.throws(() => readModelDir(tmp), /model-00002-of-00002\.safetensors/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('bad Llama configs and tensors are refused in one line', () => {
  assert.throws(() => configFromJson({ model_type: 'mistral' }), /model_type "mistral" is not supported/);
  assert.throws(() => tinyLlama({ num_key_value_heads: 3 }), /multiple of num_key_value_heads/);
  assert.throws(() => tinyLlama({ rope_scaling: { rope_type: 'yarn', factor: 4 } }), /rope_scaling of type "yarn"/);
  assert.throws(() => tinyLlama({ hidden_act: 'gelu' }), /hidden_act "gelu"/);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llama-bad-'));
  try {
    const cfg = tinyLlama();
    const tok = new CharTokenizer('abcdefghijklmnopq'.split(''));
    const m = initModel(cfg, 1);
    const w = new Map([...m.params].map(([k, v]) => [k, v.dataSync() as Float32Array]));
    m.dispose();
    writeModelDir(path.join(tmp, 'm'), cfg, w, tok);
    const cfgFile = path.join(tmp, 'm', 'config.json');
    const json = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...json, intermediate_size: 32 }));
    assert.throws(() => readModelDir(path.join(tmp, 'm')), /model\.layers\.0\.mlp\.gate_proj\.weight has shape \[24,16\], config\.json implies \[32,16\]/);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...json, tie_word_embeddings: false, vocab_size: 20 }));
    const st = readSafetensors(path.join(tmp, 'm', 'model.safetensors')).tensors;
    st.delete('lm_head.weight');
    fs.writeFileSync(path.join(tmp, 'm', 'model.safetensors'), serializeSafetensors(st));
    assert.throws(() => readModelDir(path.join(tmp, 'm')), /tie_word_embeddings false but the checkpoint has no lm_head\.weight/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('RMSNorm and SwiGLU gradients equal autodiff of the unfused ops and finite differences', () => {
  const x = tf.randomNormal([5, 8], 0, 1, 'float32', 3) as tf.Tensor2D;
  const g = tf.randomNormal([8], 1, 0.2, 'float32', 4);
  const up = tf.randomNormal([5, 8], 0, 1, 'float32', 5);
  const dy = tf.randomNormal([5, 8], 0, 1, 'float32', 6);
  const fused = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a as tf.Tensor2D, b, 1e-5), dy)))([x, g]);
  const plain = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.mul(tf.mul(a, tf.rsqrt(tf.add(tf.mean(tf.square(a), -1, true), 1e-5))), b), dy)))([x, g]);
  fused.forEach((t, i) => assert.ok(tf.max(tf.abs(tf.sub(t, plain[i]))).dataSync()[0] < 1e-4, `RMSNorm grad ${i}`));
  const fs2 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swiglu(a, b), dy)))([x, up]);
  const ps2 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.mul(tf.mul(a, tf.sigmoid(a)), b), dy)))([x, up]);
  fs2.forEach((t, i) => assert.ok(tf.max(tf.abs(tf.sub(t, ps2[i]))).dataSync()[0] < 1e-4, `SwiGLU grad ${i}`));
  // finite differences on one entry of each
  const f = (xv: tf.Tensor) => tf.sum(tf.mul(swiglu(rmsNorm(xv as tf.Tensor2D, g, 1e-5), up), dy)).dataSync()[0];
  const analytic = tf.grad((xv: tf.Tensor) => tf.sum(tf.mul(swiglu(rmsNorm(xv as tf.Tensor2D, g, 1e-5), up), dy)))(x).dataSync();
  const base = x.dataSync().slice();
  for (const i of [0, 13, 39]) {
    const h = 1e-2;
    const plus = base.slice(); plus[i] += h;
    const minus = base.slice(); minus[i] -= h;
    const numeric = (f(tf.tensor2d(plus, [5, 8])) - f(tf.tensor2d(minus, [5, 8]))) / (2 * h);
    assert.ok(Math.abs(numeric - analytic[i]) < 2e-2 * Math.max(1, Math.abs(numeric)), `entry ${i}: ${numeric} vs ${analytic[i]}`);
  }
});

test('a Llama model from a config alone: seeded init, parameter count as the config implies', () => {
  const cfg = tinyLlama({ attention_bias: true, mlp_bias: true });
  const a = initModel(cfg, 7), b = initModel(cfg, 7);
  assert.equal(a.numParameters, parameterCount(cfg));
  assert.deepEqual(a.params.get('layers.1.mlp.up_proj.weight')!.dataSync(), b.params.get('layers.1.mlp.up_proj.weight')!.dataSync());
  const c = createModel(cfg, new Map([...a.params].map(([k, v]) => [k, v.dataSync() as Float32Array])));
  assert.equal(c.numParameters, a.numParameters);
  [a, b, c].forEach((m) => m.dispose());
});

test('activation checkpointing gives the gradients of the plain backward pass (every weight, and a LoRA adapter with dropout)', async () => {
  const { Llama } = await import('../../src/engine/llama');
  const { Lora, loraConfig, targetModules } = await import('../../src/engine/lora');
  const { parameterShapes } = await import('../../src/engine/causal-lm');
  const { crossEntropy } = await import('../../src/engine/layers');
  const { Rng } = await import('../../src/engine/rng');
  const cfg = tinyLlama({ attention_bias: true });
  const ids = tf.tensor2d([[1, 5, 9, 3, 7, 2], [4, 4, 8, 1, 0, 6]], [2, 6], 'int32');
  const targets = tf.tensor1d([5, 9, 3, 7, 2, 1, 4, 8, 1, 0, 6, 3], 'int32'), w = tf.ones([12]) as tf.Tensor1D;
  for (const lora of [false, true]) {
    const m = Llama.init(cfg, 3);
    if (lora) {
      const lc = loraConfig('llama', { r: 2, dropout: 0.2 });
      const l = new Lora(lc, targetModules(parameterShapes(cfg), lc.targets), 5);
      l.B.forEach((b) => b.assign(tf.randomNormal(b.shape, 0, 0.1, 'float32', 7)));
      m.attachLora(l);
    }
    const vars = [...m.params.values()].filter((v) => v.trainable);
    const gradsWith = (ckpt: boolean) => {
      m.checkpointing = ckpt;
      const { value, grads } = tf.variableGrads(() => crossEntropy(m.logits(ids, { training: true, rng: new Rng(11) }), targets, w), vars);
      return { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync()) };
    };
    const a = gradsWith(false), b = gradsWith(true);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-6, `loss ${a.loss} vs ${b.loss}`);
    a.grads.forEach((g, k) => g.forEach((x, j) => assert.ok(Math.abs(x - b.grads[k][j]) < 1e-5, `${lora ? 'LoRA' : 'full'}: grad ${k}[${j}] ${x} vs ${b.grads[k][j]}`)));
    m.dispose();
  }
});

test('the chunked head loss (large vocabularies) equals the plain cross-entropy, loss and every gradient, tied and untied', async () => {
  const { Llama } = await import('../../src/engine/llama');
  const { crossEntropy } = await import('../../src/engine/layers');
  const { lmLoss } = await import('../../src/engine/train/lm-loss');
  const { Rng } = await import('../../src/engine/rng');
  for (const tie of [true, false]) {
    const cfg = tinyLlama({ vocab_size: 5000, tie_word_embeddings: tie, max_position_embeddings: 256, num_hidden_layers: 1 });
    const m = Llama.init(cfg, 4);
    const rng = new Rng(2);
    const B = 2, T = 200; // 400 rows: two chunks
    const ids = tf.tensor2d(Array.from({ length: B * T }, () => rng.int(5000)), [B, T], 'int32');
    const targets = tf.tensor1d(Array.from({ length: B * T }, () => rng.int(5000)), 'int32');
    const w = tf.tensor1d(Array.from({ length: B * T }, (_, i) => (i % 7 === 0 ? 0 : 1)));
    const vars = [...m.params.values()];
    const plain = tf.variableGrads(() => crossEntropy(m.logits(ids), targets, w), vars);
    const chunked = tf.variableGrads(() => lmLoss(m, ids, targets, w), vars);
    assert.ok(Math.abs(plain.value.dataSync()[0] - chunked.value.dataSync()[0]) < 1e-5, `loss ${plain.value.dataSync()[0]} vs ${chunked.value.dataSync()[0]}`);
    for (const v of vars) {
      const a = plain.grads[v.name].dataSync(), b = chunked.grads[v.name].dataSync();
      const scale = Math.max(1e-6, ...Array.from(a, Math.abs));
      a.forEach((x, j) => assert.ok(Math.abs(x - b[j]) < 1e-4 * scale + 1e-7, `${tie ? 'tied' : 'untied'} ${v.name}[${j}]: ${x} vs ${b[j]}`));
    }
    m.dispose();
  }
});

test("PPO's chunked log-probabilities (large vocabularies) equal log_softmax at the next token, entropy and every gradient too", async () => {
  const { Llama } = await import('../../src/engine/llama');
  const { chunkedTokenLogps } = await import('../../src/engine/train/lm-loss');
  const { Rng } = await import('../../src/engine/rng');
  const cfg = tinyLlama({ vocab_size: 5000, tie_word_embeddings: true, max_position_embeddings: 256, num_hidden_layers: 1 });
  const m = Llama.init(cfg, 5);
  const rng = new Rng(3);
  const B = 2, T = 150; // 300 rows: two chunks
  const ids = tf.tensor2d(Array.from({ length: B * T }, () => rng.int(5000)), [B, T], 'int32');
  const dy = tf.tensor2d(Array.from({ length: B * T }, () => rng.normal()), [B, T]);
  const next = tf.concat([tf.slice(ids, [0, 1], [B, T - 1]), tf.zeros([B, 1], 'int32')], 1);
  const vars = [...m.params.values()];
  for (const temp of [1, 0.7]) {
    let ent0: tf.Tensor | undefined, ent1: tf.Tensor | undefined;
    const plain = tf.variableGrads(() => {
      const logp = tf.logSoftmax(tf.div(m.logits(ids), temp));
      ent0 = tf.keep(tf.reshape(tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)), [B, T]));
      const picked = tf.reshape(tf.sum(tf.mul(logp, tf.oneHot(tf.reshape(next, [B * T]), 5000)), 1), [B, T]);
      return tf.sum(tf.mul(picked, dy)) as tf.Scalar;
    }, vars);
    const chunked = tf.variableGrads(() => {
      const r = chunkedTokenLogps(m, ids, temp);
      ent1 = tf.keep(r.entropy);
      return tf.sum(tf.mul(r.logp, dy)) as tf.Scalar;
    }, vars);
    assert.ok(Math.abs(plain.value.dataSync()[0] - chunked.value.dataSync()[0]) < 1e-3, `${plain.value.dataSync()[0]} vs ${chunked.value.dataSync()[0]}`);
    const e0 = ent0!.dataSync(), e1 = ent1!.dataSync();
    e0.forEach((x, j) => assert.ok(Math.abs(x - e1[j]) < 1e-4, `entropy[${j}] ${x} vs ${e1[j]}`));
    for (const v of vars) {
      const a = plain.grads[v.name].dataSync(), b = chunked.grads[v.name].dataSync();
      const scale = Math.max(1e-6, ...Array.from(a, Math.abs));
      a.forEach((x, j) => assert.ok(Math.abs(x - b[j]) < 1e-4 * scale + 1e-7, `${v.name}[${j}]: ${x} vs ${b[j]}`));
    }
    tf.dispose([ent0!, ent1!]);
  }
  m.dispose();
});
