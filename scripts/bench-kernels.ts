/**
 * The fused kernels one at a time, on the wasm backend, at the shapes where they run: what the
 * README's kernel figures come from (`npm run bench` runs it; alone: npx tsx scripts/bench-kernels.ts).
 *   - the decoder's matrix-vector product at batch 16 over one layer of nanoGPT's CPU configuration
 *     (c_attn, c_proj, c_fc, the MLP's c_proj: 128 -> 384, 128, 512 and 512 -> 128), GFLOP/s
 *   - a whole decoding step of 16 sequences of that model in the steady state (the decoder made
 *     once, then 30 runs of 63 positions; the fastest run's mean), on one thread and on two
 *   - GELU forward and backward, ns a value; cross-entropy forward and gradient at SmolLM2's
 *     vocabulary (49,152), ns a logit
 * Each figure is the fastest of several repeats (this machine's speed moves by 10-20% minute to minute).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backends/backend';
import { initModel } from '../src/engine/causal-lm';
import { defaultConfig } from '../src/engine/config';
import { FusedDecoder } from '../src/engine/decode';
import { fusedKernels } from '../src/engine/kernels/fused';
import { crossEntropy } from '../src/engine/layers';

/** The fastest of `reps` timings of fn, in ms. */
function fastest(reps: number, fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

async function main() {
  await initBackend('wasm');
  const f = fusedKernels();
  if (!f) throw new Error('the fused kernels do not serve this backend (npm run build makes dist/fused.wasm)');
  const cfg = defaultConfig({ n_layer: 4, n_head: 4, n_embd: 128, n_positions: 64, vocab_size: 65 });
  const model = initModel(cfg, 1);
  const B = 16;

  const x = tf.randomNormal([B, 512], 0, 1, 'float32', 1), y = f.zeros([B, 512]);
  const shapes = [['h.0.attn.c_attn.weight', 128, 384], ['h.0.attn.c_proj.weight', 128, 128], ['h.0.mlp.c_fc.weight', 128, 512], ['h.0.mlp.c_proj.weight', 512, 128]] as const;
  const flops = shapes.reduce((n, [, K, N]) => n + 2 * B * K * N, 0);
  const layer = () => {
    for (let i = 0; i < 100; i++) for (const [w, K, N] of shapes) f.k.matvec(f.ptr(x), f.ptr(model.params.get(w)!), 0, f.ptr(y), B, K, N);
  };
  console.log(`decoder matrix-vector product, batch 16, one layer's four projections: ${(100 * flops / fastest(10, layer) / 1e6).toFixed(1)} GFLOP/s`);

  for (const threads of [1, 2]) {
    const d = FusedDecoder.from(model, B, { k: [], v: [], length: 0 }, 64, threads)!;
    const ids = new Array<number>(B).fill(1);
    const ms = fastest(30, () => {
      for (let p = 0; p < 63; p++) d.step(ids, p);
    }) / 63;
    console.log(`decoding step, 16 sequences, steady state, ${d.threads} thread${d.threads > 1 ? 's' : ''}: ${ms.toFixed(3)} ms (${(B / ms * 1000).toFixed(0)} tokens/s)`);
    d.dispose();
  }

  const n = B * 512;
  const g = tf.randomNormal([n], 0, 3, 'float32', 7), dy = tf.randomNormal([n], 0, 1, 'float32', 8), out = f.zeros([n]);
  const fwd = fastest(10, () => { for (let i = 0; i < 200; i++) f.k.gelu_fwd(f.ptr(g), f.ptr(out), n); }) / 200;
  const bwd = fastest(10, () => { for (let i = 0; i < 200; i++) f.k.gelu_bwd(f.ptr(g), f.ptr(dy), f.ptr(out), n); }) / 200;
  console.log(`GELU over ${n} values: forward ${(fwd * 1e6 / n).toFixed(2)} ns a value, backward ${(bwd * 1e6 / n).toFixed(2)}`);

  const rows = 64, V = 49152;
  const logits = tf.randomNormal([rows, V], 0, 1, 'float32', 1) as tf.Tensor2D;
  const targets = tf.tensor1d(Array.from({ length: rows }, (_, i) => i * 7), 'int32'), weights = tf.ones([rows]) as tf.Tensor1D;
  const xent = fastest(8, () => tf.tidy(() => { tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, targets, weights))(logits).dataSync(); }));
  console.log(`cross-entropy and its gradient, ${rows} x ${V} logits: ${(xent * 1e6 / rows / V).toFixed(2)} ns a logit`);
  tf.dispose([x, y, g, dy, out, logits, targets, weights]);
  model.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
