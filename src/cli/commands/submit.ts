/**
 * `rlhf submit [resources] -- <stage command>`: the stage as a Slurm job (here, or on a login node
 * with --ssh); `-- pipeline` as a chain of jobs; --sweep/--seeds as a job array. `rlhf jobs` shows
 * the cluster runs' states, `rlhf cancel` cancels one. See src/cluster/submit.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OptSpecs, ParsedOpts, UsageError, parseArgs } from '../args';
import { Reporter } from '../progress';
import { DPO_OPTS, GRPO_OPTS, PPO_OPTS, PRETRAIN_OPTS, RLOO_OPTS, RM_OPTS, SFT_OPTS } from './train';
import { PIPELINE_OPTS, pipelineStages } from './pipeline';
import { ClusterError, Shell, localShell, sshShell } from '../../cluster/slurm';
import { JobPlan, Resources, Submitted, cancelRun, refreshStates, submitJobs, submitScript } from '../../cluster/submit';
import { ClusterJob, describeJobState, isFinalState, readClusterJob } from '../../data/cluster-run';
import { RunDir, newRunId } from '../../data/run';
import { GPUS } from '../../engine/cost';
import { estimateRuns, stagePasses } from './submit-estimate';

/** The stages a job can run, with their options (to check a command before it is queued). */
const STAGES: Record<string, OptSpecs> = { pretrain: PRETRAIN_OPTS, sft: SFT_OPTS, rm: RM_OPTS, dpo: DPO_OPTS, ppo: PPO_OPTS, grpo: GRPO_OPTS, rloo: RLOO_OPTS };

const WHERE: OptSpecs = {
  ssh: { type: 'string', help: 'run Slurm\'s commands on this login node with the system ssh client (your ~/.ssh/config; RLHF_SSH_CONFIG for another file)' },
  'runs-dir': { type: 'string', help: 'the runs folder', default: '.rlhf/runs' },
  json: { type: 'boolean', help: 'machine-readable JSON lines on stdout' },
  help: { type: 'boolean', help: 'show this help' },
};

export const SUBMIT_OPTS: OptSpecs = {
  partition: { type: 'string', help: 'Slurm partition (default: the cluster\'s default)' },
  time: { type: 'string', help: 'time limit per job (minutes or [D-]HH:MM[:SS]); the stage checkpoints and requeues itself 2 minutes before it' },
  'cpus-per-task': { type: 'int', help: 'CPUs per job' },
  'gpus-per-node': { type: 'int', help: 'GPUs per job' },
  gpu: { type: 'string', help: `the GPUs' type, for the cost estimate when this machine has measured no CUDA speed: ${Object.keys(GPUS).join(', ')}`, default: 'a100' },
  mem: { type: 'string', help: 'memory per node (e.g. 16G)' },
  sweep: { type: 'string', repeat: true, help: 'KEY=V1,V2,...: one run per value of the stage option --KEY (repeat for a grid); a job array' },
  seeds: { type: 'int', help: 'runs per combination with --seed 1..N' },
  wait: { type: 'boolean', help: 'follow the jobs until they end; exit 1 if one did not complete' },
  node: { type: 'string', help: 'the node binary on the compute nodes (default: this one)' },
  script: { type: 'string', help: 'submit this job script as it is (an export\'s train.slurm.sh) and follow it like a run' },
  'runs-dir': { type: 'string', help: 'with --script: the runs folder its run folder goes in', default: '.rlhf/runs' },
  'run-id': { type: 'string', help: 'with --script: the run folder\'s name (default: the script\'s folder and the date)' },
  ssh: WHERE.ssh,
  json: WHERE.json,
  help: WHERE.help,
};

export const JOBS_OPTS: OptSpecs = { ...WHERE, watch: { type: 'boolean', help: 'refresh every few seconds until every job has ended' } };
export const CANCEL_OPTS: OptSpecs = { ssh: WHERE.ssh, json: WHERE.json, help: WHERE.help };

const POLL_MS = Number(process.env.RLHF_SLURM_POLL_MS ?? 5000);

function shellFor(ssh: string | undefined): Shell {
  return ssh ? sshShell(ssh) : localShell();
}

/** The CLI as the compute nodes start it (this bundle). */
function cliFile(): string {
  const f = process.argv[1] && /cli\.js$/.test(process.argv[1]) ? process.argv[1] : path.join(__dirname, 'cli.js');
  return path.resolve(f);
}

/** argv without the given options (and their values). */
function without(argv: string[], keys: string[], specs: OptSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([^=]+)(=.*)?$/.exec(argv[i]);
    if (m && keys.includes(m[1])) {
      if (m[2] === undefined && specs[m[1]]?.type !== 'boolean') i++;
      continue;
    }
    out.push(argv[i]);
  }
  return out;
}

/** --sweep KEY=V1,V2 (repeated) and --seeds N: every combination, in order. */
export function sweepCombinations(sweep: string | undefined, seeds: number | undefined, stage: string, specs: OptSpecs): Record<string, string>[] {
  let combos: Record<string, string>[] = [{}];
  for (const item of (sweep ?? '').split('\n').filter(Boolean)) {
    const m = /^([\w-]+)=(.+)$/.exec(item.trim());
    if (!m) throw new UsageError(`--sweep "${item}": write KEY=V1,V2,... (a stage option and its values)`);
    const [, key, list] = m;
    const spec = specs[key];
    if (!spec || ['runs-dir', 'run-id', 'json', 'help', 'backend'].includes(key) || spec.type === 'boolean') throw new UsageError(`--sweep: "${key}" is not an option of rlhf ${stage} that can be swept (rlhf ${stage} --help lists them)`);
    const values = list.split(',').map((v) => v.trim()).filter(Boolean);
    for (const v of values) parseArgs(stage, [`--${key}`, v], { [key]: spec }); // a value of the wrong type fails here, before anything is queued
    if (new Set(values).size !== values.length) throw new UsageError(`--sweep ${key}: a value is given twice`);
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  if (seeds !== undefined) {
    if (!specs.seed) throw new UsageError(`--seeds: rlhf ${stage} has no --seed`);
    if (seeds < 1) throw new UsageError('--seeds must be at least 1');
    combos = combos.flatMap((c) => Array.from({ length: seeds }, (_, s) => ({ ...c, seed: String(s + 1) })));
  }
  if (combos.length > 1000) throw new UsageError(`the sweep has ${combos.length} runs: at most 1000 in one array`);
  return combos;
}

/** The jobs a command becomes: one stage, a sweep's array, a pipeline's chain, or a resume. */
export function planJobs(o: ParsedOpts, command: string[], cwd: string): JobPlan[] {
  const [name, ...rest] = command;
  if (!name) throw new UsageError('nothing to submit: rlhf submit [options] -- <stage command>, e.g. rlhf submit --time 30 -- sft --data data/x.sft.jsonl --model models/base');
  if (name === 'pipeline' || name === 'demo') {
    if (o.sweep || o.seeds) throw new UsageError('--sweep and --seeds take one stage, not the pipeline');
    const p = parseArgs(name, rest, PIPELINE_OPTS).opts;
    const runsDir = path.resolve(cwd, (p['runs-dir'] as string) ?? path.join((p.out as string) ?? '.rlhf/demo', 'runs'));
    const stages = pipelineStages(p, runsDir);
    return stages.map((s) => ({ stage: s.stage, runsDir, tasks: [{ runId: s.id, argv: s.argv }], after: s.after.map((a) => stages.findIndex((x) => x.id === a)) }));
  }
  if (name === 'resume') {
    if (o.sweep || o.seeds) throw new UsageError('--sweep and --seeds start new runs; resume continues one');
    if (!rest[0]) throw new UsageError('rlhf submit -- resume RUN_DIR');
    const dir = path.resolve(cwd, rest[0]);
    const info = new RunDir(dir).read();
    return [{ stage: info.stage, runsDir: path.dirname(dir), tasks: [{ runId: path.basename(dir), argv: ['resume', dir] }], after: [] }];
  }
  const specs = STAGES[name];
  if (!specs) throw new UsageError(`"${name}" does not run on a cluster: submit a training stage (${Object.keys(STAGES).join(', ')}), pipeline, or resume RUN_DIR`);
  const parsed = parseArgs(name, rest, specs).opts;
  if (parsed.help || parsed.json) throw new UsageError(`leave --help and --json out of the submitted command`);
  const runsDir = path.resolve(cwd, parsed['runs-dir'] as string);
  const combos = sweepCombinations(o.sweep as string | undefined, o.seeds as number | undefined, name, specs);
  const base = (parsed['run-id'] as string | undefined) ?? newRunId(name);
  if (!/^[\w.-]+$/.test(base)) throw new UsageError('--run-id: letters, digits, _ . - only');
  const swept = Object.keys(combos[0]);
  const argv = [name, ...without(rest, ['runs-dir', 'run-id', ...swept], specs)];
  const tasks = combos.map((c, i) => ({
    runId: combos.length > 1 ? `${base}-${i}` : base,
    argv: [...argv, ...Object.entries(c).flatMap(([k, v]) => [`--${k}`, v]), '--runs-dir', runsDir, '--run-id', combos.length > 1 ? `${base}-${i}` : base],
    ...(swept.length ? { values: c } : {}),
  }));
  return [{ stage: name, runsDir, tasks, after: [] }];
}

const line = (dir: string, job: ClusterJob) => `${path.basename(dir).padEnd(28)} ${job.stage.padEnd(8)} job ${job.job_id.padEnd(8)} ${describeJobState(job.state)}${job.sweep ? `  ${Object.entries(job.sweep.values).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`;

/** Follows the runs until each has ended; prints every change. Returns the runs that did not complete. */
async function follow(runsDir: string, dirs: string[], r: Reporter): Promise<{ dir: string; job: ClusterJob }[]> {
  const want = new Set(dirs.map((d) => path.resolve(d)));
  for (;;) {
    const runs = (await refreshStates(runsDir, shellFor)).filter((x) => want.has(path.resolve(x.dir)));
    for (const x of runs) if (x.changed) r.json ? process.stdout.write(JSON.stringify({ type: 'job', run: x.dir, job_id: x.job.job_id, state: x.job.state }) + '\n') : r.log(line(x.dir, x.job));
    if (runs.every((x) => isFinalState(x.job.state?.name))) return runs.filter((x) => x.job.state?.name !== 'COMPLETED');
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

export async function submitCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  const cwd = process.cwd();
  if (!GPUS[o.gpu as string]) throw new UsageError(`--gpu must be one of ${Object.keys(GPUS).join(', ')}, not "${o.gpu}"`);
  if (o.script) {
    if (positional.length) throw new UsageError('--script FILE takes no command after --');
    const script = path.resolve(o.script as string);
    const runsDir = path.resolve(o['runs-dir'] as string);
    const runId = (o['run-id'] as string | undefined) ?? newRunId(path.basename(path.dirname(script)).replace(/[^\w.-]/g, '-'));
    let s: Submitted;
    try {
      s = await submitScript(script, runsDir, runId, { shell: shellFor(o.ssh as string | undefined), resources: resourcesOf(o) });
    } catch (e) {
      if (e instanceof ClusterError) throw new Error(`nothing was submitted: ${e.message}`);
      throw e;
    }
    if (r.json) process.stdout.write(JSON.stringify({ type: 'submitted', job_id: s.jobId, stage: s.stage, runs: s.runDirs }) + '\n');
    else r.log(`submitted ${script} as job ${s.jobId}: its output and state in ${s.runDirs[0]}`);
    return o.wait ? followToEnd(runsDir, s.runDirs, r) : 0;
  }
  const jobs = planJobs(o, positional, cwd);
  // a resubmitted run asks for what it asked before, unless told otherwise
  const prior = positional[0] === 'resume' ? readClusterJob(path.join(jobs[0].runsDir, jobs[0].tasks[0].runId)) : undefined;
  const was = prior?.resources ?? {};
  const shell = shellFor((o.ssh as string | undefined) ?? prior?.ssh);
  const resources = resourcesOf(o, was);
  let submitted: Submitted[];
  try {
    submitted = await submitJobs(jobs, {
      shell, cwd, node: (o.node as string | undefined) ?? process.execPath, cli: cliFile(),
      resources,
      // a resumed run printed its estimate when it started; its remaining passes print when it resumes
      beforeQueue: () => positional[0] !== 'resume' && printEstimates(jobs, resources, o.gpu as string, r),
    });
  } catch (e) {
    if (e instanceof ClusterError) throw new Error(`nothing was submitted: ${e.message}`);
    throw e;
  }
  for (const s of submitted) {
    if (r.json) process.stdout.write(JSON.stringify({ type: 'submitted', job_id: s.jobId, stage: s.stage, runs: s.runDirs }) + '\n');
    else r.log(`submitted ${s.stage} as job ${s.jobId}${s.runDirs.length > 1 ? ` (an array of ${s.runDirs.length} runs)` : ''}: ${s.runDirs.length > 1 ? path.dirname(s.runDirs[0]) : s.runDirs[0]}`);
  }
  if (!o.wait) {
    if (!r.json) r.log(`follow them: rlhf jobs --runs-dir ${path.relative(cwd, jobs[0].runsDir) || '.'} --watch (or the Runs view)`);
    return 0;
  }
  return followToEnd(jobs[0].runsDir, submitted.flatMap((s) => s.runDirs), r);
}

/** --wait: follows the runs to their end; each that did not complete is one line on stderr, and exit 1. */
async function followToEnd(runsDir: string, dirs: string[], r: Reporter): Promise<number> {
  const bad = await follow(runsDir, dirs, r);
  for (const b of bad) process.stderr.write(`rlhf submit: ${path.basename(b.dir)} ended ${describeJobState(b.job.state)}${b.job.state?.error ? `: ${b.job.state.error.split('\n').at(-1)}` : ''}\n`);
  return bad.length ? 1 : 0;
}

/**
 * The cost of every run before anything is queued (submit-estimate.ts). A run whose estimate cannot
 * be made (its data is unreadable: the stage would say why when it starts) gets a line saying so;
 * the submission goes on either way.
 */
function printEstimates(jobs: JobPlan[], resources: Resources, gpu: string, r: Reporter): void {
  const tasks = jobs.flatMap((j) => j.tasks.map((t) => ({ job: j, task: t, opts: parseArgs(j.stage, t.argv.slice(1), STAGES[j.stage]).opts })));
  // a model a chain has yet to write: the run that writes it, and the model that run starts from
  const startsFrom = new Map(tasks.map((x) => [path.resolve(x.job.runsDir, x.task.runId, 'checkpoints', 'final'), (x.opts.model ?? x.opts.policy ?? x.opts.init) as string | undefined]));
  const runs: { runId: string; stage: string; backend: string; passes: ReturnType<typeof stagePasses> }[] = [];
  for (const x of tasks) {
    try {
      runs.push({ runId: x.task.runId, stage: x.job.stage, backend: String(x.opts.backend ?? 'auto'), passes: stagePasses(x.job.stage, x.opts, (dir) => startsFrom.get(path.resolve(dir))) });
    } catch (e) {
      r.log(`${x.task.runId} (${x.job.stage}): no cost estimate: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  for (const e of estimateRuns(runs, resources, gpu)) {
    if (r.json) process.stdout.write(JSON.stringify({ type: 'estimate', run: e.runId, stage: e.stage, flops: e.flops, seconds: e.seconds ?? null, dollars: e.dollars ?? null, line: e.line }) + '\n');
    else r.log(e.line);
  }
}

/** The resources given on the command line, each falling back on what the run asked for before. */
function resourcesOf(o: ParsedOpts, was: Resources = {}): Resources {
  return {
    partition: (o.partition as string | undefined) ?? was.partition, time: (o.time as string | undefined) ?? was.time,
    cpusPerTask: (o['cpus-per-task'] as number | undefined) ?? was.cpusPerTask, gpusPerNode: (o['gpus-per-node'] as number | undefined) ?? was.gpusPerNode, mem: (o.mem as string | undefined) ?? was.mem,
  };
}

export async function jobsCommand(o: ParsedOpts, _p: string[], r: Reporter) {
  const runsDir = path.resolve(o['runs-dir'] as string);
  if (!fs.existsSync(runsDir)) throw new Error(`${runsDir} does not exist`);
  const runs = await refreshStates(runsDir, (ssh) => shellFor(ssh ?? (o.ssh as string | undefined)));
  if (!runs.length) {
    r.log(`no cluster runs in ${runsDir} (rlhf submit starts them)`);
    return 0;
  }
  if (r.json) for (const x of runs) process.stdout.write(JSON.stringify({ type: 'job', run: x.dir, job_id: x.job.job_id, stage: x.job.stage, state: x.job.state }) + '\n');
  else for (const x of runs) r.log(line(x.dir, x.job) + (x.job.state?.error ? `\n    ${x.job.state.error.split('\n').join('\n    ')}` : ''));
  if (o.watch) {
    const bad = await follow(runsDir, runs.map((x) => x.dir), r);
    return bad.length ? 1 : 0;
  }
  return 0;
}

export async function cancelCommand(o: ParsedOpts, positional: string[], r: Reporter) {
  if (!positional.length) throw new UsageError('rlhf cancel RUN_DIR...');
  for (const d of positional) {
    const dir = path.resolve(d);
    const job = await cancelRun(dir, (ssh) => shellFor(ssh ?? (o.ssh as string | undefined)));
    r.log(`cancelled job ${job.job_id} (${path.basename(dir)}): a running stage checkpoints and stops; rlhf submit -- resume ${d} continues it`);
  }
  return 0;
}
