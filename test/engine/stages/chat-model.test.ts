import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveTinyChatLlama, testBackend, tmpDir } from '../../helpers';
import { readModelDir } from '../../../src/engine/checkpoint';
import { tokenizeExample, sft } from '../../../src/engine/stages/sft';
import { toSftExample } from '../../../src/data/sft';
import { toPpoPrompt } from '../../../src/data/ppo';
import { contextText } from '../../../src/engine/chat';
import { RunDir } from '../../../src/data/run';

before(testBackend);

test('a model with a chat template: SFT records through the template, the loss on the assistant turn and its end-of-turn only', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'chat'));
  const { tokenizer: tok, config, dtype } = readModelDir(path.join(root, 'chat'));
  assert.equal(config.arch, 'llama');
  assert.equal(dtype, 'BF16');
  assert.ok(tok.chat, 'tokenizer_config.json chat_template');
  assert.equal(tok.decode([tok.eot]), '<|im_end|>');
  const ex = toSftExample({ prompt: 'Say hi', response: 'hi there' }, 'f', 1);
  assert.ok('segments' in ex);
  const t = tokenizeExample(ex, tok, 200);
  assert.equal(tok.decode(t.ids), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\nhi there<|im_end|>\n');
  assert.equal(tok.decode(t.ids.filter((_, i) => t.weights[i] === 1)), 'hi there<|im_end|>\n');
  // a conversation: both assistant turns trained, nothing else
  const conv = toSftExample({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }, { role: 'assistant', content: 'd' }] }, 'f', 2);
  assert.ok('segments' in conv);
  const ct = tokenizeExample(conv, tok, 200);
  assert.equal(tok.decode(ct.ids.filter((_, i) => ct.weights[i] === 1)), 'b<|im_end|>\nd<|im_end|>\n');
  // PPO prompts and generation read the conversation with the generation prompt
  const p = toPpoPrompt({ prompt: 'Say hi' }, 'f', 1);
  assert.ok('context' in p);
  assert.equal(contextText(tok, p), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n');
});

test('SFT of a chat model on prompt/response records lowers the held-out loss', async () => {
  const root = tmpDir();
  await saveTinyChatLlama(path.join(root, 'chat'), 6);
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `say ${'abc'[i % 3]}`, response: `${'abc'[i % 3]}${'abc'[i % 3]}.` }));
  fs.writeFileSync(path.join(root, 'toy.sft.jsonl'), lines.join('\n') + '\n');
  const r = await sft({ data: path.join(root, 'toy.sft.jsonl'), model: path.join(root, 'chat'), runsDir: path.join(root, 'runs'), runId: 'sft', train: { steps: 30, batchSize: 8, lr: 1e-2, warmupSteps: 2, evalInterval: 5 } });
  assert.equal(r.run.status, 'completed');
  const m = new RunDir(path.join(root, 'runs', 'sft')).readMetrics().filter((x) => 'eval/loss' in x);
  assert.ok(m[m.length - 1]['eval/loss'] < 0.5 * m[0]['eval/loss'], `eval/loss ${m[0]['eval/loss']} -> ${m[m.length - 1]['eval/loss']}`);
  const out = readModelDir(r.finalModel!);
  assert.ok(out.tokenizer.chat, 'the checkpoint keeps tokenizer_config.json and its chat template');
  assert.equal(out.dtype, 'F32');
});
