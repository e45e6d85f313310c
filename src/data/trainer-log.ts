/**
 * The training log a Hugging Face Trainer keeps (TRL's SFT, reward, DPO, GRPO, RLOO and PPO
 * trainers are Trainers): `trainer_state.json` in its output folder and in every `checkpoint-N/`,
 * whose `log_history` holds one entry per logging step, evaluations as entries of their own with
 * `eval_` names, and at the end of training a summary entry (`train_runtime`, `train_loss`, ...).
 *
 * Read here into metrics.jsonl rows as this project writes them: one row per step, `eval_x`
 * named `eval/x`, TRL's other names kept (ours follow TRL's). The log records no wall-clock time:
 * when the summary gives the run's length, a row's time is placed in proportion to its step
 * between start and end; otherwise every row carries the file's time. Pure Node, no engine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readRegularFile } from './durable';

export interface TrainerLog {
  file: string;
  /** metrics.jsonl rows, by step. */
  rows: Record<string, number>[];
  /** The end-of-training entry (train_runtime, train_loss, ...), when the run finished. */
  summary: Record<string, number>;
  /** The stage its metric names point to: ppo, grpo, dpo, rm or sft. */
  stage: string;
  globalStep: number;
  /** How the rows' times were made. */
  time: 'interpolated from train_runtime' | 'the file time (the log records none)' | 'the wall times the event files record';
  startedAt: number;
  endedAt: number;
}

const MAX_BYTES = 256 << 20;
/** Keys of the summary entry, never of a logging step. */
export const SUMMARY_KEYS = ['train_runtime', 'train_samples_per_second', 'train_steps_per_second', 'total_flos', 'train_loss'];

/** trainer_state.json in a folder, or else in its latest checkpoint-N/ (the one of the highest N). */
export function findTrainerState(dir: string): string | undefined {
  const direct = path.join(dir, 'trainer_state.json');
  if (fs.existsSync(direct)) return direct;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const latest = names
    .map((n) => ({ n, step: /^checkpoint-(\d+)$/.exec(n)?.[1] }))
    .filter((x) => x.step !== undefined && fs.existsSync(path.join(dir, x.n, 'trainer_state.json')))
    .sort((a, b) => Number(b.step) - Number(a.step))[0];
  return latest && path.join(dir, latest.n, 'trainer_state.json');
}

/** The stage whose metric names a log carries (TRL's names). */
export function stageOf(keys: Set<string>): string {
  if (keys.has('objective/kl') || keys.has('objective/scores') || keys.has('objective/rlhf_reward')) return 'ppo';
  if (keys.has('reward') && keys.has('reward_std')) return 'grpo';
  if (keys.has('rewards/chosen') || keys.has('rewards/margins')) return 'dpo';
  if (keys.has('accuracy') && !keys.has('mean_token_accuracy')) return 'rm';
  return 'sft';
}

export function readTrainerLog(file: string): TrainerLog {
  let state: unknown;
  try {
    state = JSON.parse(readRegularFile(file, MAX_BYTES).toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const history = (state as { log_history?: unknown })?.log_history;
  if (!Array.isArray(history)) throw new Error(`${file} has no log_history: not a Trainer's trainer_state.json`);
  const byStep = new Map<number, Record<string, number>>();
  let summary: Record<string, number> = {};
  for (const entry of history) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) continue;
    const step = (entry as Record<string, unknown>).step;
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) continue;
    const numbers = Object.entries(entry as Record<string, unknown>).filter((kv): kv is [string, number] => typeof kv[1] === 'number' && Number.isFinite(kv[1]));
    if (numbers.some(([k]) => k === 'train_runtime')) {
      summary = Object.fromEntries(numbers);
      continue;
    }
    const row = byStep.get(step) ?? { step };
    for (const [k, v] of numbers) {
      if (k === 'step' || SUMMARY_KEYS.includes(k)) continue;
      row[k.startsWith('eval_') ? `eval/${k.slice(5)}` : k] = v;
    }
    byStep.set(step, row);
  }
  const rows = [...byStep.values()].sort((a, b) => a.step - b.step);
  const keys = new Set(rows.flatMap((r) => Object.keys(r)));
  const globalStep = Number((state as { global_step?: unknown }).global_step) || rows.at(-1)?.step || 0;
  const endedAt = fs.statSync(file).mtimeMs / 1000;
  const runtime = summary.train_runtime;
  const interpolated = runtime > 0 && globalStep > 0;
  const startedAt = interpolated ? endedAt - runtime : endedAt;
  for (const r of rows) r.time = interpolated ? startedAt + (runtime * Math.min(r.step, globalStep)) / globalStep : endedAt;
  return {
    file,
    rows: rows.map(({ step, time, ...rest }) => ({ step, time, ...rest })),
    summary,
    stage: stageOf(keys),
    globalStep,
    time: interpolated ? 'interpolated from train_runtime' : 'the file time (the log records none)',
    startedAt,
    endedAt,
  };
}
