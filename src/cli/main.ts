/**
 * The `rlhf` command line (also the training worker's engine). Every failure is one line on
 * stderr and a non-zero exit: 2 for a usage error, 1 for anything else. Never a stack trace,
 * unless RLHF_DEBUG is set.
 */
import { OptSpecs, UsageError, helpText, parseArgs } from './args';
import { makeReporter, Reporter } from './progress';
import { DPO_OPTS, GRPO_OPTS, PPO_OPTS, PRETRAIN_OPTS, RESUME_OPTS, RLOO_OPTS, RM_OPTS, SFT_OPTS, dpoCommand, grpoCommand, ppoCommand, pretrainCommand, resumeCommand, rlooCommand, rmCommand, sftCommand } from './commands/train';
import { GENERATE_OPTS, LOGPROBS_OPTS, generateCommand, logprobsCommand } from './commands/generate';
import { BENCH_OPTS, benchCommand } from './commands/bench';
import { BACKENDS_OPTS, backendsCommand } from './commands/backends';
import { PIPELINE_OPTS, pipelineCommand } from './commands/pipeline';
import { COMPARE_OPTS, EVALUATE_OPTS, compareCommand, evaluateCommand } from './commands/evaluate';
import { ParsedOpts } from './args';
import { AGREEMENT_OPTS, CONVERT_OPTS, STATS_OPTS, VALIDATE_OPTS, agreementCommand, convertCommand, statsCommand, validateCommand } from './commands/data';
import { MERGE_LORA_OPTS, mergeLoraCommand } from './commands/lora';
import { DOWNLOAD_OPTS, downloadCommand } from './commands/download';
import { COST_OPTS, costCommand } from './commands/cost';
import { EXPORT_OPTS, IMPORT_OPTS, exportCommand, importCommand } from './commands/handoff';
import { CANCEL_OPTS, JOBS_OPTS, SUBMIT_OPTS, cancelCommand, jobsCommand, submitCommand } from './commands/submit';

interface Command {
  usage: string;
  summary: string;
  opts: OptSpecs;
  /** A number it returns is the exit code (validate: 1 when a problem was found). */
  run: (o: ParsedOpts, positional: string[], r: Reporter) => Promise<unknown>;
}

export const COMMANDS: Record<string, Command> = {
  pretrain: { usage: 'rlhf pretrain [--corpus FILE] [options]', summary: 'Pretrain a GPT on a text corpus (default: the bundled Moby-Dick).', opts: PRETRAIN_OPTS, run: (o, _p, r) => pretrainCommand(o, r) },
  sft: { usage: 'rlhf sft --data FILE --model DIR [options]', summary: 'Supervised fine-tuning on demonstrations; loss on response tokens only.', opts: SFT_OPTS, run: (o, _p, r) => sftCommand(o, r) },
  rm: { usage: 'rlhf rm --data FILE --model DIR [options]', summary: 'Train a reward model on rankings (InstructGPT K-way loss), starting from an SFT model.', opts: RM_OPTS, run: (o, _p, r) => rmCommand(o, r) },
  dpo: { usage: 'rlhf dpo --data FILE --model DIR [options]', summary: 'Tune a model on preferences directly (DPO; K-way rankings with the Plackett-Luce loss), no reward model.', opts: DPO_OPTS, run: (o, _p, r) => dpoCommand(o, r) },
  grpo: { usage: 'rlhf grpo --prompts FILE --policy DIR (--reward-model DIR | --reward-fn FILE.mjs) [options]', summary: 'GRPO: G responses per prompt, group-normalised advantages, no critic (TRL\'s formulas).', opts: GRPO_OPTS, run: (o, _p, r) => grpoCommand(o, r) },
  rloo: { usage: 'rlhf rloo --prompts FILE --policy DIR (--reward-model DIR | --reward-fn FILE.mjs) [options]', summary: 'RLOO: k responses per prompt, a leave-one-out baseline, no critic.', opts: RLOO_OPTS, run: (o, _p, r) => rlooCommand(o, r) },
  ppo: { usage: 'rlhf ppo --prompts FILE --policy SFT_DIR --reward-model RM_DIR [options]', summary: 'PPO against the reward model with a KL penalty to the SFT model (optionally PPO-ptx).', opts: PPO_OPTS, run: (o, _p, r) => ppoCommand(o, r) },
  download: { usage: 'rlhf download MODEL_ID [--revision R]', summary: 'Fetch a model from the Hugging Face Hub into its cache (HF_HOME, HF_ENDPOINT, HF_TOKEN); resumable.', opts: DOWNLOAD_OPTS, run: (o, p, r) => downloadCommand(o, p, r) },
  'merge-lora': { usage: 'rlhf merge-lora --adapter DIR --out DIR [--dtype f32|bf16|f16]', summary: 'Add a LoRA adapter into its base model and write the whole model (Transformers\' layout).', opts: MERGE_LORA_OPTS, run: (o, _p, r) => mergeLoraCommand(o, r) },
  cost: { usage: 'rlhf cost --model M --tokens N [--gpu local|a100|h100|h200] | rlhf cost serve --model M --daily-users U --gpu G', summary: 'FLOPs, time, GPU-hours, energy and dollars of training (at this machine\'s measured speed or on GPUs), or of serving a chat model.', opts: COST_OPTS, run: (o, p, r) => costCommand(o, p, r) },
  submit: { usage: 'rlhf submit [--partition P] [--time T] [--cpus-per-task N] [--gpus-per-node G] [--mem M] [--ssh HOST] [--sweep KEY=V1,V2] [--seeds N] [--wait] -- <stage command | pipeline | resume RUN_DIR>', summary: 'Run a stage as a Slurm job (a pipeline as a chain of jobs, a sweep as a job array), writing into the same runs folder.', opts: SUBMIT_OPTS, run: (o, p, r) => submitCommand(o, p, r) },
  jobs: { usage: 'rlhf jobs [--runs-dir DIR] [--watch]', summary: 'The cluster runs and their Slurm states (PENDING with the reason, RUNNING on which node, COMPLETED, FAILED with the error).', opts: JOBS_OPTS, run: (o, p, r) => jobsCommand(o, p, r) },
  cancel: { usage: 'rlhf cancel RUN_DIR...', summary: 'Cancel a cluster run\'s job (scancel); the stage checkpoints first.', opts: CANCEL_OPTS, run: (o, p, r) => cancelCommand(o, p, r) },
  export: { usage: 'rlhf export RUN_DIR --for trl|openrlhf --out DIR', summary: 'The run\'s data, model and launch scripts (local and Slurm) for TRL 1.9 or OpenRLHF 0.11, with its hyperparameters in their flags.', opts: EXPORT_OPTS, run: (o, p, r) => exportCommand(o, p, r) },
  import: { usage: 'rlhf import DIR [--name NAME] [--stage STAGE]', summary: 'Bring a model a distributed trainer wrote (Hugging Face folder or LoRA adapter) into models/, after checking it loads and scores text; its training log there (TensorBoard event files, or TRL\'s trainer_state.json) becomes a run the dashboard shows. A logging dir alone brings the log alone.', opts: IMPORT_OPTS, run: (o, p, r) => importCommand(o, p, r) },
  resume: { usage: 'rlhf resume RUN_DIR', summary: 'Continue a cancelled or interrupted run from its last checkpoint.', opts: RESUME_OPTS, run: (o, p, r) => resumeCommand(o, p, r) },
  generate: { usage: 'rlhf generate --model DIR --prompt TEXT [options]', summary: 'Sample responses from a model.', opts: GENERATE_OPTS, run: (o, _p, r) => generateCommand(o, r) },
  logprobs: { usage: 'rlhf logprobs --model DIR (--text TEXT | --ids 3,17,256) --json', summary: 'Per-token log-probabilities: logprobs[i] = log p(tokens[i+1] | tokens[0..i]).', opts: LOGPROBS_OPTS, run: (o, _p, r) => logprobsCommand(o, r) },
  bench: { usage: 'rlhf bench train|generate [options] | rlhf bench index FILE', summary: 'Training tokens/s and model FLOP/s, generation tokens/s with and without the cache, or dataset indexing MB/s.', opts: BENCH_OPTS, run: (o, p, r) => benchCommand(o, p, r) },
  backends: { usage: 'rlhf backends [--json]', summary: 'Every backend (CUDA, WebGPU, native CPU, wasm, JS): whether it starts here, why not, the GPU adapter and its limits, and which one auto takes.', opts: BACKENDS_OPTS, run: (o) => backendsCommand(o) },
  validate: { usage: 'rlhf validate FILE... [--json]', summary: 'Check datasets: one FILE:LINE: message per problem; exit 0 only when all are valid.', opts: VALIDATE_OPTS, run: (o, p, r) => validateCommand(o, p, r) },
  stats: { usage: 'rlhf stats FILE [--eval FILE] [--json]', summary: 'Dataset statistics: lengths, K and ties, categories, annotators, train/eval leaks.', opts: STATS_OPTS, run: (o, p) => statsCommand(o, p) },
  convert: { usage: 'rlhf convert FILE --to KIND --out NEW_FILE', summary: 'Rankings to TRL pairwise, HH transcripts to native, messages <-> prompt/response.', opts: CONVERT_OPTS, run: (o, p) => convertCommand(o, p) },
  agreement: { usage: 'rlhf agreement FILE [--json]', summary: "Inter-annotator agreement: pairwise, Kendall's tau-b per pair, Krippendorff's alpha.", opts: AGREEMENT_OPTS, run: (o, p) => agreementCommand(o, p) },
  compare: { usage: 'rlhf compare --models A,B[,C...] --prompts FILE [--name NAME]', summary: 'Make a blind side-by-side evaluation: one response of each of two models per prompt, sides at random.', opts: COMPARE_OPTS, run: (o, _p, r) => compareCommand(o, r) },
  evaluate: { usage: 'rlhf evaluate VOTES.rm.jsonl [--judge rm|gold --items ITEMS] [--json]', summary: 'Blind evaluation results: win rates with 95% intervals, Bradley-Terry ratings; or let a judge vote.', opts: EVALUATE_OPTS, run: (o, p, r) => evaluateCommand(o, p, r) },
  pipeline: { usage: 'rlhf pipeline [--out DIR] [--algos ppo,dpo,grpo,rloo]', summary: 'The whole recipe on the example workspace: pretrain, SFT, reward model, PPO, DPO, GRPO, RLOO, held-out evaluation.', opts: PIPELINE_OPTS, run: (o, _p, r) => pipelineCommand(o, r) },
  demo: { usage: 'rlhf demo [--out DIR]', summary: 'The same as rlhf pipeline (what npm run demo runs).', opts: PIPELINE_OPTS, run: (o, _p, r) => pipelineCommand(o, r) },
};

function topHelp(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `rlhf — the InstructGPT recipe on your own machine\n\nUsage: rlhf <command> [options]   (rlhf <command> --help for its options)\n\nCommands:\n${rows.join('\n')}\n`;
}

/** Runs one command with the given reporter; returns the exit code. Used by the CLI and the worker. */
export async function runCommand(argv: string[], reporterFor: (json: boolean) => Reporter, onError: (msg: string) => void): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topHelp());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    onError(`rlhf: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return 2;
  }
  try {
    const { opts, positional } = parseArgs(name, rest, cmd.opts);
    if (opts.help) {
      process.stdout.write(helpText(cmd.usage, cmd.summary, cmd.opts));
      return 0;
    }
    const code = await cmd.run(opts, positional, reporterFor(Boolean(opts.json)));
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (process.env.RLHF_DEBUG) console.error(e);
    onError(`rlhf ${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

export function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  return runCommand(argv, makeReporter, (msg) => {
    if (json) process.stdout.write(JSON.stringify({ type: 'error', message: msg }) + '\n');
    process.stderr.write(msg + '\n');
  });
}
