/**
 * M4 decimation for line charts: with far more points than pixel columns, each column keeps its
 * first and last point and the minimum and maximum of every series, which draws the same picture
 * as all the points (Jugel et al., "M4", VLDB 2014). Smoothing is applied before, on all points.
 */

/**
 * Indices to keep, ascending, for x (sorted ascending) and the series ys, over the x range
 * [lo, hi] split into `columns` buckets; every index when there are few points anyway.
 */
export function m4(x: ArrayLike<number>, ys: ArrayLike<number | null>[], columns: number, lo = -Infinity, hi = Infinity): number[] {
  let start = 0, end = x.length;
  while (start < end && x[start] < lo) start++;
  while (end > start && x[end - 1] > hi) end--;
  // one point beyond each edge keeps the line running to the border of a zoomed view
  start = Math.max(0, start - 1);
  end = Math.min(x.length, end + 1);
  const n = end - start;
  if (n <= 4 * columns) return Array.from({ length: n }, (_, i) => start + i);
  const x0 = x[start], span = x[end - 1] - x0 || 1;
  const S = ys.length;
  const mark = new Uint8Array(n); // kept points, marked, then listed in order (no sorting)
  const minI = new Int32Array(S), maxI = new Int32Array(S), minV = new Float64Array(S), maxV = new Float64Array(S);
  let bucket = -1, last = start;
  const flush = () => {
    mark[last - start] = 1;
    for (let k = 0; k < S; k++) {
      if (minI[k] >= 0) mark[minI[k] - start] = 1;
      if (maxI[k] >= 0) mark[maxI[k] - start] = 1;
    }
  };
  const scale = columns / span;
  for (let i = start; i < end; i++) {
    let b = Math.floor((x[i] - x0) * scale);
    if (b >= columns) b = columns - 1;
    if (b !== bucket) {
      if (bucket >= 0) flush();
      bucket = b;
      mark[i - start] = 1; // the column's first point
      minI.fill(-1);
      maxI.fill(-1);
    }
    last = i;
    for (let k = 0; k < S; k++) {
      const v = ys[k][i];
      if (v === null || v !== v) continue; // null or NaN
      if (minI[k] < 0 || v < minV[k]) (minI[k] = i), (minV[k] = v);
      if (maxI[k] < 0 || v > maxV[k]) (maxI[k] = i), (maxV[k] = v);
    }
  }
  flush();
  const keep: number[] = [];
  for (let j = 0; j < n; j++) if (mark[j]) keep.push(start + j);
  return keep;
}
