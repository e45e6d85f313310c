/**
 * RLOO (`rlhf rloo`; Ahmadian et al. 2024, "Back to Basics"), as TRL's RLOOTrainer: no critic. Each step:
 *   1. sample k responses (--num-generations) to each of the step's prompts;
 *   2. reward each: its score minus beta times its sequence-level KL to the reference (sum of log-ratios);
 *   3. advantage: that reward against the mean of the other k - 1 responses to the prompt (rloo/math.ts);
 *   4. numIterations passes of PPO's clipped objective at the sequence level.
 * Logged: reward (mean score), kl (mean sequence KL, nats), objective/rlhf_reward, loss,
 * clip_ratio (fraction of sequences clipped), completions/mean_length, completions/clipped_ratio.
 */
import * as tf from '@tensorflow/tfjs-core';
import { takeScalars } from '../read';
import { clipByGlobalNorm } from '../train/optim';
import { assertFinite } from '../train/trainer';
import { rlooAdvantages, rlooLoss } from '../rloo/math';
import { GroupConfig, GroupModels, GroupRun, RewardSource, resumeGroup, rewardSource, trainGroup } from '../rl/group';
import { PpoPrompt } from '../../data/ppo';
import { responseMask, tokenLogps } from '../rl/rollout';
import { StageHooks } from './common';
import type { LoraOptions } from './model-setup';

// ---- hyperparameters ---------------------------------------------------------------------------
export interface RlooConfig extends GroupConfig {
  clip: number;
  normalizeAdvantage: boolean;
}
export const DEFAULT_RLOO: RlooConfig = {
  iterations: 30, promptsPerStep: 4, numGenerations: 4, maxNewTokens: 64, temperature: 1, lr: 5e-5, beta: 0.05,
  clip: 0.2, normalizeAdvantage: false, numIterations: 1, gradClip: 1, seed: 1337, checkpointInterval: 10, keepCheckpoints: 2,
};

export interface RlooOptions extends RewardSource {
  prompts: string;
  policy: string;
  rloo?: Partial<RlooConfig>;
  runsDir: string;
  runId?: string;
  /** A LoRA adapter on the frozen policy (its reference is then the policy with the adapter off). */
  lora?: LoraOptions;
  /** 2 puts the reference and the reward model on a second thread (same numbers as 1); 0 or absent: both cores on wasm/cpu. */
  threads?: number;
}

class RlooRun extends GroupRun {
  get stage() {
    return 'rloo';
  }

  async step(): Promise<Record<string, number>> {
    const c = this.cfg as RlooConfig, i = this.iteration;
    const t0 = performance.now();
    const { r, prompts } = await this.rollout(i);
    const tGen = performance.now();
    // rewards, and per-token log-probabilities now (the reference's and the reward model's on the second thread)
    const { rewards: scores, logpOld: perToken, logpRef: refToken } = await this.rewardsAndLogps(r, prompts, c.temperature);
    const mask = responseMask(r);
    const T = r.T;
    // sequence log-probabilities (sums over response tokens), and the sequence KL to the reference
    const seqOld: number[] = [], seqKl: number[] = [];
    for (let n = 0; n < r.N; n++) {
      let lp = 0, kl = 0;
      for (let t = 0; t < T; t++) {
        if (!mask[n * T + t]) continue;
        lp += perToken[n * T + t];
        if (refToken) kl += perToken[n * T + t] - refToken[n * T + t];
      }
      seqOld.push(lp);
      seqKl.push(kl);
    }
    const { advantages, rlhfReward } = rlooAdvantages(scores, seqKl, c.numGenerations, c.beta, c.normalizeAdvantage);
    const vars = [...this.policy.params.values()].filter((v) => v.trainable); // an adapter only, with LoRA
    const names = new Map([...this.policy.params].map(([k, v]) => [v.name, k]));
    let loss = 0, clipfrac = 0, gradNorm = 0;
    for (let it = 0; it < c.numIterations; it++) {
      let clip: tf.Tensor | undefined; // read after the gradient pass
      const { value, grads } = tf.tidy(() =>
        tf.variableGrads(() => {
          const ids = tf.tensor2d(r.ids, [r.N, T], 'int32');
          const seq = tf.sum(tf.mul(tokenLogps(this.policy, ids, false, c.temperature).logp, tf.tensor2d(mask, [r.N, T])), 1) as tf.Tensor1D;
          const l = rlooLoss(seq, tf.tensor1d(seqOld), tf.tensor1d(advantages), c.clip);
          clip = tf.keep(l.clipfrac);
          return l.loss;
        }, vars),
      );
      [clipfrac, loss] = await takeScalars([clip!, value]);
      const g = new Map(Object.entries(grads).map(([k, x]) => [names.get(k)!, x]));
      gradNorm = await clipByGlobalNorm(g, c.gradClip);
      assertFinite(i + 1, { loss, grad_norm: gradNorm });
      this.opt.step(g, c.lr);
      tf.dispose([...g.values()]);
    }
    this.iteration += 1;
    this.keepSamples(this.iteration, r, prompts, scores, (n) => ({ advantage: advantages[n], ...(this.ref ? { kl: seqKl[n] } : {}) }));
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / (a.length || 1);
    const tokens = mask.reduce((a, b) => a + b, 0);
    return {
      step: this.iteration,
      time: Date.now() / 1000,
      loss,
      reward: mean(scores),
      ...(this.ref ? { kl: mean(seqKl) } : {}),
      'objective/rlhf_reward': mean(rlhfReward),
      clip_ratio: clipfrac,
      'completions/mean_length': mean(r.len),
      'completions/clipped_ratio': r.finished.filter((f) => !f).length / r.N,
      learning_rate: c.lr,
      grad_norm: gradNorm,
      tokens_per_second: tokens / ((performance.now() - t0) / 1000),
      generation_seconds: (tGen - t0) / 1000,
      iteration_seconds: (performance.now() - t0) / 1000, // rollout (generation, scoring) and update
    };
  }
}


const make = (models: GroupModels, prompts: PpoPrompt[], cfg: RlooConfig, rewards: Awaited<ReturnType<typeof rewardSource>>) => new RlooRun(models, prompts, cfg, rewards);

export async function rlooTrain(o: RlooOptions, hooks: StageHooks = {}) {
  return trainGroup('rloo', make, o, { ...DEFAULT_RLOO, ...o.rloo }, hooks);
}

export async function resumeRloo(runDir: string, hooks: StageHooks = {}, scorer?: RewardSource['scorer']) {
  return resumeGroup('rloo', make, DEFAULT_RLOO, runDir, hooks, scorer);
}
