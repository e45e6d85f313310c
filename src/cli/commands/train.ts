import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { COMMON, TRAIN_OPTS, hooksFor, startBackend, trainOverrides } from './shared';
import { pretrain, resumePretrain } from '../../engine/stages/pretrain';
import { resumeSft, sft } from '../../engine/stages/sft';
import { resumeRewardModel, trainRewardModel } from '../../engine/stages/rm';
import { DEFAULT_PPO, PpoConfig, ppoTrain, resumePpo } from '../../engine/stages/ppo';
import { defaultCorpusPath } from '../../engine/stages/common';
import { DEFAULT_DPO, checkDpoConfig, dpo, resumeDpo } from '../../engine/stages/dpo';
import { DEFAULT_GRPO, grpoTrain, resumeGrpo } from '../../engine/stages/grpo';
import { DEFAULT_RLOO, resumeRloo, rlooTrain } from '../../engine/stages/rloo';
import { RunDir } from '../../data/run';
import type { TokenizerKind } from '../../engine/config';
import type { LoraOptions } from '../../engine/stages/model-setup';

export const PRETRAIN_OPTS: OptSpecs = {
  corpus: { type: 'string', help: 'text file or JSONL of {"text"} (default: the bundled Moby-Dick)' },
  init: { type: 'string', help: 'continue from this model directory instead of a new model' },
  tokenizer: { type: 'string', help: 'char or gpt2 (new models)', default: 'char' },
  layers: { type: 'int', help: 'n_layer', default: 4 },
  heads: { type: 'int', help: 'n_head', default: 4 },
  embd: { type: 'int', help: 'n_embd', default: 128 },
  block: { type: 'int', help: 'context length n_positions', default: 64 },
  dropout: { type: 'number', help: 'dropout rate', default: 0 },
  ...TRAIN_OPTS,
  ...COMMON,
};

/** LoRA on any trainable stage (0 = full fine-tuning). */
export const LORA_OPTS: OptSpecs = {
  'lora-r': { type: 'int', help: 'train a LoRA adapter of this rank on frozen weights (0 = train every weight)', default: 0 },
  'lora-alpha': { type: 'number', help: 'LoRA scale alpha (the update is multiplied by alpha / r; default 2r)' },
  'lora-dropout': { type: 'number', help: 'dropout on the adapter\'s input', default: 0 },
  'lora-targets': { type: 'string', help: 'projections that get an adapter, comma-separated (default: attention and MLP: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; GPT-2 c_attn,c_proj,c_fc)' },
};

/** --lora-* as stage options (undefined without --lora-r). */
export function loraOptions(o: ParsedOpts): LoraOptions | undefined {
  const r = o['lora-r'] as number;
  if (!r) {
    for (const k of ['lora-alpha', 'lora-targets']) if (o[k] !== undefined) throw new UsageError(`--${k} needs --lora-r`);
    return undefined;
  }
  if (!Number.isInteger(r) || r < 1) throw new UsageError('--lora-r must be a whole number of at least 1');
  const lora: LoraOptions = { r, dropout: o['lora-dropout'] as number };
  if (o['lora-alpha'] !== undefined) lora.alpha = o['lora-alpha'] as number;
  if (o['lora-targets'] !== undefined) lora.targets = (o['lora-targets'] as string).split(',').map((t) => t.trim()).filter(Boolean);
  return lora;
}

export const SFT_OPTS: OptSpecs = {
  data: { type: 'string', help: 'SFT dataset (*.sft.jsonl)' },
  'eval-data': { type: 'string', help: 'held-out SFT dataset (default: every 10th record of --data)' },
  model: { type: 'string', help: 'parent model directory (a pretrained checkpoint)' },
  ...LORA_OPTS,
  ...TRAIN_OPTS,
  ...COMMON,
};

export const RM_OPTS: OptSpecs = {
  data: { type: 'string', help: 'RM dataset (*.rm.jsonl: K-way rankings, pairwise or HH transcripts)' },
  'eval-data': { type: 'string', help: 'held-out RM dataset (default: every 10th record of --data)' },
  model: { type: 'string', help: 'the SFT model the reward model starts from' },
  ...LORA_OPTS,
  ...TRAIN_OPTS,
  ...COMMON,
};

export const PPO_OPTS: OptSpecs = {
  prompts: { type: 'string', help: 'PPO prompts (*.ppo.jsonl)' },
  policy: { type: 'string', help: 'the SFT model: initial policy and frozen reference' },
  'reward-model': { type: 'string', help: 'the reward model (rlhf rm); also initialises the value model' },
  iterations: { type: 'int', help: 'rollout + update iterations', default: DEFAULT_PPO.iterations },
  'prompts-per-rollout': { type: 'int', help: 'prompts per iteration', default: DEFAULT_PPO.promptsPerRollout },
  'samples-per-prompt': { type: 'int', help: 'responses sampled per prompt', default: DEFAULT_PPO.samplesPerPrompt },
  'max-new-tokens': { type: 'int', help: 'response length limit', default: DEFAULT_PPO.maxNewTokens },
  'ppo-epochs': { type: 'int', help: 'passes over each rollout', default: DEFAULT_PPO.ppoEpochs },
  minibatches: { type: 'int', help: 'minibatches per pass', default: DEFAULT_PPO.minibatches },
  lr: { type: 'number', help: 'policy learning rate', default: DEFAULT_PPO.lr },
  'value-lr': { type: 'number', help: 'value model learning rate', default: DEFAULT_PPO.valueLr },
  'kl-coef': { type: 'number', help: 'beta, the per-token KL penalty to the SFT model', default: DEFAULT_PPO.klCoef },
  'kl-target': { type: 'number', help: 'adapt beta toward this KL in nats per response (0 = fixed beta)', default: DEFAULT_PPO.klTarget },
  'kl-estimator': { type: 'string', help: 'k1 (log ratio) or k3 (unbiased, non-negative)', default: DEFAULT_PPO.klEstimator },
  'missing-eos-penalty': { type: 'number', help: 'score penalty for a response that never ends (0 = off)', default: DEFAULT_PPO.missingEosPenalty },
  'ptx-coef': { type: 'number', help: 'PPO-ptx gamma on the pretraining log-likelihood (0 = off)', default: DEFAULT_PPO.ptxCoef },
  'ptx-corpus': { type: 'string', help: 'pretraining corpus for PPO-ptx (default: the bundled Moby-Dick)' },
  seed: { type: 'int', help: 'random seed', default: DEFAULT_PPO.seed },
  'checkpoint-interval': { type: 'int', help: 'iterations between checkpoints', default: DEFAULT_PPO.checkpointInterval },
  threads: { type: 'int', help: 'CPU threads: 2 runs the value and reward models on a second core beside the policy (same numbers as 1; 0 = both cores on wasm/cpu)', default: 0 },
  'runs-dir': { type: 'string', help: 'where runs are written', default: '.rlhf/runs' },
  'run-id': { type: 'string', help: 'name of the run folder' },
  ...LORA_OPTS,
  ...COMMON,
};

export const DPO_OPTS: OptSpecs = {
  data: { type: 'string', help: 'preferences: any RM dataset (K-way rankings, pairwise, HH transcripts)' },
  'eval-data': { type: 'string', help: 'held-out preferences (default: every 10th record of --data)' },
  model: { type: 'string', help: 'the policy to tune, usually the SFT model; also the frozen reference' },
  beta: { type: 'number', help: 'beta, the strength of the KL constraint to the reference', default: DEFAULT_DPO.beta },
  loss: { type: 'string', help: 'sigmoid (DPO) or ipo', default: DEFAULT_DPO.loss },
  'label-smoothing': { type: 'number', help: 'conservative DPO: the probability a label is flipped (sigmoid loss)', default: DEFAULT_DPO.labelSmoothing },
  kway: { type: 'string', help: 'K-way rankings: pl (Plackett-Luce over the ranking) or pairs (every pair)', default: DEFAULT_DPO.kway },
  ...LORA_OPTS,
  ...TRAIN_OPTS,
  ...COMMON,
};

/** What GRPO and RLOO share on the command line. */
const GROUP_OPTS = (d: typeof DEFAULT_GRPO | typeof DEFAULT_RLOO): OptSpecs => ({
  prompts: { type: 'string', help: 'prompts (*.ppo.jsonl)' },
  policy: { type: 'string', help: 'the SFT model: the policy, and the frozen reference when --beta > 0' },
  'reward-model': { type: 'string', help: 'rewards from a reward model (rlhf rm)' },
  'reward-fn': { type: 'string', help: 'rewards from a JavaScript file: export default (prompt, response) => number (trusted code: it runs)' },
  iterations: { type: 'int', help: 'steps', default: d.iterations },
  'prompts-per-step': { type: 'int', help: 'prompts per step', default: d.promptsPerStep },
  'num-generations': { type: 'int', help: 'responses sampled per prompt (the group, at least 2)', default: d.numGenerations },
  'max-new-tokens': { type: 'int', help: 'response length limit', default: d.maxNewTokens },
  temperature: { type: 'number', help: 'sampling temperature', default: d.temperature },
  lr: { type: 'number', help: 'learning rate', default: d.lr },
  beta: { type: 'number', help: 'KL coefficient to the reference (0: no reference model is loaded)', default: d.beta },
  'num-iterations': { type: 'int', help: 'passes over each step\'s samples', default: d.numIterations },
  seed: { type: 'int', help: 'random seed', default: d.seed },
  'checkpoint-interval': { type: 'int', help: 'steps between checkpoints', default: d.checkpointInterval },
  threads: { type: 'int', help: 'CPU threads: 2 runs the reference and the reward model on a second core beside the policy (same numbers as 1; 0 = both cores on wasm/cpu)', default: 0 },
  'runs-dir': { type: 'string', help: 'where runs are written', default: '.rlhf/runs' },
  'run-id': { type: 'string', help: 'name of the run folder' },
  ...LORA_OPTS,
  ...COMMON,
});

export const GRPO_OPTS: OptSpecs = {
  ...GROUP_OPTS(DEFAULT_GRPO),
  epsilon: { type: 'number', help: 'clip range below 1 (and above, unless --epsilon-high)', default: DEFAULT_GRPO.epsLow },
  'epsilon-high': { type: 'number', help: 'clip range above 1 (DAPO\'s clip-higher)' },
  'scale-rewards': { type: 'string', help: 'group, batch or none: what divides the centred rewards', default: DEFAULT_GRPO.scaleRewards },
  'loss-type': { type: 'string', help: 'dapo (token-level, TRL\'s default), grpo, bnpo or dr_grpo', default: DEFAULT_GRPO.lossType },
};

export const RLOO_OPTS: OptSpecs = {
  ...GROUP_OPTS(DEFAULT_RLOO),
  clip: { type: 'number', help: 'clip range of the sequence-level ratio', default: DEFAULT_RLOO.clip },
  'normalize-advantage': { type: 'boolean', help: 'whiten the advantages' },
};

function groupArgs(name: string, o: ParsedOpts) {
  for (const k of ['prompts', 'policy']) if (!o[k]) throw new UsageError(`rlhf ${name} needs --${k} (see rlhf ${name} --help)`);
  if (!o['reward-model'] === !o['reward-fn']) throw new UsageError(`rlhf ${name} needs one of --reward-model DIR or --reward-fn FILE.mjs`);
  const n = o['num-generations'] as number;
  if (n < 2) throw new UsageError('--num-generations must be at least 2: a group of one response has no baseline');
  return {
    prompts: o.prompts as string, policy: o.policy as string, rewardModel: o['reward-model'] as string | undefined, rewardFn: o['reward-fn'] as string | undefined,
    runsDir: path.resolve(o['runs-dir'] as string), runId: o['run-id'] as string | undefined, lora: loraOptions(o), threads: o.threads as number,
    common: { iterations: o.iterations as number, promptsPerStep: o['prompts-per-step'] as number, numGenerations: n, maxNewTokens: o['max-new-tokens'] as number, temperature: o.temperature as number, lr: o.lr as number, beta: o.beta as number, numIterations: o['num-iterations'] as number, seed: o.seed as number, checkpointInterval: o['checkpoint-interval'] as number },
  };
}

export async function grpoCommand(o: ParsedOpts, r: Reporter) {
  const a = groupArgs('grpo', o);
  await startBackend(o, r);
  const eps = o.epsilon as number;
  const result = await grpoTrain({ ...a, grpo: { ...a.common, epsLow: eps, epsHigh: (o['epsilon-high'] as number | undefined) ?? eps, scaleRewards: o['scale-rewards'] as 'group', lossType: o['loss-type'] as 'dapo' } }, hooksFor(r));
  summarize(r, result, path.join(a.runsDir, result.run.id));
  return result;
}

export async function rlooCommand(o: ParsedOpts, r: Reporter) {
  const a = groupArgs('rloo', o);
  await startBackend(o, r);
  const result = await rlooTrain({ ...a, rloo: { ...a.common, clip: o.clip as number, normalizeAdvantage: !!o['normalize-advantage'] } }, hooksFor(r));
  summarize(r, result, path.join(a.runsDir, result.run.id));
  return result;
}

export const RESUME_OPTS: OptSpecs = {
  ...COMMON,
  backend: { ...COMMON.backend, default: undefined, help: `${COMMON.backend.help}; default: the one the run started on, so that it goes on computing as it did` },
};

function summarize(r: Reporter, result: { run: { id: string; status: string }; finalModel?: string; lastMetrics: Record<string, number>; step: number }, dir: string) {
  if (r.json) {
    process.stdout.write(JSON.stringify({ type: 'result', run: dir, status: result.run.status, step: result.step, final_model: result.finalModel ?? null, metrics: result.lastMetrics }) + '\n');
  } else {
    r.log(`${result.run.status}: run ${dir} at step ${result.step}${result.finalModel ? `; model in ${result.finalModel}` : ' (resume with: rlhf resume ' + dir + ')'}`);
  }
}

export async function pretrainCommand(o: ParsedOpts, r: Reporter) {
  if (!['char', 'gpt2'].includes(o.tokenizer as string)) throw new UsageError('--tokenizer must be char or gpt2');
  await startBackend(o, r);
  const result = await pretrain(
    {
      corpus: (o.corpus as string) ?? defaultCorpusPath(),
      init: o.init as string | undefined,
      model: { n_layer: o.layers as number, n_head: o.heads as number, n_embd: o.embd as number, n_positions: o.block as number, dropout: o.dropout as number, tokenizer: o.tokenizer as TokenizerKind },
      train: trainOverrides(o),
      runsDir: path.resolve(o['runs-dir'] as string),
      runId: o['run-id'] as string | undefined,
    },
    hooksFor(r),
  );
  summarize(r, result, path.join(path.resolve(o['runs-dir'] as string), result.run.id));
  return result;
}

/** SFT and the reward model: a dataset and a parent model, the rest from flags. */
function datasetStageCommand(name: string, parent: string, run: typeof sft) {
  return async (o: ParsedOpts, r: Reporter) => {
    if (!o.data) throw new UsageError(`rlhf ${name} needs --data FILE (see rlhf ${name} --help)`);
    if (!o.model) throw new UsageError(`rlhf ${name} needs --model DIR, ${parent} (see rlhf ${name} --help)`);
    await startBackend(o, r);
    const runsDir = path.resolve(o['runs-dir'] as string);
    const lora = loraOptions(o);
    const result = await run({ data: o.data as string, evalData: o['eval-data'] as string | undefined, model: o.model as string, train: trainOverrides(o), lora, runsDir, runId: o['run-id'] as string | undefined }, hooksFor(r));
    summarize(r, result, path.join(runsDir, result.run.id));
    return result;
  };
}

export const sftCommand = datasetStageCommand('sft', 'the pretrained parent', sft);
export const rmCommand = datasetStageCommand('rm', 'the SFT model', trainRewardModel);

export async function dpoCommand(o: ParsedOpts, r: Reporter) {
  if (!o.data) throw new UsageError('rlhf dpo needs --data FILE (see rlhf dpo --help)');
  if (!o.model) throw new UsageError('rlhf dpo needs --model DIR, the SFT model (see rlhf dpo --help)');
  const cfg = { beta: o.beta as number, loss: o.loss as 'sigmoid', labelSmoothing: o['label-smoothing'] as number, kway: o.kway as 'pl' };
  try {
    checkDpoConfig(cfg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  await startBackend(o, r);
  const runsDir = path.resolve(o['runs-dir'] as string);
  const result = await dpo({ data: o.data as string, evalData: o['eval-data'] as string | undefined, model: o.model as string, dpo: cfg, train: trainOverrides(o), lora: loraOptions(o), runsDir, runId: o['run-id'] as string | undefined }, hooksFor(r));
  summarize(r, result, path.join(runsDir, result.run.id));
  return result;
}

export function ppoConfig(o: ParsedOpts): Partial<PpoConfig> {
  if (o['kl-estimator'] !== 'k1' && o['kl-estimator'] !== 'k3') throw new UsageError('--kl-estimator must be k1 or k3');
  return {
    iterations: o.iterations as number, promptsPerRollout: o['prompts-per-rollout'] as number, samplesPerPrompt: o['samples-per-prompt'] as number,
    maxNewTokens: o['max-new-tokens'] as number, ppoEpochs: o['ppo-epochs'] as number, minibatches: o.minibatches as number, lr: o.lr as number,
    valueLr: o['value-lr'] as number, klCoef: o['kl-coef'] as number, klTarget: o['kl-target'] as number, klEstimator: o['kl-estimator'] as 'k1' | 'k3',
    missingEosPenalty: o['missing-eos-penalty'] as number, ptxCoef: o['ptx-coef'] as number, seed: o.seed as number, checkpointInterval: o['checkpoint-interval'] as number,
  };
}

export async function ppoCommand(o: ParsedOpts, r: Reporter) {
  for (const k of ['prompts', 'policy', 'reward-model']) if (!o[k]) throw new UsageError(`rlhf ppo needs --${k} (see rlhf ppo --help)`);
  const cfg = ppoConfig(o);
  const lora = loraOptions(o);
  await startBackend(o, r);
  const result = await ppoTrain(
    { prompts: o.prompts as string, policy: o.policy as string, rewardModel: o['reward-model'] as string, ptxCorpus: (o['ptx-corpus'] as string) ?? (cfg.ptxCoef ? defaultCorpusPath() : undefined), ppo: cfg, lora, threads: o.threads as number, runsDir: path.resolve(o['runs-dir'] as string), runId: o['run-id'] as string | undefined },
    hooksFor(r),
  );
  summarize(r, result, path.join(path.resolve(o['runs-dir'] as string), result.run.id));
  return result;
}

/**
 * The backend of a resumed run: the one asked for, else the one the run started on (a requeued
 * cluster job lands on whatever node is free; another backend's kernels round differently), else
 * the default; when the recorded one does not start here, the default, said in one line.
 */
async function resumeBackend(o: ParsedOpts, recorded: string | undefined, r: Reporter): Promise<void> {
  const fallback = process.env.RLHF_BACKEND || 'auto';
  if (o.backend !== undefined || !recorded) return startBackend({ ...o, backend: o.backend ?? fallback }, r);
  try {
    await startBackend({ ...o, backend: recorded }, r);
  } catch (e) {
    r.log(`the run started on the ${recorded} backend, which does not start here (${(e as Error).message.split('\n')[0]}); resuming on ${fallback}: from here its numbers may differ from an uninterrupted run's`);
    await startBackend({ ...o, backend: fallback }, r);
  }
}

export async function resumeCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  const dir = positional[0];
  if (!dir) throw new UsageError('rlhf resume needs a run directory: rlhf resume .rlhf/runs/<run-id>');
  const run = new RunDir(dir);
  const info = run.read();
  if (info.status === 'completed') throw new Error(`run ${dir} is already completed`);
  run.lock(); // before anything starts: a run another process still writes is refused in one line
  await resumeBackend(o, info.backend, r);
  const hooks = hooksFor(r);
  let result;
  if (info.stage === 'pretrain') result = await resumePretrain(dir, hooks);
  else if (info.stage === 'sft') result = await resumeSft(dir, hooks);
  else if (info.stage === 'rm') result = await resumeRewardModel(dir, hooks);
  else if (info.stage === 'ppo') result = await resumePpo(dir, hooks);
  else if (info.stage === 'dpo') result = await resumeDpo(dir, hooks);
  else if (info.stage === 'grpo') result = await resumeGrpo(dir, hooks);
  else if (info.stage === 'rloo') result = await resumeRloo(dir, hooks);
  else throw new Error(`cannot resume a run of stage "${info.stage}"`);
  summarize(r, result, path.resolve(dir));
  return result;
}
