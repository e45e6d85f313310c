;; Batched matrix product with WebAssembly SIMD: C[n] = A[n] @ B[n] for n < nb, where
;; A is [nb, M, K], B is [nb, K, N], C is [nb, M, N], float32, row-major; a, b, c are byte
;; offsets into this module's memory. TensorFlow.js's wasm backend multiplies batched matrices
;; (attention) with a scalar loop; this one does four columns per instruction.
;; For each row i of C: C[i, :] = sum_k A[i, k] * B[k, :], the row kept hot in cache.
(module
  (memory (export "memory") 1)
  (func (export "bmm")
    (param $a i32) (param $b i32) (param $c i32) (param $nb i32) (param $M i32) (param $K i32) (param $N i32)
    (local $n i32) (local $i i32) (local $k i32) (local $j i32)
    (local $arow i32) (local $crow i32) (local $brow i32) (local $p i32)
    (local $aval f32) (local $av v128) (local $N4 i32)
    (local.set $N4 (i32.and (local.get $N) (i32.const -4)))
    (block $done_n (loop $loop_n
      (br_if $done_n (i32.ge_u (local.get $n) (local.get $nb)))
      (local.set $i (i32.const 0))
      (block $done_i (loop $loop_i
        (br_if $done_i (i32.ge_u (local.get $i) (local.get $M)))
        (local.set $crow (i32.add (local.get $c) (i32.shl (i32.mul (local.get $i) (local.get $N)) (i32.const 2))))
        (local.set $arow (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $K)) (i32.const 2))))
        (memory.fill (local.get $crow) (i32.const 0) (i32.shl (local.get $N) (i32.const 2)))
        (local.set $k (i32.const 0))
        (block $done_k (loop $loop_k
          (br_if $done_k (i32.ge_u (local.get $k) (local.get $K)))
          (local.set $aval (f32.load (i32.add (local.get $arow) (i32.shl (local.get $k) (i32.const 2)))))
          (local.set $av (f32x4.splat (local.get $aval)))
          (local.set $brow (i32.add (local.get $b) (i32.shl (i32.mul (local.get $k) (local.get $N)) (i32.const 2))))
          (local.set $j (i32.const 0))
          (block $done_j (loop $loop_j
            (br_if $done_j (i32.ge_u (local.get $j) (local.get $N4)))
            (local.set $p (i32.add (local.get $crow) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $p)
              (f32x4.add (v128.load (local.get $p))
                (f32x4.mul (local.get $av) (v128.load (i32.add (local.get $brow) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $loop_j)))
          (block $done_t (loop $loop_t
            (br_if $done_t (i32.ge_u (local.get $j) (local.get $N)))
            (local.set $p (i32.add (local.get $crow) (i32.shl (local.get $j) (i32.const 2))))
            (f32.store (local.get $p)
              (f32.add (f32.load (local.get $p))
                (f32.mul (local.get $aval) (f32.load (i32.add (local.get $brow) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $loop_t)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $loop_k)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $loop_i)))
      (local.set $a (i32.add (local.get $a) (i32.shl (i32.mul (local.get $M) (local.get $K)) (i32.const 2))))
      (local.set $b (i32.add (local.get $b) (i32.shl (i32.mul (local.get $K) (local.get $N)) (i32.const 2))))
      (local.set $c (i32.add (local.get $c) (i32.shl (i32.mul (local.get $M) (local.get $N)) (i32.const 2))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $loop_n)))
  )
)
