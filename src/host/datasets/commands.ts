/**
 * Commands of the Datasets view: refresh, validate all, new dataset file (view title); validate,
 * statistics, convert, open in editor (file context); preview a record, reveal its line, show
 * more (records). Previews are read-only Markdown documents (scheme rlhf-record).
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { TreeNode, fileTooltip, recordPreview } from '../../data/dataset-tree';
import { formatProblem } from '../../data/jsonl';
import { escapeMarkdown } from '../../data/markdown';
import { CONVERSIONS, Conversion, convertFile } from '../../data/convert';
import { DatasetStore } from './dataset-store';
import { DatasetTreeProvider } from './dataset-tree-provider';
import { DatasetDiagnostics } from './diagnostics';
import { fileArg } from '../file-arg';

const EXAMPLES: Record<string, object> = {
  sft: { prompt: 'Write a haiku about the sea.', response: 'Grey swell, white ropes creak;\nthe harbor counts its lanterns;\na gull keeps the time.' },
  rm: { prompt: 'Tell me about the ferry.', responses: ['The ferry was lovely.', 'The ferry was late and dirty.'], ranks: [1, 2] },
  ppo: { prompt: 'Describe your visit to the lighthouse.' },
};

class PreviewProvider implements vscode.TextDocumentContentProvider {
  readonly docs = new Map<string, string>();
  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? '';
  }
}

export function registerDatasetCommands(ctx: vscode.ExtensionContext, store: DatasetStore, tree: DatasetTreeProvider, diags: DatasetDiagnostics, canWrite: () => boolean): void {
  const previews = new PreviewProvider();
  const show = async (name: string, markdown: string) => {
    const uri = vscode.Uri.from({ scheme: 'rlhf-record', path: `/${name}.md` });
    previews.docs.set(uri.toString(), markdown);
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  };
  const fileOf = (arg: unknown): string | undefined => fileArg(arg) ?? vscode.window.activeTextEditor?.document.fileName;
  // validation runs on the scan thread, file by file; the host's thread only shows the results
  const validate = async (files: string[]) => {
    let problems = 0;
    for (const f of files) {
      await store.load(f, undefined, true);
      const ps = store.files.get(f)?.problems ?? [];
      problems += store.files.get(f)?.entry.problems ?? 0;
      diags.setFromDisk(f, ps);
    }
    tree.changedFiles();
    void vscode.window.showInformationMessage(`RLHF: ${files.length} dataset file(s) validated, ${problems} problem(s)${problems ? ' (see the Problems panel)' : ''}.`);
  };
  ctx.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider('rlhf-record', previews),
    vscode.commands.registerCommand('rlhf.datasets.refresh', () => tree.refresh()),
    vscode.commands.registerCommand('rlhf.datasets.showMore', (file: string) => tree.showMore(file)),
    vscode.commands.registerCommand('rlhf.datasets.validateAll', () => validate([...store.files.keys()])),
    vscode.commands.registerCommand('rlhf.datasets.validate', (arg) => {
      const f = fileOf(arg);
      if (f) validate([f]);
    }),
    vscode.commands.registerCommand('rlhf.datasets.statistics', async (arg) => {
      const f = fileOf(arg);
      if (!f) return;
      await store.load(f, undefined, true);
      const stored = store.files.get(f);
      if (!stored) return void vscode.window.showWarningMessage(`RLHF: ${path.basename(f)} is not a dataset file.`);
      const entry = stored.entry;
      const problems = stored.problems.slice(0, 20).map((p) => `- ${escapeMarkdown(formatProblem(p))}`).join('\n');
      await show(`${path.basename(f)} statistics`, `${fileTooltip(entry)}\n\n${problems ? `## First problems\n\n${problems}\n` : ''}`);
    }),
    vscode.commands.registerCommand('rlhf.datasets.openFile', async (arg) => {
      const f = fileOf(arg);
      if (f) await vscode.window.showTextDocument(vscode.Uri.file(f));
    }),
    vscode.commands.registerCommand('rlhf.datasets.openRecord', async (node: Extract<TreeNode, { kind: 'record' }>) => {
      const r = store.record(node.path, node.index);
      if (!r.value) return vscode.commands.executeCommand('rlhf.datasets.revealRecord', node);
      await show(`${path.basename(node.path)} line ${r.line}`, recordPreview(node.path, r.line, r.value));
    }),
    vscode.commands.registerCommand('rlhf.datasets.revealRecord', async (node: Extract<TreeNode, { kind: 'record' }>) => {
      const line = Math.max(0, node.line - 1);
      await vscode.window.showTextDocument(vscode.Uri.file(node.path), { selection: new vscode.Range(line, 0, line, 0) });
    }),
    vscode.commands.registerCommand('rlhf.datasets.convert', async (arg) => {
      const f = fileOf(arg);
      if (!f || !canWrite()) return;
      const to = await vscode.window.showQuickPick([...CONVERSIONS], { placeHolder: 'Convert to' });
      if (!to) return;
      const out = f.replace(/(\.(sft|rm|ppo))?\.jsonl$/, `.${to}$1.jsonl`);
      try {
        const r = convertFile(to as Conversion, f, out);
        void vscode.window.showInformationMessage(`RLHF: ${r.written} record(s) written to ${path.basename(out)}${r.problems.length ? `; ${r.problems.length} record(s) could not be converted` : ''}.`);
        await vscode.window.showTextDocument(vscode.Uri.file(out));
      } catch (e) {
        void vscode.window.showErrorMessage(`RLHF: ${(e as Error).message}`);
      }
    }),
    vscode.commands.registerCommand('rlhf.datasets.newFile', async () => {
      const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      if (!root || !canWrite()) return;
      const stage = await vscode.window.showQuickPick(['sft', 'rm', 'ppo'], { placeHolder: 'Which stage is the dataset for?' });
      if (!stage) return;
      const name = await vscode.window.showInputBox({ prompt: 'File name', value: `new.${stage}.jsonl`, validateInput: (v) => (v.endsWith(`.${stage}.jsonl`) ? undefined : `end the name with .${stage}.jsonl`) });
      if (!name) return;
      const folder = vscode.workspace.getConfiguration('rlhf.datasets').get<string>('folder', 'data');
      const file = path.join(root, folder, name);
      if (fs.existsSync(file)) return void vscode.window.showErrorMessage(`RLHF: ${file} exists.`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(EXAMPLES[stage]) + '\n');
      await vscode.window.showTextDocument(vscode.Uri.file(file));
    }),
  );
}
