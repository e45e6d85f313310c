/**
 * Tokenizers: GPT-2's byte-level BPE (r50k, ranks shipped offline by `gpt-tokenizer`) and a
 * character tokenizer built from a corpus and saved with the model as tokenizer.json.
 * Both have an end-of-text token that marks where a response stops.
 */
import { readRegularFile } from '../data/durable';
import * as path from 'path';

export interface Tokenizer {
  readonly kind: 'gpt2' | 'char';
  readonly vocabSize: number;
  readonly eot: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
}

const EOT_TEXT = '<|endoftext|>';

export class Gpt2Tokenizer implements Tokenizer {
  readonly kind = 'gpt2';
  readonly vocabSize = 50257;
  readonly eot = 50256;
  private readonly bpe: {
    encode(text: string, opts?: { disallowedSpecial?: Set<string>; allowedSpecial?: Set<string> }): number[];
    decode(ids: number[]): string;
  };

  constructor() {
    // Loaded on first use: the rank table is large and char models never need it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    this.bpe = require('gpt-tokenizer/encoding/r50k_base');
  }

  /**
   * User text is plain text: "<|endoftext|>" inside it is spelled out, never the special id.
   * BPE is quadratic in the length of one pre-token (100,000 letters without a space took 8.8 s),
   * so a run of more than LONG_RUN non-space characters is encoded in pieces of LONG_RUN. Text
   * without such a run (all real prose) gets exactly the reference tokens; a 300-letter run gets
   * tokens that may differ from the reference at the piece boundary.
   */
  encode(text: string): number[] {
    const opts = { disallowedSpecial: new Set<string>() };
    if (!LONG_RUN_RE.test(text)) return this.bpe.encode(text, opts);
    const out: number[] = [];
    let last = 0;
    for (const m of text.matchAll(LONG_RUN_RE_G)) {
      if (m.index! > last) out.push(...this.bpe.encode(text.slice(last, m.index), opts));
      const run = m[0];
      for (let i = 0; i < run.length; ) {
        let j = Math.min(run.length, i + LONG_RUN);
        if (j < run.length && /[\uDC00-\uDFFF]/.test(run[j])) j--; // never split a surrogate pair
        out.push(...this.bpe.encode(run.slice(i, j), opts));
        i = j;
      }
      last = m.index! + run.length;
    }
    if (last < text.length) out.push(...this.bpe.encode(text.slice(last), opts));
    return out;
  }

  decode(ids: number[]): string {
    return this.bpe.decode(ids);
  }
}

const LONG_RUN = 256;
const LONG_RUN_RE = /\S{257,}/;
const LONG_RUN_RE_G = /\S{257,}/g;

/** id 0 is end-of-text, id 1 stands for any character the corpus did not have. */
export class CharTokenizer implements Tokenizer {
  readonly kind = 'char';
  readonly eot = 0;
  static readonly UNK = 1;
  private readonly index = new Map<string, number>();

  constructor(readonly chars: string[]) {
    chars.forEach((c, i) => this.index.set(c, i + 2));
  }

  static fromText(text: string): CharTokenizer {
    const set = new Set<string>();
    for (const ch of text) set.add(ch);
    return new CharTokenizer([...set].sort());
  }

  get vocabSize(): number {
    return this.chars.length + 2;
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const ch of text) out.push(this.index.get(ch) ?? CharTokenizer.UNK);
    return out;
  }

  decode(ids: number[]): string {
    let s = '';
    for (const id of ids) s += id === 0 ? EOT_TEXT : id === 1 ? '\uFFFD' : this.chars[id - 2] ?? '\uFFFD';
    return s;
  }

  toJson(): Record<string, unknown> {
    return { type: 'char', special: { [EOT_TEXT]: 0, '<|unk|>': 1 }, chars: this.chars };
  }
}

/** tokenizer.json for a character tokenizer; GPT-2 BPE needs no file. */
export function tokenizerFile(tok: Tokenizer): string | undefined {
  return tok instanceof CharTokenizer ? JSON.stringify(tok.toJson()) : undefined;
}

/** Whether two tokenizers map text to the same ids. */
export function sameVocabulary(a: Tokenizer, b: Tokenizer): boolean {
  return a.kind === b.kind && a.vocabSize === b.vocabSize && tokenizerFile(a) === tokenizerFile(b);
}

export function loadTokenizer(kind: 'gpt2' | 'char', dir: string): Tokenizer {
  if (kind === 'gpt2') return new Gpt2Tokenizer();
  const file = path.join(dir, 'tokenizer.json');
  let json: { type?: string; chars?: unknown };
  try {
    json = JSON.parse(readRegularFile(file, 64 << 20).toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read the character vocabulary (${(e as Error).message.split('\n')[0]})`);
  }
  if (json.type !== 'char' || !Array.isArray(json.chars) || !json.chars.every((c) => typeof c === 'string')) {
    throw new Error(`${file}: not a character tokenizer ({"type": "char", "chars": [...]})`);
  }
  return new CharTokenizer(json.chars as string[]);
}
