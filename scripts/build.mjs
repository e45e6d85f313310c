// Builds the bundles with esbuild: the extension host (never TensorFlow.js), the training
// worker and the `rlhf` command line. TensorFlow.js stays external so that an optional native
// backend (tfjs-node, tfjs-node-gpu) registers itself with the same tfjs-core instance.
import * as esbuild from 'esbuild';
import * as fs from 'fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true, logLevel: 'warning' };
const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js', external: ['@tensorflow/*', 'gpt-tokenizer', '@stdlib/*'] },
  { ...common, entryPoints: ['src/cli/index.ts'], outfile: 'dist/cli.js', external: ['@tensorflow/*', 'gpt-tokenizer', '@stdlib/*'] },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  const host = fs.readFileSync('dist/extension.js', 'utf8');
  if (host.includes('@tensorflow/')) {
    console.error('build: dist/extension.js references TensorFlow.js; the extension host must not load it');
    process.exit(1);
  }
}
