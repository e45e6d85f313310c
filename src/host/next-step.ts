/**
 * What a finished or cancelled stage's notification offers: the model it made, its headline figure,
 * and the next step of the recipe (a reward model after SFT, PPO after the reward model, a blind
 * comparison after tuning), the run's dashboard, Resume after a cancel. Never a dead end.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import type { RunSummary } from '../data/runs-tree';
import { handOn } from './pickers';

interface Step {
  label: string;
  run: () => Thenable<unknown>;
}

export async function reportDone(ctx: vscode.ExtensionContext, title: string, run: RunSummary | undefined, cancelled: boolean, o: { pipelineOut?: string } = {}): Promise<void> {
  const rel = (p: string) => vscode.workspace.asRelativePath(p);
  if (o.pipelineOut) return pipelineDone(title, run, cancelled, o.pipelineOut);
  const dashboard: Step | undefined = run && { label: 'Open Dashboard', run: () => vscode.commands.executeCommand('rlhf.runs.openDashboard', { kind: 'run', dir: run.dir }) };
  if (cancelled) {
    const steps: Step[] = run ? [{ label: 'Resume', run: () => vscode.commands.executeCommand('rlhf.runs.resume', { kind: 'run', dir: run.dir }) }, dashboard!] : [];
    const last = run?.checkpoints.filter((c) => c.label !== 'final').at(-1);
    return offer(`RLHF: ${title} cancelled at a checkpoint${last ? ` (${last.label})` : ''}; Resume continues it exactly (also from the Runs view).`, steps);
  }
  const final = run && path.join(run.dir, 'checkpoints', 'final');
  if (!run || !final || !fs.existsSync(path.join(final, 'config.json'))) return offer(`RLHF: ${title} finished.`, dashboard ? [dashboard] : []);
  const use = async (role: 'policy' | 'reward', command: string) => {
    await handOn(ctx, role, final); // first in the next pick
    return vscode.commands.executeCommand(command);
  };
  const next: Record<string, Step[]> = {
    pretrain: [{ label: 'Train SFT Model on it', run: () => use('policy', 'rlhf.trainSft') }],
    sft: [{ label: 'Train Reward Model from it', run: () => use('policy', 'rlhf.trainRm') }, { label: 'Train DPO on it', run: () => use('policy', 'rlhf.trainDpo') }],
    rm: [{ label: 'Run PPO with it', run: () => use('reward', 'rlhf.runPpo') }],
    ppo: [{ label: 'Compare Models (blind)', run: () => vscode.commands.executeCommand('rlhf.compareModels') }],
    dpo: [{ label: 'Compare Models (blind)', run: () => vscode.commands.executeCommand('rlhf.compareModels') }],
    grpo: [{ label: 'Compare Models (blind)', run: () => vscode.commands.executeCommand('rlhf.compareModels') }],
    rloo: [{ label: 'Compare Models (blind)', run: () => vscode.commands.executeCommand('rlhf.compareModels') }],
  };
  const reveal: Step = { label: 'Reveal', run: () => vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(final)) };
  return offer(`RLHF: ${title} finished: the model is in ${rel(final)}${run.metric ? ` (${run.metric})` : ''}.`, [...(next[run.info.stage] ?? []), dashboard!, reveal]);
}

/** The pipeline: its summary when it finished; when cancelled, the stage run it stopped in (Resume continues that run only). */
function pipelineDone(title: string, run: RunSummary | undefined, cancelled: boolean, out: string): Promise<void> {
  const dashboard: Step[] = run ? [{ label: 'Open Dashboard', run: () => vscode.commands.executeCommand('rlhf.runs.openDashboard', { kind: 'run', dir: run.dir }) }] : [];
  if (cancelled) {
    const resume: Step[] = run ? [{ label: 'Resume that run', run: () => vscode.commands.executeCommand('rlhf.runs.resume', { kind: 'run', dir: run.dir }) }] : [];
    return offer(`RLHF: ${title} cancelled${run ? ` during its ${run.info.stage} run (${run.info.id}), at a checkpoint. Resume continues that run; the pipeline's later stages do not run` : ''}.`, [...resume, ...dashboard]);
  }
  const summary = path.join(out, 'summary.json');
  const open: Step = { label: 'Open Summary', run: () => vscode.window.showTextDocument(vscode.Uri.file(summary)) };
  return offer(`RLHF: ${title} finished: the comparison of SFT, PPO, DPO, GRPO and RLOO on held-out prompts is in ${vscode.workspace.asRelativePath(summary)} (and the log); the runs are in the Runs view.`, [
    ...(fs.existsSync(summary) ? [open] : []),
    { label: 'Compare Models (blind)', run: () => vscode.commands.executeCommand('rlhf.compareModels') },
  ]);
}

async function offer(message: string, steps: Step[]): Promise<void> {
  const pick = await vscode.window.showInformationMessage(message, ...steps.map((s) => s.label));
  await steps.find((s) => s.label === pick)?.run();
}
