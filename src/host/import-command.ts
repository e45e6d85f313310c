/**
 * "RLHF: Import Model or Training Log…": `rlhf import` on a folder a trainer wrote elsewhere (TRL's
 * or OpenRLHF's output folder, a LoRA adapter, or a TensorBoard logging folder), chosen in the
 * folder dialog. The model goes into models/ (the pickers offer it), its log becomes a run in the
 * Runs view; the notification opens either.
 */
import * as vscode from 'vscode';
import * as path from 'path';
import { runCliJson, type CliMessage } from './cli-json';

export function registerImportCommand(context: vscode.ExtensionContext, folder: () => string | undefined, refreshRuns: () => void): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.import', async (uri?: vscode.Uri) => {
      const ws = folder();
      if (!ws) return void vscode.window.showErrorMessage('RLHF: open a folder first.');
      if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: importing writes into the workspace; it is disabled in an untrusted workspace.');
      let from = uri?.fsPath;
      if (!from) {
        const picked = await vscode.window.showOpenDialog({
          defaultUri: vscode.Uri.file(ws),
          canSelectFolders: true,
          canSelectFiles: false,
          canSelectMany: false,
          openLabel: 'Import',
          title: 'Import a trainer\'s output: a model folder (config.json), a LoRA adapter, or a TensorBoard logging folder',
        });
        from = picked?.[0]?.fsPath;
        if (!from) return;
      }
      let result: CliMessage | undefined;
      const logs: string[] = [];
      const done = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `RLHF: importing ${path.basename(from)}…` }, () =>
        runCliJson(context.extensionPath, ['import', from!], ws, (m) => m.type === 'result' && (result = m), (line) => logs.push(line)),
      );
      if (done.code !== 0 || !result) return void vscode.window.showErrorMessage(`RLHF: ${done.error ?? logs.at(-1) ?? `rlhf import exited with ${done.code}`}`);
      refreshRuns();
      const model = typeof result.model === 'string' ? result.model : undefined;
      const run = typeof result.run === 'string' ? result.run : undefined;
      const parts = [
        ...(model ? [`the model is in ${vscode.workspace.asRelativePath(model)} (it loads and scores text: log p ${Number(result.logprob).toFixed(2)})`] : []),
        ...(run ? [`its training log is run ${path.basename(run)} (${result.steps} steps, ${result.stage})`] : ['no training log was found beside it']),
      ];
      const actions = [...(run ? ['Open Dashboard'] : []), ...(model ? ['Reveal Model'] : [])];
      const notes = Array.isArray(result.problems) ? result.problems.filter((p): p is string => typeof p === 'string') : [];
      const pick = await vscode.window.showInformationMessage(`RLHF: imported ${path.basename(from)}: ${parts.join('; ')}.${notes.length ? ` Note: ${notes.join('; ')}.` : ''}`, ...actions);
      if (pick === 'Open Dashboard') await vscode.commands.executeCommand('rlhf.runs.openDashboard', { kind: 'run', dir: run });
      if (pick === 'Reveal Model') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(model!));
    }),
  );
}
