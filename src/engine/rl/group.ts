/**
 * What GRPO and RLOO share, the critic-free RL stages: G responses to each prompt of a step, a
 * reward for each (the reward model's normalised score, the demo's gold scorer, or a reward
 * function file), the frozen reference (the starting policy; not loaded when beta = 0), one AdamW
 * optimizer, checkpoints that hold the policy, the optimizer and the step, and the loop (cancel
 * within a step, a checkpoint every N steps, the final model). Each algorithm's file supplies only
 * its update (stages/grpo.ts, stages/rloo.ts). Every random choice of step i is seeded by (seed, i),
 * so a resumed run replays exactly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import * as tf from '@tensorflow/tfjs-core';
import { take } from '../read';
import { CausalLM, adapterOff, createModel } from '../causal-lm';
import { Tokenizer, sameVocabulary } from '../tokenizer';
import { deriveSeed, epochOrder } from '../rng';
import { RunDir, newRunId } from '../../data/run';
import { LoadedModel, modelFiles, modelFromLoaded, readModelDir, readModelHead, writeFilesAtomic } from '../checkpoint';
import { checkStageMemory } from '../memory';
import { readSafetensors, serializeSafetensors } from '../safetensors';
import { AdamW } from '../train/optim';
import { TrainResult, yieldToEventLoop } from '../train/trainer';
import { RewardModel } from '../rm/reward-model';
import { scoreSequences } from '../rm/score';
import { PpoPrompt } from '../../data/ppo';
import { Rollout, readPrompts, sampleRollout, tokenLogps } from './rollout';
import { StageHooks, checkRecorded, openResume, runLifecycle } from '../stages/common';
import { LoraOptions, mergedWeights, startModel } from '../stages/model-setup';
import { Pass } from '../cost';
import { startCost } from '../train/cost-tracker';
import { rlPasses } from './plan';
import { GradThreads, autoThreads } from '../train/parallel';
import { encodeContext } from '../chat';

/** The settings every critic-free stage has. */
export interface GroupConfig {
  iterations: number;
  /** Prompts per step; each gets numGenerations responses. */
  promptsPerStep: number;
  numGenerations: number;
  maxNewTokens: number;
  temperature: number;
  lr: number;
  /** The KL coefficient; 0 = no reference model. */
  beta: number;
  /** Passes of the update over each step's samples (TRL's num_iterations, mu). */
  numIterations: number;
  gradClip: number;
  seed: number;
  checkpointInterval: number;
  keepCheckpoints: number;
}

/** Where rewards come from: exactly one of a reward model, a reward function file, or a scorer (the demo's gold). */
export interface RewardSource {
  rewardModel?: string;
  rewardFn?: string;
  scorer?: (prompt: string, response: string) => number;
}

/** How long a reward function may take per response (RLHF_REWARD_FN_TIMEOUT_MS overrides, for tests). */
/** Samples written to samples.jsonl per step (the first ones of the step: whole groups). */
export const SAMPLES_PER_STEP = 16;

export const REWARD_FN_TIMEOUT_MS = Number(process.env.RLHF_REWARD_FN_TIMEOUT_MS ?? 10_000);

/** A reward function file: `export default (prompt, response) => number | Promise<number>` (or a named `reward`). */
export async function loadRewardFn(file: string): Promise<(prompt: string, response: string) => Promise<number>> {
  if (!fs.existsSync(file)) throw new Error(`reward function file not found: ${file}`);
  const mod = await import(pathToFileURL(path.resolve(file)).href);
  const fn = typeof mod.default === 'function' ? mod.default : typeof mod.reward === 'function' ? mod.reward : undefined;
  if (!fn) throw new Error(`${file} exports no function: write \`export default (prompt, response) => number\``);
  return async (prompt, response) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const v = await Promise.race([
        Promise.resolve().then(() => fn(prompt, response)),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${REWARD_FN_TIMEOUT_MS / 1000} s`)), REWARD_FN_TIMEOUT_MS))),
      ]);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`returned ${String(v)}, not a finite number`);
      return v;
    } catch (e) {
      // where in the user's file it failed, when the stack says
      const at = ((e as Error).stack ?? '').split('\n').find((l) => l.includes(path.basename(file)))?.trim();
      throw new Error(`the reward function ${file} failed on a response: ${(e as Error).message}${at ? ` (${at.replace(/^at /, '')})` : ''}`);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The reward source of a run, checked (exactly one) and a reward function file loaded. */
export async function rewardSource(o: RewardSource) {
  const n = [o.rewardModel, o.rewardFn, o.scorer].filter(Boolean).length;
  if (n !== 1) throw new Error('give exactly one source of rewards: --reward-model DIR or --reward-fn FILE.mjs');
  return { ...o, fn: o.rewardFn ? await loadRewardFn(o.rewardFn) : undefined };
}

/** The policy (and its tokenizer's folder) and the frozen reference of a critic-free stage. */
export interface GroupModels {
  loaded: LoadedModel;
  policy: CausalLM;
  ref?: CausalLM;
}

export function checkGroupConfig(cfg: GroupConfig): void {
  if (cfg.numGenerations < 2) throw new Error('--num-generations must be at least 2: a group of one response has no baseline');
  if (!(cfg.beta >= 0)) throw new Error(`--beta must be 0 or more, got ${cfg.beta}`);
}

/**
 * A fresh start: the policy is the model (an adapter folder merged into its base), or with LoRA the
 * model frozen plus a new adapter, whose reference is the same weights with the adapter off (no
 * second copy, as TRL does with PEFT). A resume: the policy is the checkpoint (an adapter folder when
 * the run trains one), the reference the run's starting model.
 */
export async function groupModels(policyDir: string, refDir: string, beta: number, lora: LoraOptions | undefined, runDir: string, seed: number): Promise<GroupModels> {
  const loaded = readModelDir(policyDir);
  const fresh = refDir === policyDir;
  const policy = fresh ? (lora ? await startModel(loaded, lora, runDir, seed) : createModel(loaded.config, mergedWeights(loaded), true)) : modelFromLoaded(loaded, true);
  if (!(beta > 0)) return { loaded, policy };
  if (policy.lora) return { loaded, policy, ref: adapterOff(policy) };
  const r = fresh ? loaded : readModelDir(refDir);
  return { loaded, policy, ref: createModel(r.config, mergedWeights(r), false) };
}

export abstract class GroupRun implements LoopStage {
  readonly policy: CausalLM;
  readonly ref?: CausalLM;
  readonly rm?: RewardModel;
  readonly tok: Tokenizer;
  readonly opt: AdamW;
  iteration = 0;
  private readonly order: (g: number) => number;
  private readonly stats = { mean: 0, std: 1 };

  constructor(
    models: GroupModels,
    readonly prompts: PpoPrompt[],
    readonly cfg: GroupConfig,
    readonly rewards: RewardSource & { fn?: (prompt: string, response: string) => Promise<number> },
  ) {
    checkGroupConfig(cfg);
    const p = models.loaded;
    this.tok = p.tokenizer;
    this.policy = models.policy;
    this.ref = models.ref;
    if (rewards.rewardModel) {
      const rm = readModelDir(rewards.rewardModel);
      if (!sameVocabulary(p.tokenizer, rm.tokenizer)) throw new Error(`the reward model ${rewards.rewardModel} has another vocabulary than the policy; train it from this policy's SFT model`);
      if (!rm.extra.has('score.weight')) throw new Error(`${rewards.rewardModel} has no score head (score.weight): train it with rlhf rm`);
      this.rm = RewardModel.fromLoaded(rm, false);
      this.stats = { mean: Number(rm.rawConfig.reward_mean ?? 0), std: Number(rm.rawConfig.reward_std ?? 1) || 1 };
    }
    this.opt = new AdamW(this.policy.params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 });
    this.order = epochOrder(prompts.length, deriveSeed(cfg.seed, 0x6e));
  }

  dispose(): void {
    this.policy.dispose();
    if (!this.policy.lora) this.ref?.dispose(); // with LoRA the reference is the policy's own weights
    this.rm?.dispose();
    this.opt.dispose();
  }

  plan(fromIteration: number): Pass[] {
    const c = this.cfg;
    const promptTokens = this.prompts.reduce((a, p) => a + encodeContext(this.tok, p).length, 0) / (this.prompts.length || 1);
    return rlPasses({ iterations: c.iterations - fromIteration, rows: c.promptsPerStep * c.numGenerations, promptTokens, maxNewTokens: c.maxNewTokens, epochs: c.numIterations, policy: this.policy, reference: Boolean(this.ref), rm: this.rm });
  }

  /** Step i's prompts (a seeded permutation per pass over the prompt set) and their G responses each. */
  protected async rollout(i: number): Promise<{ r: Rollout; prompts: PpoPrompt[] }> {
    const P = this.cfg.promptsPerStep;
    const prompts = Array.from({ length: P }, (_, j) => this.prompts[this.order(i * P + j)]);
    const c = this.cfg;
    return { prompts, r: await sampleRollout(this.policy, this.tok, prompts, { samples: c.numGenerations, maxNewTokens: c.maxNewTokens, temperature: c.temperature, seed: (j) => deriveSeed(c.seed, i, j), threads: this.decodeThreads }) };
  }

  /** What the reward model reads of each response: its context, the response, and end-of-text if it never ended. */
  private scoredSequences(r: Rollout): number[][] {
    return r.contexts.map((ctx, n) => {
      const resp = Array.from(r.ids.subarray(n * r.T + r.start[n], n * r.T + r.start[n] + r.len[n]));
      return [...ctx, ...(r.finished[n] ? resp : [...resp, this.tok.eot])].slice(-this.policy.config.n_positions);
    });
  }

  /** Reward-model scores centred and scaled by the statistics saved with it. */
  private normalised(raw: Float32Array): number[] {
    return Array.from(raw, (x) => (x - this.stats.mean) / (this.stats.std + 1e-8));
  }

  /** One reward per response, in the rollout's order (response n answers prompts[n / G]). */
  protected async score(r: Rollout, prompts: PpoPrompt[]): Promise<number[]> {
    const promptOf = (n: number) => prompts[Math.floor(n / this.cfg.numGenerations)].prompt;
    if (this.rm) return this.normalised(await scoreSequences(this.rm, this.scoredSequences(r), this.tok.eot));
    const out: number[] = [];
    for (let n = 0; n < r.N; n++) {
      out.push(this.rewards.fn ? await this.rewards.fn(promptOf(n), r.responses[n]) : this.rewards.scorer!(promptOf(n), r.responses[n]));
    }
    return out;
  }

  /** The frozen models (reference, reward model) on a second thread, when there is one. */
  private side?: GradThreads;

  /** Threads the rollouts' decoder splits its batch over (0: both cores where there are two). */
  private decodeThreads = 0;

  /** Starts the second thread (threads >= 2, and a reference or a reward model to put there); the rollouts decode on `threads`. */
  async startThreads(threads: number): Promise<void> {
    this.decodeThreads = threads;
    if (threads < 2 || (!this.ref && !this.rm)) return;
    // a LoRA policy's reference is its own frozen base: the policy's weights without the adapter
    this.side = await GradThreads.startFrozen(this.policy, this.policy.lora ? this.policy : this.ref, this.rm);
  }

  async closeThreads(): Promise<void> {
    await this.side?.close();
    this.side = undefined;
  }

  /**
   * A rollout's rewards and its per-token log-probabilities under the policy and the reference.
   * With a second thread the reward model and the reference run there, posted first, while this
   * thread runs the policy: the same kernels on the same rows, so the numbers are one thread's.
   */
  protected async rewardsAndLogps(r: Rollout, prompts: PpoPrompt[], temperature: number): Promise<{ rewards: number[]; logpOld: Float32Array; logpRef?: Float32Array }> {
    const side = this.side;
    const scores = side && this.rm ? side.scoreSequences(this.scoredSequences(r), this.tok.eot) : undefined;
    const ref = side && this.ref ? side.tokenLogps(r.ids, r.N, r.T, temperature) : undefined;
    const logpOld = await rolloutLogps(this.policy, r, temperature);
    const logpRef = ref ? await ref : this.ref ? await rolloutLogps(this.ref, r, temperature) : undefined;
    const rewards = scores ? this.normalised(await scores) : await this.score(r, prompts);
    return { rewards, logpOld, logpRef };
  }

  /** One step: rollout, rewards, the algorithm's update; its metrics. */
  abstract step(): Promise<Record<string, number>>;

  /** The last step's samples, the first SAMPLES_PER_STEP of them. */
  protected lastSamples: Record<string, unknown>[] = [];
  samples(): Record<string, unknown>[] {
    return this.lastSamples;
  }

  /** Keeps step i's samples: prompt, response, score, and what the algorithm adds (kl, advantage). */
  protected keepSamples(step: number, r: Rollout, prompts: PpoPrompt[], scores: number[], extra: (n: number) => Record<string, number>): void {
    const G = this.cfg.numGenerations;
    this.lastSamples = r.responses.slice(0, SAMPLES_PER_STEP).map((response, n) => ({ step, prompt: prompts[Math.floor(n / G)].prompt, response, score: scores[n], ...extra(n) }));
  }

  abstract get stage(): string;

  async checkpointFiles(): Promise<Record<string, string | Buffer>> {
    return {
      ...(await modelFiles(this.policy, this.tok)),
      'optimizer.safetensors': serializeSafetensors(await this.opt.state()),
      'trainer_state.json': JSON.stringify({ step: this.iteration, optimizer_t: this.opt.t, seed: this.cfg.seed, stage: this.stage }) + '\n',
    };
  }

  restore(dir: string): void {
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    this.opt.loadState(readSafetensors(path.join(dir, 'optimizer.safetensors')).tensors, s.optimizer_t);
    this.iteration = s.step;
  }
}

/** What the RL loop drives: PPO's run and the critic-free ones alike. */
export interface LoopStage {
  readonly stage: string;
  iteration: number;
  readonly cfg: { iterations: number; checkpointInterval: number; keepCheckpoints: number; maxNewTokens?: number };
  readonly policy: CausalLM;
  readonly tok: Tokenizer;
  step(): Promise<Record<string, number>>;
  /** The samples of the step just taken (at most samplesPerStep of them), for samples.jsonl. */
  samples?(): Record<string, unknown>[];
  checkpointFiles(): Promise<Record<string, string | Buffer>>;
  /** The passes of the iterations from `fromIteration` on, for the cost estimate (plan.ts). */
  plan?(fromIteration: number): Pass[];
}

/** The loop of an RL stage: a step, its metrics, a checkpoint now and then, the final model; cancel within a step. */
export async function rlLoop(run: RunDir, g: LoopStage, hooks: StageHooks): Promise<TrainResult> {
  const c = g.cfg;
  const checkpoint = async () => {
    writeFilesAtomic(run.stepCheckpointDir(g.iteration), await g.checkpointFiles());
    run.pruneCheckpoints(c.keepCheckpoints);
    hooks.onCheckpoint?.(run.stepCheckpointDir(g.iteration), g.iteration);
  };
  let last: Record<string, number> = {};
  const started = Date.now(), first = g.iteration;
  const cost = startCost(run, g.plan?.(g.iteration), hooks.log);
  let generated = 0, steps = 0;
  while (g.iteration < c.iterations) {
    await yieldToEventLoop();
    if (hooks.shouldStop?.()) {
      await checkpoint();
      return { step: g.iteration, stopped: true, lastMetrics: last };
    }
    last = await g.step();
    const len = last.response_length ?? last['completions/mean_length']; // PPO's name, TRL's for GRPO/RLOO
    if (len !== undefined) {
      generated += len;
      steps += 1;
    }
    run.appendMetrics(last);
    run.appendSamples(g.samples?.() ?? []);
    const elapsed = (Date.now() - started) / 1000;
    hooks.onProgress?.({ stage: g.stage, step: g.iteration, totalSteps: c.iterations, metrics: last, etaSeconds: (elapsed / (g.iteration - first)) * (c.iterations - g.iteration) });
    if (c.checkpointInterval > 0 && g.iteration % c.checkpointInterval === 0 && g.iteration < c.iterations) await checkpoint();
  }
  await checkpoint();
  cost?.finish({ generatedShare: g.cfg.maxNewTokens && steps ? generated / steps / g.cfg.maxNewTokens : 1 });
  const finalModel = path.join(run.checkpointsDir, 'final');
  writeFilesAtomic(finalModel, await modelFiles(g.policy, g.tok));
  return { step: g.iteration, stopped: false, finalModel, lastMetrics: last };
}

type MakeRun<C> = (models: GroupModels, prompts: PpoPrompt[], cfg: C, rewards: Awaited<ReturnType<typeof rewardSource>>) => GroupRun;

/**
 * Refuses, before any weight is read, a run that cannot fit: the policy trained (an adapter with
 * LoRA), the reference (none with LoRA: the policy with its adapter off) and a reward model held,
 * and on the second thread their copies.
 */
function checkGroupMemory(o: RewardSource & { policy: string; lora?: LoraOptions; threads?: number }, cfg: GroupConfig, prompts: PpoPrompt[]): void {
  const head = readModelHead(o.policy);
  const ref = cfg.beta > 0 ? 1 : 0, rm = o.rewardModel ? 1 : 0;
  const rows = cfg.promptsPerStep * cfg.numGenerations;
  const seq = Math.min(head.config.n_positions, Math.max(...prompts.map((p) => encodeContext(head.tokenizer, p).length)) + cfg.maxNewTokens);
  const side = (o.threads || autoThreads()) > 1 && ref + rm > 0;
  checkStageMemory(head.config, {
    models: 1 + (o.lora ? 0 : ref) + rm, trained: 1, batchSize: rows, seq, loraR: o.lora?.r ?? 0,
    // the thread's model (the reference; zeros when only a reward model goes there) and the reward model
    threads: side ? { count: 1, models: 1 + rm, trained: 0, batchSize: rows, lmHead: false } : undefined,
    // rows = prompts per step x the group: fewer prompts per step, the same group
    batchOption: (r) => (r % cfg.numGenerations === 0 ? `--prompts-per-step ${r / cfg.numGenerations}` : undefined),
  });
}

/** Starts a critic-free stage: inputs read and checked, the models, the run folder, the loop. */
export async function trainGroup<C extends GroupConfig>(stage: string, make: MakeRun<C>, o: RewardSource & { prompts: string; policy: string; runsDir: string; runId?: string; lora?: LoraOptions; threads?: number }, cfg: C, hooks: StageHooks) {
  checkGroupConfig(cfg);
  const prompts = readPrompts(o.prompts);
  checkGroupMemory(o, cfg, prompts);
  // the run's name first: a LoRA start on an adapter folder writes the merged base into the run folder
  const id = o.runId ?? newRunId(stage);
  const models = await groupModels(o.policy, o.policy, cfg.beta, o.lora, path.join(o.runsDir, id), cfg.seed);
  let g: GroupRun;
  try {
    g = make(models, prompts, cfg, await rewardSource(o)); // a reward model that does not fit fails here, before the run folder
  } catch (e) {
    models.policy.dispose();
    if (!models.policy.lora) models.ref?.dispose();
    throw e;
  }
  try {
    const run = RunDir.create(o.runsDir, {
      stage,
      config: { prompts: path.resolve(o.prompts), policy: path.resolve(o.policy), reward_model: o.rewardModel ? path.resolve(o.rewardModel) : null, reward_fn: o.rewardFn ? path.resolve(o.rewardFn) : null, [stage]: cfg, lora: o.lora ?? null },
      parent_model: path.resolve(o.policy),
    }, id);
    hooks.log?.(`run ${run.dir}: ${prompts.length} prompts, ${cfg.promptsPerStep} x ${cfg.numGenerations} responses per step, beta ${cfg.beta}${cfg.beta === 0 ? ' (no reference model)' : ''}${o.lora ? `; LoRA r=${o.lora.r}${cfg.beta > 0 ? ' (the reference is the policy with its adapter off)' : ''}` : ''}`);
    await g.startThreads(o.threads || autoThreads());
    return await runLifecycle(run, () => rlLoop(run, g, hooks));
  } finally {
    await g.closeThreads();
    g.dispose();
  }
}

/** Resumes a critic-free stage from its newest checkpoint; the reference is the run's starting policy. */
export async function resumeGroup<C extends GroupConfig>(stage: string, make: MakeRun<C>, defaults: C, runDir: string, hooks: StageHooks, scorer?: RewardSource['scorer'], check?: (c: C) => void) {
  const { run, config: c, point, markResumed } = openResume<Record<string, unknown> & { prompts: string; policy: string; reward_model: string | null; reward_fn: string | null }>(runDir, hooks);
  const cfg = checkRecorded(c[stage], defaults, `config.${stage}`);
  check?.(cfg);
  const g = make(await groupModels(point.dir, c.policy, cfg.beta, undefined, run.dir, cfg.seed), readPrompts(c.prompts), cfg, await rewardSource({ rewardModel: c.reward_model ?? undefined, rewardFn: c.reward_fn ?? undefined, scorer }));
  try {
    g.restore(point.dir);
    run.truncateMetrics(point.step);
    markResumed();
    // the second thread changes no number, so a resume takes what this machine offers
    await g.startThreads(autoThreads());
    return await runLifecycle(run, () => rlLoop(run, g, hooks));
  } finally {
    await g.closeThreads();
    g.dispose();
  }
}

/** Per-token log-probabilities of a rollout under a model, without gradients [N * T]. */
export async function rolloutLogps(model: CausalLM, r: Rollout, temperature: number): Promise<Float32Array> {
  return take(tf.tidy(() => tokenLogps(model, tf.tensor2d(r.ids, [r.N, r.T], 'int32'), false, temperature).logp));
}
