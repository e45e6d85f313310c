import { test, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { testBackend } from '../../helpers';
import { biasAdd, causalMask, causalSoftmax, crossEntropy, fusedAttention, gelu, layerNorm, matMul, rmsNorm, swiglu, transpose2d } from '../../../src/engine/layers';
import { bmm } from '../../../src/engine/kernels/bmm';
import { fusedAvailable, fusedKernels, productTransB, setFused } from '../../../src/engine/kernels/fused';
import { AdamW, clipByGlobalNorm } from '../../../src/engine/train/optim';
import { initModel, parameterShapes } from '../../../src/engine/causal-lm';
import { Lora, loraConfig, targetModules } from '../../../src/engine/lora';
import { configFromJson, defaultConfig, ModelConfig } from '../../../src/engine/config';
import { lossAndGrads } from '../../../src/engine/train/grad-thread';
import { generate, generateMany } from '../../../src/engine/generate';
import { FusedDecoder } from '../../../src/engine/decode';
import { KVCache } from '../../../src/engine/model';
import { Rng } from '../../../src/engine/rng';

before(async () => {
  await testBackend();
  assert.ok(fusedAvailable(), 'the fused kernels serve the wasm backend (dist/fused.wasm built)');
});
afterEach(() => setFused(true));

const rand = (shape: number[], seed: number, scale = 1) => {
  const r = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * r.normal()), shape);
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const maxAbs = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/**
 * The op's value and the gradients of sum(value * w) (w fixed, random) with respect to every
 * input, with the fused kernels on or off.
 */
function valueAndGrads(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], fused: boolean) {
  setFused(fused);
  return tf.tidy(() => {
    const y = op(...inputs);
    const w = rand(y.shape, 99);
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), w)))(inputs);
    return { y: y.dataSync() as Float32Array, g: g.map((t) => t.dataSync() as Float32Array) };
  });
}

/** Central finite differences of sum(op(inputs) * w) at a few coordinates of input i, in float64 sums. */
function finiteDiff(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], i: number, coords: number[], h = 1e-2): number[] {
  setFused(true);
  const base = inputs[i].dataSync() as Float32Array;
  const f = (x: Float32Array) => tf.tidy(() => {
    const xs = inputs.map((t, j) => (j === i ? tf.tensor(x, t.shape) : t));
    const y = op(...xs);
    const w = rand(y.shape, 99).dataSync() as Float32Array;
    const v = y.dataSync() as Float32Array;
    let s = 0;
    for (let k = 0; k < v.length; k++) s += v[k] * w[k];
    return s;
  });
  return coords.map((c) => {
    const up = base.slice(), down = base.slice();
    up[c] += h;
    down[c] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

interface Case {
  name: string;
  op: (...xs: tf.Tensor[]) => tf.Tensor;
  inputs: () => tf.Tensor[];
}

/**
 * Causal attention through plain ops (what the fused kernel replaces): q [B*T, H*hd], k and v
 * [B*T, KV*hd]; query head h reads key/value head h / (H / KV).
 */
function attentionOps(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, B: number, T: number, H: number, KV: number, hd: number): tf.Tensor {
  const heads = (x: tf.Tensor, n: number) => tf.transpose(tf.reshape(x, [B, T, n, hd]), [0, 2, 1, 3]);
  const group = tf.tensor1d(Array.from({ length: H }, (_, h) => Math.floor(h / (H / KV))), 'int32');
  const k4 = tf.gather(heads(k, KV), group, 1), v4 = tf.gather(heads(v, KV), group, 1);
  const s = tf.add(tf.mul(tf.matMul(heads(q, H) as tf.Tensor4D, k4 as tf.Tensor4D, false, true), 1 / Math.sqrt(hd)), causalMask(T, T, 0));
  const y = tf.matMul(tf.softmax(s) as tf.Tensor4D, v4 as tf.Tensor4D);
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, H * hd]);
}
const packedAttention = (B: number, T: number, H: number, hd: number) => (qkv: tf.Tensor) =>
  fusedAttention(qkv as tf.Tensor2D, B, T, H, H, hd) ?? attentionOps(...(tf.split(qkv, 3, 1) as [tf.Tensor, tf.Tensor, tf.Tensor]), B, T, H, H, hd);
const groupedAttention = (B: number, T: number, H: number, KV: number, hd: number) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
  fusedAttention([q, k, v] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D], B, T, H, KV, hd) ?? attentionOps(q, k, v, B, T, H, KV, hd);

const R = 24, C = 20; // C not a multiple of 4: the kernels' scalar tails run too
const CASES: Case[] = [
  { name: 'LayerNorm', op: (x, g, b) => layerNorm(x as tf.Tensor2D, g, b, 1e-5), inputs: () => [rand([R, C], 1), rand([C], 2, 0.5), rand([C], 3, 0.5)] },
  { name: 'RMSNorm', op: (x, g) => rmsNorm(x as tf.Tensor2D, g, 1e-5), inputs: () => [rand([R, C], 4), rand([C], 5, 0.5)] },
  { name: 'GELU (tanh)', op: (x) => gelu(x), inputs: () => [rand([R, C + 3], 6, 2)] },
  { name: 'SwiGLU', op: (a, b) => swiglu(a, b), inputs: () => [rand([R, C + 1], 7, 2), rand([R, C + 1], 8)] },
  { name: 'bias add', op: (x, b) => biasAdd(x as tf.Tensor2D, b), inputs: () => [rand([R, C], 9), rand([C], 10)] },
  { name: 'causal softmax with the mask', op: (s) => causalSoftmax(s as tf.Tensor3D, 0.35, 6, 0), inputs: () => [rand([3, 6, 6], 11, 3)] },
  // grouped queries: 2 heads per key/value head stacked as 2 x 5 rows, 3 cached positions before them
  { name: 'causal softmax, grouped queries after a cache', op: (s) => causalSoftmax(s as tf.Tensor3D, 0.5, 5, 3), inputs: () => [rand([2, 10, 8], 12, 3)] },
  // an odd row count, 20 columns (a panel of 16 and a partial one), K not a multiple of 4
  { name: 'matrix product', op: (a, b) => matMul(a as tf.Tensor2D, b as tf.Tensor2D), inputs: () => [rand([R + 1, C - 1], 14), rand([C - 1, C], 15)] },
  { name: 'batched matrix product', op: (a, b) => bmm(a as tf.Tensor3D, b as tf.Tensor3D), inputs: () => [rand([3, 7, 9], 16), rand([3, 9, 18], 17)] },
  // GPT-2: 2 sequences of 5 positions, 2 heads of 4, q, k, v side by side in one [10, 24] tensor
  { name: 'causal attention (GPT-2\'s packed qkv)', op: packedAttention(2, 5, 2, 4), inputs: () => [rand([10, 24], 18)] },
  // Llama: 4 query heads over 2 key/value heads of 8
  { name: 'causal attention (grouped queries)', op: groupedAttention(2, 4, 4, 2, 8), inputs: () => [rand([8, 32], 19), rand([8, 16], 20), rand([8, 16], 21)] },
  { name: 'softmax without a mask', op: (s) => causalSoftmax(s as tf.Tensor3D, 1, 1, undefined), inputs: () => [rand([4, 1, 9], 13, 3)] },
];

for (const c of CASES) {
  test(`fused ${c.name}: value and gradients equal the unfused ops and central finite differences`, () => {
    const xs = c.inputs();
    const fused = valueAndGrads(c.op, xs, true);
    const plain = valueAndGrads(c.op, xs, false);
    assert.ok(maxDiff(fused.y, plain.y) < 1e-5 * Math.max(1, maxAbs(plain.y)), `value: max difference ${maxDiff(fused.y, plain.y)}`);
    for (let i = 0; i < xs.length; i++) {
      const d = maxDiff(fused.g[i], plain.g[i]);
      assert.ok(d < 2e-5 * Math.max(1, maxAbs(plain.g[i])), `gradient of input ${i}: max difference ${d} (scale ${maxAbs(plain.g[i])})`);
      const coords = [0, 7, xs[i].size - 1].filter((k) => k < xs[i].size);
      const fd = finiteDiff(c.op, xs, i, coords);
      coords.forEach((k, j) => assert.ok(Math.abs(fd[j] - fused.g[i][k]) < 3e-3 * Math.max(1, Math.abs(fd[j])), `input ${i}[${k}]: kernel ${fused.g[i][k]}, finite differences ${fd[j]}`));
    }
    tf.dispose(xs);
  });
}

test('the tiled transpose equals TensorFlow.js\'s, on shapes that are not multiples of its tile', () => {
  for (const [r, c] of [[1, 1], [17, 33], [64, 5], [40, 48]]) {
    const x = rand([r, c], r * 100 + c) as tf.Tensor2D;
    setFused(true);
    const a = transpose2d(x);
    setFused(false);
    const b = tf.transpose(x);
    assert.deepEqual(a.shape, [c, r]);
    assert.equal(maxDiff(a.dataSync(), b.dataSync()), 0);
    tf.dispose([x, a, b]);
  }
});

test('the SIMD matrix product gives XNNPACK\'s bits (sums in the order of k) and float64\'s values, over its tails, column blocks, batches and a transposed b', () => {
  // [M, K] @ [K, N]: one element; odd rows; N past one block of 256 columns with a partial panel; the
  // vocabulary-sized head's 65 columns; a batch
  for (const [nb, M, K, N] of [[0, 1, 1, 1], [0, 7, 33, 5], [0, 5, 20, 300], [0, 64, 128, 65], [3, 9, 17, 40]]) {
    const a = rand(nb ? [nb, M, K] : [M, K], M * 1000 + K) as tf.Tensor2D, b = rand(nb ? [nb, K, N] : [K, N], N * 1000 + K) as tf.Tensor2D;
    setFused(true);
    const ours = (nb ? bmm(a as unknown as tf.Tensor3D, b as unknown as tf.Tensor3D) : matMul(a, b)).dataSync() as Float32Array;
    setFused(false);
    const theirs = tf.matMul(a, b).dataSync() as Float32Array;
    assert.equal(ours.length, Math.max(nb, 1) * M * N);
    assert.equal(maxDiff(ours, theirs), 0, `[${nb}, ${M}, ${K}, ${N}]: not XNNPACK's bits`);
    if (!nb) { // b given transposed, [N, K], as a backward pass has it: packed from there, the same sums
      const bt = tf.transpose(b) as tf.Tensor2D;
      setFused(true);
      assert.equal(maxDiff(productTransB(a, bt).dataSync(), theirs), 0, `[${M}, ${K}, ${N}] with b transposed`);
      bt.dispose();
    }
    const av = a.dataSync(), bv = b.dataSync();
    let worst = 0;
    for (let n = 0; n < Math.max(nb, 1); n++) {
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += av[n * M * K + i * K + k] * bv[n * K * N + k * N + j];
          worst = Math.max(worst, Math.abs(s - ours[n * M * N + i * N + j]));
        }
      }
    }
    assert.ok(worst < 1e-4, `[${nb}, ${M}, ${K}, ${N}]: ${worst} from float64's sums`);
    tf.dispose([a, b]);
  }
});

test('the decoder\'s matrix-vector product: bias + x[0] w[0] + x[1] w[1] + ... in float32, in the order of k, bit for bit, in a batch of any size (pairs of rows, an odd last one, column tails)', () => {
  const f = fusedKernels()!;
  for (const [B, K, N] of [[1, 5, 3], [2, 7, 16], [5, 13, 37], [16, 33, 52], [3, 4, 4]]) {
    for (const withBias of [true, false]) {
      const x = rand([B, K], B * 100 + K), w = rand([K, N], K * 100 + N), bias = rand([N], N), y = f.zeros([B, N]);
      f.k.matvec(f.ptr(x), f.ptr(w), withBias ? f.ptr(bias) : 0, f.ptr(y), B, K, N);
      const got = y.dataSync(), xv = x.dataSync(), wv = w.dataSync(), bv = bias.dataSync();
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < N; j++) {
          let s = withBias ? bv[j] : 0;
          for (let k = 0; k < K; k++) s = Math.fround(s + Math.fround(xv[b * K + k] * wv[k * N + j]));
          assert.equal(got[b * N + j], s, `[${B}, ${K}, ${N}]${withBias ? ' with a bias' : ''}: row ${b}, column ${j}`);
        }
      }
      tf.dispose([x, w, bias, y]);
    }
  }
});

test('fused cross-entropy (weighted, prompt positions at 0): loss and logits gradient equal the unfused ops and finite differences', () => {
  const n = 10, V = 13;
  const logits = rand([n, V], 20, 3) as tf.Tensor2D;
  const targets = tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 5) % V), 'int32');
  const weights = tf.tensor1d([0, 0, 1, 1, 1, 0.5, 1, 1, 0, 1]);
  const op = (l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, targets, weights);
  const run = (on: boolean) => {
    setFused(on);
    return tf.tidy(() => ({ loss: op(logits).dataSync()[0], g: tf.grad(op)(logits).dataSync() as Float32Array }));
  };
  const a = run(true), b = run(false);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(b.loss), `loss ${a.loss} against ${b.loss}`);
  assert.ok(maxDiff(a.g, b.g) < 1e-6, `gradient: max difference ${maxDiff(a.g, b.g)}`);
  setFused(true);
  const base = logits.dataSync() as Float32Array;
  for (const k of [2 * V + 4, 5 * V + 1, 9 * V + 12]) {
    const at = (d: number) => { const x = base.slice(); x[k] += d; return tf.tidy(() => op(tf.tensor2d(x, [n, V])).dataSync()[0]); };
    const fd = (at(1e-2) - at(-1e-2)) / 2e-2;
    assert.ok(Math.abs(fd - a.g[k]) < 2e-3, `logit ${k}: kernel ${a.g[k]}, finite differences ${fd}`);
  }
});

test('fused AdamW with clipping: the same weights and moments as the unfused update over several steps', async () => {
  const run = async (on: boolean) => {
    setFused(on);
    const params = new Map<string, tf.Variable>([['w', tf.variable(rand([7, 5], 30))], ['b', tf.variable(rand([5], 31))]]);
    const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    const norms: number[] = [];
    for (let s = 0; s < 4; s++) {
      const grads = new Map<string, tf.Tensor>([['w', rand([7, 5], 40 + s, 3)], ['b', rand([5], 50 + s, 3)]]);
      norms.push(await clipByGlobalNorm(grads, 1.0));
      opt.step(grads, 1e-2 * (s + 1));
      tf.dispose([...grads.values()]);
    }
    const out = { w: params.get('w')!.dataSync() as Float32Array, b: params.get('b')!.dataSync() as Float32Array, state: await opt.state(), norms };
    opt.dispose();
    tf.dispose([...params.values()]);
    return out;
  };
  const a = await run(true), b = await run(false);
  assert.ok(maxDiff(a.norms, b.norms) < 1e-5 * b.norms[0], `gradient norms ${a.norms} against ${b.norms}`);
  assert.ok(maxDiff(a.w, b.w) < 1e-6 && maxDiff(a.b, b.b) < 1e-6, `weights: ${maxDiff(a.w, b.w)}, ${maxDiff(a.b, b.b)}`);
  for (const [k, v] of b.state) assert.ok(maxDiff(a.state.get(k)!.data, v.data) < 1e-6, `optimizer state ${k}`);
});

const tinyLlama = (over: Record<string, unknown> = {}) => configFromJson({
  model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, max_position_embeddings: 32, vocab_size: 20, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: false, tokenizer: 'char', ...over,
});
const MODELS: [string, ModelConfig][] = [
  ['GPT-2', defaultConfig({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 32, vocab_size: 21 })],
  ['Llama (grouped queries, untied head)', tinyLlama()],
  ['Qwen2 (q/k/v biases, tied head)', configFromJson({ model_type: 'qwen2', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 32, vocab_size: 20, rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: true, tokenizer: 'char' })],
];

for (const [name, cfg] of MODELS) {
  test(`${name}: a fused training step and an unfused one give the same parameters (1e-5)`, async () => {
    const B = 3, T = 12;
    const r = new Rng(7);
    const ids = Int32Array.from({ length: B * T }, () => r.int(cfg.vocab_size));
    const batch = { ids, targets: ids.map((x) => (x + 3) % cfg.vocab_size), weights: Float32Array.from({ length: B * T }, (_, i) => (i % T < 3 ? 0 : 1)), B, T };
    const step = async (on: boolean) => {
      setFused(on);
      const model = initModel(cfg, 3);
      const opt = new AdamW(model.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
      let loss = 0;
      const g0 = new Map<string, Float32Array>();
      for (let s = 0; s < 2; s++) {
        const { value, grads } = lossAndGrads(model, batch, new Rng(1));
        loss = (await value.data())[0];
        value.dispose();
        if (s === 0) for (const [k, g] of grads) g0.set(k, g.dataSync() as Float32Array);
        await clipByGlobalNorm(grads, 1.0);
        // nanoGPT's learning rate. Adam moves every weight by about lr whatever its gradient's size,
        // so a gradient that is zero in exact arithmetic (GPT-2's key bias: softmax ignores a shift
        // of a whole row of scores) moves by rounding noise, the same on both paths only to ~lr
        opt.step(grads, 1e-3);
        tf.dispose([...grads.values()]);
      }
      const w = await model.weights();
      opt.dispose();
      model.dispose();
      return { w, loss, g0 };
    };
    const a = await step(true), b = await step(false);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * b.loss, `loss ${a.loss} against ${b.loss}`);
    for (const [k, g] of b.g0) assert.ok(maxDiff(a.g0.get(k)!, g) < 1e-5 * Math.max(1e-3, maxAbs(g)), `gradient of ${k}: max difference ${maxDiff(a.g0.get(k)!, g)} (scale ${maxAbs(g)})`);
    for (const [k, v] of b.w) assert.ok(maxDiff(a.w.get(k)!, v) < 1e-5, `${k}: max difference ${maxDiff(a.w.get(k)!, v)}`);
  });

  test(`${name}: the fused decoder's logits equal the op path's at every position, and seeded generation gives the same tokens`, async () => {
    const model = initModel(cfg, 5);
    // perturb the norms' gains and biases too, so every weight matters
    const w = await model.weights();
    const r = new Rng(9);
    for (const [k, v] of model.params) if (v.rank === 1) v.assign(tf.tensor(w.get(k)!.map((x) => x + 0.3 * r.normal()), v.shape));
    const B = 2, prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const seqs = [[...prompt, 3, 4, 5, 6], [...prompt, 7, 8, 9, 1]];
    setFused(false);
    const expected = tf.tidy(() => model.logits(tf.tensor2d(seqs, [B, seqs[0].length], 'int32')).dataSync() as Float32Array);
    setFused(true);
    // the prompt through the ops (filling the cache), the rest one position at a time
    const cache: KVCache = { k: [], v: [], length: 0 };
    tf.tidy(() => { model.hidden(tf.tensor2d(seqs.map((s) => s.slice(0, prompt.length)), [B, prompt.length], 'int32'), { cache }); });
    const dec = FusedDecoder.from(model, B, cache)!;
    assert.ok(dec, 'the decoder serves this model');
    const V = cfg.vocab_size, T = seqs[0].length;
    let worst = 0;
    for (let pos = prompt.length; pos < T; pos++) {
      const got = dec.step(seqs.map((s) => s[pos]), pos);
      for (let b = 0; b < B; b++) worst = Math.max(worst, maxDiff(got.subarray(b * V, (b + 1) * V), expected.subarray((b * T + pos) * V, (b * T + pos + 1) * V)));
    }
    dec.dispose();
    tf.dispose([...cache.k, ...cache.v]);
    assert.ok(worst < 1e-4, `logits: max difference ${worst}`);
    // a short prompt (through the decoder from position 0) and a long one (through the ops first)
    for (const p of [[1, 2, 3], prompt]) {
      const o = { maxNewTokens: 12, temperature: 1, topK: 0, topP: 1, seed: 4 };
      setFused(true);
      const before = tf.memory().numTensors;
      const fast = await generate(model, p, 3, o);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      setFused(false);
      const slow = await generate(model, p, 3, o);
      assert.deepEqual(fast.tokens, slow.tokens);
    }
    // a rollout's batch: prompts of different lengths decoded together, each sequence at its own
    // position and stopping on its own, gives each prompt's samples as generate() does alone
    const requests = [
      { prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], samples: 2, seed: 11, maxNewTokens: 9 },
      { prompt: [4, 2], samples: 3, seed: 12, maxNewTokens: 14 },
      { prompt: [5, 6, 7, 8, 9], samples: 1, seed: 13, maxNewTokens: 5 },
    ];
    const o = { temperature: 1, topK: 0, topP: 1, eot: 0 };
    setFused(true);
    const before = tf.memory().numTensors;
    const batched = await generateMany(model, requests, o);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    setFused(false);
    for (const [j, r] of requests.entries()) {
      const alone = await generate(model, r.prompt, r.samples, { ...o, seed: r.seed, maxNewTokens: r.maxNewTokens });
      assert.deepEqual(batched[j].tokens, alone.tokens, `prompt ${j}`);
      assert.deepEqual(batched[j].finished, alone.finished, `prompt ${j}`);
    }
    model.dispose();
  });

  test(`${name}: a sequence's logits are the same bits decoded alone or in a batch of 5 (two rows at a time, then one)`, () => {
    const model = initModel(cfg, 8);
    const seqs = [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [2, 2, 2, 2, 2], [9, 1, 9, 1, 9], [3, 1, 4, 1, 5]];
    const V = cfg.vocab_size;
    const batch = FusedDecoder.from(model, 5, { k: [], v: [], length: 0 })!;
    const alone = seqs.map(() => FusedDecoder.from(model, 1, { k: [], v: [], length: 0 })!);
    for (let pos = 0; pos < 5; pos++) {
      const got = Float32Array.from(batch.step(seqs.map((q) => q[pos]), pos));
      seqs.forEach((q, b) => assert.deepEqual(got.subarray(b * V, (b + 1) * V), Float32Array.from(alone[b].step([q[pos]], pos)), `sequence ${b}, position ${pos}`));
    }
    for (const d of [batch, ...alone]) d.dispose();
    model.dispose();
  });

  test(`${name} with a LoRA adapter: the fused decoder (merged weights) gives the op path's logits and tokens, not the base's`, async () => {
    const model = initModel(cfg, 6);
    const lc = loraConfig(cfg.arch ?? 'gpt2', { r: 4, alpha: 8 });
    const modules = targetModules(parameterShapes(cfg), lc.targets);
    // B non-zero (a trained adapter), so the adapter changes every logit
    const r = new Rng(21);
    const weights = new Map([...modules].map(([m, [inF, outF]]) => [m, { A: Float32Array.from({ length: inF * 4 }, () => 0.3 * r.normal()), B: Float32Array.from({ length: 4 * outF }, () => 0.3 * r.normal()) }]));
    model.attachLora(new Lora(lc, modules, 1, weights, false));
    const B = 2, seqs = [[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1]], T = 7;
    const V = cfg.vocab_size;
    setFused(false);
    const expected = tf.tidy(() => model.logits(tf.tensor2d(seqs, [B, T], 'int32')).dataSync() as Float32Array);
    const base = tf.tidy(() => model.logits(tf.tensor2d(seqs, [B, T], 'int32'), { adapter: false }).dataSync() as Float32Array);
    setFused(true);
    const before = tf.memory().numTensors;
    const dec = FusedDecoder.from(model, B, { k: [], v: [], length: 0 })!;
    assert.ok(dec, 'the decoder serves a model with an adapter');
    let worst = 0, fromBase = 0;
    for (let pos = 0; pos < T; pos++) {
      const got = dec.step(seqs.map((q) => q[pos]), pos);
      for (let b = 0; b < B; b++) {
        const at = (b * T + pos) * V;
        worst = Math.max(worst, maxDiff(got.subarray(b * V, (b + 1) * V), expected.subarray(at, at + V)));
        fromBase = Math.max(fromBase, maxDiff(got.subarray(b * V, (b + 1) * V), base.subarray(at, at + V)));
      }
    }
    dec.dispose();
    assert.equal(tf.memory().numTensors, before, 'the merged weights are freed with the decoder');
    assert.ok(worst < 1e-4, `logits: max difference ${worst}`);
    assert.ok(fromBase > 1e-2, `the adapter is in the decoded logits (they differ from the base's by ${fromBase})`);
    const o = { maxNewTokens: 12, temperature: 1, topK: 0, topP: 1, seed: 4 };
    setFused(true);
    const fast = await generate(model, [1, 2, 3], 3, o);
    setFused(false);
    const slow = await generate(model, [1, 2, 3], 3, o);
    assert.deepEqual(fast.tokens, slow.tokens);
    model.dispose();
  });
}
