/**
 * What Pretrain asks before it starts: the corpus (the bundled Moby-Dick first, then the workspace's
 * text files, then Browse…) and the model's size, each described (parameters, what it is like).
 * Sizes set in the settings (rlhf.pretrain.layers / heads / embd) are offered first and kept.
 */
import * as vscode from 'vscode';
import * as path from 'path';

export interface PretrainChoice {
  /** Flags for `rlhf pretrain` (the corpus and the size), or undefined when the user backed out. */
  flags: string[];
  describe: string;
}

/** GPT-2 layout, character vocabulary of about 85 symbols, 64 positions: per layer 12C^2 + 13C, plus embeddings and the final norm. */
export function gptParameters(layers: number, embd: number, vocab = 85, block = 64): number {
  return layers * (12 * embd * embd + 13 * embd) + (vocab + block) * embd + 2 * embd;
}

const SIZES = [
  { label: 'Tiny', layers: 4, heads: 4, embd: 128, note: 'the size of the bundled base model' },
  { label: 'Small', layers: 6, heads: 6, embd: 192, note: 'about 3 times the compute per step' },
  { label: 'Medium', layers: 8, heads: 8, embd: 256, note: 'about 8 times the compute per step; better on a GPU' },
];

export async function pickPretrain(): Promise<PretrainChoice | undefined> {
  const texts = await vscode.workspace.findFiles('**/*.{txt,text}', '**/{node_modules,.rlhf,.git}/**', 200);
  type CorpusItem = vscode.QuickPickItem & { file?: string; browse?: true };
  const corpusItems: CorpusItem[] = [
    { label: 'Moby-Dick (bundled)', description: 'Herman Melville, 1.2 MB of English prose: the corpus the bundled base model learned from', detail: 'the default of rlhf pretrain' },
    ...texts.map((u) => ({ label: vscode.workspace.asRelativePath(u), description: 'a text file in this folder', file: u.fsPath })),
    { label: 'Browse…', description: 'a .txt file, or JSONL with a "text" field per line', browse: true },
  ];
  const corpus = await vscode.window.showQuickPick(corpusItems, { placeHolder: 'Pretrain on which text? (a new model learns to continue it)', ignoreFocusOut: true });
  if (!corpus) return undefined;
  let file = corpus.file;
  if (corpus.browse) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Pretrain on this text', filters: { Text: ['txt', 'text', 'jsonl'] } });
    if (!picked?.[0]) return undefined;
    file = picked[0].fsPath;
  }
  const c = vscode.workspace.getConfiguration('rlhf.pretrain');
  const set = ['layers', 'heads', 'embd'].filter((k) => c.get(k) !== undefined && c.get(k) !== null);
  type SizeItem = vscode.QuickPickItem & { flags: string[] };
  const sizeItems: SizeItem[] = [
    ...(set.length ? [{ label: 'From your settings', description: set.map((k) => `${k} ${c.get(k)}`).join(', '), detail: 'rlhf.pretrain.* (the rest as the command line\'s defaults)', flags: [] }] : []),
    ...SIZES.map((s) => ({
      label: s.label,
      description: `${s.layers} layers, ${s.heads} heads, ${s.embd} wide · ${(gptParameters(s.layers, s.embd) / 1e6).toFixed(1)}M parameters`,
      detail: s.note,
      flags: ['--layers', String(s.layers), '--heads', String(s.heads), '--embd', String(s.embd)],
    })),
  ];
  const size = await vscode.window.showQuickPick(sizeItems, { placeHolder: 'Model size (a new GPT, character-level)', ignoreFocusOut: true });
  if (!size) return undefined;
  const corpusName = file ? path.basename(file) : 'Moby-Dick';
  return { flags: [...(file ? ['--corpus', file] : []), ...size.flags], describe: `${size.label.toLowerCase()} model on ${corpusName}` };
}
