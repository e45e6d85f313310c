/**
 * A training run on disk, as fixed in shared/spec/formats.md:
 *   <runs>/<id>/run.json        stage, config, backend, status, start/end times, parent model
 *   <runs>/<id>/metrics.jsonl   {"step", "time", ...metrics} per logged step
 *   <runs>/<id>/checkpoints/    step-NNNNNN/ (model + optimizer + trainer state) and final/
 * Pure Node: the extension host reads runs with it too.
 */
import * as fs from 'fs';
import * as path from 'path';

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

export interface RunInfo {
  id: string;
  stage: string;
  status: RunStatus;
  config: Record<string, unknown>;
  backend?: string;
  parent_model?: string | null;
  started_at: string;
  ended_at?: string | null;
  error?: string;
  final_model?: string;
  resumed_at?: string[];
}

export function newRunId(stage: string, now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stage}-${t}-${Math.random().toString(36).slice(2, 6)}`;
}

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

  static create(runsDir: string, info: Omit<RunInfo, 'id' | 'status' | 'started_at'>, id?: string): RunDir {
    const runId = id ?? newRunId(info.stage);
    const run = new RunDir(path.join(runsDir, runId));
    if (fs.existsSync(run.runFile)) throw new Error(`run ${run.dir} already exists`);
    fs.mkdirSync(run.checkpointsDir, { recursive: true });
    run.write({ id: runId, status: 'running', started_at: new Date().toISOString(), ended_at: null, ...info });
    fs.writeFileSync(run.metricsFile, '');
    return run;
  }

  read(): RunInfo {
    try {
      return JSON.parse(fs.readFileSync(this.runFile, 'utf8')) as RunInfo;
    } catch {
      throw new Error(`${this.dir} is not a run directory (no readable run.json)`);
    }
  }

  write(info: RunInfo): void {
    const tmp = `${this.runFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
    fs.renameSync(tmp, this.runFile);
  }

  update(patch: Partial<RunInfo>): RunInfo {
    const info = { ...this.read(), ...patch };
    this.write(info);
    return info;
  }

  appendMetrics(m: Record<string, number>): void {
    fs.appendFileSync(this.metricsFile, JSON.stringify(m) + '\n');
  }

  /** Drops metric lines past `step` (after a resume from that step the file reads as one run). */
  truncateMetrics(step: number): void {
    if (!fs.existsSync(this.metricsFile)) return;
    const kept = fs
      .readFileSync(this.metricsFile, 'utf8')
      .split('\n')
      .filter((l) => {
        if (!l.trim()) return false;
        try {
          return (JSON.parse(l) as { step: number }).step <= step;
        } catch {
          return false; // a line torn by a crash
        }
      });
    fs.writeFileSync(this.metricsFile, kept.map((l) => l + '\n').join(''));
  }

  readMetrics(): Record<string, number>[] {
    if (!fs.existsSync(this.metricsFile)) return [];
    return fs
      .readFileSync(this.metricsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
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
    if (!fs.existsSync(this.checkpointsDir)) return [];
    return fs
      .readdirSync(this.checkpointsDir)
      .filter((n) => /^step-\d+$/.test(n))
      .map((n) => ({ step: Number(n.slice(5)), dir: path.join(this.checkpointsDir, n) }))
      .filter((c) => fs.existsSync(path.join(c.dir, 'trainer_state.json')))
      .sort((a, b) => a.step - b.step);
  }

  latestCheckpoint(): { step: number; dir: string } | undefined {
    return this.stepCheckpoints().at(-1);
  }

  /** Removes half-written checkpoints (temporary folders) left by a process that was killed. */
  cleanTemporary(): string[] {
    if (!fs.existsSync(this.checkpointsDir)) return [];
    const stale = fs.readdirSync(this.checkpointsDir).filter((n) => n.startsWith('.tmp-'));
    for (const n of stale) fs.rmSync(path.join(this.checkpointsDir, n), { recursive: true, force: true });
    return stale;
  }

  /** Keeps the newest `keep` step checkpoints. */
  pruneCheckpoints(keep: number): void {
    const all = this.stepCheckpoints();
    for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.dir, { recursive: true, force: true });
  }
}
