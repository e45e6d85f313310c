/**
 * Messages between the extension host and the Generate panel's webview: one column per model,
 * responses streaming in while they are generated. One module for both sides; each side validates
 * what it receives. The webview sends a prompt and sampling settings; the host runs the models one
 * after the other in the worker and forwards what each has written so far.
 */
import { isInt, isNum, isObj, isStr, isStrArray } from './validate';

export interface GenerateSettings {
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  samples: number;
  seed: number;
}

export interface GenerateModel {
  /** Index into the panel's models. */
  id: number;
  label: string;
}

export type ColumnState = 'waiting' | 'generating' | 'done' | 'failed' | 'stopped';

export type HostToGenerate =
  | { type: 'setup'; prompt: string; models: GenerateModel[]; settings: GenerateSettings }
  /** What model `id` has written so far (`state` generating), or all of it (`done`). */
  | { type: 'column'; id: number; state: ColumnState; responses: string[]; finished: boolean[]; tokensPerSecond?: number; message?: string };

export type GenerateToHost =
  | { type: 'ready' }
  | { type: 'generate'; prompt: string; settings: GenerateSettings }
  | { type: 'stop' }
  | { type: 'copy'; text: string }
  /** Rank the responses shown (every column's, in order) in the ranking panel. */
  | { type: 'rankThese' };

export const MAX_PROMPT = 100_000;
export const MAX_SAMPLES = 8;

export function isSettings(v: unknown): v is GenerateSettings {
  return (
    isObj(v) && isNum(v.temperature) && v.temperature >= 0 && v.temperature <= 10 &&
    isNum(v.topP) && v.topP > 0 && v.topP <= 1 && isInt(v.topK) && v.topK >= 0 &&
    isInt(v.maxTokens) && v.maxTokens >= 1 && v.maxTokens <= 4096 && isInt(v.samples) && v.samples >= 1 && v.samples <= MAX_SAMPLES && isInt(v.seed)
  );
}

const STATES: ColumnState[] = ['waiting', 'generating', 'done', 'failed', 'stopped'];

export function parseGenerateToHost(v: unknown): GenerateToHost | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'ready':
    case 'stop':
    case 'rankThese':
      return { type: v.type };
    case 'generate':
      return isStr(v.prompt) && v.prompt.trim() !== '' && v.prompt.length <= MAX_PROMPT && isSettings(v.settings) ? { type: 'generate', prompt: v.prompt, settings: v.settings } : undefined;
    case 'copy':
      return isStr(v.text) && v.text.length <= 10 * MAX_PROMPT ? { type: 'copy', text: v.text } : undefined;
    default:
      return undefined;
  }
}

export function parseHostToGenerate(v: unknown): HostToGenerate | undefined {
  if (!isObj(v)) return undefined;
  switch (v.type) {
    case 'setup':
      return isStr(v.prompt) && Array.isArray(v.models) && v.models.every((m) => isObj(m) && isInt(m.id) && isStr(m.label)) && isSettings(v.settings)
        ? { type: 'setup', prompt: v.prompt, models: v.models as GenerateModel[], settings: v.settings }
        : undefined;
    case 'column':
      return isInt(v.id) && STATES.includes(v.state as ColumnState) && isStrArray(v.responses) && Array.isArray(v.finished) && v.finished.every((f) => typeof f === 'boolean') &&
        (v.tokensPerSecond === undefined || isNum(v.tokensPerSecond)) && (v.message === undefined || isStr(v.message))
        ? { type: 'column', id: v.id, state: v.state as ColumnState, responses: v.responses, finished: v.finished as boolean[], tokensPerSecond: v.tokensPerSecond as number | undefined, message: v.message as string | undefined }
        : undefined;
    default:
      return undefined;
  }
}
