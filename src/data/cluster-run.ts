/**
 * A run submitted to a cluster: `<run>/slurm.json`, written by `rlhf submit` before the job is
 * queued (so the Runs view shows the run from the moment it is submitted, before the stage has
 * written its run.json) and updated with the job's last seen Slurm state:
 *
 *   {"scheduler": "slurm", "job_id": "12" | "12_0", "stage": "sft", "argv": [...], "script": "job.sh",
 *    "ssh"?: "login1", "submitted_at": ISO, "after"?: ["11"], "sweep"?: {"index": 0, "values": {...}},
 *    "state"?: {"name": "RUNNING", "reason"?: "Resources", "node"?: "n1", "exit_code"?: "0:0",
 *               "restarts"?: 0, "updated_at": ISO}}
 *
 * Pure Node and bounded reads, like run.json; querying Slurm is src/cluster's business.
 */
import * as path from 'path';
import { readRegularFile, writeFileAtomic } from './durable';

/** Slurm's job states (squeue %T / scontrol JobState / sacct State). */
export const FINAL_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED', 'LOST'] as const;

export interface JobState {
  /** PENDING, RUNNING, COMPLETING, REQUEUED, SUSPENDED, or one of FINAL_STATES. */
  name: string;
  reason?: string;
  node?: string;
  exit_code?: string;
  restarts?: number;
  /** The last lines of the job's output when it failed (what the user needs to see). */
  error?: string;
  updated_at: string;
}

/** What the job asked Slurm for (reused when the run is resubmitted). */
export interface JobResources {
  partition?: string;
  /** Slurm's --time: minutes, or [D-]HH:MM[:SS]. */
  time?: string;
  cpusPerTask?: number;
  gpusPerNode?: number;
  mem?: string;
}

export interface ClusterJob {
  scheduler: 'slurm';
  job_id: string;
  stage: string;
  argv: string[];
  script: string;
  ssh?: string;
  submitted_at: string;
  after?: string[];
  sweep?: { index: number; values: Record<string, string> };
  resources?: JobResources;
  state?: JobState;
}

export const CLUSTER_JSON = 'slurm.json';
const MAX_BYTES = 1 << 20;

export function isFinalState(name: string | undefined): boolean {
  return name !== undefined && (FINAL_STATES as readonly string[]).includes(name);
}

export function readClusterJob(runDir: string): ClusterJob | undefined {
  let v: unknown;
  try {
    v = JSON.parse(readRegularFile(path.join(runDir, CLUSTER_JSON), MAX_BYTES, { noFollow: true }).toString('utf8'));
  } catch {
    return undefined;
  }
  const o = v as Partial<ClusterJob> | null;
  if (!o || typeof o !== 'object' || o.scheduler !== 'slurm' || typeof o.job_id !== 'string' || typeof o.stage !== 'string' || !Array.isArray(o.argv)) return undefined;
  const s = o.state;
  const state = s && typeof s === 'object' && typeof s.name === 'string' ? s : undefined;
  return { ...(o as ClusterJob), state };
}

export function writeClusterJob(runDir: string, job: ClusterJob): void {
  writeFileAtomic(path.join(runDir, CLUSTER_JSON), JSON.stringify(job, null, 2) + '\n');
}

/**
 * What the Runs view says of a cluster run: "PENDING (Resources)", "RUNNING on n1",
 * "COMPLETED", "FAILED (exit 1:0)".
 */
export function describeJobState(s: JobState | undefined): string {
  if (!s) return 'SUBMITTED';
  if (s.name === 'PENDING') return s.reason && s.reason !== 'None' ? `PENDING (${s.reason})` : 'PENDING';
  if (s.name === 'RUNNING' || s.name === 'COMPLETING') return s.node ? `${s.name} on ${s.node}` : s.name;
  if (s.name === 'FAILED' && s.exit_code && s.exit_code !== '0:0') return `FAILED (exit ${s.exit_code})`;
  return s.name;
}

/** The run's status for icons: pending / running while Slurm holds it, then the final outcome. */
export function clusterStatus(s: JobState | undefined): 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' {
  const n = s?.name;
  if (n === undefined || n === 'PENDING' || n === 'REQUEUED' || n === 'SUSPENDED') return 'pending';
  if (n === 'RUNNING' || n === 'COMPLETING') return 'running';
  if (n === 'COMPLETED') return 'completed';
  if (n === 'CANCELLED') return 'cancelled';
  return 'failed';
}
