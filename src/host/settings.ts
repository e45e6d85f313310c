/** Settings the stages read (contributes.configuration), turned into `rlhf` command-line flags. */
import * as vscode from 'vscode';

/** setting key (under rlhf.<stage>.) -> CLI flag */
const FLAGS: Record<string, Record<string, string>> = {
  pretrain: { steps: 'steps', layers: 'layers', heads: 'heads', embd: 'embd', block: 'block', batchSize: 'batch-size', lr: 'lr' },
  sft: { steps: 'steps', batchSize: 'batch-size', lr: 'lr' },
  rm: { steps: 'steps', batchSize: 'batch-size', lr: 'lr' },
  ppo: { iterations: 'iterations', klCoef: 'kl-coef', klTarget: 'kl-target', lr: 'lr', samplesPerPrompt: 'samples-per-prompt' },
  dpo: { steps: 'steps', beta: 'beta', lr: 'lr', kway: 'kway' },
  grpo: { iterations: 'iterations', numGenerations: 'num-generations', beta: 'beta', lr: 'lr' },
  rloo: { iterations: 'iterations', numGenerations: 'num-generations', beta: 'beta', lr: 'lr' },
};

/** The stages that train weights and take a LoRA adapter (rlhf.lora.*). */
const LORA_STAGES = new Set(['sft', 'rm', 'ppo', 'dpo', 'grpo', 'rloo']);

/** Flags for the settings the user set (defaults stay the CLI's own). */
export function stageFlags(stage: string): string[] {
  const c = vscode.workspace.getConfiguration(`rlhf.${stage}`);
  const out: string[] = [];
  for (const [key, flag] of Object.entries(FLAGS[stage] ?? {})) {
    const v = c.get<number | string>(key);
    if (v !== undefined && v !== null) out.push(`--${flag}`, String(v));
  }
  const lora = vscode.workspace.getConfiguration('rlhf.lora');
  const r = lora.get<number>('r') ?? 0;
  if (LORA_STAGES.has(stage) && r > 0) {
    out.push('--lora-r', String(r));
    const alpha = lora.get<number | null>('alpha');
    if (alpha) out.push('--lora-alpha', String(alpha));
  }
  return out;
}

export interface GenerationSettings {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

export function generationSettings(): GenerationSettings {
  const g = vscode.workspace.getConfiguration('rlhf.generation');
  return { maxTokens: g.get('maxTokens', 128), temperature: g.get('temperature', 0.8), topK: g.get('topK', 0), topP: g.get('topP', 1), seed: g.get('seed', 1) };
}

/** `rlhf generate` flags for these settings (the seed is the caller's). */
export function generationFlags(g: GenerationSettings, seed = g.seed): string[] {
  return ['--max-tokens', String(g.maxTokens), '--temperature', String(g.temperature), '--top-k', String(g.topK), '--top-p', String(g.topP), '--seed', String(seed)];
}

export function describeGeneration(g: GenerationSettings): string {
  return `temperature ${g.temperature} · top-p ${g.topP} · top-k ${g.topK || 'all'} · up to ${g.maxTokens} tokens · seed ${g.seed} + 9 × (prompt − 1)`;
}
