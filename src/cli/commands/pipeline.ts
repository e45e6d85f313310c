/**
 * `rlhf pipeline` (and `npm run demo`): the whole InstructGPT recipe on the example workspace.
 *
 *   0. pretrain  a short run on Moby-Dick, to show the stage (the bundled base model is the
 *                same command run longer)
 *   1. SFT       the base model on the review demonstrations
 *   2. RM        from the SFT model, on rankings made by the simulated labeler (AFINN + noise)
 *   3. the tuning algorithms chosen with --algos, each from the same SFT model:
 *      PPO   against the reward model, KL-penalised toward the SFT model (InstructGPT)
 *      DPO   straight from the K-way rankings (Plackett-Luce), no reward model, no sampling
 *      GRPO  against the reward model, G responses per prompt, group-normalised advantages
 *      RLOO  against the reward model, G responses per prompt, leave-one-out baseline
 *   4. evaluate  SFT and each tuned model on held-out prompts (places no training file mentions):
 *                gold score (the labeler's AFINN, never seen by the reward model or DPO) with its
 *                standard error, reward-model score, and KL(model || SFT) in nats per response
 *
 * Sizes: each algorithm gets about a minute on a 2-core CPU (PPO two), so that the demo with all
 * four stays under ten minutes; their learning rates and betas were chosen on this task so that
 * the gold gain is clear and the KL to SFT stays below 10 nats (README, "The demo").
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
import { trainRewardModel } from '../../engine/stages/rm';
import { scoreSequences } from '../../engine/rm/score';
import { ppoTrain, readPrompts } from '../../engine/stages/ppo';
import { dpo } from '../../engine/stages/dpo';
import { grpoTrain } from '../../engine/stages/grpo';
import { rlooTrain } from '../../engine/stages/rloo';
import { defaultCorpusPath } from '../../engine/stages/common';
import { bundledBaseModel, exampleWorkspace } from '../../engine/paths';
import { loadModel, readModelDir } from '../../engine/checkpoint';
import { generate, tokenLogprobs } from '../../engine/generate';
import { RewardModel } from '../../engine/rm/reward-model';
import { goldScore } from '../../engine/labeler/gold';
import { currentBackend } from '../../engine/backends/backend';
import { deriveSeed } from '../../engine/rng';
import { RunDir } from '../../data/run';
import { pairResults, schedule, voteOf, voteRecord } from '../../data/evaluation';
import { appendRecords } from '../../data/append';
import { encodeContext } from '../../engine/chat';

const ALL_ALGOS = ['ppo', 'dpo', 'grpo', 'rloo'] as const;
type Algo = (typeof ALL_ALGOS)[number];
const ALGO_NAMES: Record<Algo, string> = { ppo: 'PPO', dpo: 'DPO', grpo: 'GRPO', rloo: 'RLOO' };

/** The --algos list: known names, each once, in the order given. */
export function parseAlgos(v: string): Algo[] {
  const list = v.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  if (!list.length) throw new Error(`--algos needs at least one of ${ALL_ALGOS.join(', ')}`);
  for (const a of list) if (!(ALL_ALGOS as readonly string[]).includes(a)) throw new Error(`--algos: unknown algorithm "${a}" (known: ${ALL_ALGOS.join(', ')})`);
  if (new Set(list).size !== list.length) throw new Error(`--algos names an algorithm twice: ${v}`);
  return list as Algo[];
}

export const PIPELINE_OPTS: OptSpecs = {
  out: { type: 'string', help: 'output folder (runs and summary.json)', default: '.rlhf/demo' },
  workspace: { type: 'string', help: 'workspace with data/*.sft.jsonl, *.rm.jsonl, *.ppo.jsonl (default: the bundled example)' },
  'pretrain-steps': { type: 'int', help: 'steps of the demonstration pretraining run (0 = skip)', default: 20 },
  'sft-steps': { type: 'int', help: 'SFT steps', default: 300 },
  'rm-steps': { type: 'int', help: 'reward-model steps', default: 70 },
  algos: { type: 'string', help: 'tuning algorithms to run from the SFT model, in this order: any of ppo, dpo, grpo, rloo', default: ALL_ALGOS.join(',') },
  'ppo-iterations': { type: 'int', help: 'PPO iterations', default: 24 },
  'dpo-steps': { type: 'int', help: 'DPO steps (Plackett-Luce over the K-way rankings)', default: 30 },
  'grpo-iterations': { type: 'int', help: 'GRPO steps', default: 20 },
  'rloo-iterations': { type: 'int', help: 'RLOO steps', default: 20 },
  'eval-samples': { type: 'int', help: 'responses per held-out prompt and model', default: 2 },
  'eval-prompts': { type: 'int', help: 'held-out prompts evaluated (0 = all)', default: 0 },
  'runs-dir': { type: 'string', help: 'where the runs go (default OUT/runs, emptied first; a folder given here is never emptied)' },
  'run-prefix': { type: 'string', help: 'run names are PREFIX + stage (sft, rm, ppo, ...)', default: '' },
  ...COMMON,
};

/**
 * The pipeline as separate stage commands (for `rlhf submit -- pipeline`: one cluster job each),
 * with the same data, models and settings as pipelineCommand below; `after` names the stages
 * whose final model a stage reads. The held-out evaluation is not a stage and is not included.
 */
export function pipelineStages(o: ParsedOpts, runsDir: string): { id: string; stage: string; argv: string[]; after: string[] }[] {
  const algos = parseAlgos(o.algos as string);
  const ws = path.resolve((o.workspace as string) ?? exampleWorkspace());
  const data = (name: string) => path.join(ws, 'data', name);
  const prefix = (o['run-prefix'] as string | undefined) ?? '';
  if (!/^[\w.-]*$/.test(prefix)) throw new Error('--run-prefix: letters, digits, _ . - only');
  const id = (stage: string) => `${prefix}${stage}`;
  const final = (stage: string) => path.join(runsDir, id(stage), 'checkpoints', 'final');
  const common = (stage: string) => ['--runs-dir', runsDir, '--run-id', id(stage), '--backend', o.backend as string];
  const n = (k: string) => String(o[k]);
  const out: { id: string; stage: string; argv: string[]; after: string[] }[] = [];
  if ((o['pretrain-steps'] as number) > 0) out.push({ id: id('pretrain'), stage: 'pretrain', after: [], argv: ['pretrain', '--layers', '4', '--heads', '4', '--embd', '128', '--block', '64', '--steps', n('pretrain-steps'), '--lr', '2e-3', '--warmup-steps', '10', '--eval-interval', '50', ...common('pretrain')] });
  out.push({ id: id('sft'), stage: 'sft', after: [], argv: ['sft', '--data', data('reviews.sft.jsonl'), '--model', bundledBaseModel(), '--steps', n('sft-steps'), '--eval-interval', '150', ...common('sft')] });
  out.push({ id: id('rm'), stage: 'rm', after: [id('sft')], argv: ['rm', '--data', data('reviews.rm.jsonl'), '--model', final('sft'), '--steps', n('rm-steps'), '--eval-interval', '35', ...common('rm')] });
  const prompts = data('reviews.ppo.jsonl');
  const tuned: Record<Algo, () => { after: string[]; argv: string[] }> = {
    ppo: () => ({ after: [id('sft'), id('rm')], argv: ['ppo', '--prompts', prompts, '--policy', final('sft'), '--reward-model', final('rm'), '--iterations', n('ppo-iterations')] }),
    dpo: () => ({ after: [id('sft')], argv: ['dpo', '--data', data('reviews.rm.jsonl'), '--model', final('sft'), '--beta', '0.5', '--kway', 'pl', '--steps', n('dpo-steps'), '--lr', '1e-4', '--min-lr', '1e-5', '--eval-interval', n('dpo-steps')] }),
    grpo: () => ({ after: [id('sft'), id('rm')], argv: ['grpo', '--prompts', prompts, '--policy', final('sft'), '--reward-model', final('rm'), '--iterations', n('grpo-iterations'), '--lr', '5e-5', '--beta', '0.1'] }),
    rloo: () => ({ after: [id('sft'), id('rm')], argv: ['rloo', '--prompts', prompts, '--policy', final('sft'), '--reward-model', final('rm'), '--iterations', n('rloo-iterations'), '--lr', '5e-5', '--beta', '0.1'] }),
  };
  for (const a of algos) {
    const t = tuned[a]();
    out.push({ id: id(a), stage: a, after: t.after, argv: [...t.argv, ...common(a)] });
  }
  return out;
}

interface EvalResult {
  n: number;
  gold_mean: number;
  gold_se: number;
  rm_mean: number;
  kl_mean?: number;
  /** The first few, for the summary. */
  samples: { prompt: string; response: string; gold: number }[];
  /** Every sample, in prompt order: sample s of prompt i used the same seed for every model. */
  all: { prompt: string; response: string; gold: number }[];
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / (a.length || 1);
const se = (a: number[]) => {
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, a.length - 1) / Math.max(1, a.length));
};

/** Samples responses to held-out prompts; gold, reward-model score, and KL to the SFT model. */
export async function evaluate(modelDir: string, sftDir: string | undefined, rmDir: string, promptsFile: string, samples: number, maxPrompts = 0): Promise<EvalResult> {
  const { model, tokenizer } = loadModel(modelDir, false);
  const ref = sftDir ? loadModel(sftDir, false).model : undefined;
  const rmLoaded = readModelDir(rmDir);
  const rm = RewardModel.fromLoaded(rmLoaded, false);
  const stats = { mean: Number(rmLoaded.rawConfig.reward_mean ?? 0), std: Number(rmLoaded.rawConfig.reward_std ?? 1) || 1 };
  try {
    const out: EvalResult = { n: 0, gold_mean: 0, gold_se: 0, rm_mean: 0, samples: [], all: [] };
    const golds: number[] = [], seqs: number[][] = [], kls: number[] = [];
    const N = model.config.n_positions;
    const prompts = readPrompts(promptsFile);
    for (const [i, p] of (maxPrompts > 0 ? prompts.slice(0, maxPrompts) : prompts).entries()) {
      const ctx = encodeContext(tokenizer, p);
      const g = await generate(model, ctx, samples, { maxNewTokens: Math.min(64, N - ctx.length - 1), temperature: 1, topK: 0, topP: 1, seed: deriveSeed(4242, i), eot: tokenizer.eot });
      for (const [s, t] of g.tokens.entries()) {
        const text = tokenizer.decode(t);
        const gold = goldScore(text);
        golds.push(gold);
        out.samples.push({ prompt: p.prompt, response: text, gold });
        const full = [...ctx, ...t, tokenizer.eot];
        seqs.push(full.slice(-N));
        if (ref) {
          // KL(pi || pi_SFT) on the policy's own samples: sum over response tokens of log pi - log pi_SFT
          const scored = g.finished[s] ? full : [...ctx, ...t];
          const lp = await tokenLogprobs(model, scored.slice(-N)), lq = await tokenLogprobs(ref, scored.slice(-N));
          const from = Math.max(0, lp.length - (scored.length - ctx.length));
          let kl = 0;
          for (let k = from; k < lp.length; k++) kl += lp[k] - lq[k];
          kls.push(kl);
        }
      }
    }
    const rms = Array.from(await scoreSequences(rm, seqs, tokenizer.eot), (x) => (x - stats.mean) / stats.std);
    out.n = golds.length;
    out.gold_mean = mean(golds);
    out.gold_se = se(golds);
    out.rm_mean = mean(rms);
    if (ref) out.kl_mean = mean(kls);
    out.all = out.samples;
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
  const algos = parseAlgos(o.algos as string); // a typo fails before anything is deleted or trained
  const total = 3 + algos.length;
  const out = path.resolve(o.out as string);
  const ws = path.resolve((o.workspace as string) ?? exampleWorkspace());
  const data = (name: string) => path.join(ws, 'data', name);
  // the demo's own runs folder starts empty each time; a given one (the editor's runs folder) is
  // never emptied: the runs get names of their own there (--run-prefix)
  const runsDir = o['runs-dir'] ? path.resolve(o['runs-dir'] as string) : path.join(out, 'runs');
  const prefix = (o['run-prefix'] as string | undefined) ?? '';
  if (!/^[\w.-]*$/.test(prefix)) throw new Error('--run-prefix: letters, digits, _ . - only');
  if (!o['runs-dir']) fs.rmSync(runsDir, { recursive: true, force: true });
  fs.mkdirSync(runsDir, { recursive: true });
  const id = (stage: string) => `${prefix}${stage}`;
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
    r.log(`[0/${total}] pretrain: ${o['pretrain-steps']} steps of a new character-level GPT on Moby-Dick (the bundled base model is this, longer)`);
    const pre = await timed('pretrain', () => pretrain({ corpus: defaultCorpusPath(), model: { n_layer: 4, n_head: 4, n_embd: 128, n_positions: 64 }, runsDir, runId: id('pretrain'), train: { steps: o['pretrain-steps'] as number, lr: 2e-3, warmupSteps: 10, evalInterval: 50, checkpointInterval: 0 } }, hooks));
    if (pre.stopped) return;
  }

  r.log(`[1/${total}] sft: the bundled base model on reviews.sft.jsonl`);
  const sftRun = await timed('sft', () => sft({ data: data('reviews.sft.jsonl'), model: bundledBaseModel(), runsDir, runId: id('sft'), train: { steps: o['sft-steps'] as number, evalInterval: 150, checkpointInterval: 0 } }, hooks));
  if (sftRun.stopped || !sftRun.finalModel) return;
  const sftModel = sftRun.finalModel;

  r.log(`[2/${total}] rm: reward model from the SFT model on reviews.rm.jsonl (K = 4 rankings by the simulated labeler)`);
  const rmRun = await timed('rm', () => trainRewardModel({ data: data('reviews.rm.jsonl'), model: sftModel, runsDir, runId: id('rm'), train: { steps: o['rm-steps'] as number, evalInterval: 35, checkpointInterval: 0 } }, hooks));
  if (rmRun.stopped || !rmRun.finalModel) return;
  const rmModel = rmRun.finalModel;

  const prompts = data('reviews.ppo.jsonl');
  const train: Record<Algo, { what: string; run: () => Promise<{ stopped: boolean; finalModel?: string }> }> = {
    ppo: {
      what: 'the SFT model against the reward model, KL-penalised toward the SFT model',
      run: () => ppoTrain({ prompts, policy: sftModel, rewardModel: rmModel, ppo: { iterations: o['ppo-iterations'] as number, checkpointInterval: 0 }, runsDir, runId: id('ppo'), gold: goldScore }, hooks),
    },
    dpo: {
      what: 'the SFT model on the K-way rankings themselves (Plackett-Luce; no reward model, no sampling)',
      // beta 0.5 and a higher rate than DPO's default: 30 steps, KL to SFT near PPO's
      run: () => dpo({ data: data('reviews.rm.jsonl'), model: sftModel, dpo: { beta: 0.5, kway: 'pl' }, runsDir, runId: id('dpo'), train: { steps: o['dpo-steps'] as number, lr: 1e-4, minLr: 1e-5, evalInterval: o['dpo-steps'] as number, checkpointInterval: 0 } }, hooks),
    },
    grpo: {
      what: 'the SFT model against the reward model, 4 responses per prompt, group-normalised advantages',
      run: () => grpoTrain({ prompts, policy: sftModel, rewardModel: rmModel, grpo: { iterations: o['grpo-iterations'] as number, lr: 5e-5, beta: 0.1, checkpointInterval: 0 }, runsDir, runId: id('grpo') }, hooks),
    },
    rloo: {
      what: 'the SFT model against the reward model, 4 responses per prompt, leave-one-out baseline',
      run: () => rlooTrain({ prompts, policy: sftModel, rewardModel: rmModel, rloo: { iterations: o['rloo-iterations'] as number, lr: 5e-5, beta: 0.1, checkpointInterval: 0 }, runsDir, runId: id('rloo') }, hooks),
    },
  };
  const tuned = new Map<Algo, string>();
  for (const [i, a] of algos.entries()) {
    r.log(`[${3 + i}/${total}] ${a}: ${train[a].what}`);
    const run = await timed(a, train[a].run);
    if (run.stopped || !run.finalModel) return;
    tuned.set(a, run.finalModel);
  }

  r.log(`[${total}/${total}] evaluate: SFT and ${algos.map((a) => ALGO_NAMES[a]).join(', ')} on held-out prompts (gold = the labeler's AFINN score, unseen by the reward model)`);
  const heldout = data('reviews-heldout.ppo.jsonl');
  const samples = o['eval-samples'] as number, maxPrompts = o['eval-prompts'] as number;
  const evalSft = await timed('eval_sft', async () => evaluate(sftModel, undefined, rmModel, heldout, samples, maxPrompts));
  const evals = new Map<Algo, EvalResult>();
  for (const a of algos) evals.set(a, await timed(`eval_${a}`, async () => evaluate(tuned.get(a)!, sftModel, rmModel, heldout, samples, maxPrompts)));
  const rmMetrics = new RunDir(path.join(runsDir, id('rm'))).readMetrics();
  const lastEval = [...rmMetrics].reverse().find((m) => m['eval/accuracy'] !== undefined);
  const gain = (e: EvalResult) => {
    const difference = e.gold_mean - evalSft.gold_mean, standard_error = Math.sqrt(e.gold_se ** 2 + evalSft.gold_se ** 2);
    return { difference, standard_error, z: difference / standard_error };
  };
  // the blind comparison: each tuned model's response against SFT's to the same held-out prompt
  // (same sampling seed), sides at random, judged by the gold scorer; votes in blind.rm.jsonl
  const votesFile = path.join(out, 'blind.rm.jsonl');
  fs.rmSync(votesFile, { force: true });
  const blind = (a: Algo) => {
    const mine = evals.get(a)!.all, base = evalSft.all;
    const plan = schedule([a, 'sft'], mine.length, 2026);
    const records = plan.map((p) => {
      const side = (m: string) => ({ model: m, response: (m === 'sft' ? base : mine)[p.item].response });
      const g = (m: string) => (m === 'sft' ? base : mine)[p.item].gold;
      const verdict = g(p.left) > g(p.right) ? 'left' : g(p.right) > g(p.left) ? 'right' : 'tie';
      return { ...voteRecord({ prompt: mine[p.item].prompt, left: side(p.left), right: side(p.right), verdict, annotator: 'judge:gold', seed: p.seed, item: p.item }), evaluation: `pipeline-${a}` };
    });
    appendRecords(votesFile, records);
    const votes = records.map((rec) => voteOf(rec)!);
    const r = pairResults(votes)[0];
    const mineIsA = r.a === a;
    return {
      judge: 'gold', n: r.n, wins: mineIsA ? r.wins_a : r.wins_b, losses: mineIsA ? r.wins_b : r.wins_a, ties: r.ties,
      win_rate: mineIsA ? r.win_rate : 1 - r.win_rate, low: mineIsA ? r.low : 1 - r.high, high: mineIsA ? r.high : 1 - r.low,
    };
  };
  const perAlgo = Object.fromEntries(algos.map((a) => {
    const e = evals.get(a)!;
    return [a, { gold_mean: e.gold_mean, gold_se: e.gold_se, rm_mean: e.rm_mean, kl_mean: e.kl_mean, n: e.n, seconds: seconds[a], gold_gain: gain(e), blind_vs_sft: blind(a) }];
  }));
  const summary = {
    algos,
    rm: { heldout_accuracy: lastEval?.['eval/accuracy'] ?? NaN, heldout_loss: lastEval?.['eval/loss'] ?? NaN },
    sft: { gold_mean: evalSft.gold_mean, gold_se: evalSft.gold_se, rm_mean: evalSft.rm_mean, n: evalSft.n, seconds: seconds.sft },
    ...perAlgo,
    // PPO's gain at the top level, as before the other algorithms joined
    ...(evals.has('ppo') ? { gold_gain: gain(evals.get('ppo')!) } : {}),
    seconds: (Date.now() - t0) / 1000,
    stage_seconds: seconds,
    backend: currentBackend()?.name,
    tensors_left: tf.memory().numTensors,
    samples: { sft: evalSft.samples, ...Object.fromEntries(algos.map((a) => [a, evals.get(a)!.samples])) },
  };
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const f = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const row = (name: string, e: EvalResult, secs: number | undefined) =>
    `${name.padEnd(20)}${f(e.gold_mean, 2).padStart(6)} ± ${f(e.gold_se, 2)}        ${f(e.rm_mean, 2).padStart(6)}          ${e.kl_mean === undefined ? '    -' : f(e.kl_mean, 2).padStart(5)}          ${secs === undefined ? '-' : secs.toFixed(0).padStart(4)}`;
  const table = [
    'held-out prompts    gold (AFINN) ± se    reward model    KL to SFT (nats)    train seconds',
    row('SFT', evalSft, seconds.sft),
    ...algos.map((a) => row(ALGO_NAMES[a], evals.get(a)!, seconds[a])),
    ...algos.map((a) => {
      const g = gain(evals.get(a)!), b = perAlgo[a].blind_vs_sft;
      return `${ALGO_NAMES[a]} - SFT gold: ${f(g.difference, 2)} (${f(g.z, 1)} standard errors); blind vs SFT by the gold scorer: wins ${f(100 * b.win_rate, 1)}% [95% CI ${f(100 * b.low, 1)}, ${f(100 * b.high, 1)}] (${b.wins}-${b.losses}-${b.ties})`;
    }),
    `reward-model held-out accuracy ${f(summary.rm.heldout_accuracy, 3)}`,
  ];
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', ...summary }) + '\n');
  else {
    r.log('\nsamples (held-out prompts):');
    for (const [k, s] of [['SFT', evalSft.samples] as const, ...algos.map((a) => [ALGO_NAMES[a], evals.get(a)!.samples] as const)]) for (const x of s.slice(0, 3)) r.log(`  ${k} ${JSON.stringify(x.prompt)} -> ${JSON.stringify(x.response)} (gold ${x.gold})`);
    r.log(`\n${table.join('\n')}\n\ndone in ${summary.seconds.toFixed(0)} s; summary in ${path.join(out, 'summary.json')}`);
  }
  return summary;
}
