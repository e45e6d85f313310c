/**
 * Files that survive crashes and careless neighbours:
 *   - writes that land whole or not at all (temporary file, fsync, rename, then fsync of the folder,
 *     without which the rename itself may be lost in a power cut);
 *   - an exclusive lock between processes (a lock file created with O_EXCL holding the owner's pid and
 *     host; a lock whose owner died on this host, or that is older than `staleMs` on another host, is
 *     broken), so writers of one file or one run folder take turns;
 *   - bounded reads that open only regular files (never a FIFO, a device or, where asked, a symlink)
 *     and never more than a cap, so a hostile workspace cannot hang or exhaust the reader.
 * Pure Node: the extension host, the CLI and the worker share it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Flushes a folder's entries (a create or rename in it) to disk. A no-op where folders cannot be opened (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* Windows cannot fsync a directory; NTFS journals renames */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes a file and flushes it (not its folder). */
export function writeFileSynced(file: string, content: string | Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces a file whole or not at all: a temporary sibling, flushed, renamed over it, the folder flushed. */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    writeFileSynced(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

// ---- locks ---------------------------------------------------------------------------------

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
  what?: string;
}

export class LockedError extends Error {
  constructor(readonly lockFile: string, readonly owner: LockOwner | undefined, message: string) {
    super(message);
  }
}

function readOwner(lockFile: string): LockOwner | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
    return v && typeof v.pid === 'number' && typeof v.host === 'string' ? (v as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock is stale, or undefined when its owner may still hold it. */
export function staleReason(lockFile: string, staleMs: number): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(lockFile);
  } catch {
    return undefined; // gone: not stale, just free
  }
  const owner = readOwner(lockFile);
  if (!owner) return Date.now() - st.mtimeMs > 2000 ? 'unreadable and older than 2 s' : undefined; // a creator may still be writing it
  if (owner.host === os.hostname()) return alive(owner.pid) ? undefined : `pid ${owner.pid} is no longer running`;
  return Date.now() - st.mtimeMs > staleMs ? `not refreshed for ${Math.round((Date.now() - st.mtimeMs) / 1000)} s` : undefined;
}

export function describeOwner(o: LockOwner | undefined): string {
  return o ? `pid ${o.pid} on ${o.host}${o.what ? ` (${o.what})` : ''} since ${o.since}` : 'another process';
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

/** Takes the lock once, or says who holds it. Breaks a stale lock (dead owner) first. */
export function tryLock(lockFile: string, what?: string, staleMs = 10 * 60_000): { ok: true } | { ok: false; owner: LockOwner | undefined } {
  const me: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lockFile, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(me) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      return { ok: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!staleReason(lockFile, staleMs)) break;
    // break it only if it is still the same stale lock (a narrow window remains; documented in the README)
    const before = fs.readFileSync(lockFile, 'utf8');
    try {
      if (fs.readFileSync(lockFile, 'utf8') === before) fs.unlinkSync(lockFile);
    } catch {
      /* someone else broke it first */
    }
  }
  return { ok: false, owner: readOwner(lockFile) };
}

export function unlock(lockFile: string): void {
  const o = readOwner(lockFile);
  if (o && o.pid === process.pid && o.host === os.hostname()) fs.rmSync(lockFile, { force: true });
}

/**
 * Runs `fn` holding an exclusive lock on `lockFile`, waiting up to `timeoutMs` for it (short
 * critical sections: an append, an undo). Synchronous, so callers keep their order.
 */
export function withLock<T>(lockFile: string, fn: () => T, o: { timeoutMs?: number; what?: string; staleMs?: number } = {}): T {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    const r = tryLock(lockFile, o.what, o.staleMs ?? 30_000);
    if (r.ok) break;
    if (Date.now() > deadline) throw new LockedError(lockFile, r.owner, `${lockFile} is locked by ${describeOwner(r.owner)}; try again, or delete the lock file if that process is gone`);
    sleepSync(wait);
  }
  try {
    return fn();
  } finally {
    unlock(lockFile);
  }
}

// ---- bounded reads -------------------------------------------------------------------------

export class UnsafeFileError extends Error {}

export interface OpenRegular {
  fd: number;
  size: number;
}

/**
 * Opens a file for reading only if it is a regular file: a FIFO would block, a device would never
 * end. O_NONBLOCK makes the open of a FIFO return at once; `noFollow` refuses a symlink itself.
 */
export function openRegular(file: string, o: { noFollow?: boolean } = {}): OpenRegular {
  const C = fs.constants;
  const flags = C.O_RDONLY | (C.O_NONBLOCK ?? 0) | (o.noFollow ? C.O_NOFOLLOW ?? 0 : 0);
  let fd: number;
  try {
    fd = fs.openSync(file, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') throw new UnsafeFileError(`${file} is a symbolic link; refused`);
    if (code === 'ENOENT') throw new UnsafeFileError(`${file}: file not found`);
    throw new UnsafeFileError(`${file}: ${(e as Error).message}`);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    const kind = st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isDirectory() ? 'a folder' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new UnsafeFileError(`${file} is ${kind}, not a regular file; refused`);
  }
  return { fd, size: st.size };
}

/** A whole regular file of at most `maxBytes` (a larger one is refused, naming both sizes). */
export function readRegularFile(file: string, maxBytes: number, o: { noFollow?: boolean } = {}): Buffer {
  const { fd, size } = openRegular(file, o);
  try {
    if (size > maxBytes) throw new UnsafeFileError(`${file} is ${size} bytes, over the limit of ${maxBytes}; refused`);
    return readAll(fd, size);
  } finally {
    fs.closeSync(fd);
  }
}

/** The first `size` bytes of an open file (fewer if it is shorter). */
export function readAll(fd: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = fs.readSync(fd, b, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

/** The last `maxBytes` of a regular file, starting at a line boundary. */
export function readTail(file: string, maxBytes: number, o: { noFollow?: boolean } = {}): string {
  const { fd, size } = openRegular(file, o);
  try {
    const start = Math.max(0, size - maxBytes);
    const b = Buffer.allocUnsafe(size - start);
    const n = fs.readSync(fd, b, 0, b.length, start);
    let text = b.subarray(0, n).toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `file`, with every symlink resolved, lies inside `root` (also resolved). */
export function insideFolder(file: string, root: string): boolean {
  const real = (p: string): string => {
    // a file that does not exist yet: resolve its folder
    try {
      return fs.realpathSync(p);
    } catch {
      return path.join(real(path.dirname(p)), path.basename(p));
    }
  };
  const rel = path.relative(real(root), real(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// ---- folders replaced atomically -----------------------------------------------------------

/** Test hook: die (SIGKILL) at a named point of writeDirAtomic, to prove every point recoverable. */
const CRASH_AT = process.env.RLHF_TEST_CRASH_AT;
function crashPoint(name: string): void {
  if (CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}

const TMP_RE = /^\.tmp-(\d+-\d+)-(new|old)-(.+)$/;

/**
 * Fills a temporary sibling of `dir`, then puts it in place. Replacing an existing folder takes two
 * renames (old aside, new in); whatever point a crash hits, `recoverTemporary` on the parent finds
 * one complete copy: the new one once it was filled, else the old one. No instant leaves neither.
 */
export function writeDirAtomic(dir: string, fill: (tmp: string) => void): void {
  const parent = path.dirname(path.resolve(dir));
  const name = path.basename(dir);
  fs.mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${Date.now()}`;
  const tmp = path.join(parent, `.tmp-${tag}-new-${name}`);
  const old = path.join(parent, `.tmp-${tag}-old-${name}`);
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncDir(tmp);
    crashPoint('filled');
    if (fs.existsSync(dir)) {
      fs.renameSync(dir, old);
      fsyncDir(parent);
      crashPoint('old-aside');
      fs.renameSync(tmp, dir);
      fsyncDir(parent);
      crashPoint('new-in-place');
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dir);
      fsyncDir(parent);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(dir) && fs.existsSync(old)) fs.renameSync(old, dir);
    throw e;
  }
}

/**
 * After a crash inside writeDirAtomic: puts back the folder a crash left aside (the filled new copy
 * if there is one, else the old one) and removes what is left over. Returns what it did.
 */
export function recoverTemporary(parent: string): string[] {
  if (!fs.existsSync(parent)) return [];
  const done: string[] = [];
  const names = fs.readdirSync(parent);
  for (const n of names) {
    const m = TMP_RE.exec(n);
    if (!m || m[2] !== 'old') continue;
    const [, tag, , name] = m;
    const target = path.join(parent, name);
    if (fs.existsSync(target)) continue;
    const fresh = `.tmp-${tag}-new-${name}`;
    // the old copy is set aside only once the new one is filled: with both present, the new one is whole
    const use = names.includes(fresh) ? fresh : n;
    fs.renameSync(path.join(parent, use), target);
    done.push(`${name} restored from ${use === fresh ? 'its new copy' : 'its previous copy'}`);
  }
  for (const n of fs.readdirSync(parent)) {
    if (!n.startsWith('.tmp-')) continue;
    fs.rmSync(path.join(parent, n), { recursive: true, force: true });
    done.push(`removed ${n}`);
  }
  if (done.length) fsyncDir(parent);
  return done;
}
