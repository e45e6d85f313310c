/**
 * What the Runs view shows, as pure functions over the runs folder: runs grouped by stage with
 * status, key metric and age; a run's children are its checkpoints.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RunDir, RunInfo, costSummary } from './run';
import { stageName, stageRank } from './stages';
import { Vote, pairResults } from './evaluation';
import { readVotes } from './evaluation-file';
import { ClusterJob, clusterStatus, describeJobState, readClusterJob } from './cluster-run';

export interface RunSummary {
  dir: string;
  info: RunInfo;
  metric?: string;
  checkpoints: { label: string; dir: string }[];
  /** Blind evaluations of this run's models: one line each, for the tooltip. */
  evaluations?: string[];
  /** A run submitted to a cluster: its job and the job's last seen state (slurm.json). */
  cluster?: ClusterJob;
}

export type RunNode =
  | { kind: 'stage'; id: string; stage: string; label: string; description: string }
  | { kind: 'run'; id: string; dir: string; stage: string; status: string; label: string; description: string; tooltip: string; resumable: boolean; cluster?: boolean }
  | { kind: 'checkpoint'; id: string; dir: string; label: string };


/** The stage's headline number from the last metrics line(s). */
export function keyMetric(stage: string, metrics: Record<string, number>[]): string | undefined {
  const last = (k: string) => [...metrics].reverse().find((m) => m[k] !== undefined)?.[k];
  const f = (x: number | undefined, d = 3) => (x === undefined ? undefined : x.toFixed(d));
  if (stage === 'rm') return last('eval/accuracy') !== undefined ? `eval acc ${f(last('eval/accuracy'))}` : last('accuracy') !== undefined ? `acc ${f(last('accuracy'))}` : undefined;
  if (stage === 'dpo') {
    const acc = last('eval/rewards/accuracies') ?? last('rewards/accuracies');
    return acc !== undefined ? `reward acc ${f(acc)} · margin ${f(last('eval/rewards/margins') ?? last('rewards/margins'), 2)}` : undefined;
  }
  if (stage === 'ppo') return last('objective/scores') !== undefined ? `score ${f(last('objective/scores'))} · KL ${f(last('objective/kl'), 2)}` : undefined;
  if (stage === 'grpo' || stage === 'rloo') return last('reward') !== undefined ? `reward ${f(last('reward'))}${last('kl') !== undefined ? ` · KL ${f(last('kl'), 2)}` : ''}` : undefined;
  const ev = last('eval/loss');
  return ev !== undefined ? `eval loss ${f(ev)}` : last('loss') !== undefined ? `loss ${f(last('loss'))}` : undefined;
}

export function age(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** The Runs view reads at most this many runs, and only the end of each metrics.jsonl. */
export const MAX_RUNS = 2000;
export const METRICS_TAIL_BYTES = 64 << 10;

/** The Runs view re-reads every 2 s while a stage trains: a votes file is read again only when it changed. */
const votesCache = new Map<string, { key: string; votes: Vote[] }>();
function votesOf(file: string): Vote[] | undefined {
  try {
    const st = fs.statSync(file);
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const hit = votesCache.get(file);
    if (hit?.key === key) return hit.votes;
    const votes = readVotes(file).votes;
    votesCache.set(file, { key, votes });
    return votes;
  } catch {
    votesCache.delete(file);
    return undefined;
  }
}

/**
 * Each blind evaluation's result for the models that live in a run folder: "blind NAME: 62.5%
 * [40.1, 80.9] against models/sft (8 votes)", keyed by run folder.
 */
export function evaluationLines(votes: { workspace: string; files: string[] }, runsDir: string): Map<string, string[]> {
  const root = path.resolve(runsDir) + path.sep;
  const out = new Map<string, string[]>();
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  for (const file of votes.files) {
    const all = votesOf(file);
    if (!all) continue; // a file that cannot be read costs its lines only
    const names = [...new Set(all.map((v) => v.evaluation ?? ''))];
    for (const name of names) {
      for (const p of pairResults(all.filter((v) => (v.evaluation ?? '') === name))) {
        for (const [me, other, rate, low, high] of [[p.a, p.b, p.win_rate, p.low, p.high], [p.b, p.a, 1 - p.win_rate, 1 - p.high, 1 - p.low]] as const) {
          const abs = path.resolve(votes.workspace, me);
          if (!abs.startsWith(root) || !Number.isFinite(rate)) continue;
          const runDir = root + abs.slice(root.length).split(path.sep)[0];
          const line = `blind ${name || 'evaluation'}: ${me} wins ${pct(rate)} [95% CI ${pct(low)}, ${pct(high)}] against ${other} (${p.n} votes)`;
          out.set(runDir, [...(out.get(runDir) ?? []), line]);
        }
      }
    }
  }
  return out;
}

export function listRuns(runsDir: string, votes?: { workspace: string; files: string[] }): RunSummary[] {
  const evals = votes ? evaluationLines(votes, runsDir) : new Map<string, string[]>();
  let names: string[];
  try {
    names = fs.readdirSync(runsDir);
  } catch {
    return [];
  }
  const out: RunSummary[] = [];
  for (const name of names.slice(0, MAX_RUNS)) {
    // each run on its own: a bad run.json (null, a FIFO, /dev/zero, 1 GB) costs that run only
    const run = new RunDir(path.join(runsDir, name));
    const cluster = readClusterJob(run.dir);
    let info: RunInfo;
    try {
      info = run.read();
    } catch {
      // a cluster run whose job has not started the stage yet: shown from its slurm.json
      if (!cluster || cluster.job_id === 'submitting') continue;
      const st = clusterStatus(cluster.state);
      out.push({ dir: run.dir, info: { id: name, stage: cluster.stage, status: st === 'pending' ? 'running' : st, config: {}, started_at: cluster.submitted_at }, checkpoints: [], cluster });
      continue;
    }
    const checkpoints = run.stepCheckpoints().map((c) => ({ label: `step ${c.step}`, dir: c.dir }));
    const final = path.join(run.checkpointsDir, 'final');
    if (fs.existsSync(path.join(final, 'config.json'))) checkpoints.push({ label: 'final', dir: final });
    const evaluations = evals.get(path.resolve(run.dir));
    out.push({ dir: run.dir, info, metric: keyMetric(info.stage, run.readMetrics(METRICS_TAIL_BYTES).slice(-50)), checkpoints, ...(evaluations ? { evaluations } : {}), ...(cluster && cluster.job_id !== 'submitting' ? { cluster } : {}) });
  }
  return out.sort((a, b) => b.info.started_at.localeCompare(a.info.started_at));
}

export function runStageNodes(runs: RunSummary[]): RunNode[] {
  const stages = [...new Set(runs.map((r) => r.info.stage))].sort((a, b) => stageRank(a) - stageRank(b));
  return stages.map((stage) => {
    const n = runs.filter((r) => r.info.stage === stage).length;
    return { kind: 'stage' as const, id: `runs:${stage}`, stage, label: stageName(stage), description: `${n} run${n === 1 ? '' : 's'}` };
  });
}

export function runNodes(runs: RunSummary[], stage: string, now = Date.now()): RunNode[] {
  return runs
    .filter((r) => r.info.stage === stage)
    .map((r) => {
      const c = r.cluster;
      // a cluster run's status is its job's while Slurm holds it; then the stage's own (a job that
      // completed can hold a cancelled run); a job that failed before the stage wrote anything is failed
      const jobStatus = c ? clusterStatus(c.state) : undefined;
      const status = jobStatus === 'pending' || jobStatus === 'running' || (jobStatus && jobStatus !== 'completed' && r.info.status === 'running') ? jobStatus : r.info.status;
      const job = c ? `${describeJobState(c.state)} · job ${c.job_id}${c.ssh ? ` on ${c.ssh}` : ''}` : '';
      const sweep = c?.sweep ? Object.entries(c.sweep.values).map(([k, v]) => `${k}=${v}`).join(' ') : '';
      return {
        kind: 'run' as const,
        id: `run:${r.dir}`,
        dir: r.dir,
        stage,
        status,
        label: r.info.id,
        description: [c ? describeJobState(c.state) : r.info.status, sweep, r.metric, age(r.info.ended_at ?? r.info.started_at, now)].filter(Boolean).join(' · '),
        tooltip: [`${r.info.id} (${r.info.stage})`, c ? `Slurm: ${job}${c.after?.length ? ` (after ${c.after.join(', ')})` : ''}` : '', sweep ? `sweep: ${sweep}` : '', c?.state?.error ? `job error: ${c.state.error}` : '', `status: ${r.info.status}`, r.info.backend ? `backend: ${r.info.backend}${r.info.adapter ? ` on ${r.info.adapter}` : ''}` : '', r.info.parent_model ? `parent: ${r.info.parent_model}` : '', r.info.error ? `error: ${r.info.error}` : '', costSummary(r.info.cost), ...(r.evaluations ?? []), r.dir].filter(Boolean).join('\n'),
        resumable: status !== 'completed' && status !== 'pending' && status !== 'running' && r.checkpoints.some((cp) => cp.label !== 'final'),
        ...(c ? { cluster: true } : {}),
      };
    });
}

export function checkpointNodes(run: RunSummary): RunNode[] {
  return run.checkpoints.map((c) => ({ kind: 'checkpoint' as const, id: `ckpt:${c.dir}`, dir: c.dir, label: c.label }));
}
