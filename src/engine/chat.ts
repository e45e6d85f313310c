/**
 * Chat templates: the Jinja template a model ships in tokenizer_config.json, rendered with
 * Hugging Face's `@huggingface/jinja` as Transformers renders it (the conversation as `messages`,
 * `add_generation_prompt`, the special tokens as variables). Models without one keep the
 * "Human: ... Assistant:" format of the data layer.
 *
 * Training on a conversation takes the loss on assistant turns only. A template has no markers
 * for where a turn starts, so each assistant turn is found the way TRL does without generation
 * tags: the text that rendering messages[..i] adds over rendering messages[..i-1] with the
 * generation prompt.
 */
import { Template } from '@huggingface/jinja';
import type { Segment } from '../data/sft';

export interface ChatMessage {
  role: string;
  content: string;
}

export class ChatTemplateError extends Error {}

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly special: Record<string, string>) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template in tokenizer_config.json does not parse: ${firstLine(e)}`);
    }
  }

  /** The conversation as the model reads it; with the generation prompt, ready for the assistant's turn. */
  render(messages: ChatMessage[], addGenerationPrompt: boolean, extra: Record<string, unknown> = {}): string {
    try {
      return this.template.render({ ...this.special, messages, add_generation_prompt: addGenerationPrompt, ...extra });
    } catch (e) {
      throw new ChatTemplateError(`the model's chat template failed to render this conversation: ${firstLine(e)}`);
    }
  }

  /** The rendered conversation cut into segments, the assistant turns marked for the loss. */
  segments(messages: ChatMessage[]): Segment[] {
    const out: Segment[] = [];
    let done = '';
    const take = (text: string, train: boolean) => {
      if (!text.startsWith(done)) {
        throw new ChatTemplateError('the chat template renders an earlier turn differently once later turns follow, so the assistant turns cannot be told apart; train on prompt/completion records instead');
      }
      if (text.length > done.length) out.push({ text: text.slice(done.length), train });
      done = text;
    };
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      take(this.render(messages.slice(0, i), true), false);
      take(this.render(messages.slice(0, i + 1), false), true);
    });
    take(this.render(messages, false), false);
    return out;
  }
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0];

/** What a record offers a model before its answer: its own text, and the conversation when it is one. */
export interface ContextRecord {
  context: string;
  messages?: ChatMessage[];
}

/**
 * The text a model reads before its answer: the conversation through its chat template (with the
 * generation prompt) when the model has one and the record is a conversation, else the record's
 * context ("Human: ... Assistant:", or a TRL prompt as it is).
 */
export function contextText(tok: { chat?: ChatTemplate }, rec: ContextRecord): string {
  return tok.chat && rec.messages?.length ? tok.chat.render(rec.messages, true) : rec.context;
}

export function encodeContext(tok: { chat?: ChatTemplate; encode(text: string): number[] }, rec: ContextRecord): number[] {
  return tok.encode(contextText(tok, rec));
}
