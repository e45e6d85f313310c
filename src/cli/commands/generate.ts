import { OptSpecs, ParsedOpts, UsageError } from '../args';
import { Reporter } from '../progress';
import { COMMON, startBackend } from './shared';
import { modelFromLoaded, readModelDir } from '../../engine/checkpoint';

import { DEFAULT_SAMPLE, generate, tokenLogprobs } from '../../engine/generate';
import { promptTemplate } from '../../data/sft';
import { ChatMessage, contextText } from '../../engine/chat';
import { Tokenizer } from '../../engine/tokenizer';

export const GENERATE_OPTS: OptSpecs = {
  model: { type: 'string', help: 'model directory' },
  prompt: { type: 'string', help: 'the prompt' },
  raw: { type: 'boolean', help: 'use the prompt as it is (default: the model\'s chat template, or "Human: ...\\n\\nAssistant: " when it has none)' },
  messages: { type: 'string', help: 'the conversation so far as JSON [{"role","content"}], read through the model\'s chat template when it has one (else --prompt is used)' },
  'num-samples': { type: 'int', help: 'responses to sample', default: 1 },
  'max-tokens': { type: 'int', help: 'new tokens at most', default: DEFAULT_SAMPLE.maxNewTokens },
  temperature: { type: 'number', help: 'sampling temperature (0 = greedy)', default: DEFAULT_SAMPLE.temperature },
  'top-k': { type: 'int', help: 'sample among the k most likely tokens (0 = all)', default: 0 },
  'top-p': { type: 'number', help: 'nucleus sampling probability mass', default: 1 },
  seed: { type: 'int', help: 'random seed', default: 1 },
  'no-cache': { type: 'boolean', help: 'recompute the whole context for every token (slow; for checks)' },
  stream: { type: 'boolean', help: 'report the responses so far while they are generated (JSON lines {"type":"partial"} with --json)' },
  ...COMMON,
};

export const LOGPROBS_OPTS: OptSpecs = {
  model: { type: 'string', help: 'model directory' },
  text: { type: 'string', help: 'the text to score' },
  ids: { type: 'string', help: 'token ids to score instead of text, comma-separated (no tokenizer needed)' },
  ...COMMON,
};

function checkSampling(o: ParsedOpts) {
  if ((o['num-samples'] as number) < 1) throw new UsageError('--num-samples must be at least 1');
  if ((o['max-tokens'] as number) < 1) throw new UsageError('--max-tokens must be at least 1');
  if ((o.temperature as number) < 0) throw new UsageError('--temperature must be 0 or more');
  if ((o['top-k'] as number) < 0) throw new UsageError('--top-k must be 0 or more');
  const p = o['top-p'] as number;
  if (!(p > 0 && p <= 1)) throw new UsageError('--top-p must be in (0, 1]');
}

/** The prompt as the model reads it: --raw as it is; --messages or --prompt through the chat template or "Human: ..." */
function promptText(tok: Tokenizer, o: ParsedOpts): string {
  let messages: ChatMessage[] | undefined;
  if (o.messages !== undefined) {
    try {
      messages = JSON.parse(o.messages as string);
    } catch {
      throw new UsageError('--messages must be JSON: [{"role": "user", "content": "..."}]');
    }
    if (!Array.isArray(messages) || !messages.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new UsageError('--messages must be a JSON array of {"role", "content"} strings');
    }
  }
  if (tok.chat && messages) return tok.chat.render(messages, true);
  if (o.raw) return o.prompt as string;
  return contextText(tok, { context: promptTemplate(o.prompt as string), messages: [{ role: 'user', content: o.prompt as string }] });
}

export async function generateCommand(o: ParsedOpts, r: Reporter) {
  if (!o.model) throw new UsageError('rlhf generate needs --model DIR (see rlhf generate --help)');
  if (o.prompt === undefined) throw new UsageError('rlhf generate needs --prompt TEXT (see rlhf generate --help)');
  checkSampling(o);
  const loaded = readModelDir(o.model as string); // a bad directory fails before the backend starts
  const { tokenizer } = loaded;
  const text = promptText(tokenizer, o); // so does a template that cannot render
  await startBackend(o, r);
  const model = modelFromLoaded(loaded, false); // an adapter folder: its base with the adapter
  try {
    const g = await generate(model, tokenizer.encode(text), o['num-samples'] as number, {
      maxNewTokens: o['max-tokens'] as number,
      temperature: o.temperature as number,
      topK: o['top-k'] as number,
      topP: o['top-p'] as number,
      seed: o.seed as number,
      eot: tokenizer.eot,
      useCache: !o['no-cache'],
      onStep: o.stream ? streamer(r, o, (t) => tokenizer.decode(t)) : undefined,
    });
    const responses = g.tokens.map((t) => tokenizer.decode(t));
    const n = g.tokens.reduce((a, t) => a + t.length, 0);
    r.result?.({ model: o.model, prompt: o.prompt, responses, finished: g.finished, tokens_per_second: n / g.seconds });
    if (o.json) {
      process.stdout.write(JSON.stringify({ type: 'result', prompt: o.prompt, responses, tokens: g.tokens, finished: g.finished, tokens_per_second: n / g.seconds }) + '\n');
    } else {
      responses.forEach((s, i) => process.stdout.write(`${responses.length > 1 ? `--- sample ${i + 1}\n` : ''}${s}\n`));
      r.log(`${n} tokens in ${g.seconds.toFixed(2)} s (${Math.round(n / g.seconds)} tokens/s)`);
    }
    return { responses };
  } finally {
    model.dispose();
  }
}

/** Reports the responses so far, at most every 100 ms (the final result follows as usual). */
function streamer(r: Reporter, o: ParsedOpts, decode: (t: number[]) => string) {
  let last = 0;
  return (tokens: number[][], finished: boolean[]) => {
    const now = performance.now();
    if (now - last < 100) return;
    last = now;
    const responses = tokens.map(decode);
    r.result?.({ partial: true, model: o.model, responses, finished: [...finished] });
    if (o.json) process.stdout.write(JSON.stringify({ type: 'partial', responses, finished }) + '\n');
  };
}

/** "3,17,256" -> [3, 17, 256], each a whole number below the vocabulary size. */
function parseIds(text: string, vocab: number): number[] {
  const parts = text.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const ids = parts.map(Number);
  const bad = parts.findIndex((x, i) => !/^\d+$/.test(x) || ids[i] >= vocab);
  if (bad >= 0) throw new UsageError(`--ids: "${parts[bad]}" is not a token id of this model (whole numbers from 0 to ${vocab - 1})`);
  if (!ids.length) throw new UsageError('--ids: no token ids given');
  return ids;
}

export async function logprobsCommand(o: ParsedOpts, r: Reporter) {
  if (!o.model) throw new UsageError('rlhf logprobs needs --model DIR');
  if ((o.text === undefined) === (o.ids === undefined)) throw new UsageError('rlhf logprobs needs --text TEXT or --ids 3,17,256 (one of them)');
  const loaded = readModelDir(o.model as string);
  const { tokenizer } = loaded;
  const tokens = o.ids !== undefined ? parseIds(o.ids as string, loaded.config.vocab_size) : tokenizer.encode(o.text as string);
  await startBackend(o, { ...r, log: () => {} });
  const model = modelFromLoaded(loaded, false); // an adapter folder: its base with the adapter
  try {
    const logprobs = await tokenLogprobs(model, tokens);
    const bad = logprobs.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new Error(`the log-probability of token ${bad + 1} is ${logprobs[bad]}: the model's output is not finite`);
    if (o.json) process.stdout.write(JSON.stringify({ tokens, logprobs }) + '\n');
    else {
      tokens.forEach((t, i) => process.stdout.write(`${String(t).padStart(6)} ${JSON.stringify(tokenizer.decode([t])).padEnd(12)} ${i ? logprobs[i - 1].toFixed(4) : ''}\n`));
      const sum = logprobs.reduce((a, b) => a + b, 0);
      r.log(`total log-probability ${sum.toFixed(4)} over ${logprobs.length} predicted tokens`);
    }
    return { tokens, logprobs };
  } finally {
    model.dispose();
  }
}
