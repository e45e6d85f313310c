/**
 * What a run costs, before it starts: parameters, tokens, floating-point operations, time, GPU-hours,
 * energy and money. Pure arithmetic (no TensorFlow.js), so the CLI, the stages and the editor share it.
 *
 * FLOPs per token (Kaplan et al. 2020; PaLM's appendix B for attention), N the parameters that
 * multiply (not an input embedding with its own head, nor learned positions), L layers, C width,
 * T the context a token attends to:
 *   forward        2N + 4 L T C            (the T-by-T attention products, QK^T and AV)
 *   trained        3 x forward = 6N + 12 L T C
 *   LoRA-trained   4N + 12 L T C + 6 N_adapter (frozen weights need no weight-gradient product)
 *   generated      the forward of one position against the cache: 2N + 4 L t C, t its position
 * A run is a list of passes of these kinds; a stage lists the passes it really makes (PPO: the
 * rollout's generation, the policy's, reference's, reward model's and critic's forward passes,
 * the policy's and critic's backward passes for each epoch).
 *
 * Time is FLOPs over a speed: this machine's, measured (rlhf bench, and every finished run,
 * cached by speed-cache.ts), or a GPU's peak times a model-FLOPs utilisation. GPU-hours, energy
 * and money follow from the GPU's power and a price per GPU-hour.
 */
import { ModelConfig, parameterCount } from './config';

/** The shape that sets a model's FLOPs. */
export interface ModelShape {
  name: string;
  /** Parameters that multiply per token (see above). */
  params: number;
  layers: number;
  width: number;
  /** Longest context. */
  context: number;
}

export type PassKind = 'train' | 'forward' | 'generate';

/** What a plan reads of a model: its shape, and its adapter's size when it trains one (a CausalLM is one). */
export interface PlannedModel {
  config: ModelConfig;
  lora?: { numParameters: number };
}

/** `tokens` tokens through `model`, each attending to about `context` positions. */
export interface Pass {
  what: string;
  kind: PassKind;
  model: ModelShape;
  tokens: number;
  /** Mean positions a token attends to (a sequence of length S: S / 2 on average, causal; we count S as PaLM does for training). */
  context: number;
  /** Trained parameters of a LoRA adapter (the base frozen); absent: every weight trains. */
  loraParams?: number;
}

export function passFlops(p: Pass): number {
  const attn = 4 * p.model.layers * p.context * p.model.width; // one forward's attention per token
  const forward = 2 * p.model.params + attn;
  if (p.kind === 'forward' || p.kind === 'generate') return p.tokens * forward;
  if (p.loraParams !== undefined) return p.tokens * (4 * p.model.params + 3 * attn + 6 * p.loraParams);
  return p.tokens * 3 * forward;
}

/** A GPU's dense BF16 tensor peak (NVIDIA's datasheets, SXM parts), its board power, and default prices. */
export interface Gpu {
  name: string;
  peakFlops: number;
  watts: number;
  /** US dollars per GPU-hour: typical on-demand cloud prices of 2025-26; set your own with --price. */
  pricePerHour: number;
  /** US dollars to buy one, a share of its 8-GPU server included (serving estimates). */
  purchase: number;
}

export const GPUS: Record<string, Gpu> = {
  a100: { name: 'NVIDIA A100 80GB SXM', peakFlops: 312e12, watts: 400, pricePerHour: 2.0, purchase: 25_000 },
  h100: { name: 'NVIDIA H100 SXM', peakFlops: 989e12, watts: 700, pricePerHour: 3.0, purchase: 35_000 },
  h200: { name: 'NVIDIA H200 SXM', peakFlops: 989e12, watts: 700, pricePerHour: 3.8, purchase: 40_000 },
};

/** Model-FLOPs utilisation assumed for training on GPUs (PaLM reached 46%, Megatron-LM GPT-3 shapes 40-50%). */
export const DEFAULT_TRAIN_MFU = 0.4;
/** Serving decodes a token at a time and is bound by memory, not arithmetic: about a tenth of peak. */
export const DEFAULT_SERVE_MFU = 0.1;
/** Power beyond the GPUs (CPUs, network, cooling): a data centre's PUE of 1.2 over the GPUs' board power. */
export const DEFAULT_PUE = 1.2;
/** US dollars per kWh (a US industrial rate). */
export const DEFAULT_KWH_PRICE = 0.15;

/** Models named in the text and the ones people start from here (rlhf cost --model NAME). */
export const KNOWN_MODELS: Record<string, ModelShape> = {
  'gpt3-175b': { name: 'GPT-3 175B (Brown et al. 2020)', params: 174.6e9, layers: 96, width: 12288, context: 2048 },
  'gpt2': { name: 'GPT-2 124M', params: 85e6, layers: 12, width: 768, context: 1024 },
  'smollm2-135m': { name: 'SmolLM2-135M', params: 134.5e6, layers: 30, width: 576, context: 8192 },
  'qwen2.5-0.5b': { name: 'Qwen2.5-0.5B', params: 494e6, layers: 24, width: 896, context: 32768 },
  'llama-3.2-1b': { name: 'Llama-3.2-1B', params: 1236e6, layers: 16, width: 2048, context: 131072 },
  'llama-3-8b': { name: 'Llama-3-8B', params: 8.03e9, layers: 32, width: 4096, context: 8192 },
};

/** Where the time comes from: this machine's measured speeds, or GPUs. */
export type Target =
  | { kind: 'local'; trainFlops: number; generateFlops: number; source: string }
  | { kind: 'gpu'; gpu: Gpu; gpus: number; mfu: number; pricePerHour: number; pue: number; kwhPrice: number };

export interface CostEstimate {
  passes: { what: string; kind: PassKind; tokens: number; flops: number; seconds: number }[];
  flops: number;
  seconds: number;
  gpu_hours?: number;
  kwh?: number;
  dollars?: number;
  assumptions: string[];
}

export function estimateCost(passes: Pass[], target: Target): CostEstimate {
  const rows = passes.map((p) => {
    const flops = passFlops(p);
    const speed = target.kind === 'local' ? (p.kind === 'generate' ? target.generateFlops : target.trainFlops) : target.gpu.peakFlops * target.mfu * target.gpus;
    return { what: p.what, kind: p.kind, tokens: p.tokens, flops, seconds: flops / speed };
  });
  const flops = rows.reduce((a, r) => a + r.flops, 0);
  const seconds = rows.reduce((a, r) => a + r.seconds, 0);
  if (target.kind === 'local') {
    return { passes: rows, flops, seconds, assumptions: [`speed: ${target.source}`] };
  }
  const g = target.gpu;
  const gpuHours = (seconds * target.gpus) / 3600;
  const kwh = (gpuHours * g.watts * target.pue) / 1000;
  return {
    passes: rows,
    flops,
    seconds,
    gpu_hours: gpuHours,
    kwh,
    dollars: gpuHours * target.pricePerHour,
    assumptions: [
      `${target.gpus} x ${g.name}: ${fmtFlops(g.peakFlops)}/s peak (dense BF16) at ${Math.round(target.mfu * 100)}% model-FLOPs utilisation`,
      `$${target.pricePerHour.toFixed(2)} per GPU-hour`,
      `${g.watts} W per GPU, PUE ${target.pue}`,
    ],
  };
}

/** Serving a chat model to a daily audience: tokens a day, GPUs to keep up at the peak hour, hardware and electricity. */
export interface ServeAssumptions {
  dailyUsers: number;
  requestsPerUser: number;
  /** Prompt tokens per request (the conversation so far is read again at every turn). */
  promptTokens: number;
  responseTokens: number;
  /** Peak hour's traffic over the day's average. */
  peakFactor: number;
  mfu: number;
  pue: number;
  kwhPrice: number;
}

export const DEFAULT_SERVE: Omit<ServeAssumptions, 'dailyUsers'> = {
  requestsPerUser: 10,
  promptTokens: 500,
  responseTokens: 300,
  peakFactor: 2,
  mfu: DEFAULT_SERVE_MFU,
  pue: DEFAULT_PUE,
  kwhPrice: DEFAULT_KWH_PRICE,
};

export function estimateServing(model: ModelShape, gpu: Gpu, a: ServeAssumptions) {
  const tokensPerDay = a.dailyUsers * a.requestsPerUser * (a.promptTokens + a.responseTokens);
  // every token is one forward position: 2N plus attention to about half the request's length
  const flopsPerDay = tokensPerDay * (2 * model.params + 4 * model.layers * ((a.promptTokens + a.responseTokens) / 2) * model.width);
  const gpus = Math.ceil((flopsPerDay / 86400) * a.peakFactor / (gpu.peakFlops * a.mfu));
  const kwhPerDay = (gpus * gpu.watts * a.pue * 24) / 1000;
  return {
    tokens_per_day: tokensPerDay,
    flops_per_day: flopsPerDay,
    gpus,
    hardware_dollars: gpus * gpu.purchase,
    kwh_per_day: kwhPerDay,
    electricity_dollars_per_day: kwhPerDay * a.kwhPrice,
    assumptions: [
      `${fmtCount(a.dailyUsers)} users a day, ${a.requestsPerUser} requests each, ${a.promptTokens} prompt + ${a.responseTokens} response tokens per request`,
      `${model.name}: ${fmtCount(model.params)} parameters, 2N FLOPs per token plus attention`,
      `sized for the peak hour at ${a.peakFactor}x the average; ${gpu.name} at ${Math.round(a.mfu * 100)}% of its ${fmtFlops(gpu.peakFlops)}/s peak while serving`,
      `$${fmtCount(gpu.purchase)} per GPU with its share of the server; ${gpu.watts} W per GPU, PUE ${a.pue}, $${a.kwhPrice} per kWh`,
    ],
  };
}

export function fmtFlops(x: number): string {
  const units: [number, string][] = [[1e24, 'Y'], [1e21, 'Z'], [1e18, 'E'], [1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  const u = units.find(([v]) => x >= v);
  return u ? `${(x / u[0]).toPrecision(3)} ${u[1]}FLOP` : `${x.toPrecision(3)} FLOP`;
}

export function fmtCount(x: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  const u = units.find(([v]) => x >= v);
  return u ? `${+(x / u[0]).toPrecision(3)}${u[1]}` : `${+x.toPrecision(3)}`;
}

export function fmtSeconds(s: number): string {
  if (s < 120) return `${s.toPrecision(3)} s`;
  if (s < 7200) return `${(s / 60).toPrecision(3)} min`;
  if (s < 172800) return `${(s / 3600).toPrecision(3)} h`;
  if (s < 3.15e7 * 2) return `${(s / 86400).toPrecision(3)} days`;
  return `${(s / 3.15e7).toPrecision(3)} years`;
}

/** One line for a run's log: FLOPs and time, and where the time comes from. */
export function costLine(e: CostEstimate): string {
  const money = e.dollars !== undefined ? `, ${fmtCount(e.gpu_hours!)} GPU-hours, ${fmtCount(e.kwh!)} kWh, $${fmtCount(e.dollars)}` : '';
  return `estimated cost: ${fmtFlops(e.flops)}, ${fmtSeconds(e.seconds)}${money} (${e.assumptions.join('; ')})`;
}

/** The FLOPs shape of a model from its config: an input embedding that has its own head, and learned positions, do not multiply. */
export function shapeOfConfig(c: ModelConfig, name: string): ModelShape {
  const untied = c.llama ? !c.llama.tie_word_embeddings : false;
  const notMultiplying = (untied ? c.vocab_size * c.n_embd : 0) + (c.llama ? 0 : c.n_positions * c.n_embd);
  return { name, params: parameterCount(c) - notMultiplying, layers: c.n_layer, width: c.n_embd, context: c.n_positions };
}
