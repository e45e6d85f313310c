/**
 * The architectures behind one interface: GPT-2 (model.ts) and the Llama family (llama.ts),
 * chosen by the config's arch. Stages, generation and the trainer see only CausalLM.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelConfig, isLlama } from './config';
import { ForwardOptions, GPT, initialWeights as gptInitialWeights, parameterShapes as gptParameterShapes } from './model';
import { Llama, llamaInitialWeights, llamaParameterShapes } from './llama';
import type { Lora } from './lora';

export interface CausalLM {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;
  readonly numParameters: number;
  readonly numBlockParameters: number;
  /** Final hidden states [B*T, n_embd] for token ids [B, T]. */
  hidden(ids: tf.Tensor2D, opts?: ForwardOptions): tf.Tensor2D;
  /** Next-token logits [n, vocab] from hidden states [n, n_embd]. */
  lmHead(h: tf.Tensor2D): tf.Tensor2D;
  logits(ids: tf.Tensor2D, opts?: ForwardOptions): tf.Tensor2D;
  weights(): Promise<Map<string, Float32Array>>;
  dispose(): void;
  /** The LoRA adapter, when one is attached (then only its weights train). */
  readonly lora?: Lora;
  attachLora(lora: Lora): void;
}

export { isLlama };

/** Parameter names and shapes in the order the architecture defines them. */
export function parameterShapes(c: ModelConfig): [string, number[]][] {
  return isLlama(c) ? llamaParameterShapes(c) : gptParameterShapes(c);
}

/** Seeded initial weights of the architecture. */
export function initialWeights(c: ModelConfig, seed: number): Map<string, Float32Array> {
  return isLlama(c) ? llamaInitialWeights(c, seed) : gptInitialWeights(c, seed);
}

export function createModel(c: ModelConfig, weights: Map<string, Float32Array>, trainable = true): CausalLM {
  return isLlama(c) ? new Llama(c, weights, trainable) : new GPT(c, weights, trainable);
}

export function initModel(c: ModelConfig, seed: number): CausalLM {
  return createModel(c, initialWeights(c, seed));
}

/** The model with its adapter switched off: PPO's and GRPO's reference, sharing the policy's weights. */
export function adapterOff(m: CausalLM): CausalLM {
  return {
    config: m.config,
    params: new Map(),
    get numParameters() {
      return m.numParameters;
    },
    get numBlockParameters() {
      return m.numBlockParameters;
    },
    hidden: (ids, opts = {}) => m.hidden(ids, { ...opts, adapter: false }),
    lmHead: (h: tf.Tensor2D) => m.lmHead(h),
    logits: (ids, opts = {}) => m.logits(ids, { ...opts, adapter: false }),
    weights: () => m.weights(),
    dispose: () => {}, // the policy owns the weights
    attachLora: () => {
      throw new Error('the reference model takes no adapter');
    },
  };
}
