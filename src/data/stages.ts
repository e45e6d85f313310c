/** The pipeline's stages, in order, and their display names (pure: the webviews use it too). */
export type Stage = 'pretrain' | 'sft' | 'rm' | 'ppo';
export const STAGES: Stage[] = ['pretrain', 'sft', 'rm', 'ppo'];
export const STAGE_NAMES: Record<Stage, string> = { pretrain: 'Pretraining', sft: 'SFT', rm: 'Reward model', ppo: 'PPO' };

export const stageName = (s: string): string => STAGE_NAMES[s as Stage] ?? s;
/** Pipeline order for sorting; unknown stages last. */
export const stageRank = (s: string): number => (STAGES.includes(s as Stage) ? STAGES.indexOf(s as Stage) : STAGES.length);
