/**
 * The pickers every stage command uses. They show only what fits the role (a reward model where a
 * reward model is needed, never as a policy; held-out prompts never first for training), describe
 * each item (run, step, evaluation figure, age; "final" once, with its step), remember the last
 * choice per stage and role (a model handed on by a finished run's next step, or "Use as model",
 * comes first when it is newer), and offer "Browse…". Model folders are read on the scan thread.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { ScanClient } from './scan-client';
import type { ModelInfo } from '../data/model-info';
import { age } from '../data/runs-tree';
import { cachedModels } from '../data/hub-cache';

/** What a model is picked for: a language model (SFT, DPO, PPO's policy, generation) or a reward model. */
export type ModelRole = 'policy' | 'reward';

/** Held-out files by name: evaluation data, offered last (and never as the default) for training. */
export const HELD_OUT = /held[-_]?out|(^|[^a-z])(eval|test)([^a-z]|$)/i;

const BROWSE = '\u0000browse';
const DOWNLOAD = '\u0000download';

interface Remembered {
  dir: string;
  at: number;
}

/** A model handed on for the next pick of this role (a finished run's next step, the Runs view's "Use as model"). */
export async function handOn(ctx: vscode.ExtensionContext, role: ModelRole, dir: string): Promise<void> {
  await ctx.workspaceState.update(`rlhf.handedOn.${role}`, { dir, at: Date.now() } satisfies Remembered);
}

/** The model to offer first: this stage's last pick for the role, or a newer hand-on, or the role's last pick anywhere. */
export function rememberedModel(ctx: vscode.ExtensionContext, role: ModelRole, stage?: string): string | undefined {
  const handed = ctx.workspaceState.get<Remembered>(`rlhf.handedOn.${role}`);
  const own = stage ? ctx.workspaceState.get<Remembered>(`rlhf.lastModel.${stage}.${role}`) : undefined;
  if (handed && (!own || handed.at > own.at)) return handed.dir;
  return own?.dir ?? ctx.workspaceState.get<string>(`rlhf.lastModel.${role}`) ?? (role === 'policy' ? ctx.workspaceState.get<string>('rlhf.lastModel') : undefined);
}

export interface ModelItem extends vscode.QuickPickItem {
  dir: string;
}

/**
 * The models a pick offers for a role: the workspace's model folders (whole models and LoRA
 * adapters, each described by the run that made it) and the Hugging Face cache's models; the
 * remembered one first, then the newest.
 */
export async function modelItems(ctx: vscode.ExtensionContext, scan: ScanClient, role: ModelRole = 'policy', stage?: string): Promise<ModelItem[]> {
  const uris = [...(await vscode.workspace.findFiles('**/config.json', '**/node_modules/**', 500)), ...(await vscode.workspace.findFiles('**/adapter_config.json', '**/node_modules/**', 200))];
  const last = rememberedModel(ctx, role, stage);
  const isModel = (d: string) => ['model.safetensors', 'model.safetensors.index.json', 'adapter_model.safetensors'].some((f) => fs.existsSync(path.join(d, f)));
  const hub = cachedModels();
  const dirs = [...new Set([...uris.map((u) => path.dirname(u.fsPath)).filter(isModel), ...hub.map((h) => h.dir)])];
  const reply = dirs.length ? await scan.ask({ type: 'models', dirs }) : undefined;
  const infos: ModelInfo[] = reply?.type === 'models' ? reply.models : dirs.map((dir) => ({ dir, scoreHead: false, modifiedMs: 0 }));
  for (const m of infos) m.hubId = hub.find((h) => h.dir === m.dir)?.id;
  // a run's last step checkpoint is the same model as its "final": shown once, as final
  const finals = new Set(infos.filter((m) => m.final && m.run).map((m) => `${m.run!.id}\u0000${m.step}`));
  const fits = infos.filter((m) => !m.problem && (role === 'reward' ? m.scoreHead : !m.scoreHead) && !(m.run && !m.final && finals.has(`${m.run.id}\u0000${m.step}`)));
  fits.sort((a, b) => Number(b.dir === last) - Number(a.dir === last) || b.modifiedMs - a.modifiedMs);
  const describe = (m: ModelInfo) =>
    [
      m.dir === last ? 'last used' : '',
      m.hubId ? 'Hugging Face cache' : m.run ? `${m.run.stage} run ${m.run.id}${m.run.status !== 'completed' ? ` (${m.run.status})` : ''}` : 'model folder',
      m.adapterOf ? `LoRA adapter on ${path.basename(m.adapterOf)}` : '',
      m.final ? `final${m.step !== undefined ? ` (step ${m.step})` : ''}` : m.step !== undefined ? `step ${m.step}` : '',
      m.metric ?? '',
      m.modifiedMs ? age(new Date(m.modifiedMs).toISOString()) : '',
    ].filter(Boolean).join(' · ');
  return fits.map((m) => ({ label: m.hubId ? `$(cloud-download) ${m.hubId}` : vscode.workspace.asRelativePath(m.dir), description: describe(m), dir: m.dir }));
}

export async function pickModel(ctx: vscode.ExtensionContext, scan: ScanClient, placeHolder: string, role: ModelRole = 'policy', stage?: string): Promise<string | undefined> {
  const fits = await modelItems(ctx, scan, role, stage);
  const items = [
    ...fits,
    { label: '$(folder-opened) Browse…', description: 'a model folder anywhere (config.json + model.safetensors)', dir: BROWSE },
    { label: '$(cloud-download) Download from Hugging Face…', description: 'a model id such as HuggingFaceTB/SmolLM2-135M-Instruct', dir: DOWNLOAD },
  ];
  if (!fits.length && role === 'reward') {
    const pick = await vscode.window.showWarningMessage('RLHF: no reward model in this workspace (a model folder whose weights have a score head). Train one on rankings first.', 'Train Reward Model', 'Browse…');
    if (pick === 'Train Reward Model') void vscode.commands.executeCommand('rlhf.trainRm');
    if (pick !== 'Browse…') return undefined;
  }
  let dir = fits.length || role !== 'reward' ? (await vscode.window.showQuickPick(items, { placeHolder, ignoreFocusOut: true, matchOnDescription: true }))?.dir : BROWSE;
  if (dir === DOWNLOAD) dir = await vscode.commands.executeCommand<string | undefined>('rlhf.downloadModel');
  if (dir === BROWSE) {
    const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use this model', title: placeHolder });
    dir = picked?.[0]?.fsPath;
    if (dir && !fs.existsSync(path.join(dir, 'config.json')) && !fs.existsSync(path.join(dir, 'adapter_config.json'))) {
      void vscode.window.showErrorMessage(`RLHF: ${dir} is not a model folder (no config.json).`);
      return undefined;
    }
  }
  if (dir) {
    await ctx.workspaceState.update(`rlhf.lastModel.${role}`, dir);
    if (stage) await ctx.workspaceState.update(`rlhf.lastModel.${stage}.${role}`, { dir, at: Date.now() } satisfies Remembered);
  }
  return dir;
}

/**
 * A dataset of the workspace. For training, held-out files (by name) come last and are marked;
 * for evaluation (`evaluation: true`) they come first. The last choice for the same glob comes first.
 */
export async function pickFile(ctx: vscode.ExtensionContext, glob: string, placeHolder: string, o: { evaluation?: boolean; problems?: (file: string) => number } = {}): Promise<string | undefined> {
  const files = (await vscode.workspace.findFiles(glob, '**/node_modules/**', 200)).map((f) => f.fsPath);
  if (!files.length) {
    void vscode.window.showErrorMessage(`RLHF: no ${glob} file in this workspace.`);
    return undefined;
  }
  const key = `rlhf.lastFile.${glob}${o.evaluation ? '.eval' : ''}`;
  const last = ctx.workspaceState.get<string>(key);
  const heldOut = (f: string) => HELD_OUT.test(path.basename(f));
  const bad = (f: string) => o.problems?.(f) ?? 0;
  // a file with problems goes last (training on it stops at its first bad line), then held-out ones
  const rank = (f: string) => (bad(f) ? 3 : f === last ? 0 : heldOut(f) === !!o.evaluation ? 1 : 2);
  files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const picked = await vscode.window.showQuickPick(
    files.map((f) => ({
      label: vscode.workspace.asRelativePath(f),
      description: [
        bad(f) ? `$(error) ${bad(f)} problem${bad(f) === 1 ? '' : 's'}: see the Problems panel` : '',
        f === last ? 'last used' : '',
        heldOut(f) ? (o.evaluation ? 'held-out prompts (recommended)' : 'held-out: for evaluation, not training') : '',
      ].filter(Boolean).join(' · '),
      file: f,
    })),
    { placeHolder, ignoreFocusOut: true },
  );
  if (picked) await ctx.workspaceState.update(key, picked.file);
  return picked?.file;
}
