/**
 * TensorBoard's smoothing: a debiased exponential moving average. With weight w,
 *   last = last * w + (1 - w) * x,   shown = last / (1 - w^n)
 * where n counts the finite points so far; NaN and infinities pass through untouched (and do not
 * move the average). The debiasing keeps the first points from being dragged toward 0.
 */
export function smooth(values: ArrayLike<number>, weight: number): Float64Array {
  const s = new EmaSmoother(weight);
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = s.next(values[i]);
  return out;
}

/** The same average one point at a time, for a series that grows (the dashboard extends it as points arrive). */
export class EmaSmoother {
  private last = 0;
  private n = 0;
  readonly weight: number;

  constructor(weight: number) {
    this.weight = Math.min(Math.max(weight, 0), 0.999);
  }

  next(x: number): number {
    if (!Number.isFinite(x)) return x;
    this.last = this.last * this.weight + (1 - this.weight) * x;
    this.n++;
    return this.last / (1 - Math.pow(this.weight, this.n));
  }
}
