/** The pipeline's stages, in order, and their display names (pure: the webviews use it too). */
export type Stage = 'pretrain' | 'sft' | 'rm' | 'ppo';
export const STAGES: Stage[] = ['pretrain', 'sft', 'rm', 'ppo'];
export const STAGE_NAMES: Record<Stage, string> = { pretrain: 'Pretraining', sft: 'SFT', rm: 'Reward model', ppo: 'PPO' };

/** Stages of runs: the dataset stages and the training methods that read their datasets (DPO reads RM files). */
const RUN_STAGES = [...STAGES, 'dpo', 'grpo', 'rloo'];
const RUN_STAGE_NAMES: Record<string, string> = { ...STAGE_NAMES, dpo: 'DPO', grpo: 'GRPO', rloo: 'RLOO', external: 'Cluster scripts (rlhf submit --script)' };

export const stageName = (s: string): string => RUN_STAGE_NAMES[s] ?? s;
/** Pipeline order for sorting; unknown stages last. */
export const stageRank = (s: string): number => (RUN_STAGES.includes(s) ? RUN_STAGES.indexOf(s) : RUN_STAGES.length);
