/**
 * Chooses and starts the TensorFlow.js backend. Order for "auto": CUDA (`@tensorflow/tfjs-node-gpu`),
 * WebGPU (Dawn through the `webgpu` package: Vulkan, Metal or D3D12, any vendor), native CPU
 * (`@tensorflow/tfjs-node`), WebAssembly with SIMD, plain JavaScript. The native packages are
 * optional (tfjs-node downloads libtensorflow at install time), so each is tried and the reason it
 * was skipped is kept for the user. `auto` never takes a software WebGPU adapter (llvmpipe,
 * SwiftShader): it is slower than WebAssembly; `--backend webgpu` takes it.
 */
import * as tf from '@tensorflow/tfjs-core';
// The core package registers no gradients by itself (the umbrella @tensorflow/tfjs does this).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as fs from 'fs';
import * as path from 'path';
import { registerWasmSegmentSum } from './segment-sum-kernel';
import { registerFusedKernels } from '../kernels/fused';
import { WebGpuAdapter, setActiveAdapter, startDawn, watchDevice } from './webgpu';
import { registerDeterministicWebGpuKernels } from './webgpu-kernels';
import { packageRoot } from '../paths';

export type BackendName = 'auto' | 'gpu' | 'webgpu' | 'node' | 'wasm' | 'cpu';
export const BACKEND_NAMES: BackendName[] = ['auto', 'gpu', 'webgpu', 'node', 'wasm', 'cpu'];

export interface BackendChoice {
  name: Exclude<BackendName, 'auto'>;
  /** The TensorFlow.js backend name (tensorflow, webgpu, wasm, cpu). */
  tfName: string;
  reason: string;
  skipped: string[];
  /** The WebGPU adapter (vendor, architecture, description, limits), when the backend is webgpu. */
  adapter?: WebGpuAdapter;
}

export class BackendError extends Error {}

const GPU_HELP =
  'the CUDA backend needs @tensorflow/tfjs-node-gpu (npm install @tensorflow/tfjs-node-gpu, which ' +
  'downloads libtensorflow from Google at install time) and CUDA 11.2 with cuDNN 8.1 on Linux or Windows x64; ' +
  'use --backend auto to train on the CPU';
const NODE_HELP =
  'the native CPU backend needs @tensorflow/tfjs-node (npm install @tensorflow/tfjs-node, which downloads ' +
  'libtensorflow from Google at install time); use --backend wasm';

/** Extra folders to look for optional native packages in (e.g. the extension's global storage). */
function extraPaths(): string[] {
  const v = process.env.RLHF_NATIVE_MODULES;
  return v ? v.split(process.platform === 'win32' ? ';' : ':').filter(Boolean) : [];
}

/**
 * The folders an optional native package may load from: this package's own node_modules and the
 * ones named by RLHF_NATIVE_MODULES (the extension's global storage). Never the current directory or
 * its parents: a node_modules in a workspace (or /tmp) must not run code when someone trains.
 */
export function nativeModuleRoots(): string[] {
  const roots = [...extraPaths()];
  try {
    roots.unshift(path.join(packageRoot(), 'node_modules'));
  } catch {
    /* a bundle outside its package: only the explicit folders */
  }
  return roots;
}

function tryRequire(pkg: string): { ok: true } | { ok: false; why: string } {
  const dir = nativeModuleRoots()
    .map((root) => path.join(root, pkg))
    .find((d) => fs.existsSync(path.join(d, 'package.json')));
  if (!dir) return { ok: false, why: `${pkg} is not installed` };
  try {
    require(dir); // an absolute folder: no node_modules lookup from anywhere else
    return { ok: true };
  } catch (e) {
    return { ok: false, why: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
}

async function start(tfName: string): Promise<boolean> {
  try {
    return (await tf.setBackend(tfName)) && tf.getBackend() === tfName;
  } catch {
    return false;
  }
}

async function startGpu(): Promise<string> {
  const r = tryRequire('@tensorflow/tfjs-node-gpu');
  if (!r.ok) throw new BackendError(`GPU backend unavailable: ${r.why}; ${GPU_HELP}`);
  if (!(await start('tensorflow'))) throw new BackendError(`GPU backend failed to start; ${GPU_HELP}`);
  return 'CUDA through @tensorflow/tfjs-node-gpu';
}

let adapter: WebGpuAdapter | undefined;

/** WebGPU through Dawn; `auto` refuses a software adapter. */
async function startWebGpu(allowSoftware: boolean): Promise<string> {
  // a platform-specific VSIX carries its platform's Dawn in dist/webgpu; else the installed package
  const bundled = (() => {
    try {
      return [path.join(packageRoot(), 'dist')];
    } catch {
      return [];
    }
  })();
  const dawn = [...bundled, ...nativeModuleRoots()].map((root) => path.join(root, 'webgpu')).find((d) => fs.existsSync(path.join(d, 'package.json')));
  let a: WebGpuAdapter;
  try {
    a = await startDawn(dawn);
  } catch (e) {
    throw new BackendError((e as Error).message);
  }
  if (a.software && !allowSoftware) {
    throw new BackendError(`WebGPU adapter is a software renderer (${a.description || a.architecture || a.vendor}), slower than WebAssembly; --backend webgpu uses it anyway`);
  }
  require('@tensorflow/tfjs-backend-webgpu'); // registers "webgpu" now that navigator.gpu exists
  registerDeterministicWebGpuKernels();
  if (!(await start('webgpu'))) throw new BackendError(`WebGPU backend failed to start on ${a.description || a.vendor}; use --backend wasm`);
  watchDevice((tf.backend() as unknown as { device: Parameters<typeof watchDevice>[0] }).device);
  adapter = a;
  return `WebGPU on ${a.vendor} ${a.architecture} (${a.description})${a.software ? ', a software adapter' : ''}`;
}

async function startNode(): Promise<string> {
  const r = tryRequire('@tensorflow/tfjs-node');
  if (!r.ok) throw new BackendError(`native CPU backend unavailable: ${r.why}; ${NODE_HELP}`);
  if (!(await start('tensorflow'))) throw new BackendError(`native CPU backend failed to start; ${NODE_HELP}`);
  return 'native libtensorflow through @tensorflow/tfjs-node';
}

async function startWasm(): Promise<string> {
  require('@tensorflow/tfjs-backend-wasm');
  registerWasmSegmentSum();
  registerFusedKernels();
  if (!(await start('wasm'))) throw new BackendError('the WebAssembly backend failed to start');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return `WebAssembly${simd ? ' with SIMD' : ' without SIMD'}`;
}

async function startCpu(): Promise<string> {
  require('@tensorflow/tfjs-backend-cpu');
  if (!(await start('cpu'))) throw new BackendError('the plain JavaScript backend failed to start');
  return 'plain JavaScript (slowest)';
}

let current: BackendChoice | undefined;

/** Starts a backend once per process; later calls return the same choice. */
export async function initBackend(requested: BackendName = 'auto'): Promise<BackendChoice> {
  if (current && (requested === 'auto' || requested === current.name)) return current;
  setActiveAdapter(undefined);
  if (!BACKEND_NAMES.includes(requested)) {
    throw new BackendError(`unknown backend "${requested}"; choose one of ${BACKEND_NAMES.join(', ')}`);
  }
  tf.env().set('PROD', true); // no debug checks in the hot loop
  const starters: Record<Exclude<BackendName, 'auto'>, [string, () => Promise<string>]> = {
    gpu: ['tensorflow', startGpu],
    webgpu: ['webgpu', () => startWebGpu(requested === 'webgpu')],
    node: ['tensorflow', startNode],
    wasm: ['wasm', startWasm],
    cpu: ['cpu', startCpu],
  };
  if (requested !== 'auto') {
    const [tfName, fn] = starters[requested];
    const reason = `${await fn()} (asked for ${requested})`;
    if (requested === 'webgpu') setActiveAdapter(adapter);
    return (current = { name: requested, tfName, reason, skipped: [], ...(requested === 'webgpu' ? { adapter } : {}) });
  }
  const skipped: string[] = [];
  for (const name of ['gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const) {
    const [tfName, fn] = starters[name];
    try {
      const how = await fn();
      const reason = skipped.length ? `${how}; skipped: ${skipped.join('; ')}` : how;
      if (name === 'webgpu') setActiveAdapter(adapter);
      return (current = { name, tfName, reason, skipped, ...(name === 'webgpu' ? { adapter } : {}) });
    } catch (e) {
      skipped.push(e instanceof Error ? e.message.split(';')[0] : String(e));
    }
  }
  throw new BackendError(`no TensorFlow.js backend could start: ${skipped.join('; ')}`);
}

export function currentBackend(): BackendChoice | undefined {
  return current;
}

export interface BackendProbe {
  name: Exclude<BackendName, 'auto'>;
  /** Whether it started here (and ran a small product). */
  available: boolean;
  /** How it runs, or why it did not start. */
  detail: string;
  /** Why `auto` passes over a backend that starts (a software GPU adapter). */
  autoSkips?: string;
  adapter?: WebGpuAdapter;
}

/**
 * Tries every backend in `auto`'s order, each with a 64x64 product read back, and says which one
 * `auto` would take. For `rlhf backends` and the editor's Select Backend pick: what this machine
 * offers, before anything trains. Leaves the process on the last backend tried.
 */
export async function probeBackends(): Promise<{ probes: BackendProbe[]; auto: Exclude<BackendName, 'auto'> | undefined }> {
  tf.env().set('PROD', true);
  const starters: [Exclude<BackendName, 'auto'>, () => Promise<string>][] = [
    ['gpu', startGpu],
    ['webgpu', () => startWebGpu(true)],
    ['node', startNode],
    ['wasm', startWasm],
    ['cpu', startCpu],
  ];
  const probes: BackendProbe[] = [];
  for (const [name, fn] of starters) {
    try {
      const detail = await fn();
      const x = tf.tidy(() => tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])));
      const v = (await x.data())[0];
      x.dispose();
      if (v !== 64) throw new BackendError(`a 64x64 product gave ${v}, not 64`);
      const p: BackendProbe = { name, available: true, detail };
      if (name === 'webgpu' && adapter) {
        p.adapter = adapter;
        if (adapter.software) p.autoSkips = `${adapter.description || adapter.vendor} is a software adapter, slower than WebAssembly`;
      }
      probes.push(p);
    } catch (e) {
      probes.push({ name, available: false, detail: (e instanceof Error ? e.message : String(e)).split('\n')[0] });
    }
  }
  current = undefined;
  return { probes, auto: probes.find((p) => p.available && !p.autoSkips)?.name };
}
