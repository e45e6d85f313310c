/**
 * What a run asks of a distributed trainer, read from its run.json: the stage, the models and data
 * it used, and its hyperparameters in our names. trl.ts and openrlhf.ts translate it into their
 * flags. Pure.
 */
import type { TrainConfig } from '../engine/train/trainer';
export type Stage = 'sft' | 'rm' | 'dpo' | 'ppo' | 'grpo' | 'rloo';
export const STAGES: Stage[] = ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'];

/** The run's optimisation settings, as trainer.ts names them. */
export type TrainHyper = Pick<TrainConfig, 'steps' | 'batchSize' | 'gradAccum' | 'lr' | 'minLr' | 'warmupSteps' | 'weightDecay' | 'beta1' | 'beta2' | 'gradClip' | 'seed'>;

export interface LoraHyper {
  r: number;
  alpha?: number;
  dropout?: number;
  targets?: string[];
}

export interface RlHyper {
  iterations: number;
  promptsPerStep: number;
  samplesPerPrompt: number;
  maxNewTokens: number;
  temperature: number;
  lr: number;
  /** KL coefficient to the reference. */
  beta: number;
  seed: number;
  /** PPO */
  ppoEpochs?: number;
  minibatches?: number;
  valueLr?: number;
  clip?: number;
  valueClip?: number;
  gamma?: number;
  lambda?: number;
  klTarget?: number;
  klHorizon?: number;
  klEstimator?: string;
  /** GRPO */
  epsLow?: number;
  epsHigh?: number;
  lossType?: string;
  scaleRewards?: string;
  numIterations?: number;
}

export interface ExportPlan {
  stage: Stage;
  run: string;
  /** Folders and files inside the export folder, relative to it. */
  model: string;
  rewardModel?: string;
  data: string;
  chat: boolean;
  maxLen: number;
  /** Records (SFT, preference pairs or prompts) in the exported data: epochs from steps. */
  rows: number;
  train?: TrainHyper;
  lora?: LoraHyper;
  dpo?: { beta: number; loss: string; labelSmoothing: number; kway: string };
  rl?: RlHyper;
  /** Pairs carry a margin (from K-way ranks). */
  margins?: boolean;
}

/** A trainer's command: the launcher's words, then the trainer's flags (checked against its source in the tests). */
export interface TrainerCommand {
  launcher: string[];
  /** The trainer's own flags and values, in order. */
  args: string[];
  /** What did not translate one to one (comments in the scripts, lines in the README). */
  notes: string[];
}

/** Optimizer steps -> whole passes over the data (for trainers that count epochs), at least 1. */
export function epochsFor(steps: number, batch: number, rows: number): number {
  return Math.max(1, Math.ceil((steps * batch) / Math.max(1, rows)));
}

export const num = (x: number) => String(Number(x.toPrecision(6)));
