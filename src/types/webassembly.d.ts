// The parts of the WebAssembly JS API the engine uses (TypeScript ships them only with the DOM lib).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: BufferSource | Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
}
type BufferSource = ArrayBufferView | ArrayBuffer;
