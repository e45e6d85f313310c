/**
 * PPO against the reward model (`rlhf ppo`), as in InstructGPT (Ouyang et al. 2022) and TRL:
 *
 *   policy    pi      initialised from the SFT model, trained
 *   reference pi_SFT  the SFT model, frozen: the per-token penalty -beta * KL(pi || pi_SFT)
 *   value     V       a separate critic initialised from the reward model, trained
 *   reward    r       the reward model, frozen; scores centred by its training mean and std
 *
 * Each iteration: sample responses to a batch of prompts with the cached generator; score them;
 * per-token rewards r_t = -beta * kl_t, plus the score at the last token (minus a penalty when a
 * response never ends); GAE (gamma 1, lambda 0.95); whitened advantages; then several epochs of
 * clipped policy and value updates over minibatches. Optional PPO-ptx: gamma_ptx times the
 * pretraining negative log-likelihood is added to the policy loss. beta is fixed or adapted
 * toward a target KL. Checkpoints hold policy, critic, both optimizers, beta and the iteration,
 * and every random choice of iteration i is seeded by (seed, i): a resumed run replays exactly.
 * On two cores the critic and the reward model run on a second thread beside the policy and the
 * reference (model parallelism: the same numbers as on one thread).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { mapRows, take, takeScalar, takeScalars } from '../read';
import { CausalLM, adapterOff, createModel } from '../causal-lm';
import { Tokenizer, sameVocabulary } from '../tokenizer';
import { Rng, deriveSeed, epochOrder, permutation } from '../rng';
import { RunDir } from '../../data/run';
import { modelFiles, modelFromLoaded, readModelDir } from '../checkpoint';
import { LoraOptions, mergedWeights, startModel } from './model-setup';
import { checkStageMemory } from '../memory';
import { encodeContext } from '../chat';
import { readSafetensors, serializeSafetensors } from '../safetensors';
import { crossEntropy } from '../layers';
import { AdamW, clipByGlobalNorm } from '../train/optim';
import { assertFinite } from '../train/trainer';
import { GradThreads, autoThreads, scorerOf } from '../train/parallel';
import { ValueBatch, valueLossAndGrads } from '../train/grad-thread';
import { RewardModel } from '../rm/reward-model';
import { Rollout, readPrompts, responseMask, rowsOf, sampleRollout, subset, tokenLogps } from '../rl/rollout';
import { SAMPLES_PER_STEP, rlLoop } from '../rl/group';

export { readPrompts, tokenLogps };
import { gae, whiten } from '../ppo/gae';
import { AdaptiveKl, FixedKl, KlController, klEstimate, sequenceKl } from '../ppo/kl-controller';
import { policyLoss } from '../ppo/losses';
import { Pass } from '../cost';
import { rlPasses } from '../rl/plan';
import { PpoPrompt } from '../../data/ppo';
import { corpusData, readCorpus } from './pretrain';
import { StageHooks, checkRecorded, openResume, runLifecycle } from './common';

export interface PpoConfig {
  iterations: number;
  promptsPerRollout: number;
  samplesPerPrompt: number;
  maxNewTokens: number;
  temperature: number;
  ppoEpochs: number;
  minibatches: number;
  lr: number;
  valueLr: number;
  clip: number;
  valueClip: number;
  gamma: number;
  lambda: number;
  klCoef: number;
  /** Adapt beta toward this KL (nats per response); 0 keeps beta fixed. */
  klTarget: number;
  klHorizon: number;
  klEstimator: 'k1' | 'k3';
  /** Subtracted from the score of a response that hits the token limit without ending (0 = off). */
  missingEosPenalty: number;
  /** PPO-ptx coefficient gamma on the pretraining log-likelihood (0 = off; InstructGPT: 27.8). */
  ptxCoef: number;
  ptxBatch: number;
  gradClip: number;
  seed: number;
  checkpointInterval: number;
  keepCheckpoints: number;
}

export const DEFAULT_PPO: PpoConfig = {
  iterations: 30,
  promptsPerRollout: 4,
  samplesPerPrompt: 4,
  maxNewTokens: 64,
  temperature: 1,
  ppoEpochs: 2,
  minibatches: 2,
  lr: 5e-5,
  valueLr: 1e-4,
  clip: 0.2,
  valueClip: 0.2,
  gamma: 1,
  lambda: 0.95,
  klCoef: 0.1,
  klTarget: 0,
  klHorizon: 10000,
  klEstimator: 'k1',
  missingEosPenalty: 1,
  ptxCoef: 0,
  ptxBatch: 4,
  gradClip: 1,
  seed: 1337,
  checkpointInterval: 10,
  keepCheckpoints: 2,
};

export interface PpoOptions {
  prompts: string;
  policy: string;
  rewardModel: string;
  /** Pretraining corpus for PPO-ptx (needed when ptxCoef > 0). */
  ptxCorpus?: string;
  ppo?: Partial<PpoConfig>;
  runsDir: string;
  runId?: string;
  /** An optional gold scorer (the demo's simulated labeler): logged as objective/gold. */
  gold?: (response: string) => number;
  /** Train LoRA adapters (policy and critic) instead of every weight. */
  lora?: LoraOptions;
  /** 2: the critic and the reward model on a second thread; 1: all on this one; 0 (default): 2 on the CPU backends. */
  threads?: number;
}


/** A reward-model score in the units PPO uses: (score - mean) / (std + 1e-8), the statistics of the RM's training set. */
export function normaliseScore(x: number, stats: { mean: number; std: number }): number {
  return (x - stats.mean) / (stats.std + 1e-8);
}

/** The models of a PPO run, checked against each other before anything is written. */
function loadModels(policyDir: string, rmDir: string, refDir: string, valueDir?: string) {
  const policy = readModelDir(policyDir);
  const rm = readModelDir(rmDir);
  const ref = refDir === policyDir ? policy : readModelDir(refDir);
  if (!sameVocabulary(policy.tokenizer, rm.tokenizer) || policy.config.vocab_size !== rm.config.vocab_size) {
    throw new Error(
      `the reward model ${rmDir} has another vocabulary (${rm.tokenizer.kind}, ${rm.tokenizer.vocabSize} tokens) than the policy ${policyDir} (${policy.tokenizer.kind}, ${policy.tokenizer.vocabSize} tokens); train the reward model from this policy's SFT model`,
    );
  }
  if (!rm.extra.has('score.weight')) throw new Error(`${rmDir} has no score head (score.weight): train it with rlhf rm`);
  const stats = { mean: Number(rm.rawConfig.reward_mean ?? 0), std: Number(rm.rawConfig.reward_std ?? 1) || 1 }; // a constant reward model (std 0) is read unscaled
  if (!Number.isFinite(stats.mean) || !(stats.std >= 0)) throw new Error(`${rmDir}: reward_mean and reward_std in config.json must be numbers (std >= 0)`);
  const value = valueDir ? readModelDir(valueDir) : rm;
  return { policy, rm, ref, value, stats };
}

interface PpoModels {
  tok: Tokenizer;
  policy: CausalLM;
  ref: CausalLM;
  rm: RewardModel;
  critic: RewardModel;
}

/**
 * Whether the critic and the reward model go to a second thread: with two threads (0: both cores)
 * on a CPU backend. A GPU runs one model at a time anyway, and its values are read only asynchronously.
 */
function secondThread(threads: number): boolean {
  return (threads > 0 ? threads : autoThreads()) >= 2 && ['wasm', 'cpu'].includes(tf.getBackend());
}

/**
 * The four models of a PPO run. With LoRA the policy trains an adapter and the reference is the
 * same weights with the adapter switched off (no second copy, as TRL does with PEFT); the critic
 * trains its own adapter on the reward model's frozen trunk, and its head.
 */
async function buildModels(models: ReturnType<typeof loadModels>, stats: { mean: number; std: number }, lora: LoraOptions | undefined, runDir: string, seed: number, resumed: boolean): Promise<PpoModels> {
  const policy = resumed ? modelFromLoaded(models.policy, true) : await startModel(models.policy, lora, runDir, seed);
  const ref = policy.lora ? adapterOff(policy) : createModel(models.ref.config, mergedWeights(models.ref), false);
  // a new critic starts from the reward model's head in normalised units; a resumed one is already
  const critic = resumed
    ? RewardModel.fromLoaded(models.value, true)
    : RewardModel.withTrunk(await startModel(models.value, lora, runDir, seed + 1, 'value-base-model'), models.value, true, 1, stats);
  // with LoRA the critic's frozen base is the reward model's trunk (value-base-model): the reward
  // model is that trunk with the critic's adapter off and its own head, not a second copy
  const rm = critic.trunk.lora ? RewardModel.withTrunk(adapterOff(critic.trunk), models.rm, false) : RewardModel.fromLoaded(models.rm, false);
  return { tok: models.policy.tokenizer, policy, ref, rm, critic };
}

class PpoRun {
  readonly stage = 'ppo';
  private lastSamples: Record<string, unknown>[] = [];
  samples(): Record<string, unknown>[] {
    return this.lastSamples;
  }
  readonly policy: CausalLM;
  readonly ref: CausalLM;
  readonly critic: RewardModel;
  readonly rm: RewardModel;
  readonly tok: Tokenizer;
  readonly policyOpt: AdamW;
  readonly valueOpt: AdamW;
  kl: KlController;
  iteration = 0;
  private ptx?: ReturnType<typeof corpusData>;
  private readonly order: (g: number) => number;
  /** The critic's replica and the reward model on a second core, when there is one. */
  private thread?: GradThreads;

  constructor(
    built: PpoModels,
    readonly prompts: PpoPrompt[],
    readonly cfg: PpoConfig,
    readonly stats: { mean: number; std: number },
    ptxText: string | undefined,
    readonly gold?: (s: string) => number,
  ) {
    ({ tok: this.tok, policy: this.policy, ref: this.ref, rm: this.rm, critic: this.critic } = built);
    this.policyOpt = new AdamW(this.policy.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
    this.valueOpt = new AdamW(this.critic.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
    this.order = epochOrder(prompts.length, deriveSeed(cfg.seed, 0x99));
    this.kl = cfg.klTarget > 0 ? new AdaptiveKl(cfg.klCoef, cfg.klTarget, cfg.klHorizon) : new FixedKl(cfg.klCoef);
    if (cfg.ptxCoef > 0) {
      if (!ptxText) throw new Error('PPO-ptx (--ptx-coef > 0) needs a pretraining corpus (--ptx-corpus)');
      this.ptx = corpusData(Int32Array.from(this.tok.encode(ptxText)), this.policy.config.n_positions, cfg.ptxBatch, 0);
    }
  }

  /** Threads the rollouts' decoder splits its batch over (0: both cores where there are two). */
  private decodeThreads = 0;

  /**
   * threads > 1 (0: the CPU backends' default) puts the critic and the reward model on a second
   * thread, and lets the rollouts decode on both cores; 1 keeps everything on one.
   */
  async startThreads(threads: number): Promise<void> {
    this.decodeThreads = threads;
    if (!secondThread(threads)) return;
    // with LoRA the reward model is the critic's frozen base with its adapter off: not sent twice
    this.thread = await GradThreads.start(this.critic, 1, await scorerOf(this.rm, Boolean(this.critic.trunk.lora)));
  }

  async close(): Promise<void> {
    await this.thread?.close();
    for (const m of [this.policy, this.ref, this.critic, this.rm]) m.dispose();
    this.policyOpt.dispose();
    this.valueOpt.dispose();
  }

  plan(fromIteration: number): Pass[] {
    const c = this.cfg;
    const promptTokens = this.prompts.reduce((a, p) => a + encodeContext(this.tok, p).length, 0) / (this.prompts.length || 1);
    // the reference is a forward pass whether it is a copy or the policy with its adapter off
    return rlPasses({ iterations: c.iterations - fromIteration, rows: c.promptsPerRollout * c.samplesPerPrompt, promptTokens, maxNewTokens: c.maxNewTokens, epochs: c.ppoEpochs, policy: this.policy, reference: true, rm: this.rm, critic: this.critic });
  }

  /** Prompts of iteration i: a seeded permutation per pass over the prompt set. */
  private promptsFor(i: number): PpoPrompt[] {
    const P = this.cfg.promptsPerRollout;
    return Array.from({ length: P }, (_, j) => this.prompts[this.order(i * P + j)]);
  }

  rollout(i: number): Promise<Rollout> {
    const c = this.cfg;
    return sampleRollout(this.policy, this.tok, this.promptsFor(i), { samples: c.samplesPerPrompt, maxNewTokens: c.maxNewTokens, temperature: c.temperature, seed: (j) => deriveSeed(c.seed, i, j), threads: this.decodeThreads });
  }

  /** PPO's value loss, its clip fraction and the critic's gradients, on this thread. */
  private async valueHere(vb: ValueBatch): Promise<{ loss: number; clipfrac: number; grads: Map<string, tf.Tensor> }> {
    const r = await valueLossAndGrads(this.critic, vb);
    return { loss: await takeScalar(r.value), clipfrac: r.clipfrac, grads: r.grads };
  }

  /** What the reward model reads: each response after its context, then end-of-text; read at the last token. */
  private scoring(r: Rollout): { ids: Int32Array; N: number; T: number; last: number[] } {
    const seqs = r.contexts.map((ctx, n) => {
      const resp = Array.from(r.ids.subarray(n * r.T + r.start[n], n * r.T + r.start[n] + r.len[n]));
      return [...ctx, ...(r.finished[n] ? resp : [...resp, this.tok.eot])].slice(-this.policy.config.n_positions);
    });
    const T = Math.max(...seqs.map((s) => s.length));
    const ids = new Int32Array(seqs.length * T).fill(this.tok.eot);
    seqs.forEach((s, n) => ids.set(s, n * T));
    return { ids, N: seqs.length, T, last: seqs.map((s) => s.length - 1) };
  }

  /** The critic's values [N * T] and the reward model's raw scores [N] of a rollout: on the second thread when there is one. */
  private async valuesAndScores(r: Rollout): Promise<{ values: Float32Array; raw: Float32Array }> {
    const s = this.scoring(r);
    if (this.thread) {
      const [values, raw] = await Promise.all([this.thread.values(r.ids, r.N, r.T), this.thread.scores(s.ids, s.N, s.T, s.last)]);
      return { values, raw };
    }
    const values = await mapRows(r.ids, r.N, r.T, (ids) => this.critic.values(ids));
    return { values, raw: await take(tf.tidy(() => this.rm.rewards(tf.tensor2d(s.ids, [s.N, s.T], 'int32'), s.last))) };
  }

  async step(): Promise<Record<string, number>> {
    const c = this.cfg, i = this.iteration;
    const t0 = performance.now();
    const r = await this.rollout(i);
    const tGen = performance.now();
    const mask = responseMask(r);
    // one model at a time, a few thousand tokens at a time: a large vocabulary's logits of a whole
    // rollout for three models at once did not fit the wasm heap at SmolLM2's shape
    const onThread = this.thread ? this.valuesAndScores(r) : undefined; // the critic and the reward model, meanwhile on the second thread
    onThread?.catch(() => undefined); // awaited below; a failure before then is not an unhandled rejection
    const logpOld = await mapRows(r.ids, r.N, r.T, (ids) => tokenLogps(this.policy, ids, false, c.temperature).logp);
    const logpRef = await mapRows(r.ids, r.N, r.T, (ids) => tokenLogps(this.ref, ids, false, c.temperature).logp);
    const { values: vOld, raw } = await (onThread ?? this.valuesAndScores(r));
    const scores = Array.from(raw, (x, n) => normaliseScore(x, this.stats) - (r.finished[n] ? 0 : c.missingEosPenalty));
    // per-token rewards, GAE, whitening
    const beta = this.kl.value;
    const adv = new Float32Array(r.N * r.T), ret = new Float32Array(r.N * r.T);
    const klSeq: number[] = [], nonScore: number[] = [], negLogp: number[] = [];
    const allAdv: number[] = [];
    const perSeq: { idx: number[]; a: number[] }[] = [];
    for (let n = 0; n < r.N; n++) {
      const idx = Array.from({ length: r.len[n] }, (_, t) => n * r.T + r.start[n] - 1 + t);
      const kl = idx.map((k) => klEstimate(logpOld[k], logpRef[k], c.klEstimator));
      const rewards = kl.map((x) => -beta * x);
      rewards[rewards.length - 1] += scores[n];
      const { advantages, returns } = gae(rewards, idx.map((k) => vOld[k]), c.gamma, c.lambda);
      idx.forEach((k, t) => (ret[k] = returns[t]));
      perSeq.push({ idx, a: advantages });
      allAdv.push(...advantages);
      klSeq.push(sequenceKl(logpOld, logpRef, idx, c.klEstimator)); // the estimator the penalty uses
      nonScore.push(kl.reduce((s, x) => s - beta * x, 0));
      negLogp.push(idx.reduce((s, k) => s - logpOld[k], 0));
    }
    const white = whiten(allAdv);
    let w = 0;
    for (const s of perSeq) s.idx.forEach((k) => (adv[k] = white[w++]));

    // PPO epochs over minibatches
    const rng = new Rng(deriveSeed(c.seed, i, 0xabc));
    const sums = { pg: 0, vf: 0, clip: 0, vclip: 0, approxkl: 0, ratio: 0, entropy: 0, ptx: 0, n: 0 };
    const mbSize = Math.ceil(r.N / c.minibatches);
    const pVars = [...this.policy.params.values()].filter((v) => v.trainable); // an adapter only, with LoRA
    const pName = new Map([...this.policy.params].map(([k, v]) => [v.name, k]));
    for (let e = 0; e < c.ppoEpochs; e++) {
      const order = permutation(r.N, rng);
      for (let b = 0; b < r.N; b += mbSize) {
        const rows = order.slice(b, b + mbSize);
        const mb = subset(r, rows);
        const T = r.T, M = rows.length;
        const ptxBatch = this.ptx?.trainBatch(i, e * 1000 + b, rng);
        const vb: ValueBatch = { ids: mb.ids, M, T, mask: rowsOf(mask, T, rows), valuesOld: rowsOf(vOld, T, rows), returns: rowsOf(ret, T, rows), clip: c.valueClip };
        const vfThread = this.thread?.valueLossAndGrads(vb); // the critic's pass, meanwhile on the second thread
        vfThread?.catch(() => undefined);
        const kept: Record<string, tf.Tensor> = {}; // logged figures, read after the gradient passes
        const pg = tf.tidy(() => {
          const ids = tf.tensor2d(mb.ids, [M, T], 'int32');
          const m = tf.tensor2d(rowsOf(mask, T, rows), [M, T]);
          return tf.variableGrads(() => {
            const { logp, entropy } = tokenLogps(this.policy, ids, true, c.temperature);
            const pl = policyLoss(logp, tf.tensor2d(rowsOf(logpOld, T, rows), [M, T]), tf.tensor2d(rowsOf(adv, T, rows), [M, T]), m, c.clip);
            Object.assign(kept, { clip: pl.clipfrac, approxkl: pl.approxkl, ratio: pl.ratio, entropy: tf.div(tf.sum(tf.mul(entropy!, m)), tf.maximum(tf.sum(m), 1)), pg: pl.loss });
            let loss: tf.Scalar = pl.loss;
            if (ptxBatch) {
              const ptx = crossEntropy(
                this.policy.logits(tf.tensor2d(ptxBatch.ids, [ptxBatch.B, ptxBatch.T], 'int32')),
                tf.tensor1d(ptxBatch.targets, 'int32'),
                tf.tensor1d(ptxBatch.weights),
              );
              kept.ptx = ptx;
              loss = tf.add(loss, tf.mul(ptx, c.ptxCoef));
            }
            for (const t of Object.values(kept)) tf.keep(t);
            return loss;
          }, pVars);
        });
        const vf = vfThread ? await vfThread : await this.valueHere(vb);
        const keys = Object.keys(kept);
        const stats: Record<string, number> = Object.fromEntries((await takeScalars(keys.map((k) => kept[k]))).map((v, j) => [keys[j], v]));
        Object.assign(stats, { vf: vf.loss, vclip: vf.clipfrac });
        assertFinite(i + 1, { 'loss/policy': stats.pg, 'loss/value': stats.vf });
        const pGrads = new Map(Object.entries(pg.grads).map(([k, g]) => [pName.get(k)!, g]));
        const vGrads = vf.grads;
        const pNorm = await clipByGlobalNorm(pGrads, c.gradClip);
        const vNorm = await clipByGlobalNorm(vGrads, c.gradClip);
        assertFinite(i + 1, { 'policy grad_norm': pNorm, 'value grad_norm': vNorm });
        this.policyOpt.step(pGrads, c.lr);
        this.valueOpt.step(vGrads, c.valueLr);
        this.thread?.invalidate(); // the critic's replica gets the new weights with its next request
        tf.dispose([pg.value, ...pGrads.values(), ...vGrads.values()]);
        sums.pg += stats.pg; sums.vf += stats.vf; sums.clip += stats.clip; sums.vclip += stats.vclip;
        sums.approxkl += stats.approxkl; sums.ratio += stats.ratio; sums.entropy += stats.entropy; sums.ptx += stats.ptx ?? 0; sums.n++;
      }
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / (a.length || 1);
    const klMean = mean(klSeq);
    this.kl.update(klMean, r.N);
    this.iteration += 1;
    // the step's first samples for samples.jsonl: each response's mean whitened advantage over its tokens
    const G = c.samplesPerPrompt, prompts = this.promptsFor(i);
    this.lastSamples = r.responses.slice(0, SAMPLES_PER_STEP).map((response, n) => ({
      step: this.iteration,
      prompt: prompts[Math.floor(n / G)].prompt,
      response,
      score: scores[n],
      ...(this.gold ? { gold: this.gold(response) } : {}),
      kl: klSeq[n],
      advantage: mean(perSeq[n].idx.map((k) => adv[k])),
    }));
    const seconds = (performance.now() - t0) / 1000;
    const tokens = r.len.reduce((a, b) => a + b, 0);
    const m: Record<string, number> = {
      step: this.iteration,
      time: Date.now() / 1000,
      'objective/kl': klMean,
      'objective/entropy': mean(negLogp),
      'objective/non_score_reward': mean(nonScore),
      'objective/scores': mean(scores),
      'objective/rlhf_reward': mean(scores) + mean(nonScore),
      'objective/kl_coef': beta,
      'policy/approxkl_avg': sums.approxkl / sums.n,
      'policy/clipfrac_avg': sums.clip / sums.n,
      'policy/entropy_avg': sums.entropy / sums.n,
      'loss/policy_avg': sums.pg / sums.n,
      'loss/value_avg': sums.vf / sums.n,
      'val/clipfrac_avg': sums.vclip / sums.n,
      'val/ratio': sums.ratio / sums.n,
      'val/num_eos_tokens': r.finished.filter(Boolean).length,
      response_length: tokens / r.N,
      tokens_per_second: (r.N * r.T * c.ppoEpochs) / seconds, // tokens through the policy update
      generation_seconds: (tGen - t0) / 1000,
      iteration_seconds: (performance.now() - t0) / 1000, // rollout (generation, scoring) and update
    };
    if (this.cfg.ptxCoef > 0) m['loss/ptx_avg'] = sums.ptx / sums.n;
    if (this.gold) m['objective/gold'] = mean(r.responses.map(this.gold));
    assertFinite(this.iteration, { 'objective/kl': klMean, 'objective/scores': m['objective/scores'] });
    return m;
  }

  async checkpointFiles(): Promise<Record<string, string | Buffer>> {
    const files: Record<string, string | Buffer> = {
      ...(await modelFiles(this.policy, this.tok)),
      'optimizer.safetensors': serializeSafetensors(await this.policyOpt.state()),
      'value_optimizer.safetensors': serializeSafetensors(await this.valueOpt.state()),
      'trainer_state.json': JSON.stringify({ step: this.iteration, optimizer_t: this.policyOpt.t, value_optimizer_t: this.valueOpt.t, kl_coef: this.kl.value, seed: this.cfg.seed, stage: 'ppo' }) + '\n',
    };
    for (const [name, content] of Object.entries(await this.critic.files(this.tok, { model_role: 'value' }))) files[`value/${name}`] = content;
    return files;
  }

  restore(dir: string): void {
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    this.policyOpt.loadState(readSafetensors(path.join(dir, 'optimizer.safetensors')).tensors, s.optimizer_t);
    this.valueOpt.loadState(readSafetensors(path.join(dir, 'value_optimizer.safetensors')).tensors, s.value_optimizer_t);
    this.kl.value = s.kl_coef;
    this.iteration = s.step;
  }
}

export async function ppoTrain(o: PpoOptions, hooks: StageHooks = {}) {
  const cfg: PpoConfig = { ...DEFAULT_PPO, ...o.ppo };
  // everything is read and checked before the run folder exists
  const prompts = readPrompts(o.prompts);
  const models = loadModels(o.policy, o.rewardModel, o.policy);
  const ptxText = cfg.ptxCoef > 0 ? readCorpus(o.ptxCorpus ?? '') : undefined;
  // policy and critic trained; reference (none with LoRA: the policy with its adapter off) and reward model frozen
  const rows = Math.ceil((cfg.promptsPerRollout * cfg.samplesPerPrompt) / cfg.minibatches);
  const seq = Math.min(models.policy.config.n_positions, Math.max(...prompts.map((p) => encodeContext(models.policy.tokenizer, p).length)) + cfg.maxNewTokens);
  // the policy's and the critic's updates take turns: one backward pass's activations at a time
  const n = cfg.promptsPerRollout * cfg.samplesPerPrompt;
  checkStageMemory(models.policy.config, {
    models: o.lora ? 2 : 4, trained: 2, concurrent: 1, fullHead: true, batchSize: rows, seq, loraR: o.lora?.r ?? 0,
    // the second thread's copies of the critic and the reward model (with LoRA: one base, the adapter on and off)
    threads: secondThread(o.threads ?? 0) ? { count: 1, models: o.lora ? 1 : 2, trained: 1, batchSize: rows, lmHead: false } : undefined,
    // rows per minibatch = ceil(responses / minibatches): the minibatch count that gives `rows`
    batchOption: (r) => (n % r === 0 && n / r <= n ? `--minibatches ${n / r}` : undefined),
  });
  const run = RunDir.create(o.runsDir, {
    stage: 'ppo',
    config: { prompts: path.resolve(o.prompts), policy: path.resolve(o.policy), reward_model: path.resolve(o.rewardModel), ptx_corpus: o.ptxCorpus ? path.resolve(o.ptxCorpus) : null, ppo: cfg, lora: o.lora ?? null, reward_stats: models.stats },
    parent_model: path.resolve(o.policy),
  }, o.runId);
  const ppo = new PpoRun(await buildModels(models, models.stats, o.lora, run.dir, cfg.seed, false), prompts, cfg, models.stats, ptxText, o.gold);
  try {
    await ppo.startThreads(o.threads ?? 0);
    hooks.log?.(`run ${run.dir}: ${prompts.length} prompts, ${cfg.promptsPerRollout} x ${cfg.samplesPerPrompt} responses per iteration, beta ${cfg.klCoef}${cfg.klTarget ? ` adapting to KL ${cfg.klTarget}` : ''}${o.lora ? `; LoRA r=${o.lora.r} (the reference is the policy with its adapter off)` : ''}`);
    return await runLifecycle(run, () => rlLoop(run, ppo, hooks));
  } finally {
    await ppo.close();
  }
}

/** `threads` as in PpoOptions: not recorded, since it changes no number. */
export async function resumePpo(runDir: string, hooks: StageHooks = {}, gold?: (s: string) => number, threads = 0) {
  const { run, config: c, point, markResumed } = openResume<{ prompts: string; policy: string; reward_model: string; ptx_corpus: string | null; ppo: PpoConfig }>(runDir, hooks);
  checkRecorded(c.ppo, DEFAULT_PPO, 'config.ppo');
  const prompts = readPrompts(c.prompts);
  const models = loadModels(point.dir, c.reward_model, c.policy, path.join(point.dir, 'value'));
  const ppo = new PpoRun(await buildModels(models, models.stats, undefined, run.dir, c.ppo.seed, true), prompts, c.ppo, models.stats, c.ppo.ptxCoef > 0 ? readCorpus(c.ptx_corpus ?? '') : undefined, gold);
  try {
    await ppo.startThreads(threads);
    ppo.restore(point.dir);
    run.truncateMetrics(point.step);
    markResumed();
    return await runLifecycle(run, () => rlLoop(run, ppo, hooks));
  } finally {
    await ppo.close();
  }
}
