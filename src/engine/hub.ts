/**
 * Downloads from the Hugging Face Hub into the standard cache (hub-cache.ts). The repository's
 * commit and file list come from @huggingface/hub (modelInfo, listFiles); the bytes are fetched
 * here because the library's downloadFileToCacheDir starts every file from zero and reports no
 * progress: a file continues from its .incomplete part with an HTTP Range request, LFS files are
 * checked against their SHA-256, and the snapshot's links appear only when every file is
 * complete, so the cache never holds half a model. HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE/HF_HOME
 * and HF_HUB_OFFLINE are honoured.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { listFiles, modelInfo } from '@huggingface/hub';
import { hubCacheDir, looksLikeRepoId, repoFolder, resolveCached } from '../data/hub-cache';
import { formatBytes } from '../data/bytes';

export class HubError extends Error {}

export interface DownloadProgress {
  file: string;
  /** Bytes of all the files the model needs, done and in all. */
  done: number;
  total: number;
  bytesPerSecond: number;
  etaSeconds: number;
}

export interface DownloadOptions {
  revision?: string;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Test hook: fetch to use (default: global fetch). */
  fetch?: typeof fetch;
}

/** What a model folder needs: configs, tokenizer files, safetensors weights (not .bin, ONNX, GGUF, ...). */
export function neededFile(p: string): boolean {
  if (p.includes('/')) return false;
  return /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|adapter_config|model\.safetensors\.index)\.json$/.test(p)
    || /\.safetensors$/.test(p)
    || /^(vocab\.json|merges\.txt|tokenizer\.model|chat_template\.jinja|README\.md)$/.test(p);
}

const endpointOf = (env: NodeJS.ProcessEnv) => (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
const tokenOf = (env: NodeJS.ProcessEnv) => env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
const offline = (env: NodeJS.ProcessEnv) => /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE ?? '');

function hubFailure(id: string, e: unknown, env: NodeJS.ProcessEnv): HubError {
  const status = (e as { statusCode?: number }).statusCode;
  if (status === 401 || status === 403) {
    return new HubError(tokenOf(env)
      ? `${id}: access denied with the token in HF_TOKEN (status ${status}); accept the model's licence on its Hub page with that account`
      : `${id} is gated or private (status ${status}): accept its licence on the Hub, then set HF_TOKEN to an access token`);
  }
  if (status === 404) return new HubError(`${id}: no such model on ${endpointOf(env)} (status 404); check the name (org/name) and --revision`);
  const msg = (e as Error).message?.split('\n')[0] ?? String(e);
  return new HubError(`${id}: cannot reach ${endpointOf(env)} (${msg}); check the network, or use a model already in the cache`);
}

/**
 * The model's snapshot folder in the cache: there already (no network), or downloaded (only the
 * files a model needs). Resumable: run it again after an interruption.
 */
export async function downloadModel(id: string, o: DownloadOptions = {}): Promise<string> {
  const env = o.env ?? process.env;
  const revision = o.revision ?? 'main';
  if (!looksLikeRepoId(id)) throw new HubError(`"${id}" is not a Hub model id (org/name)`);
  const cacheDir = hubCacheDir(env);
  if (offline(env)) {
    const dir = resolveCached(id, revision, cacheDir);
    if (!dir) throw new HubError(`${id} (${revision}) is not in the cache ${cacheDir}, and HF_HUB_OFFLINE is set`);
    return dir;
  }
  const creds = { hubUrl: endpointOf(env), accessToken: tokenOf(env), fetch: o.fetch };
  let sha: string;
  let files: { path: string; size: number; oid: string; lfs?: { oid: string; size: number } }[] = [];
  try {
    const info = (await modelInfo({ name: id, revision, additionalFields: ['sha'], ...creds })) as { sha?: string };
    if (!info.sha || !/^[0-9a-f]{40}$/.test(info.sha)) throw new HubError(`${id}: the Hub gave no commit for revision ${revision}`);
    sha = info.sha;
    for await (const f of listFiles({ repo: { type: 'model', name: id }, revision: sha, recursive: true, ...creds })) {
      if (f.type !== 'file' || !neededFile(f.path)) continue;
      // the blob's file name in the cache is its hash: anything else (a missing one, a path) is refused
      const oid = f.lfs?.oid ?? f.oid;
      if (typeof oid !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(oid)) throw new HubError(`${id}: the Hub listed ${f.path} without a valid hash (${JSON.stringify(oid ?? null)}); not downloading it`);
      files.push({ path: f.path, size: f.lfs?.size ?? f.size, oid: f.oid ?? oid, lfs: f.lfs?.oid ? { oid: f.lfs.oid, size: f.lfs.size } : undefined });
    }
  } catch (e) {
    if (e instanceof HubError) throw e;
    throw hubFailure(id, e, env);
  }
  if (!files.some((f) => f.path === 'config.json' || f.path === 'adapter_config.json')) throw new HubError(`${id} has no config.json: not a Transformers model`);
  if (!files.some((f) => f.path.endsWith('.safetensors'))) throw new HubError(`${id} has no safetensors weights (only pytorch_model.bin or other formats, which are not read)`);
  files = files.sort((a, b) => a.size - b.size); // small files first: a bad repository fails fast

  const root = path.join(cacheDir, repoFolder(id));
  const blobs = path.join(root, 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  const etag = (f: (typeof files)[number]) => f.lfs?.oid ?? f.oid;
  const have = (f: (typeof files)[number]) => {
    const b = path.join(blobs, etag(f));
    return fs.existsSync(b) && fs.statSync(b).size === f.size;
  };
  // room for what is missing
  const missing = files.filter((f) => !have(f));
  const need = missing.reduce((a, f) => a + f.size - partSize(path.join(blobs, etag(f) + '.incomplete')), 0);
  const free = freeBytes(root);
  if (free !== undefined && need > free) throw new HubError(`${id} needs ${gb(need)} more in ${cacheDir}; ${gb(free)} is free`);

  const total = files.reduce((a, f) => a + f.size, 0);
  let done = files.filter(have).reduce((a, f) => a + f.size, 0);
  const t0 = performance.now();
  const startDone = done;
  for (const f of missing) {
    const blob = path.join(blobs, etag(f));
    const part = blob + '.incomplete';
    let have0 = partSize(part);
    if (have0 > f.size) {
      fs.rmSync(part);
      have0 = 0;
    }
    done += have0;
    const url = `${endpointOf(env)}/${id}/resolve/${sha}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    const headers: Record<string, string> = {};
    if (tokenOf(env)) headers.Authorization = `Bearer ${tokenOf(env)}`;
    if (have0 > 0) headers.Range = `bytes=${have0}-`;
    let res: Response;
    try {
      res = await (o.fetch ?? fetch)(url, { headers, signal: o.signal });
    } catch (e) {
      if (o.signal?.aborted) throw new HubError(`download of ${id} cancelled; run it again to continue where it stopped`);
      throw hubFailure(id, e, env);
    }
    if (!res.ok) throw hubFailure(id, { statusCode: res.status, message: `status ${res.status}` }, env);
    const append = have0 > 0 && res.status === 206;
    if (have0 > 0 && !append) done -= have0; // the server sent the whole file: start it again
    const out = fs.openSync(part, append ? 'a' : 'w');
    try {
      const reader = res.body!.getReader();
      let last = 0;
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (o.signal?.aborted) throw new HubError(`download of ${id} cancelled; run it again to continue where it stopped`);
          throw new HubError(`${id}: the connection broke during ${f.path} (${(e as Error).message}); run it again to continue where it stopped`);
        }
        if (chunk.done) break;
        fs.writeSync(out, chunk.value);
        done += chunk.value.length;
        const now = performance.now();
        if (now - last > 250) {
          last = now;
          const rate = ((done - startDone) / (now - t0)) * 1000;
          o.onProgress?.({ file: f.path, done, total, bytesPerSecond: rate, etaSeconds: rate > 0 ? (total - done) / rate : Infinity });
        }
      }
      fs.fsyncSync(out);
    } finally {
      fs.closeSync(out);
    }
    const size = fs.statSync(part).size;
    if (size !== f.size) throw new HubError(`${id}: ${f.path} arrived with ${size} of ${f.size} bytes; run it again to continue where it stopped`);
    if (f.lfs && (await sha256(part)) !== f.lfs.oid) {
      fs.rmSync(part);
      throw new HubError(`${id}: ${f.path} does not match its SHA-256 on the Hub (corrupt transfer); it was deleted, run it again`);
    }
    fs.renameSync(part, blob);
  }
  // every blob is complete: link the snapshot, then point the revision at it
  const snap = path.join(root, 'snapshots', sha);
  for (const f of files) {
    const link = path.join(snap, f.path);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync(path.relative(path.dirname(link), path.join(blobs, etag(f))), link);
  }
  if (revision !== sha) {
    fs.mkdirSync(path.join(root, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(root, 'refs', revision), sha);
  }
  o.onProgress?.({ file: '', done: total, total, bytesPerSecond: ((done - startDone) / Math.max(1, performance.now() - t0)) * 1000, etaSeconds: 0 });
  return snap;
}

const partSize = (p: string) => (fs.existsSync(p) ? fs.statSync(p).size : 0);
const gb = formatBytes;

function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

async function sha256(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
