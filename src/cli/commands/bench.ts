/**
 * Throughput benchmarks. `bench train` times full training steps (forward, backward, AdamW) of a
 * GPT of the given shape on random tokens; model FLOP/s counts 6N + 12 L T C per token
 * (N = parameters without position embeddings, as nanoGPT's estimate_mfu). `bench generate`
 * times sampling with and without the key/value cache.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { COMMON, startBackend } from './shared';
import { CausalLM, initModel, parameterShapes } from '../../engine/causal-lm';
import { configFromJson, defaultConfig } from '../../engine/config';
import { Lora, loraConfig, targetModules } from '../../engine/lora';
import { checkStageMemory, dataParallel } from '../../engine/memory';
import { Rng } from '../../engine/rng';
import { RunDir } from '../../data/run';
import { lmObjective, train } from '../../engine/train/trainer';
import { DEFAULT_TRAIN } from '../../engine/stages/common';
import { generate } from '../../engine/generate';
import { currentBackend, initBackend } from '../../engine/backends/backend';
import { lossAndGrads } from '../../engine/train/grad-thread';
import { take, takeScalar } from '../../engine/read';
import { autoThreads } from '../../engine/train/parallel';
import * as fs from 'fs';
import { buildIndex } from '../../data/record-index';
import * as os from 'os';
import { passFlops, shapeOfConfig } from '../../engine/cost';
import { recordSpeed } from '../../engine/speed-cache';
import * as path from 'path';

export const BENCH_OPTS: OptSpecs = {
  arch: { type: 'string', help: 'gpt2 or llama (SmolLM2-135M: --arch llama --layers 30 --embd 576 --heads 9 --kv-heads 3 --ffn 1536 --vocab 49152)', default: 'gpt2' },
  'kv-heads': { type: 'int', help: 'llama: key/value heads (grouped-query attention; default: --heads)' },
  ffn: { type: 'int', help: 'llama: SwiGLU width (intermediate_size; default 4 x embd x 2/3)' },
  'lora-r': { type: 'int', help: 'train: a LoRA adapter of this rank on frozen weights (0 = every weight)', default: 0 },
  layers: { type: 'int', help: 'n_layer', default: 4 },
  heads: { type: 'int', help: 'n_head', default: 4 },
  embd: { type: 'int', help: 'n_embd', default: 128 },
  block: { type: 'int', help: 'context length', default: 64 },
  batch: { type: 'int', help: 'batch size', default: 12 },
  vocab: { type: 'int', help: 'vocabulary size', default: 65 },
  steps: { type: 'int', help: 'timed steps (after 2 warm-up steps)', default: 10 },
  tokens: { type: 'int', help: 'generate: new tokens per run', default: 0 },
  samples: { type: 'int', help: 'generate: sequences decoded together (the batch)', default: 1 },
  threads: { type: 'int', help: 'CPU threads (0 = auto): train splits batches, generate splits the sequences of a batch', default: 0 },
  'peak-tflops': { type: 'number', help: "train: the device's peak fp32 TFLOP/s, to print the fraction reached" },
  ...COMMON,
};

export async function benchCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  const what = positional[0] ?? 'train';
  if (what === 'index') return benchIndex(positional[1], Boolean(o.json));
  if (what === 'parity') return benchParity(o, r);
  if (what !== 'train' && what !== 'generate') throw new UsageError(`rlhf bench train|generate|parity|index, not "${what}"`);
  await startBackend(o, o.json ? { ...r, log: () => {} } : r); // --json: one object on stdout
  if (o.arch !== 'gpt2' && o.arch !== 'llama') throw new UsageError('--arch must be gpt2 or llama');
  const cfg = o.arch === 'llama'
    ? configFromJson({
      model_type: 'llama', num_hidden_layers: o.layers, num_attention_heads: o.heads, num_key_value_heads: o['kv-heads'] ?? o.heads, hidden_size: o.embd,
      intermediate_size: o.ffn ?? Math.round(((o.embd as number) * 8) / 3), max_position_embeddings: o.block, vocab_size: o.vocab, tie_word_embeddings: true, tokenizer: 'char',
    })
    : defaultConfig({ n_layer: o.layers as number, n_head: o.heads as number, n_embd: o.embd as number, n_positions: o.block as number, vocab_size: o.vocab as number });
  const loraR = o['lora-r'] as number;
  // what does not fit is refused in one line, before a weight exists, not an out-of-memory abort
  if (what === 'train') checkStageMemory(cfg, { models: 1, trained: 1, batchSize: o.batch as number, seq: cfg.n_positions, loraR, threads: dataParallel((o.threads as number) > 0 ? (o.threads as number) : autoThreads(), o.batch as number) });
  const model = initModel(cfg, 1);
  if (loraR > 0) {
    const lc = loraConfig(cfg.arch ?? 'gpt2', { r: loraR });
    model.attachLora(new Lora(lc, targetModules(parameterShapes(cfg), lc.targets), 1));
  }
  const a = currentBackend()!.adapter;
  const base = {
    backend: currentBackend()!.name, backend_reason: currentBackend()!.reason, ...(a ? { adapter: `${a.vendor} ${a.architecture} (${a.description})`, software_adapter: a.software } : {}),
    arch: cfg.arch ?? 'gpt2', n_layer: cfg.n_layer, n_head: cfg.n_head, ...(cfg.llama ? { n_kv_head: cfg.llama.num_key_value_heads, ffn: cfg.llama.intermediate_size } : {}), n_embd: cfg.n_embd, block: cfg.n_positions, vocab: cfg.vocab_size,
    ...(loraR > 0 ? { lora_r: loraR, trained_parameters: model.lora!.numParameters } : {}),
  };
  let result: Record<string, unknown>;
  try {
    if (what === 'train') {
      result = { ...base, batch: o.batch, ...(await benchTrain(model, o.batch as number, o.steps as number, o.threads as number)) };
      const peak = o['peak-tflops'] as number | undefined;
      if (peak) result.fraction_of_peak = (result.model_flops_per_second as number) / (peak * 1e12);
    }
    else result = { ...base, ...(await benchGenerate(model, (o.tokens as number) || cfg.n_positions - 1, o.samples as number, o.threads as number)) };
  } finally {
    model.dispose();
  }
  // kept for cost estimates (rlhf cost, the line before every run): this machine's model FLOP/s
  const shape = shapeOfConfig(cfg, 'bench');
  const backend = currentBackend()!.name;
  if (what === 'train') recordSpeed({ kind: 'train', backend, threads: result.threads as number, params: shape.params, flops_per_second: result.model_flops_per_second as number, source: 'rlhf bench train' });
  else if (result.samples === 1) { // one sequence's speed (a batch's aggregate is another figure)
    const t = result.new_tokens as number;
    const perToken = passFlops({ what: '', kind: 'generate', model: shape, tokens: 1, context: t / 2 });
    recordSpeed({ kind: 'generate', backend, threads: 1, params: shape.params, flops_per_second: perToken * (result.cached_tokens_per_second as number), source: 'rlhf bench generate' });
  }
  if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(32)} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}\n`);
  return result;
}

async function benchTrain(model: CausalLM, B: number, steps: number, threads: number) {
  const c = model.config, T = c.n_positions;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-bench-'));
  const rand = new Rng(3);
  const batch = () => {
    const ids = new Int32Array(B * T).map(() => rand.int(c.vocab_size));
    return { ids, targets: ids.map((x) => (x + 1) % c.vocab_size), weights: new Float32Array(B * T).fill(1), B, T };
  };
  const times: number[] = [];
  let t = performance.now();
  const tensorsAfter: number[] = [], bytesAfter: number[] = [];
  try {
    const run = RunDir.create(tmp, { stage: 'bench', config: {} });
    const cfg = { ...DEFAULT_TRAIN, steps: steps + 2, evalInterval: 0, checkpointInterval: 0, warmupSteps: 0, threads, batchSize: B };
    const tokenizer = { kind: 'char' as const, vocabSize: c.vocab_size, eot: 0, encode: () => [], decode: () => '' };
    await train({
      objective: await lmObjective('bench', model, tokenizer, { trainBatch: batch, evalBatches: () => [] }, cfg),
      cfg,
      run,
      onProgress: () => {
        const now = performance.now();
        times.push(now - t);
        tensorsAfter.push(tf.memory().numTensors);
        bytesAfter.push(tf.memory().numBytes);
        t = now;
      },
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const timed = times.slice(2);
  const seconds = timed.reduce((a, b) => a + b, 0) / 1000;
  const tokensPerSecond = (B * T * timed.length) / seconds;
  // parameters that multiply: not the position table, nor an input embedding that has its own head
  const size = (k: string) => model.params.get(k)?.size ?? 0;
  const n = model.numParameters - size('wpe.weight') - (model.params.has('lm_head.weight') ? size('embed_tokens.weight') : 0);
  // with LoRA the frozen weights need no weight-gradient products: forward 2N and input gradients 2N
  const flopsPerToken = (model.lora ? 4 : 6) * n + 12 * c.n_layer * T * c.n_embd;
  return {
    threads: threads || autoThreads(),
    tokens_per_second: tokensPerSecond,
    model_flops_per_second: flopsPerToken * tokensPerSecond,
    ms_per_step: (seconds * 1000) / timed.length,
    // the bench's own overhead, apart from the steady state: the first step compiles every shader
    // (WebGPU) or kernel and uploads the weights; the second settles allocators and caches
    first_step_seconds: times[0] / 1000,
    second_step_seconds: times[1] / 1000,
    parameters: model.numParameters,
    tensors_after_step_1: tensorsAfter[0],
    tensors_after_last_step: tensorsAfter[tensorsAfter.length - 1],
    bytes_after_step_1: bytesAfter[0],
    bytes_after_last_step: bytesAfter[bytesAfter.length - 1],
  };
}

async function benchGenerate(model: CausalLM, tokens: number, samples: number, threads: number) {
  if (samples < 1) throw new UsageError('--samples must be at least 1');
  const opts = { maxNewTokens: tokens, temperature: 1, topK: 0, topP: 1, seed: 1, threads };
  await generate(model, [1], samples, { ...opts, maxNewTokens: 4 }); // warm-up
  const cached = await generate(model, [1], samples, { ...opts, useCache: true });
  const uncached = await generate(model, [1], samples, { ...opts, useCache: false });
  const same = cached.tokens.every((t, i) => t.join(',') === uncached.tokens[i].join(','));
  const count = (g: typeof cached) => g.tokens.reduce((n, t) => n + t.length, 0);
  return {
    new_tokens: tokens,
    samples,
    // all sequences' tokens per second (the batch's aggregate)
    cached_tokens_per_second: count(cached) / cached.seconds,
    decode_threads: cached.threads,
    uncached_tokens_per_second: count(uncached) / uncached.seconds,
    cached_equals_uncached: same,
  };
}

/** Builds the record index of a dataset file: MB/s and the process's peak memory. */
function benchIndex(file: string | undefined, json: boolean) {
  if (!file || !fs.existsSync(file)) throw new UsageError('rlhf bench index FILE: an existing dataset file');
  const t = performance.now();
  const index = buildIndex(file);
  const seconds = (performance.now() - t) / 1000;
  const result = {
    file,
    bytes: index.bytes,
    records: index.count,
    seconds,
    mb_per_second: index.bytes / 1e6 / seconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    index_mb: (index.starts.byteLength + index.ends.byteLength + index.lineNos.byteLength) / 1e6,
  };
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(16)} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}\n`);
  return result;
}

/**
 * The backend against WebAssembly on the same weights and batch, in one process: max |logprob
 * difference| of a small GPT's predictions, and the relative differences of one batch's loss and
 * gradients. What scripts/gpu-check.sh runs on a machine's GPU.
 */
async function benchParity(o: ParsedOpts, r: Reporter) {
  const backend = o.backend as string;
  if (backend === 'auto' || backend === 'wasm') throw new UsageError('rlhf bench parity --backend webgpu|gpu|node|cpu: the backend to compare with wasm');
  const cfg = defaultConfig({ n_layer: 2, n_head: 4, n_embd: 64, n_positions: 64, vocab_size: 256 });
  const B = 4, T = cfg.n_positions;
  const rng = new Rng(11);
  const ids = new Int32Array(B * T).map(() => rng.int(cfg.vocab_size));
  const batch = { ids, targets: ids.map((x) => (x * 7 + 3) % cfg.vocab_size), weights: new Float32Array(B * T).fill(1), B, T };
  const run = async () => {
    const model = initModel(cfg, 5);
    try {
      const logp = tf.tidy(() => tf.logSoftmax(model.logits(tf.tensor2d(ids, [B, T], 'int32'))));
      const g = lossAndGrads(model, batch, new Rng(1));
      const grads = new Map<string, Float32Array>();
      for (const [k, v] of g.grads) grads.set(k, await take(v));
      return { logp: await take(logp), loss: await takeScalar(g.value), grads };
    } finally {
      model.dispose();
    }
  };
  await initBackend('wasm');
  const ref = await run();
  const silent = o.json ? { ...r, log: () => {} } : r;
  await startBackend(o, silent);
  const got = await run();
  let maxDiff = 0;
  for (let i = 0; i < ref.logp.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref.logp[i] - got.logp[i]));
  let num = 0, den = 0;
  for (const [k, a] of ref.grads) {
    const b = got.grads.get(k)!;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += a[i] ** 2;
    }
  }
  const a = currentBackend()!.adapter;
  const result = {
    backend: currentBackend()!.name,
    ...(a ? { adapter: `${a.vendor} ${a.architecture} (${a.description})`, software_adapter: a.software } : {}),
    max_logprob_diff: maxDiff,
    loss_rel_diff: Math.abs(ref.loss - got.loss) / Math.abs(ref.loss),
    grad_rel_diff: Math.sqrt(num / den),
    parity: maxDiff < 1e-4 && Math.sqrt(num / den) < 1e-3,
  };
  if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(20)} ${v}\n`);
  return result.parity ? 0 : 1;
}
