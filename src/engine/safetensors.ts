/**
 * The safetensors format: 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}, then raw
 * little-endian tensor bytes. Reads F32, F16 and BF16 (as float32); writes F32.
 */
import * as fs from 'fs';
import { openRegular, readAll } from '../data/durable';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };

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
      for (let i = 0; i < size; i++) {
        const h = bytes.readUInt16LE(2 * i);
        data[i] = dtype === 'F16' ? f16ToF32(h) : new Float32Array(new Uint32Array([h << 16]).buffer)[0];
      }
    }
    tensors.set(name, { shape, data });
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

/** Serialises tensors in the order given, 8-byte aligned header as the reference writer does. */
export function serializeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new SafetensorsError(`${name}: ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + size * 4] };
    offset += size * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}
