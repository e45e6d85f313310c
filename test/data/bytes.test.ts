import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from '../../src/data/bytes';

test('byte counts read as people read them: a small file in KiB, not "0.0 MiB"', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(40 * 1024), '40.0 KiB');
  assert.equal(formatBytes(3.25 * 2 ** 20), '3.3 MiB');
  assert.equal(formatBytes(1.5 * 2 ** 30), '1.5 GiB');
  assert.equal(formatBytes(NaN), '? B');
});
