/**
 * A model folder of SmolLM2-135M-Instruct's exact shape (config.json as the Hub has it: 30 layers,
 * 576 wide, 9 query and 3 key/value heads, SwiGLU 1536, 49,152 tokens, tied head, bfloat16) with
 * random weights, for timing the stages at that size on a machine that cannot download the real
 * one. Its tokenizer is Llama 2's byte-fallback BPE (from the llama-tokenizer-js dev dependency)
 * with ChatML's <|im_start|> and <|im_end|> added and a ChatML chat template, so sequence lengths
 * are those of a real subword tokenizer. Speed does not depend on the weights' values.
 *
 * Run: npx tsx scripts/make-smol-shape.ts OUT_DIR
 */
import * as fs from 'fs';
import * as path from 'path';
import { configFromJson } from '../src/engine/config';
import { initialWeights } from '../src/engine/causal-lm';
import { writeModelDir } from '../src/engine/checkpoint';
import { HfTokenizer } from '../src/engine/tokenizer';

async function main() {
  const out = path.resolve(process.argv[2] ?? '.rlhf/smol-shape');
  const { default: ref } = (await import('llama-tokenizer-js')) as unknown as { default: { vocabById: string[]; merges: Map<string, number> } };
  const vocab: Record<string, number> = {};
  ref.vocabById.forEach((t, id) => (vocab[t] = id));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(32000, '<|im_start|>'), special(32001, '<|im_end|>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: [...ref.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k) },
  };
  const chatTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}" +
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const tokenizerConfig = { bos_token: '<|im_start|>', eos_token: '<|im_end|>', pad_token: '<|im_end|>', unk_token: '<unk>', chat_template: chatTemplate, model_max_length: 8192 };
  const tok = new HfTokenizer(JSON.stringify(tokenizerJson), JSON.stringify(tokenizerConfig));
  // HuggingFaceTB/SmolLM2-135M-Instruct's config.json
  const config = configFromJson({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
    num_key_value_heads: 3, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, rope_scaling: null, hidden_act: 'silu',
    tie_word_embeddings: true, vocab_size: 49152, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, torch_dtype: 'bfloat16', attention_bias: false, mlp_bias: false,
  });
  writeModelDir(out, config, initialWeights(config, 1), tok, { dtype: 'BF16', files: { 'generation_config.json': JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }) } });
  fs.writeFileSync(path.join(out, 'README.md'), '# SmolLM2-135M shape, random weights\nMade by scripts/make-smol-shape.ts for timing; not a trained model.\n');
  console.log(out);
}

void main();
