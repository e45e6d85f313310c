/**
 * `rlhf submit`, `rlhf jobs`, `rlhf cancel` against a real Slurm cluster: slurmctld and two slurmd
 * nodes on 127.0.0.1 with a private munge, started by this file (test/slurm-cluster.ts) and
 * stopped at its end. Real jobs: a pipeline chain, a sweep's array over both nodes, a cancel, a
 * requeue that resumes from the checkpoint, a resubmitted resume, a job that fails at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, testBackend, tmpDir, writeToyWorkspace } from '../helpers';
import { Cluster, available, startCluster } from '../slurm-cluster';
import { SSHD, Sshd, startSshd } from '../sshd';
import { CharTokenizer } from '../../src/engine/tokenizer';
import { readClusterJob } from '../../src/data/cluster-run';
import { RunDir } from '../../src/data/run';
import { localShell } from '../../src/cluster/slurm';
import { submitJobs } from '../../src/cluster/submit';
import { planJobs } from '../../src/cli/commands/submit';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ?.,:HA\n');
let cluster: Cluster;
let sshd: Sshd;
let root = '';

// the CI installs Slurm (.ci/run): a machine without it fails here rather than skipping
before(async () => {
  assert.ok(available(), 'slurm-wlm and munge are not installed (apt-get install slurm-wlm munge; .ci/run does it)');
  await testBackend();
  cluster = await startCluster({ killWait: 15 });
  assert.ok(fs.existsSync(SSHD), 'openssh-server is not installed (.ci/run installs it)');
  sshd = await startSshd({ SLURM_CONF: cluster.conf });
  root = tmpDir();
  await writeToyWorkspace(root, tok);
});

after(async () => {
  sshd?.stop();
  await cluster?.stop();
});

const rlhf = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: root, env: { ...cluster.env, RLHF_DEBUG: '', RLHF_SLURM_POLL_MS: '500', ...env } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the run's job reaches a state (refreshing through `rlhf jobs`). */
async function until(runsDir: string, dir: string, want: (state: string) => boolean, what: string, ms = 120_000): Promise<string> {
  const t = Date.now();
  for (;;) {
    rlhf(['jobs', '--runs-dir', runsDir]);
    const s = readClusterJob(dir)?.state?.name ?? '';
    if (want(s)) return s;
    if (Date.now() - t > ms) throw new Error(`${path.basename(dir)}: still ${s} after ${ms / 1000} s, waiting for ${what}`);
    await sleep(300);
  }
}

function smallWorkspace(): string {
  const ws = tmpDir();
  fs.mkdirSync(path.join(ws, 'data'));
  const src = path.join(ROOT, 'examples', 'workspace', 'data');
  for (const [f, n] of [['reviews.sft.jsonl', 40], ['reviews.rm.jsonl', 24], ['reviews.ppo.jsonl', 12]] as const)
    fs.writeFileSync(path.join(ws, 'data', f), fs.readFileSync(path.join(src, f), 'utf8').split('\n').slice(0, n).join('\n') + '\n');
  return ws;
}

test('a pipeline becomes a chain of jobs linked by afterok: each stage reads the previous stage\'s final model and completes', () => {
  const runs = path.join(root, 'chain');
  const r = rlhf(['submit', '--wait', '--', 'pipeline', '--workspace', smallWorkspace(), '--runs-dir', runs, '--pretrain-steps', '0', '--sft-steps', '2', '--rm-steps', '2', '--algos', 'dpo,ppo', '--dpo-steps', '2', '--ppo-iterations', '1', '--backend', 'wasm']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const out = r.stdout + r.stderr;
  assert.match(out, /submitted sft as job \d+/);
  // while the SFT job ran, the jobs after it waited on it
  assert.match(out, /^rm +rm +job \d+ +PENDING \(Dependency\)/m);
  const ids = Object.fromEntries(['sft', 'rm', 'dpo', 'ppo'].map((s) => [s, readClusterJob(path.join(runs, s))!]));
  assert.deepEqual(ids.rm.after, [ids.sft.job_id]);
  assert.deepEqual(ids.dpo.after, [ids.sft.job_id]);
  assert.deepEqual(ids.ppo.after, [ids.sft.job_id, ids.rm.job_id]);
  for (const s of ['sft', 'rm', 'dpo', 'ppo']) {
    const dir = path.join(runs, s);
    assert.equal(ids[s].state?.name, 'COMPLETED', s);
    assert.equal(new RunDir(dir).read().status, 'completed', s);
    assert.ok(fs.existsSync(path.join(dir, 'checkpoints', 'final', 'config.json')), `${s}'s final model`);
    const script = fs.readFileSync(path.join(dir, 'job.sh'), 'utf8');
    assert.match(script, /^#SBATCH --requeue$/m);
    assert.ok(fs.readdirSync(dir).some((f) => /^slurm-\d+\.out$/.test(f)), `${s}: the job's output is in its run folder`);
  }
  assert.equal(new RunDir(path.join(runs, 'rm')).read().parent_model, path.join(runs, 'sft', 'checkpoints', 'final'));
  // before anything was queued, a cost line per run: the FLOPs the stage itself then planned when it
  // started (the same plan from the same data; the reward model's padding depends on the threads the
  // node gave it, so that one within 10%), though its model did not exist yet at submission
  const estimates = out.slice(0, out.search(/submitted sft as job/));
  for (const s of ['sft', 'rm', 'dpo', 'ppo']) {
    const m = new RegExp(`^${s} \\(${s}\\): estimated cost: ([\\d.]+) ([kMGTPE]?)FLOP`, 'm').exec(estimates);
    assert.ok(m, `${s}: no cost line before the submission:\n${estimates}`);
    const printed = Number(m[1]) * 10 ** (3 * ' kMGTPE'.indexOf(m[2] || ' '));
    const planned = new RunDir(path.join(runs, s)).read().cost!.estimate!.flops;
    const tolerance = s === 'rm' ? 0.1 : 0.005; // 3 significant digits printed
    assert.ok(Math.abs(printed - planned) <= tolerance * planned, `${s}: ${printed} FLOP estimated before submission, ${planned} planned by the stage`);
  }
});

test('a sweep is one job array: one run per combination, spread over both nodes, each with its own value', () => {
  const runs = path.join(root, 'sweep');
  const r = rlhf(['submit', '--wait', '--cpus-per-task', '2', '--sweep', 'beta=0.05,0.1,0.2', '--', 'dpo', '--data', 'toy.rm.jsonl', '--model', 'sft', '--steps', '3', '--batch-size', '2', '--runs-dir', runs, '--run-id', 'beta', '--backend', 'wasm']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout + r.stderr, /submitted dpo as job (\d+) \(an array of 3 runs\)/);
  const nodes = new Set<string>();
  for (const [i, beta] of ['0.05', '0.1', '0.2'].entries()) {
    const dir = path.join(runs, `beta-${i}`);
    const job = readClusterJob(dir)!;
    assert.match(job.job_id, /^\d+_\d$/);
    assert.deepEqual(job.sweep, { index: i, values: { beta } });
    assert.equal(job.state?.name, 'COMPLETED');
    nodes.add(job.state!.node!);
    const info = new RunDir(dir).read();
    assert.equal(info.status, 'completed');
    assert.equal((info.config as { dpo: { beta: number } }).dpo?.beta ?? (info.config as { beta: number }).beta, Number(beta));
    assert.ok(new RunDir(dir).readMetrics().length > 0);
  }
  assert.deepEqual([...nodes].sort(), ['n1', 'n2'], 'the array ran on both nodes');
});

test('cancel stops a running job (the stage checkpoints first); a resubmitted resume continues it to the end', async () => {
  const runs = path.join(root, 'cancel'), dir = path.join(runs, 'long');
  const r = rlhf(['submit', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--steps', '100000', '--batch-size', '2', '--threads', '1', '--checkpoint-interval', '0', '--runs-dir', runs, '--run-id', 'long', '--backend', 'wasm']);
  assert.equal(r.status, 0, r.stderr);
  await until(runs, dir, (s) => s === 'RUNNING', 'RUNNING');
  for (let i = 0; i < 200 && new RunDir(dir).readMetrics().length < 3; i++) await sleep(200);
  const c = rlhf(['cancel', dir]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout + c.stderr, /cancelled job \d+/);
  assert.equal(await until(runs, dir, (s) => s === 'CANCELLED', 'CANCELLED', 60_000), 'CANCELLED');
  const info = new RunDir(dir).read();
  assert.equal(info.status, 'cancelled');
  const ckpt = new RunDir(dir).latestCheckpoint();
  assert.ok(ckpt && ckpt.step > 0, 'the stage checkpointed when it was signalled');
  // resubmit from the checkpoint: a short run so that it ends (steps are in run.json's config)
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
  cfg.config.train ? (cfg.config.train.steps = ckpt!.step + 3) : (cfg.config.steps = ckpt!.step + 3);
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(cfg, null, 2) + '\n');
  const again = rlhf(['submit', '--wait', '--', 'resume', dir]);
  assert.equal(again.status, 0, again.stderr + again.stdout);
  const done = new RunDir(dir).read();
  assert.equal(done.status, 'completed');
  assert.ok((done.resumed_at ?? []).length >= 1);
  assert.equal(readClusterJob(dir)!.state?.name, 'COMPLETED');
});

/**
 * Submits a 60-step SFT run, waits for its first checkpoint, lets `interrupt` stop it, starts the
 * requeued job at once (Slurm holds it two minutes, reason BeginTime) and checks the run finished
 * after resuming: the metrics run on without a gap or a repeat. Returns the job's output.
 */
async function requeueRoundTrip(id: string, interrupt: (jobId: string) => void): Promise<string> {
  const runs = path.join(root, 'requeue'), dir = path.join(runs, id);
  const r = rlhf(['submit', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--steps', '60', '--batch-size', '2', '--threads', '1', '--checkpoint-interval', '5', '--eval-interval', '1000', '--runs-dir', runs, '--run-id', id, '--backend', 'wasm']);
  assert.equal(r.status, 0, r.stderr);
  await until(runs, dir, (s) => s === 'RUNNING', 'RUNNING');
  for (let i = 0; i < 300 && !new RunDir(dir).latestCheckpoint(); i++) await sleep(100);
  assert.ok(new RunDir(dir).latestCheckpoint(), 'a checkpoint before the interruption');
  const jobId = readClusterJob(dir)!.job_id;
  interrupt(jobId);
  await until(runs, dir, (s) => s === 'PENDING', 'PENDING after the requeue', 60_000);
  // the controller sets the reason a moment after the state
  for (let i = 0; i < 60 && readClusterJob(dir)!.state?.reason !== 'BeginTime'; i++) {
    await sleep(300);
    rlhf(['jobs', '--runs-dir', runs]);
  }
  assert.equal(readClusterJob(dir)!.state?.reason, 'BeginTime');
  assert.equal(cluster.run('scontrol', 'update', `JobId=${jobId}`, 'StartTime=now').status, 0);
  await until(runs, dir, (s) => s === 'COMPLETED' || s === 'FAILED', 'the end', 240_000);
  const job = readClusterJob(dir)!;
  assert.equal(job.state?.name, 'COMPLETED', job.state?.error);
  assert.ok((job.state?.restarts ?? 0) >= 1, `Slurm restarted the job (restarts ${job.state?.restarts})`);
  const info = new RunDir(dir).read();
  assert.equal(info.status, 'completed');
  assert.ok((info.resumed_at ?? []).length >= 1, 'the second start resumed the run');
  const steps = new RunDir(dir).readMetrics().map((m) => m.step).filter((s) => s !== undefined);
  const train = [...new Set(steps)].sort((a, b) => a - b);
  assert.equal(train.at(-1), 60);
  assert.deepEqual(steps.filter((s, i) => i > 0 && s < steps[i - 1]), [], 'steps never go back');
  const out = fs.readdirSync(dir).filter((f) => /^slurm-\d+\.out$/.test(f)).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('');
  assert.match(out, /restart 1/);
  return out;
}

test('a job killed and requeued by Slurm resumes from its checkpoint: the metrics run on without a gap or a repeat', async () => {
  await requeueRoundTrip('rq', (id) => {
    const q = cluster.run('scontrol', 'requeue', id);
    assert.equal(q.status, 0, q.stderr);
  });
});

test('near its time limit (the USR1 Slurm sends the batch shell, --signal=B:USR1@120) a job stops its stage at a checkpoint, requeues itself and the run resumes', async () => {
  const out = await requeueRoundTrip('tl', (id) => {
    // what slurmctld sends 120 s before the limit; sent here at once rather than waiting out a limit
    const q = cluster.run('scancel', '--batch', '--signal=USR1', id);
    assert.equal(q.status, 0, q.stderr);
  });
  assert.match(out, /rlhf: time is nearly up: requeued, the run resumes from its checkpoint/);
  assert.match(fs.readFileSync(path.join(root, 'requeue', 'tl', 'job.sh'), 'utf8'), /^#SBATCH --signal=B:USR1@120$/m);
});

test('a job that fails at once: its error reaches the user (rlhf submit --wait, rlhf jobs)', () => {
  const runs = path.join(root, 'fail'), dir = path.join(runs, 'bad');
  const r = rlhf(['submit', '--wait', '--', 'sft', '--data', 'missing.sft.jsonl', '--model', 'sft', '--steps', '2', '--runs-dir', runs, '--run-id', 'bad', '--backend', 'wasm']);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /rlhf submit: bad ended FAILED \(exit 1:0\): rlhf sft: .*missing\.sft\.jsonl/);
  const j = rlhf(['jobs', '--runs-dir', runs]);
  assert.equal(j.status, 0, j.stderr);
  assert.match(j.stdout + j.stderr, /bad +sft +job \d+ +FAILED \(exit 1:0\)\n +rlhf sft: .*missing\.sft\.jsonl/);
  assert.match(readClusterJob(dir)!.state!.error!, /missing\.sft\.jsonl/);
});

test('--ssh HOST: sbatch, squeue and scontrol run on the login node over the system ssh client; the run streams back the same', () => {
  const runs = path.join(root, 'over-ssh'), dir = path.join(runs, 'remote');
  // no Slurm here: every Slurm command must go over ssh (the login node's session has SLURM_CONF)
  const env = { RLHF_SSH_CONFIG: sshd.config, SLURM_CONF: '/nonexistent/slurm.conf' };
  const r = rlhf(['submit', '--ssh', sshd.host, '--wait', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--steps', '3', '--batch-size', '2', '--runs-dir', runs, '--run-id', 'remote', '--backend', 'wasm'], env);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = readClusterJob(dir)!;
  assert.equal(job.ssh, sshd.host);
  assert.equal(job.state?.name, 'COMPLETED');
  assert.equal(new RunDir(dir).read().status, 'completed');
  const j = rlhf(['jobs', '--runs-dir', runs], env);
  assert.match(j.stdout + j.stderr, /remote +sft +job \d+ +COMPLETED/);
});

test('rlhf submit --script: a job script of the user\'s own (an export\'s train.slurm.sh) runs from its folder and is followed like a run', () => {
  const dir = path.join(tmpDir(), 'handoff');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'train.slurm.sh'), '#!/bin/bash\n#SBATCH --job-name=handoff\n#SBATCH --output=slurm-%j.out\necho "trainer started in $(pwd) on $SLURMD_NODENAME"\ntouch output.done\n');
  const runs = path.join(root, 'scripts');
  const r = rlhf(['submit', '--wait', '--script', path.join(dir, 'train.slurm.sh'), '--runs-dir', runs, '--run-id', 'handoff']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const run = path.join(runs, 'handoff');
  const job = readClusterJob(run)!;
  assert.equal(job.stage, 'external');
  assert.equal(job.state?.name, 'COMPLETED');
  assert.ok(fs.existsSync(path.join(dir, 'output.done')), 'the script ran in its own folder');
  const out = fs.readdirSync(run).filter((f) => /^slurm-\d+\.out$/.test(f));
  assert.equal(out.length, 1, 'its output is in the run folder, not beside the script');
  assert.match(fs.readFileSync(path.join(run, out[0]), 'utf8'), new RegExp(`trainer started in ${dir} on n[12]`));
  assert.ok(fs.readFileSync(path.join(run, 'job.sh'), 'utf8').includes('touch output.done'), 'a copy of what ran');
});

test('bad input: one line with the fix, and nothing written or queued', async () => {
  const runs = path.join(root, 'bad-input');
  // the earlier tests' jobs may still be completing: wait until the queue holds none of them
  for (let i = 0; i < 300 && cluster.run('squeue', '-h', '-o', '%i').stdout.trim(); i++) await sleep(100);
  const before = cluster.run('squeue', '-h', '-o', '%i').stdout;
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['submit', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--runs-dir', runs], { PATH: '/nonexistent' }, /sbatch|sinfo is not on the PATH here: run this on the cluster's login node .*--ssh HOST/],
    [['submit', '--partition', 'gpu-a100', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /partition "gpu-a100" does not exist on the cluster \(partitions: debug\)/],
    [['submit', '--gpus-per-node', '4', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /nothing was submitted: the cluster refused the job: .*(gres|generic resource)/i],
    [['submit', '--ssh', 'nohost.invalid', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /cannot reach nohost\.invalid over ssh/],
    [['submit', '--time', 'soon', '--', 'sft', '--data', 'toy.sft.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /--time "soon" is not a Slurm time/],
    [['submit', '--sweep', 'colour=1,2', '--', 'dpo', '--data', 'toy.rm.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /"colour" is not an option of rlhf dpo that can be swept/],
    [['submit', '--sweep', 'beta=0.1,high', '--', 'dpo', '--data', 'toy.rm.jsonl', '--model', 'sft', '--runs-dir', runs], {}, /--beta must be a number, got "high"/],
    [['submit', '--', 'generate', '--model', 'sft'], {}, /"generate" does not run on a cluster/],
    [['submit'], {}, /nothing to submit/],
  ];
  for (const [args, env, msg] of cases) {
    const r = rlhf(args, env);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, msg, args.join(' '));
    // a refusal by the controller comes after the cost line (the checks before it had passed)
    const lines = r.stderr.trim().split('\n').filter((l) => !/^\S+ \(sft\): estimated cost: /.test(l));
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  }
  assert.ok(!fs.existsSync(runs) || fs.readdirSync(runs).length === 0, 'no run folder written');
  // a chain whose third submission the controller refuses: the two queued are cancelled, their folders removed
  const shell = localShell(cluster.env);
  let n = 0;
  const failing = { ...shell, exec: (argv: string[], input?: string) => (argv[0] === 'sbatch' && ++n === 3 ? Promise.resolve({ code: 1, stdout: '', stderr: 'sbatch: error: Batch job submission failed: Job violates accounting/QOS policy' }) : shell.exec(argv, input)) };
  const jobs = planJobs({}, ['pipeline', '--workspace', smallWorkspace(), '--runs-dir', runs, '--pretrain-steps', '0', '--algos', 'dpo'], root);
  await assert.rejects(submitJobs(jobs, { shell: failing, cwd: root, node: process.execPath, cli: CLI, resources: {} }), /the cluster refused the job: Job violates accounting\/QOS policy/);
  assert.ok(!fs.existsSync(runs) || fs.readdirSync(runs).length === 0, 'the chain left no folder');
  const queued = cluster.run('squeue', '-h', '-o', '%i').stdout;
  assert.equal(queued.trim(), before.trim(), 'nothing left queued');
  // a resubmission the controller refuses leaves the run's own slurm.json and job.sh as they were
  const long = path.join(root, 'cancel', 'long');
  const was = ['slurm.json', 'job.sh'].map((f) => fs.readFileSync(path.join(long, f), 'utf8'));
  n = 2;
  await assert.rejects(submitJobs(planJobs({}, ['resume', long], root), { shell: failing, cwd: root, node: process.execPath, cli: CLI, resources: {} }), /the cluster refused the job/);
  assert.deepEqual(['slurm.json', 'job.sh'].map((f) => fs.readFileSync(path.join(long, f), 'utf8')), was);
});
