/**
 * RLHF: Download Model from Hugging Face… — `rlhf download ID --json` in a child process (the CLI
 * does the transfer, resumable), shown as a cancellable progress notification with bytes, speed
 * and time left. Returns the snapshot folder, so a model picker can use the model at once.
 */
import * as vscode from 'vscode';
import * as path from 'path';
import { fork } from 'child_process';
import { looksLikeRepoId } from '../data/hub-cache';
import { formatBytes } from '../data/bytes';

const mib = formatBytes;
const eta = (s: number | null) => (s === null ? '' : s >= 60 ? ` · ${Math.floor(s / 60)} min ${s % 60} s left` : ` · ${s} s left`);

export function registerDownloadCommand(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('rlhf.downloadModel', async (given?: string): Promise<string | undefined> => {
      const id = given ?? (await vscode.window.showInputBox({
        title: 'Download a model from Hugging Face',
        prompt: 'A model id (org/name). GPT-2 and the Llama family (SmolLM, Qwen2, Llama 3, TinyLlama) with safetensors weights. Gated models need HF_TOKEN in the environment.',
        value: 'HuggingFaceTB/SmolLM2-135M-Instruct',
        ignoreFocusOut: true,
        validateInput: (v) => (looksLikeRepoId(v.trim()) && v.includes('/') ? undefined : 'org/name, as on the model\'s Hub page'),
      }))?.trim();
      if (!id) return undefined;
      return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Downloading ${id}`, cancellable: true }, (progress, token) =>
        new Promise<string | undefined>((resolve) => {
          const child = fork(path.join(context.extensionPath, 'dist', 'cli.js'), ['download', id, '--json'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
          let pct = 0, buf = '', err = '', dir: string | undefined;
          token.onCancellationRequested(() => child.kill('SIGINT'));
          child.stdout!.on('data', (d) => {
            buf += d;
            const lines = buf.split('\n');
            buf = lines.pop()!;
            for (const l of lines) {
              let m: { type?: string; file?: string; done?: number; total?: number; bytes_per_second?: number; eta_seconds?: number | null; dir?: string };
              try {
                m = JSON.parse(l);
              } catch {
                continue;
              }
              if (m.type === 'download' && m.total) {
                const now = (100 * m.done!) / m.total;
                progress.report({ increment: now - pct, message: `${m.file || 'done'}: ${mib(m.done!)} of ${mib(m.total)} · ${mib(m.bytes_per_second ?? 0)}/s${eta(m.eta_seconds ?? null)}` });
                pct = now;
              } else if (m.type === 'result') dir = m.dir;
            }
          });
          child.stderr!.on('data', (d) => (err += d));
          child.on('exit', (code) => {
            if (code === 0 && dir) {
              void vscode.window.showInformationMessage(`RLHF: ${id} is in the Hugging Face cache; it is offered in every model picker.`, 'Generate').then((b) => {
                if (b === 'Generate') void vscode.commands.executeCommand('rlhf.generate');
              });
              return resolve(dir);
            }
            const line = err.trim().split('\n').filter((x) => x && !x.startsWith('Warning:')).at(-1)?.replace(/^rlhf download: /, '') ?? `the download stopped (exit ${code})`;
            void vscode.window.showErrorMessage(`RLHF: ${line}`);
            resolve(undefined);
          });
        }),
      );
    }),
  );
}
