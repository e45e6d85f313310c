/**
 * GRPO (`rlhf grpo`; Shao et al. 2024), as TRL's GRPOTrainer: no critic. Each step:
 *   1. sample G responses (--num-generations) to each of the step's prompts;
 *   2. reward each one (reward model, reward function file, or the demo's gold scorer);
 *   3. advantages: each reward against its group's mean, scaled by the group's std (grpo/math.ts);
 *   4. numIterations passes of the clipped token-level objective, KL to the reference by k3 (beta),
 *      aggregated as loss_type says (TRL's default "dapo": over all the step's completion tokens).
 * Logged with TRL's names: reward, reward_std, frac_reward_zero_std, kl, clip_ratio/region_mean,
 * completions/mean_length, completions/clipped_ratio, entropy, loss, grad_norm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { takeScalars } from '../read';
import { clipByGlobalNorm } from '../train/optim';
import { assertFinite } from '../train/trainer';
import { GrpoLossType, ScaleRewards, groupAdvantages, grpoLoss } from '../grpo/math';
import { GroupConfig, GroupModels, GroupRun, RewardSource, resumeGroup, rewardSource, trainGroup } from '../rl/group';
import { PpoPrompt } from '../../data/ppo';
import { responseMask, tokenLogps } from '../rl/rollout';
import { StageHooks } from './common';
import type { LoraOptions } from './model-setup';

// ---- hyperparameters (TRL's defaults where they fit a small model) -----------------------------
export interface GrpoConfig extends GroupConfig {
  epsLow: number;
  epsHigh: number;
  scaleRewards: ScaleRewards;
  lossType: GrpoLossType;
}
export const DEFAULT_GRPO: GrpoConfig = {
  iterations: 30, promptsPerStep: 4, numGenerations: 4, maxNewTokens: 64, temperature: 1, lr: 5e-5, beta: 0.04,
  epsLow: 0.2, epsHigh: 0.2, scaleRewards: 'group', lossType: 'dapo', numIterations: 1, gradClip: 1, seed: 1337, checkpointInterval: 10, keepCheckpoints: 2,
};

export interface GrpoOptions extends RewardSource {
  prompts: string;
  policy: string;
  grpo?: Partial<GrpoConfig>;
  runsDir: string;
  runId?: string;
  /** A LoRA adapter on the frozen policy (its reference is then the policy with the adapter off). */
  lora?: LoraOptions;
  /** 2 puts the reference and the reward model on a second thread (same numbers as 1); 0 or absent: both cores on wasm/cpu. */
  threads?: number;
}

class GrpoRun extends GroupRun {
  get stage() {
    return 'grpo';
  }

  async step(): Promise<Record<string, number>> {
    const c = this.cfg as GrpoConfig, i = this.iteration, G = c.numGenerations;
    const t0 = performance.now();
    const { r, prompts } = await this.rollout(i);
    const tGen = performance.now();
    const { rewards, logpOld, logpRef } = await this.rewardsAndLogps(r, prompts, c.temperature);
    const adv = groupAdvantages(rewards, G, c.scaleRewards);
    const mask = responseMask(r);
    const tokens = mask.reduce((a, b) => a + b, 0);
    const vars = [...this.policy.params.values()].filter((v) => v.trainable); // an adapter only, with LoRA
    const names = new Map([...this.policy.params].map(([k, v]) => [v.name, k]));
    const stats = { loss: 0, kl: 0, clip: 0, entropy: 0, gradNorm: 0 };
    for (let it = 0; it < c.numIterations; it++) {
      let side: tf.Tensor[] = []; // logged figures, read after the gradient pass
      const { value, grads } = tf.tidy(() =>
        tf.variableGrads(() => {
          const ids = tf.tensor2d(r.ids, [r.N, r.T], 'int32');
          const m = tf.tensor2d(mask, [r.N, r.T]);
          const { logp, entropy } = tokenLogps(this.policy, ids, true, c.temperature);
          const l = grpoLoss(logp, tf.tensor2d(logpOld, [r.N, r.T]), logpRef && tf.tensor2d(logpRef, [r.N, r.T]), tf.tensor1d(adv.advantages), m, { epsLow: c.epsLow, epsHigh: c.epsHigh, beta: c.beta, lossType: c.lossType, numItems: tokens, maxCompletionLength: c.maxNewTokens });
          side = [l.kl ?? tf.scalar(0), l.clipRegion, tf.div(tf.sum(tf.mul(entropy!, m)), Math.max(1, tokens))].map((t) => tf.keep(t));
          return l.loss;
        }, vars),
      );
      [stats.kl, stats.clip, stats.entropy, stats.loss] = await takeScalars([...side, value]);
      const g = new Map(Object.entries(grads).map(([k, x]) => [names.get(k)!, x]));
      stats.gradNorm = await clipByGlobalNorm(g, c.gradClip);
      assertFinite(i + 1, { loss: stats.loss, grad_norm: stats.gradNorm });
      this.opt.step(g, c.lr);
      tf.dispose([...g.values()]);
    }
    this.iteration += 1;
    const seqKl = (n: number) => {
      let kl = 0;
      for (let t = 0; t < r.T; t++) if (mask[n * r.T + t]) kl += logpOld[n * r.T + t] - logpRef![n * r.T + t];
      return kl;
    };
    this.keepSamples(this.iteration, r, prompts, rewards, (n) => ({ advantage: adv.advantages[n], ...(logpRef ? { kl: seqKl(n) } : {}) }));
    const lengths = r.len;
    return {
      step: this.iteration,
      time: Date.now() / 1000,
      loss: stats.loss,
      reward: adv.reward,
      reward_std: adv.reward_std,
      frac_reward_zero_std: adv.frac_reward_zero_std,
      ...(this.ref ? { kl: stats.kl } : {}),
      'clip_ratio/region_mean': stats.clip,
      'completions/mean_length': lengths.reduce((a, b) => a + b, 0) / lengths.length,
      'completions/clipped_ratio': r.finished.filter((f) => !f).length / r.N,
      entropy: stats.entropy,
      learning_rate: c.lr,
      grad_norm: stats.gradNorm,
      tokens_per_second: tokens / ((performance.now() - t0) / 1000),
      generation_seconds: (tGen - t0) / 1000,
      iteration_seconds: (performance.now() - t0) / 1000, // rollout (generation, scoring) and update
    };
  }
}

function checkGrpo(c: GrpoConfig): void {
  if (!['group', 'batch', 'none'].includes(c.scaleRewards)) throw new Error(`--scale-rewards must be group, batch or none, got ${c.scaleRewards}`);
  if (!['dapo', 'grpo', 'bnpo', 'dr_grpo'].includes(c.lossType)) throw new Error(`--loss-type must be dapo, grpo, bnpo or dr_grpo, got ${c.lossType}`);
}


const make = (models: GroupModels, prompts: PpoPrompt[], cfg: GrpoConfig, rewards: Awaited<ReturnType<typeof rewardSource>>) => new GrpoRun(models, prompts, cfg, rewards);

export async function grpoTrain(o: GrpoOptions, hooks: StageHooks = {}) {
  const cfg: GrpoConfig = { ...DEFAULT_GRPO, ...o.grpo };
  checkGrpo(cfg);
  return trainGroup('grpo', make, o, cfg, hooks);
}

export async function resumeGrpo(runDir: string, hooks: StageHooks = {}, scorer?: RewardSource['scorer']) {
  return resumeGroup('grpo', make, DEFAULT_GRPO, runDir, hooks, scorer, checkGrpo);
}
