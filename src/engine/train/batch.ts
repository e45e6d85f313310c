/** A language-modelling batch, as the trainer and its gradient threads exchange it. */
export interface Batch {
  /** Token ids [B, T], row-major. */
  ids: Int32Array;
  /** Next-token targets [B, T]. */
  targets: Int32Array;
  /** Loss weight per position [B, T]: 0 for prompt and padding tokens. */
  weights: Float32Array;
  B: number;
  T: number;
}
