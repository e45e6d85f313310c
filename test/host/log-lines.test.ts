import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from '../helpers';
import { fileLineOf, isDawnNote, readableLine, reasonOf, runDirOf } from '../../src/host/log-lines';

test('a failure\'s reason is the worker\'s first error without its prefixes; the FILE:LINE it names is found in the workspace', () => {
  const ws = tmpDir();
  fs.mkdirSync(path.join(ws, 'data'));
  fs.writeFileSync(path.join(ws, 'data', 'broken.sft.jsonl'), '{}\n{}\n');
  const reason = reasonOf('error: rlhf sft: 1 bad record(s) in the SFT data; the first: data/broken.sft.jsonl:2: "prompt" must be a non-empty string');
  assert.equal(reason, '1 bad record(s) in the SFT data; the first: data/broken.sft.jsonl:2: "prompt" must be a non-empty string');
  assert.deepEqual(fileLineOf(reason, ws), { file: path.join(ws, 'data', 'broken.sft.jsonl'), line: 2 });
  assert.deepEqual(fileLineOf(`the first: ${path.join(ws, 'data', 'broken.sft.jsonl')}:7: bad`, '/elsewhere'), { file: path.join(ws, 'data', 'broken.sft.jsonl'), line: 7 });
  assert.equal(fileLineOf('data/missing.sft.jsonl:2: bad', ws), undefined, 'a file that is not there is not offered');
  assert.equal(fileLineOf('models/base-char has no score head (score.weight): train it with rlhf rm', ws), undefined);
});

test('the run folder a stage announces, and a JSON result as words for the log', () => {
  assert.equal(runDirOf('run /w/.rlhf/runs/sft-1: 720 demonstrations (80 held out)'), '/w/.rlhf/runs/sft-1');
  assert.equal(runDirOf('resuming /w/.rlhf/runs/sft-1 from step 3'), '/w/.rlhf/runs/sft-1');
  assert.equal(runDirOf('backend: wasm'), undefined);
  assert.equal(
    readableLine('{"type":"result","run":"/w/r","status":"completed","step":80,"final_model":"/w/r/checkpoints/final","metrics":{"step":80,"time":1.5,"loss":0.47389632,"eval/loss":0.5}}'),
    'result: completed at step 80; model in /w/r/checkpoints/final; loss 0.4739, eval/loss 0.5',
  );
  assert.equal(readableLine('sft step 3/80 loss 2.1'), 'sft step 3/80 loss 2.1');
  assert.equal(readableLine('{"type":"result", broken'), '{"type":"result", broken');
});

test("Dawn's notes about its own limits are told apart from the worker's lines (kept at debug level)", () => {
  assert.equal(isDawnNote('Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.'), true);
  assert.equal(isDawnNote('Warning: the data may be invalid'), false);
  assert.equal(isDawnNote('rlhf sft: WebGPU: out of GPU memory (...)'), false);
});
