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
    // absent (or null, as Transformers writes unset values) takes the default; any other value is an error
    if (fallback !== undefined && (v === undefined || v === null)) return fallback;
    throw new Error(`config.json: "${k}" is ${v === undefined ? 'missing' : `${JSON.stringify(v)?.slice(0, 40)}, not a number`}`);
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
  checkConfig(cfg);
  return cfg;
}

/** Ranges far beyond any GPT-2-layout model, checked before anything is allocated. */
const LIMITS: [keyof GPTConfig, number][] = [['n_layer', 1024], ['n_head', 1024], ['n_embd', 65536], ['n_positions', 1 << 20], ['vocab_size', 1 << 22]];

export function checkConfig(cfg: GPTConfig): void {
  for (const [k, max] of LIMITS) {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`config.json: "${k}" is ${v}; it must be a whole number from 1 to ${max}`);
  }
  if (cfg.n_embd % cfg.n_head !== 0) throw new Error('config.json: n_embd must be a multiple of n_head');
  if (!(cfg.layer_norm_epsilon > 0 && cfg.layer_norm_epsilon < 1)) throw new Error(`config.json: "layer_norm_epsilon" is ${cfg.layer_norm_epsilon}; it must be between 0 and 1`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`config.json: dropout "resid_pdrop" is ${cfg.dropout}; it must be in [0, 1)`);
}

/** Parameters of the GPT-2 layout: embeddings, per layer 12·E² + 13·E, the final LayerNorm. */
export function parameterCount(cfg: GPTConfig): number {
  const E = cfg.n_embd;
  return cfg.vocab_size * E + cfg.n_positions * E + cfg.n_layer * (12 * E * E + 13 * E) + 2 * E;
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
