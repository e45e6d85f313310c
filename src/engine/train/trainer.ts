/**
 * The training loop every gradient stage shares (pretraining, SFT, reward model): gradient
 * accumulation, global-norm clipping, AdamW, warmup + cosine schedule, periodic evaluation,
 * metrics, atomic checkpoints with optimizer state, cancellation, NaN/Inf stops, exact resume.
 * What is trained and how its loss is computed is an Objective.
 *
 * Reproducibility: every random choice of step s, micro-batch j (batch sampling, dropout) comes
 * from a generator seeded by (seed, s, j), so a run resumed at step s replays exactly what an
 * uninterrupted run would have done.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '../causal-lm';
import { Tokenizer } from '../tokenizer';
import { Rng, deriveSeed } from '../rng';
import { RunDir } from '../../data/run';
import { modelFiles, writeDirAtomic, writeFileSynced, writeFilesAtomic } from '../checkpoint';
import { readSafetensors, serializeSafetensors } from '../safetensors';
import { AdamW, clipByGlobalNorm, learningRate } from './optim';
import { GradThreads, autoThreads } from './parallel';
import { lossAndGrads } from './grad-thread';
import { takeScalar } from '../read';
import { assertFitsAdapter } from '../backends/webgpu';
import { lmLoss } from './lm-loss';
import { Pass, PlannedModel, shapeOfConfig } from '../cost';
import { startCost } from './cost-tracker';
import { Batch } from './batch';

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

/** What a stage trains: its parameters, its loss, its evaluation and its model directory. */
export interface Objective {
  stage: string;
  params: Map<string, tf.Variable>;
  /** Loss, gradients (keyed like params), tokens processed and extra metrics of one micro-batch. */
  microStep(step: number, micro: number, rng: Rng): Promise<{ loss: number; grads: Map<string, tf.Tensor>; tokens: number; metrics?: Record<string, number> }>;
  /** Held-out metrics, named eval/... */
  evaluate(): Record<string, number> | Promise<Record<string, number>>;
  /** Samples of the evaluation just made (DPO: held-out responses with their implicit rewards), for samples.jsonl. */
  evalSamples?(step: number): Record<string, unknown>[];
  /** Writes a model directory (with the extra files given) atomically at dir. */
  writeModel(dir: string, files: Record<string, string | Buffer>): Promise<void>;
  /** Called after every optimizer step (weights changed). */
  afterUpdate?(): void;
  /** The passes the steps from `fromStep` on will make (training and evaluation), for the cost estimate. */
  plan?(fromStep: number): Pass[];
  close?(): Promise<void>;
}

export interface TrainOptions {
  objective: Objective;
  cfg: TrainConfig;
  run: RunDir;
  onProgress?: (p: Progress) => void;
  /** Polled between steps; true stops after writing a checkpoint. */
  shouldStop?: () => boolean;
  onCheckpoint?: (dir: string, step: number) => void;
  /** The run's log (the cost estimate). */
  log?: (line: string) => void;
  /** Resume from this step checkpoint (the objective must already hold its weights). */
  resume?: { step: number; dir: string };
}

export class TrainingError extends Error {}

export interface TrainResult {
  step: number;
  stopped: boolean;
  finalModel?: string;
  lastMetrics: Record<string, number>;
}

/** Throws, naming the step and the quantity, when a number is NaN or infinite. */
export function assertFinite(step: number, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) throw new TrainingError(`step ${step}: ${k} is ${v}; stopped, the last good checkpoint is kept`);
  }
}

/**
 * Lets the event loop turn once, through its poll phase: a SIGINT/SIGTERM handler or the worker's
 * cancel message runs only then. Every training loop awaits it once per step, so Cancel stops any
 * stage within a step (steps whose awaits are already-resolved promises would never let it run).
 */
export async function yieldToEventLoop(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { objective, cfg, run } = o;
  const opt = new AdamW(objective.params, { beta1: cfg.beta1, beta2: cfg.beta2, eps: 1e-8, weightDecay: cfg.weightDecay });
  const sched = { lr: cfg.lr, minLr: cfg.minLr, warmupSteps: cfg.warmupSteps, totalSteps: cfg.steps };
  let step = 0;
  if (o.resume) {
    const state = JSON.parse(fs.readFileSync(path.join(o.resume.dir, 'trainer_state.json'), 'utf8'));
    opt.loadState(readSafetensors(path.join(o.resume.dir, 'optimizer.safetensors')).tensors, state.optimizer_t);
    step = state.step;
    run.truncateMetrics(step);
  }
  let lastMetrics: Record<string, number> = {};
  const started = Date.now();
  const firstStep = step;
  const cost = startCost(o.run, o.objective.plan?.(step), o.log);
  let trainedTokens = 0, stepSeconds = 0;

  const checkpoint = async (s: number) => {
    await objective.writeModel(run.stepCheckpointDir(s), {
      'optimizer.safetensors': serializeSafetensors(await opt.state()),
      'trainer_state.json': JSON.stringify({ step: s, optimizer_t: opt.t, seed: cfg.seed, stage: objective.stage }) + '\n',
    });
    run.pruneCheckpoints(cfg.keepCheckpoints);
    o.onCheckpoint?.(run.stepCheckpointDir(s), s);
  };

  try {
    while (step < cfg.steps) {
      await yieldToEventLoop();
      if (o.shouldStop?.()) {
        await checkpoint(step);
        return { step, stopped: true, lastMetrics };
      }
      const t0 = performance.now();
      const lr = learningRate(step, sched);
      const grads = new Map<string, tf.Tensor>();
      const sums: Record<string, number> = {};
      let lossSum = 0, tokens = 0;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const r = await objective.microStep(step, micro, new Rng(deriveSeed(cfg.seed, step, micro)));
        lossSum += r.loss;
        tokens += r.tokens;
        for (const [k, v] of Object.entries(r.metrics ?? {})) sums[k] = (sums[k] ?? 0) + v;
        for (const [name, g] of r.grads) {
          const prev = grads.get(name);
          if (prev) {
            grads.set(name, tf.add(prev, g));
            prev.dispose();
            g.dispose();
          } else grads.set(name, g);
        }
      }
      if (cfg.gradAccum > 1) {
        for (const [name, g] of grads) {
          grads.set(name, tf.div(g, cfg.gradAccum));
          g.dispose();
        }
      }
      const loss = lossSum / cfg.gradAccum;
      const gradNorm = await clipByGlobalNorm(grads, cfg.gradClip);
      assertFinite(step + 1, { loss, grad_norm: gradNorm });
      opt.step(grads, lr);
      objective.afterUpdate?.();
      tf.dispose([...grads.values()]);
      step += 1;
      const seconds = (performance.now() - t0) / 1000;
      trainedTokens += tokens;
      stepSeconds += seconds;
      const m: Record<string, number> = { step, time: Date.now() / 1000, loss, learning_rate: lr, grad_norm: gradNorm, tokens_per_second: tokens / seconds };
      for (const [k, v] of Object.entries(sums)) m[k] = v / cfg.gradAccum;
      if ((cfg.evalInterval > 0 && step % cfg.evalInterval === 0) || step === cfg.steps) {
        for (const [k, v] of Object.entries(await objective.evaluate())) if (Number.isFinite(v)) m[k] = v;
        run.appendSamples(objective.evalSamples?.(step) ?? []);
      }
      run.appendMetrics(m);
      lastMetrics = m;
      const elapsed = (Date.now() - started) / 1000;
      o.onProgress?.({ stage: objective.stage, step, totalSteps: cfg.steps, metrics: m, etaSeconds: (elapsed / (step - firstStep)) * (cfg.steps - step) });
      if (cfg.checkpointInterval > 0 && step % cfg.checkpointInterval === 0 && step < cfg.steps) await checkpoint(step);
    }
    await checkpoint(step);
    cost?.finish({ trainedTokens, stepSeconds, threads: cfg.threads });
    const finalModel = path.join(run.checkpointsDir, 'final');
    const last = run.stepCheckpointDir(step);
    writeDirAtomic(finalModel, (tmp) => {
      for (const f of fs.readdirSync(last)) {
        if (f !== 'optimizer.safetensors' && f !== 'trainer_state.json') writeFileSynced(path.join(tmp, f), fs.readFileSync(path.join(last, f)));
      }
    });
    return { step, stopped: false, finalModel, lastMetrics };
  } finally {
    opt.dispose();
    await objective.close?.();
  }
}

export function batchTensors(b: Batch) {
  return {
    ids: tf.tensor2d(b.ids, [b.B, b.T], 'int32'),
    targets: tf.tensor1d(b.targets, 'int32'),
    weights: tf.tensor1d(b.weights, 'float32'),
  };
}

/** Weighted mean next-token loss over batches (no gradient). */
export async function evalLoss(model: CausalLM, batches: Batch[]): Promise<number> {
  if (!batches.length) return NaN;
  let total = 0, weight = 0;
  for (const b of batches) {
    const w = b.weights.reduce((a, x) => a + x, 0);
    if (w === 0) continue;
    const l = await takeScalar(tf.tidy(() => {
      const t = batchTensors(b);
      return lmLoss(model, t.ids, t.targets, t.weights);
    }));
    total += l * w;
    weight += w;
  }
  return total / weight;
}

/**
 * Next-token prediction (pretraining, SFT): batches from `data`, gradients split across CPU
 * threads where that helps (parallel.ts).
 */
export async function lmObjective(stage: string, model: CausalLM, tokenizer: Tokenizer, data: LmData, cfg: TrainConfig, extraConfig?: Record<string, unknown>): Promise<Objective> {
  // the largest activation of a step: the logits of a micro-batch, [batch x block, vocabulary]
  assertFitsAdapter(`the logits of a batch [${cfg.batchSize} x ${model.config.n_positions}, ${model.config.vocab_size}]`, 4 * cfg.batchSize * model.config.n_positions * model.config.vocab_size);
  const evalSet = data.evalBatches();
  const threads = cfg.threads > 0 ? cfg.threads : autoThreads();
  const par = threads > 1 && cfg.batchSize > 1 ? await GradThreads.start(model, threads - 1) : undefined;
  return {
    stage,
    params: model.params,
    async microStep(step, micro, rng) {
      const b = data.trainBatch(step, micro, rng);
      const tokens = b.B * b.T;
      if (par) return { ...(await par.lossAndGrads(b, rng, deriveSeed(cfg.seed, step, micro, 0x7d))), tokens };
      const r = lossAndGrads(model, b, rng);
      return { loss: await takeScalar(r.value), grads: r.grads, tokens };
    },
    evaluate: async () => ({ 'eval/loss': await evalLoss(model, evalSet) }),
    writeModel: async (dir, files) => writeFilesAtomic(dir, { ...(await modelFiles(model, tokenizer, { extraConfig })), ...files }),
    afterUpdate: () => par?.invalidate(),
    close: async () => par?.close(),
    plan: (fromStep) => lmPlan(model, data, cfg, fromStep),
  };
}

/** How many evaluations the steps after `fromStep` make: every evalInterval-th step, and the last. */
export function evaluationsFrom(cfg: { steps: number; evalInterval: number }, fromStep: number): number {
  let n = 0;
  for (let s = fromStep + 1; s <= cfg.steps; s++) if ((cfg.evalInterval > 0 && s % cfg.evalInterval === 0) || s === cfg.steps) n++;
  return n;
}

/** The batches a language-model run will train on from `fromStep` (they are fixed by the seed), and its evaluations. */
export function lmPlan(model: PlannedModel, data: LmData, cfg: TrainConfig, fromStep: number): Pass[] {
  const shape = shapeOfConfig(model.config, 'model');
  let tokens = 0, weighted = 0;
  for (let s = fromStep; s < cfg.steps; s++) {
    for (let j = 0; j < cfg.gradAccum; j++) {
      const b = data.trainBatch(s, j, new Rng(deriveSeed(cfg.seed, s, j)));
      tokens += b.B * b.T;
      weighted += b.B * b.T * b.T;
    }
  }
  const evals = evaluationsFrom(cfg, fromStep);
  const ev = data.evalBatches();
  const evTokens = ev.reduce((a, b) => a + b.B * b.T, 0);
  const passes: Pass[] = [{ what: 'training', kind: 'train', model: shape, tokens, context: tokens ? weighted / tokens : 0, loraParams: model.lora?.numParameters }];
  if (evals && evTokens) passes.push({ what: 'evaluation', kind: 'forward', model: shape, tokens: evals * evTokens, context: ev.reduce((a, b) => a + b.B * b.T * b.T, 0) / evTokens });
  return passes;
}
