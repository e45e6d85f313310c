// Packages the extension per platform, as VS Code's native-module extensions are: each VSIX carries
// only its own platform's Dawn binary (the `webgpu` package's dist/<platform>/, 19-39 MB each)
// in dist/webgpu, where the worker looks first.
//
//   node scripts/package.mjs                      this machine's platform -> rlhf-studio.vsix
//   node scripts/package.mjs linux-x64 darwin-arm64 win32-x64
//                                                 -> rlhf-studio-<target>.vsix each
//   node scripts/package.mjs --universal          no Dawn (WebGPU through "Install GPU Backend")
//
// Run after the build (npm run package builds first).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const TARGETS = {
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'darwin-arm64': 'darwin-universal',
  'darwin-x64': 'darwin-universal',
  'win32-x64': 'win32-x64',
  'win32-arm64': 'win32-arm64',
};

const args = process.argv.slice(2);
const universal = args.includes('--universal');
const explicit = args.filter((a) => !a.startsWith('--'));
const here = `${process.platform}-${process.arch}`;
const targets = [...(explicit.length ? explicit : universal ? [] : [here]), ...(universal ? [undefined] : [])];
for (const t of targets) if (t && !TARGETS[t]) throw new Error(`unknown target ${t}; one of ${Object.keys(TARGETS).join(', ')}`);

const pkgDir = 'node_modules/webgpu';
const staged = 'dist/webgpu';
const vsce = path.join('node_modules', '@vscode', 'vsce', 'vsce');
const ignore = fs.readFileSync('.vscodeignore', 'utf8');

try {
  for (const t of targets) {
    fs.rmSync(staged, { recursive: true, force: true });
    if (t) {
      const dawnDir = path.join(pkgDir, 'dist', TARGETS[t]);
      if (!fs.existsSync(dawnDir)) throw new Error(`${dawnDir} is missing: npm ci installs the webgpu package with every platform's binary`);
      fs.mkdirSync(path.join(staged, 'dist'), { recursive: true });
      fs.cpSync(dawnDir, path.join(staged, 'dist', TARGETS[t]), { recursive: true });
      for (const f of ['package.json', 'LICENSE.md']) fs.copyFileSync(path.join(pkgDir, f), path.join(staged, f));
      fs.writeFileSync('.vscodeignore', `${ignore.trimEnd()}\n!dist/webgpu/**\n`);
    }
    const out = explicit.length === 0 ? 'rlhf-studio.vsix' : `rlhf-studio-${t ?? 'universal'}.vsix`;
    execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', ...(t ? ['--target', t] : []), '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    fs.writeFileSync('.vscodeignore', ignore);
    console.log(`${out}: ${t ?? 'universal'}, ${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB`);
  }
} finally {
  fs.writeFileSync('.vscodeignore', ignore);
  fs.rmSync(staged, { recursive: true, force: true });
}
