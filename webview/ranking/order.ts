/**
 * A ranking being built, best first, as groups of tied responses: [[2], [0, 3], [1]] means
 * response 3 is best, responses 1 and 4 tie second, response 2 is last. Pure functions; every
 * step returns a new order, so undo is a stack of previous orders.
 */
export type Order = number[][];

export const placed = (o: Order): Set<number> => new Set(o.flat());

/** Puts response i after everything ranked so far (the next key pressed is the next best). */
export function place(o: Order, i: number): Order {
  return placed(o).has(i) ? o : [...o, [i]];
}

/** Joins the last placed group to the rank above it (a tie). */
export function tie(o: Order): Order {
  if (o.length < 2) return o;
  return [...o.slice(0, -2), [...o[o.length - 2], ...o[o.length - 1]]];
}

/**
 * Drag and drop: moves response i to a new rank `at` (0 = best). With `join`, i joins the group
 * at `at` (a tie); otherwise it becomes its own rank there. Positions count the order without i.
 */
export function moveTo(o: Order, i: number, at: number, join = false): Order {
  const rest = o.map((g) => g.filter((x) => x !== i)).filter((g) => g.length);
  const pos = Math.max(0, Math.min(at, rest.length));
  if (join && pos < rest.length) return rest.map((g, j) => (j === pos ? [...g, i] : g));
  return [...rest.slice(0, pos), [i], ...rest.slice(pos)];
}

/** Takes response i out of the ranking (the order is unchanged if it was not ranked). */
export function unrank(o: Order, i: number): Order {
  return placed(o).has(i) ? o.map((g) => g.filter((x) => x !== i)).filter((g) => g.length) : o;
}

/** With one response left unranked, it can only be last: the order is complete. */
export function completed(o: Order, k: number): Order | undefined {
  const p = placed(o);
  if (p.size === k) return o;
  if (p.size === k - 1) return [...o, [[...Array(k).keys()].find((i) => !p.has(i))!]];
  return undefined;
}

/** ranks[i] of response i: 1 is best, tied responses share a rank, no gaps (1, 2, 2, 3). */
export function ranksOf(o: Order, k: number): number[] | undefined {
  const c = completed(o, k);
  if (!c) return undefined;
  const ranks = new Array<number>(k);
  c.forEach((g, r) => g.forEach((i) => (ranks[i] = r + 1)));
  return ranks;
}

/** Each response's rank in a (possibly partial) order, for the cards' badges. */
export function rankOf(o: Order, i: number): number | undefined {
  const r = o.findIndex((g) => g.includes(i));
  return r < 0 ? undefined : r + 1;
}

/** "3 > 1 = 4 > 2" with 1-based response numbers. */
export function describe(o: Order): string {
  return o.map((g) => g.map((i) => i + 1).join(' = ')).join(' > ');
}
