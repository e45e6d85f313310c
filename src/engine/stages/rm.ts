/**
 * Reward-model training (`rlhf rm`): the trunk starts from an SFT checkpoint, a scalar head is
 * added, and the K-way ranking loss of rm/ranking-loss.ts is minimised over the rankings. Logs
 * loss, accuracy, margin and reward mean/std on train and on a held-out split (every 10th record
 * unless --eval-data is given). Every checkpoint stores the reward mean and standard deviation
 * over the training responses (the first 512) in config.json (reward_mean, reward_std).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Pass, PlannedModel, shapeOfConfig } from '../cost';
import { takeScalar } from '../read';
import { Tokenizer } from '../tokenizer';
import { deriveSeed, epochOrder } from '../rng';
import { RunDir } from '../../data/run';
import { readModelDir } from '../checkpoint';
import { Objective, TrainConfig, evaluationsFrom, train as trainLoop } from '../train/trainer';
import { GradThreads, autoThreads } from '../train/parallel';
import { RankBatch, rankLossAndGrads } from '../train/grad-thread';
import { RewardModel } from '../rm/reward-model';
import { scoreSequences } from '../rm/score';
import { pairStats, pairsFor, rankingLoss } from '../rm/ranking-loss';
import { readRecords } from '../../data/jsonl';
import { Ranking, comparisons, toRanking } from '../../data/rm';
import { DEFAULT_TRAIN, checkRecorded, DatasetStageOptions, datasetRunInfo, StageHooks, assertFile, openResume, runLifecycle, trainEvalSplit } from './common';
import { encodeContext } from '../chat';
import { startModel } from './model-setup';
import { checkStageMemory, dataParallel } from '../memory';

export type RmOptions = DatasetStageOptions;

export const RM_DEFAULTS: Partial<TrainConfig> = { steps: 150, batchSize: 8, lr: 2e-4, minLr: 2e-5, warmupSteps: 10, weightDecay: 0, evalInterval: 50 };

export interface TokenizedRanking {
  seqs: number[][];
  ranks: number[];
  flags: string[];
  margin?: number;
}

export function readRmFile(file: string): { items: Ranking[]; problems: string[] } {
  assertFile(file, 'RM dataset');
  return readRecords(file, toRanking);
}

/** Each response as context + response + end-of-text, keeping the last maxLen tokens. */
export function tokenizeRanking(r: Ranking, tok: Tokenizer, maxLen: number): TokenizedRanking {
  const ctx = encodeContext(tok, r);
  return { seqs: r.responses.map((resp) => [...ctx, ...tok.encode(resp), tok.eot].slice(-maxLen)), ranks: r.ranks, flags: r.flags, margin: r.margin };
}

/** Padded ids [N, T], the reading position of each sequence and its pairs. */
export function rankingBatch(records: TokenizedRanking[], pad: number, recordsInBatch?: number): RankBatch {
  const seqs = records.flatMap((r) => r.seqs);
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T).fill(pad);
  seqs.forEach((s, n) => ids.set(s, n * T));
  const offsets: number[] = [];
  let o = 0;
  for (const r of records) {
    offsets.push(o);
    o += r.seqs.length;
  }
  return { ids, N: seqs.length, T, last: seqs.map((s) => s.length - 1), pairs: pairsFor(records, offsets, recordsInBatch) };
}


function meanStd(a: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length || 1;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(v / (a.length || 1)) };
}

/** Loss, accuracy and margin of a set of rankings under the reward model. */
export async function evaluateRankings(rm: RewardModel, records: TokenizedRanking[], pad: number, par?: GradThreads): Promise<{ loss: number; accuracy: number; margin: number }> {
  if (!records.length) return { loss: NaN, accuracy: NaN, margin: NaN };
  const rewards = await scoreSequences(rm, records.flatMap((r) => r.seqs), pad, 64, par && ((part) => par.replicaScores(part, pad)));
  const offsets: number[] = [];
  let o = 0;
  for (const r of records) {
    offsets.push(o);
    o += r.seqs.length;
  }
  const pairs = pairsFor(records, offsets);
  const loss = await takeScalar(tf.tidy(() => rankingLoss(tf.tensor1d(rewards), pairs)));
  return { loss, ...pairStats(rewards, pairs) };
}

export function prepareRm(o: { data: string; evalData?: string }, tok: Tokenizer, maxLen: number) {
  const { train: trainR, held: evalR } = trainEvalSplit(readRmFile, 'RM', o.data, o.evalData);
  const tokd = (rs: Ranking[]) => rs.filter((r) => comparisons(r).length > 0).map((r) => tokenizeRanking(r, tok, maxLen));
  const trainSet = tokd(trainR), evalSet = tokd(evalR);
  if (!trainSet.length) throw new Error(`${o.data} has no ranking with a comparison to learn from`);
  return { trainSet, evalSet };
}

/**
 * The passes a reward-model run makes from `fromStep` on (the batches are fixed by the seed): the
 * training, its evaluations, and the reward statistics read at each checkpoint. `threads` replicas
 * each pad their share of a batch to its own longest sequence.
 */
export function rmPlan(trunk: PlannedModel, trainSet: TokenizedRanking[], evalSet: TokenizedRanking[], cfg: TrainConfig, threads: number, fromStep: number): Pass[] {
  const order = epochOrder(trainSet.length, deriveSeed(cfg.seed, 0x7e));
  // the trunk without the LM head (a score is read from the last hidden state)
  const full = shapeOfConfig(trunk.config, 'reward model');
  const shape = { ...full, params: full.params - trunk.config.vocab_size * trunk.config.n_embd };
  const n = threads;
  let tokens = 0, sq = 0;
  for (let step = fromStep; step < cfg.steps; step++) {
    for (let micro = 0; micro < cfg.gradAccum; micro++) {
      const recs = Array.from({ length: cfg.batchSize }, (_, r) => trainSet[order((step * cfg.gradAccum + micro) * cfg.batchSize + r)]);
      for (let i = 0; i < n; i++) {
        const part = recs.filter((_, j) => j % n === i).flatMap((r) => r.seqs);
        if (!part.length) continue;
        const T = Math.max(...part.map((x) => x.length));
        tokens += part.length * T;
        sq += part.length * T * T;
      }
    }
  }
  const evals = evaluationsFrom(cfg, fromStep);
  const checkpoints = Math.floor((cfg.steps - 1) / (cfg.checkpointInterval || Infinity)) - Math.floor(fromStep / (cfg.checkpointInterval || Infinity)) + 1;
  const forward = (what: string, seqs: number[][], times: number): Pass => {
    const t = seqs.reduce((a, x) => a + x.length, 0);
    return { what, kind: 'forward', model: shape, tokens: t * times, context: t ? seqs.reduce((a, x) => a + x.length ** 2, 0) / t : 0 };
  };
  return [
    { what: 'training', kind: 'train', model: shape, tokens, context: tokens ? sq / tokens : 0, loraParams: trunk.lora?.numParameters },
    forward('evaluation', evalSet.flatMap((r) => r.seqs), evals),
    forward('reward statistics (512 responses per checkpoint)', trainSet.flatMap((r) => r.seqs).slice(0, 512), checkpoints),
  ];
}

async function rmObjective(rm: RewardModel, tok: Tokenizer, trainSet: TokenizedRanking[], evalSet: TokenizedRanking[], cfg: TrainConfig): Promise<Objective> {
  const order = epochOrder(trainSet.length, deriveSeed(cfg.seed, 0x7e));
  const threads = cfg.threads > 0 ? cfg.threads : autoThreads();
  const par = threads > 1 && cfg.batchSize > 1 ? await GradThreads.start(rm, threads - 1) : undefined;
  return {
    stage: 'rm',
    params: rm.params,
    async microStep(step, micro, rng) {
      const recs: TokenizedRanking[] = [];
      for (let r = 0; r < cfg.batchSize; r++) recs.push(trainSet[order((step * cfg.gradAccum + micro) * cfg.batchSize + r)]);
      // records split across the threads; pair weights stay those of the whole batch
      const n = par?.size ?? 1;
      const withPairs = recs.filter((r) => comparisons({ ...r, line: 0, prompt: '', context: '', responses: [] }).length > 0).length;
      const parts = Array.from({ length: n }, (_, i) => recs.filter((_, j) => j % n === i)).filter((p) => p.length).map((p) => rankingBatch(p, tok.eot, withPairs));
      let loss: number, grads: Map<string, tf.Tensor>, rewards: Float32Array;
      if (par) ({ loss, grads, rewards } = await par.rankLossAndGrads(parts, rng, deriveSeed(cfg.seed, step, micro, 0x7d)));
      else {
        const r = await rankLossAndGrads(rm, parts[0], rng);
        loss = await takeScalar(r.value);
        ({ grads, rewards } = r);
      }
      const { mean, std } = meanStd(rewards);
      let acc = 0, margin = 0, o = 0;
      for (const p of parts) {
        const s = pairStats(rewards.subarray(o, o + p.N), p.pairs);
        const w = p.pairs.weights.reduce((a, x) => a + x, 0);
        if (w > 0) {
          acc += s.accuracy * w;
          margin += s.margin * w;
        }
        o += p.N;
      }
      return { loss, grads, tokens: parts.reduce((a, p) => a + p.N * p.T, 0), metrics: { accuracy: acc, margin, reward_mean: mean, reward_std: std } };
    },
    async evaluate() {
      const e = await evaluateRankings(rm, evalSet, tok.eot, par);
      return { 'eval/loss': e.loss, 'eval/accuracy': e.accuracy, 'eval/margin': e.margin };
    },
    async writeModel(dir, files) {
      // reward statistics over (at most) the first 512 training responses: enough to centre scores
      const { mean, std } = meanStd(await scoreSequences(rm, trainSet.flatMap((r) => r.seqs).slice(0, 512), tok.eot, 64, par && ((part) => par.replicaScores(part, tok.eot))));
      await rm.write(dir, tok, { reward_mean: mean, reward_std: std }, files);
    },
    afterUpdate: () => par?.invalidate(),
    close: async () => par?.close(),
    plan: (fromStep) => rmPlan({ config: rm.trunk.config, lora: rm.trunk.lora ? { numParameters: rm.trunk.lora.numParameters + rm.w.size + rm.b.size } : undefined }, trainSet, evalSet, cfg, par?.size ?? 1, fromStep),

  };
}

export async function trainRewardModel(o: RmOptions, hooks: StageHooks = {}) {
  const loaded = readModelDir(o.model);
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...RM_DEFAULTS, ...o.train };
  train.threads ||= autoThreads(); // recorded, so a resume splits batches the same way
  const prepared = prepareRm(o, loaded.tokenizer, loaded.config.n_positions); // fails before anything is written
  // a batch of rankings is every response of each: K sequences per record
  const longest = Math.max(...prepared.trainSet.flatMap((r) => r.seqs.map((x) => x.length)));
  const perRecord = Math.max(...prepared.trainSet.map((r) => r.seqs.length));
  // a reward model scores the last hidden state: no logits over the vocabulary; its data-parallel
  // replicas each take a share of the records, every response of each
  const dp = dataParallel(train.threads, train.batchSize, { models: 1, trained: 1, lmHead: false });
  checkStageMemory(loaded.config, { models: 1, trained: 1, lmHead: false, batchSize: train.batchSize * perRecord, seq: longest, loraR: o.lora?.r ?? 0, threads: dp && { ...dp, batchSize: dp.batchSize * perRecord } });
  const run = RunDir.create(o.runsDir, datasetRunInfo('rm', o, loaded.config, train), o.runId);
  // the trunk: every weight, or a LoRA adapter on frozen ones; the score head always trains whole
  const rm = RewardModel.withTrunk(await startModel(loaded, o.lora, run.dir, train.seed), loaded, true, train.seed);
  try {
    hooks.log?.(`run ${run.dir}: ${prepared.trainSet.length} rankings (${prepared.evalSet.length} held out)${rm.trunk.lora ? `; LoRA r=${rm.trunk.lora.cfg.r} and the score head` : ''}`);
    return await runLifecycle(run, async () => trainLoop({ objective: await rmObjective(rm, loaded.tokenizer, prepared.trainSet, prepared.evalSet, train), cfg: train, run, ...hooks }));
  } finally {
    rm.dispose();
  }
}

export async function resumeRewardModel(runDir: string, hooks: StageHooks = {}) {
  const { run, config, point, markResumed } = openResume<{ data: string; eval_data: string | null; train: TrainConfig }>(runDir, hooks);
  checkRecorded(config.train, DEFAULT_TRAIN, 'config.train');
  const loaded = readModelDir(point.dir);
  const prepared = prepareRm({ data: config.data, evalData: config.eval_data ?? undefined }, loaded.tokenizer, loaded.config.n_positions);
  const rm = RewardModel.fromLoaded(loaded, true, config.train.seed);
  try {
    markResumed();
    return await runLifecycle(run, async () => trainLoop({ objective: await rmObjective(rm, loaded.tokenizer, prepared.trainSet, prepared.evalSet, config.train), cfg: config.train, run, resume: point, ...hooks }));
  } finally {
    rm.dispose();
  }
}
