/** Files that ship with the package: the example workspace and its base model. */
import * as fs from 'fs';
import * as path from 'path';

/** The package root (the folder with this project's package.json), from source or a bundle. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'rlhf-studio') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the rlhf-studio package folder');
    dir = up;
  }
}

export function exampleWorkspace(): string {
  return path.join(packageRoot(), 'examples', 'workspace');
}

/** The committed base model: a character-level GPT pretrained on Moby-Dick by `rlhf pretrain`. */
export function bundledBaseModel(): string {
  return path.join(exampleWorkspace(), 'models', 'base-char');
}

/**
 * A file the build puts in dist/ (a wasm kernel, the gradient-thread bundle): next to the running
 * bundle, or in the package's dist/ when running from source.
 */
export function distFile(name: string): string | undefined {
  const candidates = [path.join(__dirname, name)];
  for (let dir = __dirname, i = 0; i < 6; i++, dir = path.dirname(dir)) candidates.push(path.join(dir, 'dist', name));
  return candidates.find((f) => fs.existsSync(f));
}
