/**
 * The ranking panel's host side. It owns the session: the prompts, the model, the RM file the
 * rankings are appended to (chosen by the annotator at start; the webview never names a path),
 * the responses it generated in a worker process, and the undo stack of this session's records.
 * A submission is appended and fsynced before the panel moves on (src/data/append.ts).
 */
import * as vscode from 'vscode';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { WorkerClient } from '../worker-client';
import { webviewHtml, webviewOptions } from './webview-html';
import { describeGeneration, generationFlags, generationSettings } from '../settings';
import { HostToRanking, parseRankingToHost, AgreementSummary } from '../../protocol/ranking';
import { PromptItem, RankingFile, itemSeed, loadPromptsCounted, nextPrompt, perHour, rankingRecord, readRankingFile } from '../../data/ranking-session';
import { appendRecord, removeRecord } from '../../data/append';
import { insideFolder, openRegular } from '../../data/durable';
import { promptTemplate } from '../../data/sft';
import { agreement } from '../../data/agreement';
import { randomUUID } from 'crypto';
import { Verdict, Vote, summarizeByVoter, voteRecord } from '../../data/evaluation';
import { EvalHeader, EvalItem, readItems, readVotes } from '../../data/evaluation-file';

/** What a session is made of; kept in workspace state so it survives closing and reloading. */
export interface RankingSessionConfig {
  /**
   * A PPO or RM file of prompts, one typed prompt, or one prompt with responses already written
   * (Generate's "Rank these": the responses of several models, `models` naming who wrote them).
   */
  source: { file: string } | { prompt: string } | { prompt: string; responses: string[]; models: string[] };
  target: string;
  model: string;
  skipped: number[];
  /** A blind comparison: its items file (rlhf compare) and name; `model` is then unused. */
  evaluation?: { items: string; name: string };
}

const STATE_KEY = 'rlhf.ranking.session';
const GUIDELINES_LIMIT = 256 * 1024;

export class RankingPanel {
  static readonly viewType = 'rlhf.ranking';
  static current: RankingPanel | undefined;

  private items: PromptItem[] = [];
  private index = -1;
  private responses: string[] = [];
  private complete = false;
  /** Responses already generated, by item (undo goes back to them; a reload re-shows them). */
  private readonly generated = new Map<number, string[]>();
  private readonly attempts = new Map<number, number>();
  private readonly submitted: { index: number; line: string; timeMs: number }[] = [];
  private readonly worker: WorkerClient;
  private generation = 0;
  private running: Promise<number> | undefined;
  /** The item the worker is generating now (the one shown, or the next one ahead of time). */
  private generating: number | undefined;
  private partial: string[] = [];
  /** The RM file as last read: read once at start, after each write, and when the panel (re)loads. */
  private file: RankingFile = { ranked: new Set(), rankings: [], preferences: 0 };
  /** In an evaluation: its items (both responses made in advance) and the votes of the file so far. */
  private evalItems: EvalItem[] = [];
  private evalHeader: EvalHeader | undefined;
  private votes: Vote[] = [];
  /** Records in the prompt file (more than the prompts when prompts repeat). */
  private sourceRecords = 0;
  private readonly disposables: vscode.Disposable[] = [];

  /** Opens (or replaces) the ranking session. */
  static async open(ctx: vscode.ExtensionContext, config: RankingSessionConfig): Promise<void> {
    await ctx.workspaceState.update(STATE_KEY, config);
    if (RankingPanel.current) {
      RankingPanel.current.panel.reveal();
      RankingPanel.current.start(config);
      return;
    }
    const panel = vscode.window.createWebviewPanel(RankingPanel.viewType, 'Rank responses', vscode.ViewColumn.Active, webviewOptions(ctx.extensionUri));
    new RankingPanel(ctx, panel, config);
  }

  /** The WebviewPanelSerializer: a panel that was open when the window closed comes back with its session. */
  static serializer(ctx: vscode.ExtensionContext): vscode.WebviewPanelSerializer {
    return {
      async deserializeWebviewPanel(panel) {
        const config = ctx.workspaceState.get<RankingSessionConfig>(STATE_KEY);
        panel.webview.options = webviewOptions(ctx.extensionUri);
        if (!config || !vscode.workspace.isTrusted) {
          panel.dispose();
          return;
        }
        new RankingPanel(ctx, panel, config);
      },
    };
  }

  private constructor(private readonly ctx: vscode.ExtensionContext, readonly panel: vscode.WebviewPanel, private config: RankingSessionConfig) {
    RankingPanel.current = this;
    this.worker = new WorkerClient(ctx.extensionPath);
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'rlhf.svg');
    panel.webview.html = webviewHtml(panel.webview, ctx.extensionUri, { title: 'Rank responses', script: 'ranking.js', styles: ['dist/webview/common.css', 'dist/webview/ranking.css'] });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration('rlhf.ranking')) return;
        this.reread(); // the annotator may have changed
        this.post({ type: 'session', session: this.sessionInfo() });
        this.sendStatus();
      }),
    );
    this.load(config);
  }

  private folder(): string {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(this.config.target);
  }
  private reread(): void {
    if (this.config.evaluation) {
      const { votes, voted } = readVotes(this.config.target, { evaluation: this.config.evaluation.name, annotator: this.annotator() });
      this.votes = votes;
      this.file = { ranked: new Set([...voted].map(itemKey)), rankings: [], preferences: votes.length };
    } else this.file = readRankingFile(this.config.target, this.annotator());
    // Generate's responses are done once this session submitted them (an undo takes that back)
    if ('responses' in this.config.source && this.submitted.some((x) => x.index === 0) && this.items[0]?.key) this.file.ranked.add(this.items[0].key);
  }

  private annotator(): string {
    return vscode.workspace.getConfiguration('rlhf.ranking').get<string>('annotator') || os.userInfo().username;
  }
  private k(): number {
    if (this.config.evaluation) return 2;
    if ('responses' in this.config.source) return this.config.source.responses.length;
    return Math.min(9, Math.max(2, Math.round(vscode.workspace.getConfiguration('rlhf.ranking').get<number>('k', 4))));
  }

  private load(config: RankingSessionConfig): void {
    // a generation still running for the previous session must not reach this one
    this.generation++;
    this.generating = undefined;
    this.worker.kill();
    this.config = config;
    this.evalItems = [];
    this.evalHeader = undefined;
    this.sourceRecords = 0;
    if (config.evaluation) {
      const { header, items } = readItems(config.evaluation.items);
      this.evalHeader = header;
      this.evalItems = items;
      this.items = items.map((x) => ({ prompt: x.prompt, context: x.context, key: itemKey(x.item) }));
    } else if ('file' in config.source) {
      const { items, records } = loadPromptsCounted(config.source.file);
      this.items = items;
      this.sourceRecords = records;
    } else this.items = [{ prompt: config.source.prompt, context: promptTemplate(config.source.prompt), messages: [{ role: 'user', content: config.source.prompt }] }];
    this.reread();
    this.generated.clear();
    // Generate's responses: written already, nothing to generate
    if ('responses' in config.source) {
      this.generated.set(0, config.source.responses);
      // these responses, not the prompt, are what is ranked: a prompt ranked before is ranked again
      this.items[0].key = `generate:${createHash('sha256').update(JSON.stringify(config.source.responses)).digest('hex').slice(0, 16)}`;
    }
    // an evaluation's responses were made with its items: nothing to generate
    this.evalItems.forEach((x, i) => this.generated.set(i, [x.left.response, x.right.response]));
    this.attempts.clear();
    this.submitted.length = 0;
    this.index = -1;
  }

  private start(config: RankingSessionConfig): void {
    this.load(config);
    this.post({ type: 'session', session: this.sessionInfo() });
    this.advance(0);
  }

  private post(m: HostToRanking): void {
    void this.panel.webview.postMessage(m);
  }

  /** Who wrote the responses: the model, or Generate's models joined with " + ". */
  private modelLabel(): string {
    const rel = (p: string) => vscode.workspace.asRelativePath(p);
    return 'models' in this.config.source ? [...new Set(this.config.source.models.map(rel))].sort().join(' + ') : rel(this.config.model);
  }

  private sessionInfo() {
    const rel = (p: string) => vscode.workspace.asRelativePath(p);
    const gfile = vscode.workspace.getConfiguration('rlhf.ranking').get<string>('guidelines', 'guidelines.md');
    const gpath = gfile ? path.resolve(this.folder(), gfile) : undefined;
    let guidelines: string | undefined;
    if (gpath && fs.existsSync(gpath) && insideFolder(gpath, this.folder())) guidelines = readHead(gpath, GUIDELINES_LIMIT);
    const source = 'file' in this.config.source ? rel(this.config.source.file) : 'responses' in this.config.source ? `the responses of ${new Set(this.config.source.models).size} model(s) from Generate` : 'a typed prompt';
    if (this.config.evaluation && this.evalHeader) {
      const g = this.evalHeader.generation;
      return {
        title: `Blind comparison of ${this.evalHeader.models.length} models on ${rel(this.evalHeader.prompts)}`,
        target: rel(this.config.target),
        model: 'hidden until you reveal the results',
        annotator: this.annotator(),
        k: 2,
        generation: `one response of each of two models, sides at random · temperature ${g.temperature} · top-p ${g.top_p} · top-k ${g.top_k || 'all'} · up to ${g.max_tokens} tokens`,
        guidelines,
        guidelinesName: guidelines !== undefined ? gfile : undefined,
        evaluation: true,
      };
    }
    // an RM or PPO file repeats prompts: each is ranked once, and the title says how many there are
    const merged = this.sourceRecords > this.items.length ? ` (${this.items.length} distinct prompts of its ${this.sourceRecords} records; each is ranked once)` : '';
    return {
      title: `Ranking ${source}${merged}`,
      target: rel(this.config.target),
      model: this.modelLabel(),
      annotator: this.annotator(),
      k: this.k(),
      generation: 'responses' in this.config.source ? 'written in the Generate panel (with its settings)' : describeGeneration(generationSettings()),
      guidelines,
      guidelinesName: guidelines !== undefined ? gfile : undefined,
    };
  }

  private receive(raw: unknown): void {
    const m = parseRankingToHost(raw);
    if (!m) return void this.post({ type: 'error', message: 'ignored an invalid message' });
    try {
      if (m.type === 'ready') {
        this.reread(); // others may have written to the file while the panel was hidden
        this.post({ type: 'session', session: this.sessionInfo() });
        this.sendStatus();
        if (this.index < 0) this.advance(0);
        else this.post({ type: 'item', index: this.index, prompt: this.items[this.index].prompt, responses: this.responses, complete: this.complete });
      } else if (m.type === 'submit') this.submit(m);
      else if (m.type === 'skip') {
        if (m.index !== this.index) return;
        this.config.skipped = [...new Set([...this.config.skipped, m.index])];
        void this.ctx.workspaceState.update(STATE_KEY, this.config);
        this.advance(m.index + 1);
      } else if (m.type === 'undo') this.undo();
      else if (m.type === 'trainDpo') void vscode.commands.executeCommand('rlhf.trainDpo', this.config.target);
      else if (m.type === 'regenerate' && 'responses' in this.config.source) this.post({ type: 'error', message: 'these responses came from the Generate panel: generate again there, then Rank these' });
      else if (m.type === 'regenerate' && m.index === this.index && this.complete && !this.config.evaluation) {
        this.attempts.set(m.index, (this.attempts.get(m.index) ?? 0) + 1);
        this.generated.delete(m.index);
        this.show(m.index);
      }
    } catch (e) {
      this.post({ type: 'error', message: (e as Error).message });
    }
  }

  private submit(m: { index: number; ranks: number[]; flags: string[]; comment: string; timeMs: number }): void {
    if (m.index !== this.index || !this.complete) throw new Error('that item is no longer shown; nothing was written');
    if (m.ranks.length !== this.responses.length) throw new Error(`${this.responses.length} responses but ${m.ranks.length} ranks; nothing was written`);
    if (!vscode.workspace.isTrusted) throw new Error('this workspace is not trusted; rankings cannot be written');
    const record = this.config.evaluation ? this.voteRecordOf(m) : rankingRecord({
      prompt: this.items[m.index].prompt,
      responses: this.responses,
      ranks: m.ranks,
      annotator: this.annotator(),
      timeMs: m.timeMs,
      createdAt: new Date(),
      model: this.modelLabel(),
      flags: m.flags,
      comment: m.comment,
    });
    if (!insideFolder(this.config.target, this.folder())) throw new Error(`${this.config.target} resolves outside the workspace (a symbolic link?); nothing was written`);
    const line = appendRecord(this.config.target, record); // on disk (file and folder fsync) before it is acknowledged
    // from here the record is saved: nothing below may report it as failed
    this.submitted.push({ index: m.index, line, timeMs: m.timeMs });
    if (!this.config.evaluation) void vscode.commands.executeCommand('setContext', 'rlhf.done.rank', true); // the walkthrough's step
    this.post({ type: 'submitted', index: m.index, record: line });
    this.file.ranked.add(this.items[m.index].key ?? (record.prompt as string));
    try {
      this.reread();
    } catch (e) {
      this.post({ type: 'error', message: `saved; but the file could not be re-read for progress: ${(e as Error).message}` });
    }
    this.advance(m.index + 1);
  }

  private undo(): void {
    const last = this.submitted[this.submitted.length - 1];
    if (!last) throw new Error('nothing submitted in this session to undo');
    removeRecord(this.config.target, last.line); // under the file's lock, only this line; refuses if it is gone
    this.submitted.pop();
    try {
      this.reread();
    } catch {
      const it = this.items[last.index];
      if (it) this.file.ranked.delete(it.key ?? it.prompt);
    }
    this.post({ type: 'undone', index: last.index });
    this.sendStatus();
    this.show(last.index);
  }

  /** Shows the next item to rank from `from` on, or says the session is finished. */
  private advance(from: number): void {
    const i = nextPrompt(this.items, this.file.ranked, new Set(this.config.skipped), from % Math.max(1, this.items.length));
    this.sendStatus();
    if (i < 0) {
      this.index = -1;
      this.post({ type: 'finished' });
      return;
    }
    this.show(i);
  }

  /** A vote's record: ranks [1, 2] = the left response is better, [2, 1] the right, [1, 1] a tie; "not rankable" = both bad. */
  private voteRecordOf(m: { index: number; ranks: number[]; flags: string[]; comment: string; timeMs: number }): Record<string, unknown> {
    const x = this.evalItems[m.index];
    const [l, r] = m.ranks;
    const verdict: Verdict = m.flags.includes('not_rankable') ? 'both_bad' : l < r ? 'left' : r < l ? 'right' : 'tie';
    return {
      ...voteRecord({ prompt: x.prompt, left: x.left, right: x.right, verdict, annotator: this.annotator(), timeMs: m.timeMs, seed: x.seed, item: x.item, createdAt: new Date(), comment: m.comment, flags: m.flags.filter((f) => f !== 'not_rankable'), id: `vote-${randomUUID()}` }),
      evaluation: this.config.evaluation!.name,
    };
  }

  private sendStatus(): void {
    const prompts = new Set(this.items.map((x) => x.key ?? x.prompt));
    if (this.config.evaluation) {
      const s = summarizeByVoter(this.votes);
      const fin = (x: number) => (Number.isFinite(x) ? x : null);
      const pairs = (ps: typeof s.pairs) => ps.map((p) => ({ ...p, win_rate: fin(p.win_rate) }));
      const judges = Object.entries(s.judges ?? {}).map(([annotator, j]) => ({ annotator, pairs: pairs(j.pairs), agreement: j.agreement.agree, items: j.agreement.items }));
      this.post({ type: 'results', results: { votes: s.votes, ties: s.ties, pairs: pairs(s.pairs), ...(s.ratings ? { ratings: s.ratings } : {}), ...(judges.length ? { judges } : {}) } });
    }
    this.post({
      type: 'progress',
      progress: {
        ranked: [...this.file.ranked].filter((p) => prompts.has(p)).length,
        skipped: this.config.skipped.length,
        total: this.items.length,
        records: this.file.preferences,
        undoable: this.submitted.length,
        perHour: perHour(this.submitted.map((s) => s.timeMs)),
      },
    });
    this.post({ type: 'agreement', agreement: this.agreement() });
  }

  private agreement(): AgreementSummary {
    const a = agreement(this.file.rankings);
    const num = (x: number) => (Number.isFinite(x) ? x : null);
    return { items: a.items, annotators: a.annotators.length, pairwise: num(a.pairwise_agreement), alpha: num(a.krippendorff_alpha_ordinal), tau: a.kendall_tau_b.filter((t) => Number.isFinite(t.tau_b)) };
  }

  /** Shows item i: its cached responses, the generation already under way for it, or a new one. */
  private show(i: number): void {
    this.index = i;
    const item = this.items[i];
    const cached = this.generated.get(i);
    this.responses = cached ?? (this.generating === i ? this.partial : []);
    this.complete = !!cached;
    this.post({ type: 'item', index: i, prompt: item.prompt, responses: this.responses, complete: this.complete });
    if (cached) this.prefetch(i);
    else if (this.generating !== i) void this.generate(i);
  }

  /** While the annotator ranks item i, the next item's responses are generated, so it shows at once. */
  private prefetch(i: number): void {
    const next = nextPrompt(this.items, this.file.ranked, new Set([...this.config.skipped, i]), i + 1);
    if (next >= 0 && next !== i && !this.generated.has(next) && this.generating === undefined) void this.generate(next);
  }

  private async generate(i: number): Promise<void> {
    const gen = ++this.generation;
    if (this.running) {
      this.generating = undefined;
      this.worker.kill();
      await this.running;
    }
    if (gen !== this.generation) return; // a newer request came while the old worker stopped
    const g = generationSettings();
    const k = this.k();
    const seed = itemSeed(g.seed, i) + 1000 * (this.attempts.get(i) ?? 0);
    // a model with a chat template reads the conversation through it; others read the context as it is
    const messages = this.items[i].messages ? ['--messages', JSON.stringify(this.items[i].messages)] : [];
    const argv = ['generate', '--model', this.config.model, '--prompt', this.items[i].context, '--raw', ...messages, '--num-samples', String(k), ...generationFlags(g, seed), '--stream'];
    const env = { RLHF_BACKEND: vscode.workspace.getConfiguration('rlhf').get<string>('backend', 'auto') };
    const errors: string[] = [];
    this.generating = i;
    this.partial = [];
    this.running = this.worker.run(argv, this.folder(), env, {
      onLog: (line) => line.startsWith('error') && errors.push(line),
      onProgress: () => {},
      onResult: (v) => {
        if (gen !== this.generation || !Array.isArray(v.responses)) return;
        const responses = (v.responses as unknown[]).map(String);
        const complete = v.partial !== true;
        if (complete) this.generated.set(i, responses);
        else this.partial = responses;
        if (this.index !== i) return; // a prefetch: kept for when the annotator gets there
        this.responses = responses;
        this.complete = complete;
        this.post({ type: 'item', index: i, prompt: this.items[i].prompt, responses, complete });
      },
    });
    const code = await this.running;
    this.running = undefined;
    if (gen !== this.generation) return;
    this.generating = undefined;
    if (code !== 0) {
      if (this.index === i) this.post({ type: 'error', message: `generation failed: ${errors.join('; ') || `exit code ${code}`}` });
      return;
    }
    if (this.index === i) this.prefetch(i);
  }

  private dispose(): void {
    if (RankingPanel.current === this) RankingPanel.current = undefined;
    this.generation++;
    this.worker.kill();
    for (const d of this.disposables) d.dispose();
  }
}

const itemKey = (i: number) => `item:${i}`;

/** The first `max` bytes of a regular file as text (undefined for a FIFO, a device, a folder). */
function readHead(file: string, max: number): string | undefined {
  try {
    const { fd, size } = openRegular(file);
    try {
      const b = Buffer.alloc(Math.min(size, max));
      return b.subarray(0, fs.readSync(fd, b, 0, b.length, 0)).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
