/**
 * Reward-model comparisons in every shape of the spec, normalised to one K-way ranking:
 *   K-way (native):  {prompt, responses[K], ranks[K]}, 2 <= K <= 9, rank 1 best, equal ranks tie
 *   pairwise (TRL):  {prompt?, chosen, rejected, margin?}          -> K = 2
 *   transcripts (Anthropic HH): {chosen, rejected} with "\n\nHuman: ... \n\nAssistant: ..."; the
 *                    common prefix through the last "\n\nAssistant:" is the prompt  -> K = 2
 * `context` is the text the model reads before each response: the chat template for native
 * prompts, the prompt as it is for TRL and HH records (as TRL concatenates them).
 */
import { Problem } from './jsonl';
import { Message, promptTemplate } from './sft';

export interface Ranking {
  line: number;
  prompt: string;
  context: string;
  /** The prompt as a conversation, for models with a chat template (native records only; TRL and HH records keep their text). */
  messages?: Message[];
  responses: string[];
  ranks: number[];
  margin?: number;
  flags: string[];
  annotator?: string;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

export function toRanking(v: Record<string, unknown>, file: string, line: number): Ranking | Problem {
  const fail = (message: string): Problem => ({ file, line, message });
  const flags = Array.isArray(v.flags) ? v.flags.filter((f): f is string => typeof f === 'string') : [];
  const annotator = typeof v.annotator === 'string' ? v.annotator : undefined;
  if ('responses' in v || 'ranks' in v) {
    if (!isText(v.prompt)) return fail('"prompt" must be a non-empty string');
    const { responses, ranks } = v;
    if (!Array.isArray(responses) || !responses.every(isText)) return fail('"responses" must be an array of non-empty strings');
    const K = responses.length;
    if (K < 2 || K > 9) return fail(`K = ${K} responses; a ranking needs 2 to 9`);
    if (!Array.isArray(ranks) || ranks.length !== K) return fail(`"ranks" must be an array of ${K} integers, one per response`);
    if (!ranks.every((r) => Number.isInteger(r) && r >= 1 && r <= K)) return fail(`ranks must be integers from 1 to ${K} (1 is best), got ${JSON.stringify(ranks)}`);
    return { line, prompt: v.prompt, context: promptTemplate(v.prompt), messages: [{ role: 'user', content: v.prompt }], responses, ranks: ranks as number[], flags, annotator };
  }
  if ('chosen' in v || 'rejected' in v) {
    if (!isText(v.chosen) || !isText(v.rejected)) return fail('"chosen" and "rejected" must be non-empty strings');
    const margin = typeof v.margin === 'number' && Number.isFinite(v.margin) ? v.margin : undefined;
    if ('margin' in v && margin === undefined) return fail('"margin" must be a number');
    if ('prompt' in v) {
      if (typeof v.prompt !== 'string') return fail('"prompt" must be a string');
      return { line, prompt: v.prompt, context: v.prompt, responses: [v.chosen, v.rejected], ranks: [1, 2], margin, flags, annotator };
    }
    if (v.chosen === v.rejected) return fail('"chosen" and "rejected" are identical: no preference to learn');
    const split = splitTranscripts(v.chosen, v.rejected) ?? implicitPrompt(v.chosen, v.rejected);
    if (!split) return fail('with no "prompt", "chosen" and "rejected" must differ after their common start (one is a prefix of the other)');
    return { line, prompt: split.prompt, context: split.prompt, responses: [split.chosen, split.rejected], ranks: [1, 2], margin, flags, annotator };
  }
  return fail('not an RM record: expected prompt/responses/ranks or chosen/rejected');
}

/** HH transcripts: the prompt is the common prefix through its last "\n\nAssistant:". */
export function splitTranscripts(chosen: string, rejected: string): { prompt: string; chosen: string; rejected: string } | undefined {
  let n = 0;
  while (n < chosen.length && n < rejected.length && chosen[n] === rejected[n]) n++;
  const marker = '\n\nAssistant:';
  const end = chosen.slice(0, n).lastIndexOf(marker);
  if (end < 0) return undefined;
  const cut = end + marker.length;
  const prompt = chosen.slice(0, cut);
  if (!chosen.slice(0, n).includes('Human:') || cut >= chosen.length || cut >= rejected.length) return undefined;
  return { prompt, chosen: chosen.slice(cut), rejected: rejected.slice(cut) };
}

/**
 * TRL's implicit prompt: without a "prompt" field (and not an HH transcript), the common prefix of
 * chosen and rejected is the prompt, possibly empty; a space just before the split goes with the
 * responses, as TRL's maybe_extract_prompt does.
 */
export function implicitPrompt(chosen: string, rejected: string): { prompt: string; chosen: string; rejected: string } | undefined {
  let n = 0;
  while (n < chosen.length && n < rejected.length && chosen[n] === rejected[n]) n++;
  if (n > 0 && chosen[n - 1] === ' ') n--;
  const out = { prompt: chosen.slice(0, n), chosen: chosen.slice(n), rejected: rejected.slice(n) };
  return out.chosen && out.rejected ? out : undefined;
}

/** Every pair of responses with different ranks, winner first; none for a not_rankable record. */
export function comparisons(r: Ranking): [number, number][] {
  if (r.flags.includes('not_rankable')) return [];
  const out: [number, number][] = [];
  for (let i = 0; i < r.ranks.length; i++) {
    for (let j = i + 1; j < r.ranks.length; j++) {
      if (r.ranks[i] < r.ranks[j]) out.push([i, j]);
      else if (r.ranks[j] < r.ranks[i]) out.push([j, i]);
    }
  }
  return out;
}
