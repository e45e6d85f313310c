/**
 * WebGPU in Node through Dawn (the `webgpu` npm package: Chrome's WebGPU with Node bindings and a
 * prebuilt binary per platform inside the package, no download at install time). Dawn drives
 * NVIDIA, AMD and Intel GPUs through Vulkan (D3D12 on Windows) and Apple GPUs through Metal.
 *
 * This file finds the binary, exposes `navigator.gpu` (TensorFlow.js's WebGPU backend looks there),
 * describes the adapter, and turns a lost device or a GPU error into one line naming the fix.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  description: string;
  device: string;
  /** A CPU implementation of WebGPU (llvmpipe, SwiftShader, WARP): works, but slower than wasm. */
  software: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number };
}

export class WebGpuError extends Error {}

const FIX = 'a smaller --batch-size or --block-size, or another backend (--backend wasm)';

interface Dawn {
  create(flags: string[]): { requestAdapter(o?: { powerPreference?: string }): Promise<AdapterLike | null> };
  globals: Record<string, unknown>;
}
interface AdapterLike {
  info: { vendor: string; architecture: string; description: string; device: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
}

let dawn: { gpu: ReturnType<Dawn['create']> } | undefined;

/** The Dawn binary of this platform inside a `webgpu` package folder. */
function dawnBinary(pkgDir: string): string {
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  return path.join(pkgDir, 'dist', `${process.platform}-${arch}`, 'dawn.node');
}

/** Dawn looks for a display server's socket under XDG_RUNTIME_DIR; headless, a private empty one will do. */
function ensureRuntimeDir(): void {
  if (process.platform !== 'linux') return;
  const cur = process.env.XDG_RUNTIME_DIR;
  if (cur && fs.existsSync(cur)) return;
  const dir = path.join(os.tmpdir(), `rlhf-xdg-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

function isSoftware(a: AdapterLike): boolean {
  if (a.info.isFallbackAdapter || a.isFallbackAdapter) return true;
  const text = `${a.info.vendor} ${a.info.architecture} ${a.info.description} ${a.info.device}`;
  return /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i.test(text);
}

/**
 * Loads Dawn from the `webgpu` package folder `pkgDir`, exposes navigator.gpu and the GPU* globals,
 * and returns the adapter it offers. Throws one line (no package, no binary for this platform, no
 * adapter) with what to do.
 */
export async function startDawn(pkgDir: string | undefined): Promise<WebGpuAdapter> {
  if (!dawn) {
    if (!pkgDir) throw new WebGpuError('WebGPU backend unavailable: the webgpu package is not installed (run "RLHF: Install GPU Backend" and pick WebGPU, or npm install webgpu)');
    const bin = dawnBinary(pkgDir);
    if (!fs.existsSync(bin)) throw new WebGpuError(`WebGPU backend unavailable: this build carries no Dawn binary for ${process.platform}-${process.arch} (install the extension built for this platform)`);
    ensureRuntimeDir();
    let mod: Dawn;
    try {
      mod = require(bin) as Dawn; // an absolute path: nothing is looked up elsewhere
    } catch (e) {
      throw new WebGpuError(`WebGPU backend unavailable: Dawn did not load (${(e as Error).message.split('\n')[0]})`);
    }
    const g = globalThis as Record<string, unknown>;
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in g)) g[k] = v;
    const gpu = mod.create([]);
    const nav = g.navigator as Record<string, unknown> | undefined;
    if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(g, 'navigator', { value: { gpu, userAgent: `node ${process.version}` }, configurable: true });
    dawn = { gpu };
  }
  const a = await dawn.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) {
    const driver = process.platform === 'linux' ? "the GPU's Vulkan driver (or Mesa's mesa-vulkan-drivers)" : process.platform === 'darwin' ? 'macOS 13 or later (Metal)' : 'a current GPU driver (D3D12 or Vulkan)';
    throw new WebGpuError(`WebGPU backend unavailable: no adapter (Dawn found no GPU; it needs ${driver})`);
  }
  const l = a.limits;
  return {
    vendor: a.info.vendor,
    architecture: a.info.architecture,
    description: a.info.description,
    device: a.info.device,
    software: isSoftware(a),
    limits: {
      maxBufferSize: Number(l.maxBufferSize),
      maxStorageBufferBindingSize: Number(l.maxStorageBufferBindingSize),
      maxComputeWorkgroupStorageSize: Number(l.maxComputeWorkgroupStorageSize),
      maxComputeInvocationsPerWorkgroup: Number(l.maxComputeInvocationsPerWorkgroup),
    },
  };
}

interface DeviceLike {
  lost: Promise<{ reason: string; message: string }>;
  addEventListener?: (type: string, fn: (e: { error?: { message?: string; constructor?: { name?: string } } }) => void) => void;
}

let gpuFailure: string | undefined;
let activeLimit: number | undefined;

/** Called when TensorFlow.js runs on this adapter: tensors larger than its binding limit are refused. */
export function setActiveAdapter(a: WebGpuAdapter | undefined): void {
  activeLimit = a ? Math.min(a.limits.maxStorageBufferBindingSize, a.limits.maxBufferSize) : undefined;
}

/**
 * Refuses, before anything is allocated, a tensor the WebGPU adapter cannot bind (one buffer per
 * tensor): one line naming the tensor, its size, the adapter's limit and what would fit. Does
 * nothing on the other backends (activeLimit is set only while WebGPU is the backend).
 */
export function assertFitsAdapter(what: string, bytes: number, fix = 'a smaller model, a smaller --batch-size or --block-size, or another backend (--backend wasm)'): void {
  if (activeLimit === undefined || bytes <= activeLimit) return;
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  throw new WebGpuError(`WebGPU: ${what} is ${mb(bytes)}, over this adapter's ${mb(activeLimit)} per-buffer limit; try ${fix}`);
}

/** The first GPU error or device loss seen, as one line with the fix (undefined while all is well). */
export function webGpuFailure(): string | undefined {
  return gpuFailure;
}

/**
 * Watches the device TensorFlow.js created: a lost device or an uncaptured error (out of memory,
 * a buffer over the adapter's limit, a shader that failed to compile) is recorded as one line, and
 * every later read (`read.ts`) throws it, so the stage stops at once with the last good checkpoint
 * kept instead of training on garbage or waiting forever.
 */
export function watchDevice(device: DeviceLike): void {
  device.lost.then((info) => {
    if (info.reason === 'destroyed') return;
    gpuFailure ??= `WebGPU device lost (${info.message || info.reason}); the GPU was reset or ran out of memory: try ${FIX}`;
  });
  device.addEventListener?.('uncapturederror', (e) => {
    const kind = e.error?.constructor?.name ?? 'GPUError';
    const msg = (e.error?.message ?? '').split('\n')[0];
    const what =
      kind === 'GPUOutOfMemoryError' ? 'out of GPU memory'
      : /exceeds|limit|too large|maxBufferSize|binding size/i.test(msg) ? "an operation over the adapter's limits"
      : /shader|WGSL|pipeline/i.test(msg) ? 'a shader failed to compile'
      : 'a GPU error';
    gpuFailure ??= `WebGPU: ${what} (${msg.slice(0, 200)}); try ${FIX}`;
  });
}
