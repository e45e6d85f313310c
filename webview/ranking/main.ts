/**
 * The ranking panel (browser side). It shows the prompt and K responses as cards and builds a
 * ranking from the keyboard (digits in order of preference, T ties, Backspace undoes a step,
 * Enter submits, S skips, U undoes the last submission, G shows the guidelines) or by dragging
 * cards and chips. It sends only ranks, flags and a comment; the host writes the record.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import { AgreementSummary, DPO_MIN_RECORDS, EvalResults, HostToRanking, Progress, RankingFlag, RankingToHost, SessionInfo, parseHostToRanking } from '../../src/protocol/ranking';
import { connect, h } from '../shared/vscode-api';
import { toast } from '../shared/toast';
import { renderMarkdown } from '../shared/markdown';
import { Order, completed, describe, moveTo, place, rankOf, ranksOf, tie, unrank } from './order';

interface UiState {
  index: number;
  order: Order;
  history: Order[];
  flags: RankingFlag[];
  comment: string;
  /** Ranking time spent on this item before the panel was last hidden or reloaded. */
  elapsedMs: number;
  expanded: number[];
  guidelinesOpen: boolean;
  /** Which session the state belongs to: another session's ranking in progress is not this one's. */
  session?: string;
}

const fresh = (index: number, guidelinesOpen = false): UiState => ({ index, order: [], history: [], flags: [], comment: '', elapsedMs: 0, expanded: [], guidelinesOpen });

const vscode = connect<UiState, HostToRanking, RankingToHost>(parseHostToRanking, receive);
let ui: UiState = vscode.getState() ?? fresh(-1);
let session: SessionInfo | undefined;
let item: { index: number; prompt: string; responses: string[]; complete: boolean } | undefined;
let progress: Progress | undefined;
let agreement: AgreementSummary | undefined;
let results: EvalResults | undefined;
let finished = false;
/** When the current item became rankable (complete and visible); undefined while not counting. */
let since: number | undefined;
/** The UI of the last submission, restored if the annotator undoes it. */
let lastSubmitted: UiState | undefined;

const app = document.getElementById('app')!;
const { el: live, say } = toast();

function save(): void {
  vscode.setState(ui);
}

function elapsed(): number {
  return ui.elapsedMs + (since !== undefined ? performance.now() - since : 0);
}

function setTiming(): void {
  const counting = !!item?.complete && document.visibilityState === 'visible';
  if (counting && since === undefined) since = performance.now();
  if (!counting && since !== undefined) {
    ui.elapsedMs = elapsed();
    since = undefined;
    save();
  }
}
document.addEventListener('visibilitychange', setTiming);
window.addEventListener('pagehide', () => {
  ui.elapsedMs = elapsed();
  since = undefined;
  save();
});

function receive(m: HostToRanking): void {
  switch (m.type) {
    case 'session': {
      const key = JSON.stringify([m.session.title, m.session.target, m.session.model, m.session.k, m.session.evaluation ?? false]);
      if (ui.session !== undefined && ui.session !== key) {
        ui = fresh(-1, ui.guidelinesOpen);
        lastSubmitted = undefined;
      }
      ui.session = key;
      save();
      session = m.session;
      break;
    }
    case 'item':
      if (m.index !== ui.index) {
        ui = { ...(lastSubmitted && lastSubmitted.index === m.index ? { ...lastSubmitted, guidelinesOpen: ui.guidelinesOpen } : fresh(m.index, ui.guidelinesOpen)), session: ui.session };
        since = undefined;
        save();
      }
      finished = false;
      item = m;
      setTiming();
      break;
    case 'progress':
      progress = m.progress;
      break;
    case 'agreement':
      agreement = m.agreement;
      break;
    case 'results':
      results = m.results;
      break;
    case 'submitted':
      say(`Saved to ${session?.target ?? 'the RM file'}. Press U to undo.`);
      break;
    case 'undone':
      say('The last ranking was removed from the file.');
      break;
    case 'finished':
      finished = true;
      item = undefined;
      // an evaluation's results open by themselves once every item has a vote
      if (session?.evaluation && !resultsTouched && !resultsEl.open) {
        autoOpening = true;
        resultsEl.open = true;
      }
      break;
    case 'error':
      say(`Error: ${m.message}`);
      break;
  }
  render();
}

// ---- actions ------------------------------------------------------------------------------

function step(next: Order): void {
  if (next === ui.order) return;
  // a ranking of responses still being written would rank half-read text
  if (item && !item.complete && !session?.evaluation) return say('Wait until all responses are written, then rank them.');
  ui.history = [...ui.history, ui.order];
  ui.order = next;
  save();
  render();
}

function k(): number {
  return item?.responses.length || session?.k || 4;
}

function undoStep(): void {
  if (!ui.history.length) return;
  ui.order = ui.history[ui.history.length - 1];
  ui.history = ui.history.slice(0, -1);
  save();
  render();
}

function submit(): void {
  if (!item?.complete) return say('Wait until all responses are generated.');
  const notRankable = ui.flags.includes('not_rankable');
  const ranks = notRankable ? new Array<number>(k()).fill(1) : ranksOf(ui.order, k());
  if (!ranks) return say(`Rank at least ${k() - 1} responses first (press their numbers, best first).`);
  const done = completed(ui.order, k());
  const timeMs = Math.round(elapsed());
  // kept in case the annotator undoes this submission: the ranking comes back, and its time goes on
  lastSubmitted = { ...ui, elapsedMs: timeMs, ...(done && done !== ui.order ? { history: [...ui.history, ui.order], order: done } : {}) };
  vscode.post({ type: 'submit', index: item.index, ranks, flags: ui.flags, comment: ui.comment, timeMs });
}

/** New responses for this prompt: a ranking of the old ones means nothing for them, so it goes. */
function regenerate(): void {
  if (!item?.complete) return;
  ui = { ...ui, order: [], history: [] };
  save();
  vscode.post({ type: 'regenerate', index: item.index });
  render();
}

function skip(): void {
  if (item) vscode.post({ type: 'skip', index: item.index });
}

function toggleFlag(f: RankingFlag, on: boolean): void {
  ui.flags = on ? [...new Set([...ui.flags, f])] : ui.flags.filter((x) => x !== f);
  save();
  render();
}

document.addEventListener('keydown', (e) => {
  const t = e.target instanceof Element ? e.target : document.body;
  const typing = t.closest('vscode-textarea, textarea, input');
  if (typing) {
    if (e.key === 'Escape') (document.activeElement as HTMLElement | null)?.blur();
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) (e.preventDefault(), submit());
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.toLowerCase();
  const d = Number(e.key);
  if (Number.isInteger(d) && d >= 1 && d <= k() && item) step(place(ui.order, d - 1));
  else if (key === 't' || key === '=') step(tie(ui.order));
  else if (key === 'backspace') undoStep();
  else if (key === 'enter') {
    if (t.closest('vscode-button, button, vscode-checkbox')) return; // the focused control handles it
    submit();
  } else if (key === 's') skip();
  else if (key === 'u') {
    if (progress?.undoable) vscode.post({ type: 'undo' });
    else say('Nothing to undo: no submission yet in this session.');
  }
  else if (key === 'b' && session?.evaluation && item) toggleFlag('not_rankable', !ui.flags.includes('not_rankable'));
  else if (key === 'g') {
    ui.guidelinesOpen = !ui.guidelinesOpen;
    save();
    render();
  } else return;
  e.preventDefault();
});

// ---- drag and drop ------------------------------------------------------------------------

const DRAG_TYPE = 'application/x-rlhf-response';

function draggable(el: HTMLElement, i: number): void {
  el.draggable = true;
  el.addEventListener('dragstart', (e) => {
    e.dataTransfer!.setData(DRAG_TYPE, String(i));
    e.dataTransfer!.effectAllowed = 'move';
  });
}

function dropTarget(el: HTMLElement, onDrop: (i: number) => void): void {
  el.addEventListener('dragover', (e) => {
    if (!e.dataTransfer?.types.includes(DRAG_TYPE)) return;
    e.preventDefault();
    el.classList.add('drop-over');
  });
  el.addEventListener('dragleave', () => el.classList.remove('drop-over'));
  el.addEventListener('drop', (e) => {
    e.preventDefault();
    el.classList.remove('drop-over');
    const i = Number(e.dataTransfer!.getData(DRAG_TYPE));
    if (Number.isInteger(i) && i >= 0 && i < k()) onDrop(i);
  });
}

// ---- rendering ----------------------------------------------------------------------------

function button(label: string, icon: string, onClick: () => void, o: { secondary?: boolean; disabled?: boolean; id?: string; title?: string } = {}): HTMLElement {
  const b = h('vscode-button', { icon, secondary: o.secondary, disabled: o.disabled, id: o.id, title: o.title, 'aria-label': o.title ?? label }, label);
  b.addEventListener('click', () => !o.disabled && onClick());
  return b;
}

function kbd(k: string): HTMLElement {
  return h('kbd', {}, k);
}

function header(): HTMLElement {
  const p = progress;
  const pct = p && p.total ? (100 * p.ranked) / p.total : 0;
  const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Prompts ranked', 'aria-valuemin': '0', 'aria-valuemax': String(p?.total ?? 0), 'aria-valuenow': String(p?.ranked ?? 0) }, h('div', { class: 'fill' }));
  (bar.firstElementChild as HTMLElement).style.width = `${pct}%`;
  const toggle = button('Guidelines', 'book', () => {
    ui.guidelinesOpen = !ui.guidelinesOpen;
    save();
    render();
  }, { id: 'guidelines-toggle', secondary: !ui.guidelinesOpen, title: 'Show or hide the labeling guidelines (G)' });
  toggle.setAttribute('aria-pressed', String(ui.guidelinesOpen));
  return h('header', { class: 'top' },
    h('div', { class: 'heading' },
      h('h1', {}, session?.title ?? 'Ranking'),
      h('div', { class: 'meta' },
        h('span', { title: 'Model that wrote the responses' }, h('vscode-icon', { name: 'hubot' }), ` ${session?.model ?? ''}`),
        h('span', { title: 'RM file the rankings are appended to' }, h('vscode-icon', { name: 'save' }), ` ${session?.target ?? ''}`),
        h('span', { title: 'Annotator (setting rlhf.ranking.annotator)' }, h('vscode-icon', { name: 'account' }), ` ${session?.annotator ?? ''}`),
      ),
    ),
    h('div', { class: 'progress', 'aria-live': 'polite' },
      h('span', { class: 'count', id: 'progress-text' }, p ? `${p.ranked} / ${p.total} ${session?.evaluation ? 'voted' : 'ranked'} · ${p.skipped} skipped${p.perHour !== null ? ` · ${Math.round(p.perHour)} / hour` : ''}` : ''),
      bar,
    ),
    ...(p && p.records >= DPO_MIN_RECORDS && !session?.evaluation ? [trainDpoButton(p.records)] : []),
    toggle,
  );
}

/** Once the file holds enough rankings: DPO on them, in minutes, from the SFT model (the host asks which). */
function trainDpoButton(records: number): HTMLElement {
  return button('Train DPO on these rankings', 'rocket', () => vscode.post({ type: 'trainDpo' }), {
    id: 'train-dpo', secondary: true, title: `Train DPO on the ${records} rankings in ${session?.target ?? 'this file'} (Plackett-Luce over each whole ranking; no reward model needed)`,
  });
}

function orderText(): string {
  if (!ui.order.length) return 'Not ranked yet';
  const done = k() > 1 ? completed(ui.order, k()) : undefined;
  return done && done !== ui.order ? `Ranking: ${describe(done)} (${done[done.length - 1][0] + 1}, the one left, last)` : `Ranking: ${describe(ui.order)}`;
}

function rankingStrip(): HTMLElement {
  const strip = h('div', { class: 'strip', role: 'list', 'aria-label': 'Your ranking, best first' });
  const gap = (at: number) => {
    const g = h('div', { class: 'gap', 'aria-hidden': 'true' });
    dropTarget(g, (i) => step(moveTo(ui.order, i, at)));
    return g;
  };
  ui.order.forEach((group, r) => {
    strip.append(gap(r));
    const box = h('div', { class: 'rank', role: 'listitem', 'aria-label': `Rank ${r + 1}: response${group.length > 1 ? 's' : ''} ${group.map((i) => i + 1).join(' and ')}` }, h('span', { class: 'rank-no' }, `#${r + 1}`));
    for (const i of group) {
      const chip = h('span', { class: 'chip', title: `Response ${i + 1}: drag to another rank, or onto a rank to tie` }, String(i + 1));
      draggable(chip, i);
      box.append(chip);
    }
    dropTarget(box, (i) => step(moveTo(ui.order, i, r, true)));
    strip.append(box);
  });
  // one response left: it can only be last, and is shown there now (Enter submits it so)
  const done = k() > 1 ? completed(ui.order, k()) : undefined;
  if (done && done !== ui.order) {
    const last = done[done.length - 1][0];
    strip.append(gap(ui.order.length));
    const box = h('div', { class: 'rank implied', role: 'listitem', title: 'The only response left: it is ranked last when you submit (drag it elsewhere to change that)', 'aria-label': `Rank ${done.length}: response ${last + 1}, the only one left` },
      h('span', { class: 'rank-no' }, `#${done.length}`));
    const chip = h('span', { class: 'chip' }, String(last + 1));
    draggable(chip, last);
    box.append(chip);
    strip.append(box);
    return strip;
  }
  const end = h('div', { class: 'rank next', 'aria-hidden': 'true' }, ui.order.length ? 'next…' : 'Drop the best response here, or press its number');
  dropTarget(end, (i) => step(moveTo(ui.order, i, ui.order.length)));
  strip.append(end);
  return strip;
}

/**
 * The cards stay in the page while responses stream in: each is updated in place, and only the
 * parts that changed (a drag, a text selection or the focus on a card survive a streamed update).
 */
const cardsEl = h('section', { class: 'cards', role: 'list', 'aria-label': 'Responses' });
dropTarget(cardsEl, (i) => step(unrank(ui.order, i))); // a chip dragged back to the cards is unranked
const cardShown = new WeakMap<HTMLElement, { head: string; body: string }>();

function updateCard(i: number, text: string): void {
  let c = cardsEl.children[i] as HTMLElement | undefined;
  if (!c) {
    c = h('article', { class: 'card', role: 'listitem', tabindex: '0', 'data-index': String(i) }, h('div', { class: 'card-head' }), h('div', { class: 'body md', id: `response-${i + 1}` }));
    draggable(c, i);
    cardsEl.append(c);
  }
  const r = rankOf(completed(ui.order, k()) ?? ui.order, i); // the last one left shows its rank too
  const open = ui.expanded.includes(i);
  const shown = cardShown.get(c) ?? { head: '', body: '' };
  const [head, body] = [c.firstElementChild as HTMLElement, c.lastElementChild as HTMLElement];
  const headKey = `${r}|${open}`;
  if (shown.head !== headKey) {
    c.classList.toggle('ranked', !!r);
    c.setAttribute('aria-label', `Response ${i + 1}${r ? `, rank ${r}` : ', not ranked yet'}`);
    body.classList.toggle('open', open);
    const more = button(open ? 'Collapse' : 'Expand', open ? 'fold-up' : 'fold-down', () => {
      ui.expanded = open ? ui.expanded.filter((x) => x !== i) : [...ui.expanded, i];
      save();
      render();
    }, { secondary: true, title: `${open ? 'Collapse' : 'Expand'} response ${i + 1}` });
    more.classList.add('more');
    more.setAttribute('aria-controls', body.id);
    more.setAttribute('aria-expanded', String(open));
    head.replaceChildren(
      h('kbd', { title: `Press ${i + 1} to rank this response next` }, String(i + 1)),
      h('span', { class: 'card-title' }, `Response ${i + 1}`),
      ...(r ? [h('vscode-badge', { variant: 'counter', title: `rank ${r}` }, `#${r}`)] : []),
      more,
    );
  }
  const bodyKey = text ? `=${text}` : item?.complete ? 'empty' : 'waiting';
  if (shown.body !== bodyKey) body.replaceChildren(text ? renderMarkdown(text) : h('p', { class: 'empty' }, item?.complete ? '(empty response)' : '…'));
  cardShown.set(c, { head: headKey, body: bodyKey });
}

/** Refills a slot only when what it shows has changed (the key), so a streamed update leaves it alone. */
const slotKeys = new WeakMap<HTMLElement, string>();
function refill(slot: HTMLElement, key: unknown[], build: () => (Node | string)[]): void {
  const k = JSON.stringify(key);
  if (slotKeys.get(slot) === k) return;
  slotKeys.set(slot, k);
  slot.replaceChildren(...build());
}

/** The flags and the comment live across renders (re-creating them would drop the focus while typing). */
const flagBoxes = new Map<RankingFlag, HTMLElement & { checked: boolean }>();
const comment = h('vscode-textarea', { placeholder: 'Comment (optional; Ctrl+Enter submits)', 'aria-label': 'Comment', rows: '2', resize: 'vertical' }) as HTMLElement & { value: string };
comment.addEventListener('input', () => {
  ui.comment = comment.value;
  save();
});
const flagsEl = h('section', { class: 'flags', 'aria-label': 'Flags and comment' });
for (const [f, label] of [['not_rankable', 'Not rankable (all bad)'], ['unsafe', 'Unsafe']] as [RankingFlag, string][]) {
  const c = h('vscode-checkbox', { label }) as HTMLElement & { checked: boolean };
  c.addEventListener('change', () => toggleFlag(f, c.checked));
  flagBoxes.set(f, c);
  flagsEl.append(c);
}
flagsEl.append(comment);

function syncFlags(): void {
  const bad = flagBoxes.get('not_rankable')!, label = session?.evaluation ? 'Both bad' : 'Not rankable (all bad)';
  if (bad.getAttribute('label') !== label) bad.setAttribute('label', label);
  for (const [f, c] of flagBoxes) if (c.checked !== ui.flags.includes(f)) c.checked = ui.flags.includes(f);
  if (comment.value !== ui.comment) comment.value = ui.comment;
}

function actions(): HTMLElement {
  const ready = !!item?.complete;
  const canSubmit = ready && (ui.flags.includes('not_rankable') || ranksOf(ui.order, k()) !== undefined);
  return h('div', { class: 'actions' },
    button('Submit', 'check', submit, { disabled: !canSubmit, id: 'submit', title: 'Submit the ranking (Enter)' }),
    button('Tie', 'link', () => step(tie(ui.order)), { id: 'tie', secondary: true, disabled: ui.order.length < 2, title: 'Tie the last ranked response with the rank above (T)' }),
    button('Skip', 'debug-step-over', skip, { id: 'skip', secondary: true, disabled: !item, title: 'Skip this prompt (S)' }),
    button('Undo step', 'discard', undoStep, { id: 'undo-step', secondary: true, disabled: !ui.history.length, title: 'Undo the last ranking step (Backspace)' }),
    session?.evaluation
      ? button('Undo last vote', 'history', () => vscode.post({ type: 'undo' }), { id: 'undo-submission', secondary: true, disabled: !progress?.undoable, title: 'Remove your last vote from the file (U)' })
      : button('Undo last submission', 'history', () => vscode.post({ type: 'undo' }), { id: 'undo-submission', secondary: true, disabled: !progress?.undoable, title: 'Remove the last submitted ranking from the file (U)' }),
    ...(session?.evaluation ? [] : [button('Regenerate', 'refresh', regenerate, { id: 'regenerate', secondary: true, disabled: !ready, title: 'Sample new responses for this prompt' })]),
  );
}

/** The agreement summary; the <details> element stays, so it stays open across renders. */
const agreementEl = h('details', { class: 'agreement' });

function agreementView(): void {
  const a = agreement;
  agreementEl.hidden = !a || !!session?.evaluation;
  if (!a) return;
  const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
  const num = (x: number | null) => (x === null ? '–' : x.toFixed(3));
  agreementEl.replaceChildren(
    h('summary', {}, `Agreement: ${a.items} item(s) ranked by 2+ annotators`),
    a.items
      ? h('p', {}, `Pairwise agreement ${pct(a.pairwise)} (InstructGPT's labelers: about 73%) · Krippendorff's α (ordinal) ${num(a.alpha)} over ${a.annotators} annotators`)
      : h('p', {}, 'When several annotators rank the same prompt and responses (share the RM file), their agreement shows here; `rlhf agreement FILE` prints the same.'),
  );
  if (a.tau.length) {
    const table = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Annotators'), h('th', {}, "Kendall's τ-b"), h('th', {}, 'Items'))));
    const body = h('tbody');
    for (const t of a.tau) body.append(h('tr', {}, h('td', {}, `${t.a} · ${t.b}`), h('td', {}, t.tau_b.toFixed(3)), h('td', {}, String(t.items))));
    table.append(body);
    agreementEl.append(table);
  }
}

/** A blind comparison's results, closed until the annotator opens them (or every item has a vote): seeing them would sway the next votes. */
const resultsEl = h('details', { class: 'results', id: 'results' });
let resultsTouched = false, autoOpening = false;
resultsEl.addEventListener('toggle', () => {
  if (autoOpening) autoOpening = false;
  else resultsTouched = true;
});

function resultsView(): void {
  const r = results;
  resultsEl.hidden = !session?.evaluation || !r;
  if (resultsEl.hidden || !r) return;
  const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
  const key = JSON.stringify([r, finished]);
  if (resultsEl.dataset.key === key) return;
  resultsEl.dataset.key = key;
  const table = h('table', { class: 'pairs' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col' }, 'against'), h('th', { scope: 'col' }, 'wins'), h('th', { scope: 'col' }, '95% interval'), h('th', { scope: 'col' }, 'won · lost · tied · both bad'))),
    h('tbody', {}, ...r.pairs.flatMap((p) => [
      h('tr', {}, h('td', {}, p.a), h('td', {}, p.b), h('td', { class: 'num' }, pct(p.win_rate)), h('td', { class: 'num' }, `${pct(p.low)} – ${pct(p.high)}`), h('td', { class: 'num' }, `${p.wins_a} · ${p.wins_b} · ${p.ties} · ${p.both_bad}`)),
    ])),
  );
  const ratings = r.ratings?.length
    ? h('table', { class: 'ratings' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col' }, 'Bradley–Terry rating'), h('th', { scope: 'col' }, '95% bootstrap interval'), h('th', { scope: 'col' }, 'votes'))),
        h('tbody', {}, ...r.ratings.map((x) => h('tr', {}, h('td', {}, x.model), h('td', { class: 'num' }, x.rating.toFixed(0)), h('td', { class: 'num' }, `${x.low.toFixed(0)} – ${x.high.toFixed(0)}`), h('td', { class: 'num' }, String(x.votes))))))
    : undefined;
  const judges = r.judges?.length
    ? h('table', { class: 'judges' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Judge'), h('th', { scope: 'col' }, 'verdict'), h('th', { scope: 'col' }, 'agrees with the people'))),
        h('tbody', {}, ...r.judges.map((j) => h('tr', {}, h('td', {}, j.annotator), h('td', {}, j.pairs.map((p) => `${p.a} wins ${pct(p.win_rate)} against ${p.b}`).join('; ')), h('td', { class: 'num' }, `${pct(j.agreement)} of ${j.items} item(s)`)))))
    : undefined;
  resultsEl.replaceChildren(
    h('summary', {}, finished ? `Results: ${r.votes} vote(s)` : `Results: ${r.votes} vote(s) — hidden while you vote, so they cannot sway you; open to reveal the models`),
    table,
    ...(ratings ? [ratings] : []),
    ...(judges ? [judges] : []),
    h('p', { class: 'note' }, `${judges ? 'The tables above the judges\' are the people\'s votes. ' : ''}A win rate counts ${r.ties === 'half' ? 'a tie or "both bad" as half a win to each side' : 'decided votes only'}; the interval is Wilson's. \`rlhf evaluate ${session?.target ?? 'FILE'}\` prints the same.`),
  );
}

function keysHelp(): HTMLElement {
  if (session?.evaluation)
    return h('p', { class: 'keys' },
      kbd('1'), ' or ', kbd('2'), ' the better response, then ', kbd('Enter'), ' · ', kbd('1'), kbd('2'), kbd('T'), ' a tie · ', kbd('B'), ' both bad · ', kbd('Backspace'), ' undo a step · ',
      kbd('S'), ' skip · ', kbd('U'), ' undo the last vote · ', kbd('G'), ' guidelines');
  return h('p', { class: 'keys' },
    kbd(`1–${k()}`), ' rank in order of preference (first = best) · ', kbd('T'), ' tie with the rank above · ', kbd('Backspace'), ' undo a step · ',
    kbd('Enter'), ' submit · ', kbd('S'), ' skip · ', kbd('U'), ' undo the last submission · ', kbd('G'), ' guidelines');
}

// The page: a skeleton built once; render() refills the parts that change and leaves the flags,
// the comment, the agreement and the guidelines (their focus, open state, scroll) in place.
let headerEl: HTMLElement = h('header');
const promptSlot = h('div'), statusSlot = h('div'), rankingSlot = h('div'), cardsSlot = h('div'), actionsSlot = h('div');
const main = h('main', { class: 'work' }, promptSlot, statusSlot, rankingSlot, cardsSlot, flagsEl, actionsSlot, resultsEl, agreementEl);
const aside = h('aside', { class: 'guidelines md', 'aria-label': 'Guidelines' });
let asideFor: string | undefined | null = null;
app.append(headerEl, h('div', { class: 'layout' }, main, aside), live);

function render(): void {
  const active = document.activeElement as HTMLElement | null;
  const focusedCard = active?.closest('[data-index]')?.getAttribute('data-index');
  const focusedId = active?.id;
  const nextHeader = header();
  headerEl.replaceWith(nextHeader);
  headerEl = nextHeader;
  const showing = !finished && !!item;
  for (const el of [rankingSlot, cardsSlot, flagsEl, actionsSlot]) el.hidden = !showing;
  if (finished) {
    if (session?.evaluation) {
      refill(promptSlot, ['finished-eval', session?.target], () => [h('section', { class: 'done' }, h('h2', {}, 'Every item has a vote (or was skipped).'),
        h('p', {}, `The votes are in ${session?.target ?? 'the evaluation file'}: pairwise records a reward model or DPO can train on. The results are below.`))]);
    } else refill(promptSlot, ['finished', session?.target, progress?.records], () => [h('section', { class: 'done' }, h('h2', {}, 'All prompts are ranked or skipped.'),
      h('p', {}, `Rankings are in ${session?.target ?? 'the RM file'}. Train a reward model on it with "RLHF: Train Reward Model", or tune the SFT model on them directly with DPO.`),
      ...(progress && progress.records > 0 ? [button('Train DPO on these rankings', 'rocket', () => vscode.post({ type: 'trainDpo' }), { id: 'train-dpo-done' })] : []))]);
    refill(statusSlot, [], () => []);
  } else if (item) {
    const it = item;
    const total = progress?.total ?? 0;
    refill(promptSlot, [it.index, it.prompt, total, session?.k, session?.generation, session?.evaluation], () => [
      h('section', { class: 'prompt', 'aria-label': 'Prompt' },
        h('h2', {}, `${session?.evaluation ? 'Item' : 'Prompt'} ${it.index + 1}${total ? ` of ${total}` : ''}`),
        h('div', { class: 'md' }, renderMarkdown(it.prompt)),
        h('p', { class: 'gen' }, session?.evaluation ? `Which response is better? ${session.generation}` : `${session?.k ?? k()} responses · ${session?.generation ?? ''}`),
      ),
    ]);
    refill(statusSlot, [it.complete, session?.k], () => (it.complete ? [] : [h('p', { class: 'generating', role: 'status' }, h('vscode-progress-ring', { 'aria-label': 'Generating' }), ` Generating ${session?.k ?? ''} responses…`)]));
    refill(rankingSlot, [ui.order, k()], () => [
      h('section', { class: 'ranking', 'aria-label': 'Ranking' }, rankingStrip(), h('p', { class: 'order', id: 'order-text', 'aria-live': 'polite' }, orderText())),
      keysHelp(),
    ]);
    const n = Math.max(it.responses.length, it.complete ? 0 : session?.k ?? 0);
    for (let i = 0; i < n; i++) updateCard(i, it.responses[i] ?? '');
    while (cardsEl.children.length > n) cardsEl.lastElementChild!.remove();
    if (cardsEl.parentElement !== cardsSlot) cardsSlot.replaceChildren(cardsEl);
    syncFlags();
    const canSubmit = it.complete && (ui.flags.includes('not_rankable') || ranksOf(ui.order, k()) !== undefined);
    refill(actionsSlot, [it.index, it.complete, canSubmit, ui.order.length, ui.history.length, progress?.undoable], () => [actions()]);
  } else {
    refill(promptSlot, [], () => []);
    refill(statusSlot, ['loading'], () => [h('p', { class: 'generating', role: 'status' }, h('vscode-progress-ring', { 'aria-label': 'Loading' }), ' Loading the session…')]);
  }
  agreementView();
  resultsView();
  aside.hidden = !ui.guidelinesOpen;
  if (ui.guidelinesOpen && asideFor !== session?.guidelines) {
    asideFor = session?.guidelines;
    aside.replaceChildren(h('h2', {}, session?.guidelinesName ?? 'Guidelines'));
    aside.append(session?.guidelines !== undefined ? renderMarkdown(session.guidelines, { document: true }) : h('p', {}, 'No guidelines file. Set rlhf.ranking.guidelines to a Markdown file in the workspace (default guidelines.md).'));
  }
  // long responses start collapsed; offer Expand only where there is more to see
  requestAnimationFrame(() => {
    for (const b of app.querySelectorAll<HTMLElement>('.card .body:not(.open)')) {
      const more = b.parentElement!.querySelector<HTMLElement>('.more');
      if (more) more.hidden = b.scrollHeight <= b.clientHeight + 2;
    }
  });
  // focus stays where it was: a card, or a button (buttons have ids)
  if (focusedCard) app.querySelector<HTMLElement>(`.card[data-index="${focusedCard}"]`)?.focus();
  else if (focusedId && !document.activeElement?.id && document.getElementById(focusedId)) document.getElementById(focusedId)!.focus();
}

render();
vscode.post({ type: 'ready' });
