/**
 * The safetensors format: 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}, then raw
 * little-endian tensor bytes. Reads F32, F16 and BF16 (as float32); writes F32, F16 or BF16
 * (rounded to nearest even).
 */
import * as fs from 'fs';
import { openRegular, readAll } from '../data/durable';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
  /** The dtype it was stored in (reading), or is to be stored in (writing; F32 when absent). */
  dtype?: FloatDtype;
}

export class SafetensorsError extends Error {}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };

let F16_TABLE: Float32Array | undefined;
/** All 65,536 half-precision values as float32, built once. */
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16ToF32(h);
  }
  return F16_TABLE;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function parseSafetensors(buf: Buffer, source = 'safetensors'): {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
} {
  if (buf.length < 8) throw new SafetensorsError(`${source}: file is too short to be safetensors`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw new SafetensorsError(`${source}: header length ${n} does not fit the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw new SafetensorsError(`${source}: header is not valid JSON`);
  }
  const body = buf.subarray(8 + n);
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = (info ?? {}) as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new SafetensorsError(`${source}: ${name} has an invalid shape`);
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every((d) => Number.isInteger(d))) throw new SafetensorsError(`${source}: ${name} has invalid data offsets`);
    const size = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets ?? [];
    if (!(dtype in DTYPE_BYTES)) throw new SafetensorsError(`${source}: ${name} has unsupported dtype ${dtype}`);
    if (!(begin >= 0 && end <= body.length && end - begin === size * DTYPE_BYTES[dtype])) {
      throw new SafetensorsError(`${source}: ${name} data offsets [${begin}, ${end}] do not match its shape or the file`);
    }
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') continue; // buffers such as attn.bias masks
    const bytes = body.subarray(begin, end);
    const data = new Float32Array(size);
    if (dtype === 'F32') {
      // copy: the Buffer may not be 4-byte aligned
      new Uint8Array(data.buffer).set(bytes);
    } else {
      const halves = new Uint16Array(size);
      new Uint8Array(halves.buffer).set(bytes); // aligned copy (little-endian host, as Node runs on)
      if (dtype === 'BF16') {
        const bits = new Uint32Array(data.buffer); // bfloat16 is the top half of a float32
        for (let i = 0; i < size; i++) bits[i] = halves[i] << 16;
      } else {
        const table = f16Table();
        for (let i = 0; i < size; i++) data[i] = table[halves[i]];
      }
    }
    tensors.set(name, { shape, data, dtype });
  }
  return { tensors, metadata };
}

/** The largest header accepted (the reference implementation's limit is 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * A safetensors file from disk: only a regular file (a FIFO or /dev/zero behind a symlink is
 * refused before anything is read), the header's length checked against the file's size first.
 */
export function readSafetensors(file: string) {
  let size: number, fd: number;
  try {
    ({ fd, size } = openRegular(file));
  } catch (e) {
    throw new SafetensorsError((e as Error).message);
  }
  try {
    if (size < 8) throw new SafetensorsError(`${file}: file is too short to be safetensors`);
    const head = Buffer.alloc(8);
    fs.readSync(fd, head, 0, 8, 0);
    const n = Number(head.readBigUInt64LE(0));
    if (n <= 0 || n > MAX_HEADER_BYTES || 8 + n > size) throw new SafetensorsError(`${file}: header length ${n} does not fit the file (${size} bytes)`);
    return parseSafetensors(readAll(fd, size), file);
  } finally {
    fs.closeSync(fd);
  }
}

/** float32 -> bfloat16 bits, rounded to nearest even (as torch's .to(torch.bfloat16)). */
function toBf16(bits: Uint32Array, out: Uint16Array): void {
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) out[i] = (b >>> 16) | 0x40; // NaN stays NaN
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}

/** float32 -> IEEE half, rounded to nearest even; overflow to infinity, subnormals kept. */
function toF16(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

const BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Serialises tensors in the order given, 8-byte aligned header as the reference writer does. */
export function serializeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new SafetensorsError(`${name}: ${t.data.length} values for shape [${t.shape}]`);
    const dtype = t.dtype ?? 'F32';
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size * BYTES[dtype]] };
    offset += size * BYTES[dtype];
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors.values()) {
    const dtype = t.dtype ?? 'F32';
    let bytes: Uint8Array;
    if (dtype === 'F32') bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    else {
      const halves = new Uint16Array(t.data.length);
      if (dtype === 'BF16') toBf16(new Uint32Array(Float32Array.from(t.data).buffer), halves);
      else for (let i = 0; i < t.data.length; i++) halves[i] = toF16(t.data[i]);
      bytes = new Uint8Array(halves.buffer);
    }
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).copy(out, pos);
    pos += bytes.byteLength;
  }
  return out;
}
