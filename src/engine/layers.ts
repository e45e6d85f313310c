/**
 * The GPT-2 building blocks as TensorFlow.js ops with hand-written gradients where that makes
 * the backward pass cheaper. Activations are 2-D [tokens, channels] everywhere except attention.
 *
 * Why custom gradients: the wasm backend runs a plain matMul through XNNPACK (about 35 GFLOP/s
 * here) but any transposed matMul through a naive loop (about 2 GFLOP/s); autodiff of matMul asks
 * for transposed products, so `matMul` below transposes explicitly and multiplies untransposed.
 * On wasm the products themselves are our SIMD kernel (about 50 GFLOP/s, the same bits as XNNPACK).
 *
 * On the wasm backend the norms, activations, bias, attention softmax and cross-entropy run as one
 * fused SIMD kernel each (kernels/fused.ts), forward and backward; the tf.* versions here are the
 * same maths for the other backends, and what the tests compare the kernels with.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAvailable, product, productTransB, runFused } from './kernels/fused';

type Forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
};

/** tf.customGrad with the inputs as an array (the engine passes `save` after them). */
function customOp(f: Forward): (...inputs: tf.Tensor[]) => tf.Tensor {
  type CustomGradFunc = Parameters<typeof tf.customGrad>[0];
  return tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    f(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as CustomGradFunc);
}

/** a [m, k] @ b [k, n], with a backward pass made of untransposed products. */
export const matMul = customOp(([a, b], save) => {
    save([a as tf.Tensor2D, b as tf.Tensor2D]);
    return {
      value: product(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy, saved) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        const dA = productTransB(dy as tf.Tensor2D, sb);
        const dB = product(transpose2d(sa), dy as tf.Tensor2D);
        return [dA, dB];
      },
    };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** A matrix transposed (one tiled kernel on wasm; TensorFlow.js's generic transpose elsewhere). */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  return fusedAvailable() && x.dtype === 'float32' ? (runFused('RlhfTranspose', { x }) as tf.Tensor2D) : tf.transpose(x);
}

/**
 * a [m, k] @ b [k, n] for a b that does not train (a frozen weight under LoRA, a reference
 * model): b is not an input of the op, so the backward pass computes only a's gradient (a's
 * gradient of a [576, 49152] head is 113 MB that frozen weights never need).
 */
export function matMulFrozen(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const f = customOp(([x], save) => {
    save([]);
    return {
      value: product(x as tf.Tensor2D, b),
      gradFunc: (dy) => [productTransB(dy as tf.Tensor2D, b)],
    };
  });
  return f(a) as tf.Tensor2D;
}

/** GPT-2's Conv1D: x [n, in] @ w [in, out] + b [out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return biasAdd(matMul(x, w as tf.Tensor2D), b);
}

/** x [n, C] + b [C]; the bias's gradient is the column sums of dy. */
export function biasAdd(x: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D {
  if (!fusedAvailable()) return tf.add(x, b);
  const f = customOp(([xi, bi], save) => {
    save([]);
    return {
      value: runFused('RlhfBiasAdd', { x: xi, b: bi }) as tf.Tensor,
      gradFunc: (dy) => [dy, runFused('RlhfColSum', { x: dy }) as tf.Tensor],
    };
  });
  return f(x, b) as tf.Tensor2D;
}

/**
 * LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * g + b.
 * Backward (xhat = normalised x, rstd = 1/sqrt(var + eps), C channels):
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * g.
 */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  if (fusedAvailable()) {
    const fused = customOp(([xi, gi, bi], save) => {
      const [y, mean, rstd] = runFused('RlhfLayerNorm', { x: xi, g: gi, b: bi }, { eps }) as tf.Tensor[];
      save([xi, mean, rstd, gi]);
      return {
        value: y,
        gradFunc: (dy, [sx, sm, sr, sg]) => runFused('RlhfNormGrad', { x: sx, mean: sm, rstd: sr, g: sg, dy }, { rms: 0 }) as tf.Tensor[],
      };
    });
    return fused(x, g, b) as tf.Tensor2D;
  }
  const f = customOp(([xi, gi, bi], save) => {
    const mean = tf.mean(xi, -1, true);
    const xc = tf.sub(xi, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, gi]);
    return {
      value: tf.add(tf.mul(xhat, gi), bi),
      gradFunc: (dy, saved) => {
        const [sxhat, srstd, sg] = saved;
        const dxhat = tf.mul(dy, sg);
        const m1 = tf.mean(dxhat, -1, true);
        const m2 = tf.mean(tf.mul(dxhat, sxhat), -1, true);
        const dx = tf.mul(srstd, tf.sub(tf.sub(dxhat, m1), tf.mul(sxhat, m2)));
        const dg = tf.sum(tf.mul(dy, sxhat), 0);
        const db = tf.sum(dy, 0);
        return [dx, dg, db];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GPT-2's tanh-approximate GELU: 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi).
 * Computed as x * sigmoid(2z) with z = c (x + 0.044715 x^3), which is the same function
 * (1 + tanh z = 2 sigmoid(2z)) and runs about 3x faster on wasm, where tanh is slow.
 * d/dx = s + x s (1 - s) * 2c (1 + 3 * 0.044715 x^2), s = sigmoid(2z).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusedAvailable() ? geluFused(x) : geluOps(x);
}

const geluFused = customOp(([x], save) => {
  save([x]);
  return {
    value: runFused('RlhfGelu', { x }) as tf.Tensor,
    gradFunc: (dy, [sx]) => [runFused('RlhfGeluGrad', { x: sx, dy }) as tf.Tensor],
  };
});

const geluOps = customOp(([x], save) => {
  const x2 = tf.square(x);
  const z2 = tf.mul(x, tf.add(tf.mul(x2, 2 * GELU_C * 0.044715), 2 * GELU_C));
  const s = tf.sigmoid(z2);
  save([x, x2, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy, saved) => {
      const [sx, sx2, ss] = saved;
      const dz = tf.add(tf.mul(sx2, 2 * GELU_C * 3 * 0.044715), 2 * GELU_C);
      const ds = tf.mul(ss, tf.sub(1, ss));
      const grad = tf.add(ss, tf.mul(tf.mul(sx, ds), dz));
      return [tf.mul(dy, grad)];
    },
  };
});

/**
 * Mean cross-entropy of logits [n, V] against targets [n], weighted per position (0 = no loss,
 * as for prompt tokens in SFT): sum_i w_i (logsumexp(l_i) - l_i[t_i]) / sum_i w_i.
 * Gradient: (softmax(l_i) - onehot(t_i)) * w_i / sum(w).
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  const [n, V] = logits.shape;
  const wsum = tf.maximum(tf.sum(weights), 1e-12);
  const wn = tf.div(weights, wsum);
  // row i's target as an index into the flattened [n * V] log-probabilities
  const ti = tf.cast(targets, 'int32'); // some callers build targets as float32
  if (fusedAvailable()) {
    const fused = customOp(([l], save) => {
      const [loss, lse] = runFused('RlhfXent', { logits: l, targets: ti, w: wn }) as tf.Tensor[];
      save([l, lse, ti, wn]);
      return {
        value: loss,
        gradFunc: (dy, [sl, slse, st, swn]) => [runFused('RlhfXentGrad', { logits: sl, lse: slse, targets: st, w: swn, dy }) as tf.Tensor],
      };
    });
    return fused(logits) as tf.Scalar;
  }
  const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), ti);
  const f = customOp(([l], save) => {
    const logp = tf.logSoftmax(l);
    // Tensors the backward pass reads must go through save(): the engine disposes the rest.
    save([logp, ti, wn]);
    const nll = tf.neg(tf.gather(tf.reshape(logp, [n * V]), flat));
    return {
      value: tf.sum(tf.mul(nll, wn)),
      gradFunc: (dy, saved) => {
        const [slogp, st, swn] = saved;
        // (softmax - onehot) * w: the one-hot exists only here, for the subtraction
        return [tf.mul(tf.mul(tf.sub(tf.exp(slogp), tf.oneHot(st as tf.Tensor1D, V)), tf.expandDims(swn, 1)), dy)];
      },
    };
  });
  return f(logits) as tf.Scalar;
}

/** Additive causal mask [tq, tk] for queries at positions offset..offset+tq-1: 0 or -1e9. */
export function causalMask(tq: number, tk: number, offset: number): tf.Tensor2D {
  const m = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) if (j > offset + i) m[i * tk + j] = -1e9;
  return tf.tensor2d(m, [tq, tk]);
}

/**
 * Causal self-attention of B sequences of T positions, softmax(q k^T / sqrt(hd) + mask) v, as one
 * fused kernel forward and one backward (no transposes, splits or batched products; the keys past a
 * query are never multiplied). `qkv` is GPT-2's [B*T, 3C] rows holding q, k and v side by side, or
 * Llama's three projections q [B*T, H*hd], k and v [B*T, KV*hd] (query head h reads key/value head
 * h / (H / KV)). Returns y [B*T, H*hd], heads side by side, or undefined where the kernel does not
 * serve (not wasm, a head size not a multiple of 4): the caller then runs its ops. No cache, no
 * dropout: callers decide.
 */
export function fusedAttention(qkv: tf.Tensor2D | [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D], B: number, T: number, H: number, KV: number, hd: number): tf.Tensor2D | undefined {
  if (!fusedAvailable() || hd % 4 !== 0) return undefined;
  const packed = !Array.isArray(qkv);
  const C = H * hd;
  const attrs = {
    B, T, H, KV, hd, scale: 1 / Math.sqrt(hd), packed: packed ? 1 : 0,
    qOff: 0, kOff: packed ? C : 0, vOff: packed ? 2 * C : 0, qStride: packed ? 3 * C : C, kvStride: packed ? 3 * C : KV * hd,
  };
  const f = customOp((ins, save) => {
    const [q, k, v] = packed ? [ins[0], ins[0], ins[0]] : ins;
    const [y, probs] = runFused('RlhfAttention', { q, k, v }, attrs) as tf.Tensor[];
    save([...ins, probs]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sq, sk, sv] = packed ? [saved[0], saved[0], saved[0]] : saved;
        const g = runFused('RlhfAttentionGrad', { q: sq, k: sk, v: sv, probs: saved[saved.length - 1], dy }, attrs);
        return Array.isArray(g) ? g : [g];
      },
    };
  });
  return (packed ? f(qkv) : f(...qkv)) as tf.Tensor2D;
}

/**
 * Attention weights softmax(scale * s + causal mask) over the last axis of scores s [n, rows, Tk],
 * where row r is the query at position offset + (r mod Tq) and sees keys 0..that position
 * (offset undefined: no mask, every key). One kernel forward and one backward on wasm:
 * ds = scale * y (dy - sum(dy y)).
 */
export function causalSoftmax(s: tf.Tensor3D, scale: number, Tq: number, offset: number | undefined): tf.Tensor3D {
  if (fusedAvailable()) {
    const f = customOp(([si], save) => {
      const y = runFused('RlhfSoftmax', { s: si }, { tq: Tq, offset: offset ?? -1, scale }) as tf.Tensor;
      save([y]);
      return { value: y, gradFunc: (dy, [sy]) => [runFused('RlhfSoftmaxGrad', { y: sy, dy }, { scale }) as tf.Tensor] };
    });
    return f(s) as tf.Tensor3D;
  }
  const [n, rows, Tk] = s.shape;
  let att: tf.Tensor = tf.mul(s, scale);
  if (offset !== undefined && Tq > 1) att = tf.reshape(tf.add(tf.reshape(att, [-1, Tq, Tk]), causalMask(Tq, Tk, offset)), [n, rows, Tk]);
  return tf.softmax(att) as tf.Tensor3D;
}

/**
 * RMSNorm over the last axis (Llama): y = x / sqrt(mean(x^2) + eps) * g, no centring, no bias.
 * Backward (xhat = x * rstd): dx = rstd * (dxhat - xhat * mean(dxhat * xhat)), dxhat = dy * g.
 */
export function rmsNorm(x: tf.Tensor2D, g: tf.Tensor, eps: number): tf.Tensor2D {
  if (fusedAvailable()) {
    const fused = customOp(([xi, gi], save) => {
      const [y, rstd] = runFused('RlhfRmsNorm', { x: xi, g: gi }, { eps }) as tf.Tensor[];
      save([xi, rstd, gi]);
      return {
        value: y,
        gradFunc: (dy, [sx, sr, sg]) => {
          // rms: the kernel reads no mean and writes no bias gradient
          const [dx, dg, db] = runFused('RlhfNormGrad', { x: sx, mean: sr, rstd: sr, g: sg, dy }, { rms: 1 }) as tf.Tensor[];
          db.dispose();
          return [dx, dg];
        },
      };
    });
    return fused(x, g) as tf.Tensor2D;
  }
  const f = customOp(([xi, gi], save) => {
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps));
    const xhat = tf.mul(xi, rstd);
    save([xhat, rstd, gi]);
    return {
      value: tf.mul(xhat, gi),
      gradFunc: (dy, saved) => {
        const [sxhat, srstd, sg] = saved;
        const dxhat = tf.mul(dy, sg);
        const m = tf.mean(tf.mul(dxhat, sxhat), -1, true);
        return [tf.mul(srstd, tf.sub(dxhat, tf.mul(sxhat, m))), tf.sum(tf.mul(dy, sxhat), 0)];
      },
    };
  });
  return f(x, g) as tf.Tensor2D;
}

/**
 * SwiGLU (Shazeer 2020), Llama's MLP gate: silu(a) * b with silu(a) = a * sigmoid(a).
 * d/da = b * s (1 + a (1 - s)), d/db = silu(a), s = sigmoid(a).
 */
export function swiglu(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return fusedAvailable() ? swigluFused(a, b) : swigluOps(a, b);
}

const swigluFused = customOp(([a, b], save) => {
  save([a, b]);
  return {
    value: runFused('RlhfSwiGlu', { a, b }) as tf.Tensor,
    gradFunc: (dy, [sa, sb]) => runFused('RlhfSwiGluGrad', { a: sa, b: sb, dy }) as tf.Tensor[],
  };
});

const swigluOps = customOp(([a, b], save) => {
  const s = tf.sigmoid(a);
  const silu = tf.mul(a, s);
  save([a, b, s, silu]);
  return {
    value: tf.mul(silu, b),
    gradFunc: (dy, saved) => {
      const [sa, sb, ss, ssilu] = saved;
      const dsilu = tf.mul(ss, tf.add(1, tf.mul(sa, tf.sub(1, ss))));
      return [tf.mul(dy, tf.mul(sb, dsilu)), tf.mul(dy, ssilu)];
    },
  };
});

/**
 * Gradients taken inside a backward pass (activation checkpointing, the chunked head): the
 * engine's tape of the outer pass is set aside (a gradient at depth 0 replaces the tape, then
 * clears it) and put back after.
 */
export function innerVariableGrads(f: () => tf.Scalar, vars: tf.Variable[]): tf.NamedTensorMap {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    return tf.variableGrads(f, vars).grads;
  } finally {
    state.activeTape = outer;
  }
}

/**
 * h @ E^T for a tied head. A few rows (decoding steps) against a large vocabulary take
 * (E h^T)^T: an untransposed product with E as it is, then a transpose of a [V, rows] result
 * (on wasm at SmolLM2's [49152, 576] table: 16 ms for one row against 29 ms for the transposed
 * product, 19 against 92 for four, 40 against 341 for sixteen; transposing E itself takes
 * about 550 ms). Many rows (a training batch) transpose E once and take the untransposed product.
 * Small vocabularies (the character models) keep the one path they had.
 */
export function tiedHead(h: tf.Tensor2D, E: tf.Tensor): tf.Tensor2D {
  const e = E as tf.Tensor2D;
  if (h.shape[0] <= 64 && e.shape[0] >= 4096) return tf.transpose(matMul(e, tf.transpose(h) as tf.Tensor2D)) as tf.Tensor2D;
  return matMul(h, tf.transpose(e) as tf.Tensor2D);
}
