/**
 * What a stage will need in memory, estimated before a weight is loaded, and a refusal in one
 * line when it cannot fit, naming what would: a LoRA adapter, a smaller batch, another backend.
 *
 *   weights      4 bytes per parameter (float32 on every backend), per model the stage holds
 *   gradients    4 bytes per trained parameter
 *   AdamW        8 bytes per trained parameter (first and second moments)
 *   activations  kept for the backward pass, per layer and token about (34 C + 5 H T) bytes at
 *                16 bits (Korthikanti et al. 2022, no recomputation), twice that in float32; the logits
 *                [B T, V] three times (logits, softmax, their gradient)
 * (Llama-family training keeps only each layer's input and one layer's insides, and one chunk of
 * the head's logits.) The wasm backend keeps every tensor, and XNNPACK's packed copy of every
 * weight matrix, in one WebAssembly memory of at most 4 GiB; every backend
 * also needs the machine's free memory for the weights as read from disk.
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig, parameterCount } from './config';

export class MemoryError extends Error {}

export interface StageMemory {
  /** Models held in full (policy, reference, reward model, critic). */
  models: number;
  /** Models trained (their gradients, optimizer state and activations count). */
  trained: number;
  /** Trained models whose backward passes run at once (default: all); PPO's policy and critic take turns. */
  concurrent?: number;
  /** The head's loss over all rows at once (PPO's log-probabilities and entropy), not in chunks. */
  fullHead?: boolean;
  /** The option that sets the batch, for the suggestion (default --batch-size N). */
  batchOption?: (rows: number) => string | undefined;
  batchSize: number;
  /** Tokens per sequence. */
  seq: number;
  /** LoRA rank (0: every weight trains). */
  loraR: number;
  /** Whether the trained model computes logits over the vocabulary (a critic or reward head does not). */
  lmHead?: boolean;
  /**
   * Other threads, each with its own heap (another WebAssembly memory): data parallelism's replica
   * of the trained model with its share of the batch, or PPO's critic and reward model. They hold
   * weights, gradients and activations, never optimizer state (the update is the main thread's).
   */
  threads?: { count: number; models: number; trained: number; batchSize: number; lmHead: boolean };
}

const GiB = 2 ** 30;
/** WebAssembly's 4 GiB, of which 3.5 could be allocated in one test here (the rest is the module's own). */
export const WASM_MEMORY_LIMIT = 3.5 * GiB;
const TFJS_RETENTION = 12;

/** Trained parameters of a LoRA adapter of rank r on the attention and MLP projections. */
export function loraParams(c: ModelConfig, r: number): number {
  const C = c.n_embd;
  if (c.llama) {
    const q = c.n_head * c.llama.head_dim, kv = c.llama.num_key_value_heads * c.llama.head_dim, F = c.llama.intermediate_size;
    return c.n_layer * r * ((C + q) * 2 + (C + kv) * 2 + 2 * (C + F) + (F + C));
  }
  return c.n_layer * r * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C));
}

export function estimateBytes(c: ModelConfig, m: StageMemory, backend = 'wasm') {
  const N = parameterCount(c);
  const trainedParams = m.loraR > 0 ? loraParams(c, m.loraR) : N;
  // XNNPACK (wasm) keeps a packed copy of every weight matrix it has multiplied
  const packed = backend === 'wasm' ? 4 * (N - c.vocab_size * c.n_embd) * m.models : 0;
  const weights = 4 * N * m.models + packed + (m.loraR > 0 ? 4 * trainedParams * m.trained : 0);
  const grads = 4 * trainedParams * m.trained;
  const optimizer = 8 * trainedParams * m.trained;
  const B = m.batchSize, T = m.seq;
  // the formula's bytes are for 16-bit values (x2 in float32); TensorFlow.js keeps far more: every
  // op's output (measured: about 200 MB for one SmolLM2-shaped layer at 256 tokens, 12x the formula)
  const perLayer = B * T * (34 * c.n_embd + 5 * c.n_head * T) * 2 * TFJS_RETENTION;
  // Llama-family training recomputes layers (each keeps its input) and chunks the head's loss (llama.ts, lm-loss.ts)
  const checkpointed = !!c.llama && B * T * c.n_layer * c.n_embd > 2 ** 21;
  const layers = checkpointed ? c.n_layer * B * T * c.n_embd * 4 + perLayer : c.n_layer * perLayer;
  // the logits, their log-softmax and its gradient (chunked: one chunk's four); PPO's with the entropy and the one-hot: six
  const head = m.lmHead === false ? 0 : c.vocab_size >= 4096 && c.llama && !m.fullHead ? 4 * 4 * Math.min(B * T, 256) * c.vocab_size : (m.fullHead ? 6 : 3) * 4 * B * T * c.vocab_size;
  const activations = Math.min(m.trained, m.concurrent ?? m.trained) * (layers + head);
  return { weights, grads, optimizer, activations, total: weights + grads + optimizer + activations };
}

/** One other thread's heap (StageMemory.threads): its models, gradients and activations; zero without threads. */
export function threadBytes(c: ModelConfig, m: StageMemory, backend = 'wasm'): number {
  const t = m.threads;
  if (!t || t.count < 1) return 0;
  const e = estimateBytes(c, { models: t.models, trained: t.trained, batchSize: t.batchSize, seq: m.seq, loraR: m.loraR, lmHead: t.lmHead }, backend);
  return e.total - e.optimizer;
}

/** The threads data parallelism starts for a batch (parallel.ts: the main thread computes a part too): the others, and the rows each gets at most. */
export function dataParallel(threads: number, batchSize: number, replica = { models: 1, trained: 1, lmHead: true }): StageMemory['threads'] {
  const n = Math.min(threads, batchSize);
  return n > 1 ? { count: n - 1, batchSize: Math.ceil(batchSize / n), ...replica } : undefined;
}

const gib = (n: number) => `${(n / GiB).toFixed(1)} GiB`;

/** Throws one line when the stage cannot fit the active backend or the machine. */
export function checkStageMemory(c: ModelConfig, m: StageMemory, backend = tf.getBackend(), freeMemory = Number(process.env.RLHF_FREE_MEMORY_BYTES) || os.freemem()) {
  const e = estimateBytes(c, m, backend);
  // the machine holds every heap; each WebAssembly memory has its own limit
  const needs = (x: StageMemory): [string, number, number][] => {
    const main = estimateBytes(c, x, backend).total;
    const other = threadBytes(c, x, backend);
    const out: [string, number, number][] = [[`this machine's free memory (${gib(freeMemory)})`, freeMemory, main + (x.threads?.count ?? 0) * other]];
    if (backend === 'wasm') out.push([`the WebAssembly backend's memory (4 GiB, ${gib(WASM_MEMORY_LIMIT)} of it usable)`, WASM_MEMORY_LIMIT, Math.max(main, other)]);
    return out.sort((a, b) => a[1] - b[1]);
  };
  const over = needs(m).find(([, limit, need]) => need > 0.9 * limit);
  if (!over) return e;
  const fits: string[] = [];
  const need = (x: Partial<StageMemory>) => needs({ ...m, ...x }).find(([name]) => name === over[0])![2];
  const ok = (x: Partial<StageMemory>) => need(x) <= 0.9 * over[1];
  const size = (x: Partial<StageMemory>) => gib(need(x));
  const halvings = [...Array(Math.floor(Math.log2(m.batchSize))).keys()].map((i) => m.batchSize >> (i + 1));
  // a smaller batch is a smaller share on the other threads too
  const batch = (b: number): Partial<StageMemory> => ({ batchSize: b, ...(m.threads ? { threads: { ...m.threads, batchSize: Math.ceil((m.threads.batchSize * b) / m.batchSize) } } : {}) });
  if (m.threads && ok({ threads: undefined })) fits.push(`--threads 1 (no second heap: about ${size({ threads: undefined })})`);
  const lora = m.loraR === 0 && m.trained > 0;
  if (lora && ok({ loraR: 16 })) fits.push(`LoRA (--lora-r 16: about ${size({ loraR: 16 })})`);
  const opt = m.batchOption ?? ((rows: number) => `--batch-size ${rows}`);
  const b = halvings.find((x) => ok(batch(x)) && opt(x));
  if (b) fits.push(`${opt(b)} (about ${size(batch(b))})`);
  const lb = lora && !fits.length ? halvings.find((x) => ok({ ...batch(x), loraR: 16 }) && opt(x)) : undefined;
  if (lb) fits.push(`LoRA with ${opt(lb)} (--lora-r 16: about ${size({ ...batch(lb), loraR: 16 })})`);
  const machine = needs(m).find(([name]) => name.startsWith('this machine'))![2];
  if (backend === 'wasm' && over[1] === WASM_MEMORY_LIMIT && machine <= 0.9 * freeMemory) fits.push("another backend (--backend node or a GPU) that is not bound by WebAssembly's 4 GiB");
  const others = m.threads ? threadBytes(c, m, backend) : 0;
  throw new MemoryError(
    `this stage needs about ${gib(e.total)} (weights ${gib(e.weights)}, gradients ${gib(e.grads)}, optimizer ${gib(e.optimizer)}, activations ${gib(e.activations)})${others ? `, and ${gib(others)} on each of ${m.threads!.count} other thread${m.threads!.count > 1 ? 's' : ''}` : ''}, more than ${over[0]} allows; ${fits.length ? `what would fit: ${fits.join(', or ')}` : 'a smaller model would'}`,
  );
}
