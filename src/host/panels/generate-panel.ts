/**
 * Generate, side by side: a webview with the prompt and the sampling settings on top and one column
 * per model, each filling in while its model writes (the worker's `generate --stream`). Models run
 * one after the other in the panel's own worker; Stop ends the one running and skips the rest.
 * Copy puts a response (or a column) on the clipboard.
 */
import * as vscode from 'vscode';
import { randomInt } from 'crypto';
import { webviewHtml, webviewOptions } from './webview-html';
import { WorkerClient } from '../worker-client';
import { nativeModulesDir } from '../project-commands';
import { GenerateSettings, HostToGenerate, parseGenerateToHost } from '../../protocol/generate';

export interface GenerateModelChoice {
  label: string;
  dir: string;
}

export class GeneratePanel {
  static readonly viewType = 'rlhf.generate';
  private static current: GeneratePanel | undefined;
  private readonly worker: WorkerClient;
  private readonly disposables: vscode.Disposable[] = [];
  /** Bumped by every new generation and by Stop: a run that is no longer current posts nothing. */
  private generation = 0;
  /** The generation whose loop is running (Stop bumps `generation` but not this). */
  private activeRun = 0;
  private running: Promise<number> | undefined;
  private ready = false;
  /** The complete responses of each model (by column) from the last generation. */
  private readonly last = new Map<number, string[]>();

  static open(ctx: vscode.ExtensionContext, folder: string, models: GenerateModelChoice[], prompt: string, settings: GenerateSettings): void {
    if (GeneratePanel.current) {
      GeneratePanel.current.dispose();
      GeneratePanel.current.panel.dispose();
    }
    const panel = vscode.window.createWebviewPanel(GeneratePanel.viewType, 'Generate', vscode.ViewColumn.Active, { ...webviewOptions(ctx.extensionUri), retainContextWhenHidden: true });
    GeneratePanel.current = new GeneratePanel(ctx, panel, folder, models, prompt, settings);
  }

  private constructor(
    private readonly ctx: vscode.ExtensionContext,
    readonly panel: vscode.WebviewPanel,
    private readonly folder: string,
    private readonly models: GenerateModelChoice[],
    private prompt: string,
    private settings: GenerateSettings,
  ) {
    this.worker = new WorkerClient(ctx.extensionPath);
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'rlhf.svg');
    panel.webview.html = webviewHtml(panel.webview, ctx.extensionUri, { title: 'Generate', script: 'generate.js', styles: ['dist/webview/common.css', 'dist/webview/generate.css'] });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => void this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  private post(m: HostToGenerate): void {
    void this.panel.webview.postMessage(m);
  }

  private async receive(raw: unknown): Promise<void> {
    const m = parseGenerateToHost(raw);
    if (!m) return;
    if (m.type === 'ready') {
      // the handshake: nothing is posted before the webview listens
      const first = !this.ready;
      this.ready = true;
      this.post({ type: 'setup', prompt: this.prompt, models: this.models.map((x, id) => ({ id, label: x.label })), settings: this.settings });
      if (first) await this.run();
    } else if (m.type === 'generate') {
      this.prompt = m.prompt;
      this.settings = m.settings;
      await this.run();
    } else if (m.type === 'stop') {
      this.generation++;
      this.worker.kill();
    } else if (m.type === 'copy') {
      await vscode.env.clipboard.writeText(m.text);
    } else if (m.type === 'rankThese') {
      if (this.running) return void vscode.window.showInformationMessage('RLHF: the models are still writing; Rank these once they are done.');
      const shown = [...this.last.entries()].sort((a, b) => a[0] - b[0]).flatMap(([id, r]) => r.map((text) => ({ text, model: this.models[id].dir })));
      // in a random order: the columns' order would tell the annotator which model wrote what
      for (let i = shown.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [shown[i], shown[j]] = [shown[j], shown[i]];
      }
      await vscode.commands.executeCommand('rlhf.rankThese', { prompt: this.prompt, responses: shown.map((x) => x.text), models: shown.map((x) => x.model) });
    }
  }

  private async run(): Promise<void> {
    const gen = ++this.generation;
    this.activeRun = gen;
    if (this.running) {
      this.worker.kill();
      await this.running;
    }
    if (gen !== this.generation) return; // a newer request came while the old worker stopped
    await this.ctx.workspaceState.update('rlhf.lastPrompt', this.prompt);
    const s = this.settings;
    this.last.clear();
    for (const [id] of this.models.entries()) this.post({ type: 'column', id, state: 'waiting', responses: [], finished: [] });
    for (const [id, model] of this.models.entries()) {
      if (gen !== this.generation) break;
      const argv = ['generate', '--model', model.dir, '--prompt', this.prompt, '--num-samples', String(s.samples), '--max-tokens', String(s.maxTokens), '--temperature', String(s.temperature), '--top-k', String(s.topK), '--top-p', String(s.topP), '--seed', String(s.seed), '--stream'];
      const env = { RLHF_BACKEND: vscode.workspace.getConfiguration('rlhf').get<string>('backend', 'auto'), RLHF_NATIVE_MODULES: nativeModulesDir(this.ctx) };
      const errors: string[] = [];
      let last: { responses: string[]; finished: boolean[] } = { responses: [], finished: [] };
      this.post({ type: 'column', id, state: 'generating', responses: [], finished: [] });
      this.running = this.worker.run(argv, this.folder, env, {
        onLog: (line) => /^(error|rlhf )/.test(line) && errors.push(line.replace(/^error:\s*/, '')),
        onProgress: () => {},
        onResult: (v) => {
          if (gen !== this.generation || !Array.isArray(v.responses)) return;
          last = { responses: (v.responses as unknown[]).map(String), finished: Array.isArray(v.finished) ? (v.finished as unknown[]).map(Boolean) : [] };
          const done = v.partial !== true;
          if (done) this.last.set(id, last.responses);
          this.post({ type: 'column', id, state: done ? 'done' : 'generating', ...last, ...(done && typeof v.tokens_per_second === 'number' ? { tokensPerSecond: v.tokens_per_second } : {}) });
        },
      });
      const code = await this.running;
      this.running = undefined;
      if (gen !== this.generation) {
        // stopped (not replaced by a newer generation, which posts its own columns)
        if (this.activeRun === gen) {
          this.post({ type: 'column', id, state: 'stopped', ...last });
          for (let rest = id + 1; rest < this.models.length; rest++) this.post({ type: 'column', id: rest, state: 'stopped', responses: [], finished: [] });
        }
        break;
      }
      if (code !== 0) this.post({ type: 'column', id, state: 'failed', ...last, message: errors.at(-1) ?? `the worker exited with code ${code}` });
    }
  }

  private dispose(): void {
    if (GeneratePanel.current === this) GeneratePanel.current = undefined;
    this.generation++;
    this.worker.kill();
    for (const d of this.disposables) d.dispose();
  }
}
