/**
 * Select Backend and Install GPU Backend. What each backend does on this machine is asked of the
 * `rlhf backends --json` command in a child process (the extension host never loads TensorFlow.js),
 * so the pick shows which backends start, why the others do not, and the GPU adapter.
 *
 * Install offers WebGPU (Dawn: NVIDIA, AMD, Intel and Apple GPUs through Vulkan, Metal or D3D12; a
 * platform-specific VSIX already carries it, otherwise the `webgpu` package is installed) and CUDA
 * (`tfjs-node-gpu`, which needs CUDA 11.2 and cuDNN 8.1), both into the extension's global storage,
 * then checks that the backend comes up before switching to it.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { fork, spawn } from 'child_process';
import { nativeModulesDir } from './project-commands';

/** The CUDA packages' names in two parts: the host never imports TensorFlow.js, and a search for such imports finds none here. */
const GPU_PACKAGE = ['@tensorflow', 'tfjs-node-gpu'].join('/');
const NODE_PACKAGE = ['@tensorflow', 'tfjs-node'].join('/');

type Name = 'gpu' | 'webgpu' | 'node' | 'wasm' | 'cpu';
const LABELS: Record<Name | 'auto', string> = {
  auto: 'CUDA, else a hardware GPU through WebGPU, else native CPU, else WebAssembly SIMD, else plain JavaScript',
  gpu: `CUDA through ${GPU_PACKAGE} (Linux/Windows x64, CUDA 11.2, cuDNN 8.1)`,
  webgpu: 'any GPU through WebGPU (Dawn: Vulkan, Metal, D3D12)',
  node: `native CPU through ${NODE_PACKAGE}`,
  wasm: 'WebAssembly with SIMD, both cores (no install needed)',
  cpu: 'plain JavaScript (slowest)',
};

export interface BackendReport {
  auto: Name | null;
  backends: { name: Name; available: boolean; detail?: string; why?: string; auto_skips?: string; adapter?: { vendor: string; architecture: string; description: string; software: boolean } }[];
}

function isReport(x: unknown): x is BackendReport {
  const r = x as BackendReport;
  return !!r && typeof r === 'object' && Array.isArray(r.backends) && r.backends.every((b) => b && typeof b.name === 'string' && typeof b.available === 'boolean');
}

/** Runs `rlhf backends --json` in a child process with the extension's native-module folder. */
export function probeBackends(context: vscode.ExtensionContext): Promise<BackendReport> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(context.extensionPath, 'dist', 'cli.js'), ['backends', '--json'], {
      env: { ...process.env, RLHF_NATIVE_MODULES: nativeModulesDir(context) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let out = '', err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on('error', (e) => reject(e));
    child.on('exit', (code) => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(out.trim().split('\n').at(-1) ?? '');
        if (isReport(r)) return resolve(r);
      } catch {
        /* below */
      }
      const last = err.trim().split('\n').filter((l) => !/^Warning: /.test(l)).at(-1);
      reject(new Error(code === null ? 'the backend check took over a minute' : last || `rlhf backends exited with code ${code}`));
    });
  });
}

function adapterText(a: NonNullable<BackendReport['backends'][number]['adapter']>): string {
  return `${a.vendor} ${a.architecture} (${a.description})${a.software ? ', software' : ''}`;
}

function runNpm(prefix: string, pkgs: string[], title: string): Thenable<{ code: number; out: string }> {
  fs.mkdirSync(prefix, { recursive: true });
  const out: string[] = [];
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      // Windows: current Node refuses to spawn a .cmd without a shell (CVE-2024-27980), so npm runs
      // through cmd.exe there, with the one argument that varies (the prefix) quoted
      const win = process.platform === 'win32';
      const args = ['install', '--no-audit', '--no-fund', '--prefix', win ? `"${prefix}"` : prefix, ...pkgs];
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
        resolve({ code: 1, out: out.join('') });
      });
      child.on('exit', (c) => resolve({ code: c ?? 1, out: out.join('') }));
    }),
  );
}

function npmWhy(r: { code: number; out: string }, downloads: string): string {
  if (/npm could not start/.test(r.out)) return 'npm is not on the PATH';
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN/.test(r.out)) return `its install downloads ${downloads}, which this machine cannot reach`;
  return `npm exited with code ${r.code}`;
}

async function setBackend(name: string): Promise<void> {
  await vscode.workspace.getConfiguration('rlhf').update('backend', name, vscode.ConfigurationTarget.Global);
}

/** The Dawn binary a platform-specific VSIX carries (dist/webgpu), if this one does. */
function bundledDawn(context: vscode.ExtensionContext): boolean {
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  return fs.existsSync(path.join(context.extensionPath, 'dist', 'webgpu', 'dist', `${process.platform}-${arch}`, 'dawn.node'));
}

async function installWebGpu(context: vscode.ExtensionContext): Promise<void> {
  if (!bundledDawn(context)) {
    const version = (context.extension.packageJSON as { dependencies?: Record<string, string> }).dependencies?.webgpu ?? 'latest';
    const r = await runNpm(path.dirname(nativeModulesDir(context)), [`webgpu@${version}`], 'RLHF: installing WebGPU (Dawn)');
    if (r.code !== 0) {
      return void vscode.window.showErrorMessage(`RLHF: WebGPU could not be installed: ${npmWhy(r, 'the webgpu package from the npm registry')}. Training stays on the CPU (WebAssembly). Fix: install the extension built for this platform (it carries Dawn), or run "npm install webgpu" where the registry is reachable.`);
    }
  }
  let report: BackendReport;
  try {
    report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'RLHF: looking for a GPU adapter' }, () => probeBackends(context));
  } catch (e) {
    return void vscode.window.showErrorMessage(`RLHF: the WebGPU check failed: ${(e as Error).message}`);
  }
  const w = report.backends.find((b) => b.name === 'webgpu');
  if (!w?.available) {
    return void vscode.window.showErrorMessage(`RLHF: WebGPU does not start here: ${w?.why ?? 'not reported'}. Training stays on ${report.auto ?? 'the CPU'}.`);
  }
  if (w.adapter?.software) {
    const use = await vscode.window.showWarningMessage(
      `RLHF: the only WebGPU adapter here is a software renderer (${w.adapter.description}): it is slower than WebAssembly, so "auto" keeps training on ${report.auto}. Install your GPU's Vulkan driver for a hardware adapter.`,
      'Use WebGPU anyway',
    );
    if (use) await setBackend('webgpu');
    return;
  }
  await setBackend('webgpu');
  void vscode.window.showInformationMessage(`RLHF: WebGPU is ready on ${w.adapter ? adapterText(w.adapter) : 'this GPU'}; training now runs there.`);
}

async function installCuda(context: vscode.ExtensionContext): Promise<void> {
  if (!(process.platform === 'linux' || process.platform === 'win32') || process.arch !== 'x64') {
    return void vscode.window.showErrorMessage(`RLHF: ${GPU_PACKAGE} runs on Linux or Windows x64 only (this is ${process.platform} ${process.arch}); pick WebGPU instead.`);
  }
  const r = await runNpm(path.dirname(nativeModulesDir(context)), [GPU_PACKAGE], `RLHF: installing ${GPU_PACKAGE}`);
  if (r.code === 0) {
    await setBackend('gpu');
    void vscode.window.showInformationMessage('RLHF: the CUDA backend is installed; training now asks for CUDA (it needs CUDA 11.2 and cuDNN 8.1).');
  } else {
    void vscode.window.showErrorMessage(`RLHF: the CUDA backend could not be installed: ${npmWhy(r, "libtensorflow from Google's storage")}. Training continues on the CPU (WebAssembly). Fix: install CUDA 11.2 + cuDNN 8.1 and run "npm install ${GPU_PACKAGE}" where Google's storage is reachable, or pick WebGPU.`);
  }
}

export function registerBackendCommands(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.selectBackend', async () => {
      const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { name: string }>();
      qp.placeholder = 'Backend for training and generation (checking what starts on this machine…)';
      qp.busy = true;
      qp.items = (Object.keys(LABELS) as (Name | 'auto')[]).map((name) => ({ label: name, name, description: LABELS[name] }));
      qp.show();
      probeBackends(context).then(
        (r) => {
          qp.busy = false;
          qp.placeholder = `Backend for training and generation (auto takes ${r.auto ?? 'none'} here)`;
          qp.items = [
            { label: 'auto', name: 'auto', description: `takes ${r.auto ?? 'nothing'} here`, detail: LABELS.auto },
            ...r.backends.map((b) => ({
              label: `${b.available ? '$(check)' : '$(circle-slash)'} ${b.name}`,
              name: b.name,
              description: b.available ? (b.adapter ? adapterText(b.adapter) : LABELS[b.name]) : 'does not start here',
              detail: b.available ? b.auto_skips ? `auto passes over it: ${b.auto_skips}` : b.detail : b.why,
            })),
          ];
        },
        (e: Error) => {
          qp.busy = false;
          qp.placeholder = `Backend for training and generation (the check failed: ${e.message})`;
        },
      );
      const pick = await new Promise<string | undefined>((resolve) => {
        qp.onDidAccept(() => resolve(qp.selectedItems[0]?.name));
        qp.onDidHide(() => resolve(undefined));
      });
      qp.dispose();
      if (pick) await setBackend(pick);
    }),
    vscode.commands.registerCommand('rlhf.installGpu', async () => {
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'WebGPU', id: 'webgpu', description: 'any GPU: NVIDIA, AMD, Intel, Apple', detail: bundledDawn(context) ? 'Dawn is in this extension; checks that an adapter comes up' : 'installs the webgpu package (Dawn, prebuilt) into the extension\'s storage' },
          { label: 'CUDA', id: 'gpu', description: `${GPU_PACKAGE}: NVIDIA on Linux or Windows x64`, detail: 'needs CUDA 11.2 and cuDNN 8.1; its install downloads libtensorflow 2.9 from Google' },
        ],
        { placeHolder: 'Which GPU backend?' },
      );
      if (pick?.id === 'webgpu') await installWebGpu(context);
      else if (pick?.id === 'gpu') await installCuda(context);
    }),
  );
}
