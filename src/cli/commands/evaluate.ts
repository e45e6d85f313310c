/**
 * Blind side-by-side evaluation from the command line.
 *
 *   rlhf compare --models A,B[,C…] --prompts FILE [--name N]   makes the items: for each prompt, two
 *       of the models (every pair in turn), one response each (the same sampling seed for both),
 *       and the side each is shown on, from a seed recorded per item. The ranking panel shows them
 *       (RLHF: Compare Models (blind)…); a judge can vote on them too.
 *   rlhf evaluate VOTES.rm.jsonl [--evaluation N] [--ties half|exclude] [--json]
 *       win rates with 95% Wilson intervals, Bradley–Terry ratings with bootstrap intervals (3+
 *       models), and, when a judge voted on the same items as a person, how often they agree.
 *   rlhf evaluate VOTES.rm.jsonl --items ITEMS --judge rm|gold [--reward-model DIR]
 *       the reward model (higher score wins) or the demo's gold scorer votes on every item, blind
 *       as a person (it sees the prompt and the two responses), appended to VOTES as annotator
 *       "judge:rm" or "judge:gold"; then the results as above.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { COMMON, startBackend } from './shared';
import { modelFromLoaded, readModelDir } from '../../engine/checkpoint';

import { generate } from '../../engine/generate';
import { RewardModel } from '../../engine/rm/reward-model';
import { scoreSequences } from '../../engine/rm/score';
import { goldScore } from '../../engine/labeler/gold';
import { loadPrompts } from '../../data/ranking-session';
import { EvaluationSummary, TieRule, Verdict, agreementOf, schedule, summarizeByVoter, voteRecord } from '../../data/evaluation';
import { EvalItem, readItems, readVotes, writeItems } from '../../data/evaluation-file';
import { appendRecords } from '../../data/append';
import { encodeContext } from '../../engine/chat';

export const COMPARE_OPTS: OptSpecs = {
  models: { type: 'string', help: 'two or more model folders, comma-separated' },
  prompts: { type: 'string', help: 'prompts (*.ppo.jsonl, or an RM file\'s prompts); held-out ones are the fair choice' },
  name: { type: 'string', help: 'the evaluation\'s name (recorded with every vote)', default: 'compare' },
  out: { type: 'string', help: 'the items file to write (default .rlhf/evals/NAME/items.jsonl)' },
  items: { type: 'int', help: 'items to make (default: one per prompt)', default: 0 },
  seed: { type: 'int', help: 'the seed of the sides\' order (each item\'s own seed is recorded)', default: 1 },
  'max-tokens': { type: 'int', help: 'new tokens at most per response', default: 64 },
  temperature: { type: 'number', help: 'sampling temperature', default: 0.8 },
  'top-k': { type: 'int', help: 'sample among the k most likely tokens (0 = all)', default: 0 },
  'top-p': { type: 'number', help: 'nucleus sampling probability mass', default: 1 },
  'gen-seed': { type: 'int', help: 'sampling seed (item i uses gen-seed + i, the same for both models)', default: 1 },
  ...COMMON,
};

export const EVALUATE_OPTS: OptSpecs = {
  evaluation: { type: 'string', help: 'only the votes of this evaluation (default: every vote in the file)' },
  ties: { type: 'string', help: 'half (a tie or "both bad" is half a win to each side) or exclude', default: 'half' },
  items: { type: 'string', help: 'with --judge: the evaluation\'s items file (rlhf compare)' },
  judge: { type: 'string', help: 'rm or gold: let the reward model or the demo\'s gold scorer vote on every item' },
  'reward-model': { type: 'string', help: 'with --judge rm: the reward model' },
  ...COMMON,
};

export async function compareCommand(o: ParsedOpts, r: Reporter) {
  const models = String(o.models ?? '').split(',').map((m) => m.trim()).filter(Boolean);
  if (models.length < 2) throw new UsageError('rlhf compare needs --models A,B (two or more model folders)');
  if (!o.prompts) throw new UsageError('rlhf compare needs --prompts FILE');
  if (!fs.existsSync(o.prompts as string)) throw new Error(`${o.prompts}: file not found`);
  const prompts = loadPrompts(o.prompts as string);
  if (!prompts.length) throw new Error(`${o.prompts} has no prompt`);
  const n = (o.items as number) > 0 ? (o.items as number) : prompts.length;
  const plan = schedule(models, n, o.seed as number); // refuses a model chosen twice
  const loaded = models.map((m) => readModelDir(m)); // a bad folder fails before anything is generated
  await startBackend(o, r);
  const name = o.name as string;
  if (!/^[\w.-]+$/.test(name)) throw new UsageError('--name: letters, digits, _ . - only');
  const out = path.resolve((o.out as string | undefined) ?? path.join('.rlhf', 'evals', name, 'items.jsonl'));
  const responses = new Map<string, string>(); // `${item}\0${model}`
  const t0 = performance.now();
  let done = 0;
  for (const [k, m] of models.entries()) {
    const model = modelFromLoaded(loaded[k], false);
    const tok = loaded[k].tokenizer;
    try {
      for (const p of plan) {
        if (p.left !== m && p.right !== m) continue;
        const item = prompts[p.item % prompts.length];
        const ctx = encodeContext(tok, item);
        const g = await generate(model, ctx, 1, {
          maxNewTokens: Math.max(1, Math.min(o['max-tokens'] as number, model.config.n_positions - ctx.length - 1)),
          temperature: o.temperature as number, topK: o['top-k'] as number, topP: o['top-p'] as number,
          seed: (o['gen-seed'] as number) + p.item, eot: tok.eot,
        });
        responses.set(`${p.item}\u0000${m}`, tok.decode(g.tokens[0]));
        done++;
        const secs = (performance.now() - t0) / 1000;
        r.progress({ stage: 'compare', step: done, totalSteps: 2 * n, metrics: {}, etaSeconds: (secs / done) * (2 * n - done) });
      }
    } finally {
      model.dispose();
    }
  }
  const items: EvalItem[] = plan.map((p) => {
    const item = prompts[p.item % prompts.length];
    return { item: p.item, prompt: item.prompt, context: item.context, seed: p.seed, left: { model: p.left, response: responses.get(`${p.item}\u0000${p.left}`)! }, right: { model: p.right, response: responses.get(`${p.item}\u0000${p.right}`)! } };
  });
  const generation = { max_tokens: o['max-tokens'] as number, temperature: o.temperature as number, top_k: o['top-k'] as number, top_p: o['top-p'] as number, seed: o['gen-seed'] as number };
  writeItems(out, { evaluation: name, models, prompts: path.resolve(o.prompts as string), seed: o.seed as number, generation, created_at: new Date().toISOString() }, items);
  const result = { evaluation: name, items: out, n: items.length, models };
  r.result?.(result);
  if (o.json) process.stdout.write(JSON.stringify({ type: 'result', ...result }) + '\n');
  else r.log(`${items.length} items comparing ${models.join(', ')} written to ${out}`);
  return result;
}

/** A judge's verdict on an item: the higher score wins; equal scores tie. */
function verdictOf(left: number, right: number): Verdict {
  return left > right ? 'left' : right > left ? 'right' : 'tie';
}

/** The gold scorer or the reward model votes on every item, as a person would, appended to the votes file. */
export async function judgeItems(itemsFile: string, votesFile: string, judge: 'rm' | 'gold', rewardModel?: string): Promise<number> {
  const { header, items } = readItems(itemsFile);
  let score: (prompts: EvalItem[], side: 'left' | 'right') => number[] | Promise<number[]>;
  let dispose = () => {};
  if (judge === 'gold') score = (xs, side) => xs.map((x) => goldScore(x[side].response));
  else {
    if (!rewardModel) throw new UsageError('--judge rm needs --reward-model DIR');
    const loaded = readModelDir(rewardModel);
    const rm = RewardModel.fromLoaded(loaded, false);
    dispose = () => rm.dispose();
    const tok = loaded.tokenizer, N = loaded.config.n_positions;
    score = async (xs, side) => Array.from(await scoreSequences(rm, xs.map((x) => [...tok.encode(x.context), ...tok.encode(x[side].response), tok.eot].slice(-N)), tok.eot));
  }
  try {
    const left = await score(items, 'left'), right = await score(items, 'right');
    const annotator = `judge:${judge}`;
    const already = readVotes(votesFile, { evaluation: header.evaluation, annotator }).voted;
    // a judge votes once per item: running it again adds nothing
    const records = items.flatMap((x, i) => (already.has(x.item) ? [] : [{ ...voteRecord({ prompt: x.prompt, left: x.left, right: x.right, verdict: verdictOf(left[i], right[i]), annotator, seed: x.seed, item: x.item }), evaluation: header.evaluation }]));
    return appendRecords(votesFile, records).length;
  } finally {
    dispose();
  }
}

export function printSummary(s: EvaluationSummary, agreement: { x: string; y: string; items: number; agree: number | null }[]): void {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');
  const lines = [`${s.votes} vote(s) on ${s.models.length} model(s); ties ${s.ties === 'half' ? 'and "both bad" count half a win to each side' : 'and "both bad" left out'}`];
  for (const p of s.pairs) lines.push(`${p.a} vs ${p.b}: ${p.a} wins ${pct(p.win_rate)} [95% CI ${pct(p.low)}, ${pct(p.high)}] (${p.wins_a} won, ${p.wins_b} lost, ${p.ties} tied, ${p.both_bad} both bad)`);
  for (const x of s.ratings ?? []) lines.push(`Bradley-Terry ${x.model}: ${x.rating.toFixed(0)} [${x.low.toFixed(0)}, ${x.high.toFixed(0)}] over ${x.votes} vote(s)`);
  for (const [j, js] of Object.entries((s as ReturnType<typeof summarizeByVoter>).judges ?? {})) {
    for (const p of js.pairs) lines.push(`${j}: ${p.a} vs ${p.b}: ${p.a} wins ${pct(p.win_rate)} [95% CI ${pct(p.low)}, ${pct(p.high)}] (${p.wins_a} won, ${p.wins_b} lost, ${p.ties} tied)`);
    lines.push(`${j} agrees with the people on ${js.agreement.agree === null ? '-' : pct(js.agreement.agree)} of ${js.agreement.items} shared item(s)`);
  }
  for (const a of agreement) lines.push(`agreement ${a.x} and ${a.y}: ${a.agree === null ? '-' : pct(a.agree)} of ${a.items} shared item(s)`);
  for (const l of lines) process.stdout.write(l + '\n');
}

export async function evaluateCommand(o: ParsedOpts, files: string[], r: Reporter) {
  if (files.length !== 1) throw new UsageError('rlhf evaluate takes one votes FILE (an RM file the ranking panel or a judge wrote)');
  const ties = o.ties as TieRule;
  if (ties !== 'half' && ties !== 'exclude') throw new UsageError('--ties must be half or exclude');
  const file = files[0];
  let evaluation = o.evaluation as string | undefined;
  if (o.judge !== undefined) {
    if (o.judge !== 'rm' && o.judge !== 'gold') throw new UsageError('--judge must be rm or gold');
    if (!o.items) throw new UsageError('--judge needs --items FILE (made by rlhf compare)');
    if (o.judge === 'rm') await startBackend(o, r);
    const added = await judgeItems(o.items as string, file, o.judge, o['reward-model'] as string | undefined);
    evaluation ??= readItems(o.items as string).header.evaluation;
    if (!o.json) r.log(`judge:${o.judge} voted on ${added} item(s), appended to ${file}`);
  } else if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  const { votes } = readVotes(file, { evaluation });
  if (!votes.length) throw new Error(`${file} has no vote${evaluation ? ` of the evaluation "${evaluation}"` : ''} (records naming their models, as the ranking panel's evaluation mode writes)`);
  const s = summarizeByVoter(votes, ties);
  const annotators = Object.keys(s.annotators).sort();
  const agreement = annotators.flatMap((x, i) => annotators.slice(i + 1).map((y) => ({ x, y, ...agreementOf(votes, x, y) }))).filter((a) => a.items > 0);
  const result = { ...s, ...(evaluation ? { evaluation } : {}), agreement };
  r.result?.(result as unknown as Record<string, unknown>);
  if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  else printSummary(s, agreement);
  return 0;
}
