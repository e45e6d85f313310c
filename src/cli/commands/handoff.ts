/**
 * `rlhf export RUN --for trl|openrlhf --out DIR` (src/handoff/export.ts) and `rlhf import DIR`:
 * a model a distributed trainer wrote, brought back as a model folder of the workspace, checked by
 * loading it and scoring a sentence; and, when the trainer kept a log there (TensorBoard event
 * files: src/data/tensorboard-log.ts; a Trainer's trainer_state.json: src/data/trainer-log.ts),
 * its curves as a run the dashboard shows.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { Trainer, exportRun } from '../../handoff/export';
import { loadModel } from '../../engine/checkpoint';
import { resolveModelPath } from '../../data/hub-cache';
import { tokenLogprobs } from '../../engine/generate';
import { COMMON, startBackend } from './shared';
import { TrainerLog, findTrainerState, readTrainerLog } from '../../data/trainer-log';
import { findEventFiles, readTensorboardLog } from '../../data/tensorboard-log';
import { RunDir } from '../../data/run';
import { writeFileAtomic } from '../../data/durable';

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
  name: { type: 'string', help: 'the model folder\'s and the run\'s name (default: the imported folder\'s name)' },
  'models-dir': { type: 'string', help: 'where the workspace keeps models', default: 'models' },
  'runs-dir': { type: 'string', help: 'where the run made from the trainer\'s log goes (TensorBoard event files or trainer_state.json, when there are)', default: '.rlhf/runs' },
  base: { type: 'string', help: 'a LoRA adapter\'s base model (folder or Hub id), written into the copy: for an adapter saved without one' },
  stage: { type: 'string', help: 'the log\'s stage (sft, rm, dpo, ppo, grpo, rloo), when its metric names do not tell (they are TRL\'s names)' },
  ...COMMON,
};

const STAGES = ['pretrain', 'sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo'];

/**
 * The training log a trainer kept in a folder: its TensorBoard event files (they carry the clock),
 * else a Trainer's trainer_state.json. Event files without a scalar (a run stopped before its first
 * logging step still has the Trainer's text summaries) are passed over, with a note.
 */
function findLog(from: string, notes: string[]): TrainerLog | undefined {
  const events = findEventFiles(from);
  if (events.length) {
    try {
      return readTensorboardLog(from, events);
    } catch (e) {
      notes.push(`${(e as Error).message}; not imported`);
    }
  }
  const stateFile = findTrainerState(from);
  return stateFile ? readTrainerLog(stateFile) : undefined;
}

/**
 * Copies a Hugging Face model folder in after checking that the engine loads it and scores text
 * with it, and makes a completed run of the training log beside it; a folder with a log and no
 * model (a TensorBoard logging dir) brings the log alone.
 */
export async function importCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  if (positional.length !== 1) throw new UsageError('rlhf import DIR [--name NAME]');
  const from = path.resolve(positional[0]);
  if (!fs.existsSync(from) || !fs.statSync(from).isDirectory()) throw new Error(`${from} is not a folder`);
  const stage = o.stage as string | undefined;
  if (stage !== undefined && !STAGES.includes(stage)) throw new UsageError(`--stage must be one of ${STAGES.join(', ')}`);
  // a whole model, or a LoRA adapter in PEFT's layout (TRL with --use_peft saves one) on a base that loads here
  const hasModel = fs.existsSync(path.join(from, 'config.json'));
  const adapter = !hasModel && fs.existsSync(path.join(from, 'adapter_config.json'));
  if (o.base !== undefined && !adapter) throw new UsageError('--base is for a LoRA adapter folder (adapter_config.json, no config.json)');
  // the trainer's log, read before anything is written
  const notes: string[] = [];
  const log = findLog(from, notes);
  if (log && stage) log.stage = stage;
  if (!hasModel && !adapter && !log) throw new Error(`${from} holds no model (no config.json, nor a LoRA adapter's adapter_config.json) and no training log (${notes.length ? notes.join('; ') : 'no TensorBoard event files, no trainer_state.json'}): give the folder the trainer saved to (its output/ or ckpt folder) or its logging dir`);
  const name = (o.name as string | undefined) ?? path.basename(from);
  if (!/^[\w.-]+$/.test(name)) throw new UsageError('--name: letters, digits, _ . - only');
  const to = hasModel || adapter ? path.resolve(o['models-dir'] as string, name) : undefined;
  if (to && fs.existsSync(to)) throw new Error(`${to} already exists: choose another --name`);
  const runDir = path.resolve(o['runs-dir'] as string, name);
  if (log && fs.existsSync(runDir)) throw new Error(`${runDir} already exists: choose another --name`);
  let logp: number | undefined;
  if (to) {
    // copied beside its final place first and loaded from there (the copy is what the pickers will
    // open, its base rewritten where needed); renamed into place only once it scores text
    const staging = path.join(path.dirname(to), `.${name}.importing-${process.pid}`);
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    try {
      for (const f of fs.readdirSync(from)) {
        const src = path.join(from, f);
        if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(staging, f));
      }
      if (adapter) setBase(from, staging, o.base as string | undefined);
      await startBackend(o, r);
      const { model, tokenizer } = loadModel(staging, false);
      try {
        const ids = tokenizer.encode('The ferry leaves at noon.');
        const lp = await tokenLogprobs(model, ids.slice(0, model.config.n_positions));
        logp = lp.reduce((a, b) => a + b, 0);
        if (!Number.isFinite(logp)) throw new Error(`${from} loads but scores text as ${logp}: its weights are not usable`);
      } finally {
        model.dispose();
      }
      fs.renameSync(staging, to);
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  }
  const run = log && importLog(log, path.dirname(runDir), name, from, to);
  const problems = [...notes, ...(log && 'problems' in log ? (log.problems as string[]) : [])];
  if (r.json) process.stdout.write(JSON.stringify({ type: 'result', ...(to ? { model: to, logprob: logp } : {}), ...(run ? { run: run.dir, steps: log!.rows.length, stage: log!.stage, log: log!.file } : {}), problems }) + '\n');
  else {
    if (to) r.log(`imported ${from} as ${to}${adapter ? ' (a LoRA adapter on its base)' : ''} (it loads and scores a sentence: log p = ${logp!.toFixed(2)}); the model pickers offer it`);
    if (run) r.log(`its training log (${log!.file}): ${log!.rows.length} logged steps as run ${run.dir} (${log!.stage}${stage ? '' : ', from its metric names; --stage sets it'}); the dashboard shows it. Times: ${log!.time}`);
    for (const p of problems) r.log(`  note: ${p}`);
  }
  return 0;
}

/**
 * The copy's adapter_config.json names its base so that the copy finds it: `--base` when given
 * (a folder or a Hub id: an adapter saved without one, `base_model_name_or_path: null`, needs it);
 * else a base named relative to the adapter is rewritten relative to the copy. A Hub id or an
 * absolute path stays as it is (the loader resolves a Hub id in the cache).
 */
function setBase(from: string, copy: string, base: string | undefined): void {
  const file = path.join(copy, 'adapter_config.json');
  const ac = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (base !== undefined) {
    const dir = resolveModelPath(base);
    if (!dir || !fs.existsSync(path.join(dir, 'config.json'))) throw new UsageError(`--base ${base}: not a model folder nor a model in the Hugging Face cache (rlhf download ${base} fetches one)`);
    ac.base_model_name_or_path = fs.existsSync(path.resolve(base)) ? path.relative(copy, path.resolve(base)) : base;
  } else {
    const named = String(ac.base_model_name_or_path ?? '');
    if (!named || path.isAbsolute(named) || !fs.existsSync(path.join(path.resolve(from, named), 'config.json'))) return;
    ac.base_model_name_or_path = path.relative(copy, path.resolve(from, named));
  }
  fs.writeFileSync(file, JSON.stringify(ac, null, 2) + '\n');
}

/** A Trainer's log as a completed run of this project: run.json and metrics.jsonl, the imported model as its final model. */
function importLog(log: TrainerLog, runsDir: string, id: string, from: string, model: string | undefined): RunDir {
  const run = RunDir.create(runsDir, { stage: log.stage, config: { imported_from: from, trainer_log: log.file, global_step: log.globalStep, time: log.time, summary: log.summary }, parent_model: null, final_model: model }, id);
  writeFileAtomic(run.metricsFile, log.rows.map((m) => JSON.stringify(m) + '\n').join(''));
  run.update({ status: 'completed', started_at: new Date(log.startedAt * 1000).toISOString(), ended_at: new Date(log.endedAt * 1000).toISOString() });
  run.unlock();
  return run;
}
