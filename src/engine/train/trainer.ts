/**
 * The language-model training loop shared by pretraining and SFT: gradient accumulation,
 * global-norm clipping, AdamW, warmup + cosine schedule, periodic evaluation, metrics,
 * atomic checkpoints with optimizer state, cancellation, and exact resume.
 *
 * Reproducibility: every random choice of step s, micro-batch j (batch sampling, dropout) comes
 * from a generator seeded by (seed, s, j), so a run resumed at step s replays exactly what an
 * uninterrupted run would have done.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../model';
import { Tokenizer } from '../tokenizer';
import { crossEntropy } from '../layers';
import { Rng, deriveSeed } from '../rng';
import { RunDir } from '../run';
import { writeDirAtomic, writeFileSynced, writeModelDir } from '../checkpoint';
import { readSafetensors, serializeSafetensors } from '../safetensors';
import { AdamW, clipByGlobalNorm, learningRate } from './optim';
import { GradThreads, autoThreads } from './parallel';
import { lossAndGrads } from './grad-thread';

export interface Batch {
  /** Token ids [B, T], row-major. */
  ids: Int32Array;
  /** Next-token targets [B, T]. */
  targets: Int32Array;
  /** Loss weight per position [B, T]: 0 for prompt and padding tokens. */
  weights: Float32Array;
  B: number;
  T: number;
}

export interface LmData {
  trainBatch(step: number, micro: number, rng: Rng): Batch;
  evalBatches(): Batch[];
}

export interface TrainConfig {
  steps: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  gradClip: number;
  seed: number;
  evalInterval: number;
  checkpointInterval: number;
  keepCheckpoints: number;
  /** CPU threads for data-parallel gradients (0 = auto: both cores on wasm/cpu). */
  threads: number;
}

export interface Progress {
  stage: string;
  step: number;
  totalSteps: number;
  metrics: Record<string, number>;
  etaSeconds: number;
}

export interface TrainOptions {
  stage: string;
  model: GPT;
  tokenizer: Tokenizer;
  data: LmData;
  cfg: TrainConfig;
  run: RunDir;
  onProgress?: (p: Progress) => void;
  /** Polled between steps; true stops after writing a checkpoint. */
  shouldStop?: () => boolean;
  /** Resume from this step checkpoint (the model must already hold its weights). */
  resume?: { step: number; dir: string };
  /** Keys added to config.json of every checkpoint. */
  extraConfig?: Record<string, unknown>;
}

export class TrainingError extends Error {}

export interface TrainResult {
  step: number;
  stopped: boolean;
  finalModel?: string;
  lastMetrics: Record<string, number>;
}

export function batchTensors(b: Batch) {
  return {
    ids: tf.tensor2d(b.ids, [b.B, b.T], 'int32'),
    targets: tf.tensor1d(b.targets, 'int32'),
    weights: tf.tensor1d(b.weights, 'float32'),
  };
}

/** Weighted mean next-token loss of a batch (no gradient). */
export function evalLoss(model: GPT, batches: Batch[]): number {
  if (!batches.length) return NaN;
  let total = 0, weight = 0;
  for (const b of batches) {
    const w = b.weights.reduce((a, x) => a + x, 0);
    if (w === 0) continue;
    const l = tf.tidy(() => {
      const t = batchTensors(b);
      return crossEntropy(model.logits(t.ids), t.targets, t.weights).dataSync()[0];
    });
    total += l * w;
    weight += w;
  }
  return total / weight;
}

export async function trainLm(o: TrainOptions): Promise<TrainResult> {
  const { model, cfg, run, data } = o;
  const opt = new AdamW(model.params, { beta1: cfg.beta1, beta2: cfg.beta2, eps: 1e-8, weightDecay: cfg.weightDecay });
  const sched = { lr: cfg.lr, minLr: cfg.minLr, warmupSteps: cfg.warmupSteps, totalSteps: cfg.steps };
  let step = 0;
  if (o.resume) {
    const state = JSON.parse(fs.readFileSync(path.join(o.resume.dir, 'trainer_state.json'), 'utf8'));
    opt.loadState(readSafetensors(path.join(o.resume.dir, 'optimizer.safetensors')).tensors, state.optimizer_t);
    step = state.step;
    run.truncateMetrics(step);
  }
  const evalSet = data.evalBatches();
  const threads = cfg.threads > 0 ? cfg.threads : autoThreads();
  const par = threads > 1 && cfg.batchSize > 1 ? await GradThreads.start(model, threads - 1) : undefined;
  let lastMetrics: Record<string, number> = {};
  const started = Date.now();
  const firstStep = step;

  const checkpoint = async (s: number) => {
    const dir = run.stepCheckpointDir(s);
    const weights = await model.weights();
    const optState = serializeSafetensors(await opt.state());
    writeModelDir(dir, model.config, weights, o.tokenizer, {
      extraConfig: o.extraConfig,
      files: {
        'optimizer.safetensors': optState,
        'trainer_state.json': JSON.stringify({ step: s, optimizer_t: opt.t, seed: cfg.seed, stage: o.stage }) + '\n',
      },
    });
    run.pruneCheckpoints(cfg.keepCheckpoints);
  };

  try {
    while (step < cfg.steps) {
      if (o.shouldStop?.()) {
        await checkpoint(step);
        return { step, stopped: true, lastMetrics };
      }
      const t0 = performance.now();
      const lr = learningRate(step, sched);
      const grads = new Map<string, tf.Tensor>();
      let lossSum = 0, tokens = 0;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const rng = new Rng(deriveSeed(cfg.seed, step, micro));
        const b = data.trainBatch(step, micro, rng);
        tokens += b.B * b.T;
        let loss: number, g: Map<string, tf.Tensor>;
        if (par) ({ loss, grads: g } = await par.lossAndGrads(b, rng, deriveSeed(cfg.seed, step, micro, 0x7d)));
        else {
          const r = lossAndGrads(model, b, rng);
          loss = r.value.dataSync()[0];
          r.value.dispose();
          g = r.grads;
        }
        lossSum += loss;
        for (const [name, gt] of g) {
          const prev = grads.get(name);
          if (prev) {
            grads.set(name, tf.add(prev, gt));
            prev.dispose();
            gt.dispose();
          } else grads.set(name, gt);
        }
      }
      if (cfg.gradAccum > 1) {
        for (const [name, g] of grads) {
          grads.set(name, tf.div(g, cfg.gradAccum));
          g.dispose();
        }
      }
      const loss = lossSum / cfg.gradAccum;
      if (!Number.isFinite(loss)) throw new TrainingError(`step ${step + 1}: loss is ${loss}; stopped, the last good checkpoint is kept`);
      const gradNorm = clipByGlobalNorm(grads, cfg.gradClip);
      if (!Number.isFinite(gradNorm)) throw new TrainingError(`step ${step + 1}: grad_norm is ${gradNorm}; stopped, the last good checkpoint is kept`);
      opt.step(grads, lr);
      par?.invalidate();
      tf.dispose([...grads.values()]);
      step += 1;
      const seconds = (performance.now() - t0) / 1000;
      const m: Record<string, number> = { step, time: Date.now() / 1000, loss, learning_rate: lr, grad_norm: gradNorm, tokens_per_second: tokens / seconds };
      if ((cfg.evalInterval > 0 && step % cfg.evalInterval === 0) || step === cfg.steps) {
        const el = evalLoss(model, evalSet);
        if (Number.isFinite(el)) m['eval/loss'] = el;
      }
      run.appendMetrics(m);
      lastMetrics = m;
      const elapsed = (Date.now() - started) / 1000;
      o.onProgress?.({ stage: o.stage, step, totalSteps: cfg.steps, metrics: m, etaSeconds: (elapsed / (step - firstStep)) * (cfg.steps - step) });
      if (cfg.checkpointInterval > 0 && step % cfg.checkpointInterval === 0 && step < cfg.steps) await checkpoint(step);
    }
    await checkpoint(step);
    const finalModel = path.join(run.checkpointsDir, 'final');
    writeDirAtomic(finalModel, (tmp) => {
      for (const f of fs.readdirSync(run.stepCheckpointDir(step))) {
        if (f === 'optimizer.safetensors' || f === 'trainer_state.json') continue;
        writeFileSynced(path.join(tmp, f), fs.readFileSync(path.join(run.stepCheckpointDir(step), f)));
      }
    });
    return { step, stopped: false, finalModel, lastMetrics };
  } finally {
    opt.dispose();
    await par?.close();
  }
}
