/** Settings the stages read (contributes.configuration), turned into `rlhf` command-line flags. */
import * as vscode from 'vscode';

/** setting key (under rlhf.<stage>.) -> CLI flag */
const FLAGS: Record<string, Record<string, string>> = {
  pretrain: { steps: 'steps', layers: 'layers', heads: 'heads', embd: 'embd', block: 'block', batchSize: 'batch-size', lr: 'lr' },
  sft: { steps: 'steps', batchSize: 'batch-size', lr: 'lr' },
  rm: { steps: 'steps', batchSize: 'batch-size', lr: 'lr' },
  ppo: { iterations: 'iterations', klCoef: 'kl-coef', klTarget: 'kl-target', lr: 'lr', samplesPerPrompt: 'samples-per-prompt' },
};

/** Flags for the settings the user set (defaults stay the CLI's own). */
export function stageFlags(stage: string): string[] {
  const c = vscode.workspace.getConfiguration(`rlhf.${stage}`);
  const out: string[] = [];
  for (const [key, flag] of Object.entries(FLAGS[stage] ?? {})) {
    const v = c.get<number>(key);
    if (v !== undefined && v !== null) out.push(`--${flag}`, String(v));
  }
  return out;
}
