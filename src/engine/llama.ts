/**
 * The Llama family (Touvron et al. 2023; Llama 2/3.x, SmolLM, TinyLlama) and Qwen2 in
 * TensorFlow.js, parameter for parameter Transformers' LlamaForCausalLM / Qwen2ForCausalLM:
 * pre-RMSNorm blocks, rotary position embeddings (Su et al. 2021) on queries and keys,
 * grouped-query attention (Ainslie et al. 2023), a SwiGLU MLP, no dropout. Qwen2 is Llama with
 * biases on q/k/v. Linear weights are held as [in, out] (Transformers stores nn.Linear as
 * [out, in]; checkpoints are transposed on load and save), so x @ W needs no transpose, as in
 * model.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LlamaConfig, ModelConfig } from './config';
import { Rng } from './rng';
import { causalSoftmax, fusedAttention, innerVariableGrads, matMul, matMulFrozen, rmsNorm, swiglu, tiedHead } from './layers';
import { bmm } from './kernels/bmm';
import { appendToCache, ForwardOptions, KVCache } from './model';
import { ModelParameters } from './parameters';

function lc(c: ModelConfig): LlamaConfig {
  if (!c.llama) throw new Error(`not a Llama-family config (arch ${c.arch ?? 'gpt2'})`);
  return c.llama;
}

/**
 * Parameter names (Transformers' without the "model." prefix) and shapes as held here
 * ([in, out] for projections). lm_head only when the embeddings are untied.
 */
export function llamaParameterShapes(c: ModelConfig): [string, number[]][] {
  const l = lc(c);
  const C = c.n_embd, q = c.n_head * l.head_dim, kv = l.num_key_value_heads * l.head_dim, F = l.intermediate_size;
  const out: [string, number[]][] = [['embed_tokens.weight', [c.vocab_size, C]]];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `layers.${i}.`;
    out.push([p + 'input_layernorm.weight', [C]]);
    out.push([p + 'self_attn.q_proj.weight', [C, q]]);
    if (l.qkv_bias) out.push([p + 'self_attn.q_proj.bias', [q]]);
    out.push([p + 'self_attn.k_proj.weight', [C, kv]]);
    if (l.qkv_bias) out.push([p + 'self_attn.k_proj.bias', [kv]]);
    out.push([p + 'self_attn.v_proj.weight', [C, kv]]);
    if (l.qkv_bias) out.push([p + 'self_attn.v_proj.bias', [kv]]);
    out.push([p + 'self_attn.o_proj.weight', [q, C]]);
    if (l.o_bias) out.push([p + 'self_attn.o_proj.bias', [C]]);
    out.push([p + 'post_attention_layernorm.weight', [C]]);
    for (const [n, shape] of [['gate_proj', [C, F]], ['up_proj', [C, F]], ['down_proj', [F, C]]] as const) {
      out.push([`${p}mlp.${n}.weight`, [...shape]]);
      if (l.mlp_bias) out.push([`${p}mlp.${n}.bias`, [shape[1]]]);
    }
  }
  out.push(['norm.weight', [C]]);
  if (!l.tie_word_embeddings) out.push(['lm_head.weight', [C, c.vocab_size]]);
  return out;
}

/** A projection held as [in, out] here and [out, in] in Transformers' checkpoints. */
export const isLinearWeight = (name: string): boolean => name.endsWith('_proj.weight') || name === 'lm_head.weight';

/** Transformers' checkpoint name of a parameter (LlamaForCausalLM prefixes the trunk with "model."). */
export const llamaHfName = (name: string): string => (name === 'lm_head.weight' ? name : `model.${name}`);

/** Transposes a row-major [rows, cols] matrix (checkpoint layout <-> ours). */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Transformers' initialisation: N(0, 0.02) for matrices, RMSNorm gains 1, biases 0; seeded. */
export function llamaInitialWeights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of llamaParameterShapes(c)) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (name.endsWith('norm.weight')) a.fill(1);
    else if (shape.length === 2) for (let i = 0; i < a.length; i++) a[i] = rng.normal() * 0.02;
    out.set(name, a);
  }
  return out;
}

/**
 * Rotary inverse frequencies theta^(-2i/d), i < d/2, in float32 as Transformers computes them;
 * with rope_scaling "llama3" the long wavelengths are divided by `factor` and a band between
 * low_freq_factor and high_freq_factor is interpolated smoothly (Llama 3.1's recipe).
 */
export function ropeInverseFrequencies(l: LlamaConfig): Float32Array {
  const d = l.head_dim;
  const inv = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / Math.fround(l.rope_theta ** Math.fround((2 * i) / d));
  const s = l.rope_scaling;
  if (!s) return inv;
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor;
    else if (wavelen >= highWavelen) {
      const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
    }
  }
  return inv;
}

export class Llama extends ModelParameters {
  private readonly invFreq: Float32Array;

  constructor(readonly config: ModelConfig, weights: Map<string, Float32Array>, trainable = true) {
    super(llamaParameterShapes(config), weights, trainable);
    this.invFreq = ropeInverseFrequencies(lc(config));
  }

  static init(config: ModelConfig, seed: number): Llama {
    return new Llama(config, llamaInitialWeights(config, seed));
  }

  /** Non-embedding parameters (the untied head counts as embedding, as in Kaplan et al.). */
  get numBlockParameters(): number {
    const head = this.params.get('lm_head.weight')?.size ?? 0;
    return this.numParameters - this.p('embed_tokens.weight').size - head;
  }

  /** cos and sin [T, head_dim] of positions past..past+T-1, halves repeated (Transformers' layout). */
  private rotary(past: number, T: number): [tf.Tensor2D, tf.Tensor2D] {
    const d = 2 * this.invFreq.length;
    const cos = new Float32Array(T * d), sin = new Float32Array(T * d);
    for (let t = 0; t < T; t++) this.rotaryAt(past + t, cos.subarray(t * d, (t + 1) * d), sin.subarray(t * d, (t + 1) * d));
    return [tf.tensor2d(cos, [T, d]), tf.tensor2d(sin, [T, d])];
  }

  /** cos and sin of one position into [head_dim] arrays (the decoder's rotary row). */
  rotaryAt(pos: number, cos: Float32Array, sin: Float32Array): void {
    const half = this.invFreq.length;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * this.invFreq[i]);
      cos[i] = cos[half + i] = Math.cos(angle);
      sin[i] = sin[half + i] = Math.sin(angle);
    }
  }

  /** x [B, T, n, d] rotated: x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1]. */
  private rope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
    const [B, T, n, d] = x.shape;
    const x1 = tf.slice(x, [0, 0, 0, 0], [B, T, n, d / 2]);
    const x2 = tf.slice(x, [0, 0, 0, d / 2], [B, T, n, d / 2]);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  }

  /** Projection m: x W (+ b) (+ its LoRA update unless switched off). */
  private proj(x: tf.Tensor2D, m: string, opts: ForwardOptions): tf.Tensor2D {
    const w = this.p(m + '.weight');
    let y = (w.trainable ? matMul : matMulFrozen)(x, w as unknown as tf.Tensor2D);
    const b = this.params.get(m + '.bias');
    if (b) y = tf.add(y, b);
    const d = opts.adapter === false ? undefined : this.lora?.delta(x, m, opts);
    return d ? tf.add(y, d) : y;
  }

  /**
   * Activation checkpointing while training: each layer keeps only its input and recomputes its
   * inside during the backward pass (one more forward, about a third more compute). TensorFlow.js
   * keeps every intermediate of every op for the backward pass, about 200 MB per layer at 256
   * tokens of SmolLM2-135M's shape, so without it a 30-layer model does not fit the wasm backend's
   * 4 GiB at batch 1. 'auto': when batch x tokens x layers x width passes 2^21. Only while a
   * gradient is taken (not in a cached decoding step).
   */
  checkpointing: boolean | 'auto' = 'auto';

  /** Final hidden states [B*T, n_embd] after the last RMSNorm, for token ids [B, T]. */
  hidden(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    const c = this.config;
    const [B, T] = ids.shape;
    const past = opts.cache?.length ?? 0;
    if (past + T > c.n_positions) throw new Error(`sequence of ${past + T} tokens exceeds max_position_embeddings ${c.n_positions}`);
    let x = tf.gather(this.p('embed_tokens.weight'), tf.reshape(ids, [B * T])) as tf.Tensor2D;
    // whenever a gradient is being taken (PPO's and DPO's updates read log-probabilities without the training flag)
    const ckpt = !opts.cache && !noGradient() && (this.checkpointing === 'auto' ? B * T * c.n_layer * c.n_embd > 2 ** 21 : this.checkpointing);
    const pos = this.positions(past, T);
    for (let i = 0; i < c.n_layer; i++) {
      // each layer's dropout (LoRA's) from its own seed: the same masks with or without checkpointing
      const seed = opts.rng?.seed();
      const lo = { ...opts, rng: seed === undefined ? undefined : new Rng(seed) };
      // with no gradient being taken, each layer's intermediates go as soon as it is done (scoring
      // 8,192 tokens kept about 300 MB per layer until the whole forward pass ended)
      x = ckpt ? this.checkpointedLayer(i, x, B, T, pos, opts, seed) : noGradient() ? tf.tidy(() => this.layer(i, x, B, T, past, pos, lo)) : this.layer(i, x, B, T, past, pos, lo);
    }
    if (opts.cache) opts.cache.length = past + T;
    return rmsNorm(x, this.p('norm.weight'), c.layer_norm_epsilon);
  }

  /**
   * What every layer of one forward pass shares, made once: cos and sin [T, 1, head_dim] of the
   * positions past..past+T-1.
   */
  private positions(past: number, T: number): Positions {
    const hd = lc(this.config).head_dim;
    const [cos, sin] = this.rotary(past, T);
    return {
      cos: tf.reshape(cos, [T, 1, hd]),
      sin: tf.reshape(sin, [T, 1, hd]),
    };
  }

  /** Layer i on x [B*T, C] at positions past..past+T-1. */
  private layer(i: number, x: tf.Tensor2D, B: number, T: number, past: number, pos: Positions, opts: ForwardOptions): tf.Tensor2D {
    const c = this.config, l = lc(c);
    const H = c.n_head, KV = l.num_key_value_heads, hd = l.head_dim, rep = H / KV;
    const { cos: cos4, sin: sin4 } = pos;
    const p = `layers.${i}.`;
    // grouped-query self-attention with rotary positions
    const h1 = rmsNorm(x, this.p(p + 'input_layernorm.weight'), c.layer_norm_epsilon);
    const q = this.rope(tf.reshape(this.proj(h1, p + 'self_attn.q_proj', opts), [B, T, H, hd]), cos4, sin4);
    const kRot = this.rope(tf.reshape(this.proj(h1, p + 'self_attn.k_proj', opts), [B, T, KV, hd]), cos4, sin4);
    const vProj = this.proj(h1, p + 'self_attn.v_proj', opts);
    // one fused kernel where it serves (no cache to fill), the ops below elsewhere
    const fused = opts.cache ? undefined : fusedAttention(
      [tf.reshape(q, [B * T, H * hd]), tf.reshape(kRot, [B * T, KV * hd]), vProj] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D], B, T, H, KV, hd);
    if (fused) return this.mlp(i, tf.add(x, this.proj(fused, p + 'self_attn.o_proj', opts)), opts);
    const kNew = tf.transpose(kRot, [0, 2, 1, 3]) as tf.Tensor4D;
    const vNew = tf.transpose(tf.reshape(vProj, [B, T, KV, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const [k, v] = opts.cache ? appendToCache(opts.cache, i, kNew, vNew, past) : [kNew, vNew];
    // q [B, H, T, hd] = [B*KV, rep*T, hd]: each group's queries against its one key/value head
    const Tk = k.shape[2];
    const qg = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B * KV, rep * T, hd]) as tf.Tensor3D;
    const kT = tf.reshape(tf.transpose(k, [0, 1, 3, 2]), [B * KV, hd, Tk]) as tf.Tensor3D;
    const att = causalSoftmax(bmm(qg, kT), 1 / Math.sqrt(hd), T, past);
    const yg = bmm(att as tf.Tensor3D, tf.reshape(v, [B * KV, Tk, hd]) as tf.Tensor3D);
    const y = tf.reshape(tf.transpose(tf.reshape(yg, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, H * hd]) as tf.Tensor2D;
    return this.mlp(i, tf.add(x, this.proj(y, p + 'self_attn.o_proj', opts)), opts);
  }

  /** Layer i's SwiGLU MLP with its residual: x + down(silu(gate(h)) * up(h)), h = RMSNorm(x). */
  private mlp(i: number, x: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    const p = `layers.${i}.`;
    const h2 = rmsNorm(x, this.p(p + 'post_attention_layernorm.weight'), this.config.layer_norm_epsilon);
    const a = swiglu(this.proj(h2, p + 'mlp.gate_proj', opts), this.proj(h2, p + 'mlp.up_proj', opts)) as tf.Tensor2D;
    return tf.add(x, this.proj(a, p + 'mlp.down_proj', opts));
  }

  /**
   * Layer i as one op that saves only its input: the backward pass runs the layer again under
   * its own gradient tape and returns the gradients of its input and of its trained weights
   * (which are the op's inputs, so the outer gradient reaches them). Dropout (LoRA's) replays
   * the same seed. The positions' tensors are saved with the input: the forward pass's own are
   * freed before the backward pass runs.
   */
  private checkpointedLayer(i: number, x: tf.Tensor2D, B: number, T: number, pos: Positions, opts: ForwardOptions, seed: number | undefined): tf.Tensor2D {
    const vars = [...this.params.entries()].filter(([n, v]) => v.trainable && n.startsWith(`layers.${i}.`)).map(([, v]) => v);
    const run = (xi: tf.Tensor2D, p: Positions) => this.layer(i, xi, B, T, 0, p, { ...opts, rng: seed === undefined ? undefined : new Rng(seed) });
    const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const xi = args[0] as tf.Tensor2D;
      save([xi, pos.cos, pos.sin]);
      return {
        value: run(xi, pos),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const xv = tf.variable(saved[0], true);
          const p = { cos: saved[1], sin: saved[2] };
          const grads = innerVariableGrads(() => tf.sum(tf.mul(run(xv as unknown as tf.Tensor2D, p), dy)), [xv, ...vars]);
          const out = [grads[xv.name], ...vars.map((v) => grads[v.name] ?? tf.zerosLike(v))];
          xv.dispose();
          return out;
        },
      };
    }) as Parameters<typeof tf.customGrad>[0]);
    return f(x, ...vars) as tf.Tensor2D;
  }

  /** Next-token logits [n, vocab] from hidden states [n, n_embd]: lm_head, or the embeddings when tied. */
  lmHead(h: tf.Tensor2D): tf.Tensor2D {
    const head = this.params.get('lm_head.weight');
    if (head) return (head.trainable ? matMul : matMulFrozen)(h, head as unknown as tf.Tensor2D);
    const E = this.p('embed_tokens.weight');
    if (E.trainable) return tiedHead(h, E);
    // a frozen tied head (LoRA, generation, scoring): its transpose made once and kept, so XNNPACK
    // multiplies by it as by any weight (packed once: a decoding step's head 4 ms, not 16)
    this.frozenHead ??= tf.keep(tf.transpose(E) as tf.Tensor2D);
    return matMulFrozen(h, this.frozenHead);
  }

  private frozenHead?: tf.Tensor2D;

  logits(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.lmHead(this.hidden(ids, opts));
  }

  dispose(): void {
    super.dispose();
    this.frozenHead?.dispose();
  }
}

/** Rotary cos/sin [T, 1, head_dim] of one forward pass. */
interface Positions {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

/** No gradient tape is recording (inference, scoring, generation). */
const noGradient = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth === 0;

export type { KVCache };
