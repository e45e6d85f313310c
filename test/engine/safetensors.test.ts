import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, serializeSafetensors, SafetensorsError } from '../../src/engine/safetensors';

test('safetensors round-trips float32 tensors bit for bit', () => {
  const a = new Float32Array([1.5, -0, NaN, 3.4028234663852886e38, 1e-45, -2]);
  const t = new Map([['x.weight', { shape: [2, 3], data: a }], ['b', { shape: [1], data: new Float32Array([7]) }]]);
  const buf = serializeSafetensors(t, { format: 'pt' });
  assert.equal((8 + Number(buf.readBigUInt64LE(0))) % 8, 0, 'header padded to 8 bytes');
  const back = parseSafetensors(buf);
  assert.deepEqual([...back.tensors.keys()], ['x.weight', 'b']);
  assert.deepEqual(Buffer.from(back.tensors.get('x.weight')!.data.buffer), Buffer.from(a.buffer));
  assert.deepEqual(back.metadata, { format: 'pt' });
});

test('safetensors reads F16 and BF16 as float32', () => {
  const header = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] } });
  const buf = Buffer.alloc(8 + header.length + 6);
  buf.writeBigUInt64LE(BigInt(header.length));
  buf.write(header, 8);
  buf.writeUInt16LE(0x3c00, 8 + header.length); // 1.0
  buf.writeUInt16LE(0xc000, 10 + header.length); // -2.0
  buf.writeUInt16LE(0x3fc0, 12 + header.length); // bf16 1.5
  const t = parseSafetensors(buf).tensors;
  assert.deepEqual([...t.get('h')!.data], [1, -2]);
  assert.deepEqual([...t.get('b')!.data], [1.5]);
});

test('a truncated or garbled safetensors file is a clear error', () => {
  const buf = serializeSafetensors(new Map([['x', { shape: [4], data: new Float32Array(4) }]]));
  assert.throws(() => parseSafetensors(buf.subarray(0, buf.length - 3)), SafetensorsError);
  assert.throws(() => parseSafetensors(Buffer.from('not a file')), /header length|too short/);
});
