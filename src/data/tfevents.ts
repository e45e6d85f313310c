/**
 * TensorBoard's event files (`events.out.tfevents.*`), read without TensorFlow: the scalars a
 * trainer logged, so a run made elsewhere (TRL and every Hugging Face Trainer write them under
 * `output_dir/runs/<date>_<host>/`; OpenRLHF with `--use_tensorboard`) shows in the dashboard.
 *
 * The format, as TensorFlow's record writer and the `Event` protocol buffer define it:
 *   file   = record*
 *   record = uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes,
 *            `length` bytes of a serialized Event, uint32 masked CRC-32C of them
 *   masked(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32)
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; ... }
 *   Summary { repeated Value value = 1 }
 *   Value   { string tag = 7; float simple_value = 2; TensorProto tensor = 8; SummaryMetadata metadata = 9; ... }
 * A scalar is either `simple_value` (tensorboardX, torch.utils.tensorboard, TF1) or a one-element
 * float tensor whose tag's metadata names the `scalars` plugin (TF2's tf.summary; the metadata is
 * written with a tag's first value only, so it is remembered per file). Everything else (text,
 * histograms, images, hparams) is skipped. A record cut short at the end of the file (the trainer
 * is still writing it) ends the read quietly; a record whose checksum fails ends it with a problem
 * (TensorBoard stops there too). Pure Node, no engine.
 */
import { readRegularFile } from './durable';

export interface Scalar {
  tag: string;
  step: number;
  /** Seconds since the epoch, as the writer's clock had it. */
  wallTime: number;
  value: number;
}

export interface EventFile {
  file: string;
  scalars: Scalar[];
  /** The first event's wall time (the writer's start), when the file has any event. */
  startedAt?: number;
  /** "brain.Event:2", from the file's first event. */
  fileVersion?: string;
  /** Records read (every event, scalar or not). */
  records: number;
  /** Why the read stopped before the end, when it did: a failed checksum, or a record cut short. */
  stoppedEarly?: string;
}

const MAX_BYTES = 1 << 30;
const MAX_RECORD = 64 << 20;

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), one table of 256 entries
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(b: Uint8Array, start = 0, end = b.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(b: Uint8Array, start = 0, end = b.length): number {
  const c = crc32c(b, start, end);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

// ---- protocol buffer wire format: just what the messages above need ----

type Field = { n: number; wire: number; start: number; end: number; varint: number };

/** A varint as a Number (exact to 2^53; steps and sizes never come near). */
function varint(b: Uint8Array, pos: { i: number }, end: number): number {
  let v = 0;
  let mul = 1;
  for (let k = 0; k < 10; k++) {
    if (pos.i >= end) throw new Error('a varint runs past its message');
    const byte = b[pos.i++];
    v += (byte & 0x7f) * mul;
    if (!(byte & 0x80)) return v;
    mul *= 128;
  }
  throw new Error('a varint longer than 10 bytes');
}

/** The fields of one message, in order; unknown ones are there too and the reader skips them. */
function fields(b: Uint8Array, start: number, end: number): Field[] {
  const out: Field[] = [];
  const pos = { i: start };
  while (pos.i < end) {
    const key = varint(b, pos, end);
    const n = Math.floor(key / 8);
    const wire = key & 7;
    const f: Field = { n, wire, start: pos.i, end: pos.i, varint: 0 };
    if (wire === 0) f.varint = varint(b, pos, end);
    else if (wire === 1) pos.i += 8;
    else if (wire === 5) pos.i += 4;
    else if (wire === 2) {
      const len = varint(b, pos, end);
      f.start = pos.i;
      pos.i += len;
    } else throw new Error(`protocol buffer wire type ${wire} (groups are not used by these messages)`);
    if (pos.i > end) throw new Error('a field runs past its message');
    f.end = pos.i;
    if (wire !== 2) f.start = f.end - (wire === 1 ? 8 : wire === 5 ? 4 : 0);
    out.push(f);
  }
  return out;
}

const utf8 = new TextDecoder();
const str = (b: Uint8Array, f: Field) => utf8.decode(b.subarray(f.start, f.end));
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// TensorFlow's DataType enum: the numeric ones a scalar can have
const DT_FLOAT = 1, DT_DOUBLE = 2, DT_INT32 = 3, DT_INT64 = 9, DT_BFLOAT16 = 14, DT_HALF = 19;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 is a float32's upper half. */
const bfloat16 = (bits: number) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

/** The value of a TensorProto holding exactly one number, else undefined. */
function tensorScalar(b: Uint8Array, start: number, end: number): number | undefined {
  let dtype = 0;
  let elements = 1;
  const values: number[] = [];
  let content: Field | undefined;
  const dv = view(b);
  for (const f of fields(b, start, end)) {
    if (f.n === 1 && f.wire === 0) dtype = f.varint;
    else if (f.n === 2 && f.wire === 2) {
      // TensorShapeProto { repeated Dim dim = 2 { int64 size = 1 } }
      for (const d of fields(b, f.start, f.end)) if (d.n === 2 && d.wire === 2) for (const s of fields(b, d.start, d.end)) if (s.n === 1 && s.wire === 0) elements *= s.varint;
    } else if (f.n === 4 && f.wire === 2) content = f;
    else if (f.n === 5) {
      // float_val, packed or not
      if (f.wire === 5) values.push(dv.getFloat32(f.start, true));
      else if (f.wire === 2) for (let i = f.start; i + 4 <= f.end; i += 4) values.push(dv.getFloat32(i, true));
    } else if (f.n === 6) {
      if (f.wire === 1) values.push(dv.getFloat64(f.start, true));
      else if (f.wire === 2) for (let i = f.start; i + 8 <= f.end; i += 8) values.push(dv.getFloat64(i, true));
    } else if (f.n === 7 || f.n === 10 || f.n === 13) {
      // int_val, int64_val, half_val (fp16 and bfloat16 bits in an int32): varints, packed or not
      const raw: number[] = [];
      if (f.wire === 0) raw.push(f.varint);
      else if (f.wire === 2) for (const pos = { i: f.start }; pos.i < f.end; ) raw.push(varint(b, pos, f.end));
      // a negative integer is its 64-bit two's complement
      for (const r of raw) values.push(f.n === 13 ? (dtype === DT_BFLOAT16 ? bfloat16(r & 0xffff) : halfToFloat(r & 0xffff)) : r >= 2 ** 63 ? r - 2 ** 64 : r);
    }
  }
  if (elements !== 1) return undefined;
  if (content) {
    const c = b.subarray(content.start, content.end);
    const cv = view(c);
    if (dtype === DT_FLOAT && c.length === 4) return cv.getFloat32(0, true);
    if (dtype === DT_DOUBLE && c.length === 8) return cv.getFloat64(0, true);
    if (dtype === DT_INT32 && c.length === 4) return cv.getInt32(0, true);
    if (dtype === DT_INT64 && c.length === 8) return Number(cv.getBigInt64(0, true));
    if (dtype === DT_HALF && c.length === 2) return halfToFloat(cv.getUint16(0, true));
    if (dtype === DT_BFLOAT16 && c.length === 2) return bfloat16(cv.getUint16(0, true));
    return undefined;
  }
  if (![DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF, DT_BFLOAT16].includes(dtype)) return undefined;
  return values.length === 1 ? values[0] : undefined;
}

/** SummaryMetadata { PluginData plugin_data = 1 { string plugin_name = 1 } } */
function pluginName(b: Uint8Array, start: number, end: number): string | undefined {
  for (const f of fields(b, start, end)) if (f.n === 1 && f.wire === 2) for (const p of fields(b, f.start, f.end)) if (p.n === 1 && p.wire === 2) return str(b, p);
  return undefined;
}

/** The scalars of one event file, in the order written. */
export function readEventFile(file: string): EventFile {
  const b = readRegularFile(file, MAX_BYTES);
  const out: EventFile = { file, scalars: [], records: 0 };
  const plugins = new Map<string, string>(); // a tag's plugin, from its first value's metadata
  const dv = view(b);
  let at = 0;
  while (at < b.length) {
    if (at + 12 > b.length) {
      out.stoppedEarly = `a record cut short at byte ${at} (the writer may still be writing it)`;
      break;
    }
    if (dv.getUint32(at + 8, true) !== maskedCrc32c(b, at, at + 8)) {
      out.stoppedEarly = `the length of the record at byte ${at} fails its checksum: the rest of the file is not read`;
      break;
    }
    const length = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
    if (length > MAX_RECORD) {
      out.stoppedEarly = `a record of ${length} bytes at byte ${at}, more than an event holds: the rest of the file is not read`;
      break;
    }
    const start = at + 12;
    const end = start + length;
    if (end + 4 > b.length) {
      out.stoppedEarly = `a record cut short at byte ${at} (the writer may still be writing it)`;
      break;
    }
    if (dv.getUint32(end, true) !== maskedCrc32c(b, start, end)) {
      out.stoppedEarly = `the record at byte ${at} fails its checksum: the rest of the file is not read`;
      break;
    }
    at = end + 4;
    out.records++;
    let wallTime = 0;
    let step = 0;
    let summary: Field | undefined;
    try {
      for (const f of fields(b, start, end)) {
        if (f.n === 1 && f.wire === 1) wallTime = dv.getFloat64(f.start, true);
        else if (f.n === 2 && f.wire === 0) step = f.varint >= 2 ** 63 ? f.varint - 2 ** 64 : f.varint;
        else if (f.n === 3 && f.wire === 2) out.fileVersion ??= str(b, f);
        else if (f.n === 5 && f.wire === 2) summary = f;
      }
      out.startedAt ??= wallTime;
      if (!summary) continue;
      for (const v of fields(b, summary.start, summary.end)) {
        if (v.n !== 1 || v.wire !== 2) continue;
        let tag: string | undefined;
        let simple: number | undefined;
        let tensor: Field | undefined;
        let plugin: string | undefined;
        for (const f of fields(b, v.start, v.end)) {
          if (f.n === 7 && f.wire === 2) tag = str(b, f);
          else if (f.n === 1 && f.wire === 2) tag ??= str(b, f); // node_name: the tag of the oldest writers
          else if (f.n === 2 && f.wire === 5) simple = dv.getFloat32(f.start, true);
          else if (f.n === 8 && f.wire === 2) tensor = f;
          else if (f.n === 9 && f.wire === 2) plugin = pluginName(b, f.start, f.end);
        }
        if (tag === undefined) continue;
        if (plugin !== undefined && !plugins.has(tag)) plugins.set(tag, plugin);
        const value = simple ?? (tensor && plugins.get(tag) === 'scalars' ? tensorScalar(b, tensor.start, tensor.end) : undefined);
        if (value !== undefined) out.scalars.push({ tag, step, wallTime, value });
      }
    } catch {
      // the checksum held, so the writer wrote this: a message this reader does not know; skip it
      continue;
    }
  }
  return out;
}
