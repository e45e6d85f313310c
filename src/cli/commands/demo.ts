/**
 * The main job on the embedded default, start to finish on a laptop CPU:
 *   1. pretrain a small character-level GPT on Moby-Dick (the stage works and its loss falls),
 *   2. SFT the bundled base model (pretrained on Moby-Dick by the same command, longer) on the
 *      example workspace's review demonstrations,
 *   3. generate answers to held-out prompts from the base and the SFT model, side by side.
 * Writes <out>/summary.json and prints a table.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts } from '../args';
import { Reporter } from '../progress';
import { COMMON, startBackend, stopFlag } from './shared';
import { pretrain } from '../../engine/stages/pretrain';
import { sft } from '../../engine/stages/sft';
import { defaultCorpusPath } from '../../engine/stages/common';
import { bundledBaseModel, exampleWorkspace } from '../../engine/paths';
import { loadModel } from '../../engine/checkpoint';
import { generate } from '../../engine/generate';
import { promptTemplate } from '../../data/sft';
import { RunDir } from '../../engine/run';
import { currentBackend } from '../../engine/backends/backend';

export const DEMO_OPTS: OptSpecs = {
  out: { type: 'string', help: 'output folder (runs and summary.json)', default: '.rlhf/demo' },
  'pretrain-steps': { type: 'int', help: 'steps of the pretraining stage', default: 150 },
  'sft-steps': { type: 'int', help: 'steps of the SFT stage', default: 150 },
  ...COMMON,
};

const HELD_OUT_PROMPTS = ['What did you think of the candle shop?', 'Tell me about the old mill.', 'Describe your visit to the walking tour.'];

export async function demoCommand(o: ParsedOpts, r: Reporter) {
  const t0 = Date.now();
  const out = path.resolve(o.out as string);
  const runsDir = path.join(out, 'runs');
  fs.rmSync(runsDir, { recursive: true, force: true });
  fs.mkdirSync(runsDir, { recursive: true });
  await startBackend(o, r);
  const shouldStop = stopFlag();
  const hooks = { onProgress: (p: import('../../engine/train/trainer').Progress) => r.progress(p), log: (l: string) => r.log(l), shouldStop };

  r.log('[1/3] pretrain: a new character-level GPT on Moby-Dick');
  let t = Date.now();
  const pre = await pretrain({ corpus: defaultCorpusPath(), model: { n_layer: 4, n_head: 4, n_embd: 128, n_positions: 64 }, runsDir, runId: 'pretrain', train: { steps: o['pretrain-steps'] as number, lr: 2e-3, warmupSteps: 20, evalInterval: 50, checkpointInterval: 0 } }, hooks);
  const preSecs = (Date.now() - t) / 1000;
  if (pre.stopped) return;

  const base = bundledBaseModel();
  const data = path.join(exampleWorkspace(), 'data', 'reviews.sft.jsonl');
  r.log(`[2/3] sft: ${path.relative(process.cwd(), base) || base} on ${path.relative(process.cwd(), data)}`);
  t = Date.now();
  const tuned = await sft({ data, model: base, runsDir, runId: 'sft', train: { steps: o['sft-steps'] as number, evalInterval: 50, checkpointInterval: 0 } }, hooks);
  const sftSecs = (Date.now() - t) / 1000;
  if (tuned.stopped || !tuned.finalModel) return;

  r.log('[3/3] generate: held-out prompts, base model vs SFT model (temperature 0.7, seed 1)');
  const samples: { prompt: string; base: string; sft: string }[] = [];
  const models = { base: loadModel(base, false), sft: loadModel(tuned.finalModel, false) };
  try {
    for (const prompt of HELD_OUT_PROMPTS) {
      const row = { prompt, base: '', sft: '' };
      for (const k of ['base', 'sft'] as const) {
        const { model, tokenizer } = models[k];
        const g = generate(model, tokenizer.encode(promptTemplate(prompt)), 1, { maxNewTokens: 80, temperature: 0.7, topK: 0, topP: 1, seed: 1, eot: tokenizer.eot });
        row[k] = tokenizer.decode(g.tokens[0]);
      }
      samples.push(row);
      r.log(`  prompt: ${prompt}\n    base: ${JSON.stringify(row.base)}\n    sft:  ${JSON.stringify(row.sft)}`);
    }
  } finally {
    models.base.model.dispose();
    models.sft.model.dispose();
  }

  const stageRow = (name: string, res: typeof pre, secs: number) => {
    const m = new RunDir(path.join(runsDir, name)).readMetrics();
    const evals = m.filter((x) => x['eval/loss'] !== undefined);
    return {
      steps: res.step,
      first_loss: m[0]?.loss,
      last_loss: m.at(-1)?.loss,
      first_eval_loss: evals[0]?.['eval/loss'],
      last_eval_loss: evals.at(-1)?.['eval/loss'],
      seconds: secs,
      tokens_per_second: m.reduce((a, x) => a + x.tokens_per_second, 0) / Math.max(1, m.length),
    };
  };
  const summary = {
    backend: currentBackend()?.name,
    pretrain: stageRow('pretrain', pre, preSecs),
    sft: stageRow('sft', tuned, sftSecs),
    samples,
    seconds: (Date.now() - t0) / 1000,
  };
  fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const fmt = (x: number | undefined, d = 3) => (x === undefined ? '-' : x.toFixed(d)).padStart(9);
  const table = [
    `stage      steps  loss first    last  eval first    last   tok/s  seconds`,
    ...(['pretrain', 'sft'] as const).map((k) => {
      const s = summary[k];
      return `${k.padEnd(9)} ${String(s.steps).padStart(6)} ${fmt(s.first_loss)} ${fmt(s.last_loss)} ${fmt(s.first_eval_loss)} ${fmt(s.last_eval_loss)} ${fmt(s.tokens_per_second, 0)} ${fmt(s.seconds, 1)}`;
    }),
  ];
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', ...summary }) + '\n');
  else r.log(`\n${table.join('\n')}\n\ndone in ${summary.seconds.toFixed(0)} s; summary in ${path.join(out, 'summary.json')}`);
  return summary;
}
