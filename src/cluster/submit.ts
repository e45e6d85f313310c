/**
 * Runs as Slurm jobs. A job is one `rlhf` stage command writing into its run folder, which must be
 * on a filesystem the compute nodes share: metrics, samples and checkpoints then reach the editor
 * exactly as for a local run. Before anything is queued the job script is written into the run
 * folder (what ran can be read there) with slurm.json beside it.
 *
 *   chain   one job per stage, each held until every job of the chain is queued, linked with
 *           --dependency=afterok; if any submission fails, the ones queued are cancelled and the
 *           folders written are removed: a chain is all submitted or none of it
 *   sweep   one job array; task i runs combination i in <base>-<i>
 *   requeue --requeue: a job requeued (preempted, `scontrol requeue`, or by itself when Slurm warns
 *           that its time is nearly up) resumes from its run's last checkpoint
 */
import * as fs from 'fs';
import * as path from 'path';
import { ClusterJob, CLUSTER_JSON, JobResources, JobState, isFinalState, readClusterJob, writeClusterJob } from '../data/cluster-run';
import { RunDir } from '../data/run';
import { readTail } from '../data/durable';
import { ClusterError, Shell, jobStates, partitions, release, sbatch, scancel, shellQuote } from './slurm';

export type Resources = JobResources;

/** One run of a job: its folder and the rlhf command that fills it. */
export interface TaskPlan {
  runId: string;
  argv: string[];
  /** A sweep's combination (shown in the Runs view). */
  values?: Record<string, string>;
}

/** One Slurm job: a single run, or a job array when it has several tasks (a sweep). */
export interface JobPlan {
  stage: string;
  runsDir: string;
  tasks: TaskPlan[];
  /** Indices of earlier jobs of the same submission that must complete first. */
  after: number[];
}

export interface SubmitContext {
  shell: Shell;
  resources: Resources;
  /** The folder relative paths in the commands are relative to (the job starts there). */
  cwd: string;
  /** The node binary and the rlhf CLI as the compute nodes see them (a shared filesystem). */
  node: string;
  cli: string;
  now?: Date;
  /** Called once the submission's checks have passed, before the first job is written or queued (rlhf submit prints the cost there). */
  beforeQueue?: () => void;
}

export interface Submitted {
  jobId: string;
  stage: string;
  runDirs: string[];
}

/** Seconds before the time limit at which Slurm tells the job to checkpoint and requeue itself. */
export const TIME_WARNING_SECONDS = 120;

const q = shellQuote;

/** sbatch options for the resources asked for (as #SBATCH lines in a job script, or on sbatch's command line). */
export function resourceOptions(r: Resources): string[] {
  return [
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.time ? [`--time=${r.time}`] : []),
    ...(r.cpusPerTask ? [`--cpus-per-task=${r.cpusPerTask}`] : []),
    ...(r.gpusPerNode ? [`--gpus-per-node=${r.gpusPerNode}`] : []),
    ...(r.mem ? [`--mem=${r.mem}`] : []),
  ];
}

/** The job script: plain bash, readable, with every choice visible. */
export function jobScript(job: JobPlan, ctx: SubmitContext, jobName: string): string {
  const array = job.tasks.length > 1;
  const base = array ? job.tasks[0].runId.replace(/-0$/, '') : job.tasks[0].runId;
  const out = array ? path.join(job.runsDir, `${base}-%a`, 'slurm-%A_%a.out') : path.join(job.runsDir, base, 'slurm-%j.out');
  const r = ctx.resources;
  const lines = [
    '#!/bin/bash',
    `# Written by \`rlhf submit\` on ${(ctx.now ?? new Date()).toISOString()}. Submitted with sbatch as it is here.`,
    `#SBATCH --job-name=${jobName}`,
    `#SBATCH --output=${out}`,
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    `#SBATCH --signal=B:USR1@${TIME_WARNING_SECONDS}`,
    ...(array ? [`#SBATCH --array=0-${job.tasks.length - 1}`] : []),
    ...resourceOptions(r).map((o) => `#SBATCH ${o}`),
    '',
    `cd ${q(ctx.cwd)} || exit 3`,
    `RLHF=(${q(ctx.node)} ${q(ctx.cli)})`,
    'case "${SLURM_ARRAY_TASK_ID:-0}" in',
    ...job.tasks.map((t, i) => `  ${i}) RUN_DIR=${q(path.join(job.runsDir, t.runId))}; STAGE=(${t.argv.map(q).join(' ')}) ;;`),
    '  *) echo "rlhf: no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 3 ;;',
    'esac',
    `if [ ! -f "$RUN_DIR/${CLUSTER_JSON}" ]; then`,
    '  echo "rlhf: $RUN_DIR is not visible on $(hostname): the run folder must be on a filesystem the compute nodes share" >&2; exit 3',
    'fi',
    'echo "rlhf: job ${SLURM_JOB_ID} on $(hostname) at $(date -Is), restart ${SLURM_RESTART_COUNT:-0}"',
    '# a run that has a checkpoint (this job was requeued) resumes from it; one that has none starts over',
    'if [ "${STAGE[0]}" != resume ] && [ -f "$RUN_DIR/run.json" ]; then',
    '  if ls -d "$RUN_DIR"/checkpoints/step-* >/dev/null 2>&1; then STAGE=(resume "$RUN_DIR");',
    '  else rm -f "$RUN_DIR/run.json" "$RUN_DIR/metrics.jsonl" "$RUN_DIR/samples.jsonl"; fi',
    'fi',
    'rm -f "$RUN_DIR/slurm.exit"',
    '"${RLHF[@]}" "${STAGE[@]}" &',
    'child=$!',
    '# cancel and requeue signal every process of the job: the stage checkpoints and stops by itself',
    "trap 'stopping=1' TERM INT",
    `# ${TIME_WARNING_SECONDS} s before the time limit Slurm signals this script only: stop the stage, requeue the job`,
    "trap 'timeup=1; kill -TERM $child 2>/dev/null' USR1",
    'while :; do wait $child; code=$?; kill -0 $child 2>/dev/null || break; done',
    'echo "$code" > "$RUN_DIR/slurm.exit"',
    'if [ -n "${timeup:-}" ] && ! grep -q \'"status": "completed"\' "$RUN_DIR/run.json" 2>/dev/null; then',
    '  echo "rlhf: time is nearly up: requeued, the run resumes from its checkpoint"',
    '  scontrol requeue "$SLURM_JOB_ID"',
    'fi',
    'exit $code',
    '',
  ];
  return lines.join('\n');
}

/**
 * Writes each job's folders and script, then queues every job held, linked by afterok, and
 * releases them once all are queued. Any failure cancels what was queued and removes what was
 * written: nothing is left half submitted.
 */
export async function submitJobs(jobs: JobPlan[], ctx: SubmitContext): Promise<Submitted[]> {
  if (!jobs.length) throw new ClusterError('nothing to submit');
  const parts = await partitions(ctx.shell); // also: are Slurm's commands here at all?
  const p = ctx.resources.partition;
  if (p && !parts.includes(p)) throw new ClusterError(`partition "${p}" does not exist on the cluster (partitions: ${parts.join(', ') || 'none'}); pass --partition with one of them`);
  if (ctx.resources.time !== undefined && !/^(\d+|(\d+-)?\d{1,2}(:\d{2}){0,2})$/.test(ctx.resources.time)) throw new ClusterError(`--time "${ctx.resources.time}" is not a Slurm time (minutes, or [D-]HH:MM[:SS])`);
  const written: string[] = [];
  /** slurm.json and job.sh of folders that existed (a resubmitted run), put back if the submission fails. */
  const before = new Map<string, { job?: string; script?: string }>();
  const queued: string[] = [];
  const submitted: Submitted[] = [];
  for (const job of jobs) {
    for (const t of job.tasks) {
      const dir = path.join(job.runsDir, t.runId);
      if (fs.existsSync(path.join(dir, 'run.json')) && t.argv[0] !== 'resume') throw new ClusterError(`${dir} already holds a run: choose another --run-id`);
      const live = readClusterJob(dir);
      if (live && !isFinalState(live.state?.name)) throw new ClusterError(`${dir} is already queued as job ${live.job_id}: cancel it first`);
    }
  }
  ctx.beforeQueue?.();
  try {
    for (const job of jobs) {
      const script = jobScript(job, ctx, `rlhf-${job.tasks[0].runId.replace(/-0$/, '')}`);
      for (const t of job.tasks) {
        const dir = path.join(job.runsDir, t.runId);
        if (!fs.existsSync(dir)) written.push(dir);
        else if (!before.has(dir)) {
          const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8') : undefined);
          before.set(dir, { job: read(CLUSTER_JSON), script: read('job.sh') });
        }
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'job.sh'), script, { mode: 0o755 });
        writeClusterJob(dir, { scheduler: 'slurm', job_id: 'submitting', stage: job.stage, argv: t.argv, script: 'job.sh', ...(ctx.shell.ssh ? { ssh: ctx.shell.ssh } : {}), submitted_at: new Date().toISOString(), resources: JSON.parse(JSON.stringify(ctx.resources)) });
      }
      const first = path.join(job.runsDir, job.tasks[0].runId);
      if (ctx.shell.ssh) {
        const seen = await ctx.shell.exec(['test', '-r', path.join(first, CLUSTER_JSON)]);
        if (seen.code !== 0) throw new ClusterError(`${first} is not visible on ${ctx.shell.ssh}: the run folder must be on a filesystem the cluster shares (your home or a scratch folder there), or open the folder in VS Code over Remote-SSH`);
      }
      const after = job.after.map((i) => submitted[i].jobId);
      const id = await sbatch(ctx.shell, path.join(first, 'job.sh'), ['--hold', ...(after.length ? [`--dependency=afterok:${after.join(':')}`, '--kill-on-invalid-dep=yes'] : [])]);
      queued.push(id);
      const runDirs: string[] = [];
      for (const [i, t] of job.tasks.entries()) {
        const dir = path.join(job.runsDir, t.runId);
        runDirs.push(dir);
        const prev = readClusterJob(dir)!;
        // held only until the whole submission is queued: plain PENDING until the first poll says more
        const state: JobState = { name: 'PENDING', updated_at: new Date().toISOString() };
        writeClusterJob(dir, { ...prev, job_id: job.tasks.length > 1 ? `${id}_${i}` : id, ...(after.length ? { after } : {}), ...(t.values ? { sweep: { index: i, values: t.values } } : {}), state });
      }
      submitted.push({ jobId: id, stage: job.stage, runDirs });
    }
    for (const id of queued) await release(ctx.shell, id);
  } catch (e) {
    await scancel(ctx.shell, queued).catch(() => undefined);
    for (const d of written) fs.rmSync(d, { recursive: true, force: true });
    for (const [d, was] of before) {
      for (const [f, text] of [[CLUSTER_JSON, was.job], ['job.sh', was.script]] as const) {
        if (text === undefined) fs.rmSync(path.join(d, f), { force: true });
        else fs.writeFileSync(path.join(d, f), text);
      }
    }
    throw e;
  }
  return submitted;
}

/** The cluster runs of a runs folder (those with slurm.json), newest first. */
export function clusterRuns(runsDir: string): { dir: string; job: ClusterJob }[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(runsDir);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ dir: path.join(runsDir, n), job: readClusterJob(path.join(runsDir, n)) }))
    .filter((r): r is { dir: string; job: ClusterJob } => r.job !== undefined && r.job.job_id !== 'submitting')
    .sort((a, b) => b.job.submitted_at.localeCompare(a.job.submitted_at));
}

/** The last lines of the job's newest output file, for a failure's message. */
export function jobOutputTail(dir: string, lines = 6): string | undefined {
  let outs: string[] = [];
  try {
    outs = fs.readdirSync(dir).filter((f) => /^slurm-[\d_]+\.out$/.test(f)).map((f) => path.join(dir, f));
  } catch {
    return undefined;
  }
  const newest = outs.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (!newest) return undefined;
  const text = readTail(newest, 16 << 10, { noFollow: true });
  const all = text.split('\n').filter((l) => l.trim());
  // the rlhf error line when there is one, else the end of the output
  const err = all.filter((l) => /^rlhf( [\w-]+)?: /.test(l) && !/^rlhf: (job|time is)/.test(l)).at(-1);
  return err ?? (all.slice(-lines).join('\n') || undefined);
}

/** What the run's own files say of a job Slurm no longer remembers. */
function stateFromFiles(dir: string, before: JobState | undefined): Omit<JobState, 'updated_at'> {
  let exit: string | undefined;
  try {
    exit = fs.readFileSync(path.join(dir, 'slurm.exit'), 'utf8').trim();
  } catch {
    /* no marker: the job was killed before its script ended */
  }
  let status: string | undefined;
  try {
    status = new RunDir(dir).read().status;
  } catch {
    /* not started */
  }
  if (exit === '0' && status === 'completed') return { name: 'COMPLETED', exit_code: '0:0' };
  if (exit !== undefined && exit !== '0') return { name: 'FAILED', exit_code: `${exit}:0` };
  if (status === 'cancelled') return { name: 'CANCELLED' };
  return { name: before?.name === 'PENDING' && status === undefined ? 'CANCELLED' : 'LOST', reason: 'the controller no longer knows the job and it left no exit status' };
}

/**
 * Asks Slurm for the state of every cluster run in the folder that has not ended, and writes what
 * it learns into each run's slurm.json. One squeue for all of them (per login host).
 */
export async function refreshStates(runsDir: string, shellFor: (ssh: string | undefined) => Shell): Promise<{ dir: string; job: ClusterJob; changed: boolean }[]> {
  const runs = clusterRuns(runsDir);
  const open = runs.filter((r) => !isFinalState(r.job.state?.name));
  const byHost = new Map<string, typeof open>();
  for (const r of open) byHost.set(r.job.ssh ?? '', [...(byHost.get(r.job.ssh ?? '') ?? []), r]);
  const changed = new Set<string>();
  for (const [host, list] of byHost) {
    const states = await jobStates(shellFor(host || undefined), list.map((r) => r.job.job_id));
    for (const r of list) {
      const before = r.job.state;
      let s = states.get(r.job.job_id) ?? stateFromFiles(r.dir, before);
      if (s.name === 'FAILED' || s.name === 'TIMEOUT' || s.name === 'NODE_FAIL' || s.name === 'OUT_OF_MEMORY' || s.name === 'LOST' || s.name === 'BOOT_FAIL') {
        const tail = jobOutputTail(r.dir);
        s = { ...s, error: tail ?? `the job left no output in ${r.dir}${s.node ? `: is the run folder on a filesystem that ${s.node} shares?` : ''}` };
      }
      const same = before && before.name === s.name && before.reason === s.reason && before.node === s.node && before.restarts === s.restarts;
      if (same) continue;
      r.job = { ...r.job, state: { ...s, updated_at: new Date().toISOString() } };
      writeClusterJob(r.dir, r.job);
      changed.add(r.dir);
    }
  }
  return runs.map((r) => ({ ...r, changed: changed.has(r.dir) }));
}

/** Cancels a cluster run's job (an array task alone for a sweep's run). */
export async function cancelRun(dir: string, shellFor: (ssh: string | undefined) => Shell): Promise<ClusterJob> {
  const job = readClusterJob(dir);
  if (!job) throw new ClusterError(`${dir} is not a cluster run (no ${CLUSTER_JSON})`);
  if (isFinalState(job.state?.name)) throw new ClusterError(`job ${job.job_id} has already ended (${job.state!.name})`);
  await scancel(shellFor(job.ssh), [job.job_id]);
  return job;
}

/**
 * A job script of the user's own (an export's train.slurm.sh) submitted as it is, from its folder,
 * with its output and slurm.json in a new run folder so that the Runs view and `rlhf jobs` follow it.
 */
export async function submitScript(script: string, runsDir: string, runId: string, ctx: Pick<SubmitContext, 'shell' | 'resources'>): Promise<Submitted> {
  if (!fs.existsSync(script)) throw new ClusterError(`${script} does not exist`);
  const dir = path.join(runsDir, runId);
  if (fs.existsSync(dir)) throw new ClusterError(`${dir} already exists: choose another --run-id`);
  await partitions(ctx.shell);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.copyFileSync(script, path.join(dir, 'job.sh'));
    writeClusterJob(dir, { scheduler: 'slurm', job_id: 'submitting', stage: 'external', argv: ['--script', script], script: 'job.sh', ...(ctx.shell.ssh ? { ssh: ctx.shell.ssh } : {}), submitted_at: new Date().toISOString(), resources: JSON.parse(JSON.stringify(ctx.resources)) });
    const id = await sbatch(ctx.shell, script, [`--chdir=${path.dirname(script)}`, `--output=${path.join(dir, 'slurm-%j.out')}`, ...resourceOptions(ctx.resources)]);
    writeClusterJob(dir, { ...readClusterJob(dir)!, job_id: id, state: { name: 'PENDING', updated_at: new Date().toISOString() } });
    return { jobId: id, stage: 'external', runDirs: [dir] };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
