/** PPO prompts: {prompt} or {messages} ending in a user turn; `context` is what the policy reads. */
import { Problem } from './jsonl';
import { Message, messagesToSegments, plainMessages, promptTemplate } from './sft';

export interface PpoPrompt {
  line: number;
  prompt: string;
  context: string;
  /** The conversation so far, for models with a chat template (which then render it instead of context). */
  messages?: Message[];
  id?: string;
  category?: string;
}

export function toPpoPrompt(v: Record<string, unknown>, file: string, line: number): PpoPrompt | Problem {
  const fail = (message: string): Problem => ({ file, line, message });
  const id = typeof v.id === 'string' ? v.id : undefined;
  const category = typeof v.category === 'string' ? v.category : undefined;
  if ('prompt' in v) {
    if (typeof v.prompt !== 'string' || !v.prompt) return fail('"prompt" must be a non-empty string');
    return { line, prompt: v.prompt, context: promptTemplate(v.prompt), messages: [{ role: 'user', content: v.prompt }], id, category };
  }
  if ('messages' in v) {
    const msgs = v.messages as { role?: unknown; content?: unknown }[];
    if (!Array.isArray(msgs) || !msgs.length || msgs[msgs.length - 1]?.role !== 'user') return fail('"messages" must end with a user turn');
    // render all turns; the template after the last user turn asks for the answer
    const segs = messagesToSegments([...msgs, { role: 'assistant', content: '.' }]);
    if (typeof segs === 'string') return fail(segs);
    const context = segs.slice(0, -1).map((s) => s.text).join('');
    return { line, prompt: String(msgs[msgs.length - 1].content), context, messages: plainMessages(msgs as Message[]), id, category };
  }
  return fail('not a PPO record: expected "prompt" or "messages"');
}
