/**
 * Generalised advantage estimation (Schulman et al. 2016) over one response:
 *   delta_t = r_t + gamma * V_{t+1} - V_t,   A_t = delta_t + gamma * lambda * A_{t+1},
 * with V after the last token = 0 (the episode ends), and returns R_t = A_t + V_t (the value
 * model's targets). InstructGPT's setting: gamma = 1, lambda = 0.95.
 */
export function gae(rewards: number[], values: number[], gamma = 1, lambda = 0.95): { advantages: number[]; returns: number[] } {
  const L = rewards.length;
  const advantages = new Array<number>(L);
  let next = 0, nextValue = 0;
  for (let t = L - 1; t >= 0; t--) {
    const delta = rewards[t] + gamma * nextValue - values[t];
    next = delta + gamma * lambda * next;
    advantages[t] = next;
    nextValue = values[t];
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]) };
}

/**
 * (x - mean) / sqrt(var + 1e-8) over all values given (advantage whitening), with the unbiased
 * variance (n - 1), as TRL's masked_whiten computes it.
 */
export function whiten(xs: number[], shiftMean = true): number[] {
  const n = xs.length;
  if (n === 0) return [];
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const inv = 1 / Math.sqrt(variance + 1e-8);
  return xs.map((x) => (shiftMean ? (x - mean) * inv : (x - mean) * inv + mean));
}
