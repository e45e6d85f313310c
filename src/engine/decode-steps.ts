/**
 * One decoding step of a whole model as fused-kernel calls on a wasm heap: each new token of every
 * sequence goes through the model in a handful of calls per layer, no op, no tensor, no tape.
 * Pure (no TensorFlow.js): decode.ts runs it on the wasm backend's heap, where the model's weights
 * already are, and decode-thread.ts on a heap of its own, for the other half of a batch.
 *
 * Same maths as model.ts (GPT-2) and llama.ts (Llama, Qwen2): per layer
 *   GPT-2: h = LN1(x); q,k,v = h Wqkv + b; a = attend(q, cache); x += a Wo + b; x += GELU(LN2(x) Wfc + b) Wproj + b
 *   Llama: h = RMS1(x); q,k,v = h Wq, h Wk, h Wv (+ b); rope(q, k); a = attend; x += a Wo;
 *          x += (silu(RMS2(x) Wg) * RMS2(x) Wu) Wd
 * then the final norm and the head (tied: E^T; untied: lm_head). A LoRA adapter adds its two small
 * products to each projection it adapts: y = x W + b + (x A)(alpha/r B).
 */
import { ModelConfig, isLlama } from './config';
import type { FusedExports } from './kernels/fused';

/** Where a decoder's data are in one wasm heap (byte offsets). */
export interface DecodeHeap {
  k: FusedExports;
  /** A parameter's values; 0 when the model has none by that name (a bias it does not use). */
  weight(name: string): number;
  /** A scratch buffer of stepBuffers(). */
  buffer(name: string): number;
  /** Each layer's key and value cache, [B, KV heads, N positions, head_dim]. */
  kc: number[];
  vc: number[];
  /** LoRA adapters by module: A [in, r] and B [r, out] already scaled by alpha / r. */
  adapters: Map<string, { A: number; B: number; r: number }>;
  memory(): ArrayBufferLike;
}

export const headDim = (c: ModelConfig) => (c.llama ? c.llama.head_dim : c.n_embd / c.n_head);
export const kvHeads = (c: ModelConfig) => (c.llama ? c.llama.num_key_value_heads : c.n_head);

/** The scratch buffers of B sequences decoded up to N positions: name, shape, type. */
export function stepBuffers(c: ModelConfig, B: number, N: number, lora?: { r: number; widest: number }): [string, number[], 'float32' | 'int32'][] {
  const llama = c.llama, H = c.n_head, hd = headDim(c), KV = kvHeads(c);
  const C = c.n_embd, F = llama ? llama.intermediate_size : 4 * C;
  const out: [string, number[], 'float32' | 'int32'][] = [
    ['ids', [B], 'int32'], ['positions', [B], 'int32'],
    ['x', [B, C], 'float32'], ['h', [B, C], 'float32'], ['tmp', [B, C], 'float32'],
    ['q', [B, llama ? H * hd : 3 * C], 'float32'], // GPT-2: q, k and v side by side, as c_attn writes them
    ['k', [B, KV * hd], 'float32'], ['v', [B, KV * hd], 'float32'], ['att', [B, H * hd], 'float32'],
    ['f1', [B, F], 'float32'], ['f2', [B, F], 'float32'], ['mean', [B], 'float32'], ['rstd', [B], 'float32'],
    ['scores', [N], 'float32'], ['logits', [B, c.vocab_size], 'float32'],
  ];
  if (llama) out.push(['cos', [N, hd], 'float32'], ['sin', [N, hd], 'float32']);
  if (lora) out.push(['loraT', [B, lora.r], 'float32'], ['loraY', [B, lora.widest], 'float32']);
  return out;
}

/** The rotary tables of positions 0..N-1, [N, hd] each, from the model's own rotaryAt. */
export function rotaryTables(N: number, hd: number, rotaryAt: (p: number, cos: Float32Array, sin: Float32Array) => void): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(N * hd), sin = new Float32Array(N * hd);
  for (let p = 0; p < N; p++) rotaryAt(p, cos.subarray(p * hd, (p + 1) * hd), sin.subarray(p * hd, (p + 1) * hd));
  return { cos, sin };
}

/** A projection's addresses: its weight, its bias (0: none), its adapter's A and scaled B (0: none). */
interface Projection {
  W: number;
  bias: number;
  A: number;
  B: number;
  r: number;
}

/** One layer's addresses, resolved once for the decoder's life (the weights do not move while it lives). */
interface LayerAddresses {
  norm1: number;
  norm1Bias: number;
  norm2: number;
  norm2Bias: number;
  projections: Projection[];
  kc: number;
  vc: number;
}

export class DecodeSteps {
  private readonly layers: LayerAddresses[];
  private readonly buf: Record<string, number>;

  constructor(private readonly h: DecodeHeap, private readonly c: ModelConfig, readonly B: number, readonly N: number) {
    const proj = (m: string): Projection => {
      const a = h.adapters.get(m);
      return { W: h.weight(m + '.weight'), bias: h.weight(m + '.bias'), A: a?.A ?? 0, B: a?.B ?? 0, r: a?.r ?? 0 };
    };
    const llama = isLlama(c);
    this.layers = Array.from({ length: c.n_layer }, (_, i) => {
      if (llama) {
        const p = `layers.${i}.`;
        return {
          norm1: h.weight(p + 'input_layernorm.weight'), norm1Bias: 0, norm2: h.weight(p + 'post_attention_layernorm.weight'), norm2Bias: 0,
          projections: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'].map((m) => proj(p + m)),
          kc: h.kc[i], vc: h.vc[i],
        };
      }
      const p = `h.${i}.`;
      return {
        norm1: h.weight(p + 'ln_1.weight'), norm1Bias: h.weight(p + 'ln_1.bias'), norm2: h.weight(p + 'ln_2.weight'), norm2Bias: h.weight(p + 'ln_2.bias'),
        projections: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].map((m) => proj(p + m)),
        kc: h.kc[i], vc: h.vc[i],
      };
    });
    const names = ['ids', 'positions', 'x', 'h', 'tmp', 'q', 'k', 'v', 'att', 'f1', 'f2', 'mean', 'rstd', 'scores', 'logits'];
    if (llama) names.push('cos', 'sin');
    if (h.adapters.size) names.push('loraT', 'loraY');
    this.buf = Object.fromEntries(names.map((n) => [n, h.buffer(n)]));
  }

  /** y [B, N] = x [B, K] W + b of a projection, plus its adapter's update when it has one. */
  private proj(x: number, m: Projection, y: number, K: number, N: number): void {
    const { k } = this.h;
    k.matvec(x, m.W, m.bias, y, this.B, K, N);
    if (!m.A) return;
    const t = this.buf.loraT, u = this.buf.loraY;
    k.matvec(x, m.A, 0, t, this.B, K, m.r);
    k.matvec(t, m.B, 0, u, this.B, m.r, N);
    k.add_to(y, u, this.B * N);
  }

  /**
   * The logits [B, vocab] (byte offset in the heap, valid until the next step) after token ids[b]
   * at position positions[b] of sequence b.
   */
  step(ids: ArrayLike<number>, positions: ArrayLike<number>): number {
    const { k } = this.h;
    const w = (n: string) => this.h.weight(n);
    const c = this.c, B = this.B, C = c.n_embd, V = c.vocab_size, N = this.N;
    for (let b = 0; b < B; b++) if (!(positions[b] >= 0 && positions[b] < N)) throw new Error(`a position outside the context of ${N}: ${Array.from(positions).join(',')}`);
    const { ids: idsAt, positions: at, x, h, tmp, q, att, f1, f2, mean, rstd, scores, logits } = this.buf;
    const ints = new Int32Array(this.h.memory());
    ints.set(ids, idsAt >> 2);
    ints.set(positions, at >> 2);
    const eps = c.layer_norm_epsilon, H = c.n_head, hd = headDim(c), KV = kvHeads(c), scale = 1 / Math.sqrt(hd);
    if (isLlama(c)) {
      const F = c.llama!.intermediate_size, { cos, sin, k: kk, v: vv } = this.buf;
      k.embed(w('embed_tokens.weight'), idsAt, 0, at, x, B, C);
      for (const L of this.layers) {
        const [wq, wk, wv, wo, wg, wu, wd] = L.projections;
        k.rmsnorm_fwd(x, L.norm1, h, rstd, B, C, eps);
        this.proj(h, wq, q, C, H * hd);
        this.proj(h, wk, kk, C, KV * hd);
        this.proj(h, wv, vv, C, KV * hd);
        k.rope(q, cos, sin, at, B, H, hd, H * hd);
        k.rope(kk, cos, sin, at, B, KV, hd, KV * hd);
        k.attend(q, kk, vv, H * hd, KV * hd, L.kc, L.vc, att, scores, B, H, KV, hd, at, N, scale);
        this.proj(att, wo, tmp, H * hd, C);
        k.add_to(x, tmp, B * C);
        k.rmsnorm_fwd(x, L.norm2, h, rstd, B, C, eps);
        this.proj(h, wg, f1, C, F);
        this.proj(h, wu, f2, C, F);
        k.swiglu_fwd(f1, f2, f1, B * F);
        this.proj(f1, wd, tmp, F, C);
        k.add_to(x, tmp, B * C);
      }
      k.rmsnorm_fwd(x, w('norm.weight'), h, rstd, B, C, eps);
      if (w('lm_head.weight')) k.matvec(h, w('lm_head.weight'), 0, logits, B, C, V);
      else k.matvec_t(h, w('embed_tokens.weight'), logits, B, C, V);
    } else {
      k.embed(w('wte.weight'), idsAt, w('wpe.weight'), at, x, B, C);
      for (const L of this.layers) {
        const [attn, attnProj, fc, mlpProj] = L.projections;
        k.layernorm_fwd(x, L.norm1, L.norm1Bias, h, mean, rstd, B, C, eps);
        this.proj(h, attn, q, C, 3 * C);
        k.attend(q, q + 4 * C, q + 8 * C, 3 * C, 3 * C, L.kc, L.vc, att, scores, B, H, H, hd, at, N, scale);
        this.proj(att, attnProj, tmp, C, C);
        k.add_to(x, tmp, B * C);
        k.layernorm_fwd(x, L.norm2, L.norm2Bias, h, mean, rstd, B, C, eps);
        this.proj(h, fc, f1, C, 4 * C);
        k.gelu_fwd(f1, f1, B * 4 * C);
        this.proj(f1, mlpProj, tmp, 4 * C, C);
        k.add_to(x, tmp, B * C);
      }
      k.layernorm_fwd(x, w('ln_f.weight'), w('ln_f.bias'), h, mean, rstd, B, C, eps);
      k.matvec_t(h, w('wte.weight'), logits, B, C, V);
    }
    return logits;
  }
}
