/**
 * Commands that open the panels: Rank Responses (from a PPO or RM file, or a typed prompt) and
 * Open Training Dashboard (a run, several runs, all runs of a stage, or the running one). Also
 * the serializers that bring open panels back after a reload.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { insideFolder } from '../../data/durable';
import { RankingPanel, RankingSessionConfig } from './ranking-panel';
import { DashboardPanel } from './dashboard-panel';
import { listRuns, type RunNode } from '../../data/runs-tree';
import { fileArg } from '../file-arg';
import { pickFile } from '../pickers';

export interface PanelDeps {
  runsDir(): string | undefined;
  pickModel(placeHolder: string, role?: 'policy' | 'reward', stage?: string): Promise<string | undefined>;
  /** Runs an `rlhf` command in the worker with progress; resolves when it ends (its result via onResult). */
  runStage(title: string, argv: string[], onResult?: (v: Record<string, unknown>) => void): Promise<void>;
}

/** Where an evaluation's votes go: one dataset for every evaluation (each vote names its evaluation). */
const EVAL_FILE = 'data/evaluations.rm.jsonl';


const NEW_FILE = 'data/rankings.rm.jsonl';

export function registerPanelCommands(ctx: vscode.ExtensionContext, deps: PanelDeps): void {
  const folder = () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;

  /** The RM file rankings go to: an existing one, or a new one (the annotator chooses; the webview never does). */
  async function pickTarget(source?: string): Promise<string | undefined> {
    const root = folder()!;
    const files = (await vscode.workspace.findFiles('**/*.rm.jsonl', '**/node_modules/**', 200)).map((u) => u.fsPath).filter((f) => f !== source);
    const last = ctx.workspaceState.get<string>('rlhf.ranking.lastTarget');
    const items = [
      ...(last && files.includes(last) ? [{ label: vscode.workspace.asRelativePath(last), description: 'last used', file: last }] : []),
      ...(fs.existsSync(path.join(root, NEW_FILE)) ? [] : [{ label: NEW_FILE, description: 'new file', file: path.join(root, NEW_FILE) }]),
      ...files.filter((f) => f !== last).map((f) => ({ label: vscode.workspace.asRelativePath(f), description: '', file: f })),
    ];
    const picked = await vscode.window.showQuickPick(items, { placeHolder: 'RM file the rankings are appended to', ignoreFocusOut: true });
    if (!picked) return undefined;
    // symlinks resolved first: a committed link must not send rankings outside the folder
    if (!insideFolder(picked.file, root)) return void vscode.window.showErrorMessage(`RLHF: rankings are written inside the workspace folder; ${vscode.workspace.asRelativePath(picked.file)} resolves outside it.`);
    await ctx.workspaceState.update('rlhf.ranking.lastTarget', picked.file);
    return picked.file;
  }

  async function startRanking(source: RankingSessionConfig['source']): Promise<void> {
    if (!folder()) return void vscode.window.showErrorMessage('RLHF: open a folder first; rankings are written inside it.');
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: ranking writes files; trust this workspace first.');
    const model = await deps.pickModel('Model that writes the responses (e.g. the SFT model)', 'policy', 'rank');
    const target = model && (await pickTarget('file' in source ? source.file : undefined));
    if (!model || !target) return;
    const previous = ctx.workspaceState.get<RankingSessionConfig>('rlhf.ranking.session');
    // the same prompts into the same file: keep the skipped list (ranked prompts come from the file)
    const same = previous && JSON.stringify(previous.source) === JSON.stringify(source) && previous.target === target;
    await RankingPanel.open(ctx, { source, target, model, skipped: same ? previous.skipped : [] });
  }

  /** Compare Models (blind): two or more models, prompts (held-out first), the items made in the worker, then the panel in evaluation mode. */
  async function compareModels(): Promise<void> {
    const root = folder();
    if (!root) return void vscode.window.showErrorMessage('RLHF: open a folder first; the votes are written inside it.');
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: an evaluation writes files and runs models; trust this workspace first.');
    const dirs = (await vscode.workspace.findFiles('**/config.json', '**/node_modules/**', 500)).map((u) => path.dirname(u.fsPath)).sort();
    const models = await vscode.window.showQuickPick(dirs.map((d) => ({ label: vscode.workspace.asRelativePath(d), dir: d })), { canPickMany: true, placeHolder: 'Two or more models to compare blind (e.g. the SFT model and the tuned one)', ignoreFocusOut: true });
    if (!models) return;
    if (models.length < 2) return void vscode.window.showErrorMessage('RLHF: pick two or more models to compare.');
    const promptsFile = await pickFile(ctx, '**/*.ppo.jsonl', 'Prompts to compare the models on (held-out ones: the tuned models have not seen them)', { evaluation: true });
    if (!promptsFile) return;
    const prompts = { file: promptsFile, label: vscode.workspace.asRelativePath(promptsFile) };
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const name = `compare-${stamp}`;
    const items = path.join(root, '.rlhf', 'evals', name, 'items.jsonl');
    const g = vscode.workspace.getConfiguration('rlhf.generation');
    const n = Math.max(1, Math.round(vscode.workspace.getConfiguration('rlhf.evaluation').get<number>('items', 20)));
    const argv = ['compare', '--models', models.map((m) => m.label).join(','), '--prompts', prompts.file, '--name', name, '--out', items, '--items', String(n),
      '--max-tokens', String(g.get('maxTokens', 128)), '--temperature', String(g.get('temperature', 0.8)), '--top-k', String(g.get('topK', 0)), '--top-p', String(g.get('topP', 1)), '--gen-seed', String(g.get('seed', 1))];
    let made = false;
    await deps.runStage(`Compare Models: ${models.length} models on ${prompts.label}`, argv, () => (made = true));
    if (!made || !fs.existsSync(items)) return;
    const target = path.join(root, EVAL_FILE);
    await RankingPanel.open(ctx, { source: { file: prompts.file }, target, model: '', skipped: [], evaluation: { items, name } });
  }

  /** One run, all runs of a stage, or "compare several" (a multi-select); shows the dashboard. */
  async function pickAndShow(dir: string): Promise<void> {
    const all = listRuns(dir);
    if (!all.length) return void vscode.window.showInformationMessage('RLHF: no runs yet; start one with RLHF: Train SFT Model or RLHF: Pretrain.');
    const describe = (r: (typeof all)[number]) => `${r.info.status}${r.metric ? ` · ${r.metric}` : ''}`;
    const stages = [...new Set(all.map((r) => r.info.stage))];
    const COMPARE = 'compare';
    const picked = await vscode.window.showQuickPick(
      [
        ...all.map((r) => ({ label: r.info.id, description: describe(r), value: path.basename(r.dir) })),
        ...stages.map((s) => ({ label: `$(graph-line) All ${s} runs`, description: `${all.filter((r) => r.info.stage === s).length} run(s), overlaid; new ones join`, value: `stage:${s}` })),
        ...(all.length > 1 ? [{ label: '$(list-selection) Compare several runs…', description: '', value: COMPARE }] : []),
      ],
      { placeHolder: 'Run to show', ignoreFocusOut: true },
    );
    if (!picked) return;
    if (picked.value.startsWith('stage:')) return DashboardPanel.show(ctx, dir, { stage: picked.value.slice(6) });
    if (picked.value !== COMPARE) return DashboardPanel.show(ctx, dir, { ids: [picked.value] });
    const several = await vscode.window.showQuickPick(
      all.map((r) => ({ label: r.info.id, description: describe(r), value: path.basename(r.dir) })),
      { canPickMany: true, placeHolder: 'Runs to overlay on the same charts', ignoreFocusOut: true },
    );
    if (several?.length) DashboardPanel.show(ctx, dir, { ids: several.map((p) => p.value) });
  }

  ctx.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(RankingPanel.viewType, RankingPanel.serializer(ctx)),
    vscode.window.registerWebviewPanelSerializer(DashboardPanel.viewType, DashboardPanel.serializer(ctx, deps.runsDir)),
    vscode.commands.registerCommand('rlhf.rank', async (arg?: unknown) => {
      let file = fileArg(arg);
      if (!file) {
        const files = await vscode.workspace.findFiles('**/*.{ppo,rm}.jsonl', '**/node_modules/**', 200);
        const picked = await vscode.window.showQuickPick(
          [{ label: '$(edit) Type a prompt…', file: '' }, ...files.map((f) => ({ label: vscode.workspace.asRelativePath(f), file: f.fsPath }))],
          { placeHolder: 'Prompts to rank responses for (a PPO or RM file)', ignoreFocusOut: true },
        );
        if (!picked) return;
        if (!picked.file) return vscode.commands.executeCommand('rlhf.rankPrompt');
        file = picked.file;
      }
      await startRanking({ file });
    }),
    vscode.commands.registerCommand('rlhf.compareModels', compareModels),
    // from the Generate panel: rank the responses it shows (2 to 9), into an RM file
    vscode.commands.registerCommand('rlhf.rankThese', async (arg?: unknown) => {
      const a = arg as { prompt?: unknown; responses?: unknown; models?: unknown } | undefined;
      const ok = typeof a?.prompt === 'string' && Array.isArray(a.responses) && a.responses.every((r) => typeof r === 'string') && Array.isArray(a.models) && a.models.length === a.responses.length && a.models.every((m) => typeof m === 'string');
      if (!ok) return;
      const { prompt, responses, models } = a as { prompt: string; responses: string[]; models: string[] };
      if (responses.length < 2 || responses.length > 9) return void vscode.window.showWarningMessage(`RLHF: a ranking has 2 to 9 responses; the panel shows ${responses.length}. Change the samples or the models, then Rank these.`);
      if (!folder()) return void vscode.window.showErrorMessage('RLHF: open a folder first; rankings are written inside it.');
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: ranking writes files; trust this workspace first.');
      const target = await pickTarget(undefined);
      if (target) await RankingPanel.open(ctx, { source: { prompt, responses, models }, target, model: models[0], skipped: [] });
    }),
    vscode.commands.registerCommand('rlhf.rankPrompt', async () => {
      const prompt = await vscode.window.showInputBox({ prompt: 'Prompt to rank responses for', ignoreFocusOut: true, value: ctx.workspaceState.get<string>('rlhf.lastPrompt') });
      if (!prompt?.trim()) return;
      await ctx.workspaceState.update('rlhf.lastPrompt', prompt);
      await startRanking({ prompt });
    }),
    vscode.commands.registerCommand('rlhf.openDashboard', async (arg?: unknown) => {
      const dir = deps.runsDir();
      if (!dir) return void vscode.window.showErrorMessage('RLHF: open a folder first.');
      if (arg === 'running') {
        // from the status bar: the run being trained now (the newest running one)
        const running = listRuns(dir).filter((r) => r.info.status === 'running').sort((a, b) => b.info.started_at.localeCompare(a.info.started_at));
        if (running.length) return DashboardPanel.show(ctx, dir, { ids: [path.basename(running[0].dir)] });
      }
      await pickAndShow(dir);
    }),
    vscode.commands.registerCommand('rlhf.runs.openDashboard', (node?: RunNode) => {
      const dir = deps.runsDir();
      if (!dir || !node) return;
      if (node.kind === 'run') DashboardPanel.show(ctx, dir, { ids: [path.basename(node.dir)] });
      else if (node.kind === 'stage') DashboardPanel.show(ctx, dir, { stage: node.stage });
    }),
  );
}
