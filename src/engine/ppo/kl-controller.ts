/**
 * The KL coefficient beta of the per-token penalty -beta * KL(pi || pi_SFT): fixed, or adapted
 * toward a target KL with Ziegler et al.'s (2019) proportional controller:
 *   e = clip(KL / target - 1, -0.2, 0.2),   beta <- beta * (1 + e * n_steps / horizon)
 */
export interface KlController {
  value: number;
  update(currentKl: number, nSteps: number): void;
}

export class FixedKl implements KlController {
  constructor(public value: number) {}
  update(_currentKl?: number, _nSteps?: number): void {}
}

export class AdaptiveKl implements KlController {
  constructor(public value: number, readonly target: number, readonly horizon: number) {}

  update(currentKl: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
}

/** Per-token KL estimates from log-probabilities of the sampled token under the policy and the reference. */
export function klEstimate(logp: number, logpRef: number, kind: 'k1' | 'k3'): number {
  const logr = logpRef - logp; // log (pi_ref / pi)
  return kind === 'k1' ? -logr : Math.exp(logr) - 1 - logr;
}

/** A response's KL to the reference: the sum of the per-token estimates the penalty uses (objective/kl reports the same). */
export function sequenceKl(logp: ArrayLike<number>, logpRef: ArrayLike<number>, positions: number[], kind: 'k1' | 'k3'): number {
  return positions.reduce((s, k) => s + klEstimate(logp[k], logpRef[k], kind), 0);
}
