/**
 * The "Datasets" view: maps the pure tree model (src/data/dataset-tree.ts) to TreeItems, and
 * follows the workspace: discovery by the configured glob plus sniffed *.jsonl under the
 * configured folder, a FileSystemWatcher whose events are debounced and applied per file.
 */
import * as vscode from 'vscode';
import * as path from 'path';
import { PAGE, TreeNode, fileNodes, recordNodes, stageNodes } from '../../data/dataset-tree';
import { DatasetStore } from './dataset-store';

const ICONS: Record<string, string> = { pretrain: 'book', sft: 'mortar-board', rm: 'list-ordered', ppo: 'rocket' };

export class DatasetTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly store: DatasetStore, private readonly onFileLoaded: (file: string) => void) {}

  private config() {
    const c = vscode.workspace.getConfiguration('rlhf.datasets');
    return { glob: c.get<string>('glob', '**/*.{sft,rm,ppo}.jsonl'), folder: c.get<string>('folder', 'data') };
  }

  /** Finds every dataset file and starts watching. */
  async discover(): Promise<void> {
    const { glob, folder } = this.config();
    const found = new Set<string>();
    for (const u of await vscode.workspace.findFiles(glob, '**/node_modules/**', 5000)) found.add(u.fsPath);
    for (const u of await vscode.workspace.findFiles(`${folder}/**/*.{jsonl,txt}`, '**/node_modules/**', 5000)) found.add(u.fsPath);
    for (const f of [...this.store.files.keys()]) if (!found.has(f)) this.store.remove(f);
    // read on the scan thread, one file at a time; the view fills in as they come
    let shown = Date.now();
    for (const f of found) {
      if (await this.store.load(f)) this.onFileLoaded(f);
      if (Date.now() - shown > 500) {
        this.changed.fire(undefined);
        shown = Date.now();
      }
    }
    this.changed.fire(undefined);
    if (!this.disposables.length) {
      for (const pattern of [glob, `${folder}/**/*.{jsonl,txt}`]) {
        const w = vscode.workspace.createFileSystemWatcher(pattern);
        w.onDidCreate((u) => this.queue(u.fsPath));
        w.onDidChange((u) => this.queue(u.fsPath));
        w.onDidDelete((u) => this.queue(u.fsPath));
        this.disposables.push(w);
      }
    }
  }

  /** Debounced, incremental: only the files that changed are read again. */
  private queue(file: string): void {
    this.pending.add(file);
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      const files = [...this.pending];
      this.pending.clear();
      for (const f of files) if (await this.store.load(f)) this.onFileLoaded(f);
      this.changed.fire(undefined);
    }, 300);
  }

  /** Stored entries changed (a validation on request): redraw. */
  changedFiles(): void {
    this.changed.fire(undefined);
  }

  refresh(): Promise<void> {
    this.store.files.clear();
    return this.discover();
  }

  showMore(file: string): void {
    const f = this.store.files.get(file);
    if (!f) return;
    f.shown += PAGE;
    this.changed.fire(undefined);
  }

  private hasData = false;

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!node) {
      const entries = this.store.entries();
      // the walkthrough's "Look at the data" ticks once there is data to look at
      if (entries.length && !this.hasData) {
        this.hasData = true;
        void vscode.commands.executeCommand('setContext', 'rlhf.hasDatasets', true);
      }
      return stageNodes(entries);
    }
    if (node.kind === 'stage') return fileNodes(this.store.entries(), node.stage, root);
    if (node.kind === 'file') {
      const f = this.store.files.get(node.path);
      if (!f) return [];
      const count = (await this.store.index(node.path))?.count ?? 0; // rebuilt on the scan thread if the file changed
      return recordNodes(node.path, node.stage, count, f.shown, (n) => this.store.record(node.path, n));
    }
    return [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const C = vscode.TreeItemCollapsibleState;
    switch (node.kind) {
      case 'stage': {
        const item = new vscode.TreeItem(node.label, C.Expanded);
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon(ICONS[node.stage]);
        item.contextValue = 'rlhf.stage';
        return item;
      }
      case 'file': {
        const item = new vscode.TreeItem(node.label, C.Collapsed);
        item.description = node.description;
        item.tooltip = new vscode.MarkdownString(node.tooltip);
        item.resourceUri = vscode.Uri.file(node.path);
        item.iconPath = new vscode.ThemeIcon(ICONS[node.stage], node.hasErrors ? new vscode.ThemeColor('problemsErrorIcon.foreground') : undefined);
        item.contextValue = `rlhf.datasetFile.${node.stage}`;
        item.id = node.id;
        return item;
      }
      case 'record': {
        const item = new vscode.TreeItem(node.label, C.None);
        item.description = node.description;
        item.tooltip = `${path.basename(node.path)}, line ${node.line}`;
        item.contextValue = 'rlhf.record';
        item.id = node.id;
        item.command = { command: 'rlhf.datasets.openRecord', title: 'Preview Record', arguments: [node] };
        return item;
      }
      case 'more': {
        const item = new vscode.TreeItem(node.label, C.None);
        item.iconPath = new vscode.ThemeIcon('ellipsis');
        item.command = { command: 'rlhf.datasets.showMore', title: 'Show More', arguments: [node.path] };
        item.id = node.id;
        return item;
      }
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
