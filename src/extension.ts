/**
 * The extension host: thin wiring from VS Code commands to the training worker. It never
 * imports TensorFlow.js; every stage runs in the worker process.
 */
import * as vscode from 'vscode';
import { ModelRole, handOn, modelItems, pickFile as pickDataset, pickModel as pickModelOf } from './host/pickers';
import { reportFailure } from './host/failure';
import { isDawnNote, readableLine, runDirOf } from './host/log-lines';
import { reportDone } from './host/next-step';
import * as path from 'path';
import { WorkerClient } from './host/worker-client';
import { DatasetStore } from './host/datasets/dataset-store';
import { ScanClient } from './host/scan-client';
import { DatasetTreeProvider } from './host/datasets/dataset-tree-provider';
import { DatasetDiagnostics, DatasetQuickFixes, isDatasetDocument } from './host/datasets/diagnostics';
import { registerDatasetCommands } from './host/datasets/commands';
import { RunsTreeProvider } from './host/runs-tree-provider';
import { generationSettings, stageFlags } from './host/settings';
import { nativeModulesDir, registerProjectCommands } from './host/project-commands';
import { registerBackendCommands } from './host/backend-commands';
import { registerDownloadCommand } from './host/download-command';
import { pickPretrain } from './host/pretrain-picks';
import { GeneratePanel } from './host/panels/generate-panel';
import * as fs from 'fs';
import { listRuns, type RunNode } from './data/runs-tree';
import { registerPanelCommands } from './host/panels/commands';
import { registerExportCommand } from './host/export-command';
import { registerImportCommand } from './host/import-command';
import { ClusterChoice, pollCluster, pollSeconds, registerClusterCommands, submitAndTell } from './host/cluster-commands';

export function activate(context: vscode.ExtensionContext): void {
  const t0 = performance.now();
  // everything a workspace holds is read on this thread's side, never on the host's own
  const scan = ScanClient.forExtension(context.extensionPath);
  context.subscriptions.push({ dispose: () => scan.dispose() });
  // problems per dataset file, from the Datasets view's store (the pickers mark such files)
  let problemsOf: (file: string) => number = () => 0;
  try {
    problemsOf = activateDatasets(context, scan);
  } catch (e) {
    void vscode.window.showErrorMessage(`RLHF: the Datasets view failed to start: ${(e as Error).message}`);
  }
  const log = vscode.window.createOutputChannel('RLHF', { log: true });
  const worker = new WorkerClient(context.extensionPath);
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left);
  const backendStatus = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 90);
  context.subscriptions.push(log, status, backendStatus);
  registerProjectCommands(context, backendStatus);
  registerBackendCommands(context);
  registerDownloadCommand(context);

  const folder = () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const cfg = () => vscode.workspace.getConfiguration('rlhf');
  const runsFolder = () => cfg().get<string>('runsFolder', '.rlhf/runs');
  const runsDir = () => (folder() ? path.resolve(folder()!, runsFolder()) : undefined);
  const runs = new RunsTreeProvider(runsDir, scan, { poll: pollCluster, seconds: pollSeconds, onError: (e) => log.warn(`cluster: ${e.message}`) });
  /** Set by RLHF: Run on Cluster… while a stage command picks its inputs: runStage then submits. */
  const target: { cluster?: ClusterChoice } = {};
  const clusterDeps = { runsDir, folder, refreshRuns: () => runs.refresh(), log: (l: string) => log.info(l), target };
  // side-by-side generations, shown as read-only Markdown
  context.subscriptions.push(runs, vscode.window.createTreeView('rlhf.runs', { treeDataProvider: runs }));
  if (vscode.workspace.workspaceFolders?.[0]) runs.watch(vscode.workspace.workspaceFolders[0], runsFolder());
  setTimeout(() => runs.refresh(), 0); // reading runs waits until activation has returned

  /** The title of the stage in progress (one at a time). */
  let current: string | undefined;
  async function runStage(title: string, argv: string[], onResult?: (v: Record<string, unknown>) => void): Promise<void> {
    const cwd = folder();
    if (!cwd) {
      void vscode.window.showErrorMessage('RLHF: open a folder first; runs are written inside it.');
      return;
    }
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('RLHF: training is disabled in an untrusted workspace.');
      return;
    }
    // training stages write runs into the configured folder and read their settings
    // (the settings first, then what was picked for this run: the last of a repeated flag wins)
    const stage = argv[0];
    const full = ['pretrain', 'sft', 'rm', 'ppo', 'dpo', 'grpo', 'rloo'].includes(stage) ? [stage, ...stageFlags(stage), ...argv.slice(1), '--runs-dir', runsDir()!] : argv;
    if (target.cluster) return submitAndTell(context, cwd, target.cluster, full, clusterDeps);
    if (worker.running) {
      const pick = await vscode.window.showWarningMessage(`RLHF: ${current ?? 'a run'} is in progress; one run at a time. Cancel it first, or wait.`, 'Show Progress', 'Cancel It');
      if (pick === 'Show Progress') log.show();
      if (pick === 'Cancel It') worker.cancel();
      return;
    }
    current = title;
    await vscode.commands.executeCommand('setContext', 'rlhf.training', true);
    // set once: a command with arguments reassigned on every step would be gone by the time of a click
    status.tooltip = 'RLHF: training. Click to open its dashboard; cancel from the notification or with RLHF: Cancel Training.';
    status.command = { command: 'rlhf.openDashboard', title: 'Open Training Dashboard', arguments: ['running'] };
    log.show(true);
    const errors: string[] = [];
    let runDir: string | undefined;
    // the Runs view follows the run from its first moment: at once when the worker says the run
    // folder exists, then every 2 s while it trains (its run.json status included)
    const follow = setInterval(() => void runs.refresh(), 2000);
    try {
      const code = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `RLHF: ${title}`, cancellable: true },
        (progress, token) => {
          token.onCancellationRequested(() => worker.cancel());
          let last = 0, shown = 0;
          return worker.run(full, cwd, { RLHF_BACKEND: cfg().get<string>('backend', 'auto'), RLHF_NATIVE_MODULES: nativeModulesDir(context) }, {
            onResult,
            onLog: (line) => {
              if (/^error\b/.test(line) || /^the worker stopped unexpectedly/.test(line)) {
                errors.push(line);
                log.error(line.replace(/^error:\s*/, ''));
              } else if (isDawnNote(line)) log.debug(line);
              else log.info(readableLine(line));
              const dir = runDirOf(line);
              if (dir) {
                runDir = dir;
                void runs.refresh();
              }
              const b = /^backend: (\w+) — (.*)$/.exec(line);
              if (b) {
                // the backend in use, not the setting ("auto")
                const setting = cfg().get<string>('backend', 'auto');
                backendStatus.text = `$(chip) ${setting === b[1] ? b[1] : `${setting} → ${b[1]}`}`;
                backendStatus.tooltip = `RLHF: training on ${b[1]} — ${b[2]} (click to change)`;
              }
            },
            onProgress: (p) => {
              // a small model reports a hundred steps a second: shown four times a second (a status
              // bar item rewritten every frame re-renders the window, and cannot be clicked while it moves)
              const now = Date.now();
              if (now - shown < 250 && p.step < p.total) return;
              shown = now;
              const pct = (100 * p.step) / p.total;
              const loss = p.metrics.loss !== undefined ? ` loss ${p.metrics.loss.toFixed(3)}` : '';
              progress.report({ increment: pct - last, message: `step ${p.step}/${p.total}${loss}` });
              last = pct;
              status.text = `$(pulse) ${p.stage} ${p.step}/${p.total}${loss} · ETA ${Math.round(p.eta_seconds)}s`;
              status.show();
            },
          });
        },
      );
      // the walkthrough ticks a stage's step when the stage succeeded, not when its command started
      if (code === 0 && !worker.cancelled) await vscode.commands.executeCommand('setContext', `rlhf.done.${stage}`, true);
      if (code === 0 && runDir) {
        await runs.refresh();
        const out = argv[0] === 'pipeline' ? argv[argv.indexOf('--out') + 1] : undefined;
        void reportDone(context, title, runs.find(runDir), worker.cancelled, { pipelineOut: out });
      } else if (code === 0) void vscode.window.showInformationMessage(`RLHF: ${title} ${worker.cancelled ? 'cancelled' : 'finished'}.`);
      else void reportFailure(title, errors, cwd, log);
    } catch (e) {
      void vscode.window.showErrorMessage(`RLHF: ${(e as Error).message}`);
    } finally {
      current = undefined;
      clearInterval(follow);
      status.hide();
      runs.refresh();
      await vscode.commands.executeCommand('setContext', 'rlhf.training', false);
    }
  }

  const pickFile = (glob: string, placeHolder: string, o: { evaluation?: boolean } = {}) => pickDataset(context, glob, placeHolder, { ...o, problems: (f) => problemsOf(f) });
  const pickModel = (placeHolder = 'Parent model', role: ModelRole = 'policy', stage?: string) => pickModelOf(context, scan, placeHolder, role, stage);

  /** GRPO and RLOO: prompts, the SFT model, and where rewards come from (a reward model or a reward function file). */
  async function runGroupStage(stage: 'grpo' | 'rloo', title: string): Promise<void> {
    const prompts = await pickFile('**/*.ppo.jsonl', `${stage.toUpperCase()} prompts`);
    const policy = prompts && (await pickModel('SFT model (the policy, and the reference when beta > 0)', 'policy', stage));
    if (!prompts || !policy) return;
    const source = await vscode.window.showQuickPick(
      [
        { label: 'Reward model', description: 'a model trained with RLHF: Train Reward Model', flag: '--reward-model' },
        { label: 'Reward function file…', description: 'a .mjs file: export default (prompt, response) => number (it runs as code)', flag: '--reward-fn' },
      ],
      { placeHolder: 'Where rewards come from', ignoreFocusOut: true },
    );
    if (!source) return;
    const reward = source.flag === '--reward-model' ? await pickModel('Reward model (a model with a score head)', 'reward', stage) : await pickFile('**/*.mjs', 'Reward function file (export default (prompt, response) => number)');
    if (reward) await runStage(title, [stage, '--prompts', prompts, '--policy', policy, source.flag, reward]);
  }

  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.pretrain', async () => {
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: training is disabled in an untrusted workspace.');
      const choice = await pickPretrain();
      if (choice) await runStage('Pretrain', ['pretrain', ...choice.flags]);
    }),
    vscode.commands.registerCommand('rlhf.trainSft', async () => {
      const data = await pickFile('**/*.sft.jsonl', 'SFT dataset');
      const model = data && (await pickModel('Pretrained model to fine-tune', 'policy', 'sft'));
      if (data && model) await runStage('Train SFT Model', ['sft', '--data', data, '--model', model]);
    }),
    vscode.commands.registerCommand('rlhf.trainRm', async () => {
      const data = await pickFile('**/*.rm.jsonl', 'Rankings (RM dataset)');
      const model = data && (await pickModel('SFT model the reward model starts from', 'policy', 'rm'));
      if (data && model) await runStage('Train Reward Model', ['rm', '--data', data, '--model', model]);
    }),
    vscode.commands.registerCommand('rlhf.runPpo', async () => {
      const prompts = await pickFile('**/*.ppo.jsonl', 'PPO prompts');
      const policy = prompts && (await pickModel('SFT model (policy and reference)', 'policy', 'ppo'));
      const rm = policy && (await pickModel('Reward model (a model with a score head)', 'reward', 'ppo'));
      if (prompts && policy && rm) await runStage('Run PPO', ['ppo', '--prompts', prompts, '--policy', policy, '--reward-model', rm]);
    }),
    // from the ranking panel ("Train DPO on these rankings"), with its RM file; from the palette, picked
    vscode.commands.registerCommand('rlhf.trainDpo', async (file?: unknown) => {
      const data = typeof file === 'string' && file.endsWith('.rm.jsonl') && fs.existsSync(file) ? file : await pickFile('**/*.rm.jsonl', 'Preferences (RM dataset: rankings or pairs)');
      const model = data && (await pickModel('SFT model to tune (also the frozen reference)', 'policy', 'dpo'));
      if (data && model) await runStage('Train DPO Model', ['dpo', '--data', data, '--model', model]);
    }),
    vscode.commands.registerCommand('rlhf.runGrpo', () => runGroupStage('grpo', 'Run GRPO')),
    vscode.commands.registerCommand('rlhf.runRloo', () => runGroupStage('rloo', 'Run RLOO')),
    vscode.commands.registerCommand('rlhf.runPipeline', async () => {
      const dir = runsDir();
      if (!dir) return void vscode.window.showErrorMessage('RLHF: open a folder first; runs are written inside it.');
      // a long job: say what it does, on what, and how long, before it starts
      const go = await vscode.window.showInformationMessage(
        'Run the full pipeline on the bundled example? It trains SFT from the bundled base model, a reward model, then PPO, DPO, GRPO and RLOO, and compares them on held-out prompts: about 9 minutes on a 2-core CPU. It uses the example data shipped with the extension, not your datasets; its runs appear in the Runs view (named pipeline-<time>-<stage>) and its summary goes to .rlhf/pipeline/.',
        { modal: true },
        'Run Pipeline',
      );
      if (go !== 'Run Pipeline') return;
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15); // to the second: runs of two pipelines never share a name
      await runStage('Run Full Pipeline', ['pipeline', '--out', path.join(folder()!, '.rlhf', 'pipeline', stamp), '--runs-dir', dir, '--run-prefix', `pipeline-${stamp}-`]);
    }),
    vscode.commands.registerCommand('rlhf.generate', async () => {
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: models run only in a trusted workspace.');
      // the same models the stage pickers offer (workspace folders, adapters, the Hugging Face cache), reward models aside
      const models = await modelItems(context, scan, 'policy');
      if (!models.length) return void vscode.window.showInformationMessage('RLHF: no model in this workspace or the Hugging Face cache yet: train one (RLHF: Pretrain, Train SFT Model) or download one (RLHF: Download Model from Hugging Face…).');
      const picked = await vscode.window.showQuickPick(models, { canPickMany: true, ignoreFocusOut: true, matchOnDescription: true, placeHolder: 'Models to compare side by side (e.g. the SFT and the PPO model)' });
      if (!picked) return;
      if (!picked.length) return void vscode.window.showWarningMessage('RLHF: no model was checked; check one or more (click or Space), then OK.');
      const prompt = await vscode.window.showInputBox({ prompt: 'Prompt (you can change it, and the settings, in the panel)', ignoreFocusOut: true, value: context.workspaceState.get<string>('rlhf.lastPrompt') });
      if (!prompt) return;
      const cwd = folder();
      if (!cwd) return void vscode.window.showErrorMessage('RLHF: open a folder first.');
      const g = generationSettings();
      const samples = vscode.workspace.getConfiguration('rlhf.generation').get<number>('samples', 2);
      GeneratePanel.open(context, cwd, picked.map((m) => ({ label: m.label.replace(/^\$\([\w-]+\) /, ''), dir: m.dir })), prompt, { temperature: g.temperature, topP: g.topP, topK: g.topK, maxTokens: g.maxTokens, samples: Math.min(8, Math.max(1, samples)), seed: g.seed });
    }),
    vscode.commands.registerCommand('rlhf.cancel', () => worker.cancel()),
    vscode.commands.registerCommand('rlhf.runs.refresh', () => runs.refresh()),
    vscode.commands.registerCommand('rlhf.runs.resume', async (node?: RunNode) => {
      let dir = node?.kind === 'run' ? node.dir : undefined;
      if (!dir) {
        // from the palette: the runs that can be resumed, newest first
        const dirName = runsDir();
        const open = dirName ? listRuns(dirName).filter((r) => r.info.status !== 'completed' && r.checkpoints.some((c) => c.label !== 'final')) : [];
        if (!open.length) return void vscode.window.showInformationMessage('RLHF: no cancelled or interrupted run to resume.');
        dir = (await vscode.window.showQuickPick(open.map((r) => ({ label: r.info.id, description: `${r.info.status}${r.metric ? ` · ${r.metric}` : ''}`, dir: r.dir })), { placeHolder: 'Run to resume' }))?.dir;
      }
      if (!dir) return;
      // a cluster run is resubmitted (same partition and time limit) and resumes there from its checkpoint
      if (runs.find(dir)?.cluster) return submitAndTell(context, folder() ?? path.dirname(dir), { sweep: [] }, ['resume', dir], clusterDeps);
      await runStage('Resume Run', ['resume', dir]);
    }),
    vscode.commands.registerCommand('rlhf.runs.useModel', async (node?: RunNode) => {
      if (node?.kind !== 'checkpoint') return;
      // first in the next pick that it fits (a reward model's checkpoint in the reward-model pick)
      for (const role of ['policy', 'reward'] as const) await handOn(context, role, node.dir);
      void vscode.window.showInformationMessage(`RLHF: ${vscode.workspace.asRelativePath(node.dir)} is the default model for the next stage.`);
    }),
    vscode.commands.registerCommand('rlhf.runs.reveal', (node?: RunNode) => node && node.kind !== 'stage' && vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(node.dir))),
    vscode.commands.registerCommand('rlhf.runs.delete', async (node?: RunNode) => {
      if (node?.kind !== 'run' || !vscode.workspace.isTrusted) return;
      const ok = await vscode.window.showWarningMessage(`Delete run ${node.label} and its checkpoints?`, { modal: true }, 'Delete');
      if (ok !== 'Delete') return;
      fs.rmSync(node.dir, { recursive: true, force: true });
      runs.refresh();
    }),
  );
  registerPanelCommands(context, { runsDir, pickModel, runStage });
  registerClusterCommands(context, clusterDeps);
  registerExportCommand(context, runsDir, folder);
  registerImportCommand(context, folder, () => runs.refresh());
  openWalkthroughOnce(context).catch((e) => log.warn(`the walkthrough did not open: ${(e as Error).message}`));
  log.info(`RLHF Studio activated in ${(performance.now() - t0).toFixed(1)} ms`);
}

/** The Datasets view, its commands, and dataset diagnostics in the Problems panel. */
function activateDatasets(context: vscode.ExtensionContext, scan: ScanClient): (file: string) => number {
  const store = new DatasetStore(scan, () => (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath));
  const diags = new DatasetDiagnostics();
  const tree = new DatasetTreeProvider(store, (file) => diags.setFromDisk(file, store.files.get(file)?.problems ?? []));
  const view = vscode.window.createTreeView('rlhf.datasets', { treeDataProvider: tree, showCollapseAll: true });
  const canWrite = () => {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window.showWarningMessage('RLHF: this workspace is not trusted; datasets can be browsed but not written.');
    return false;
  };
  registerDatasetCommands(context, store, tree, diags, canWrite);
  context.subscriptions.push(
    view,
    tree,
    diags,
    vscode.languages.registerCodeActionsProvider({ scheme: 'file', pattern: '**/*.{sft,rm,ppo}.jsonl' }, new DatasetQuickFixes(), { providedCodeActionKinds: DatasetQuickFixes.kinds }),
    vscode.workspace.onDidOpenTextDocument((d) => diags.check(d)),
    vscode.workspace.onDidChangeTextDocument((e) => diags.schedule(e.document)),
    vscode.workspace.onDidCloseTextDocument((d) => {
      if (isDatasetDocument(d)) diags.setFromDisk(d.fileName, store.files.get(d.fileName)?.problems ?? []);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('rlhf.datasets')) void tree.refresh();
    }),
  );
  for (const d of vscode.workspace.textDocuments) diags.check(d);
  // discovery reads files: after activation returns, so activation stays fast
  setTimeout(() => void tree.discover(), 0);
  return (f) => store.files.get(f)?.entry?.problems ?? 0;
}

export function deactivate(): void {}

/**
 * The walkthrough opens once, on the first activation after install in a folder without datasets
 * (a first hour: nothing to browse yet), as VS Code does for extensions installed from the
 * Marketplace view but not for a VSIX or a command-line install. The user's
 * workbench.welcomePage.walkthroughs.openOnInstall = false is respected.
 */
async function openWalkthroughOnce(context: vscode.ExtensionContext): Promise<void> {
  if (context.globalState.get<boolean>('rlhf.walkthroughOpened')) return;
  if (!vscode.workspace.getConfiguration('workbench.welcomePage.walkthroughs').get<boolean>('openOnInstall', true)) return;
  if ((await vscode.workspace.findFiles('**/*.{sft,rm,ppo}.jsonl', '**/node_modules/**', 1)).length) return;
  await context.globalState.update('rlhf.walkthroughOpened', true);
  await vscode.commands.executeCommand('workbench.action.openWalkthrough', `${context.extension.id}#rlhf.gettingStarted`, false);
}
