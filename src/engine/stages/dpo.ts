/**
 * Direct Preference Optimization (`rlhf dpo`, Rafailov et al. 2023): the policy (usually the SFT
 * model) learns straight from preferences, with no reward model and no sampling. Every RM format
 * is accepted: pairwise and HH records give one pair; K-way rankings use the Plackett-Luce loss
 * over the whole ranking (dpo/losses.ts), or, with --kway pairs, every pair of different ranks.
 *
 * The frozen reference is the starting model: its log-probability of every response is computed
 * once, before the first step, and stored in the run (reference_logps.json), so a resume reads it
 * instead of loading the reference again. Logged with TRL's names: loss, rewards/chosen,
 * rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, and their
 * eval/ versions on the held-out split (every 10th record unless --eval-data is given).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { alternate, concatArrays, take, takeScalar } from '../read';
import { CausalLM } from '../causal-lm';
import { Tokenizer } from '../tokenizer';
import { deriveSeed, epochOrder } from '../rng';
import { RunDir } from '../../data/run';
import { writeFileAtomic } from '../../data/durable';
import { loadModel, modelFiles, readModelDir, writeFilesAtomic } from '../checkpoint';
import { startModel } from './model-setup';
import { checkStageMemory, dataParallel } from '../memory';
import { Objective, TrainConfig, evaluationsFrom, train as trainLoop } from '../train/trainer';
import { Pass, PlannedModel, shapeOfConfig } from '../cost';
import { Ranking, comparisons } from '../../data/rm';
import { DpoLossConfig, KwayMode, RankedGroup, dpoLoss, dpoLossTerms, dpoMetrics, sequenceLogps } from '../dpo/losses';
import { GradThreads, autoThreads } from '../train/parallel';
import { DpoBatch, dpoLossAndGrads } from '../train/grad-thread';
import { readRmFile } from './rm';
import { DEFAULT_TRAIN, DatasetStageOptions, StageHooks, checkRecorded, datasetRunInfo, openResume, runLifecycle, trainEvalSplit } from './common';
import { encodeContext } from '../chat';

// ---- hyperparameters -------------------------------------------------------------------------
export interface DpoConfig extends DpoLossConfig {
  /** K-way rankings: 'pl' (Plackett-Luce over the whole ranking) or 'pairs' (all C(K,2) pairs). */
  kway: KwayMode;
}
export const DEFAULT_DPO: DpoConfig = { beta: 0.1, loss: 'sigmoid', labelSmoothing: 0, kway: 'pl' };
/** DPO moves a model little per step: a low learning rate, as TRL's default 1e-6 is for 7B models and far too low here. */
export const DPO_TRAIN: Partial<TrainConfig> = { steps: 100, batchSize: 4, lr: 5e-5, minLr: 5e-6, warmupSteps: 5, weightDecay: 0, evalInterval: 25 };

export interface DpoOptions extends DatasetStageOptions {
  dpo?: Partial<DpoConfig>;
}

export function checkDpoConfig(c: DpoConfig): void {
  if (!(c.beta > 0 && Number.isFinite(c.beta))) throw new Error(`--beta must be a positive number, got ${c.beta}`);
  if (c.loss !== 'sigmoid' && c.loss !== 'ipo') throw new Error(`--loss must be sigmoid or ipo, got ${c.loss}`);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 0.5)) throw new Error(`--label-smoothing must be in [0, 0.5), got ${c.labelSmoothing}`);
  if (c.kway !== 'pl' && c.kway !== 'pairs') throw new Error(`--kway must be pl or pairs, got ${c.kway}`);
}

// ---- data ------------------------------------------------------------------------------------
/** A ranking's responses as token sequences: context + response + end-of-text, and where the response starts. */
export interface DpoRecord {
  seqs: number[][];
  starts: number[];
  ranks: number[];
  /** As the record has them (for samples.jsonl). */
  prompt: string;
  responses: string[];
}

/** Held-out responses written to samples.jsonl at each evaluation. */
const EVAL_SAMPLES = 16;

function tokenize(r: Ranking, tok: Tokenizer, maxLen: number): DpoRecord {
  const ctx = encodeContext(tok, r);
  const seqs: number[][] = [], starts: number[] = [];
  for (const resp of r.responses) {
    const y = [...tok.encode(resp), tok.eot].slice(0, maxLen - 1); // at least one context token stays
    const x = ctx.slice(-(maxLen - y.length));
    seqs.push([...x, ...y]);
    starts.push(x.length);
  }
  return { seqs, starts, ranks: r.ranks, prompt: r.prompt, responses: r.responses };
}

export function prepareDpo(o: { data: string; evalData?: string }, tok: Tokenizer, maxLen: number, log?: (s: string) => void) {
  const { train, held } = trainEvalSplit(readRmFile, 'preference', o.data, o.evalData);
  const usable = (rs: Ranking[]) => rs.filter((r) => comparisons(r).length > 0 && new Set(r.responses).size === r.responses.length);
  const trainSet = usable(train), evalSet = usable(held);
  const skipped = train.length - trainSet.length;
  if (skipped) log?.(`${skipped} record(s) skipped: everything tied, flagged not_rankable, or identical responses`);
  if (!trainSet.length) throw new Error(`${o.data} has no preference to learn from (every record tied, flagged or with identical responses)`);
  return { train: trainSet.map((r) => tokenize(r, tok, maxLen)), eval: evalSet.map((r) => tokenize(r, tok, maxLen)) };
}

/** A batch of records: padded ids [N, T], the response mask [N, T] (positions predicting a response token), and the groups. */
function batchOf(records: DpoRecord[], pad: number, kway: DpoConfig['kway']) {
  const seqs = records.flatMap((r) => r.seqs);
  const starts = records.flatMap((r) => r.starts);
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T).fill(pad);
  const mask = new Float32Array(seqs.length * T);
  seqs.forEach((s, n) => {
    ids.set(s, n * T);
    for (let t = starts[n] - 1; t < s.length - 1; t++) mask[n * T + t] = 1;
  });
  const groups: RankedGroup[] = [];
  let row = 0;
  for (const r of records) {
    groups.push({ rows: r.seqs.map((_, i) => row + i), ranks: r.ranks });
    row += r.seqs.length;
  }
  return { ids, mask, N: seqs.length, T, groups, pl: kway === 'pl' };
}

/**
 * Log-probabilities of every response of every record, a few records at a time, without gradients;
 * with data-parallel threads, every other chunk on thread 1 while this one computes its own.
 */
async function allLogps(model: CausalLM, records: DpoRecord[], pad: number, par?: GradThreads): Promise<number[][]> {
  const chunks: DpoRecord[][] = [];
  for (let i = 0; i < records.length; i += 8) chunks.push(records.slice(i, i + 8));
  const here = (part: DpoRecord[]) => {
    const b = batchOf(part, pad, 'pairs');
    return take(tf.tidy(() => sequenceLogps(model, tf.tensor2d(b.ids, [b.N, b.T], 'int32'), tf.tensor2d(b.mask, [b.N, b.T]))));
  };
  const there = par && ((part: DpoRecord[]) => {
    const b = batchOf(part, pad, 'pairs');
    return par.sequenceLogps(b.ids, b.mask, b.N, b.T);
  });
  const lps = await alternate(chunks, here, there);
  const out: number[][] = [];
  chunks.forEach((part, k) => {
    let o = 0;
    for (const r of part) {
      out.push(Array.from(lps[k].subarray(o, o + r.seqs.length)));
      o += r.seqs.length;
    }
  });
  return out;
}

/** The training records a run of these steps will draw (the same order microStep uses). */
function recordsUsed(n: number, cfg: TrainConfig): Set<number> {
  const order = epochOrder(n, deriveSeed(cfg.seed, 0xd0));
  const used = new Set<number>();
  for (let g = 0; g < cfg.steps * cfg.gradAccum * cfg.batchSize && used.size < n; g++) used.add(order(g));
  return used;
}

/**
 * The reference's log-probabilities of the training records the run will draw (null for the others:
 * a short run on a large file does not pay for the whole file) and of every held-out record.
 */
async function referenceLogps(model: CausalLM, data: { train: DpoRecord[]; eval: DpoRecord[] }, cfg: TrainConfig, pad: number, par?: GradThreads) {
  const used = [...recordsUsed(data.train.length, cfg)].sort((a, b) => a - b);
  const lps = await allLogps(model, used.map((i) => data.train[i]), pad, par);
  const train: (number[] | null)[] = data.train.map(() => null);
  used.forEach((i, k) => (train[i] = lps[k]));
  return { train, eval: await allLogps(model, data.eval, pad, par) };
}

const REF_FILE = 'reference_logps.json';

/** The passes a DPO run makes from `fromStep` on (the batches are fixed by the seed): the policy's training and evaluations. */
export function dpoPlan(policy: PlannedModel, data: { train: DpoRecord[]; eval: DpoRecord[] }, c: DpoConfig, cfg: TrainConfig, pad: number, fromStep: number): Pass[] {
  // the reference's log-probabilities are computed before the run starts; its passes are the policy's
  const order = epochOrder(data.train.length, deriveSeed(cfg.seed, 0xd0));
  const shape = shapeOfConfig(policy.config, 'policy');
  let tokens = 0, sq = 0;
  for (let step = fromStep; step < cfg.steps; step++) {
    for (let micro = 0; micro < cfg.gradAccum; micro++) {
      const b = batchOf(Array.from({ length: cfg.batchSize }, (_, r) => data.train[order((step * cfg.gradAccum + micro) * cfg.batchSize + r)]), pad, c.kway);
      tokens += b.N * b.T;
      sq += b.N * b.T * b.T;
    }
  }
  const evals = evaluationsFrom(cfg, fromStep);
  const ev = data.eval.flatMap((r) => r.seqs), evTokens = ev.reduce((a, x) => a + x.length, 0);
  const passes: Pass[] = [{ what: 'training', kind: 'train', model: shape, tokens, context: tokens ? sq / tokens : 0, loraParams: policy.lora?.numParameters }];
  if (evals && evTokens) passes.push({ what: 'evaluation', kind: 'forward', model: shape, tokens: evals * evTokens, context: ev.reduce((a, x) => a + x.length ** 2, 0) / evTokens });
  return passes;
}

// ---- the objective -----------------------------------------------------------------------------
/** Data parallelism: replicas of the policy on other threads, each with a share of the rankings. */
async function dpoThreads(policy: CausalLM, cfg: TrainConfig): Promise<GradThreads | undefined> {
  return cfg.threads > 1 && cfg.batchSize > 1 ? GradThreads.start(policy, Math.min(cfg.threads, cfg.batchSize) - 1) : undefined;
}

function dpoObjective(policy: CausalLM, tok: Tokenizer, data: { train: DpoRecord[]; eval: DpoRecord[] }, ref: { train: (number[] | null)[]; eval: number[][] }, c: DpoConfig, cfg: TrainConfig, par: GradThreads | undefined): Objective {
  const order = epochOrder(data.train.length, deriveSeed(cfg.seed, 0xd0));
  let evalRows: Record<string, unknown>[] = [];
  const evaluate = async (records: DpoRecord[], refs: number[][]): Promise<Record<string, number>> => {
    if (!records.length) return {};
    const lp = await allLogps(policy, records, tok.eot, par);
    // samples.jsonl: the first held-out rankings' responses, each with its implicit reward beta * (log pi - log pi_ref)
    evalRows = [];
    for (let i = 0; i < records.length && evalRows.length < EVAL_SAMPLES; i++) {
      records[i].seqs.forEach((_, j) => {
        const logRatio = lp[i][j] - refs[i][j];
        evalRows.push({ prompt: records[i].prompt, response: records[i].responses[j], implicit_reward: c.beta * logRatio });
      });
    }
    const flat = lp.flat(), flatRef = refs.flat();
    const b = batchOf(records, tok.eot, c.kway);
    const loss = await takeScalar(tf.tidy(() => dpoLoss(tf.sub(tf.tensor1d(flat), tf.tensor1d(flatRef)) as tf.Tensor1D, b.groups, c)));
    return { loss, ...dpoMetrics(flat, flatRef, b.groups, c.beta) };
  };
  return {
    stage: 'dpo',
    params: policy.params,
    async microStep(step, micro) {
      const picks = Array.from({ length: cfg.batchSize }, (_, r) => order((step * cfg.gradAccum + micro) * cfg.batchSize + r));
      const refOf = (i: number) => {
        const r = ref.train[i];
        if (!r) throw new Error(`the reference log-probabilities of training record ${i} were not computed (${REF_FILE} does not match this run)`);
        return r;
      };
      // rankings split across the threads, record j to part j % n (as the reward model's); one part on one thread
      const n = par?.size ?? 1;
      const parts: DpoBatch[] = Array.from({ length: n }, (_, k) => picks.filter((_, j) => j % n === k)).filter((p) => p.length).map((p) => {
        const b = batchOf(p.map((i) => data.train[i]), tok.eot, c.kway);
        return { ids: b.ids, mask: b.mask, N: b.N, T: b.T, groups: b.groups, refLogps: Float32Array.from(p.flatMap(refOf)), loss: c };
      });
      let loss: number, grads: Map<string, tf.Tensor>, logps: Float32Array;
      if (par && parts.length > 1) ({ loss, grads, logps } = await par.dpoLossAndGrads(parts, parts.map((p) => dpoLossTerms(p.groups, c))));
      else {
        const r = await dpoLossAndGrads(policy, parts[0]);
        loss = await takeScalar(r.value);
        ({ grads, logps } = r);
      }
      // the metrics over the whole batch: the parts' rows one after another
      const groups: RankedGroup[] = [];
      let row = 0;
      for (const p of parts) {
        for (const g of p.groups) groups.push({ rows: g.rows.map((x) => x + row), ranks: g.ranks });
        row += p.N;
      }
      const refLogps = concatArrays(parts.map((p) => p.refLogps));
      return { loss, grads, tokens: parts.reduce((a, p) => a + p.N * p.T, 0), metrics: dpoMetrics(logps, refLogps, groups, c.beta) };
    },
    async evaluate() {
      return Object.fromEntries(Object.entries(await evaluate(data.eval, ref.eval)).map(([k, v]) => [`eval/${k}`, v]));
    },
    evalSamples: (step) => evalRows.map((r) => ({ step, ...r })),
    async writeModel(dir, files) {
      writeFilesAtomic(dir, { ...(await modelFiles(policy, tok)), ...files });
    },
    afterUpdate: () => par?.invalidate(),
    plan: (fromStep) => dpoPlan(policy, data, c, cfg, tok.eot, fromStep),
  };
}

// ---- the stage -------------------------------------------------------------------------------

export async function dpo(o: DpoOptions, hooks: StageHooks = {}) {
  const c: DpoConfig = { ...DEFAULT_DPO, ...o.dpo };
  checkDpoConfig(c);
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...DPO_TRAIN, ...o.train };
  train.threads ||= autoThreads(); // recorded, so a resume splits batches the same way
  const loaded = readModelDir(o.model);
  const tokenizer = loaded.tokenizer;
  const data = prepareDpo(o, tokenizer, loaded.config.n_positions, hooks.log); // fails before anything is written
  const longest = Math.max(...data.train.flatMap((r) => r.seqs.map((x) => x.length)));
  const perRecord = Math.max(...data.train.map((r) => r.seqs.length));
  // each data-parallel replica takes a share of the rankings, every response of each
  const dp = dataParallel(train.threads, train.batchSize);
  checkStageMemory(loaded.config, { models: 1, trained: 1, batchSize: train.batchSize * perRecord, seq: longest, loraR: o.lora?.r ?? 0, threads: dp && { ...dp, batchSize: dp.batchSize * perRecord } });
  const info = datasetRunInfo('dpo', o, loaded.config, train);
  const run = RunDir.create(o.runsDir, { ...info, config: { ...info.config, dpo: c } }, o.runId);
  const model = await startModel(loaded, o.lora, run.dir, train.seed);
  let par: GradThreads | undefined;
  try {
    par = await dpoThreads(model, train);
    const used = recordsUsed(data.train.length, train).size;
    hooks.log?.(`run ${run.dir}: ${data.train.length} preference records (${data.eval.length} held out); computing the reference's log-probabilities once, for the ${used} the run will draw and the held-out ones`);
    // the reference is the starting model: its log-probabilities now, before any update, kept in the run
    const ref = await referenceLogps(model, data, train, tokenizer.eot, par);
    writeFileAtomic(path.join(run.dir, REF_FILE), JSON.stringify(ref));
    return await runLifecycle(run, () => trainLoop({ objective: dpoObjective(model, tokenizer, data, ref, c, train, par), cfg: train, run, ...hooks }));
  } finally {
    await par?.close();
    model.dispose();
  }
}

export async function resumeDpo(runDir: string, hooks: StageHooks = {}) {
  const { run, config, point, markResumed } = openResume<{ data: string; eval_data: string | null; train: TrainConfig; dpo: DpoConfig }>(runDir, hooks);
  checkRecorded(config.train, DEFAULT_TRAIN, 'config.train');
  const c = checkRecorded(config.dpo, DEFAULT_DPO, 'config.dpo');
  checkDpoConfig(c);
  const { model, tokenizer } = loadModel(point.dir);
  let par: GradThreads | undefined;
  try {
    const data = prepareDpo({ data: config.data, evalData: config.eval_data ?? undefined }, tokenizer, model.config.n_positions, hooks.log);
    const ref = JSON.parse(fs.readFileSync(path.join(run.dir, REF_FILE), 'utf8')) as { train: (number[] | null)[]; eval: number[][] };
    if (ref.train?.length !== data.train.length || ref.eval?.length !== data.eval.length) throw new Error(`${run.dir}: ${REF_FILE} does not match the data (was the dataset changed?)`);
    markResumed();
    par = await dpoThreads(model, config.train);
    return await runLifecycle(run, () => trainLoop({ objective: dpoObjective(model, tokenizer, data, ref, c, config.train, par), cfg: config.train, run, resume: point, ...hooks }));
  } finally {
    await par?.close();
    model.dispose();
  }
}
