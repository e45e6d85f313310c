/**
 * A Hugging Face Hub on 127.0.0.1 for tests, answering the URLs a download uses: the model's
 * revision (/api/models/ID/revision/REV), its file tree (/api/models/ID/tree/SHA) and the files
 * (/ID/resolve/SHA/PATH, with Range requests). Models are folders this project makes; a model
 * can be gated (401 without the right bearer token); `cutAfter` breaks the connection once,
 * after that many bytes of a file, as a network failure would.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';

export interface HubModel {
  id: string;
  dir: string;
  gatedToken?: string;
  /** List this file with a path as its hash, as a broken or hostile server might. */
  badOid?: string;
}

export interface HubServer {
  url: string;
  requests: { method: string; url: string; range?: string }[];
  /** Break the next transfer of this file after n bytes (once). */
  cutAfter(file: string, n: number): void;
  /** Slow transfers down (bytes per second), so a test can kill a client mid-file. */
  throttle(bytesPerSecond: number | undefined): void;
  close(): Promise<void>;
}

export async function startHubServer(models: HubModel[]): Promise<HubServer> {
  const byId = new Map(models.map((m) => [m.id, m]));
  const sha = (id: string) => crypto.createHash('sha1').update(`commit:${id}`).digest('hex');
  const requests: HubServer['requests'] = [];
  const cuts = new Map<string, number>();
  let rate: number | undefined;
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push({ method: req.method!, url: url.pathname, range: req.headers.range });
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    const file = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const id = decodeURIComponent((api ?? file)?.[1] ?? '');
    const m = byId.get(id);
    if (!m) return json(res, 404, { error: 'Repository not found' });
    if (m.gatedToken && req.headers.authorization !== `Bearer ${m.gatedToken}`) {
      return json(res, 401, { error: `Access to model ${id} is restricted. You must have access to it and be authenticated to access it.` });
    }
    const files = fs.readdirSync(m.dir).filter((f) => fs.statSync(path.join(m.dir, f)).isFile());
    if (api?.[2] === 'revision') return json(res, 200, { _id: `id-${id}`, id, sha: sha(id), private: false, gated: m.gatedToken ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2026-11-30T00:00:00.000Z' });
    if (api?.[2] === 'tree') {
      return json(res, 200, files.map((f) => {
        const data = fs.readFileSync(path.join(m.dir, f));
        const oid = crypto.createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
        const lfs = f.endsWith('.safetensors') ? { oid: crypto.createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 } : undefined;
        if (f === m.badOid) return { type: 'file', oid: `../../${f}`, size: data.length, path: f };
        return { type: 'file', oid, size: data.length, path: f, ...(lfs ? { lfs } : {}) };
      }));
    }
    if (file) {
      const f = decodeURIComponent(file[3]);
      if (!files.includes(f)) return json(res, 404, { error: 'Entry not found' });
      const data = fs.readFileSync(path.join(m.dir, f));
      let start = 0;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range) start = Number(range[1]);
      const body = data.subarray(start);
      res.writeHead(range ? 206 : 200, { 'Content-Length': body.length, ...(range ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
      const cut = cuts.get(f);
      if (cut !== undefined) {
        cuts.delete(f);
        res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      if (!rate) return res.end(body);
      // throttled: 1/20 s slices
      let o = 0;
      const slice = Math.max(1, Math.floor(rate / 20));
      const tick = () => {
        if (res.destroyed) return;
        if (o >= body.length) return res.end();
        res.write(body.subarray(o, o + slice));
        o += slice;
        setTimeout(tick, 50);
      };
      return tick();
    }
    json(res, 404, { error: 'not found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    cutAfter: (f, n) => cuts.set(f, n),
    throttle: (b) => (rate = b),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
