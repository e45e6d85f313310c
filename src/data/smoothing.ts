/**
 * TensorBoard's smoothing: a debiased exponential moving average. With weight w,
 *   last = last * w + (1 - w) * x,   shown = last / (1 - w^n)
 * where n counts the finite points so far; NaN and infinities pass through untouched (and do not
 * move the average). The debiasing keeps the first points from being dragged toward 0.
 */
export function smooth(values: ArrayLike<number>, weight: number): Float64Array {
  const w = Math.min(Math.max(weight, 0), 0.999);
  const out = new Float64Array(values.length);
  let last = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isFinite(x)) {
      out[i] = x;
      continue;
    }
    last = last * w + (1 - w) * x;
    n++;
    out[i] = last / (1 - Math.pow(w, n));
  }
  return out;
}
