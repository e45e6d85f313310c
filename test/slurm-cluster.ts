/**
 * A private Slurm cluster for tests: `munged` with its own key and socket, `slurmctld` and two
 * `slurmd` nodes (n1, n2) on 127.0.0.1 with free ports, every file (config, state, spool, logs)
 * under one temporary folder. The machine's /etc/slurm and /etc/munge are never read: clients
 * find the cluster through SLURM_CONF in `env`. `stop()` ends the daemons by their process ids.
 * Debian's slurm-wlm and munge (.ci/run installs them); `available()` says whether they are here.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as crypto from 'crypto';
import { tmpDir } from './helpers';

export interface Cluster {
  dir: string;
  conf: string;
  /** process.env plus SLURM_CONF: pass to every Slurm client (and to `rlhf submit`). */
  env: NodeJS.ProcessEnv;
  /** Runs a Slurm client command against this cluster. */
  run(cmd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

const DAEMONS = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/bin/squeue'];

export function available(): boolean {
  return DAEMONS.every((d) => fs.existsSync(d));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Three consecutive free ports (controller, node 1, node 2). */
async function ports(): Promise<number[]> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const ok = await Promise.all([0, 1, 2].map((i) => new Promise<boolean>((res) => {
      const s = net.createServer();
      s.once('error', () => res(false));
      s.listen(base + i, '127.0.0.1', () => s.close(() => res(true)));
    })));
    if (ok.every(Boolean)) return [base, base + 1, base + 2];
  }
  return [await freePort(), await freePort(), await freePort()];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startCluster(opts: { killWait?: number } = {}): Promise<Cluster> {
  const dir = tmpDir('rlhf-slurm-');
  const m = path.join(dir, 'munge');
  fs.mkdirSync(m, { mode: 0o711 });
  fs.writeFileSync(path.join(m, 'munge.key'), crypto.randomBytes(1024), { mode: 0o600 });
  for (const d of ['state', 'spool']) fs.mkdirSync(path.join(dir, d));
  const [ctld, n1, n2] = await ports();
  const socket = path.join(m, 'munge.socket');
  const conf = path.join(dir, 'slurm.conf');
  fs.writeFileSync(conf, [
    'ClusterName=rlhftest',
    'SlurmctldHost=localhost(127.0.0.1)',
    `SlurmctldPort=${ctld}`,
    'SlurmUser=root',
    'AuthType=auth/munge',
    `AuthInfo=socket=${socket}`,
    'CredType=cred/munge',
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool/%n`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd-%n.pid`,
    `SlurmctldLogFile=${dir}/slurmctld.log`,
    `SlurmdLogFile=${dir}/slurmd-%n.log`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'MpiDefault=none',
    'ReturnToService=2',
    'SchedulerType=sched/backfill',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'JobCompType=jobcomp/none',
    `KillWait=${opts.killWait ?? 10}`,
    // each node takes one job at a time (a job asks for both CPUs), so a 3-run array spreads over both
    `NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=${n1} CPUs=2 RealMemory=4000 State=UNKNOWN`,
    `NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=${n2} CPUs=2 RealMemory=4000 State=UNKNOWN`,
    'PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n'));
  const env = { ...process.env, SLURM_CONF: conf };
  const procs: ChildProcess[] = [];
  const daemon = (bin: string, args: string[], log: string) => {
    const out = fs.openSync(path.join(dir, log), 'a');
    const p = spawn(bin, args, { env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    procs.push(p);
    return p;
  };
  daemon('/usr/sbin/munged', ['-F', '-f', `--socket=${socket}`, `--key-file=${m}/munge.key`, `--log-file=${m}/munged.log`, `--pid-file=${m}/munged.pid`, `--seed-file=${m}/munged.seed`], 'munged.out');
  for (let i = 0; i < 50 && !fs.existsSync(socket); i++) await sleep(100);
  daemon('/usr/sbin/slurmctld', ['-D', '-i', '-f', conf], 'slurmctld.out');
  const run = (cmd: string, ...args: string[]) => {
    const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  for (let i = 0; i < 100 && run('scontrol', 'ping').stdout.indexOf('UP') < 0; i++) await sleep(100);
  daemon('/usr/sbin/slurmd', ['-D', '-N', 'n1', '-f', conf], 'slurmd-n1.out');
  daemon('/usr/sbin/slurmd', ['-D', '-N', 'n2', '-f', conf], 'slurmd-n2.out');
  const stop = async () => {
    for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGTERM');
    await sleep(300);
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  };
  for (let i = 0; ; i++) {
    const idle = run('sinfo', '-h', '-o', '%T %D').stdout.trim();
    if (/^idle 2$/m.test(idle)) break;
    if (i > 150) {
      const logs = ['slurmctld.out', 'slurmd-n1.out'].map((f) => fs.readFileSync(path.join(dir, f), 'utf8').slice(-800)).join('\n');
      await stop();
      throw new Error(`the private Slurm cluster did not come up (sinfo: ${idle || 'nothing'})\n${logs}`);
    }
    await sleep(100);
  }
  return { dir, conf, env, run, stop };
}
