/**
 * LoRA (Hu et al. 2021): a frozen projection W gains a trainable low-rank update,
 *   y = x W + (alpha / r) * dropout(x) A B,   A [in, r], B [r, out], B = 0 at the start,
 * so training starts from the model as it is and touches r (in + out) numbers per projection.
 * Saved in PEFT's layout (adapter_config.json + adapter_model.safetensors, lora_A.weight
 * [r, in] and lora_B.weight [out, r], "base_model.model." + Transformers' module path), so
 * `PeftModel.from_pretrained(base, folder)` loads it; GPT-2's Conv1D is marked fan_in_fan_out.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Arch, ModelConfig } from './config';
import { matMul } from './layers';
import { Rng } from './rng';
import { NamedTensor } from './safetensors';
import { transpose2d } from './llama';

export interface LoraConfig {
  /** Rank r of the update. */
  r: number;
  /** Scale alpha: the update is multiplied by alpha / r. */
  alpha: number;
  /** Dropout on the adapter's input while training. */
  dropout: number;
  /** Module names (the last part of the path) that get an adapter. */
  targets: string[];
}

/** The attention and MLP projections of each family (PEFT matches target_modules by name). */
export const DEFAULT_TARGETS: Record<Arch, string[]> = {
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen2: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};

export function loraConfig(arch: Arch, o: Partial<LoraConfig> & { r: number }): LoraConfig {
  const cfg = { alpha: 2 * o.r, dropout: 0, targets: DEFAULT_TARGETS[arch], ...o };
  if (!Number.isInteger(cfg.r) || cfg.r < 1 || cfg.r > 4096) throw new Error(`--lora-r must be a whole number from 1 to 4096, not ${cfg.r}`);
  if (!(cfg.alpha > 0)) throw new Error(`--lora-alpha must be positive, not ${cfg.alpha}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`--lora-dropout must be in [0, 1), not ${cfg.dropout}`);
  const known = new Set(DEFAULT_TARGETS[arch]);
  const bad = cfg.targets.find((t) => !known.has(t));
  if (bad !== undefined) throw new Error(`--lora-targets: "${bad}" is not a projection of ${arch} (${[...known].join(', ')})`);
  return cfg;
}

/** The projection weights an adapter attaches to: module name (weight name without ".weight") -> [in, out]. */
export function targetModules(shapes: [string, number[]][], targets: string[]): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const [name, shape] of shapes) {
    if (!name.endsWith('.weight') || shape.length !== 2) continue;
    const module = name.slice(0, -'.weight'.length);
    if (targets.includes(module.split('.').pop()!)) out.set(module, [shape[0], shape[1]]);
  }
  return out;
}

export class Lora {
  readonly A = new Map<string, tf.Variable>();
  readonly B = new Map<string, tf.Variable>();
  readonly scale: number;
  /** The folder of the base model the adapter belongs to (adapter_config.json's base_model_name_or_path). */
  base?: string;

  /** `weights`: A [in, r] and B [r, out] per module; absent modules start as PEFT does (A Kaiming-uniform, B zero). */
  constructor(readonly cfg: LoraConfig, modules: Map<string, [number, number]>, seed: number, weights?: Map<string, { A: Float32Array; B: Float32Array }>, trainable = true) {
    if (!modules.size) throw new Error(`no projection matches --lora-targets ${cfg.targets.join(',')}`);
    this.scale = cfg.alpha / cfg.r;
    const rng = new Rng(seed);
    for (const [m, [inF, outF]] of modules) {
      let a = weights?.get(m)?.A, b = weights?.get(m)?.B;
      if (weights && (!a || !b)) throw new Error(`the adapter has no weights for ${m}`);
      if (!a || !b) {
        // kaiming_uniform_(a=sqrt(5)) on [r, in]: U(-1/sqrt(in), 1/sqrt(in))
        const bound = 1 / Math.sqrt(inF);
        a = Float32Array.from({ length: inF * cfg.r }, () => (2 * rng.next() - 1) * bound);
        b = new Float32Array(cfg.r * outF);
      }
      if (a.length !== inF * cfg.r || b.length !== cfg.r * outF) throw new Error(`the adapter's ${m} does not fit [${inF}, ${outF}] at rank ${cfg.r}`);
      this.A.set(m, tf.tidy(() => tf.variable(tf.tensor2d(a!, [inF, cfg.r]), trainable, `${m}.lora_A#${nextId++}`)));
      this.B.set(m, tf.tidy(() => tf.variable(tf.tensor2d(b!, [cfg.r, outF]), trainable, `${m}.lora_B#${nextId++}`)));
    }
  }

  /** The adapter's variables, named `${module}.lora_A` / `.lora_B`. */
  params(): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const m of this.A.keys()) out.push([`${m}.lora_A`, this.A.get(m)!], [`${m}.lora_B`, this.B.get(m)!]);
    return out;
  }

  get numParameters(): number {
    return this.params().reduce((n, [, v]) => n + v.size, 0);
  }

  /** (alpha / r) dropout(x) A B for module m, or undefined when m has no adapter. */
  delta(x: tf.Tensor2D, m: string, o: { training?: boolean; rng?: Rng }): tf.Tensor2D | undefined {
    const a = this.A.get(m);
    if (!a) return undefined;
    const xin = o.training && this.cfg.dropout > 0 ? (tf.dropout(x, this.cfg.dropout, undefined, o.rng?.seed()) as tf.Tensor2D) : x;
    return tf.mul(matMul(matMul(xin, a as unknown as tf.Tensor2D), this.B.get(m)! as unknown as tf.Tensor2D), this.scale) as tf.Tensor2D;
  }

  dispose(): void {
    tf.dispose([...this.A.values(), ...this.B.values()]);
  }
}

let nextId = 0;

/** Transformers' module path of one of our modules (GPT2LMHeadModel "transformer.", Llama "model."). */
const hfModule = (config: ModelConfig, m: string) => (config.arch === 'llama' || config.arch === 'qwen2' ? `model.${m}` : `transformer.${m}`);

/** PEFT's adapter_config.json. */
export function peftConfig(config: ModelConfig, cfg: LoraConfig, base: string, taskType: 'CAUSAL_LM' | 'SEQ_CLS'): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: taskType,
    base_model_name_or_path: base,
    revision: null,
    r: cfg.r,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    target_modules: cfg.targets,
    fan_in_fan_out: (config.arch ?? 'gpt2') === 'gpt2',
    bias: 'none',
    modules_to_save: taskType === 'SEQ_CLS' ? ['score'] : null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
    use_dora: false,
    inference_mode: true,
  };
}

/** adapter_model.safetensors' tensors: lora_A.weight [r, in], lora_B.weight [out, r] under PEFT's names. */
export async function peftTensors(config: ModelConfig, lora: Lora): Promise<Map<string, NamedTensor>> {
  const out = new Map<string, NamedTensor>();
  for (const m of lora.A.keys()) {
    const [inF, r] = lora.A.get(m)!.shape as [number, number], outF = lora.B.get(m)!.shape[1] as number;
    const p = `base_model.model.${hfModule(config, m)}`;
    out.set(`${p}.lora_A.weight`, { shape: [r, inF], data: transpose2d((await lora.A.get(m)!.data()) as Float32Array, inF, r) });
    out.set(`${p}.lora_B.weight`, { shape: [outF, r], data: transpose2d((await lora.B.get(m)!.data()) as Float32Array, r, outF) });
  }
  return out;
}

/** Reads PEFT tensors back into A [in, r], B [r, out] per module; other tensors (a score head) are returned apart. */
export function fromPeftTensors(config: ModelConfig, tensors: Map<string, NamedTensor>, modules: Map<string, [number, number]>, r: number) {
  const weights = new Map<string, { A: Float32Array; B: Float32Array }>();
  const rest = new Map<string, NamedTensor>();
  const byName = new Map(tensors);
  for (const [m, [inF, outF]] of modules) {
    const p = `base_model.model.${hfModule(config, m)}`;
    // PEFT writes no adapter name in saved keys; some versions keep ".default"
    const a = byName.get(`${p}.lora_A.weight`) ?? byName.get(`${p}.lora_A.default.weight`);
    const b = byName.get(`${p}.lora_B.weight`) ?? byName.get(`${p}.lora_B.default.weight`);
    if (!a || !b) throw new Error(`adapter_model.safetensors has no ${p}.lora_A/lora_B.weight: the adapter was trained for another model or other target modules`);
    if (a.shape.join(',') !== `${r},${inF}` || b.shape.join(',') !== `${outF},${r}`) {
      throw new Error(`adapter_model.safetensors: ${p} has lora_A [${a.shape}] and lora_B [${b.shape}]; this base model needs [${r},${inF}] and [${outF},${r}] (an adapter for another base model?)`);
    }
    weights.set(m, { A: transpose2d(a.data, r, inF), B: transpose2d(b.data, outF, r) });
    for (const k of [`${p}.lora_A.weight`, `${p}.lora_B.weight`, `${p}.lora_A.default.weight`, `${p}.lora_B.default.weight`]) byName.delete(k);
  }
  for (const [k, t] of byName) {
    const m = /^base_model\.model\.(.*?)(?:\.modules_to_save\.default)?\.(weight|bias)$/.exec(k);
    if (m && !k.includes('lora_')) rest.set(`${m[1]}.${m[2]}`, t);
    else if (k.includes('lora_')) throw new Error(`adapter_model.safetensors has ${k}, which this base model has no place for (an adapter for another base model?)`);
  }
  return { weights, rest };
}

/**
 * Base weights with an adapter's update added, W + (alpha / r) A B per module, in plain
 * arithmetic (no backend: it runs before a model exists, and on every backend the same).
 */
export function mergeAdapter(weights: Map<string, Float32Array>, cfg: LoraConfig, adapter: Map<string, { A: Float32Array; B: Float32Array }>): Map<string, Float32Array> {
  const out = new Map(weights);
  const scale = cfg.alpha / cfg.r, r = cfg.r;
  for (const [m, { A, B }] of adapter) {
    const w = Float32Array.from(weights.get(`${m}.weight`)!);
    const inF = A.length / r, outF = B.length / r;
    for (let i = 0; i < inF; i++) {
      for (let k = 0; k < r; k++) {
        const a = A[i * r + k] * scale;
        if (a === 0) continue;
        const row = i * outF, brow = k * outF;
        for (let j = 0; j < outF; j++) w[row + j] += a * B[brow + j];
      }
    }
    out.set(`${m}.weight`, w);
  }
  return out;
}
