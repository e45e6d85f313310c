/**
 * "RLHF: Run on Cluster…": the pipeline (one Slurm job per stage) or any training stage (picked
 * with the stage's own pickers, optionally swept) submitted with `rlhf submit`; the Runs view then
 * shows the jobs' states (polled with squeue/scontrol, see RunsTreeProvider), "Cancel Cluster Job"
 * is scancel, and Resume on a cluster run resubmits it from its checkpoint.
 */
import * as vscode from 'vscode';
import * as path from 'path';
import { runCliJson } from './cli-json';
import { Shell, localShell, partitions, sshShell } from '../cluster/slurm';
import { cancelRun, refreshStates } from '../cluster/submit';
import type { RunNode } from '../data/runs-tree';

export interface ClusterChoice {
  partition?: string;
  time?: string;
  sweep: string[];
  seeds?: number;
}

const settings = () => vscode.workspace.getConfiguration('rlhf.cluster');

export function clusterShell(ssh?: string): Shell {
  const host = ssh ?? (settings().get<string>('ssh', '') || undefined);
  return host ? sshShell(host) : localShell();
}

/** Asks Slurm for the states of the folder's open cluster runs (the Runs view calls it while any is open). */
export function pollCluster(runsDir: string): Promise<unknown> {
  return refreshStates(runsDir, (ssh) => clusterShell(ssh));
}

export function pollSeconds(): number {
  return Math.max(1, settings().get<number>('pollSeconds', 10));
}

/** Partition, time limit, and for a stage an optional sweep: undefined when the user backs out. */
async function askResources(stage: boolean): Promise<ClusterChoice | undefined> {
  let parts: string[];
  try {
    parts = await partitions(clusterShell());
  } catch (e) {
    void vscode.window.showErrorMessage(`RLHF: ${(e as Error).message}`, 'Open Settings').then((b) => b && vscode.commands.executeCommand('workbench.action.openSettings', 'rlhf.cluster'));
    return undefined;
  }
  const preferred = settings().get<string>('partition', '');
  const partition = await vscode.window.showQuickPick(
    parts.map((p, i) => ({ label: p, description: i === 0 ? 'the cluster\'s default' : undefined, picked: p === preferred })).sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred)),
    { placeHolder: 'Slurm partition', ignoreFocusOut: true },
  );
  if (!partition) return undefined;
  const time = await vscode.window.showInputBox({
    prompt: 'Time limit per job (minutes, or D-HH:MM:SS); two minutes before it the stage checkpoints and the job requeues itself',
    value: settings().get<string>('time', '60'), ignoreFocusOut: true,
    validateInput: (v) => (/^(\d+|(\d+-)?\d{1,2}(:\d{2}){0,2})$/.test(v.trim()) ? undefined : 'minutes (90), HH:MM:SS (01:30:00) or D-HH:MM:SS'),
  });
  if (time === undefined) return undefined;
  const choice: ClusterChoice = { partition: partition.label, time: time.trim(), sweep: [] };
  if (stage) {
    const sweep = await vscode.window.showInputBox({
      prompt: 'Sweep (optional): one run per value of a stage option, e.g. "beta=0.05,0.1,0.2" or "lr=1e-4,3e-4 seeds=3"; empty for one run',
      placeHolder: 'KEY=V1,V2 … seeds=N', ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' || v.trim().split(/\s+/).every((w) => /^[\w-]+=[^=\s]+$/.test(w)) ? undefined : 'KEY=V1,V2 separated by spaces; seeds=N for repeated seeds'),
    });
    if (sweep === undefined) return undefined;
    for (const w of sweep.trim().split(/\s+/).filter(Boolean)) {
      if (w.startsWith('seeds=')) choice.seeds = Number(w.slice(6));
      else choice.sweep.push(w);
    }
  }
  return choice;
}

/** Runs `rlhf submit --json … -- argv`; resolves with the job ids, or shows the one-line error. */
export function submit(context: vscode.ExtensionContext, cwd: string, choice: ClusterChoice, argv: string[], log: (l: string) => void): Promise<string[] | undefined> {
  const s = settings();
  const flags = [
    ...(choice.partition ? ['--partition', choice.partition] : []),
    ...(choice.time ? ['--time', choice.time] : []),
    ...(s.get<number>('cpusPerTask', 0) ? ['--cpus-per-task', String(s.get<number>('cpusPerTask'))] : []),
    ...(s.get<number>('gpusPerNode', 0) ? ['--gpus-per-node', String(s.get<number>('gpusPerNode'))] : []),
    ...(s.get<string>('ssh', '') ? ['--ssh', s.get<string>('ssh')!] : []),
    '--node', s.get<string>('node', 'node') || 'node',
    ...choice.sweep.flatMap((w) => ['--sweep', w]),
    ...(choice.seeds ? ['--seeds', String(choice.seeds)] : []),
  ];
  const ids: string[] = [];
  return runCliJson(context.extensionPath, ['submit', ...flags, '--', ...argv], cwd, (m) => {
    if (m.type === 'estimate' && typeof m.line === 'string') return log(m.line); // the cost of each run, before it is queued
    if (m.type !== 'submitted' || typeof m.job_id !== 'string') return;
    ids.push(m.job_id);
    log(`submitted ${m.stage} as Slurm job ${m.job_id}: ${((m.runs as string[] | undefined) ?? []).join(', ')}`);
  }, log).then(({ code, error }) => {
    if (code === 0) return ids;
    void vscode.window.showErrorMessage(`RLHF: ${error ?? `rlhf submit exited with ${code}`}`);
    return undefined;
  });
}

export interface ClusterDeps {
  runsDir: () => string | undefined;
  folder: () => string | undefined;
  refreshRuns: () => Promise<void>;
  log: (line: string) => void;
  /** Runs a stage command (it picks its inputs, then calls runStage, which submits while `target` is set). */
  target: { cluster?: ClusterChoice };
}

const STAGES: { label: string; description: string; command?: string; stage?: boolean }[] = [
  { label: 'Pipeline', description: 'SFT, reward model, then the tuning algorithms: one job per stage, each after the one it reads' },
  { label: 'Train SFT Model', description: 'sft', command: 'rlhf.trainSft', stage: true },
  { label: 'Train Reward Model', description: 'rm', command: 'rlhf.trainRm', stage: true },
  { label: 'Train DPO Model', description: 'dpo', command: 'rlhf.trainDpo', stage: true },
  { label: 'Run PPO', description: 'ppo', command: 'rlhf.runPpo', stage: true },
  { label: 'Run GRPO', description: 'grpo', command: 'rlhf.runGrpo', stage: true },
  { label: 'Run RLOO', description: 'rloo', command: 'rlhf.runRloo', stage: true },
];

export function registerClusterCommands(context: vscode.ExtensionContext, deps: ClusterDeps): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.runOnCluster', async () => {
      const cwd = deps.folder(), dir = deps.runsDir();
      if (!cwd || !dir) return void vscode.window.showErrorMessage('RLHF: open a folder first; cluster runs are written inside it (on a filesystem the cluster shares).');
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: training is disabled in an untrusted workspace.');
      const what = await vscode.window.showQuickPick(STAGES, { placeHolder: 'What to run on the Slurm cluster', ignoreFocusOut: true });
      if (!what) return;
      const choice = await askResources(Boolean(what.stage));
      if (!choice) return;
      if (what.command) {
        deps.target.cluster = choice;
        try {
          await vscode.commands.executeCommand(what.command);
        } finally {
          deps.target.cluster = undefined;
        }
        return;
      }
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const extra = vscode.workspace.getConfiguration('rlhf.cluster').get<string[]>('pipelineOptions', []);
      await submitAndTell(context, cwd, choice, ['pipeline', '--runs-dir', dir, '--run-prefix', `cluster-${stamp}-`, ...extra], deps);
    }),
    vscode.commands.registerCommand('rlhf.runs.cancelJob', async (node?: RunNode) => {
      if (node?.kind !== 'run') return;
      try {
        const job = await cancelRun(node.dir, (ssh) => clusterShell(ssh));
        void vscode.window.showInformationMessage(`RLHF: cancelled Slurm job ${job.job_id} (${node.label}). A running stage checkpoints first; Resume resubmits it.`);
      } catch (e) {
        void vscode.window.showErrorMessage(`RLHF: ${(e as Error).message}`);
      }
      await pollCluster(path.dirname(node.dir)).catch(() => undefined);
      await deps.refreshRuns();
    }),
  );
}

export async function submitAndTell(context: vscode.ExtensionContext, cwd: string, choice: ClusterChoice, argv: string[], deps: Pick<ClusterDeps, 'refreshRuns' | 'log'>): Promise<void> {
  const ids = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'RLHF: submitting to the cluster…' }, () => submit(context, cwd, choice, argv, deps.log));
  if (!ids) return;
  await deps.refreshRuns();
  void vscode.window.showInformationMessage(`RLHF: submitted ${ids.length === 1 ? `Slurm job ${ids[0]}` : `${ids.length} Slurm jobs (${ids.join(', ')})`}. The Runs view follows their state.`);
}
