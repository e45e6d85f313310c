/**
 * Slurm's client commands (sbatch, squeue, scontrol, sacct, scancel, sinfo), run here or on a login
 * node over ssh, with their output parsed and their failures turned into one line that says what
 * to do. Pure Node (child_process): the CLI and the extension host both use it.
 */
import { spawn } from 'child_process';
import { JobState } from '../data/cluster-run';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where Slurm's commands run: this machine, or a login node over ssh. */
export interface Shell {
  /** "this machine" or "login1 (over ssh)", for messages. */
  where: string;
  ssh?: string;
  exec(argv: string[], input?: string): Promise<ExecResult>;
}

export class ClusterError extends Error {}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 60_000): Promise<ExecResult & { missing?: boolean }> {
  return new Promise((resolve) => {
    let stdout = '', stderr = '';
    const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: e.message, missing: e.code === 'ENOENT' });
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: signal === 'SIGKILL' ? `${stderr}\ntimed out after ${timeoutMs / 1000} s` : stderr });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

export function localShell(env: NodeJS.ProcessEnv = process.env): Shell {
  return {
    where: 'this machine',
    async exec(argv, input) {
      const r = await run(argv[0], argv.slice(1), env, input);
      if (r.missing) throw new ClusterError(`${argv[0]} is not on the PATH here: run this on the cluster's login node (or in VS Code connected to it with Remote-SSH), or pass --ssh HOST`);
      return r;
    },
  };
}

/** A word for a POSIX shell on the far side of ssh. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The system ssh client with the user's own configuration (keys, ProxyJump, ControlMaster);
 * RLHF_SSH_CONFIG names another config file. BatchMode: never a password prompt.
 */
export function sshShell(host: string, env: NodeJS.ProcessEnv = process.env): Shell {
  const base = [...(env.RLHF_SSH_CONFIG ? ['-F', env.RLHF_SSH_CONFIG] : []), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];
  return {
    where: `${host} (over ssh)`,
    ssh: host,
    async exec(argv, input) {
      const r = await run('ssh', [...base, host, '--', argv.map(shellQuote).join(' ')], env, input);
      if (r.missing) throw new ClusterError('ssh is not on the PATH here: install the OpenSSH client');
      if (r.code === 255) throw new ClusterError(`cannot reach ${host} over ssh: ${lastLine(r.stderr) || 'connection failed'} (check that \`ssh ${host}\` works without a password)`);
      if (r.code === 127 && /not found/.test(r.stderr)) throw new ClusterError(`${argv[0]} is not on the PATH on ${host}: is it the cluster's login node?`);
      return r;
    },
  };
}

export function lastLine(s: string): string {
  return s.trim().split('\n').filter((l) => l.trim()).at(-1)?.trim() ?? '';
}

/** sbatch's complaint without its "sbatch: error: " prefixes, as one line. */
function slurmError(s: string): string {
  const lines = s.trim().split('\n').map((l) => l.replace(/^(sbatch|squeue|scontrol|scancel|sinfo|sacct): error: /, '').replace(/^Batch job submission failed: */, '').trim()).filter(Boolean);
  return lines.join('; ') || 'no reason given';
}

/** The cluster's partitions (the default one first). */
export async function partitions(sh: Shell): Promise<string[]> {
  const r = await sh.exec(['sinfo', '-h', '-o', '%P']);
  if (r.code !== 0) throw new ClusterError(`sinfo failed on ${sh.where}: ${slurmError(r.stderr)} (is the Slurm controller up?)`);
  const names = [...new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean))];
  return [...names.filter((n) => n.endsWith('*')), ...names.filter((n) => !n.endsWith('*'))].map((n) => n.replace(/\*$/, ''));
}

/** Submits a job script (a path on the cluster's side); returns the job id. */
export async function sbatch(sh: Shell, script: string, args: string[] = []): Promise<string> {
  const r = await sh.exec(['sbatch', '--parsable', ...args, script]);
  if (r.code !== 0) throw new ClusterError(`the cluster refused the job: ${slurmError(r.stderr)}`);
  const id = r.stdout.trim().split('\n').at(-1)!.split(';')[0].trim();
  if (!/^\d+$/.test(id)) throw new ClusterError(`sbatch answered "${r.stdout.trim().slice(0, 80)}" instead of a job id`);
  return id;
}

export async function scancel(sh: Shell, ids: string[]): Promise<void> {
  if (!ids.length) return;
  const r = await sh.exec(['scancel', ...ids]);
  if (r.code !== 0) throw new ClusterError(`scancel failed: ${slurmError(r.stderr)}`);
}

export async function release(sh: Shell, id: string): Promise<void> {
  const r = await sh.exec(['scontrol', 'release', id]);
  if (r.code !== 0) throw new ClusterError(`scontrol release ${id} failed: ${slurmError(r.stderr)}`);
}

/** squeue's lines "12_0|RUNNING|None|n1" for the user's jobs, array tasks one per line. */
export function parseSqueue(text: string): Map<string, Omit<JobState, 'updated_at'>> {
  const out = new Map<string, Omit<JobState, 'updated_at'>>();
  for (const line of text.split('\n')) {
    const [id, name, reason, node] = line.trim().split('|');
    if (!id || !name) continue;
    out.set(id, { name, ...(reason && reason !== 'None' && name === 'PENDING' ? { reason } : {}), ...(node && name !== 'PENDING' ? { node } : {}) });
  }
  return out;
}

/** `scontrol show job -o` output: Key=Value pairs on one line. */
export function parseScontrol(text: string): Map<string, Omit<JobState, 'updated_at'>> {
  const out = new Map<string, Omit<JobState, 'updated_at'>>();
  for (const line of text.split('\n')) {
    if (!line.includes('JobId=')) continue;
    const kv = new Map<string, string>();
    for (const m of line.matchAll(/(\w+)=(\S*)/g)) if (!kv.has(m[1])) kv.set(m[1], m[2]);
    const arrayJob = kv.get('ArrayJobId'), task = kv.get('ArrayTaskId');
    const id = arrayJob && task !== undefined && /^\d+$/.test(task) ? `${arrayJob}_${task}` : kv.get('JobId')!;
    const name = kv.get('JobState') ?? 'UNKNOWN', reason = kv.get('Reason'), node = kv.get('NodeList');
    out.set(id, {
      name,
      ...(reason && reason !== 'None' ? { reason } : {}),
      ...(node && node !== '(null)' && name !== 'PENDING' ? { node } : {}),
      ...(kv.get('ExitCode') ? { exit_code: kv.get('ExitCode') } : {}),
      ...(kv.has('Restarts') ? { restarts: Number(kv.get('Restarts')) } : {}),
    });
  }
  return out;
}

/** sacct -P lines "12_0|COMPLETED|n1|0:0" (a state may read "CANCELLED by 0"). */
export function parseSacct(text: string): Map<string, Omit<JobState, 'updated_at'>> {
  const out = new Map<string, Omit<JobState, 'updated_at'>>();
  for (const line of text.split('\n')) {
    const [id, state, node, exit] = line.trim().split('|');
    if (!id || !state || id.includes('.')) continue;
    out.set(id, { name: state.split(' ')[0], ...(node && node !== 'None assigned' ? { node } : {}), ...(exit ? { exit_code: exit } : {}) });
  }
  return out;
}

/**
 * The states of these jobs, asking the controller as little as possible: one squeue for every
 * job it still holds, then scontrol for jobs that ended recently, then sacct where accounting
 * exists. A job none of them knows is missing from the map (the caller falls back on the run's
 * own files).
 */
export async function jobStates(sh: Shell, ids: string[]): Promise<Map<string, Omit<JobState, 'updated_at'>>> {
  const found = new Map<string, Omit<JobState, 'updated_at'>>();
  if (!ids.length) return found;
  const q = await sh.exec(['squeue', '-h', '-r', '--me', '-o', '%i|%T|%r|%N']);
  if (q.code !== 0) throw new ClusterError(`squeue failed on ${sh.where}: ${slurmError(q.stderr)}`);
  const queued = parseSqueue(q.stdout);
  for (const id of ids) if (queued.has(id)) found.set(id, queued.get(id)!);
  let rest = ids.filter((id) => !found.has(id));
  // a job squeue no longer lists has ended: scontrol has its final state, exit code and restart
  // count while the controller remembers it (once per job: a final state is never asked again)
  const detail = ids.filter((id) => !found.has(id));
  if (detail.length) {
    // one job per call (scontrol takes one id); a job it has forgotten is an error we pass over
    for (const id of detail.slice(0, 50)) {
      const shown = parseScontrol((await sh.exec(['scontrol', 'show', 'job', '-o', id])).stdout).get(id);
      if (shown) found.set(id, shown);
    }
    rest = ids.filter((id) => !found.has(id));
  }
  if (rest.length) {
    const a = await sh.exec(['sacct', '-n', '-P', '-X', '-j', rest.join(','), '-o', 'JobID,State,NodeList,ExitCode']);
    if (a.code === 0) for (const [id, st] of parseSacct(a.stdout)) if (rest.includes(id)) found.set(id, st);
  }
  return found;
}
