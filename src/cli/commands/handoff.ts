/**
 * `rlhf export RUN --for trl|openrlhf --out DIR` (src/handoff/export.ts) and `rlhf import DIR`:
 * a model a distributed trainer wrote, brought back as a model folder of the workspace, checked by
 * loading it and scoring a sentence.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { Trainer, exportRun } from '../../handoff/export';
import { loadModel } from '../../engine/checkpoint';
import { tokenLogprobs } from '../../engine/generate';
import { COMMON, startBackend } from './shared';

export const EXPORT_OPTS: OptSpecs = {
  for: { type: 'string', help: 'trl (TRL 1.9: trl sft|reward|dpo|grpo|rloo) or openrlhf (OpenRLHF 0.11: deepspeed / ray job submit)' },
  out: { type: 'string', help: 'a new folder for the data, the model and the launch scripts' },
  json: COMMON.json,
  help: COMMON.help,
};

export async function exportCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  const trainer = o.for as string | undefined;
  if (trainer !== 'trl' && trainer !== 'openrlhf') throw new UsageError('--for must be trl or openrlhf');
  if (positional.length !== 1) throw new UsageError('rlhf export RUN_DIR --for trl|openrlhf --out DIR');
  if (!o.out) throw new UsageError('--out DIR: a new folder for the export');
  const out = path.resolve(o.out as string);
  const res = exportRun(path.resolve(positional[0]), trainer as Trainer, out);
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', out, files: res.files, launcher: res.command.launcher, args: res.command.args, notes: res.command.notes }) + '\n');
  else {
    r.log(`exported ${res.plan.stage} run for ${trainer} into ${out}: ${res.files.join(', ')}`);
    for (const n of res.command.notes) r.log(`  note: ${n}`);
    r.log(`run it: bash ${path.join(out, 'train.sh')}   or on Slurm: rlhf submit --script ${path.join(out, 'train.slurm.sh')}`);
  }
  return 0;
}

export const IMPORT_OPTS: OptSpecs = {
  name: { type: 'string', help: 'the model folder\'s name under --models-dir (default: the imported folder\'s name)' },
  'models-dir': { type: 'string', help: 'where the workspace keeps models', default: 'models' },
  ...COMMON,
};

/** Copies a Hugging Face model folder in after checking that the engine loads it and scores text with it. */
export async function importCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  if (positional.length !== 1) throw new UsageError('rlhf import MODEL_DIR [--name NAME]');
  const from = path.resolve(positional[0]);
  if (!fs.existsSync(path.join(from, 'config.json'))) throw new Error(`${from} is not a model folder (no config.json): give the folder the trainer saved its model to (its output/ or ckpt folder)`);
  const name = (o.name as string | undefined) ?? path.basename(from);
  if (!/^[\w.-]+$/.test(name)) throw new UsageError('--name: letters, digits, _ . - only');
  const to = path.resolve(o['models-dir'] as string, name);
  if (fs.existsSync(to)) throw new Error(`${to} already exists: choose another --name`);
  await startBackend(o, r);
  const { model, tokenizer } = loadModel(from, false);
  let logp: number;
  try {
    const ids = tokenizer.encode('The ferry leaves at noon.');
    const lp = await tokenLogprobs(model, ids.slice(0, model.config.n_positions));
    logp = lp.reduce((a, b) => a + b, 0);
    if (!Number.isFinite(logp)) throw new Error(`${from} loads but scores text as ${logp}: its weights are not usable`);
  } finally {
    model.dispose();
  }
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) {
    const src = path.join(from, f);
    if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(to, f));
  }
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', model: to, logprob: logp }) + '\n');
  else r.log(`imported ${from} as ${to} (it loads and scores a sentence: log p = ${logp.toFixed(2)}); the model pickers offer it`);
  return 0;
}
