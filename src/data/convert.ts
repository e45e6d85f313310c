/**
 * Conversions between dataset shapes; each writes a new file and never changes its input:
 *   rm-pairwise:  K-way rankings -> TRL pairwise {prompt, chosen, rejected}, one line per comparison
 *   hh-native:    Anthropic HH transcripts -> native K-way {prompt, responses, ranks} (K = 2)
 *   messages:     SFT {prompt, response} -> {messages: [user, assistant]}
 *   prompt-response: SFT single-turn {messages} -> {prompt, response}
 * Unknown fields of a record are kept on every record it becomes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Problem } from './jsonl';
import { readDataset } from './reader';
import { comparisons, splitTranscripts } from './rm';

export const CONVERSIONS = ['rm-pairwise', 'hh-native', 'messages', 'prompt-response'] as const;
export type Conversion = (typeof CONVERSIONS)[number];

const RM_FIELDS = ['prompt', 'responses', 'ranks', 'chosen', 'rejected', 'margin'];

function rest(v: Record<string, unknown>, drop: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).filter(([k]) => !drop.includes(k)));
}

/** The records one input record becomes, or a problem. */
export function convertRecord(kind: Conversion, v: Record<string, unknown>, file: string, line: number): Record<string, unknown>[] | Problem {
  const fail = (message: string): Problem => ({ file, line, message });
  switch (kind) {
    case 'rm-pairwise': {
      if (!Array.isArray(v.responses) || !Array.isArray(v.ranks) || typeof v.prompt !== 'string') return fail('not a K-way ranking (prompt, responses, ranks)');
      const extra = rest(v, RM_FIELDS);
      const pairs = comparisons({ line, prompt: v.prompt, context: v.prompt, responses: v.responses as string[], ranks: v.ranks as number[], flags: Array.isArray(v.flags) ? (v.flags as string[]) : [] });
      const resp = v.responses as string[];
      return pairs.map(([w, l]) => ({ prompt: v.prompt, chosen: resp[w], rejected: resp[l], ...extra }));
    }
    case 'hh-native': {
      if (typeof v.chosen !== 'string' || typeof v.rejected !== 'string' || 'prompt' in v) return fail('not an HH transcript pair (chosen, rejected without prompt)');
      const s = splitTranscripts(v.chosen, v.rejected);
      if (!s) return fail('chosen and rejected do not share a "\\n\\nHuman: ... \\n\\nAssistant:" prefix');
      // a single exchange becomes a plain prompt; a longer conversation keeps its transcript
      const single = /^\s*Human: ([\s\S]*?)\s*\n\nAssistant:$/.exec(s.prompt);
      const prompt = single && !single[1].includes('\n\nHuman:') && !single[1].includes('\n\nAssistant:') ? single[1] : s.prompt;
      return [{ prompt, responses: [s.chosen.trim(), s.rejected.trim()], ranks: [1, 2], ...rest(v, RM_FIELDS) }];
    }
    case 'messages': {
      if (typeof v.prompt !== 'string' || typeof v.response !== 'string') return fail('not a {prompt, response} demonstration');
      return [{ messages: [{ role: 'user', content: v.prompt }, { role: 'assistant', content: v.response }], ...rest(v, ['prompt', 'response']) }];
    }
    case 'prompt-response': {
      const m = v.messages as { role: string; content: string }[] | undefined;
      if (!Array.isArray(m)) return fail('not a {messages} demonstration');
      const turns = m.filter((x) => x.role !== 'system');
      if (turns.length !== 2 || turns[0].role !== 'user' || turns[1].role !== 'assistant') return fail('only single-turn conversations (user, assistant) convert to prompt/response');
      const sys = m.find((x) => x.role === 'system');
      return [{ prompt: turns[0].content, response: turns[1].content, ...(sys ? { system: sys.content } : {}), ...rest(v, ['messages']) }];
    }
  }
}

export interface ConvertResult {
  input: string;
  output: string;
  read: number;
  written: number;
  problems: Problem[];
}

export function convertFile(kind: Conversion, input: string, output: string, opts: { force?: boolean } = {}): ConvertResult {
  if (path.resolve(input) === path.resolve(output)) throw new Error('the output must be a new file: convert never changes its input');
  if (fs.existsSync(output) && !opts.force) throw new Error(`${output} exists (use --force to replace it)`);
  const problems: Problem[] = [];
  const tmp = `${output}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  let read = 0, written = 0;
  try {
    // the reader validates lines (UTF-8, JSON, objects); conversion checks the shape it needs
    readDataset(input, {
      stage: kind === 'rm-pairwise' || kind === 'hh-native' ? 'rm' : 'sft',
      onRecord: (rec, raw) => {
        read++;
        const out = convertRecord(kind, raw, input, rec.line);
        if ('message' in out) problems.push(out);
        else for (const r of out) {
          fs.writeSync(fd, JSON.stringify(r) + '\n');
          written++;
        }
      },
      onProblem: (p) => problems.push(p),
    });
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, output);
  return { input, output, read, written, problems };
}
