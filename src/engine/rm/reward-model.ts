/**
 * A reward model: the CausalLM trunk (initialised from an SFT checkpoint) and a scalar head read at
 * the last token of prompt + response + end-of-text. Saved as a GPT-2 model directory whose
 * safetensors add `score.weight` [n_embd, 1] and `score.bias` [1], and whose config.json carries
 * the training set's reward mean and standard deviation (PPO centres scores with them).
 * The PPO value model is the same network read at every position.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ForwardOptions } from '../model';
import { CausalLM } from '../causal-lm';
import { LoadedModel, adapterDirFiles, modelDirFiles, modelFromLoaded, writeFilesAtomic } from '../checkpoint';
import { Tokenizer } from '../tokenizer';
import { Rng } from '../rng';

const SEQUENCE_CLASSIFICATION = { gpt2: 'GPT2ForSequenceClassification', llama: 'LlamaForSequenceClassification', qwen2: 'Qwen2ForSequenceClassification' };

export class RewardModel {
  readonly params: Map<string, tf.Variable>;
  readonly w: tf.Variable;
  readonly b: tf.Variable;

  constructor(readonly trunk: CausalLM, w: Float32Array, b: Float32Array, trainable = true) {
    const C = trunk.config.n_embd;
    this.w = tf.tidy(() => tf.variable(tf.tensor2d(w, [C, 1]), trainable));
    this.b = tf.tidy(() => tf.variable(tf.tensor1d(b), trainable));
    // the trained set: the trunk and the head; an untied LM head (Llama) plays no part in a score
    const trunkParams = [...trunk.params].filter(([n]) => n !== 'lm_head.weight');
    this.params = new Map([...trunkParams, ['score.weight', this.w], ['score.bias', this.b]]);
  }

  /**
   * From a model directory: its score head if it has one, else a new head N(0, 1/sqrt(n_embd + 1)).
   * `normalise` folds the reward statistics into the head, w/std and (b - mean)/std, so it reads
   * (score - mean)/std: PPO's critic starts in the units of the normalised rewards it learns.
   */
  static fromLoaded(loaded: LoadedModel, trainable = true, seed = 1, normalise?: { mean: number; std: number }): RewardModel {
    return RewardModel.withTrunk(modelFromLoaded(loaded, trainable), loaded, trainable, seed, normalise);
  }

  /** A given trunk (a LoRA stage's model) with the head of a loaded folder, or a new head. */
  static withTrunk(trunk: CausalLM, loaded: LoadedModel, trainable = true, seed = 1, normalise?: { mean: number; std: number }): RewardModel {
    const C = loaded.config.n_embd;
    const sw = loaded.extra.get('score.weight'), sb = loaded.extra.get('score.bias');
    let w: Float32Array, b: Float32Array;
    if (sw && sw.data.length === C) {
      w = sw.data;
      b = sb?.data ?? new Float32Array(1);
      if (normalise) {
        w = w.map((x) => x / normalise.std);
        b = b.map((x) => (x - normalise.mean) / normalise.std);
      }
    } else {
      const rng = new Rng(seed);
      w = Float32Array.from({ length: C }, () => rng.normal() / Math.sqrt(C + 1));
      b = new Float32Array(1);
    }
    return new RewardModel(trunk, w, b, trainable);
  }

  /** Scores [N] of sequences ids [N, T], each read at its position last[n]. */
  rewards(ids: tf.Tensor2D, last: number[], opts: ForwardOptions = {}): tf.Tensor1D {
    const [N, T] = ids.shape;
    const h = this.trunk.hidden(ids, opts);
    const rows = tf.gather(h, tf.tensor1d(last.map((l, n) => n * T + l), 'int32'));
    return tf.reshape(tf.add(tf.matMul(rows, this.w), this.b), [N]) as tf.Tensor1D;
  }

  /** Scores at every position [N, T] (the value model's per-token estimates). */
  values(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    const [N, T] = ids.shape;
    return tf.reshape(tf.add(tf.matMul(this.trunk.hidden(ids, opts), this.w), this.b), [N, T]) as tf.Tensor2D;
  }

  /** The files of this model's directory (config.json carries extraConfig). */
  async files(tokenizer: Tokenizer, extraConfig: Record<string, unknown>): Promise<Record<string, string | Buffer>> {
    const c = this.trunk.config, C = c.n_embd;
    // Transformers' score is nn.Linear(n_embd, 1) [1, n_embd]; [n_embd, 1] is the same bytes
    // (GPT-2 checkpoints of earlier versions carry that shape, and load either way)
    const llama = c.arch === 'llama' || c.arch === 'qwen2';
    const extra = new Map([
      ['score.weight', { shape: llama ? [1, C] : [C, 1], data: (await this.w.data()) as Float32Array }],
      ['score.bias', { shape: [1], data: (await this.b.data()) as Float32Array }],
    ]);
    if (this.trunk.lora) return adapterDirFiles(this.trunk, tokenizer, { extra, extraConfig, taskType: 'SEQ_CLS' });
    return modelDirFiles(this.trunk.config, await this.trunk.weights(), tokenizer, {
      extra,
      extraConfig: { architectures: [SEQUENCE_CLASSIFICATION[c.arch ?? 'gpt2']], num_labels: 1, ...extraConfig },
    });
  }

  async write(dir: string, tokenizer: Tokenizer, extraConfig: Record<string, unknown>, files: Record<string, string | Buffer> = {}): Promise<void> {
    writeFilesAtomic(dir, { ...(await this.files(tokenizer, extraConfig)), ...files });
  }

  dispose(): void {
    this.trunk.dispose();
    this.w.dispose();
    this.b.dispose();
  }
}
