/**
 * The dashboard's Samples view: what an RL run generated at a step, and how it was scored.
 * A table for one step (the latest, following the run live, or a chosen one), sortable by any
 * column, filtered by text; and one prompt's responses across every step it was sampled at, side
 * by side, so over-optimisation ("A fun, the price fun.") shows as it starts. Rows arrive from the
 * host, which tails each run's samples.jsonl.
 */
import { SAMPLE_NUMBERS, SampleNumber, SampleRow } from '../../src/data/samples';
import { h } from '../shared/vscode-api';
import { SortKey, compareRows } from './sample-order';

export interface SamplesState {
  run?: string;
  /** 'latest' follows the run: each new step replaces the table. */
  step: 'latest' | number;
  sort: { key: SortKey; dir: 1 | -1 };
  filter: string;
  /** A prompt shown across steps (or none). */
  prompt?: string;
}
export const defaultSamplesState = (): SamplesState => ({ step: 'latest', sort: { key: 'score', dir: -1 }, filter: '' });

/** At most this many rows are kept per run (the oldest steps go first) and drawn per table. */
const KEEP_ROWS = 50_000;
const DRAW_ROWS = 500;

const LABELS: Record<SortKey, string> = {
  step: 'Step', prompt: 'Prompt', response: 'Response', score: 'Score', gold: 'Gold', kl: 'KL', advantage: 'Advantage', implicit_reward: 'Implicit reward',
};
const TITLES: Partial<Record<SortKey, string>> = {
  score: 'Reward: the reward model\'s normalised score, or the reward function\'s value',
  gold: 'The demo\'s gold scorer (the labeler\'s AFINN score, never seen by the reward model)',
  kl: 'KL to the reference, in nats, summed over the response\'s tokens',
  advantage: 'The advantage the update used',
  implicit_reward: 'DPO\'s implicit reward: beta times the log-ratio to the reference',
};

const fmt = (v: number | null | undefined) => (v === undefined || v === null ? '' : Number.isInteger(v) ? String(v) : v.toFixed(3));

export class SamplesView {
  readonly el = h('div', { class: 'samples' });
  private readonly rows = new Map<string, SampleRow[]>();

  constructor(private readonly state: SamplesState, private readonly changed: () => void) {}

  /** Runs with at least one sample, in arrival order. */
  runs(): string[] {
    return [...this.rows].filter(([, r]) => r.length).map(([id]) => id);
  }

  count(): number {
    let n = 0;
    for (const r of this.rows.values()) n += r.length;
    return n;
  }

  add(run: string, reset: boolean, rows: SampleRow[]): void {
    let all = this.rows.get(run);
    if (!all || reset) this.rows.set(run, (all = []));
    for (const r of rows) all.push(r);
    if (all.length > KEEP_ROWS) all.splice(0, all.length - KEEP_ROWS);
  }

  private current(): string | undefined {
    const runs = this.runs();
    return this.state.run && runs.includes(this.state.run) ? this.state.run : runs.at(-1);
  }

  /** New rows: the step list and the table follow; the controls (and the filter's focus) stay. */
  update(): void {
    const run = this.current();
    const stepSel = this.el.querySelector<HTMLSelectElement>('#samples-step');
    if (!run || !stepSel || this.el.dataset.run !== run) return this.render();
    const { steps, latest, step } = this.steps(run);
    this.fillSteps(stepSel, steps, latest);
    this.renderBody(run, step);
  }

  private steps(run: string) {
    const steps = [...new Set(this.rows.get(run)!.map((r) => r.step))].sort((a, b) => a - b);
    const latest = steps.at(-1)!;
    return { steps, latest, step: this.state.step === 'latest' || !steps.includes(this.state.step) ? latest : this.state.step };
  }

  private fillSteps(sel: HTMLSelectElement, steps: number[], latest: number): void {
    sel.replaceChildren(h('option', { value: 'latest', selected: this.state.step === 'latest' }, `Latest (step ${latest}, live)`));
    for (const s of [...steps].reverse()) sel.append(h('option', { value: String(s), selected: this.state.step === s }, `Step ${s}`));
  }

  render(focus?: string): void {
    const run = this.current();
    this.el.dataset.run = run ?? '';
    if (!run) {
      this.el.replaceChildren(h('p', { class: 'empty' }, 'No samples yet. PPO, GRPO and RLOO runs write the responses they generate, with their scores, at every step; DPO writes held-out responses with their implicit rewards at each evaluation (samples.jsonl in the run folder).'));
      return;
    }
    const { steps, latest, step } = this.steps(run);
    const controls = h('div', { class: 'samples-controls' });
    if (this.runs().length > 1) {
      const sel = h('select', { 'aria-label': 'Run' }) as HTMLSelectElement;
      for (const id of this.runs()) sel.append(h('option', { value: id, selected: id === run }, id));
      sel.addEventListener('change', () => this.set({ run: sel.value, prompt: undefined }));
      controls.append(h('label', {}, 'Run ', sel));
    }
    const stepSel = h('select', { 'aria-label': 'Step', id: 'samples-step' }) as HTMLSelectElement;
    this.fillSteps(stepSel, steps, latest);
    stepSel.addEventListener('change', () => this.set({ step: stepSel.value === 'latest' ? 'latest' : Number(stepSel.value) }));
    const filter = h('input', { type: 'search', placeholder: 'Filter prompts and responses', 'aria-label': 'Filter prompts and responses', value: this.state.filter, id: 'samples-filter' }) as HTMLInputElement;
    filter.addEventListener('input', () => {
      this.state.filter = filter.value;
      this.changed();
      this.renderBody(run, step);
    });
    controls.append(h('label', { for: 'samples-step' }, 'Step '), stepSel, filter);
    this.el.replaceChildren(controls, h('div', { class: 'samples-body' }));
    this.renderBody(run, step);
    if (focus) this.el.querySelector<HTMLElement>(focus)?.focus();
  }

  /** A change made by the person; `focus` puts the keyboard back where it was after the redraw. */
  private set(patch: Partial<SamplesState>, focus?: string): void {
    Object.assign(this.state, patch);
    this.changed();
    this.render(focus);
  }

  private matches(r: SampleRow): boolean {
    const f = this.state.filter.trim().toLowerCase();
    return !f || r.prompt.toLowerCase().includes(f) || r.response.toLowerCase().includes(f);
  }

  private renderBody(run: string, step: number): void {
    const body = this.el.querySelector('.samples-body')!;
    const all = this.rows.get(run)!;
    if (this.state.prompt !== undefined) return body.replaceChildren(this.acrossSteps(all, this.state.prompt));
    const atStep = all.filter((r) => r.step === step);
    const shown = atStep.filter((r) => this.matches(r));
    const { key, dir } = this.state.sort;
    shown.sort((a, b) => compareRows(a, b, key, dir));
    const numbers = SAMPLE_NUMBERS.filter((k) => atStep.some((r) => r[k] !== undefined && r[k] !== null));
    const cols: SortKey[] = ['prompt', 'response', ...numbers];
    const head = h('tr', {}, ...cols.map((c) => {
      const sorted = c === key;
      const b = h('button', { class: 'sort', title: TITLES[c] ? `${TITLES[c]}. Click to sort.` : 'Click to sort' }, LABELS[c], sorted ? (dir === 1 ? ' ▲' : ' ▼') : '');
      b.addEventListener('click', () => this.set({ sort: { key: c, dir: sorted ? (-dir as 1 | -1) : c === 'prompt' || c === 'response' ? 1 : -1 } }, `th.col-${c} button`));
      return h('th', { scope: 'col', class: `col-${c}`, 'aria-sort': sorted ? (dir === 1 ? 'ascending' : 'descending') : 'none' }, b);
    }));
    const tbody = h('tbody');
    for (const r of shown.slice(0, DRAW_ROWS)) {
      const promptBtn = h('button', { class: 'prompt-link', title: 'Show this prompt\'s responses across steps' }, r.prompt);
      promptBtn.addEventListener('click', () => this.set({ prompt: r.prompt }, 'button.back'));
      tbody.append(h('tr', {}, h('td', { class: 'col-prompt' }, promptBtn), h('td', { class: 'col-response' }, r.response),
        ...numbers.map((k) => h('td', { class: `num col-${k}` }, fmt(r[k])))));
    }
    const mean = (k: SampleNumber) => {
      const v = atStep.map((r) => r[k]).filter((x): x is number => typeof x === 'number');
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
    };
    const summary = [`${atStep.length} samples at step ${step}`];
    if (this.state.filter.trim()) summary.push(`${shown.length} match the filter`);
    if (shown.length > DRAW_ROWS) summary.push(`showing the first ${DRAW_ROWS}`);
    for (const k of numbers) summary.push(`mean ${LABELS[k].toLowerCase()} ${fmt(mean(k))}`);
    body.replaceChildren(
      h('p', { class: 'samples-summary', 'aria-live': 'polite' }, summary.join(' · ')),
      h('table', { class: 'samples-table', 'aria-label': `Samples at step ${step}` }, h('thead', {}, head), tbody),
    );
  }

  /** One column per step the prompt was sampled at, its responses sorted by score. */
  private acrossSteps(all: SampleRow[], prompt: string): HTMLElement {
    const byStep = new Map<number, SampleRow[]>();
    for (const r of all) if (r.prompt === prompt && this.matches(r)) (byStep.get(r.step) ?? byStep.set(r.step, []).get(r.step)!).push(r);
    const back = h('button', { class: 'back' }, '← All samples');
    back.addEventListener('click', () => this.set({ prompt: undefined }, '#samples-filter'));
    const columns = [...byStep].sort(([a], [b]) => a - b).map(([step, rows]) => {
      rows.sort((a, b) => compareRows(a, b, 'score', -1));
      return h('section', { class: 'step-column', 'aria-label': `Step ${step}` },
        h('h3', {}, `Step ${step}`),
        ...rows.map((r) => h('div', { class: 'response-card' },
          h('div', { class: 'response' }, r.response),
          h('div', { class: 'scores' }, SAMPLE_NUMBERS.filter((k) => r[k] !== undefined && r[k] !== null).map((k) => `${LABELS[k].toLowerCase()} ${fmt(r[k])}`).join(' · ')),
        )),
      );
    });
    return h('div', { class: 'across' },
      h('div', { class: 'across-head' }, back, h('h2', {}, `“${prompt}” across ${byStep.size} step${byStep.size === 1 ? '' : 's'}`)),
      columns.length ? h('div', { class: 'step-columns' }, ...columns) : h('p', { class: 'empty' }, 'No response to this prompt matches the filter.'),
    );
  }
}
