/**
 * `rlhf pipeline` (and `npm run demo`): the whole InstructGPT recipe on the example workspace.
 *
 *   0. pretrain  a short run on Moby-Dick, to show the stage (the bundled base model is the
 *                same command run longer)
 *   1. SFT       the base model on the review demonstrations
 *   2. RM        from the SFT model, on rankings made by the simulated labeler (AFINN + noise)
 *   3. PPO       the SFT model against the reward model, KL-penalised toward the SFT model
 *   4. evaluate  SFT and PPO on held-out prompts (places no training file mentions): gold score
 *                (the labeler's AFINN, never seen by the reward model) with its standard error,
 *                reward-model score, and KL(PPO || SFT) in nats per response
 *
 * Writes <out>/summary.json and prints a progress line per stage and a final table.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { OptSpecs, ParsedOpts } from '../args';
import { Reporter } from '../progress';
import { COMMON, hooksFor, startBackend } from './shared';
import { pretrain } from '../../engine/stages/pretrain';
import { sft } from '../../engine/stages/sft';
import { trainRewardModel, scoreSequences } from '../../engine/stages/rm';
import { ppoTrain, readPrompts } from '../../engine/stages/ppo';
import { defaultCorpusPath } from '../../engine/stages/common';
import { bundledBaseModel, exampleWorkspace } from '../../engine/paths';
import { loadModel, readModelDir } from '../../engine/checkpoint';
import { generate, tokenLogprobs } from '../../engine/generate';
import { RewardModel } from '../../engine/rm/reward-model';
import { goldScore } from '../../engine/labeler/gold';
import { currentBackend } from '../../engine/backends/backend';
import { deriveSeed } from '../../engine/rng';
import { RunDir } from '../../data/run';

export const PIPELINE_OPTS: OptSpecs = {
  out: { type: 'string', help: 'output folder (runs and summary.json)', default: '.rlhf/demo' },
  workspace: { type: 'string', help: 'workspace with data/*.sft.jsonl, *.rm.jsonl, *.ppo.jsonl (default: the bundled example)' },
  'pretrain-steps': { type: 'int', help: 'steps of the demonstration pretraining run (0 = skip)', default: 100 },
  'sft-steps': { type: 'int', help: 'SFT steps', default: 300 },
  'rm-steps': { type: 'int', help: 'reward-model steps', default: 70 },
  'ppo-iterations': { type: 'int', help: 'PPO iterations', default: 24 },
  'eval-samples': { type: 'int', help: 'responses per held-out prompt and model', default: 2 },
  ...COMMON,
};

interface EvalResult {
  n: number;
  gold_mean: number;
  gold_se: number;
  rm_mean: number;
  kl_mean?: number;
  samples: { prompt: string; response: string; gold: number }[];
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / (a.length || 1);
const se = (a: number[]) => {
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, a.length - 1) / Math.max(1, a.length));
};

/** Samples responses to held-out prompts; gold, reward-model score, and KL to the SFT model. */
export function evaluate(modelDir: string, sftDir: string | undefined, rmDir: string, promptsFile: string, samples: number): EvalResult {
  const { model, tokenizer } = loadModel(modelDir, false);
  const ref = sftDir ? loadModel(sftDir, false).model : undefined;
  const rmLoaded = readModelDir(rmDir);
  const rm = RewardModel.fromLoaded(rmLoaded, false);
  const stats = { mean: Number(rmLoaded.rawConfig.reward_mean ?? 0), std: Number(rmLoaded.rawConfig.reward_std ?? 1) || 1 };
  try {
    const out: EvalResult = { n: 0, gold_mean: 0, gold_se: 0, rm_mean: 0, samples: [] };
    const golds: number[] = [], seqs: number[][] = [], kls: number[] = [];
    const N = model.config.n_positions;
    readPrompts(promptsFile).forEach((p, i) => {
      const ctx = tokenizer.encode(p.context);
      const g = generate(model, ctx, samples, { maxNewTokens: Math.min(64, N - ctx.length - 1), temperature: 1, topK: 0, topP: 1, seed: deriveSeed(4242, i), eot: tokenizer.eot });
      g.tokens.forEach((t, s) => {
        const text = tokenizer.decode(t);
        const gold = goldScore(text);
        golds.push(gold);
        out.samples.push({ prompt: p.prompt, response: text, gold });
        const full = [...ctx, ...t, tokenizer.eot];
        seqs.push(full.slice(-N));
        if (ref) {
          // KL(pi || pi_SFT) on the policy's own samples: sum over response tokens of log pi - log pi_SFT
          const scored = g.finished[s] ? full : [...ctx, ...t];
          const lp = tokenLogprobs(model, scored.slice(-N)), lq = tokenLogprobs(ref, scored.slice(-N));
          const from = Math.max(0, lp.length - (scored.length - ctx.length));
          let kl = 0;
          for (let k = from; k < lp.length; k++) kl += lp[k] - lq[k];
          kls.push(kl);
        }
      });
    });
    const rms = Array.from(scoreSequences(rm, seqs, tokenizer.eot), (x) => (x - stats.mean) / stats.std);
    out.n = golds.length;
    out.gold_mean = mean(golds);
    out.gold_se = se(golds);
    out.rm_mean = mean(rms);
    if (ref) out.kl_mean = mean(kls);
    out.samples = out.samples.slice(0, 6);
    return out;
  } finally {
    model.dispose();
    ref?.dispose();
    rm.dispose();
  }
}

export async function pipelineCommand(o: ParsedOpts, r: Reporter) {
  const t0 = Date.now();
  const out = path.resolve(o.out as string);
  const ws = path.resolve((o.workspace as string) ?? exampleWorkspace());
  const data = (name: string) => path.join(ws, 'data', name);
  const runsDir = path.join(out, 'runs');
  fs.rmSync(runsDir, { recursive: true, force: true });
  fs.mkdirSync(runsDir, { recursive: true });
  await startBackend(o, r);
  const hooks = hooksFor(r);
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>) => {
    const t = Date.now();
    const v = await f();
    seconds[name] = (Date.now() - t) / 1000;
    return v;
  };

  if ((o['pretrain-steps'] as number) > 0) {
    r.log(`[0/4] pretrain: ${o['pretrain-steps']} steps of a new character-level GPT on Moby-Dick (the bundled base model is this, longer)`);
    const pre = await timed('pretrain', () => pretrain({ corpus: defaultCorpusPath(), model: { n_layer: 4, n_head: 4, n_embd: 128, n_positions: 64 }, runsDir, runId: 'pretrain', train: { steps: o['pretrain-steps'] as number, lr: 2e-3, warmupSteps: 10, evalInterval: 50, checkpointInterval: 0 } }, hooks));
    if (pre.stopped) return;
  }

  r.log('[1/4] sft: the bundled base model on reviews.sft.jsonl');
  const sftRun = await timed('sft', () => sft({ data: data('reviews.sft.jsonl'), model: bundledBaseModel(), runsDir, runId: 'sft', train: { steps: o['sft-steps'] as number, evalInterval: 100, checkpointInterval: 0 } }, hooks));
  if (sftRun.stopped || !sftRun.finalModel) return;

  r.log('[2/4] rm: reward model from the SFT model on reviews.rm.jsonl (K = 4 rankings by the simulated labeler)');
  const rmRun = await timed('rm', () => trainRewardModel({ data: data('reviews.rm.jsonl'), model: sftRun.finalModel!, runsDir, runId: 'rm', train: { steps: o['rm-steps'] as number, evalInterval: 35, checkpointInterval: 0 } }, hooks));
  if (rmRun.stopped || !rmRun.finalModel) return;

  r.log('[3/4] ppo: the SFT model against the reward model, KL-penalised toward the SFT model');
  const ppoRun = await timed('ppo', () => ppoTrain({ prompts: data('reviews.ppo.jsonl'), policy: sftRun.finalModel!, rewardModel: rmRun.finalModel!, ppo: { iterations: o['ppo-iterations'] as number, checkpointInterval: 0 }, runsDir, runId: 'ppo', gold: goldScore }, hooks));
  if (ppoRun.stopped || !ppoRun.finalModel) return;

  r.log('[4/4] evaluate: SFT and PPO on held-out prompts (gold = the labeler\'s AFINN score, unseen by the reward model)');
  const heldout = data('reviews-heldout.ppo.jsonl');
  const samples = o['eval-samples'] as number;
  const evalSft = await timed('eval_sft', async () => evaluate(sftRun.finalModel!, undefined, rmRun.finalModel!, heldout, samples));
  const evalPpo = await timed('eval_ppo', async () => evaluate(ppoRun.finalModel!, sftRun.finalModel!, rmRun.finalModel!, heldout, samples));
  const rmMetrics = new RunDir(path.join(runsDir, 'rm')).readMetrics();
  const lastEval = [...rmMetrics].reverse().find((m) => m['eval/accuracy'] !== undefined);
  const diff = evalPpo.gold_mean - evalSft.gold_mean;
  const diffSe = Math.sqrt(evalPpo.gold_se ** 2 + evalSft.gold_se ** 2);
  const summary = {
    rm: { heldout_accuracy: lastEval?.['eval/accuracy'] ?? NaN, heldout_loss: lastEval?.['eval/loss'] ?? NaN },
    sft: { gold_mean: evalSft.gold_mean, gold_se: evalSft.gold_se, rm_mean: evalSft.rm_mean, n: evalSft.n },
    ppo: { gold_mean: evalPpo.gold_mean, gold_se: evalPpo.gold_se, rm_mean: evalPpo.rm_mean, kl_mean: evalPpo.kl_mean, n: evalPpo.n },
    gold_gain: { difference: diff, standard_error: diffSe, z: diff / diffSe },
    seconds: (Date.now() - t0) / 1000,
    stage_seconds: seconds,
    backend: currentBackend()?.name,
    tensors_left: tf.memory().numTensors,
    samples: { sft: evalSft.samples, ppo: evalPpo.samples },
  };
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const f = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const table = [
    'held-out prompts    gold (AFINN) ± se    reward model    KL to SFT (nats)',
    `SFT                 ${f(evalSft.gold_mean, 2).padStart(6)} ± ${f(evalSft.gold_se, 2)}        ${f(evalSft.rm_mean, 2).padStart(6)}          -`,
    `PPO                 ${f(evalPpo.gold_mean, 2).padStart(6)} ± ${f(evalPpo.gold_se, 2)}        ${f(evalPpo.rm_mean, 2).padStart(6)}          ${f(evalPpo.kl_mean, 2)}`,
    `PPO - SFT gold: ${f(diff, 2)} (${f(diff / diffSe, 1)} standard errors); reward-model held-out accuracy ${f(summary.rm.heldout_accuracy, 3)}`,
  ];
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', ...summary }) + '\n');
  else {
    r.log('\nsamples (held-out prompts):');
    for (const [k, s] of [['SFT', evalSft.samples], ['PPO', evalPpo.samples]] as const) for (const x of s.slice(0, 3)) r.log(`  ${k} ${JSON.stringify(x.prompt)} -> ${JSON.stringify(x.response)} (gold ${x.gold})`);
    r.log(`\n${table.join('\n')}\n\ndone in ${summary.seconds.toFixed(0)} s; summary in ${path.join(out, 'summary.json')}`);
  }
  return summary;
}
