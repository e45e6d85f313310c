/**
 * A run as OpenRLHF 0.11's command line, with the dotted flag names that version defines
 * (`--model.model_name_or_path`, `--data.dataset`, ...; test/fixtures/trainer-flags/openrlhf-0.11.0.json
 * lists every flag of openrlhf/cli/train_{sft,rm,dpo,ppo_ray}.py at the v0.11.0 tag):
 *   SFT, RM, DPO   deepspeed --module openrlhf.cli.train_sft|train_rm|train_dpo
 *   PPO, GRPO, RLOO  ray job submit ... -- python3 -m openrlhf.cli.train_ppo_ray, with the advantage
 *                  estimator gae (PPO, a critic started from the reward model as ours is),
 *                  group_norm (GRPO, KL in the loss) or rloo
 */
import { ExportPlan, TrainerCommand, epochsFor, num } from './plan';

export const OPENRLHF_VERSION = '0.11.0';

export function openrlhfCommand(p: ExportPlan, out: string): TrainerCommand {
  const notes: string[] = [];
  const chat = p.chat ? ['--data.apply_chat_template'] : ['--data.input_template', '{}']; // plain prompts already hold "Human: ... Assistant: "
  const lora = p.lora ? ['--ds.lora.rank', String(p.lora.r), '--ds.lora.alpha', String(p.lora.alpha ?? 2 * p.lora.r), '--ds.lora.dropout', num(p.lora.dropout ?? 0), ...(p.lora.targets?.length ? ['--ds.lora.target_modules', ...p.lora.targets] : [])] : [];
  if (p.stage === 'sft' || p.stage === 'rm' || p.stage === 'dpo') {
    const t = p.train!;
    const global = t.batchSize * t.gradAccum;
    const epochs = epochsFor(t.steps, global, p.rows);
    notes.push(`${t.steps} steps of ${global} sequences over ${p.rows} rows: ${epochs} epoch(s) (OpenRLHF counts epochs, not steps)`);
    const args = [
      '--model.model_name_or_path', p.model, '--data.dataset', p.data, ...chat, '--data.max_len', String(p.maxLen),
      '--train.micro_batch_size', String(t.batchSize), '--train.batch_size', String(global), '--train.max_epochs', String(epochs), '--train.seed', String(t.seed),
      '--adam.lr', num(t.lr), '--adam.betas', num(t.beta1), num(t.beta2), '--adam.weight_decay', num(t.weightDecay),
      '--lr_scheduler', 'cosine_with_min_lr', '--min_lr_ratio', num(t.minLr / t.lr), '--lr_warmup_ratio', num(Math.min(1, t.warmupSteps / Math.max(1, t.steps))), '--max_norm', num(t.gradClip),
      '--ds.zero_stage', '2', '--model.gradient_checkpointing_enable', '--ckpt.output_dir', out, '--logger.logging_steps', '1',
      ...lora,
    ];
    if (p.stage === 'sft') args.push('--data.input_key', 'input', '--data.output_key', 'output');
    else args.push('--data.prompt_key', 'prompt', '--data.chosen_key', 'chosen', '--data.rejected_key', 'rejected');
    if (p.stage === 'rm' && p.margins) {
      args.push('--model.margin_loss_enable');
      notes.push('pairs from K-way rankings carry "margin" (the rank difference), which --model.margin_loss_enable subtracts inside the loss');
    }
    if (p.stage === 'dpo' && p.dpo) {
      args.push('--model.beta', num(p.dpo.beta), '--model.label_smoothing', num(p.dpo.labelSmoothing));
      if (p.dpo.loss === 'ipo') args.push('--model.ipo_enable');
      if (p.dpo.kway === 'pl') notes.push('the run used the Plackett-Luce loss over whole K-way rankings; OpenRLHF takes pairs: every ordered pair of each ranking is a row');
    }
    return { launcher: ['deepspeed', '--module', `openrlhf.cli.train_${p.stage}`], args, notes };
  }
  const r = p.rl!;
  const rollout = r.promptsPerStep * r.samplesPerPrompt;
  const episodes = epochsFor(r.iterations, r.promptsPerStep, p.rows);
  notes.push(`${r.iterations} iteration(s) of ${r.promptsPerStep} prompts over ${p.rows} prompts: ${episodes} episode(s) (OpenRLHF counts passes over the prompts)`);
  const args = [
    '--actor.model_name_or_path', p.model, '--reward.model_name_or_path', p.rewardModel!, '--ds.value_head_prefix', 'score',
    '--data.prompt_dataset', p.data, '--data.input_key', 'prompt', ...chat, '--data.max_len', String(p.maxLen),
    '--rollout.batch_size', String(r.promptsPerStep), '--rollout.n_samples_per_prompt', String(r.samplesPerPrompt),
    '--rollout.max_new_tokens', String(r.maxNewTokens), '--rollout.temperature', num(r.temperature),
    '--train.num_episodes', String(episodes), '--train.seed', String(r.seed), '--actor.adam.lr', num(r.lr), '--algo.kl.init_coef', num(r.beta),
    '--ds.zero_stage', '2', '--actor.gradient_checkpointing_enable', '--ckpt.output_dir', out, '--logger.logging_steps', '1', ...lora,
  ];
  if (p.stage === 'ppo') {
    const mb = r.minibatches ?? 1;
    args.push(
      '--critic.model_name_or_path', p.rewardModel!, '--critic.adam.lr', num(r.valueLr ?? r.lr), '--algo.advantage.estimator', 'gae',
      '--algo.advantage.gamma', num(r.gamma ?? 1), '--algo.advantage.lambd', num(r.lambda ?? 0.95), '--actor.eps_clip', num(r.clip ?? 0.2), '--critic.value_clip', num(r.valueClip ?? 0.2),
      '--train.max_epochs', String(r.ppoEpochs ?? 1), '--train.batch_size', String(Math.max(1, Math.floor(rollout / mb))), '--train.micro_batch_size', String(Math.max(1, Math.floor(rollout / mb))),
      '--algo.kl.estimator', r.klEstimator ?? 'k1',
    );
    if (r.klTarget) args.push('--algo.kl.target', num(r.klTarget), '--algo.kl.horizon', String(r.klHorizon ?? 10000));
    notes.push('the critic starts from the reward model, as in our run; our reward model\'s scores are standardised with its recorded mean and std, OpenRLHF\'s --reward.normalize_enable normalises with running statistics instead');
  } else {
    args.push('--algo.advantage.estimator', p.stage === 'grpo' ? 'group_norm' : 'rloo', '--train.batch_size', String(rollout), '--train.micro_batch_size', String(rollout), '--train.max_epochs', String(r.numIterations ?? 1));
    if (p.stage === 'grpo') args.push('--algo.kl.use_loss', '--algo.kl.estimator', 'k3', ...(r.epsLow !== undefined ? ['--actor.eps_clip_low_high', num(r.epsLow), num(r.epsHigh ?? r.epsLow)] : []));
  }
  return {
    launcher: ['ray', 'job', 'submit', '--address=http://127.0.0.1:8265', '--runtime-env-json={"working_dir": "."}', '--', 'python3', '-m', 'openrlhf.cli.train_ppo_ray'],
    args,
    notes,
  };
}
