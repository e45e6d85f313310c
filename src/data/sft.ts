/**
 * SFT demonstrations in every shape of the spec, normalised to segments of text with a flag
 * saying whether the loss is taken on them:
 *   {prompt, response}    -> template(prompt) [no loss], response + end-of-text [loss]
 *   {prompt, completion}  -> prompt [no loss], completion + end-of-text [loss] (TRL: no template)
 *   {messages: [...]}     -> system/user turns [no loss], assistant turns + end-of-text [loss]
 *   {text}                -> text + end-of-text [loss on all]
 */
import { Problem } from './jsonl';

export interface Segment {
  text: string;
  train: boolean;
  /** Append the end-of-text token after this segment (trained when the segment is). */
  eot?: boolean;
}

export interface SftExample {
  line: number;
  segments: Segment[];
  category?: string;
  /** The record as a conversation (prompt/response as one user and one assistant turn), for models with a chat template. */
  messages?: Message[];
}

/** How a prompt is shown to the model, in SFT, generation and later RLHF stages alike. */
export function promptTemplate(prompt: string): string {
  return `Human: ${prompt}\n\nAssistant: `;
}

export interface Message {
  role: string;
  content: string;
}

function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** Renders a conversation; returns the segments or an error message. */
export function messagesToSegments(messages: unknown): Segment[] | string {
  if (!Array.isArray(messages) || messages.length === 0) return '"messages" must be a non-empty array';
  const segs: Segment[] = [];
  for (const [i, m] of (messages as Message[]).entries()) {
    if (!m || typeof m !== 'object' || !isNonEmptyString(m.content)) return `messages[${i}].content must be a non-empty string`;
    if (m.role === 'system') segs.push({ text: `System: ${m.content}\n\n`, train: false });
    else if (m.role === 'user') segs.push({ text: promptTemplate(m.content), train: false });
    else if (m.role === 'assistant') segs.push({ text: m.content, train: true, eot: true }, { text: '\n\n', train: false });
    else return `messages[${i}].role must be "system", "user" or "assistant"`;
  }
  while (segs.length && !segs[segs.length - 1].train && segs[segs.length - 1].text === '\n\n') segs.pop();
  if (!segs.some((s) => s.train)) return '"messages" has no assistant turn to learn from';
  return segs;
}

/** Only role and content of each turn (validated by messagesToSegments). */
export function plainMessages(messages: Message[]): Message[] {
  return messages.map((m) => ({ role: m.role, content: m.content }));
}

export function toSftExample(value: Record<string, unknown>, file: string, line: number): SftExample | Problem {
  const fail = (message: string): Problem => ({ file, line, message });
  const category = typeof value.category === 'string' ? value.category : undefined;
  if ('messages' in value) {
    const segs = messagesToSegments(value.messages);
    return typeof segs === 'string' ? fail(segs) : { line, segments: segs, category, messages: plainMessages(value.messages as Message[]) };
  }
  if ('prompt' in value) {
    if (!isNonEmptyString(value.prompt)) return fail('"prompt" must be a non-empty string');
    if ('response' in value) {
      if (!isNonEmptyString(value.response)) return fail('"response" must be a non-empty string');
      return {
        line,
        category,
        segments: [{ text: promptTemplate(value.prompt), train: false }, { text: value.response, train: true, eot: true }],
        messages: [{ role: 'user', content: value.prompt }, { role: 'assistant', content: value.response }],
      };
    }
    if ('completion' in value) {
      if (!isNonEmptyString(value.completion)) return fail('"completion" must be a non-empty string');
      return { line, category, segments: [{ text: value.prompt, train: false }, { text: value.completion, train: true, eot: true }] };
    }
    return fail('a record with "prompt" needs "response" or "completion"');
  }
  if ('text' in value) {
    if (!isNonEmptyString(value.text)) return fail('"text" must be a non-empty string');
    return { line, category, segments: [{ text: value.text, train: true, eot: true }] };
  }
  return fail('not an SFT record: expected prompt/response, prompt/completion, messages or text');
}
