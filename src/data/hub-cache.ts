/**
 * The Hugging Face cache as Transformers and huggingface_hub lay it out, so a model downloaded by
 * either is found here and the other way round:
 *   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
 *     models--org--name/refs/<revision>          the commit a branch or tag pointed to
 *     models--org--name/blobs/<etag>             file contents (git or LFS hash)
 *     models--org--name/snapshots/<commit>/<path> -> ../../blobs/<etag>
 * Resolving needs no network.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** "org/name" (or "name"): what the Hub calls a model, as opposed to a folder path. */
export function looksLikeRepoId(s: string): boolean {
  return /^(?:[\w][\w.-]{0,95}\/)?[\w][\w.-]{0,95}$/.test(s) && !s.startsWith('.') && !s.includes('..');
}

export const repoFolder = (id: string) => `models--${id.split('/').join('--')}`;

/** The snapshot folder of a cached model at a revision (branch, tag or commit), or undefined. */
export function resolveCached(id: string, revision = 'main', cacheDir = hubCacheDir()): string | undefined {
  const root = path.join(cacheDir, repoFolder(id));
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = path.join(root, 'refs', revision);
    if (!fs.existsSync(ref)) return undefined;
    commit = fs.readFileSync(ref, 'utf8').trim();
  }
  const snap = path.join(root, 'snapshots', commit);
  const complete = ['config.json', 'adapter_config.json'].some((f) => fs.existsSync(path.join(snap, f)));
  return complete ? snap : undefined;
}

/** Every model in the cache with a snapshot its main ref points to: for the model pickers. */
export function cachedModels(cacheDir = hubCacheDir()): { id: string; dir: string }[] {
  if (!fs.existsSync(cacheDir)) return [];
  const out: { id: string; dir: string }[] = [];
  for (const e of fs.readdirSync(cacheDir)) {
    if (!e.startsWith('models--')) continue;
    const id = e.slice('models--'.length).split('--').join('/');
    const dir = resolveCached(id, 'main', cacheDir);
    if (dir) out.push({ id, dir });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * A --model value as a folder: a folder as it is; a Hub id through the cache (no network).
 * Undefined when it is neither an existing folder nor a cached model.
 */
export function resolveModelPath(nameOrPath: string, from = process.cwd()): string | undefined {
  const p = path.resolve(from, nameOrPath);
  if (fs.existsSync(p)) return p;
  return looksLikeRepoId(nameOrPath) ? resolveCached(nameOrPath, 'main') : undefined;
}
