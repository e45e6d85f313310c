/**
 * Decoding without dispatch: after the prompt has gone through the model once (TensorFlow.js,
 * filling the key/value cache), each new token of every sequence goes through the whole model as
 * a handful of fused-kernel calls per layer on the wasm heap: no op, no tensor, no tape. A step of
 * the 0.8M-parameter character model costs about 4 ms in ops, nearly all of it dispatch; here it
 * costs what its arithmetic costs.
 *
 * Same maths as model.ts (GPT-2) and llama.ts (Llama, Qwen2): per layer
 *   GPT-2: h = LN1(x); q,k,v = h Wqkv + b; a = attend(q, cache); x += a Wo + b; x += GELU(LN2(x) Wfc + b) Wproj + b
 *   Llama: h = RMS1(x); q,k,v = h Wq, h Wk, h Wv (+ b); rope(q, k); a = attend; x += a Wo;
 *          x += (silu(RMS2(x) Wg) * RMS2(x) Wu) Wd
 * then the final norm and the head (tied: E^T; untied: lm_head). Only where the fused kernels serve
 * the backend; generate() takes the op path otherwise. A LoRA adapter adds its two small products
 * to each projection it adapts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, isLlama } from './causal-lm';
import { fusedKernels } from './kernels/fused';
import { KVCache } from './model';
import type { Llama } from './llama';

export class FusedDecoder {
  private readonly kept: tf.Tensor[] = [];
  private readonly kc: tf.Tensor[] = [];
  private readonly vc: tf.Tensor[] = [];
  private readonly buf: Record<string, tf.Tensor> = {};
  private readonly adapters = new Map<string, { A: tf.Tensor; B: tf.Tensor; r: number }>();

  private constructor(private readonly model: CausalLM, readonly B: number, readonly maxLength: number, private readonly f: NonNullable<ReturnType<typeof fusedKernels>>) {
    const c = model.config;
    const llama = c.llama;
    const H = c.n_head, hd = llama ? llama.head_dim : c.n_embd / H, KV = llama ? llama.num_key_value_heads : H;
    const C = c.n_embd, F = llama ? llama.intermediate_size : 4 * C, N = maxLength;
    const alloc = (name: string, shape: number[], dtype: 'float32' | 'int32' = 'float32') => {
      const t = f.zeros(shape, dtype);
      this.kept.push(t);
      this.buf[name] = t;
    };
    for (let i = 0; i < c.n_layer; i++) {
      this.kc.push(f.zeros([B, KV, N, hd]));
      this.vc.push(f.zeros([B, KV, N, hd]));
    }
    alloc('ids', [B], 'int32');
    alloc('x', [B, C]);
    alloc('h', [B, C]);
    alloc('tmp', [B, C]);
    alloc('q', [B, llama ? H * hd : 3 * C]); // GPT-2: q, k and v side by side, as c_attn writes them
    alloc('k', [B, KV * hd]);
    alloc('v', [B, KV * hd]);
    alloc('att', [B, H * hd]);
    alloc('f1', [B, F]);
    alloc('f2', [B, F]);
    alloc('mean', [B]);
    alloc('rstd', [B]);
    alloc('positions', [B], 'int32');
    alloc('scores', [N]);
    alloc('logits', [B, c.vocab_size]);
    if (llama) {
      // the rotary table of every position, made once: [N, hd] cos and sin
      const cos = new Float32Array(N * hd), sin = new Float32Array(N * hd);
      for (let p = 0; p < N; p++) (model as Llama).rotaryAt(p, cos.subarray(p * hd, (p + 1) * hd), sin.subarray(p * hd, (p + 1) * hd));
      for (const [name, v] of [['cos', cos], ['sin', sin]] as const) {
        const t = tf.tensor2d(v, [N, hd]);
        this.kept.push(t);
        this.buf[name] = t;
      }
    }
  }

  /**
   * A decoder for B sequences whose first `cache.length` positions are in `cache` (as the op path
   * left it: [B, heads, length, head_dim] per layer; or none yet), or undefined where it cannot serve.
   * Its own cache holds `maxLength` positions (at most the model's context): what the sequences reach.
   */
  static from(model: CausalLM, B: number, cache: KVCache, maxLength = model.config.n_positions): FusedDecoder | undefined {
    const f = fusedKernels();
    const c = model.config;
    // a view without weights of its own (the reference as the policy with its adapter off) takes the op path
    if (!f || !model.params.size || (cache.length > 0 && cache.k.length !== c.n_layer)) return undefined;
    const hd = c.llama ? c.llama.head_dim : c.n_embd / c.n_head;
    if (c.n_embd % 4 || hd % 4) return undefined;
    const d = new FusedDecoder(model, B, Math.max(1, Math.min(maxLength, c.n_positions), cache.length), f);
    d.adapt();
    d.load(cache);
    return d;
  }

  /**
   * A LoRA adapter beside the weights, as the op path applies it: y = x W + b + (x A)(alpha/r B),
   * two small products per adapted projection (B scaled once for the decoder's life), no merged
   * copy of the weights.
   */
  private adapt(): void {
    const lora = this.model.lora;
    if (!lora) return;
    let widest = 0;
    for (const [m, a] of lora.A) {
      const b = lora.B.get(m)!;
      const scaled = tf.tidy(() => tf.mul(b, lora.scale));
      this.kept.push(scaled);
      this.adapters.set(m, { A: a, B: scaled, r: a.shape[1] as number });
      widest = Math.max(widest, b.shape[1] as number);
    }
    const r = Math.max(...[...this.adapters.values()].map((x) => x.r));
    for (const [name, shape] of [['loraT', [this.B, r]], ['loraY', [this.B, widest]]] as const) {
      const t = this.f.zeros([...shape]);
      this.kept.push(t);
      this.buf[name] = t;
    }
  }

  /** y [B, N] = x [B, K] W + b of projection m, plus its adapter's update when it has one. */
  private proj(x: number, m: string, y: number, K: number, N: number): void {
    const { k } = this.f;
    k.matvec(x, this.w(m + '.weight'), this.w(m + '.bias'), y, this.B, K, N);
    const a = this.adapters.get(m);
    if (!a) return;
    const t = this.p('loraT'), u = this.p('loraY');
    k.matvec(x, this.f.ptr(a.A), 0, t, this.B, K, a.r);
    k.matvec(t, this.f.ptr(a.B), 0, u, this.B, a.r, N);
    k.add_to(y, u, this.B * N);
  }

  private load(cache: KVCache): void {
    if (!cache.length) return;
    const heap = this.f.heap();
    const len = cache.length;
    for (let i = 0; i < this.kc.length; i++) {
      for (const [src, dst] of [[cache.k[i], this.kc[i]], [cache.v[i], this.vc[i]]]) {
        const [b, kv, N, hd] = dst.shape as [number, number, number, number];
        const rows = b * kv;
        const s = src.dataSync() as Float32Array; // [rows, len, hd]
        const at = this.f.ptr(dst) >> 2;
        for (let r = 0; r < rows; r++) heap.set(s.subarray(r * len * hd, (r + 1) * len * hd), at + r * N * hd);
      }
    }
  }

  private p(name: string): number {
    return this.f.ptr(this.buf[name]);
  }

  private w(name: string): number {
    const v = this.model.params.get(name);
    return v ? this.f.ptr(v) : 0;
  }

  /**
   * Logits [B * vocab] (a view of the heap, valid until the next step) after token ids[b] at
   * position positions[b] of sequence b (a number: the same position for all).
   */
  step(ids: number[], positions: number | number[]): Float32Array {
    const { k } = this.f;
    const c = this.model.config, B = this.B, C = c.n_embd, V = c.vocab_size, N = this.maxLength;
    const pos = typeof positions === 'number' ? new Array<number>(B).fill(positions) : positions;
    if (pos.some((p) => p < 0 || p >= N)) throw new Error(`a position outside the context of ${N}: ${pos.join(',')}`);
    const ints = new Int32Array(this.f.heap().buffer);
    ints.set(ids, this.p('ids') >> 2);
    ints.set(pos, this.p('positions') >> 2);
    const positionsAt = this.p('positions');
    const x = this.p('x'), h = this.p('h'), tmp = this.p('tmp'), q = this.p('q'), att = this.p('att'), f1 = this.p('f1'), f2 = this.p('f2');
    const mean = this.p('mean'), rstd = this.p('rstd'), scores = this.p('scores');
    const eps = c.layer_norm_epsilon;
    if (isLlama(c)) {
      const l = c.llama!, H = c.n_head, KV = l.num_key_value_heads, hd = l.head_dim, F = l.intermediate_size;
      const cos = this.p('cos'), sin = this.p('sin');
      const kk = this.p('k'), vv = this.p('v');
      k.embed(this.w('embed_tokens.weight'), this.p('ids'), 0, positionsAt, x, B, C);
      for (let i = 0; i < c.n_layer; i++) {
        const p = `layers.${i}.`;
        k.rmsnorm_fwd(x, this.w(p + 'input_layernorm.weight'), h, rstd, B, C, eps);
        this.proj(h, p + 'self_attn.q_proj', q, C, H * hd);
        this.proj(h, p + 'self_attn.k_proj', kk, C, KV * hd);
        this.proj(h, p + 'self_attn.v_proj', vv, C, KV * hd);
        k.rope(q, cos, sin, positionsAt, B, H, hd, H * hd);
        k.rope(kk, cos, sin, positionsAt, B, KV, hd, KV * hd);
        k.attend(q, kk, vv, H * hd, KV * hd, this.f.ptr(this.kc[i]), this.f.ptr(this.vc[i]), att, scores, B, H, KV, hd, positionsAt, N, 1 / Math.sqrt(hd));
        this.proj(att, p + 'self_attn.o_proj', tmp, H * hd, C);
        k.add_to(x, tmp, B * C);
        k.rmsnorm_fwd(x, this.w(p + 'post_attention_layernorm.weight'), h, rstd, B, C, eps);
        this.proj(h, p + 'mlp.gate_proj', f1, C, F);
        this.proj(h, p + 'mlp.up_proj', f2, C, F);
        k.swiglu_fwd(f1, f2, f1, B * F);
        this.proj(f1, p + 'mlp.down_proj', tmp, F, C);
        k.add_to(x, tmp, B * C);
      }
      k.rmsnorm_fwd(x, this.w('norm.weight'), h, rstd, B, C, eps);
      if (this.model.params.has('lm_head.weight')) k.matvec(h, this.w('lm_head.weight'), 0, this.p('logits'), B, C, V);
      else k.matvec_t(h, this.w('embed_tokens.weight'), this.p('logits'), B, C, V);
    } else {
      const H = c.n_head, hd = C / H;
      k.embed(this.w('wte.weight'), this.p('ids'), this.w('wpe.weight'), positionsAt, x, B, C);
      for (let i = 0; i < c.n_layer; i++) {
        const p = `h.${i}.`;
        k.layernorm_fwd(x, this.w(p + 'ln_1.weight'), this.w(p + 'ln_1.bias'), h, mean, rstd, B, C, eps);
        this.proj(h, p + 'attn.c_attn', q, C, 3 * C);
        k.attend(q, q + 4 * C, q + 8 * C, 3 * C, 3 * C, this.f.ptr(this.kc[i]), this.f.ptr(this.vc[i]), att, scores, B, H, H, hd, positionsAt, N, 1 / Math.sqrt(hd));
        this.proj(att, p + 'attn.c_proj', tmp, C, C);
        k.add_to(x, tmp, B * C);
        k.layernorm_fwd(x, this.w(p + 'ln_2.weight'), this.w(p + 'ln_2.bias'), h, mean, rstd, B, C, eps);
        this.proj(h, p + 'mlp.c_fc', f1, C, 4 * C);
        k.gelu_fwd(f1, f1, B * 4 * C);
        this.proj(f1, p + 'mlp.c_proj', tmp, 4 * C, C);
        k.add_to(x, tmp, B * C);
      }
      k.layernorm_fwd(x, this.w('ln_f.weight'), this.w('ln_f.bias'), h, mean, rstd, B, C, eps);
      k.matvec_t(h, this.w('wte.weight'), this.p('logits'), B, C, V);
    }
    const at = this.p('logits') >> 2;
    return this.f.heap().subarray(at, at + B * V);
  }

  dispose(): void {
    tf.dispose([...this.kept, ...this.kc, ...this.vc]);
  }
}
