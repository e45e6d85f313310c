/**
 * A training log kept as TensorBoard event files (src/data/tfevents.ts), read into this project's
 * metrics rows like a Trainer's trainer_state.json (src/data/trainer-log.ts): TRL and every Hugging
 * Face Trainer with `report_to=tensorboard` write them under `output_dir/runs/<date>_<host>/`, with
 * the Trainer's names rewritten (`train/x` for a logged `x`, `eval/x` for `eval_x`); OpenRLHF with
 * `--use_tensorboard DIR` writes `train/x` and `eval/x` too. Unlike trainer_state.json, the events
 * carry the writer's clock, so every row keeps the time it was logged at.
 *
 * A resumed run starts a new event file (a new `runs/<date>_<host>/` for a Trainer): the files are
 * read in the order they were started, a later value for the same step and name replacing an
 * earlier one, as the resumed run re-logs the steps after its checkpoint. Pure Node, no engine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readEventFile, EventFile } from './tfevents';
import { SUMMARY_KEYS, TrainerLog, stageOf } from './trainer-log';

const EVENT_FILE = /^events\.out\.tfevents\./;
const MAX_DEPTH = 4;
const MAX_FILES = 1000;

/** The event files under a folder (its `runs/` and deeper, a few levels), oldest first by name. */
export function findEventFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= MAX_FILES) return;
      const p = path.join(d, e.name);
      if (e.isFile() && EVENT_FILE.test(e.name)) out.push(p);
      else if (e.isDirectory() && depth < MAX_DEPTH && !e.name.startsWith('.') && e.name !== 'node_modules') walk(p, depth + 1);
    }
  };
  walk(dir, 0);
  return out.sort();
}

/**
 * A scalar's tag as a metrics.jsonl name: after the Trainer's rewrite_logs, train/x is x and eval/x
 * stays; characters other than letters, digits, _ . - and / (TensorBoard allows any: "bleu/split:dev")
 * become _, the names the dashboard draws and exports. A bare "step" or "time" tag becomes "_step"/"_time".
 */
export function metricName(tag: string): string {
  // (a logged "step" or "time" keeps its prefix: those two names are every row's own)
  const name = tag.startsWith('train/') && !['train/step', 'train/time'].includes(tag) ? tag.slice('train/'.length) : tag;
  if (name === 'step' || name === 'time') return `_${name}`;
  return name.replace(/[^\w.\-/]/g, '_').split('/').map((w) => (w === '' || w === '.' || w === '..' ? '_' : w)).join('/').slice(0, 100);
}

export interface TensorboardLog extends TrainerLog {
  files: string[];
  /** Files whose read stopped before their end, with the reason (a truncated last record is normal while a run writes). */
  problems: string[];
}

/** The event files of one run as metrics rows, by step. `folder` names the log in messages. */
export function readTensorboardLog(folder: string, files: string[]): TensorboardLog {
  if (!files.length) throw new Error(`${folder}: no TensorBoard event files (events.out.tfevents.*)`);
  const read: EventFile[] = files.map((f) => readEventFile(f));
  read.sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0) || a.file.localeCompare(b.file));
  const byStep = new Map<number, Record<string, number>>();
  const summary: Record<string, number> = {};
  let startedAt = Infinity;
  let endedAt = -Infinity;
  for (const ef of read) {
    if (ef.startedAt !== undefined) startedAt = Math.min(startedAt, ef.startedAt);
    for (const s of ef.scalars) {
      endedAt = Math.max(endedAt, s.wallTime);
      const name = metricName(s.tag);
      if (SUMMARY_KEYS.includes(name)) {
        summary[name] = s.value;
        continue;
      }
      if (!Number.isFinite(s.value)) continue; // metrics.jsonl holds numbers; a NaN loss is not a point to draw
      const row = byStep.get(s.step) ?? { step: s.step, time: s.wallTime };
      row[name] = s.value;
      row.time = Math.max(row.time, s.wallTime);
      byStep.set(s.step, row);
    }
  }
  const rows = [...byStep.values()].sort((a, b) => a.step - b.step);
  if (!rows.length) throw new Error(`${folder}: the event files hold no scalars (${files.length} file${files.length === 1 ? '' : 's'} read)`);
  if (!Number.isFinite(startedAt)) startedAt = rows[0].time;
  return {
    file: folder,
    files: read.map((r) => r.file),
    problems: read.filter((r) => r.stoppedEarly).map((r) => `${r.file}: ${r.stoppedEarly}`),
    rows: rows.map(({ step, time, ...rest }) => ({ step, time, ...rest })),
    summary,
    stage: stageOf(new Set(rows.flatMap((r) => Object.keys(r)))),
    globalStep: rows.at(-1)!.step,
    time: 'the wall times the event files record',
    startedAt,
    endedAt: Math.max(endedAt, startedAt),
  };
}
