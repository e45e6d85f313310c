/**
 * Project-level commands: New RLHF Project (scaffold the example workspace) and the backend shown
 * in the status bar. Choosing and installing backends is in backend-commands.ts.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';

/** Folder the worker searches for optional native backends. */
export function nativeModulesDir(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'native', 'node_modules');
}

function copyMissing(from: string, to: string): number {
  let n = 0;
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name), b = path.join(to, e.name);
    if (e.isDirectory()) {
      fs.mkdirSync(b, { recursive: true });
      n += copyMissing(a, b);
    } else if (!fs.existsSync(b)) {
      fs.copyFileSync(a, b);
      n++;
    }
  }
  return n;
}

export function registerProjectCommands(context: vscode.ExtensionContext, backendStatus: vscode.StatusBarItem): void {
  const showBackend = () => {
    const b = vscode.workspace.getConfiguration('rlhf').get<string>('backend', 'auto');
    backendStatus.text = `$(chip) ${b}`;
    backendStatus.tooltip = `RLHF training backend: ${b} (click to change)`;
    backendStatus.command = 'rlhf.selectBackend';
    backendStatus.show();
  };
  showBackend();
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('rlhf.backend') && showBackend()),
    vscode.commands.registerCommand('rlhf.newProject', async () => {
      let target = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      if (!target) {
        const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Create RLHF project here' });
        target = picked?.[0]?.fsPath;
      } else if (!vscode.workspace.isTrusted) {
        return void vscode.window.showWarningMessage('RLHF: this workspace is not trusted; nothing is written.');
      }
      if (!target) return;
      const n = copyMissing(path.join(context.extensionPath, 'examples', 'workspace'), target);
      // the views show what was copied at once, not when the file watcher's events trickle in
      if (vscode.workspace.workspaceFolders?.length) {
        await vscode.commands.executeCommand('rlhf.datasets.refresh');
        await vscode.commands.executeCommand('rlhf.runs.refresh');
      }
      void vscode.window.showInformationMessage(`RLHF: the example project is in ${target} (${n} file(s) added; existing files kept).`);
      if (!vscode.workspace.workspaceFolders?.length) await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(target));
    }),
  );
}
