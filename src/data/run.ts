/**
 * A training run on disk, as fixed in shared/spec/formats.md:
 *   <runs>/<id>/run.json        stage, config, backend, status, start/end times, parent model
 *   <runs>/<id>/metrics.jsonl   {"step", "time", ...metrics} per logged step
 *   <runs>/<id>/checkpoints/    step-NNNNNN/ (model + optimizer + trainer state) and final/
 *   <runs>/<id>/run.lock        held by the one process that writes the run (pid, host)
 * Pure Node: the extension host reads runs with it too, so every read is bounded (run.json at most
 * 1 MiB, only regular files, never through a symlink) and a malformed run.json is an error for that
 * run alone.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LockOwner, describeOwner, fsyncDir, openRegular, readRegularFile, readTail, recoverTemporary, tryLock, unlock, writeFileAtomic } from './durable';

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';
const STATUSES: RunStatus[] = ['running', 'completed', 'failed', 'cancelled'];

export interface RunInfo {
  id: string;
  stage: string;
  status: RunStatus;
  config: Record<string, unknown>;
  backend?: string;
  /** The GPU the backend ran on (WebGPU: vendor, architecture, description). */
  adapter?: string;
  parent_model?: string | null;
  started_at: string;
  ended_at?: string | null;
  error?: string;
  final_model?: string;
  resumed_at?: string[];
  /** The cost estimated before training and what training took (trainer.ts). */
  cost?: RunCost;
}

export const RUN_JSON_MAX_BYTES = 1 << 20;
/** samples.jsonl stops growing at this size. */
export const SAMPLES_MAX_BYTES = 64 << 20;

/** Predicted and actual FLOPs and seconds of a run's training loop (evaluations included). */
export interface RunCost {
  estimate?: { flops: number; seconds: number; source: string };
  actual?: { flops: number; seconds: number; tokens: number };
}

const secs = (s: number) => (s < 120 ? `${s.toPrecision(3)} s` : s < 7200 ? `${(s / 60).toPrecision(3)} min` : `${(s / 3600).toPrecision(3)} h`);
const tflop = (f: number) => `${(f / 1e12).toPrecision(3)} TFLOP`;

/** One line of predicted beside actual, for the Runs view's tooltip. */
export function costSummary(c: RunCost | undefined): string {
  if (!c?.estimate && !c?.actual) return '';
  const e = c.estimate, a = c.actual;
  const est = e ? (Number.isFinite(e.seconds) ? `estimated ${secs(e.seconds)} and ${tflop(e.flops)}` : `estimated ${tflop(e.flops)} (no measured speed)`) : '';
  return a ? `training took ${secs(a.seconds)} for ${tflop(a.flops)}${est ? `; ${est}` : ''}` : est;
}

export function newRunId(stage: string, now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stage}-${t}-${Math.random().toString(36).slice(2, 6)}`;
}

/** run.json's object, checked field by field: what is missing or mistyped is an error naming it. */
export function parseRunInfo(v: unknown, where: string): RunInfo {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: run.json must hold a JSON object`);
  const o = v as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof o[k] !== 'string') throw new Error(`${where}: run.json's "${k}" must be a string`);
    return o[k] as string;
  };
  const optStr = (k: string) => {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') throw new Error(`${where}: run.json's "${k}" must be a string`);
    return o[k] as string | null | undefined;
  };
  const status = str('status');
  if (!STATUSES.includes(status as RunStatus)) throw new Error(`${where}: run.json's status "${status.slice(0, 40)}" is not one of ${STATUSES.join(', ')}`);
  if (o.config !== undefined && (o.config === null || typeof o.config !== 'object' || Array.isArray(o.config))) throw new Error(`${where}: run.json's "config" must be an object`);
  if (o.resumed_at !== undefined && !(Array.isArray(o.resumed_at) && o.resumed_at.every((x) => typeof x === 'string'))) throw new Error(`${where}: run.json's "resumed_at" must be a list of strings`);
  return {
    ...(o as object),
    id: str('id'),
    stage: str('stage'),
    status: status as RunStatus,
    config: (o.config ?? {}) as Record<string, unknown>,
    backend: optStr('backend') ?? undefined,
    adapter: optStr('adapter') ?? undefined,
    parent_model: optStr('parent_model'),
    started_at: str('started_at'),
    ended_at: optStr('ended_at'),
    error: optStr('error') ?? undefined,
    final_model: optStr('final_model') ?? undefined,
    cost: o.cost !== null && typeof o.cost === 'object' && !Array.isArray(o.cost) ? (o.cost as RunCost) : undefined,
  };
}

/** The runs this process holds locks on, released at exit whatever happens. */
const held = new Set<string>();
process.on('exit', () => {
  for (const f of held) unlock(f);
});

export class RunDir {
  constructor(readonly dir: string) {}

  get runFile(): string {
    return path.join(this.dir, 'run.json');
  }
  get metricsFile(): string {
    return path.join(this.dir, 'metrics.jsonl');
  }
  get checkpointsDir(): string {
    return path.join(this.dir, 'checkpoints');
  }
  get lockFile(): string {
    return path.join(this.dir, 'run.lock');
  }

  static create(runsDir: string, info: Omit<RunInfo, 'id' | 'status' | 'started_at'>, id?: string): RunDir {
    const runId = id ?? newRunId(info.stage);
    const run = new RunDir(path.join(runsDir, runId));
    if (fs.existsSync(run.runFile)) throw new Error(`run ${run.dir} already exists`);
    fs.mkdirSync(run.checkpointsDir, { recursive: true });
    run.lock();
    run.write({ id: runId, status: 'running', started_at: new Date().toISOString(), ended_at: null, ...info });
    fs.writeFileSync(run.metricsFile, '');
    fsyncDir(run.dir);
    fsyncDir(path.dirname(run.dir));
    return run;
  }

  /**
   * Takes the run's lock: one process writes a run at a time. Refuses, naming the owner, when a
   * live process holds it; a lock whose process is gone is taken over.
   */
  lock(): void {
    if (held.has(this.lockFile)) return;
    const r = tryLock(this.lockFile, `writing ${path.basename(this.dir)}`);
    if (!r.ok) throw new RunLockedError(this.dir, r.owner);
    held.add(this.lockFile);
  }

  unlock(): void {
    if (!held.delete(this.lockFile)) return;
    unlock(this.lockFile);
  }

  /** Who holds the run's lock now (undefined when nobody, or when the holder is gone). */
  lockOwner(): LockOwner | undefined {
    const r = tryLock(this.lockFile, 'checking');
    if (r.ok) {
      unlock(this.lockFile);
      return undefined;
    }
    return r.owner;
  }

  read(): RunInfo {
    let text: string;
    try {
      text = readRegularFile(this.runFile, RUN_JSON_MAX_BYTES, { noFollow: true }).toString('utf8');
    } catch (e) {
      throw new Error(`${this.dir} is not a readable run (${(e as Error).message})`);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new Error(`${this.dir} is not a readable run (run.json is not valid JSON)`);
    }
    return parseRunInfo(v, this.dir);
  }

  write(info: RunInfo): void {
    writeFileAtomic(this.runFile, JSON.stringify(info, null, 2) + '\n');
  }

  update(patch: Partial<RunInfo>): RunInfo {
    const info = { ...this.read(), ...patch };
    this.write(info);
    return info;
  }

  appendMetrics(m: Record<string, number>): void {
    fs.appendFileSync(this.metricsFile, JSON.stringify(m) + '\n');
  }

  get samplesFile(): string {
    return path.join(this.dir, 'samples.jsonl');
  }

  /**
   * Appends one step's samples (spec: {"step", "prompt", "response", "score"?, "gold"?, "kl"?,
   * "advantage"?, "implicit_reward"?}); once the file holds SAMPLES_MAX_BYTES, further samples are
   * dropped (the metrics go on), so a long run cannot fill the disk with text.
   */
  appendSamples(rows: Record<string, unknown>[]): void {
    if (!rows.length) return;
    let size = 0;
    try {
      size = fs.statSync(this.samplesFile).size;
    } catch {
      /* the first samples */
    }
    if (size >= SAMPLES_MAX_BYTES) return;
    fs.appendFileSync(this.samplesFile, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  /** Drops metric (and sample) lines past `step` (after a resume from that step each file reads as one run). */
  truncateMetrics(step: number): void {
    this.truncateSteps(this.metricsFile, step);
    this.truncateSteps(this.samplesFile, step);
  }

  private truncateSteps(file: string, step: number): void {
    if (!fs.existsSync(file)) return;
    const kept = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => {
        if (!l.trim()) return false;
        try {
          return (JSON.parse(l) as { step: number }).step <= step;
        } catch {
          return false; // a line torn by a crash
        }
      });
    writeFileAtomic(file, kept.map((l) => l + '\n').join(''));
  }

  /** Every metrics line (the trainer's own reads); `tailBytes` reads only the end of the file. */
  readMetrics(tailBytes?: number): Record<string, number>[] {
    let text: string;
    try {
      text = tailBytes === undefined ? fs.readFileSync(this.metricsFile, 'utf8') : readTail(this.metricsFile, tailBytes, { noFollow: true });
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l.trim())
      .flatMap((l) => {
        try {
          const v = JSON.parse(l);
          return v && typeof v === 'object' && !Array.isArray(v) ? [v] : [];
        } catch {
          return [];
        }
      });
  }

  stepCheckpointDir(step: number): string {
    return path.join(this.checkpointsDir, `step-${String(step).padStart(6, '0')}`);
  }

  /** Complete step checkpoints (those with trainer_state.json), oldest first. */
  stepCheckpoints(): { step: number; dir: string }[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.checkpointsDir);
    } catch {
      return [];
    }
    return names
      .filter((n) => /^step-\d+$/.test(n))
      .map((n) => ({ step: Number(n.slice(5)), dir: path.join(this.checkpointsDir, n) }))
      .filter((c) => isRegular(path.join(c.dir, 'trainer_state.json')))
      .sort((a, b) => a.step - b.step);
  }

  latestCheckpoint(): { step: number; dir: string } | undefined {
    return this.stepCheckpoints().at(-1);
  }

  /**
   * After a process was killed mid-checkpoint: restores a checkpoint a crash left aside between its
   * two renames, and removes half-written temporary folders. Never removes the only good copy.
   */
  cleanTemporary(): string[] {
    return recoverTemporary(this.checkpointsDir);
  }

  /** Keeps the newest `keep` step checkpoints. */
  pruneCheckpoints(keep: number): void {
    const all = this.stepCheckpoints();
    for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.dir, { recursive: true, force: true });
  }
}

export class RunLockedError extends Error {
  constructor(readonly dir: string, readonly owner: LockOwner | undefined) {
    super(`${path.basename(dir)} is being written by ${describeOwner(owner)}; wait for it to finish or cancel it (run.lock in ${dir})`);
  }
}

function isRegular(file: string): boolean {
  try {
    fs.closeSync(openRegular(file, { noFollow: true }).fd);
    return true;
  } catch {
    return false;
  }
}
