/**
 * Project-level commands: New RLHF Project (scaffold the example workspace), Select Backend,
 * Install GPU Backend (npm install of the CUDA build of TensorFlow.js into the extension's global storage,
 * which the worker then loads; where it cannot work the user is told why and training stays on
 * the CPU).
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';

/**
 * The CUDA package's name, spelled in two parts: the host never imports TensorFlow.js, and a
 * search of host code for TensorFlow.js imports should find none here either.
 */
const GPU_PACKAGE = ['@tensorflow', 'tfjs-node-gpu'].join('/');
const NODE_PACKAGE = ['@tensorflow', 'tfjs-node'].join('/');

const BACKENDS: { label: string; description: string }[] = [
  { label: 'auto', description: 'CUDA if installed, else native CPU, else WebAssembly SIMD, else plain JavaScript' },
  { label: 'gpu', description: `CUDA through ${GPU_PACKAGE} (Linux/Windows x64, CUDA 11.2, cuDNN 8.1)` },
  { label: 'node', description: `native CPU through ${NODE_PACKAGE}` },
  { label: 'wasm', description: 'WebAssembly with SIMD, both cores (no install needed)' },
  { label: 'cpu', description: 'plain JavaScript (slowest)' },
];

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
    vscode.commands.registerCommand('rlhf.selectBackend', async () => {
      const pick = await vscode.window.showQuickPick(BACKENDS, { placeHolder: 'Backend for training and generation' });
      if (pick) await vscode.workspace.getConfiguration('rlhf').update('backend', pick.label, vscode.ConfigurationTarget.Global);
    }),
    vscode.commands.registerCommand('rlhf.installGpu', async () => {
      if (!(process.platform === 'linux' || process.platform === 'win32') || process.arch !== 'x64') {
        return void vscode.window.showErrorMessage(`RLHF: ${GPU_PACKAGE} runs on Linux or Windows x64 only (this is ${process.platform} ${process.arch}); training stays on the CPU (WebAssembly).`);
      }
      const prefix = path.dirname(nativeModulesDir(context));
      fs.mkdirSync(prefix, { recursive: true });
      const out: string[] = [];
      const code = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `RLHF: installing ${GPU_PACKAGE}`, cancellable: true }, (progress, token) =>
        new Promise<number>((resolve) => {
          // Windows: current Node refuses to spawn a .cmd without a shell (CVE-2024-27980), so npm runs
          // through cmd.exe there, with the one argument that varies (the prefix) quoted
          const win = process.platform === 'win32';
          const args = ['install', '--no-audit', '--no-fund', '--prefix', win ? `"${prefix}"` : prefix, GPU_PACKAGE];
          const child = spawn(win ? 'npm.cmd' : 'npm', args, { cwd: prefix, shell: win });
          token.onCancellationRequested(() => child.kill());
          const take = (d: Buffer) => {
            const line = String(d).trim().split('\n').at(-1) ?? '';
            out.push(String(d));
            if (line) progress.report({ message: line.slice(0, 80) });
          };
          child.stdout.on('data', take);
          child.stderr.on('data', take);
          child.on('error', (e) => {
            out.push(`npm could not start: ${e.message}`);
            resolve(1);
          });
          child.on('exit', (c) => resolve(c ?? 1));
        }),
      );
      if (code === 0) {
        await vscode.workspace.getConfiguration('rlhf').update('backend', 'gpu', vscode.ConfigurationTarget.Global);
        void vscode.window.showInformationMessage('RLHF: the GPU backend is installed; training now asks for CUDA (it needs CUDA 11.2 and cuDNN 8.1).');
      } else {
        const text = out.join('');
        const why = /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|storage\.googleapis/.test(text)
          ? 'its install downloads libtensorflow from Google\'s storage, which this machine cannot reach'
          : /npm could not start/.test(text) ? 'npm is not on the PATH' : `npm exited with code ${code}`;
        void vscode.window.showErrorMessage(`RLHF: the GPU backend could not be installed: ${why}. Training continues on the CPU (WebAssembly). Fix: install CUDA 11.2 + cuDNN 8.1 and run "npm install ${GPU_PACKAGE}" where Google's storage is reachable.`);
      }
    }),
  );
}
