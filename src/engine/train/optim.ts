/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay on 2-D weights only (matmul weights
 * and embeddings; never biases or LayerNorm gains), global-norm gradient clipping, and
 * linear warmup followed by cosine decay of the learning rate, as in nanoGPT.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NamedTensor } from '../safetensors';
import { takeScalar } from '../read';
import { fusedAdamW, fusedSumSquares } from '../kernels/fused';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export class AdamW {
  /** Optimizer steps taken (t in the bias corrections). */
  t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(private readonly params: Map<string, tf.Variable>, readonly cfg: AdamWConfig) {
    for (const [name, p] of params) {
      if (!p.trainable) continue;
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** One update with gradients keyed by parameter name, at learning rate lr. */
  step(grads: Map<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.cfg;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (const [name, g] of grads) {
      const p = this.params.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = p.rank >= 2 && weightDecay > 0 ? 1 - lr * weightDecay : 1;
      // on wasm: one SIMD pass (m, v in place; the weights into a new tensor), else the same update in tf ops
      if (fusedAdamW(p, g, m, v, { gradScale: 1, lr, beta1: b1, beta2: b2, c1, c2, eps, decay })) continue;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        // p <- p * (1 - lr * wd) - lr * mhat / (sqrt(vhat) + eps)
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        const decayed = p.rank >= 2 && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  async state(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>();
    for (const [name, m] of this.m) out.set(`exp_avg.${name}`, { shape: m.shape, data: (await m.data()) as Float32Array });
    for (const [name, v] of this.v) out.set(`exp_avg_sq.${name}`, { shape: v.shape, data: (await v.data()) as Float32Array });
    return out;
  }

  loadState(state: Map<string, NamedTensor>, t: number): void {
    for (const [kind, map] of [['exp_avg', this.m], ['exp_avg_sq', this.v]] as const) {
      for (const [name, variable] of map) {
        const s = state.get(`${kind}.${name}`);
        if (!s || s.data.length !== variable.size) throw new Error(`optimizer state has no ${kind} for ${name}`);
        tf.tidy(() => variable.assign(tf.tensor(s.data, variable.shape)));
      }
    }
    this.t = t;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/**
 * Scales gradients in place so their global L2 norm is at most maxNorm; returns the norm
 * before clipping (what TRL logs as grad_norm).
 */
export async function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): Promise<number> {
  // summed in order, two at a time: WebGPU's addN binds every input at once and a model has more
  // gradients than a shader may bind (8 storage buffers); the float32 result is addN's
  const direct = [...grads.values()].map((g) => fusedSumSquares(g)); // float64 sums on wasm
  const norm = direct.every((x) => x !== undefined)
    ? Math.fround(Math.sqrt(direct.reduce((a, b) => a! + b!, 0)!))
    : await takeScalar(tf.tidy(() => tf.sqrt([...grads.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)))));
  if (maxNorm > 0 && norm > maxNorm) {
    const scale = maxNorm / (norm + 1e-6);
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, scale));
      g.dispose();
    }
  }
  return norm;
}

export interface LrSchedule {
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to minLr. */
export function learningRate(step: number, s: LrSchedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.lr - s.minLr);
}
