/**
 * A run as TRL 1.9's command line: `trl sft|reward|dpo|grpo|rloo` (each runs its script under
 * `accelerate launch`; `--accelerate_config zero2` picks TRL's DeepSpeed ZeRO-2 config). Flags are
 * the fields of the script's dataclasses (ScriptArguments, ModelConfig, the trainer's config and
 * transformers.TrainingArguments): test/fixtures/trainer-flags/trl-1.9.0.json lists them.
 * TRL 1.9 has no PPO command (its PPOTrainer is experimental), so a PPO run goes to OpenRLHF.
 */
import { ExportPlan, TrainerCommand, num } from './plan';

export const TRL_VERSION = '1.9.0';

const COMMAND: Record<string, string> = { sft: 'sft', rm: 'reward', dpo: 'dpo', grpo: 'grpo', rloo: 'rloo' };

export function trlCommand(p: ExportPlan, out: string): TrainerCommand {
  const cmd = COMMAND[p.stage];
  if (!cmd) throw new Error(`TRL ${TRL_VERSION} has no command for ${p.stage.toUpperCase()} runs (its PPOTrainer is experimental): export this run --for openrlhf`);
  const args: string[] = ['--model_name_or_path', p.model, '--dataset_name', p.data, '--output_dir', out, '--report_to', 'tensorboard', '--logging_steps', '1', '--bf16'];
  const notes: string[] = [];
  if (p.train) {
    const t = p.train;
    args.push(
      '--max_length', String(p.maxLen),
      '--per_device_train_batch_size', String(t.batchSize), '--gradient_accumulation_steps', String(t.gradAccum), '--max_steps', String(t.steps),
      '--learning_rate', num(t.lr), '--lr_scheduler_type', 'cosine_with_min_lr', '--lr_scheduler_kwargs', JSON.stringify({ min_lr: Number(t.minLr.toPrecision(6)) }),
      '--warmup_steps', String(t.warmupSteps), '--weight_decay', num(t.weightDecay), '--adam_beta1', num(t.beta1), '--adam_beta2', num(t.beta2),
      '--max_grad_norm', num(t.gradClip), '--seed', String(t.seed),
    );
    notes.push(`batch: ${t.batchSize} sequences per GPU x ${t.gradAccum} accumulation steps, as the run had on one device; with N GPUs the global batch is N times larger (divide --gradient_accumulation_steps to keep it)`);
  }
  if (p.lora) {
    args.push('--use_peft', '--lora_r', String(p.lora.r), '--lora_alpha', String(p.lora.alpha ?? 2 * p.lora.r), '--lora_dropout', num(p.lora.dropout ?? 0));
    if (p.lora.targets?.length) args.push('--lora_target_modules', ...p.lora.targets);
  }
  if (p.stage === 'dpo' && p.dpo) {
    args.push('--beta', num(p.dpo.beta), '--loss_type', p.dpo.loss === 'ipo' ? 'ipo' : 'sigmoid', '--label_smoothing', num(p.dpo.labelSmoothing));
    if (p.dpo.kway === 'pl') notes.push('the run used the Plackett-Luce loss over whole K-way rankings; TRL takes pairs: every ordered pair of each ranking is a row');
  }
  if (p.stage === 'rm' && p.margins) notes.push('pairs from K-way rankings carry "margin" (the rank difference); TRL\'s reward trainer subtracts it inside the loss');
  if ((p.stage === 'grpo' || p.stage === 'rloo') && p.rl) {
    const r = p.rl;
    args.push(
      '--reward_model_name_or_path', p.rewardModel!,
      '--num_generations', String(r.samplesPerPrompt), '--max_completion_length', String(r.maxNewTokens), '--temperature', num(r.temperature),
      '--beta', num(r.beta), '--learning_rate', num(r.lr), '--max_steps', String(r.iterations), '--seed', String(r.seed),
      // a step's batch: every completion of its prompts
      '--per_device_train_batch_size', String(r.promptsPerStep * r.samplesPerPrompt), '--gradient_accumulation_steps', '1',
    );
    if (r.numIterations) args.push('--num_iterations', String(r.numIterations));
    if (p.stage === 'grpo') {
      if (r.epsLow !== undefined) args.push('--epsilon', num(r.epsLow));
      if (r.epsHigh !== undefined) args.push('--epsilon_high', num(r.epsHigh));
      if (r.lossType) args.push('--loss_type', r.lossType);
      if (r.scaleRewards) args.push('--scale_rewards', r.scaleRewards);
    }
  }
  return { launcher: ['trl', cmd], args, notes };
}
