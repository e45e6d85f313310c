/** GPT-2 hyperparameters, named as in Hugging Face's config.json. */
export type TokenizerKind = 'gpt2' | 'char';

export interface GPTConfig {
  n_layer: number;
  n_head: number;
  n_embd: number;
  /** Context length (block size). */
  n_positions: number;
  vocab_size: number;
  layer_norm_epsilon: number;
  /** Dropout on embeddings, attention weights and residual branches (HF: embd/attn/resid_pdrop). */
  dropout: number;
  tokenizer: TokenizerKind;
}

export function defaultConfig(overrides: Partial<GPTConfig> = {}): GPTConfig {
  return {
    n_layer: 4,
    n_head: 4,
    n_embd: 128,
    n_positions: 64,
    vocab_size: 65,
    layer_norm_epsilon: 1e-5,
    dropout: 0,
    tokenizer: 'char',
    ...overrides,
  };
}

/** Reads a Hugging Face GPT-2 config.json (no "tokenizer" key means GPT-2 BPE). */
export function configFromJson(json: Record<string, unknown>): GPTConfig {
  const num = (k: string, fallback?: number): number => {
    const v = json[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (fallback !== undefined) return fallback;
    throw new Error(`config.json: "${k}" is missing or not a number`);
  };
  if (json.model_type !== undefined && json.model_type !== 'gpt2') {
    throw new Error(`config.json: model_type is "${String(json.model_type)}", expected "gpt2"`);
  }
  const tokenizer = (json.tokenizer ?? 'gpt2') as string;
  if (tokenizer !== 'gpt2' && tokenizer !== 'char') {
    throw new Error(`config.json: tokenizer "${tokenizer}" is not "gpt2" or "char"`);
  }
  const cfg: GPTConfig = {
    n_layer: num('n_layer'),
    n_head: num('n_head'),
    n_embd: num('n_embd'),
    n_positions: num('n_positions', num('n_ctx', 1024)),
    vocab_size: num('vocab_size'),
    layer_norm_epsilon: num('layer_norm_epsilon', 1e-5),
    dropout: num('resid_pdrop', 0),
    tokenizer,
  };
  if (cfg.n_embd % cfg.n_head !== 0) throw new Error('config.json: n_embd must be a multiple of n_head');
  return cfg;
}

export function configToJson(cfg: GPTConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.n_layer,
    n_head: cfg.n_head,
    n_embd: cfg.n_embd,
    n_positions: cfg.n_positions,
    n_ctx: cfg.n_positions,
    n_inner: null,
    vocab_size: cfg.vocab_size,
    layer_norm_epsilon: cfg.layer_norm_epsilon,
    activation_function: 'gelu_new',
    resid_pdrop: cfg.dropout,
    embd_pdrop: cfg.dropout,
    attn_pdrop: cfg.dropout,
    initializer_range: 0.02,
    bos_token_id: cfg.tokenizer === 'gpt2' ? 50256 : 0,
    eos_token_id: cfg.tokenizer === 'gpt2' ? 50256 : 0,
    tie_word_embeddings: true,
    tokenizer: cfg.tokenizer,
    ...extra,
  };
}
