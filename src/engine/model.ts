/**
 * GPT-2 (Radford et al. 2019) in TensorFlow.js, parameter for parameter the Hugging Face layout:
 * pre-LayerNorm blocks, causal self-attention, tanh-GELU MLP, learned positions, LM head tied
 * to the token embedding. Weights are GPT-2's Conv1D [in, out], so x @ W needs no transpose.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig } from './config';
import { Rng } from './rng';
import { causalSoftmax, fusedAttention, gelu, layerNorm, linear, tiedHead } from './layers';
import { bmm } from './kernels/bmm';
import { ModelParameters } from './parameters';

/** Keys and values of every layer for the positions seen so far: [B, n_head, length, head_dim]. */
export interface KVCache {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
  length: number;
}

/**
 * Layer i's keys and values [B, heads, T, hd] appended to the cache along positions (past of them
 * there already); the cache keeps the joined tensors and the returned pair is them.
 */
export function appendToCache(cache: KVCache, i: number, kNew: tf.Tensor4D, vNew: tf.Tensor4D, past: number): [tf.Tensor4D, tf.Tensor4D] {
  let k = kNew, v = vNew;
  if (past > 0) {
    k = tf.concat([cache.k[i], kNew], 2);
    v = tf.concat([cache.v[i], vNew], 2);
    tf.dispose([cache.k[i], cache.v[i]]);
  }
  cache.k[i] = tf.keep(k);
  cache.v[i] = tf.keep(v);
  return [k, v];
}

export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.k, ...cache.v]);
  cache.k = [];
  cache.v = [];
  cache.length = 0;
}

export interface ForwardOptions {
  /** Dropout on, with seeds drawn from rng. */
  training?: boolean;
  rng?: Rng;
  /** Read past keys/values from here and append this call's; the caller disposes it. */
  cache?: KVCache;
  /** false: the LoRA adapter switched off (the base model, PPO's reference). */
  adapter?: boolean;
}

/** Parameter names and shapes in Hugging Face GPT-2 order. */
export function parameterShapes(c: ModelConfig): [string, number[]][] {
  const C = c.n_embd;
  const out: [string, number[]][] = [
    ['wte.weight', [c.vocab_size, C]],
    ['wpe.weight', [c.n_positions, C]],
  ];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `h.${i}.`;
    out.push(
      [p + 'ln_1.weight', [C]], [p + 'ln_1.bias', [C]],
      [p + 'attn.c_attn.weight', [C, 3 * C]], [p + 'attn.c_attn.bias', [3 * C]],
      [p + 'attn.c_proj.weight', [C, C]], [p + 'attn.c_proj.bias', [C]],
      [p + 'ln_2.weight', [C]], [p + 'ln_2.bias', [C]],
      [p + 'mlp.c_fc.weight', [C, 4 * C]], [p + 'mlp.c_fc.bias', [4 * C]],
      [p + 'mlp.c_proj.weight', [4 * C, C]], [p + 'mlp.c_proj.bias', [C]],
    );
  }
  out.push(['ln_f.weight', [C]], ['ln_f.bias', [C]]);
  return out;
}

/**
 * GPT-2 initialisation: weights N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj)
 * N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm gain 1. Drawn from our own seeded
 * generator, so a seed gives the same model on every backend.
 */
export function initialWeights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapes(c)) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (name.endsWith('ln_1.weight') || name.endsWith('ln_2.weight') || name === 'ln_f.weight') a.fill(1);
    else if (shape.length === 2) {
      const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * c.n_layer) : 0.02;
      for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
    }
    out.set(name, a);
  }
  return out;
}

export class GPT extends ModelParameters {
  constructor(readonly config: ModelConfig, weights: Map<string, Float32Array>, trainable = true) {
    super(parameterShapes(config), weights, trainable);
  }

  /** Conv1D projection m (+ its LoRA update unless switched off). */
  private lin(x: tf.Tensor2D, m: string, opts: ForwardOptions): tf.Tensor2D {
    const y = linear(x, this.p(m + '.weight'), this.p(m + '.bias'));
    const d = opts.adapter === false ? undefined : this.lora?.delta(x, m, opts);
    return d ? tf.add(y, d) : y;
  }

  static init(config: ModelConfig, seed: number): GPT {
    return new GPT(config, initialWeights(config, seed));
  }

  /** Non-embedding parameters (for FLOP counts, as in Kaplan et al.). */
  get numBlockParameters(): number {
    return this.numParameters - this.p('wte.weight').size - this.p('wpe.weight').size;
  }

  /** Final hidden states [B*T, n_embd] after ln_f for token ids [B, T]. */
  hidden(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    const c = this.config;
    const [B, T] = ids.shape;
    const C = c.n_embd, H = c.n_head, hd = C / H;
    const past = opts.cache?.length ?? 0;
    if (past + T > c.n_positions) throw new Error(`sequence of ${past + T} tokens exceeds n_positions ${c.n_positions}`);
    const drop = (x: tf.Tensor): tf.Tensor =>
      opts.training && c.dropout > 0 ? tf.dropout(x, c.dropout, undefined, opts.rng?.seed()) : x;

    const tok = tf.gather(this.p('wte.weight'), tf.reshape(ids, [B * T]));
    const pos = tf.slice(this.p('wpe.weight'), [past, 0], [T, C]);
    let x = drop(tf.reshape(tf.add(tf.reshape(tok, [B, T, C]), pos), [B * T, C])) as tf.Tensor2D;

    for (let i = 0; i < c.n_layer; i++) {
      const p = `h.${i}.`;
      // causal self-attention: one fused kernel where it serves (no cache to fill, no dropout on the
      // weights), the ops below elsewhere
      const h1 = layerNorm(x, this.p(p + 'ln_1.weight'), this.p(p + 'ln_1.bias'), c.layer_norm_epsilon);
      const qkv = this.lin(h1, p + 'attn.c_attn', opts);
      const y = (opts.cache || (opts.training && c.dropout > 0) ? undefined : fusedAttention(qkv, B, T, H, H, hd))
        ?? this.attention(qkv, i, B, T, past, opts, drop);
      x = tf.add(x, drop(this.lin(y, p + 'attn.c_proj', opts)));
      // MLP
      const h2 = layerNorm(x, this.p(p + 'ln_2.weight'), this.p(p + 'ln_2.bias'), c.layer_norm_epsilon);
      const a = gelu(this.lin(h2, p + 'mlp.c_fc', opts)) as tf.Tensor2D;
      x = tf.add(x, drop(this.lin(a, p + 'mlp.c_proj', opts)));
    }
    if (opts.cache) opts.cache.length = past + T;
    return layerNorm(x, this.p('ln_f.weight'), this.p('ln_f.bias'), c.layer_norm_epsilon);
  }

  /** Layer i's attention through ops, from qkv [B*T, 3C] to y [B*T, C], filling the cache when given. */
  private attention(qkv: tf.Tensor2D, i: number, B: number, T: number, past: number, opts: ForwardOptions, drop: (x: tf.Tensor) => tf.Tensor): tf.Tensor2D {
    const C = this.config.n_embd, H = this.config.n_head, hd = C / H;
    // [B*T, 3C] -> q, k, v as [B, H, T, hd]. Two small transposes, not one 5-D one: the wasm
    // backend transposes rank <= 4 tensors about 50x faster.
    const [q, kNew, vNew] = tf
      .split(tf.transpose(tf.reshape(qkv, [B * T, 3, C]), [1, 0, 2]), 3, 0)
      .map((t) => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]) as tf.Tensor4D);
    const [k, v] = opts.cache ? appendToCache(opts.cache, i, kNew, vNew, past) : [kNew, vNew];
    // attention weights softmax(q k^T / sqrt(hd) + mask), as [B*H, T, Tk] for the batched products
    const Tk = k.shape[2];
    const kT = tf.reshape(tf.transpose(k, [0, 1, 3, 2]), [B * H, hd, Tk]) as tf.Tensor3D;
    const att = drop(causalSoftmax(bmm(tf.reshape(q, [B * H, T, hd]) as tf.Tensor3D, kT), 1 / Math.sqrt(hd), T, past));
    const yh = bmm(att as tf.Tensor3D, tf.reshape(v, [B * H, Tk, hd]) as tf.Tensor3D);
    return tf.reshape(tf.transpose(tf.reshape(yh, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D;
  }

  /** Next-token logits [n, vocab] from hidden states [n, n_embd] (head tied to wte). */
  lmHead(h: tf.Tensor2D): tf.Tensor2D {
    return tiedHead(h, this.p('wte.weight'));
  }

  logits(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.lmHead(this.hidden(ids, opts));
  }
}
