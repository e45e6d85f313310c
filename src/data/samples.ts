/**
 * One line of a run's samples.jsonl (formats.md): what an RL stage generated at a step and how it
 * was scored. {"step", "prompt", "response", "score"?, "gold"?, "kl"?, "advantage"?,
 * "implicit_reward"?}. Read by the dashboard's Samples view; written by RunDir.appendSamples.
 * No Node imports: the webview checks the rows it receives with the same function.
 */
export interface SampleRow {
  step: number;
  prompt: string;
  response: string;
  score?: number | null;
  gold?: number | null;
  kl?: number | null;
  advantage?: number | null;
  implicit_reward?: number | null;
}

/** The optional numeric columns, in the order the Samples view shows them. */
export const SAMPLE_NUMBERS = ['score', 'gold', 'kl', 'advantage', 'implicit_reward'] as const;
export type SampleNumber = (typeof SAMPLE_NUMBERS)[number];

/** Texts longer than this are cut (with an ellipsis) when read: a view, not an archive. */
export const MAX_SAMPLE_TEXT = 4000;

const cut = (s: string) => (s.length > MAX_SAMPLE_TEXT ? s.slice(0, MAX_SAMPLE_TEXT) + '…' : s);

/** A sample row from a parsed object, or undefined when it is not one (a number is finite or null). */
export function toSampleRow(v: unknown): SampleRow | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.step !== 'number' || !Number.isFinite(o.step) || typeof o.prompt !== 'string' || typeof o.response !== 'string') return undefined;
  const row: SampleRow = { step: o.step, prompt: cut(o.prompt), response: cut(o.response) };
  for (const k of SAMPLE_NUMBERS) {
    const x = o[k];
    if (x === undefined) continue;
    if (x !== null && (typeof x !== 'number' || !Number.isFinite(x))) return undefined;
    row[k] = x;
  }
  return row;
}

/** One samples.jsonl line, or undefined (blank, torn by a crash, or not a sample). */
export function parseSampleLine(line: string): SampleRow | undefined {
  if (!line.trim()) return undefined;
  try {
    return toSampleRow(JSON.parse(line));
  } catch {
    return undefined;
  }
}
