/**
 * `rlhf export --for trl|openrlhf RUN --out DIR`: what the distributed trainer needs to redo a run
 * of ours at scale, in one folder:
 *   data/        the run's dataset in the trainer's format (handoff/data.ts)
 *   model/       the model the run started from (a Hugging Face folder, copied)
 *   reward_model/  for PPO, GRPO and RLOO: the reward model the run scored with
 *   train.sh     the launch command with the run's hyperparameters in the trainer's flags
 *   train.slurm.sh  the same under sbatch across $SLURM_NNODES nodes (rlhf submit --script submits it)
 *   README.md    what each file is and what did not translate one to one
 * Refused with one line: a model Transformers cannot load (this project's character tokenizer),
 * a LoRA adapter as the model (merge it first), a reward function file, PPO for TRL.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RunDir, RunInfo } from '../data/run';
import { readRegularFile } from '../data/durable';
import { ExportPlan, LoraHyper, RlHyper, STAGES, Stage, TrainHyper, TrainerCommand } from './plan';
import { preferenceRows, promptRows, sftRows } from './data';
import { TRL_VERSION, trlCommand } from './trl';
import { OPENRLHF_VERSION, openrlhfCommand } from './openrlhf';
import { shellQuote } from '../cluster/slurm';

export type Trainer = 'trl' | 'openrlhf';

const readJson = (f: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readRegularFile(f, 16 << 20).toString('utf8'));
  } catch {
    return undefined;
  }
};

/** A model folder the trainers can load: config.json, weights, a Hugging Face tokenizer. */
export function checkHfModel(dir: string, what: string): { chat: boolean; maxLen: number } {
  if (fs.existsSync(path.join(dir, 'adapter_config.json'))) throw new Error(`${what} ${dir} is a LoRA adapter: merge it into its base first (rlhf merge-lora --adapter ${dir} --out merged) and export a run on the merged model`);
  const config = readJson(path.join(dir, 'config.json'));
  if (!config) throw new Error(`${what} ${dir} has no readable config.json`);
  const hasTokenizer = fs.existsSync(path.join(dir, 'tokenizer.json')) || (fs.existsSync(path.join(dir, 'vocab.json')) && fs.existsSync(path.join(dir, 'merges.txt')));
  if (config.tokenizer === 'char' || !hasTokenizer)
    throw new Error(`Transformers cannot load ${what} of this run (it uses this project's character tokenizer): export a run on a Hugging Face model (rlhf download Qwen/Qwen2.5-0.5B-Instruct, then train from it); ${what}: ${dir}`);
  const tc = readJson(path.join(dir, 'tokenizer_config.json'));
  const maxLen = Number(config.max_position_embeddings ?? config.n_positions ?? 2048);
  return { chat: Boolean(tc && tc.chat_template), maxLen: Math.min(maxLen, 4096) };
}

function copyModel(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) {
    const src = path.join(from, f);
    const st = fs.statSync(src);
    if (!st.isFile()) continue;
    if (!/\.(json|safetensors|txt|model|jinja)$/.test(f) || f === 'trainer_state.json' || f.startsWith('optimizer')) continue;
    fs.copyFileSync(src, path.join(to, f));
  }
}

function writeJsonl(file: string, rows: unknown[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

const q = shellQuote;

/** A command as readable bash: one flag (with its values) per line. */
function commandText(c: TrainerCommand, extra: string[] = []): string {
  const lines: string[][] = [];
  for (const a of c.args) {
    if (a.startsWith('--') || !lines.length) lines.push([a]);
    else lines[lines.length - 1].push(a);
  }
  return [c.launcher.map(q).join(' '), ...lines.map((l) => l.map(q).join(' ')), ...extra].join(' \\\n  ');
}

function header(info: RunInfo, trainer: Trainer, c: TrainerCommand): string[] {
  const version = trainer === 'trl' ? `TRL ${TRL_VERSION}` : `OpenRLHF ${OPENRLHF_VERSION}`;
  return [
    '#!/bin/bash',
    `# Run ${info.id} (${info.stage}) of RLHF Studio, for ${version}: the flags are those that version defines.`,
    `# Exported on ${new Date().toISOString()}. Paths are relative to this folder.`,
    ...c.notes.map((n) => `# - ${n}`),
  ];
}

function localScript(info: RunInfo, trainer: Trainer, c: TrainerCommand): string {
  const ray = c.launcher[0] === 'ray';
  const accel = trainer === 'trl' ? ['--accelerate_config', 'zero2'] : [];
  return [
    ...header(info, trainer, c),
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    ...(ray ? ['# a Ray head on this machine when none is running (ray stop ends it)', 'ray status >/dev/null 2>&1 || ray start --head --dashboard-host 127.0.0.1'] : []),
    commandText(c, accel.length ? [accel.join(' ')] : []),
    '',
  ].join('\n');
}

function slurmScript(info: RunInfo, trainer: Trainer, c: TrainerCommand): string {
  const head = header(info, trainer, c);
  const sbatch = [
    `#SBATCH --job-name=${trainer}-${info.id}`,
    '#SBATCH --nodes=1',
    '#SBATCH --ntasks-per-node=1',
    '#SBATCH --gpus-per-node=8',
    '#SBATCH --cpus-per-task=32',
    '#SBATCH --time=24:00:00',
    '#SBATCH --output=slurm-%j.out',
    '# more nodes: --nodes=N; every line below reads the allocation from Slurm\'s variables',
  ];
  const common = ['set -euo pipefail', 'cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"', 'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)', 'GPUS=${SLURM_GPUS_ON_NODE:-8}'];
  let body: string[];
  if (c.launcher[0] === 'ray') {
    const submit = commandText({ ...c, launcher: c.launcher.map((w) => (w.startsWith('--address=') ? '--address=http://$MASTER_ADDR:8265' : w)) }, ['--actor.num_nodes "$SLURM_NNODES" --actor.num_gpus_per_node "$GPUS"']);
    body = [
      '# a Ray head on the first node, a worker on each other node, then the job',
      'srun --nodes=1 --ntasks=1 -w "$MASTER_ADDR" ray start --head --node-ip-address="$MASTER_ADDR" --num-gpus="$GPUS" --block &',
      'sleep 20',
      'if [ "$SLURM_NNODES" -gt 1 ]; then',
      '  srun --nodes=$((SLURM_NNODES - 1)) --ntasks=$((SLURM_NNODES - 1)) --exclude="$MASTER_ADDR" ray start --address="$MASTER_ADDR:6379" --num-gpus="$GPUS" --block &',
      '  sleep 20',
      'fi',
      // the job's address is the head's, not 127.0.0.1
      submit.replace(q('--address=http://$MASTER_ADDR:8265'), '"--address=http://$MASTER_ADDR:8265"'),
    ];
  } else if (trainer === 'trl') {
    body = [
      '# one accelerate launcher per node (TRL\'s CLI passes these to accelerate launch)',
      `srun bash -c '${c.launcher.join(' ')} "$@" --accelerate_config zero2 --num_machines "$SLURM_NNODES" --machine_rank "$SLURM_NODEID" --main_process_ip "$MASTER_ADDR" --main_process_port 29500 --num_processes $((SLURM_NNODES * GPUS))' _ \\`,
      '  ' + commandText({ launcher: [], args: c.args, notes: [] }).replace(/^ \\\n {2}/, ''),
    ];
  } else {
    body = [
      '# one torchrun per node',
      `srun bash -c 'torchrun --nnodes "$SLURM_NNODES" --nproc_per_node "$GPUS" --node_rank "$SLURM_NODEID" --master_addr "$MASTER_ADDR" --master_port 29500 -m ${c.launcher[2]} "$@"' _ \\`,
      '  ' + commandText({ launcher: [], args: c.args, notes: [] }).replace(/^ \\\n {2}/, ''),
    ];
  }
  return [head[0], ...sbatch, ...head.slice(1), ...common, ...body, ''].join('\n');
}

function plan(info: RunInfo, run: string): Omit<ExportPlan, 'model' | 'data' | 'chat' | 'maxLen' | 'rows'> & { modelDir: string; rewardDir?: string; dataFile: string } {
  const stage = info.stage as Stage;
  if (!STAGES.includes(stage)) throw new Error(`${run} is a ${info.stage} run: export takes ${STAGES.join(', ')} runs`);
  const c = info.config as Record<string, unknown>;
  const lora = c.lora && typeof c.lora === 'object' ? (c.lora as LoraHyper) : undefined;
  if (stage === 'sft' || stage === 'rm' || stage === 'dpo') {
    if (!info.parent_model) throw new Error(`${run}'s run.json names no parent model`);
    return { stage, run, modelDir: info.parent_model, dataFile: String(c.data), train: c.train as TrainHyper, lora, ...(stage === 'dpo' ? { dpo: c.dpo as ExportPlan['dpo'] } : {}) };
  }
  if (c.reward_fn) throw new Error(`${run} scored with a JavaScript reward function (${c.reward_fn}); the trainers need a reward model or their own Python function: export a run that used --reward-model`);
  const s = (c[stage] ?? {}) as Record<string, number & string>;
  const rl: RlHyper = stage === 'ppo'
    ? { iterations: s.iterations, promptsPerStep: s.promptsPerRollout, samplesPerPrompt: s.samplesPerPrompt, maxNewTokens: s.maxNewTokens, temperature: s.temperature, lr: s.lr, beta: s.klCoef, seed: s.seed, ppoEpochs: s.ppoEpochs, minibatches: s.minibatches, valueLr: s.valueLr, clip: s.clip, valueClip: s.valueClip, gamma: s.gamma, lambda: s.lambda, klTarget: s.klTarget, klHorizon: s.klHorizon, klEstimator: s.klEstimator }
    : { iterations: s.iterations, promptsPerStep: s.promptsPerStep, samplesPerPrompt: s.numGenerations, maxNewTokens: s.maxNewTokens, temperature: s.temperature, lr: s.lr, beta: s.beta, seed: s.seed, numIterations: s.numIterations, epsLow: s.epsLow, epsHigh: s.epsHigh, lossType: s.lossType, scaleRewards: s.scaleRewards };
  return { stage, run, modelDir: String(c.policy), rewardDir: String(c.reward_model), dataFile: String(c.prompts), rl, lora };
}

export interface ExportResult {
  files: string[];
  plan: ExportPlan;
  command: TrainerCommand;
}

export function exportRun(runDir: string, trainer: Trainer, out: string): ExportResult {
  const info = new RunDir(runDir).read();
  const p = plan(info, runDir);
  const model = checkHfModel(p.modelDir, 'the model');
  if (p.rewardDir) checkHfModel(p.rewardDir, 'the reward model');
  if (fs.existsSync(out) && fs.readdirSync(out).length) throw new Error(`${out} is not empty: choose a new folder for the export`);
  // the trainer's command first: a combination it cannot take fails before anything is written
  const probe: ExportPlan = { ...p, model: 'model', data: 'data', chat: model.chat, maxLen: model.maxLen, rows: 1 };
  (trainer === 'trl' ? trlCommand : openrlhfCommand)(probe, 'output');
  let rows: Record<string, unknown>[];
  let margins = false;
  if (p.stage === 'sft') {
    const r = sftRows(p.dataFile, model.chat);
    rows = trainer === 'trl' ? r.trl : r.openrlhf;
  } else if (p.stage === 'rm' || p.stage === 'dpo') {
    rows = preferenceRows(p.dataFile, model.chat).rows;
    margins = rows.some((r) => r.margin !== undefined);
  } else rows = promptRows(p.dataFile, model.chat);
  const name = p.stage === 'sft' ? 'sft' : p.stage === 'rm' || p.stage === 'dpo' ? 'preferences' : 'prompts';
  // TRL reads a folder of JSON lines (--dataset_name); OpenRLHF a file
  const dataRel = trainer === 'trl' ? path.join('data', name) : path.join('data', `${name}.jsonl`);
  const files: string[] = [];
  writeJsonl(trainer === 'trl' ? path.join(out, dataRel, 'train.jsonl') : path.join(out, dataRel), rows);
  files.push(dataRel);
  copyModel(p.modelDir, path.join(out, 'model'));
  files.push('model');
  if (p.rewardDir) {
    copyModel(p.rewardDir, path.join(out, 'reward_model'));
    files.push('reward_model');
  }
  const full: ExportPlan = { ...p, model: 'model', ...(p.rewardDir ? { rewardModel: 'reward_model' } : {}), data: dataRel, chat: model.chat, maxLen: model.maxLen, rows: rows.length, margins };
  const command = (trainer === 'trl' ? trlCommand : openrlhfCommand)(full, 'output');
  fs.writeFileSync(path.join(out, 'train.sh'), localScript(info, trainer, command), { mode: 0o755 });
  fs.writeFileSync(path.join(out, 'train.slurm.sh'), slurmScript(info, trainer, command), { mode: 0o755 });
  files.push('train.sh', 'train.slurm.sh');
  const version = trainer === 'trl' ? `TRL ${TRL_VERSION}` : `OpenRLHF ${OPENRLHF_VERSION}`;
  fs.writeFileSync(path.join(out, 'README.md'), [
    `# ${info.id} (${info.stage}) for ${version}`,
    '',
    `Exported by \`rlhf export --for ${trainer}\` from ${runDir}.`,
    '',
    `- \`${dataRel}\`: ${rows.length} rows from ${p.dataFile}${model.chat ? ' (conversations: the trainer renders them with the model\'s chat template)' : ' (plain text, as our stages show it to the model)'}`,
    '- `model/`: the model the run started from' + (p.rewardDir ? '; `reward_model/`: the reward model it scored with' : ''),
    '- `train.sh`: the launch command on this machine; `train.slurm.sh`: the same under sbatch (`rlhf submit --script train.slurm.sh`)',
    `- the trainer writes its model to \`output/\`; \`rlhf import output\` brings it back to the editor${trainer === 'trl' ? ' (and its log, output/checkpoint-N/trainer_state.json, as a run the dashboard shows)' : ''}`,
    '',
    ...(command.notes.length ? ['What does not translate one to one:', '', ...command.notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n'));
  files.push('README.md');
  return { files, plan: full, command };
}
