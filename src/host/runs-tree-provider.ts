/**
 * The "Runs" view: runs of the configured runs folder grouped by stage (status, key metric,
 * age), their checkpoints as children. Follows run.json and metrics.jsonl changes on disk.
 */
import * as vscode from 'vscode';
import * as path from 'path';
import { RunNode, RunSummary, checkpointNodes, runNodes, runStageNodes } from '../data/runs-tree';
import { ScanClient } from './scan-client';
import { isFinalState } from '../data/cluster-run';

/** How the view learns cluster jobs' states: a poll of the scheduler while any job has not ended. */
export interface ClusterPoll {
  poll(runsDir: string): Promise<unknown>;
  seconds(): number;
  onError(e: Error): void;
}

const STATUS_ICONS: Record<string, [string, string | undefined]> = {
  pending: ['clock', undefined],
  running: ['sync~spin', undefined],
  completed: ['pass', 'testing.iconPassed'],
  cancelled: ['debug-pause', undefined],
  failed: ['error', 'testing.iconFailed'],
};

export class RunsTreeProvider implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private runs: RunSummary[] = [];
  private timer: NodeJS.Timeout | undefined;
  private watchers: vscode.FileSystemWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private lastPollError = '';

  constructor(private readonly runsDir: () => string | undefined, private readonly scan: ScanClient, private readonly cluster?: ClusterPoll) {}

  /** Reads the runs folder on the scan thread (bounded reads; a bad run.json costs that run only). */
  /** The run in a folder, as last read. */
  find(dir: string): RunSummary | undefined {
    return this.runs.find((r) => path.resolve(r.dir) === path.resolve(dir));
  }

  async refresh(): Promise<void> {
    const dir = this.runsDir();
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    // blind evaluations' results go into the tooltips of the runs whose models they compared
    const votes = ws ? { workspace: ws, files: [path.join(ws, 'data', 'evaluations.rm.jsonl')] } : undefined;
    const r = dir ? await this.scan.ask({ type: 'runs', dir, ...(votes ? { votes } : {}) }) : undefined;
    this.runs = r?.type === 'runs' ? r.runs : [];
    this.changed.fire(undefined);
    this.schedulePoll(dir);
  }

  /** While a cluster job has not ended: ask the scheduler again in a few seconds (never more often). */
  private schedulePoll(dir: string | undefined): void {
    if (!this.cluster || !dir || this.pollTimer || !this.runs.some((r) => r.cluster && !isFinalState(r.cluster.state?.name))) return;
    this.pollTimer = setTimeout(async () => {
      try {
        await this.cluster!.poll(dir);
        this.lastPollError = '';
      } catch (e) {
        // said once, not at every poll
        if ((e as Error).message !== this.lastPollError) this.cluster!.onError(e as Error);
        this.lastPollError = (e as Error).message;
      }
      this.pollTimer = undefined;
      await this.refresh();
    }, this.cluster.seconds() * 1000);
  }

  /** Watches run.json and slurm.json files (debounced). */
  watch(folder: vscode.WorkspaceFolder, relative: string): void {
    for (const w of this.watchers) w.dispose();
    const later = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), 400);
    };
    this.watchers = ['run.json', 'slurm.json'].map((f) => {
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, `${relative}/*/${f}`));
      w.onDidCreate(later);
      w.onDidChange(later);
      w.onDidDelete(later);
      return w;
    });
  }

  getChildren(node?: RunNode): RunNode[] {
    if (!node) return runStageNodes(this.runs);
    if (node.kind === 'stage') return runNodes(this.runs, node.stage);
    if (node.kind === 'run') {
      const r = this.runs.find((x) => x.dir === node.dir);
      return r ? checkpointNodes(r) : [];
    }
    return [];
  }

  getTreeItem(node: RunNode): vscode.TreeItem {
    const C = vscode.TreeItemCollapsibleState;
    if (node.kind === 'stage') {
      const item = new vscode.TreeItem(node.label, C.Expanded);
      item.description = node.description;
      item.contextValue = 'rlhf.runStage';
      return item;
    }
    if (node.kind === 'run') {
      const item = new vscode.TreeItem(node.label, C.Collapsed);
      item.id = node.id;
      item.description = node.description;
      item.tooltip = node.tooltip;
      const [icon, color] = STATUS_ICONS[node.status] ?? ['circle-outline', undefined];
      item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
      item.contextValue = node.resumable ? 'rlhf.run.resumable' : node.cluster && (node.status === 'pending' || node.status === 'running') ? 'rlhf.run.clusterActive' : 'rlhf.run';
      item.resourceUri = vscode.Uri.file(node.dir);
      return item;
    }
    const item = new vscode.TreeItem(node.label, C.None);
    item.id = node.id;
    item.iconPath = new vscode.ThemeIcon('package');
    item.contextValue = 'rlhf.checkpoint';
    item.resourceUri = vscode.Uri.file(node.dir);
    item.tooltip = node.dir;
    return item;
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    for (const w of this.watchers) w.dispose();
    this.changed.dispose();
  }
}
