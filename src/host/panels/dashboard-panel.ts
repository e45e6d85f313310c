/**
 * The training dashboard's host side: it tails each run's metrics.jsonl (once a second while the
 * panel is visible; the file is the source of truth) and sends the new points to the webview,
 * which draws them. A dashboard shows chosen runs, or every run of a stage (new ones join as
 * they start). Exports are written by the host under the workspace's .rlhf/exports/.
 */
import * as vscode from 'vscode';
import * as fs from 'fs';
import * as path from 'path';
import { webviewHtml, webviewOptions } from './webview-html';
import { readClusterJob } from '../../data/cluster-run';
import { DashboardScope, HostToDashboard, MAX_SAMPLE_ROWS, RunMeta, isMetricName, isScope, parseDashboardToHost } from '../../protocol/dashboard';
import { Columns, JsonlTail, MetricsTail, metricCsv, toColumns } from '../../data/metrics-tail';
import { SampleRow, parseSampleLine } from '../../data/samples';
import { writeFileAtomic } from '../../data/append';
import { RunDir, RunInfo } from '../../data/run';

/**
 * Only the metrics whose names the webview accepts: one odd name in a file some other tool wrote
 * would otherwise make the webview refuse the whole message, every curve with it.
 */
function drawable(c: Columns): Columns {
  return { ...c, metrics: Object.fromEntries(Object.entries(c.metrics).filter(([k]) => isMetricName(k))) };
}

interface Followed {
  id: string;
  dir: RunDir;
  info: RunInfo;
  tail: MetricsTail;
  /** samples.jsonl (RL stages write it): the Samples view. */
  samples: JsonlTail<SampleRow>;
  /** Nothing sent yet: the first points replace whatever the webview holds for this run. */
  fresh: boolean;
  /** run.json's modification time when last read. */
  infoMtime?: number;
}

const POLL_MS = 1000;

export class DashboardPanel {
  static readonly viewType = 'rlhf.dashboard';
  private static readonly open = new Set<DashboardPanel>();
  private runs = new Map<string, Followed>();
  /** Runs of other stages (a stage dashboard reads each run.json once). */
  private readonly otherStage = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  static show(ctx: vscode.ExtensionContext, runsDir: string, scope: DashboardScope): void {
    const same = [...DashboardPanel.open].find((d) => JSON.stringify(d.scope) === JSON.stringify(scope));
    if (same) return same.panel.reveal();
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, titleOf(scope), vscode.ViewColumn.Active, webviewOptions(ctx.extensionUri));
    new DashboardPanel(ctx, panel, runsDir, scope);
  }

  /** Brings dashboards back after a reload; the webview's state holds only the scope (run ids or a stage). */
  static serializer(ctx: vscode.ExtensionContext, runsDir: () => string | undefined): vscode.WebviewPanelSerializer {
    return {
      async deserializeWebviewPanel(panel, state: unknown) {
        const dir = runsDir();
        const scope = (state as { scope?: unknown } | undefined)?.scope;
        panel.webview.options = webviewOptions(ctx.extensionUri);
        if (!dir || !isScope(scope)) return panel.dispose();
        new DashboardPanel(ctx, panel, dir, scope);
      },
    };
  }

  private constructor(ctx: vscode.ExtensionContext, readonly panel: vscode.WebviewPanel, private readonly runsDir: string, readonly scope: DashboardScope) {
    DashboardPanel.open.add(this);
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'rlhf.svg');
    panel.webview.html = webviewHtml(panel.webview, ctx.extensionUri, { title: titleOf(scope), script: 'dashboard.js', styles: ['dist/webview/uplot.css', 'dist/webview/common.css', 'dist/webview/dashboard.css'] });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidChangeViewState(() => (panel.visible ? this.startPolling() : this.stopPolling())),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private post(m: HostToDashboard): void {
    void this.panel.webview.postMessage(m);
  }

  /** The runs in scope now (run ids are single folder names under the runs folder). */
  private runIds(): string[] {
    if (!fs.existsSync(this.runsDir)) return [];
    const all = fs.readdirSync(this.runsDir).filter((id) => fs.existsSync(path.join(this.runsDir, id, 'run.json'))).sort();
    return 'ids' in this.scope ? this.scope.ids.filter((id) => all.includes(id)) : all;
  }

  /** Everything from the start: on 'ready' (a new or reloaded webview). */
  private sendAll(): void {
    this.runs.clear();
    this.poll(true);
  }

  private poll(force = false): void {
    let changed = force;
    for (const id of this.runIds()) {
      if (this.runs.has(id) || this.otherStage.has(id)) continue;
      const dir = new RunDir(path.join(this.runsDir, id));
      const infoMtime = mtimeOf(dir.runFile); // before the read: a change while reading is seen next time
      const info = readInfo(dir);
      if (!info) continue;
      if ('stage' in this.scope && info.stage !== this.scope.stage) {
        this.otherStage.add(id);
        continue;
      }
      this.runs.set(id, { id, dir, info, infoMtime, tail: new MetricsTail(dir.metricsFile), samples: new JsonlTail(dir.samplesFile, parseSampleLine), fresh: true });
      changed = true;
    }
    if (changed) this.post({ type: 'runs', scope: this.scope, runs: [...this.runs.values()].map(meta) });
    for (const r of this.runs.values()) {
      const { reset, rows } = r.tail.read();
      if (rows.length || reset || r.fresh) this.post({ type: 'points', run: r.id, reset: reset || r.fresh, ...drawable(toColumns(rows)) });
      const samples = r.samples.read();
      if (samples.rows.length || samples.reset || r.fresh) {
        for (let i = 0; i === 0 || i < samples.rows.length; i += MAX_SAMPLE_ROWS) {
          this.post({ type: 'samples', run: r.id, reset: i === 0 && (samples.reset || r.fresh), rows: samples.rows.slice(i, i + MAX_SAMPLE_ROWS) });
        }
      }
      r.fresh = false;
      // run.json is the one source of a run's status: re-read whenever it changes (a resume turns
      // a cancelled run back into a running one; a run in a terminal finishes on its own)
      const mtime = mtimeOf(r.dir.runFile);
      if (mtime !== r.infoMtime) {
        r.infoMtime = mtime;
        const info = readInfo(r.dir);
        if (info && info.status !== r.info.status) {
          r.info = info;
          this.post({ type: 'status', run: r.id, status: info.status });
        }
      }
    }
  }

  private startPolling(): void {
    this.stopPolling();
    this.timer = setInterval(() => {
      try {
        this.poll();
      } catch (e) {
        this.post({ type: 'error', message: (e as Error).message });
      }
    }, POLL_MS);
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private receive(raw: unknown): void {
    const m = parseDashboardToHost(raw);
    if (!m) return this.post({ type: 'error', message: 'ignored an invalid message' });
    try {
      if (m.type === 'ready') {
        this.sendAll();
        this.startPolling();
      } else if (m.type === 'exportCsv') {
        const runs = [...this.runs.values()].map((r) => ({ id: r.id, rows: new MetricsTail(r.dir.metricsFile).read().rows }));
        this.exportReported(`${m.metric}.csv`, Buffer.from(metricCsv(m.metric, runs)));
      } else if (m.type === 'exportPng') {
        this.exportReported(`${m.metric}.png`, Buffer.from(m.png, 'base64'));
      }
    } catch (e) {
      this.post({ type: 'error', message: (e as Error).message });
    }
  }

  /** An export whose failure (a full disk, a read-only folder) is said, never an unhandled rejection. */
  private exportReported(name: string, data: Buffer): void {
    this.export(name, data).catch((e) => {
      this.post({ type: 'error', message: `export failed: ${(e as Error).message}` });
      void vscode.window.showErrorMessage(`RLHF: the export failed: ${(e as Error).message}`);
    });
  }

  /** Writes an export under <workspace>/.rlhf/exports/ (the host picks the name) and offers to open it. */
  private async export(name: string, data: Buffer): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!folder || !vscode.workspace.isTrusted) return void vscode.window.showWarningMessage('RLHF: exports are written into a trusted workspace folder.');
    const scope = 'ids' in this.scope ? (this.scope.ids.length === 1 ? this.scope.ids[0] : `${this.scope.ids.length}-runs`) : `all-${this.scope.stage}`;
    // run ids come from run.json: the whole name is sanitised, so none can leave the exports folder
    const file = path.join(folder, '.rlhf', 'exports', `${scope}-${name}`.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '_'));
    writeFileAtomic(file, data); // an export replacing an older one never shows half-written
    const choice = await vscode.window.showInformationMessage(`RLHF: exported ${vscode.workspace.asRelativePath(file)}`, 'Open', 'Reveal in Explorer');
    if (choice === 'Open') await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file));
    if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(file));
  }

  private dispose(): void {
    DashboardPanel.open.delete(this);
    this.stopPolling();
    for (const d of this.disposables) d.dispose();
  }
}

function mtimeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** run.json, or undefined while it is missing or half-written. */
function readInfo(dir: RunDir): RunInfo | undefined {
  try {
    return dir.read();
  } catch {
    return undefined;
  }
}

function meta(r: Followed): RunMeta {
  const t = Date.parse(r.info.started_at);
  const sweep = readClusterJob(r.dir.dir)?.sweep;
  return { id: r.id, stage: r.info.stage, status: r.info.status, startedAt: Number.isFinite(t) ? t : 0, ...(sweep ? { sweep: Object.entries(sweep.values).map(([k, v]) => `${k}=${v}`).join(' ') } : {}) };
}

function titleOf(scope: DashboardScope): string {
  if ('stage' in scope) return `Dashboard: all ${scope.stage} runs`;
  return `Dashboard: ${scope.ids.length === 1 ? scope.ids[0] : `${scope.ids.length} runs`}`;
}
