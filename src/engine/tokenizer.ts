/**
 * Tokenizers: GPT-2's byte-level BPE (r50k, ranks shipped offline by `gpt-tokenizer`), a
 * character tokenizer built from a corpus and saved with the model as tokenizer.json, and a
 * model folder's own Hugging Face tokenizer.json (byte-level BPE as in Llama 3, Qwen2 and SmolLM;
 * BPE with byte fallback as in Llama 2 and TinyLlama), run by Hugging Face's `@huggingface/tokenizers`.
 * Each has an end-of-text token that marks where a response stops.
 */
import { readRegularFile } from '../data/durable';
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { ChatTemplate } from './chat';

export interface Tokenizer {
  readonly kind: 'gpt2' | 'char' | 'hf';
  readonly vocabSize: number;
  readonly eot: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** The model's chat template, when its tokenizer_config.json has one. */
  readonly chat?: ChatTemplate;
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

/** A token named in tokenizer_config.json: a string or an AddedToken object {content}. */
const tokenText = (t: unknown): string | undefined =>
  typeof t === 'string' ? t : t && typeof t === 'object' && typeof (t as { content?: unknown }).content === 'string' ? (t as { content: string }).content : undefined;

/**
 * A Hugging Face tokenizer.json with its tokenizer_config.json (special tokens, chat template).
 * encode() adds no special tokens: a chat template writes its own (bos_token, <|im_start|>, ...).
 */
export class HfTokenizer implements Tokenizer {
  readonly kind = 'hf';
  readonly vocabSize: number;
  readonly eot: number;
  readonly bos?: number;
  readonly chat?: ChatTemplate;
  private readonly impl: HfTokenizerImpl;

  /** `eosId`: the model's eos_token_id, used when tokenizer_config.json names no eos_token. */
  constructor(readonly json: string, readonly configJson: string, eosId?: number | null) {
    const tj = JSON.parse(json) as { model?: { vocab?: unknown }; added_tokens?: { id: number }[] };
    const cfg = configJson ? (JSON.parse(configJson) as Record<string, unknown>) : {};
    this.impl = new HfTokenizerImpl(tj, cfg);
    const vocab = tj.model?.vocab;
    let n = 0;
    if (Array.isArray(vocab)) n = vocab.length;
    else if (vocab && typeof vocab === 'object') for (const id of Object.values(vocab as Record<string, number>)) n = Math.max(n, id + 1);
    for (const t of tj.added_tokens ?? []) n = Math.max(n, t.id + 1);
    this.vocabSize = n;
    const id = (t: unknown) => {
      const text = tokenText(t);
      return text === undefined ? undefined : this.impl.token_to_id(text);
    };
    const eot = id(cfg.eos_token) ?? (eosId ?? undefined);
    if (eot === undefined || eot === null) throw new Error('the tokenizer names no end-of-text token (eos_token in tokenizer_config.json or eos_token_id in config.json)');
    this.eot = eot;
    this.bos = id(cfg.bos_token);
    let template: string | undefined;
    if (typeof cfg.chat_template === 'string') template = cfg.chat_template;
    else if (Array.isArray(cfg.chat_template)) {
      // the list form [{name, template}]: the "default" one
      template = (cfg.chat_template as { name?: string; template?: string }[]).find((t) => t.name === 'default')?.template;
    }
    // the special tokens' texts, which templates read as variables (bos_token, eos_token, ...)
    const special = { bos_token: tokenText(cfg.bos_token) ?? '', eos_token: tokenText(cfg.eos_token) ?? '', pad_token: tokenText(cfg.pad_token) ?? '', unk_token: tokenText(cfg.unk_token) ?? '' };
    if (template) this.chat = new ChatTemplate(template, special);
  }

  encode(text: string): number[] {
    return this.impl.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    return this.impl.decode(ids, { skip_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.impl.token_to_id(token);
  }
}

/** tokenizer.json for a character tokenizer; GPT-2 BPE needs no file. */
export function tokenizerFile(tok: Tokenizer): string | undefined {
  return tok instanceof CharTokenizer ? JSON.stringify(tok.toJson()) : tok instanceof HfTokenizer ? tok.json : undefined;
}

/** The tokenizer's files in a model folder. */
export function tokenizerFiles(tok: Tokenizer): Record<string, string> {
  if (tok instanceof HfTokenizer) return { 'tokenizer.json': tok.json, ...(tok.configJson ? { 'tokenizer_config.json': tok.configJson } : {}) };
  const f = tokenizerFile(tok);
  return f ? { 'tokenizer.json': f } : {};
}

/** Whether two tokenizers map text to the same ids. */
export function sameVocabulary(a: Tokenizer, b: Tokenizer): boolean {
  return a.kind === b.kind && a.vocabSize === b.vocabSize && tokenizerFile(a) === tokenizerFile(b);
}

export function loadTokenizer(kind: 'gpt2' | 'char' | 'hf', dir: string, eosId?: number | null): Tokenizer {
  if (kind === 'gpt2') return new Gpt2Tokenizer();
  if (kind === 'hf') {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) throw new Error(`${dir} has no tokenizer.json (the model's tokenizer)`);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const json = readRegularFile(file, 256 << 20).toString('utf8');
    const cfg = fs.existsSync(cfgFile) ? readRegularFile(cfgFile, 64 << 20).toString('utf8') : '';
    try {
      return new HfTokenizer(json, cfg, eosId);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
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
