import { OptSpecs, ParsedOpts } from '../args';
import { TrainConfig } from '../../engine/train/trainer';
import { BackendName, initBackend } from '../../engine/backends/backend';
import { Reporter } from '../progress';
import { StageHooks } from '../../engine/stages/common';

export const COMMON: OptSpecs = {
  backend: { type: 'string', help: 'auto, gpu (CUDA), webgpu, node, wasm or cpu (rlhf backends lists what starts here)', default: process.env.RLHF_BACKEND ?? 'auto' },
  json: { type: 'boolean', help: 'machine-readable JSON lines on stdout' },
  help: { type: 'boolean', help: 'show this help' },
};

export const TRAIN_OPTS: OptSpecs = {
  steps: { type: 'int', help: 'optimizer steps' },
  'batch-size': { type: 'int', help: 'sequences per micro-batch' },
  'grad-accum': { type: 'int', help: 'micro-batches per optimizer step' },
  lr: { type: 'number', help: 'peak learning rate' },
  'min-lr': { type: 'number', help: 'learning rate at the end of the cosine decay' },
  'warmup-steps': { type: 'int', help: 'linear warmup steps' },
  'weight-decay': { type: 'number', help: 'AdamW decoupled weight decay (2-D weights only)' },
  'grad-clip': { type: 'number', help: 'global gradient-norm clip (0 = off)' },
  seed: { type: 'int', help: 'random seed' },
  threads: { type: 'int', help: 'CPU threads for data-parallel gradients (0 = both cores on wasm/cpu)' },
  'eval-interval': { type: 'int', help: 'steps between evaluations' },
  'checkpoint-interval': { type: 'int', help: 'steps between checkpoints' },
  'runs-dir': { type: 'string', help: 'where runs are written', default: '.rlhf/runs' },
  'run-id': { type: 'string', help: 'name of the run folder (default: stage-date-random)' },
};

export function trainOverrides(o: ParsedOpts): Partial<TrainConfig> {
  const map: [string, keyof TrainConfig][] = [
    ['steps', 'steps'], ['batch-size', 'batchSize'], ['grad-accum', 'gradAccum'], ['lr', 'lr'], ['min-lr', 'minLr'],
    ['warmup-steps', 'warmupSteps'], ['weight-decay', 'weightDecay'], ['grad-clip', 'gradClip'], ['seed', 'seed'],
    ['eval-interval', 'evalInterval'], ['checkpoint-interval', 'checkpointInterval'], ['threads', 'threads'],
  ];
  const out: Partial<TrainConfig> = {};
  for (const [k, field] of map) if (o[k] !== undefined) (out as Record<string, number>)[field] = o[k] as number;
  return out;
}

export async function startBackend(o: ParsedOpts, r: Reporter): Promise<void> {
  const b = await initBackend(o.backend as BackendName);
  r.log(`backend: ${b.name} — ${b.reason}`);
}

let stopRequested = false;

/** Asks the running stage to checkpoint and stop at its next step (the worker's cancel). */
export function requestStop(): void {
  stopRequested = true;
}

/** Cancellation by SIGINT/SIGTERM or requestStop(): the trainer checkpoints and stops at the next step. */
export function stopFlag(): () => boolean {
  stopRequested = false;
  const on = () => {
    if (stopRequested) process.exit(130); // a second Ctrl-C quits at once
    stopRequested = true;
  };
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return () => stopRequested;
}

/** The hooks every training command passes to its stage. */
export function hooksFor(r: Reporter): StageHooks {
  return { onProgress: (p) => r.progress(p), log: (l) => r.log(l), shouldStop: stopFlag(), onCheckpoint: (d, s) => r.checkpoint?.(d, s) };
}
