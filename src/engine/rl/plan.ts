/**
 * The passes an RL iteration makes, for the cost estimate (cost.ts): the rollout (the prompts
 * read once, then one position at a time for up to maxNewTokens), the frozen models' forward
 * passes over the padded rollout (the policy's own log-probabilities before the update, the
 * reference's, the reward model's, the critic's values), and the update's forward and backward
 * passes of the policy (and critic) for each epoch. Responses are counted at their limit: an
 * upper bound that a run's actual figures correct (rollouts are padded to their longest response,
 * so only generation shrinks with early ends).
 */
import { ModelShape, Pass, PlannedModel, shapeOfConfig } from '../cost';

export interface RlPlan {
  iterations: number;
  /** Responses per iteration. */
  rows: number;
  /** Mean prompt tokens. */
  promptTokens: number;
  maxNewTokens: number;
  /** Passes of the update over each rollout. */
  epochs: number;
  policy: PlannedModel;
  /** A reference model's forward pass (PPO's KL; GRPO/RLOO with beta > 0). */
  reference: boolean;
  rm?: { trunk: PlannedModel };
  critic?: { trunk: PlannedModel };
}

/** A reward model's trunk: its hidden states are read, not the LM head. */
function scorerShape(m: { trunk: PlannedModel }, name: string): ModelShape {
  const s = shapeOfConfig(m.trunk.config, name);
  return { ...s, params: s.params - m.trunk.config.vocab_size * m.trunk.config.n_embd };
}

export function rlPasses(p: RlPlan): Pass[] {
  if (p.iterations <= 0) return [];
  const policy = shapeOfConfig(p.policy.config, 'policy');
  const n = p.iterations * p.rows, T = p.promptTokens + p.maxNewTokens;
  const lora = p.policy.lora?.numParameters;
  const out: Pass[] = [
    { what: 'rollout: prompts', kind: 'forward', model: policy, tokens: n * p.promptTokens, context: p.promptTokens },
    { what: 'rollout: responses', kind: 'generate', model: policy, tokens: n * p.maxNewTokens, context: p.promptTokens + p.maxNewTokens / 2 },
    { what: 'policy log-probabilities', kind: 'forward', model: policy, tokens: n * T, context: T },
  ];
  if (p.reference) out.push({ what: 'reference log-probabilities', kind: 'forward', model: policy, tokens: n * T, context: T });
  if (p.rm) out.push({ what: 'reward model', kind: 'forward', model: scorerShape(p.rm, 'reward model'), tokens: n * T, context: T });
  if (p.critic) out.push({ what: 'critic values', kind: 'forward', model: scorerShape(p.critic, 'critic'), tokens: n * T, context: T });
  out.push({ what: 'policy update', kind: 'train', model: policy, tokens: p.epochs * n * T, context: T, loraParams: lora });
  if (p.critic) out.push({ what: 'critic update', kind: 'train', model: scorerShape(p.critic, 'critic'), tokens: p.epochs * n * T, context: T, loraParams: p.critic.trunk.lora ? p.critic.trunk.lora.numParameters + 2 : undefined });
  // the first pass's model sets the speed looked up: the policy
  return out;
}
