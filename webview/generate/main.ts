/**
 * The Generate panel (browser side): the prompt and sampling settings on top, one column per model
 * below, each filling in while its model writes. It sends the prompt and settings; the host runs
 * the models and forwards their text. Ctrl/Cmd+Enter generates, Escape stops.
 */
import { ColumnState, GenerateModel, GenerateSettings, GenerateToHost, HostToGenerate, isSettings, parseHostToGenerate } from '../../src/protocol/generate';
import { connect, h } from '../shared/vscode-api';
import { toast as makeToast } from '../shared/toast';

interface Column {
  state: ColumnState;
  responses: string[];
  finished: boolean[];
  tokensPerSecond?: number;
  message?: string;
}

const vscode = connect<unknown, HostToGenerate, GenerateToHost>(parseHostToGenerate, receive);
let models: GenerateModel[] = [];
let settings: GenerateSettings | undefined;
const columns = new Map<number, Column>();
const app = document.getElementById('app')!;
const { el: live, say: toast } = makeToast();
document.body.append(live);

const FIELDS: { key: keyof GenerateSettings; label: string; step: string; min: string; max?: string; title: string }[] = [
  { key: 'temperature', label: 'temperature', step: '0.1', min: '0', max: '10', title: '0 picks the most likely token every time' },
  { key: 'topP', label: 'top-p', step: '0.05', min: '0.05', max: '1', title: 'sample among the most likely tokens that make up this much probability' },
  { key: 'topK', label: 'top-k', step: '1', min: '0', title: 'sample among the k most likely tokens (0 = all)' },
  { key: 'maxTokens', label: 'max tokens', step: '1', min: '1', max: '4096', title: 'new tokens at most' },
  { key: 'samples', label: 'samples', step: '1', min: '1', max: '8', title: 'responses per model' },
  { key: 'seed', label: 'seed', step: '1', min: '0', title: 'the same seed gives the same responses' },
];

function readSettings(): GenerateSettings | undefined {
  const out: Record<string, number> = {};
  for (const f of FIELDS) out[f.key] = Number((document.getElementById(`s-${f.key}`) as HTMLInputElement).value);
  return isSettings(out) ? out : undefined;
}

function generate(): void {
  const prompt = (document.getElementById('prompt') as HTMLTextAreaElement).value;
  const s = readSettings();
  if (!prompt.trim()) return void toast('Write a prompt first.');
  if (!s) return void toast('A setting is out of range (temperature 0-10, top-p in (0, 1], max tokens 1-4096, samples 1-8).');
  vscode.post({ type: 'generate', prompt, settings: s });
}

function renderSetup(prompt: string): void {
  app.replaceChildren(
    h('header', { class: 'settings' },
      h('label', { for: 'prompt', class: 'prompt-label' }, 'Prompt'),
      h('textarea', { id: 'prompt', rows: '3', spellcheck: 'false', 'aria-label': 'Prompt' }),
      h('div', { class: 'row' },
        ...FIELDS.map((f) => h('label', { class: 'field', title: f.title }, f.label, h('input', { id: `s-${f.key}`, type: 'number', step: f.step, min: f.min, max: f.max, value: String(settings?.[f.key] ?? '') }))),
        h('button', { id: 'go', class: 'primary', title: 'Generate (Ctrl+Enter)' }, 'Generate'),
        h('button', { id: 'stop', class: 'secondary', title: 'Stop (Escape)' }, 'Stop'),
        h('button', { id: 'rank', class: 'secondary', title: 'Rank every response shown, best first, into an RM file (2 to 9 responses)' }, 'Rank these'),
      ),
    ),
    h('main', { class: 'columns' }, ...models.map((m) => h('section', { class: 'column', 'data-model': String(m.id), 'aria-label': m.label }))),
  );
  // through the CSSOM: the panel's Content-Security-Policy refuses style attributes
  (app.querySelector('main.columns') as HTMLElement).style.gridTemplateColumns = `repeat(${Math.max(1, models.length)}, minmax(240px, 1fr))`;
  (document.getElementById('prompt') as HTMLTextAreaElement).value = prompt;
  document.getElementById('go')!.addEventListener('click', generate);
  document.getElementById('stop')!.addEventListener('click', () => vscode.post({ type: 'stop' }));
  document.getElementById('rank')!.addEventListener('click', () => vscode.post({ type: 'rankThese' }));
  for (const m of models) renderColumn(m.id);
}

const STATE_TEXT: Record<ColumnState, string> = { waiting: 'waiting', generating: 'writing…', done: 'done', failed: 'failed', stopped: 'stopped' };

function renderColumn(id: number): void {
  const el = app.querySelector(`section.column[data-model="${id}"]`);
  const model = models.find((m) => m.id === id);
  if (!el || !model) return;
  const c = columns.get(id) ?? { state: 'waiting', responses: [], finished: [] };
  const speed = c.tokensPerSecond !== undefined ? ` · ${Math.round(c.tokensPerSecond)} tokens/s` : '';
  const copyAll = h('button', { class: 'icon', title: 'Copy every response of this model', 'aria-label': `Copy every response of ${model.label}` }, h('span', { class: 'codicon codicon-copy' }));
  copyAll.addEventListener('click', () => {
    vscode.post({ type: 'copy', text: c.responses.map((r, i) => `${i + 1}. ${r}`).join('\n\n') });
    toast('Copied.');
  });
  const parts: (HTMLElement | undefined)[] = [
    h('h2', {}, h('span', { class: 'model' }, model.label), h('span', { class: `state state-${c.state}` }, STATE_TEXT[c.state] + speed), c.responses.length ? copyAll : undefined),
    c.message ? h('p', { class: 'error' }, c.message) : undefined,
    h('ol', { class: 'responses' },
      ...c.responses.map((r, i) => {
        const copy = h('button', { class: 'icon', title: 'Copy this response', 'aria-label': `Copy response ${i + 1}` }, h('span', { class: 'codicon codicon-copy' }));
        copy.addEventListener('click', () => {
          vscode.post({ type: 'copy', text: r });
          toast('Copied.');
        });
        const ended = c.finished[i] ? 'ended' : c.state === 'done' ? 'token budget reached' : '';
        return h('li', { class: 'response' }, h('pre', {}, r || (c.state === 'generating' ? '…' : '(empty)')), h('div', { class: 'meta' }, ended ? h('span', {}, ended) : undefined, copy));
      }),
    ),
  ];
  el.replaceChildren(...parts.filter((x): x is HTMLElement => x !== undefined));
}

function receive(m: HostToGenerate): void {
  if (m.type === 'setup') {
    models = m.models;
    settings = m.settings;
    renderSetup(m.prompt);
  } else if (m.type === 'column') {
    columns.set(m.id, { state: m.state, responses: m.responses, finished: m.finished, tokensPerSecond: m.tokensPerSecond, message: m.message });
    renderColumn(m.id);
  }
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    generate();
  } else if (e.key === 'Escape') vscode.post({ type: 'stop' });
});

vscode.post({ type: 'ready' });
