// Fused kernels for the WebAssembly backend, in AssemblyScript with 128-bit SIMD (compiled by
// scripts/build.mjs into dist/fused.wasm). The module imports TensorFlow.js's own wasm memory, so
// every pointer below is a tensor's byte offset in that heap: no copies in or out. One call does
// what TensorFlow.js does in five to fifteen ops (each a dispatch, an allocation and a pass over
// memory). The module has no data segment and allocates nothing: it must never write outside the
// buffers it is given (the build checks it has no data section).
//
// Conventions: float32 row-major; `rows` x `C` matrices; f32x4 over the part of a row divisible by
// four, then a scalar tail. The maths of each kernel is written beside it and in src/engine/layers.ts,
// whose unfused versions the tests compare these with.

// exp(x) without a lookup table (AssemblyScript's Mathf.exp brings one as a data segment, which
// would land in TensorFlow.js's heap): x = k ln2 + r, |r| <= ln2/2, exp(r) by Cephes' expf
// polynomial, 2^k built in the exponent bits. Relative error about 1e-7; -87.3 gives 0.
@inline function expf(x: f32): f32 {
  x = min<f32>(88.3, x);
  if (x < -87.3) return 0;
  const k = Mathf.floor(x * 1.44269504 + 0.5);
  const r = x - k * 0.693359375 + k * 2.12194440e-4;
  let p: f32 = 1.9875691500e-4;
  p = p * r + 1.3981999507e-3;
  p = p * r + 8.3334519073e-3;
  p = p * r + 4.1665795894e-2;
  p = p * r + 1.6666665459e-1;
  p = p * r + 5.0000001201e-1;
  return (p * r * r + r + 1) * reinterpret<f32>((<i32>k + 127) << 23);
}

// The same, four lanes at a time, with the same bits. pmin/pmax are one instruction each where
// min/max (NaN-propagating) are several; with a constant operand both give the same lanes (a NaN
// lane stays NaN). 2^k: k + 127 is in [1, 254], so adding 1.5 * 2^23 to it leaves it in the low
// bits of the float's pattern, which the shift by 23 moves into the exponent (no float-to-int
// conversion, which the x64 backend expands into a fix-up sequence).
@inline function exp4(x: v128): v128 {
  x = f32x4.pmin(x, f32x4.splat(88.3));
  const under = f32x4.lt(x, f32x4.splat(-87.3));
  x = f32x4.pmax(x, f32x4.splat(-87.3));
  const k = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504)), f32x4.splat(0.5)));
  const r = f32x4.add(f32x4.sub(x, f32x4.mul(k, f32x4.splat(0.693359375))), f32x4.mul(k, f32x4.splat(2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const e = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const two = i32x4.shl(f32x4.add(k, f32x4.splat(12582912 + 127)), 23);
  return v128.andnot(f32x4.mul(e, two), under);
}

// log(x) for x > 0 without a table (Mathf.log brings one): x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(f), f = (m - 1) / (m + 1), |f| < 0.172, by its series in float64 (error < 1e-9).
@inline function logf(x: f32): f32 {
  let bits = reinterpret<i32>(x);
  let e = (bits >> 23) - 127;
  let m = <f64>reinterpret<f32>((bits & 0x007fffff) | 0x3f800000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const f = (m - 1) / (m + 1), f2 = f * f;
  const s = f * (2 + f2 * (2.0 / 3 + f2 * (2.0 / 5 + f2 * (2.0 / 7 + f2 * (2.0 / 9 + f2 * (2.0 / 11))))));
  return <f32>(s + <f64>e * 0.6931471805599453);
}

@inline function sum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over rows: y = (x - mean) * rstd * g + b, rstd = 1 / sqrt(var + eps). Writes mean and
// rstd per row for the backward pass.
export function layernorm_fwd(x: usize, g: usize, b: usize, y: usize, mean: usize, rstd: usize, rows: i32, C: i32, eps: f32): void {
  const C4 = C & ~3;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), yr = at(y, r * C);
    let s = f32x4.splat(0);
    for (let j = 0; j < C4; j += 4) s = f32x4.add(s, v128.load(at(xr, j)));
    let total = sum4(s);
    for (let j = C4; j < C; j++) total += load<f32>(at(xr, j));
    const mu = total / <f32>C;
    const mu4 = f32x4.splat(mu);
    let q = f32x4.splat(0);
    for (let j = 0; j < C4; j += 4) {
      const d = f32x4.sub(v128.load(at(xr, j)), mu4);
      q = f32x4.add(q, f32x4.mul(d, d));
    }
    let sq = sum4(q);
    for (let j = C4; j < C; j++) {
      const d = load<f32>(at(xr, j)) - mu;
      sq += d * d;
    }
    const rs = <f32>1 / Mathf.sqrt(sq / <f32>C + eps);
    store<f32>(at(mean, r), mu);
    store<f32>(at(rstd, r), rs);
    const rs4 = f32x4.splat(rs);
    for (let j = 0; j < C4; j += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), mu4), rs4);
      v128.store(at(yr, j), f32x4.add(f32x4.mul(xh, v128.load(at(g, j))), v128.load(at(b, j))));
    }
    for (let j = C4; j < C; j++) store<f32>(at(yr, j), (load<f32>(at(xr, j)) - mu) * rs * load<f32>(at(g, j)) + load<f32>(at(b, j)));
  }
}

// Backward of layernorm_fwd: with xhat = (x - mean) rstd and dxhat = dy g,
//   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dg = sum_rows dy xhat,  db = sum_rows dy.
// dg and db are overwritten (not accumulated into). rms = 1 skips the centring (RMSNorm: mean = 0,
// no bias; b may be 0).
export function norm_bwd(x: usize, mean: usize, rstd: usize, g: usize, dy: usize, dx: usize, dg: usize, db: usize, rows: i32, C: i32, rms: i32): void {
  const C4 = C & ~3;
  memory.fill(dg, 0, <usize>C << 2);
  if (!rms) memory.fill(db, 0, <usize>C << 2);
  const invC: f32 = <f32>1 / <f32>C;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), dyr = at(dy, r * C), dxr = at(dx, r * C);
    const mu = rms ? <f32>0 : load<f32>(at(mean, r));
    const rs = load<f32>(at(rstd, r));
    const mu4 = f32x4.splat(mu), rs4 = f32x4.splat(rs);
    let s1 = f32x4.splat(0), s2 = f32x4.splat(0);
    for (let j = 0; j < C4; j += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), mu4), rs4);
      const d = v128.load(at(dyr, j));
      const dxh = f32x4.mul(d, v128.load(at(g, j)));
      s1 = f32x4.add(s1, dxh);
      s2 = f32x4.add(s2, f32x4.mul(dxh, xh));
      v128.store(at(dg, j), f32x4.add(v128.load(at(dg, j)), f32x4.mul(d, xh)));
      if (!rms) v128.store(at(db, j), f32x4.add(v128.load(at(db, j)), d));
    }
    let m1 = sum4(s1), m2 = sum4(s2);
    for (let j = C4; j < C; j++) {
      const xh = (load<f32>(at(xr, j)) - mu) * rs;
      const d = load<f32>(at(dyr, j));
      const dxh = d * load<f32>(at(g, j));
      m1 += dxh;
      m2 += dxh * xh;
      store<f32>(at(dg, j), load<f32>(at(dg, j)) + d * xh);
      if (!rms) store<f32>(at(db, j), load<f32>(at(db, j)) + d);
    }
    m1 = rms ? <f32>0 : m1 * invC;
    m2 *= invC;
    const m14 = f32x4.splat(m1), m24 = f32x4.splat(m2);
    for (let j = 0; j < C4; j += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), mu4), rs4);
      const dxh = f32x4.mul(v128.load(at(dyr, j)), v128.load(at(g, j)));
      v128.store(at(dxr, j), f32x4.mul(rs4, f32x4.sub(f32x4.sub(dxh, m14), f32x4.mul(xh, m24))));
    }
    for (let j = C4; j < C; j++) {
      const xh = (load<f32>(at(xr, j)) - mu) * rs;
      const dxh = load<f32>(at(dyr, j)) * load<f32>(at(g, j));
      store<f32>(at(dxr, j), rs * (dxh - m1 - xh * m2));
    }
  }
}

// RMSNorm over rows (Llama): y = x rstd g, rstd = 1 / sqrt(mean(x^2) + eps). Writes rstd per row.
export function rmsnorm_fwd(x: usize, g: usize, y: usize, rstd: usize, rows: i32, C: i32, eps: f32): void {
  const C4 = C & ~3;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), yr = at(y, r * C);
    let q = f32x4.splat(0);
    for (let j = 0; j < C4; j += 4) {
      const v = v128.load(at(xr, j));
      q = f32x4.add(q, f32x4.mul(v, v));
    }
    let sq = sum4(q);
    for (let j = C4; j < C; j++) {
      const v = load<f32>(at(xr, j));
      sq += v * v;
    }
    const rs = <f32>1 / Mathf.sqrt(sq / <f32>C + eps);
    store<f32>(at(rstd, r), rs);
    const rs4 = f32x4.splat(rs);
    for (let j = 0; j < C4; j += 4) v128.store(at(yr, j), f32x4.mul(f32x4.mul(v128.load(at(xr, j)), rs4), v128.load(at(g, j))));
    for (let j = C4; j < C; j++) store<f32>(at(yr, j), load<f32>(at(xr, j)) * rs * load<f32>(at(g, j)));
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2's tanh GELU as x sigmoid(2z), z = c (x + 0.044715 x^3), c = sqrt(2/pi) (1 + tanh z = 2 sigmoid(2z)).
const GC: f32 = 0.7978845608028654;
const GA: f32 = 0.044715;

export function gelu_fwd(x: usize, y: usize, n: i32): void {
  const n4 = n & ~3;
  const c1 = f32x4.splat(-2 * GC), c3 = f32x4.splat(-2 * GC * GA), one = f32x4.splat(1);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(at(x, i));
    const e = exp4(f32x4.mul(v, f32x4.add(c1, f32x4.mul(c3, f32x4.mul(v, v))))); // exp(-2z)
    v128.store(at(y, i), f32x4.div(v, f32x4.add(one, e)));
  }
  for (let i = n4; i < n; i++) {
    const v = load<f32>(at(x, i));
    store<f32>(at(y, i), v / (1 + expf(-2 * GC * (v + GA * v * v * v))));
  }
}

// d gelu / dx = s + x s (1 - s) 2c (1 + 3 a x^2), s = sigmoid(2z); dx = dy * that.
export function gelu_bwd(x: usize, dy: usize, dx: usize, n: i32): void {
  const n4 = n & ~3;
  const c1 = f32x4.splat(-2 * GC), c3 = f32x4.splat(-2 * GC * GA), one = f32x4.splat(1);
  const d1 = f32x4.splat(2 * GC), d3 = f32x4.splat(2 * GC * 3 * GA);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(at(x, i));
    const v2 = f32x4.mul(v, v);
    const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.mul(v, f32x4.add(c1, f32x4.mul(c3, v2))))));
    const dz = f32x4.add(d1, f32x4.mul(d3, v2));
    const grad = f32x4.add(s, f32x4.mul(f32x4.mul(f32x4.mul(v, s), f32x4.sub(one, s)), dz));
    v128.store(at(dx, i), f32x4.mul(v128.load(at(dy, i)), grad));
  }
  for (let i = n4; i < n; i++) {
    const v = load<f32>(at(x, i));
    const s = <f32>1 / (1 + expf(-2 * GC * (v + GA * v * v * v)));
    const grad = s + v * s * (1 - s) * (2 * GC + 2 * GC * 3 * GA * v * v);
    store<f32>(at(dx, i), load<f32>(at(dy, i)) * grad);
  }
}

// SwiGLU (Llama's MLP): y = silu(a) b, silu(a) = a sigmoid(a).
export function swiglu_fwd(a: usize, b: usize, y: usize, n: i32): void {
  const n4 = n & ~3;
  const one = f32x4.splat(1);
  for (let i = 0; i < n4; i += 4) {
    const va = v128.load(at(a, i));
    const silu = f32x4.div(va, f32x4.add(one, exp4(f32x4.neg(va))));
    v128.store(at(y, i), f32x4.mul(silu, v128.load(at(b, i))));
  }
  for (let i = n4; i < n; i++) {
    const va = load<f32>(at(a, i));
    store<f32>(at(y, i), (va / (1 + expf(-va))) * load<f32>(at(b, i)));
  }
}

// da = dy b s (1 + a (1 - s)), db = dy silu(a), s = sigmoid(a).
export function swiglu_bwd(a: usize, b: usize, dy: usize, da: usize, db: usize, n: i32): void {
  const n4 = n & ~3;
  const one = f32x4.splat(1);
  for (let i = 0; i < n4; i += 4) {
    const va = v128.load(at(a, i));
    const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(va))));
    const d = v128.load(at(dy, i));
    const dsilu = f32x4.mul(s, f32x4.add(one, f32x4.mul(va, f32x4.sub(one, s))));
    v128.store(at(da, i), f32x4.mul(d, f32x4.mul(v128.load(at(b, i)), dsilu)));
    v128.store(at(db, i), f32x4.mul(d, f32x4.mul(va, s)));
  }
  for (let i = n4; i < n; i++) {
    const va = load<f32>(at(a, i));
    const s = <f32>1 / (1 + expf(-va));
    const d = load<f32>(at(dy, i));
    store<f32>(at(da, i), d * load<f32>(at(b, i)) * s * (1 + va * (1 - s)));
    store<f32>(at(db, i), d * va * s);
  }
}

// ---------------------------------------------------------------------------------------------
// Bias add and its gradient: y = x + b per row; db = sum over rows of dy (TensorFlow.js sums over
// the first axis by transposing first: 27 ms of a 290 ms step at nanoGPT's shape).
export function bias_add(x: usize, b: usize, y: usize, rows: i32, C: i32): void {
  const C4 = C & ~3;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), yr = at(y, r * C);
    for (let j = 0; j < C4; j += 4) v128.store(at(yr, j), f32x4.add(v128.load(at(xr, j)), v128.load(at(b, j))));
    for (let j = C4; j < C; j++) store<f32>(at(yr, j), load<f32>(at(xr, j)) + load<f32>(at(b, j)));
  }
}

export function col_sum(x: usize, out: usize, rows: i32, C: i32): void {
  const C4 = C & ~3;
  memory.fill(out, 0, <usize>C << 2);
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C);
    for (let j = 0; j < C4; j += 4) v128.store(at(out, j), f32x4.add(v128.load(at(out, j)), v128.load(at(xr, j))));
    for (let j = C4; j < C; j++) store<f32>(at(out, j), load<f32>(at(out, j)) + load<f32>(at(xr, j)));
  }
}

// ---------------------------------------------------------------------------------------------
// Attention weights: y = softmax(scale * s + causal mask) over the last axis of `rows` rows of Tk
// scores; row r is query position offset + (r mod Tq), which sees keys 0..that position (causal);
// offset < 0 means no mask. Masked entries are exactly 0.
export function softmax_fwd(s: usize, y: usize, rows: i32, Tq: i32, Tk: i32, offset: i32, scale: f32): void {
  for (let r = 0; r < rows; r++) softmaxRow(at(s, r * Tk), at(y, r * Tk), offset < 0 ? Tk : min<i32>(Tk, offset + (r % Tq) + 1), Tk, scale);
}

// One row: yr[j] = softmax(scale sr)[j] over j < seen, exact zeros from seen to Tk (yr may be sr).
@inline function softmaxRow(sr: usize, yr: usize, seen: i32, Tk: i32, scale: f32): void {
  let mx: f32 = -Infinity;
  for (let j = 0; j < seen; j++) mx = max<f32>(mx, load<f32>(at(sr, j)));
  mx *= scale;
  let total: f32 = 0;
  const seen4 = seen & ~3;
  const sc = f32x4.splat(scale), mx4 = f32x4.splat(mx);
  let t4 = f32x4.splat(0);
  for (let j = 0; j < seen4; j += 4) {
    const e = exp4(f32x4.sub(f32x4.mul(v128.load(at(sr, j)), sc), mx4));
    v128.store(at(yr, j), e);
    t4 = f32x4.add(t4, e);
  }
  total = sum4(t4);
  for (let j = seen4; j < seen; j++) {
    const e = expf(load<f32>(at(sr, j)) * scale - mx);
    store<f32>(at(yr, j), e);
    total += e;
  }
  const inv = f32x4.splat(<f32>1 / total);
  for (let j = 0; j < seen4; j += 4) v128.store(at(yr, j), f32x4.mul(v128.load(at(yr, j)), inv));
  const invs = <f32>1 / total;
  for (let j = seen4; j < seen; j++) store<f32>(at(yr, j), load<f32>(at(yr, j)) * invs);
  if (seen < Tk) memory.fill(at(yr, seen), 0, <usize>(Tk - seen) << 2);
}

// ds = scale * y (dy - sum_j dy_j y_j) (masked entries have y = 0, so their gradient is 0).
export function softmax_bwd(y: usize, dy: usize, ds: usize, rows: i32, Tk: i32, scale: f32): void {
  const T4 = Tk & ~3;
  for (let r = 0; r < rows; r++) {
    const yr = at(y, r * Tk), dyr = at(dy, r * Tk), dsr = at(ds, r * Tk);
    let d4 = f32x4.splat(0);
    for (let j = 0; j < T4; j += 4) d4 = f32x4.add(d4, f32x4.mul(v128.load(at(yr, j)), v128.load(at(dyr, j))));
    let dot = sum4(d4);
    for (let j = T4; j < Tk; j++) dot += load<f32>(at(yr, j)) * load<f32>(at(dyr, j));
    const dot4 = f32x4.splat(dot), sc = f32x4.splat(scale);
    for (let j = 0; j < T4; j += 4) {
      const yv = v128.load(at(yr, j));
      v128.store(at(dsr, j), f32x4.mul(sc, f32x4.mul(yv, f32x4.sub(v128.load(at(dyr, j)), dot4))));
    }
    for (let j = T4; j < Tk; j++) store<f32>(at(dsr, j), scale * load<f32>(at(yr, j)) * (load<f32>(at(dyr, j)) - dot));
  }
}

// ---------------------------------------------------------------------------------------------
// Weighted cross-entropy from logits [n, V], targets [n] (int32), weights w [n] already divided by
// their sum: loss = sum_i w_i (logsumexp(l_i) - l_i[t_i]). Writes each row's logsumexp; returns the loss.
// The exponentials four at a time, their sum still taken one term at a time in the order of j.
export function xent_fwd(logits: usize, targets: usize, w: usize, lse: usize, n: i32, V: i32): f32 {
  let loss: f64 = 0;
  const V4 = V & ~3;
  for (let i = 0; i < n; i++) {
    const lr = at(logits, i * V);
    let m4 = f32x4.splat(-Infinity);
    for (let j = 0; j < V4; j += 4) m4 = f32x4.pmax(m4, v128.load(at(lr, j)));
    let mx = max<f32>(max<f32>(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max<f32>(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
    for (let j = V4; j < V; j++) mx = max<f32>(mx, load<f32>(at(lr, j)));
    const mxv = f32x4.splat(mx);
    let s: f32 = 0;
    for (let j = 0; j < V4; j += 4) {
      const e = exp4(f32x4.sub(v128.load(at(lr, j)), mxv));
      s += f32x4.extract_lane(e, 0); s += f32x4.extract_lane(e, 1); s += f32x4.extract_lane(e, 2); s += f32x4.extract_lane(e, 3);
    }
    for (let j = V4; j < V; j++) s += expf(load<f32>(at(lr, j)) - mx);
    const l = mx + logf(s);
    store<f32>(at(lse, i), l);
    const t = load<i32>(at(targets, i));
    const wi = load<f32>(at(w, i));
    if (wi != 0) loss += <f64>(wi * (l - load<f32>(at(lr, t))));
  }
  return <f32>loss;
}

// dl = (softmax(l_i) - onehot(t_i)) w_i dy.
export function xent_bwd(logits: usize, lse: usize, targets: usize, w: usize, dy: f32, dl: usize, n: i32, V: i32): void {
  const V4 = V & ~3;
  for (let i = 0; i < n; i++) {
    const lr = at(logits, i * V), dr = at(dl, i * V);
    const l = load<f32>(at(lse, i));
    const k = load<f32>(at(w, i)) * dy;
    const lv = f32x4.splat(l), kv = f32x4.splat(k);
    for (let j = 0; j < V4; j += 4) v128.store(at(dr, j), f32x4.mul(exp4(f32x4.sub(v128.load(at(lr, j)), lv)), kv));
    for (let j = V4; j < V; j++) store<f32>(at(dr, j), expf(load<f32>(at(lr, j)) - l) * k);
    const t = load<i32>(at(targets, i));
    store<f32>(at(dr, t), load<f32>(at(dr, t)) - k);
  }
}

// ---------------------------------------------------------------------------------------------
// Sum of squares (for the global gradient norm), in float64.
export function sum_squares(g: usize, n: i32): f64 {
  const n4 = n & ~3;
  let acc: f64 = 0;
  let s = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(at(g, i));
    s = f32x4.add(s, f32x4.mul(v, v));
    if ((i & 4095) == 4092) { // flush every 4096 values: float32 partial sums stay exact enough
      acc += <f64>sum4(s);
      s = f32x4.splat(0);
    }
  }
  acc += <f64>sum4(s);
  for (let i = n4; i < n; i++) {
    const v = load<f32>(at(g, i));
    acc += <f64>(v * v);
  }
  return acc;
}

// AdamW with the gradient scaled by `gs` (clipping), m and v in place, the new weights into `out`
// (never in place: the backend's XNNPACK caches packed weights by tensor, so a weight's memory
// must not change under it):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p = p decay - lr (m / c1) / (sqrt(v / c2) + eps),
// decay = 1 - lr wd for weights that decay, else 1.
export function adamw(p: usize, out: usize, g: usize, m: usize, v: usize, n: i32, gs: f32, lr: f32, b1: f32, b2: f32, c1: f32, c2: f32, eps: f32, decay: f32): void {
  const n4 = n & ~3;
  const G = f32x4.splat(gs), B1 = f32x4.splat(b1), B2 = f32x4.splat(b2), A1 = f32x4.splat(1 - b1), A2 = f32x4.splat(1 - b2);
  const IC1 = f32x4.splat(<f32>1 / c1), IC2 = f32x4.splat(<f32>1 / c2), E = f32x4.splat(eps), LR = f32x4.splat(lr), D = f32x4.splat(decay);
  for (let i = 0; i < n4; i += 4) {
    const gv = f32x4.mul(v128.load(at(g, i)), G);
    const mv = f32x4.add(f32x4.mul(v128.load(at(m, i)), B1), f32x4.mul(gv, A1));
    const vv = f32x4.add(f32x4.mul(v128.load(at(v, i)), B2), f32x4.mul(f32x4.mul(gv, gv), A2));
    v128.store(at(m, i), mv);
    v128.store(at(v, i), vv);
    const upd = f32x4.div(f32x4.mul(mv, IC1), f32x4.add(f32x4.sqrt(f32x4.mul(vv, IC2)), E));
    v128.store(at(out, i), f32x4.sub(f32x4.mul(v128.load(at(p, i)), D), f32x4.mul(upd, LR)));
  }
  for (let i = n4; i < n; i++) {
    const gv = load<f32>(at(g, i)) * gs;
    const mv = load<f32>(at(m, i)) * b1 + gv * (1 - b1);
    const vv = load<f32>(at(v, i)) * b2 + gv * gv * (1 - b2);
    store<f32>(at(m, i), mv);
    store<f32>(at(v, i), vv);
    const upd = (mv / c1) / (Mathf.sqrt(vv / c2) + eps);
    store<f32>(at(out, i), load<f32>(at(p, i)) * decay - upd * lr);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding: one new token per sequence through the whole model in a few calls per layer
// (src/engine/decode.ts), with no TensorFlow.js op in between. B rows of activations.

// x[b] = table[ids[b]] (+ wpe[positions[b]] when wpe != 0: GPT-2's learned positions).
export function embed(table: usize, ids: usize, wpe: usize, positions: usize, x: usize, B: i32, C: i32): void {
  for (let b = 0; b < B; b++) {
    const src = at(table, load<i32>(at(ids, b)) * C);
    memory.copy(at(x, b * C), src, <usize>C << 2);
    if (wpe) {
      const p = at(wpe, load<i32>(at(positions, b)) * C);
      for (let j = 0; j < C; j += 4) v128.store(at(x, b * C + j), f32x4.add(v128.load(at(x, b * C + j)), v128.load(at(p, j))));
    }
  }
}

// x += y over n values (the residual stream). n is a multiple of 4 (C is).
export function add_to(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) v128.store(at(x, i), f32x4.add(v128.load(at(x, i)), v128.load(at(y, i))));
}

// y [B, N] = x [B, K] @ W [K, N] (+ bias [N] when bias != 0): a decoding step's projections, whose
// cost is streaming W. Sixteen columns of W (one cache line per k) at a time, for every pair of
// sequences in turn while that column block is still in L1; an odd last sequence as matvecRows
// does. Every output is bias + x[0] w[0] + x[1] w[1] + ... in the order of k either way, so a
// sequence gets the same logits in a batch of any size.
export function matvec(x: usize, W: usize, bias: usize, y: usize, B: i32, K: i32, N: i32): void {
  const pairs = B & ~1;
  if (pairs) {
    const N16 = N & ~15;
    for (let j = 0; j < N16; j += 16) {
      for (let b = 0; b < pairs; b += 2) matvec2x16(at(x, b * K), W, bias, at(y, b * N), K, N, j);
    }
    if (N16 < N) for (let b = 0; b < pairs; b += 2) matvec2Tail(at(x, b * K), W, bias, at(y, b * N), K, N, N16);
  }
  if (pairs < B) matvecRows(at(x, pairs * K), W, bias, at(y, pairs * N), B - pairs, K, N);
}

// y[0..2, j..j+16) of two sequences (x rows at x and x + K): eight f32x4 sums in registers while k
// runs, one row of the column block (four vectors) and one value of each x per k. About 50 GFLOP/s
// here against 38 for four sequences by eight columns with splats built from scalar loads.
@inline function matvec2x16(x: usize, W: usize, bias: usize, y: usize, K: i32, N: i32, j: i32): void {
  const ldw = <usize>N << 2, ldx = <usize>K << 2;
  const b0 = bias ? v128.load(at(bias, j)) : f32x4.splat(0), b1 = bias ? v128.load(at(bias, j + 4)) : f32x4.splat(0);
  const b2 = bias ? v128.load(at(bias, j + 8)) : f32x4.splat(0), b3 = bias ? v128.load(at(bias, j + 12)) : f32x4.splat(0);
  let p0 = b0, p1 = b1, p2 = b2, p3 = b3, q0 = b0, q1 = b1, q2 = b2, q3 = b3;
  let w = at(W, j), xa = x;
  for (let k = 0; k < K; k++) {
    const v0 = v128.load(w), v1 = v128.load(w, 16), v2 = v128.load(w, 32), v3 = v128.load(w, 48);
    const s = v128.load32_splat(xa), t = v128.load32_splat(xa + ldx);
    p0 = f32x4.add(p0, f32x4.mul(s, v0)); p1 = f32x4.add(p1, f32x4.mul(s, v1));
    p2 = f32x4.add(p2, f32x4.mul(s, v2)); p3 = f32x4.add(p3, f32x4.mul(s, v3));
    q0 = f32x4.add(q0, f32x4.mul(t, v0)); q1 = f32x4.add(q1, f32x4.mul(t, v1));
    q2 = f32x4.add(q2, f32x4.mul(t, v2)); q3 = f32x4.add(q3, f32x4.mul(t, v3));
    w += ldw; xa += 4;
  }
  const c = at(y, j), d = at(y, N + j);
  v128.store(c, p0); v128.store(c, p1, 16); v128.store(c, p2, 32); v128.store(c, p3, 48);
  v128.store(d, q0); v128.store(d, q1, 16); v128.store(d, q2, 32); v128.store(d, q3, 48);
}

// Columns [j0, N) of two sequences (fewer than sixteen): four at a time, then one by one.
function matvec2Tail(x: usize, W: usize, bias: usize, y: usize, K: i32, N: i32, j0: i32): void {
  const ldw = <usize>N << 2, ldx = <usize>K << 2;
  let j = j0;
  for (; j + 4 <= N; j += 4) {
    let p = bias ? v128.load(at(bias, j)) : f32x4.splat(0), q = p;
    let w = at(W, j), xa = x;
    for (let k = 0; k < K; k++) {
      const v = v128.load(w);
      p = f32x4.add(p, f32x4.mul(v128.load32_splat(xa), v));
      q = f32x4.add(q, f32x4.mul(v128.load32_splat(xa + ldx), v));
      w += ldw; xa += 4;
    }
    v128.store(at(y, j), p);
    v128.store(at(y, N + j), q);
  }
  for (; j < N; j++) {
    for (let r = 0; r < 2; r++) {
      const xr = at(x, r * K);
      let s: f32 = bias ? load<f32>(at(bias, j)) : 0;
      for (let k = 0; k < K; k++) s = s + load<f32>(at(xr, k)) * load<f32>(at(W, k * N + j));
      store<f32>(at(y, r * N + j), s);
    }
  }
}

function matvecRows(x: usize, W: usize, bias: usize, y: usize, B: i32, K: i32, N: i32): void {
  const N4 = N & ~3;
  for (let b = 0; b < B; b++) {
    if (bias) memory.copy(at(y, b * N), bias, <usize>N << 2);
    else memory.fill(at(y, b * N), 0, <usize>N << 2);
  }
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const w0 = at(W, k * N), w1 = at(W, (k + 1) * N), w2 = at(W, (k + 2) * N), w3 = at(W, (k + 3) * N);
    let b = 0;
    // two sequences at a time: each weight vector loaded once for both (same sums, same order, as one at a time)
    for (; b + 2 <= B; b += 2) {
      const xa = at(x, b * K + k), xc = at(x, (b + 1) * K + k), ya = at(y, b * N), yc = at(y, (b + 1) * N);
      const a0 = f32x4.splat(load<f32>(xa)), a1 = f32x4.splat(load<f32>(xa, 4)), a2 = f32x4.splat(load<f32>(xa, 8)), a3 = f32x4.splat(load<f32>(xa, 12));
      const c0 = f32x4.splat(load<f32>(xc)), c1 = f32x4.splat(load<f32>(xc, 4)), c2 = f32x4.splat(load<f32>(xc, 8)), c3 = f32x4.splat(load<f32>(xc, 12));
      for (let j = 0; j < N4; j += 4) {
        const v0 = v128.load(at(w0, j)), v1 = v128.load(at(w1, j)), v2 = v128.load(at(w2, j)), v3 = v128.load(at(w3, j));
        let p = v128.load(at(ya, j));
        p = f32x4.add(p, f32x4.mul(a0, v0));
        p = f32x4.add(p, f32x4.mul(a1, v1));
        p = f32x4.add(p, f32x4.mul(a2, v2));
        p = f32x4.add(p, f32x4.mul(a3, v3));
        v128.store(at(ya, j), p);
        let q = v128.load(at(yc, j));
        q = f32x4.add(q, f32x4.mul(c0, v0));
        q = f32x4.add(q, f32x4.mul(c1, v1));
        q = f32x4.add(q, f32x4.mul(c2, v2));
        q = f32x4.add(q, f32x4.mul(c3, v3));
        v128.store(at(yc, j), q);
      }
      for (let j = N4; j < N; j++) {
        store<f32>(at(ya, j), load<f32>(at(ya, j)) + load<f32>(xa) * load<f32>(at(w0, j)) + load<f32>(xa, 4) * load<f32>(at(w1, j)) + load<f32>(xa, 8) * load<f32>(at(w2, j)) + load<f32>(xa, 12) * load<f32>(at(w3, j)));
        store<f32>(at(yc, j), load<f32>(at(yc, j)) + load<f32>(xc) * load<f32>(at(w0, j)) + load<f32>(xc, 4) * load<f32>(at(w1, j)) + load<f32>(xc, 8) * load<f32>(at(w2, j)) + load<f32>(xc, 12) * load<f32>(at(w3, j)));
      }
    }
    for (; b < B; b++) {
      const xb = at(x, b * K + k), yb = at(y, b * N);
      const x0 = f32x4.splat(load<f32>(xb)), x1 = f32x4.splat(load<f32>(xb, 4)), x2 = f32x4.splat(load<f32>(xb, 8)), x3 = f32x4.splat(load<f32>(xb, 12));
      for (let j = 0; j < N4; j += 4) {
        let acc = v128.load(at(yb, j));
        acc = f32x4.add(acc, f32x4.mul(x0, v128.load(at(w0, j))));
        acc = f32x4.add(acc, f32x4.mul(x1, v128.load(at(w1, j))));
        acc = f32x4.add(acc, f32x4.mul(x2, v128.load(at(w2, j))));
        acc = f32x4.add(acc, f32x4.mul(x3, v128.load(at(w3, j))));
        v128.store(at(yb, j), acc);
      }
      for (let j = N4; j < N; j++) {
        store<f32>(at(yb, j), load<f32>(at(yb, j)) + load<f32>(xb) * load<f32>(at(w0, j)) + load<f32>(xb, 4) * load<f32>(at(w1, j)) + load<f32>(xb, 8) * load<f32>(at(w2, j)) + load<f32>(xb, 12) * load<f32>(at(w3, j)));
      }
    }
  }
  for (; k < K; k++) {
    const w0 = at(W, k * N);
    for (let b = 0; b < B; b++) {
      const yb = at(y, b * N);
      const xv = load<f32>(at(x, b * K + k));
      const x0 = f32x4.splat(xv);
      for (let j = 0; j < N4; j += 4) v128.store(at(yb, j), f32x4.add(v128.load(at(yb, j)), f32x4.mul(x0, v128.load(at(w0, j)))));
      for (let j = N4; j < N; j++) store<f32>(at(yb, j), load<f32>(at(yb, j)) + xv * load<f32>(at(w0, j)));
    }
  }
}

// y [B, N] = x [B, K] @ E^T for E [N, K] (a tied head: each vocabulary row dotted with the state).
export function matvec_t(x: usize, E: usize, y: usize, B: i32, K: i32, N: i32): void {
  const K4 = K & ~3;
  for (let n = 0; n < N; n++) {
    const e = at(E, n * K);
    for (let b = 0; b < B; b++) {
      const xb = at(x, b * K);
      let s = f32x4.splat(0);
      for (let j = 0; j < K4; j += 4) s = f32x4.add(s, f32x4.mul(v128.load(at(xb, j)), v128.load(at(e, j))));
      let d = sum4(s);
      for (let j = K4; j < K; j++) d += load<f32>(at(xb, j)) * load<f32>(at(e, j));
      store<f32>(at(y, b * N + n), d);
    }
  }
}

// Rotary embedding in place on nh heads of hd values per row (B rows of stride `stride` floats) at
// each row's position: x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1]; cos, sin: [Nmax, hd].
export function rope(x: usize, cos: usize, sin: usize, positions: usize, B: i32, nh: i32, hd: i32, stride: i32): void {
  const half = hd >> 1;
  for (let b = 0; b < B; b++) {
    const row = load<i32>(at(positions, b)) * hd;
    const c = at(cos, row), s = at(sin, row);
    for (let h = 0; h < nh; h++) {
      const p = at(x, b * stride + h * hd);
      for (let i = 0; i < half; i++) {
        const x1 = load<f32>(at(p, i)), x2 = load<f32>(at(p, i + half));
        store<f32>(at(p, i), x1 * load<f32>(at(c, i)) - x2 * load<f32>(at(s, i)));
        store<f32>(at(p, i + half), x2 * load<f32>(at(c, i + half)) + x1 * load<f32>(at(s, i + half)));
      }
    }
  }
}

// One query per sequence, sequence b at position positions[b], against the cache: stores this
// position's keys and values (k, v: KV heads of hd, row b at b * kvStride) into kc, vc
// [B, KV, Nmax, hd], then for every query head h (row b at b * qStride; head group g = h / (H / KV)):
//   out[b, h] = sum_j softmax_j(scale q . kc[b, g, j]) vc[b, g, j],  j <= positions[b].
// scores: Nmax floats of scratch.
export function attend(q: usize, k: usize, v: usize, qStride: i32, kvStride: i32, kc: usize, vc: usize, out: usize, scores: usize,
  B: i32, H: i32, KV: i32, hd: i32, positions: usize, Nmax: i32, scale: f32): void {
  const rep = H / KV;
  for (let b = 0; b < B; b++) {
    const pos = load<i32>(at(positions, b));
    for (let g = 0; g < KV; g++) {
      const slot = ((b * KV + g) * Nmax + pos) * hd;
      memory.copy(at(kc, slot), at(k, b * kvStride + g * hd), <usize>hd << 2);
      memory.copy(at(vc, slot), at(v, b * kvStride + g * hd), <usize>hd << 2);
    }
  }
  // then each query against its keys, as attn_fwd does one row (the same arithmetic, the same bits)
  for (let b = 0; b < B; b++) {
    const n = load<i32>(at(positions, b)) + 1;
    for (let h = 0; h < H; h++) {
      const g = h / rep;
      const kb = at(kc, (b * KV + g) * Nmax * hd), vb = at(vc, (b * KV + g) * Nmax * hd);
      rowScores(at(q, b * qStride + h * hd), kb, hd, scores, n, hd);
      softmaxRow(scores, scores, n, n, scale);
      weightedRows(scores, 1, vb, hd, at(out, b * H * hd + h * hd), n, hd, false);
    }
  }
}

// out [C, R] = x [R, C] transposed, in 16 x 16 tiles (both sides' cache lines used whole).
export function transpose2d(x: usize, out: usize, R: i32, C: i32): void {
  for (let r0 = 0; r0 < R; r0 += 16) {
    const r1 = min<i32>(R, r0 + 16);
    for (let c0 = 0; c0 < C; c0 += 16) {
      const c1 = min<i32>(C, c0 + 16);
      for (let r = r0; r < r1; r++) {
        const xr = at(x, r * C);
        for (let c = c0; c < c1; c++) store<f32>(at(out, c * R + r), load<f32>(at(xr, c)));
      }
    }
  }
}

// C [nb, M, N] = A [nb, M, K] @ B [nb, K, N], the training products. B is taken NC columns at a
// time (NC a multiple of 16) and packed into panels of sixteen columns, K x 16 contiguous (zeros
// past N), in `pack` (K x NC floats): a panel is read from cache in order, not one row of B per page. Each pass of the
// micro-kernel keeps two rows of C by sixteen columns (eight vectors of sums) in registers while k
// runs over K, loading one panel row (four vectors) and two values of A per k. About 50 GFLOP/s
// here against XNNPACK's 32-38 through TensorFlow.js on the same shapes. Each output is
// 0 + a0 b0 + a1 b1 + ... in the order of k, as XNNPACK adds them: the two give the same bits.
// With transB = 1, B is stored transposed, [nb, N, K] (a weight's x W^T in the backward pass): only
// the packing reads it differently.
export function matmul(a: usize, b: usize, c: usize, pack: usize, nb: i32, M: i32, K: i32, N: i32, NC: i32, transB: i32): void {
  const lda = <usize>K << 2, ldb = <usize>N << 2;
  for (let n = 0; n < nb; n++) {
    for (let j0 = 0; j0 < N; j0 += NC) {
      const nc = min<i32>(NC, N - j0);
      if (transB) packPanelsT(b + <usize>j0 * lda, lda, pack, K, nc);
      else packPanels(b + (<usize>j0 << 2), ldb, pack, K, nc);
      for (let i = 0; i < M; i += 2) {
        const rows = min<i32>(2, M - i); // an odd last row alone
        for (let j = 0; j < nc; j += 16) {
          matmulBlock(a + <usize>i * lda, lda, pack + <usize>j * K * 4, c + <usize>i * ldb + (<usize>(j0 + j) << 2), ldb, K, rows, min<i32>(16, nc - j));
        }
      }
    }
    a += <usize>M * lda;
    b += <usize>K * ldb;
    c += <usize>M * ldb;
  }
}

// Columns [0, nc) of B (row stride ldb bytes) as panels of sixteen: panel p holds B[k, 16p + t] at
// pack[(p K + k) 16 + t], zeros where 16p + t >= nc.
function packPanels(b: usize, ldb: usize, pack: usize, K: i32, nc: i32): void {
  for (let p = 0; p < nc; p += 16) {
    const w = min<i32>(16, nc - p);
    let dst = pack + <usize>p * K * 4, src = b + (<usize>p << 2);
    if (w == 16) {
      for (let k = 0; k < K; k++) {
        v128.store(dst, v128.load(src)); v128.store(dst, v128.load(src, 16), 16);
        v128.store(dst, v128.load(src, 32), 32); v128.store(dst, v128.load(src, 48), 48);
        dst += 64; src += ldb;
      }
    } else {
      for (let k = 0; k < K; k++) {
        for (let t = 0; t < 16; t++) store<f32>(dst + (<usize>t << 2), t < w ? load<f32>(src + (<usize>t << 2)) : 0);
        dst += 64; src += ldb;
      }
    }
  }
}

// The same panels from B^T stored [N, K] (row stride ldbt bytes): column t of a panel is row t of B^T.
function packPanelsT(bt: usize, ldbt: usize, pack: usize, K: i32, nc: i32): void {
  for (let p = 0; p < nc; p += 16) {
    const w = min<i32>(16, nc - p);
    const dst = pack + <usize>p * K * 4;
    for (let t = 0; t < 16; t++) {
      if (t < w) {
        const src = bt + <usize>(p + t) * ldbt;
        for (let k = 0; k < K; k++) store<f32>(dst + ((<usize>k << 6) | (<usize>t << 2)), load<f32>(src + (<usize>k << 2)));
      } else {
        for (let k = 0; k < K; k++) store<f32>(dst + ((<usize>k << 6) | (<usize>t << 2)), 0);
      }
    }
  }
}

// `rows` (1 or 2) rows of C by the first `w` (<= 16) columns of one packed panel.
@inline function matmulBlock(a: usize, lda: usize, panel: usize, c: usize, ldc: usize, K: i32, rows: i32, w: i32): void {
  const a1 = rows == 2 ? a + lda : a; // one row: the second row's sums are computed and dropped
  let p0 = f32x4.splat(0), p1 = f32x4.splat(0), p2 = f32x4.splat(0), p3 = f32x4.splat(0);
  let q0 = f32x4.splat(0), q1 = f32x4.splat(0), q2 = f32x4.splat(0), q3 = f32x4.splat(0);
  let pb = panel, pa = a, qa = a1;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16), b2 = v128.load(pb, 32), b3 = v128.load(pb, 48);
    const s = v128.load32_splat(pa), t = v128.load32_splat(qa);
    p0 = f32x4.add(p0, f32x4.mul(s, b0)); p1 = f32x4.add(p1, f32x4.mul(s, b1));
    p2 = f32x4.add(p2, f32x4.mul(s, b2)); p3 = f32x4.add(p3, f32x4.mul(s, b3));
    q0 = f32x4.add(q0, f32x4.mul(t, b0)); q1 = f32x4.add(q1, f32x4.mul(t, b1));
    q2 = f32x4.add(q2, f32x4.mul(t, b2)); q3 = f32x4.add(q3, f32x4.mul(t, b3));
    pb += 64; pa += 4; qa += 4;
  }
  if (w == 16) {
    v128.store(c, p0); v128.store(c, p1, 16); v128.store(c, p2, 32); v128.store(c, p3, 48);
    if (rows == 2) {
      v128.store(c + ldc, q0); v128.store(c + ldc, q1, 16); v128.store(c + ldc, q2, 32); v128.store(c + ldc, q3, 48);
    }
    return;
  }
  // a partial panel (the last columns): lane by lane
  for (let t = 0; t < w; t++) {
    const v = t < 4 ? p0 : t < 8 ? p1 : t < 12 ? p2 : p3;
    const u = t < 4 ? q0 : t < 8 ? q1 : t < 12 ? q2 : q3;
    store<f32>(c + (<usize>t << 2), lane4(v, t & 3));
    if (rows == 2) store<f32>(c + ldc + (<usize>t << 2), lane4(u, t & 3));
  }
}

@inline function lane4(v: v128, i: i32): f32 {
  return i == 0 ? f32x4.extract_lane(v, 0) : i == 1 ? f32x4.extract_lane(v, 1) : i == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
}

// ---------------------------------------------------------------------------------------------
// Causal self-attention of B sequences of T positions in one pass, no cache (training, scoring).
// Query head h of sequence b at position t reads q[(b T + t) qStride + h hd], its key/value head
// g = h / (H / KV) at k, v[(b T + s) kvStride + g hd] (strides in floats: GPT-2 passes its fused
// qkv rows three times with offsets, Llama its three projections). For s <= t:
//   P[b, h, t, s] = softmax_s(scale q_t . k_s),  out[(b T + t), h hd ...] = sum_s P[t, s] v_s,
// P saved for the backward pass with exact zeros above the diagonal. The keys past t are never read:
// half the products of the batched-matmul path, and no transposes, splits or copies.
export function attn_fwd(q: usize, k: usize, v: usize, qStride: i32, kvStride: i32, out: usize, probs: usize,
  B: i32, T: i32, H: i32, KV: i32, hd: i32, scale: f32): void {
  const rep = H / KV, oStride = H * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = h / rep;
      const kb = at(k, b * T * kvStride + g * hd), vb = at(v, b * T * kvStride + g * hd);
      for (let t = 0; t < T; t++) {
        const qt = at(q, (b * T + t) * qStride + h * hd);
        const pr = at(probs, ((b * H + h) * T + t) * T);
        const n = t + 1;
        rowScores(qt, kb, kvStride, pr, n, hd);
        softmaxRow(pr, pr, n, T, scale);
        // out_t = sum_s P_ts v_s, four columns at a time with the sum in a register
        weightedRows(pr, 1, vb, kvStride, at(out, (b * T + t) * oStride + h * hd), n, hd, false);
      }
    }
  }
}

// dst[s] = x . rows[s] for s < n (rows of hd floats, stride in floats): four rows per pass over x,
// their sums in registers, then their lanes transposed so that the four rows' sums are added
// lane-wise as sum4 adds one row's, ((l0 + l1) + l2) + l3: the same bits, one vector store.
@inline function rowScores(x: usize, rows: usize, stride: i32, dst: usize, n: i32, hd: i32): void {
  let s = 0;
  for (; s + 4 <= n; s += 4) {
    const r0 = at(rows, s * stride), r1 = at(rows, (s + 1) * stride), r2 = at(rows, (s + 2) * stride), r3 = at(rows, (s + 3) * stride);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i = 0; i < hd; i += 4) {
      const xv = v128.load(at(x, i));
      a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(at(r0, i))));
      a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(at(r1, i))));
      a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(at(r2, i))));
      a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(at(r3, i))));
    }
    const lo = f32x4.shuffle(a0, a1, 0, 4, 1, 5), hi = f32x4.shuffle(a0, a1, 2, 6, 3, 7); // [a0.0 a1.0 a0.1 a1.1], [a0.2 a1.2 a0.3 a1.3]
    const lo2 = f32x4.shuffle(a2, a3, 0, 4, 1, 5), hi2 = f32x4.shuffle(a2, a3, 2, 6, 3, 7);
    const l0 = f32x4.shuffle(lo, lo2, 0, 1, 4, 5), l1 = f32x4.shuffle(lo, lo2, 2, 3, 6, 7); // lane 0, lane 1 of the four
    const l2 = f32x4.shuffle(hi, hi2, 0, 1, 4, 5), l3 = f32x4.shuffle(hi, hi2, 2, 3, 6, 7);
    v128.store(at(dst, s), f32x4.add(f32x4.add(f32x4.add(l0, l1), l2), l3));
  }
  for (; s < n; s++) {
    const r = at(rows, s * stride);
    let a = f32x4.splat(0);
    for (let i = 0; i < hd; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(at(x, i)), v128.load(at(r, i))));
    store<f32>(at(dst, s), sum4(a));
  }
}

// dst[0..hd) = sum_{s < n} w[s wStride] rows[s] (rows of hd floats, row stride in floats; added to
// what dst holds when accumulate), 32 columns at a time with their sums in registers (one weight
// splat per eight vectors), then eight, then four.
@inline function weightedRows(w: usize, wStride: i32, rows: usize, stride: i32, dst: usize, n: i32, hd: i32, accumulate: bool): void {
  let i = 0;
  for (; i + 32 <= hd; i += 32) {
    const d = at(dst, i);
    const z = f32x4.splat(0);
    let a0 = accumulate ? v128.load(d) : z, a1 = accumulate ? v128.load(d, 16) : z, a2 = accumulate ? v128.load(d, 32) : z, a3 = accumulate ? v128.load(d, 48) : z;
    let a4 = accumulate ? v128.load(d, 64) : z, a5 = accumulate ? v128.load(d, 80) : z, a6 = accumulate ? v128.load(d, 96) : z, a7 = accumulate ? v128.load(d, 112) : z;
    let r = at(rows, i), pw = w;
    for (let s = 0; s < n; s++) {
      const p = v128.load32_splat(pw);
      a0 = f32x4.add(a0, f32x4.mul(p, v128.load(r))); a1 = f32x4.add(a1, f32x4.mul(p, v128.load(r, 16)));
      a2 = f32x4.add(a2, f32x4.mul(p, v128.load(r, 32))); a3 = f32x4.add(a3, f32x4.mul(p, v128.load(r, 48)));
      a4 = f32x4.add(a4, f32x4.mul(p, v128.load(r, 64))); a5 = f32x4.add(a5, f32x4.mul(p, v128.load(r, 80)));
      a6 = f32x4.add(a6, f32x4.mul(p, v128.load(r, 96))); a7 = f32x4.add(a7, f32x4.mul(p, v128.load(r, 112)));
      r = at(r, stride);
      pw = at(pw, wStride);
    }
    v128.store(d, a0); v128.store(d, a1, 16); v128.store(d, a2, 32); v128.store(d, a3, 48);
    v128.store(d, a4, 64); v128.store(d, a5, 80); v128.store(d, a6, 96); v128.store(d, a7, 112);
  }
  for (; i + 8 <= hd; i += 8) {
    let a0 = accumulate ? v128.load(at(dst, i)) : f32x4.splat(0), a1 = accumulate ? v128.load(at(dst, i + 4)) : f32x4.splat(0);
    let r = at(rows, i), pw = w;
    for (let s = 0; s < n; s++) {
      const p = v128.load32_splat(pw);
      a0 = f32x4.add(a0, f32x4.mul(p, v128.load(r)));
      a1 = f32x4.add(a1, f32x4.mul(p, v128.load(r, 16)));
      r = at(r, stride);
      pw = at(pw, wStride);
    }
    v128.store(at(dst, i), a0);
    v128.store(at(dst, i + 4), a1);
  }
  for (; i < hd; i += 4) {
    let a0 = accumulate ? v128.load(at(dst, i)) : f32x4.splat(0);
    let r = at(rows, i), pw = w;
    for (let s = 0; s < n; s++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(pw), v128.load(r)));
      r = at(r, stride);
      pw = at(pw, wStride);
    }
    v128.store(at(dst, i), a0);
  }
}

// The gradients of attn_fwd from dout [B T, H hd]: with dP_ts = dout_t . v_s and
// dS_ts = scale P_ts (dP_ts - sum_s' P_ts' dP_ts'):  dq_t = sum_s dS_ts k_s,  dk_s = sum_t dS_ts q_t,
// dv_s = sum_t P_ts dout_t (a key/value head's sums run over its H / KV query heads). dq rows have
// stride dqStride, dk and dv rows dkvStride (GPT-2 writes the three into its qkv gradient's rows);
// dk and dv are zeroed first (dq rows are written whole). scratch: T x T floats.
export function attn_bwd(q: usize, k: usize, v: usize, qStride: i32, kvStride: i32, probs: usize, dout: usize,
  dq: usize, dk: usize, dv: usize, dqStride: i32, dkvStride: i32, scratch: usize,
  B: i32, T: i32, H: i32, KV: i32, hd: i32, scale: f32): void {
  const rep = H / KV, oStride = H * hd;
  for (let r = 0; r < B * T; r++) {
    memory.fill(at(dk, r * dkvStride), 0, <usize>(KV * hd) << 2);
    memory.fill(at(dv, r * dkvStride), 0, <usize>(KV * hd) << 2);
  }
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = h / rep;
      const kb = at(k, b * T * kvStride + g * hd), vb = at(v, b * T * kvStride + g * hd);
      const P = at(probs, (b * H + h) * T * T);
      // by rows of queries: dP_ts = dout_t . v_s, dS_ts = scale P_ts (dP_ts - sum_s P_ts dP_ts) into
      // scratch's row t, and dq_t = sum_s dS_ts k_s
      for (let t = 0; t < T; t++) {
        const dot = at(dout, (b * T + t) * oStride + h * hd);
        const pr = at(P, t * T), ds = at(scratch, t * T);
        const n = t + 1;
        rowScores(dot, vb, kvStride, ds, n, hd);
        let rowdot: f32 = 0;
        for (let s = 0; s < n; s++) rowdot += load<f32>(at(pr, s)) * load<f32>(at(ds, s));
        for (let s = 0; s < n; s++) store<f32>(at(ds, s), scale * load<f32>(at(pr, s)) * (load<f32>(at(ds, s)) - rowdot));
        weightedRows(ds, 1, kb, kvStride, at(dq, (b * T + t) * dqStride + h * hd), n, hd, false);
      }
      // by columns of keys: dk_s += sum_{t >= s} dS_ts q_t, dv_s += sum_{t >= s} P_ts dout_t (added:
      // a key/value head's query heads each add theirs)
      for (let s = 0; s < T; s++) {
        const row = (b * T + s) * dkvStride + g * hd;
        weightedRows(at(scratch, s * T + s), T, at(q, (b * T + s) * qStride + h * hd), qStride, at(dk, row), T - s, hd, true);
        weightedRows(at(P, s * T + s), T, at(dout, (b * T + s) * oStride + h * hd), oStride, at(dv, row), T - s, hd, true);
      }
    }
  }
}
