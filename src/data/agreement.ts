/**
 * Inter-annotator agreement on rankings: where several annotators ranked the same prompt and
 * responses, the pairwise agreement (the share of response pairs both order the same way, ties
 * included), Kendall's tau-b per annotator pair, and Krippendorff's alpha over all annotators
 * (ordinal by default). InstructGPT reports about 73% pairwise agreement between its labelers.
 */

/** Kendall's tau-b of two score lists (ties handled as in scipy.stats.kendalltau). */
export function kendallTauB(x: number[], y: number[]): number {
  let concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const dx = Math.sign(x[i] - x[j]), dy = Math.sign(y[i] - y[j]);
      if (dx === 0 && dy === 0) continue;
      if (dx === 0) tiesX++;
      else if (dy === 0) tiesY++;
      else if (dx === dy) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  return denom === 0 ? NaN : (concordant - discordant) / denom;
}

export type Metric = 'nominal' | 'ordinal' | 'interval';

/**
 * Krippendorff's alpha from reliability data: units[u] lists the values the coders gave unit u
 * (missing values left out). alpha = 1 - (n - 1) sum o_ck d2(c, k) / sum n_c n_k d2(c, k), from the
 * coincidence matrix o (each unit with m values adds 1/(m - 1) per ordered pair of its values).
 */
export function krippendorffAlpha(units: number[][], metric: Metric = 'ordinal'): number {
  const pairable = units.filter((u) => u.length >= 2);
  const values = [...new Set(pairable.flat())].sort((a, b) => a - b);
  const idx = new Map(values.map((v, i) => [v, i]));
  const V = values.length;
  const o = Array.from({ length: V }, () => new Float64Array(V));
  for (const u of pairable) {
    for (let a = 0; a < u.length; a++) for (let b = 0; b < u.length; b++) if (a !== b) o[idx.get(u[a])!][idx.get(u[b])!] += 1 / (u.length - 1);
  }
  const nc = o.map((row) => row.reduce((s, x) => s + x, 0));
  const n = nc.reduce((s, x) => s + x, 0);
  const d2 = (c: number, k: number): number => {
    if (metric === 'nominal') return c === k ? 0 : 1;
    if (metric === 'interval') return (values[c] - values[k]) ** 2;
    // ordinal: the marginal mass between the two values, halves at the ends
    const [lo, hi] = c < k ? [c, k] : [k, c];
    let s = 0;
    for (let g = lo; g <= hi; g++) s += nc[g];
    return (s - (nc[lo] + nc[hi]) / 2) ** 2;
  };
  let observed = 0, expected = 0;
  for (let c = 0; c < V; c++) {
    for (let k = 0; k < V; k++) {
      const d = d2(c, k);
      observed += o[c][k] * d;
      expected += nc[c] * nc[k] * d;
    }
  }
  return expected === 0 ? NaN : 1 - ((n - 1) * observed) / expected;
}

export interface RankingByAnnotator {
  prompt: string;
  responses: string[];
  ranks: number[];
  annotator: string;
}

export interface AgreementReport {
  /** Items (prompt + the same set of responses) ranked by at least two annotators. */
  items: number;
  annotators: string[];
  pairwise_agreement: number;
  /** Per annotator pair: mean tau-b over the items both ranked, and how many. */
  kendall_tau_b: { a: string; b: string; tau_b: number; items: number }[];
  krippendorff_alpha_ordinal: number;
}

export function agreement(records: RankingByAnnotator[]): AgreementReport {
  // group by prompt and the set of responses; ranks re-keyed by response text
  const groups = new Map<string, Map<string, Map<string, number>>>();
  const itemResponses = new Map<string, string[]>();
  for (const r of records) {
    const responses = [...r.responses].sort();
    const key = JSON.stringify([r.prompt, responses]);
    itemResponses.set(key, responses);
    if (!groups.has(key)) groups.set(key, new Map());
    const byResp = new Map(r.responses.map((x, i) => [x, r.ranks[i]]));
    groups.get(key)!.set(r.annotator, byResp); // a later ranking by the same annotator replaces an earlier one
  }
  const shared = [...groups].filter(([, m]) => m.size >= 2);
  const annotators = [...new Set(shared.flatMap(([, m]) => [...m.keys()]))].sort();
  let agree = 0, pairs = 0;
  const tau = new Map<string, number[]>();
  const units: number[][] = [];
  for (const [key, byAnn] of shared) {
    const responses = itemResponses.get(key)!;
    const anns = [...byAnn.keys()].sort();
    for (const resp of responses) units.push(anns.map((a) => byAnn.get(a)!.get(resp)!));
    for (let i = 0; i < anns.length; i++) {
      for (let j = i + 1; j < anns.length; j++) {
        const ra = responses.map((x) => byAnn.get(anns[i])!.get(x)!), rb = responses.map((x) => byAnn.get(anns[j])!.get(x)!);
        for (let p = 0; p < responses.length; p++) {
          for (let q = p + 1; q < responses.length; q++) {
            pairs++;
            if (Math.sign(ra[p] - ra[q]) === Math.sign(rb[p] - rb[q])) agree++;
          }
        }
        const k = `${anns[i]}\u0000${anns[j]}`;
        const t = kendallTauB(ra, rb);
        if (!Number.isNaN(t)) tau.set(k, [...(tau.get(k) ?? []), t]);
      }
    }
  }
  return {
    items: shared.length,
    annotators,
    pairwise_agreement: pairs ? agree / pairs : NaN,
    kendall_tau_b: [...tau].map(([k, ts]) => {
      const [a, b] = k.split('\u0000');
      return { a, b, tau_b: ts.reduce((s, x) => s + x, 0) / ts.length, items: ts.length };
    }),
    krippendorff_alpha_ordinal: krippendorffAlpha(units, 'ordinal'),
  };
}
