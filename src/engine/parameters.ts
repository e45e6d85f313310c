/**
 * The bookkeeping every architecture shares: its weights as named TensorFlow.js variables made
 * from the checkpoint's arrays (checked against the architecture's shapes), an optional LoRA
 * adapter whose variables join them while the base freezes, counting, reading back, freeing.
 * The architectures (model.ts, llama.ts) extend it and keep only their forward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFitsAdapter } from './backends/webgpu';
import type { Lora } from './lora';

let nextId = 0;

export abstract class ModelParameters {
  readonly params = new Map<string, tf.Variable>();
  /** A LoRA adapter on the projections; the base weights are then frozen. */
  lora?: Lora;

  constructor(shapes: [string, number[]][], weights: Map<string, Float32Array>, trainable: boolean) {
    for (const [name, shape] of shapes) {
      const w = weights.get(name);
      if (!w) throw new Error(`missing weight ${name}`);
      const size = shape.reduce((x, y) => x * y, 1);
      if (w.length !== size) throw new Error(`weight ${name} has ${w.length} values, expected shape [${shape}]`);
      assertFitsAdapter(`the weight ${name} [${shape}]`, 4 * size); // WebGPU: one buffer per tensor
      // tidy: the initial tensor would otherwise stay alive beside the variable; the #id keeps
      // names unique among models alive at once (the engine refuses a second variable of a name)
      this.params.set(name, tf.tidy(() => tf.variable(tf.tensor(w, shape, 'float32'), trainable, `${name}#${nextId++}`)));
    }
  }

  /** Freezes the base weights and trains the adapter's instead (its variables join params). */
  attachLora(lora: Lora): void {
    if (this.lora) throw new Error('the model has an adapter already');
    for (const v of this.params.values()) v.trainable = false;
    this.lora = lora;
    for (const [n, v] of lora.params()) this.params.set(n, v);
  }

  p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** Parameters of the model (an adapter's counted apart: lora.numParameters). */
  get numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n - (this.lora?.numParameters ?? 0);
  }

  /** Current weights as plain arrays, in parameter order. */
  async weights(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.params) out.set(name, (await v.data()) as Float32Array);
    return out;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}
