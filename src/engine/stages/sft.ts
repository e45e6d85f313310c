/**
 * Supervised fine-tuning on demonstrations: the loss is taken only on response tokens
 * (assistant turns for conversations) and their end-of-text token; prompt tokens and padding
 * get weight 0, hence exactly zero gradient. Examples are visited in a seeded permutation per
 * epoch, so the position in the data is a function of the step (exact resume).
 */
import { CausalLM } from '../causal-lm';
import { Tokenizer } from '../tokenizer';
import { deriveSeed, epochOrder } from '../rng';
import { RunDir } from '../../data/run';
import { loadModel, readModelDir } from '../checkpoint';
import { startModel } from './model-setup';
import { checkStageMemory, dataParallel } from '../memory';
import { LmData, TrainConfig, lmObjective, train as trainLoop } from '../train/trainer';
import { Batch } from '../train/batch';
import { readRecords } from '../../data/jsonl';
import { SftExample, toSftExample } from '../../data/sft';
import { autoThreads } from '../train/parallel';
import { DEFAULT_TRAIN, checkRecorded, DatasetStageOptions, datasetRunInfo, StageHooks, assertFile, openResume, runLifecycle, trainEvalSplit } from './common';

export type SftOptions = DatasetStageOptions;

export const SFT_DEFAULTS: Partial<TrainConfig> = { lr: 3e-4, minLr: 3e-5, warmupSteps: 10, steps: 150, weightDecay: 0.0 };

export interface TokenizedExample {
  ids: number[];
  /** weights[i] = 1 when token i is a response token (a target of the loss). */
  weights: number[];
}

/**
 * Token ids and loss weights of a demonstration. A model with a chat template reads
 * conversations through it (the template writes its own end-of-turn tokens, trained with the
 * assistant's turn); other models read the data layer's segments.
 */
export function tokenizeExample(ex: SftExample, tok: Tokenizer, maxTokens: number): TokenizedExample {
  const ids: number[] = [], weights: number[] = [];
  const segments = tok.chat && ex.messages ? tok.chat.segments(ex.messages) : ex.segments;
  for (const s of segments) {
    for (const id of tok.encode(s.text)) {
      ids.push(id);
      weights.push(s.train ? 1 : 0);
    }
    if (s.eot) {
      ids.push(tok.eot);
      weights.push(s.train ? 1 : 0);
    }
  }
  return { ids: ids.slice(0, maxTokens), weights: weights.slice(0, maxTokens) };
}

export function readSftFile(file: string): { items: SftExample[]; problems: string[] } {
  assertFile(file, 'SFT dataset');
  return readRecords(file, toSftExample);
}

/** Input/target/weight rows for a list of examples, padded with end-of-text at weight 0. */
export function makeBatch(exs: TokenizedExample[], pad: number): Batch {
  const T = Math.max(...exs.map((e) => e.ids.length - 1));
  const B = exs.length;
  const b: Batch = { ids: new Int32Array(B * T).fill(pad), targets: new Int32Array(B * T).fill(pad), weights: new Float32Array(B * T), B, T };
  exs.forEach((e, r) => {
    for (let t = 0; t + 1 < e.ids.length; t++) {
      b.ids[r * T + t] = e.ids[t];
      b.targets[r * T + t] = e.ids[t + 1];
      b.weights[r * T + t] = e.weights[t + 1];
    }
  });
  return b;
}

export function sftData(train: TokenizedExample[], evalSet: TokenizedExample[], cfg: TrainConfig, pad: number): LmData {
  const order = epochOrder(train.length, deriveSeed(cfg.seed, 0x5f7));
  const evalBatches: Batch[] = [];
  for (let i = 0; i < evalSet.length; i += cfg.batchSize) evalBatches.push(makeBatch(evalSet.slice(i, i + cfg.batchSize), pad));
  return {
    trainBatch(step, micro) {
      const exs: TokenizedExample[] = [];
      for (let r = 0; r < cfg.batchSize; r++) {
        const g = (step * cfg.gradAccum + micro) * cfg.batchSize + r;
        exs.push(train[order(g)]);
      }
      return makeBatch(exs, pad);
    },
    evalBatches: () => evalBatches,
  };
}

export function prepareSft(o: { data: string; evalData?: string }, tokenizer: Tokenizer, maxTokens: number, log?: (s: string) => void) {
  const { train: trainEx, held: evalEx } = trainEvalSplit(readSftFile, 'SFT', o.data, o.evalData);
  const tok = (exs: SftExample[]) => exs.map((e) => tokenizeExample(e, tokenizer, maxTokens)).filter((e) => e.weights.slice(1).some((w) => w > 0));
  const train = tok(trainEx), evalSet = tok(evalEx);
  const dropped = trainEx.length - train.length;
  if (dropped) log?.(`${dropped} demonstration(s) have no response token within ${maxTokens} tokens and are skipped`);
  if (!train.length) throw new Error(`${o.data} has no usable demonstration`);
  return { train, evalSet };
}

export async function sft(o: SftOptions, hooks: StageHooks = {}) {
  const loaded = readModelDir(o.model);
  const tokenizer = loaded.tokenizer;
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...SFT_DEFAULTS, ...o.train };
  train.threads ||= autoThreads(); // recorded, so a resume splits batches the same way
  const prepared = prepareSft(o, tokenizer, loaded.config.n_positions + 1, hooks.log);
  checkStageMemory(loaded.config, { models: 1, trained: 1, batchSize: train.batchSize, seq: Math.max(...prepared.train.map((e) => e.ids.length)), loraR: o.lora?.r ?? 0, threads: dataParallel(train.threads, train.batchSize) });
  const run = RunDir.create(o.runsDir, datasetRunInfo('sft', o, loaded.config, train), o.runId);
  const model = await startModel(loaded, o.lora, run.dir, train.seed);
  try {
    hooks.log?.(`run ${run.dir}: ${prepared.train.length} demonstrations (${prepared.evalSet.length} held out)${model.lora ? `; LoRA r=${model.lora.cfg.r} on ${model.lora.A.size} projections: ${model.lora.numParameters} trained parameters of ${model.numParameters}` : ''}`);
    return await continueSft(run, model, tokenizer, prepared, train, hooks);
  } finally {
    model.dispose();
  }
}

async function continueSft(run: RunDir, model: CausalLM, tokenizer: Tokenizer, p: { train: TokenizedExample[]; evalSet: TokenizedExample[] }, train: TrainConfig, hooks: StageHooks, resume?: { step: number; dir: string }) {
  const data = sftData(p.train, p.evalSet, train, tokenizer.eot);
  return runLifecycle(run, () => lmObjective('sft', model, tokenizer, data, train).then((objective) => trainLoop({ objective, cfg: train, run, resume, ...hooks })));
}

export async function resumeSft(runDir: string, hooks: StageHooks = {}) {
  const { run, config, point, markResumed } = openResume<{ data: string; eval_data: string | null; train: TrainConfig }>(runDir, hooks);
  checkRecorded(config.train, DEFAULT_TRAIN, 'config.train');
  const { model, tokenizer } = loadModel(point.dir);
  try {
    const prepared = prepareSft({ data: config.data, evalData: config.eval_data ?? undefined }, tokenizer, model.config.n_positions + 1, hooks.log);
    markResumed();
    return await continueSft(run, model, tokenizer, prepared, config.train, hooks, point);
  } finally {
    model.dispose();
  }
}
