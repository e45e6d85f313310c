/**
 * Seeded pseudo-random numbers, identical on every backend and every run.
 * mulberry32 for uniforms, Box-Muller for normals. The whole state is one
 * uint32, so a trainer can save it in a checkpoint and resume exactly.
 */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal. */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A new 32-bit seed drawn from this stream (for tf ops that take a seed). */
  seed(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
}

/** A seed that depends only on its parts: the stream for (run seed, step, micro-batch, ...). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let x = Math.floor(p) >>> 0;
    for (let i = 0; i < 4; i++) {
      h ^= x & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      x >>>= 8;
    }
  }
  return h >>> 0;
}

/** Fisher-Yates shuffle of 0..n-1. */
export function permutation(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * Visiting order of n items over many epochs: position g of the stream is item
 * order(g), a fresh seeded permutation each epoch. A function of g alone, so a resumed run
 * continues exactly where it stopped in the data.
 */
export function epochOrder(n: number, seed: number): (g: number) => number {
  const perms = new Map<number, number[]>();
  return (g: number) => {
    const epoch = Math.floor(g / n);
    let p = perms.get(epoch);
    if (!p) {
      p = permutation(n, new Rng(deriveSeed(seed, epoch)));
      perms.set(epoch, p);
    }
    return p[g % n];
  };
}
