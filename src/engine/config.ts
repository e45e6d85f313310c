/**
 * Model hyperparameters. The common ones carry GPT-2's config.json names (n_layer, n_embd, ...)
 * for every architecture; the Llama family's own keys (grouped-query heads, SwiGLU width, rotary
 * embeddings) are in `llama`, named as in its config.json.
 */
/** 'gpt2': GPT-2 BPE (offline ranks); 'char': our character vocabulary; 'hf': the model folder's tokenizer.json. */
export type TokenizerKind = 'gpt2' | 'char' | 'hf';
export type Arch = 'gpt2' | 'llama' | 'qwen2';

/** rope_scaling of type "llama3" (Llama 3.1/3.2): low frequencies divided by factor, a smooth band between. */
export interface Llama3RopeScaling {
  rope_type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

export interface LlamaConfig {
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  rope_theta: number;
  rope_scaling: Llama3RopeScaling | null;
  /** Biases on q, k, v (Llama's attention_bias; always on in Qwen2). */
  qkv_bias: boolean;
  /** Bias on o_proj (Llama's attention_bias; never in Qwen2). */
  o_bias: boolean;
  mlp_bias: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  /** torch_dtype of the checkpoint as shipped ("bfloat16", "float16", "float32"). */
  torch_dtype: string;
}

export interface ModelConfig {
  /** Absent means GPT-2 (configs written before the Llama family). */
  arch?: Arch;
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
  llama?: LlamaConfig;
}

export function defaultConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
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

type Num = (k: string, fallback?: number) => number;

function reader(json: Record<string, unknown>): Num {
  return (k: string, fallback?: number): number => {
    const v = json[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    // absent (or null, as Transformers writes unset values) takes the default; any other value is an error
    if (fallback !== undefined && (v === undefined || v === null)) return fallback;
    throw new Error(`config.json: "${k}" is ${v === undefined ? 'missing' : `${JSON.stringify(v)?.slice(0, 40)}, not a number`}`);
  };
}

export const ARCHS: Arch[] = ['gpt2', 'llama', 'qwen2'];

/** The Llama family (Llama, SmolLM, Qwen2): RMSNorm, rotary positions, SwiGLU, grouped queries. */
export const isLlama = (c: ModelConfig): boolean => c.arch === 'llama' || c.arch === 'qwen2';

/**
 * The architecture of a config.json: its model_type, else its architectures' prefix
 * (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForSequenceClassification, ...).
 */
export function archOf(json: Record<string, unknown>): Arch {
  const t = json.model_type;
  if (t !== undefined) {
    if (typeof t === 'string' && (ARCHS as string[]).includes(t)) return t as Arch;
    throw new Error(`config.json: model_type "${String(t)}" is not supported; this engine runs ${ARCHS.join(', ')} (GPT-2, Llama 2/3, SmolLM, TinyLlama, Qwen2)`);
  }
  const a = Array.isArray(json.architectures) ? String(json.architectures[0]) : '';
  if (a.startsWith('Llama')) return 'llama';
  if (a.startsWith('Qwen2')) return 'qwen2';
  return 'gpt2';
}

/** Reads a Hugging Face config.json of GPT-2 or the Llama family (see archOf). */
export function configFromJson(json: Record<string, unknown>): ModelConfig {
  const arch = archOf(json);
  if (arch !== 'gpt2') return llamaConfigFromJson(json, arch);
  const num = reader(json);
  const tokenizer = (json.tokenizer ?? 'gpt2') as string;
  if (tokenizer !== 'gpt2' && tokenizer !== 'char') {
    throw new Error(`config.json: tokenizer "${tokenizer}" is not "gpt2" or "char"`);
  }
  const cfg: ModelConfig = {
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

const optId = (json: Record<string, unknown>, k: string): number | null => {
  const v = json[k];
  if (v === undefined || v === null) return null;
  if (Number.isInteger(v) && (v as number) >= 0) return v as number;
  throw new Error(`config.json: "${k}" is ${JSON.stringify(v)?.slice(0, 40)}, not a token id`);
};

/** LlamaConfig / Qwen2Config as Transformers reads them, defaults included. */
function llamaConfigFromJson(json: Record<string, unknown>, arch: 'llama' | 'qwen2'): ModelConfig {
  const num = reader(json);
  const bool = (k: string, fallback: boolean): boolean => {
    const v = json[k];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new Error(`config.json: "${k}" is ${JSON.stringify(v)?.slice(0, 40)}, not true or false`);
    return v;
  };
  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`config.json: hidden_act "${String(act)}" is not supported (the Llama family uses "silu")`);
  if (json.use_sliding_window === true) throw new Error('config.json: use_sliding_window is true; sliding-window attention is not supported');
  const n_head = num('num_attention_heads');
  const n_embd = num('hidden_size');
  let rope_scaling: Llama3RopeScaling | null = null;
  const rs = json.rope_scaling as Record<string, unknown> | null | undefined;
  if (rs !== undefined && rs !== null) {
    const type = rs.rope_type ?? rs.type;
    if (type === 'default') rope_scaling = null;
    else if (type === 'llama3') {
      const r = reader(rs);
      rope_scaling = {
        rope_type: 'llama3',
        factor: r('factor'),
        low_freq_factor: r('low_freq_factor'),
        high_freq_factor: r('high_freq_factor'),
        original_max_position_embeddings: r('original_max_position_embeddings'),
      };
    } else throw new Error(`config.json: rope_scaling of type "${String(type)}" is not supported (only "llama3")`);
  }
  const attentionBias = bool('attention_bias', false);
  const tokenizer = (json.tokenizer ?? 'hf') as string;
  if (tokenizer !== 'hf' && tokenizer !== 'char') throw new Error(`config.json: tokenizer "${tokenizer}" is not "hf" or "char"`);
  const eos = json.eos_token_id;
  const cfg: ModelConfig = {
    arch,
    n_layer: num('num_hidden_layers'),
    n_head,
    n_embd,
    n_positions: num('max_position_embeddings', 2048),
    vocab_size: num('vocab_size'),
    layer_norm_epsilon: num('rms_norm_eps', 1e-6),
    dropout: 0,
    tokenizer: tokenizer as TokenizerKind,
    llama: {
      num_key_value_heads: num('num_key_value_heads', n_head),
      head_dim: num('head_dim', Math.floor(n_embd / n_head)),
      intermediate_size: num('intermediate_size'),
      rope_theta: num('rope_theta', 10000),
      rope_scaling,
      qkv_bias: arch === 'qwen2' ? true : attentionBias,
      o_bias: arch === 'qwen2' ? false : attentionBias,
      mlp_bias: arch === 'qwen2' ? false : bool('mlp_bias', false),
      tie_word_embeddings: bool('tie_word_embeddings', false),
      bos_token_id: optId(json, 'bos_token_id'),
      eos_token_id: Array.isArray(eos) ? eos.map((_, i) => optId({ e: eos[i] }, 'e') ?? 0) : optId(json, 'eos_token_id'),
      pad_token_id: optId(json, 'pad_token_id'),
      torch_dtype: typeof json.torch_dtype === 'string' ? json.torch_dtype : typeof json.dtype === 'string' ? (json.dtype as string) : 'float32',
    },
  };
  checkConfig(cfg);
  return cfg;
}

/** Ranges far beyond any GPT-2-layout model, checked before anything is allocated. */
const LIMITS: [keyof ModelConfig, number][] = [['n_layer', 1024], ['n_head', 1024], ['n_embd', 65536], ['n_positions', 1 << 20], ['vocab_size', 1 << 22]];

export function checkConfig(cfg: ModelConfig): void {
  for (const [k, max] of LIMITS) {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`config.json: "${k}" is ${v}; it must be a whole number from 1 to ${max}`);
  }
  const l = cfg.llama;
  if (l) {
    for (const [k, v, max] of [['num_key_value_heads', l.num_key_value_heads, 1024], ['head_dim', l.head_dim, 4096], ['intermediate_size', l.intermediate_size, 1 << 20]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`config.json: "${k}" is ${v}; it must be a whole number from 1 to ${max}`);
    }
    if (cfg.n_head % l.num_key_value_heads !== 0) throw new Error(`config.json: num_attention_heads (${cfg.n_head}) must be a multiple of num_key_value_heads (${l.num_key_value_heads})`);
    if (l.head_dim % 2 !== 0) throw new Error(`config.json: head_dim ${l.head_dim} must be even for rotary embeddings`);
    if (!(l.rope_theta > 0)) throw new Error(`config.json: "rope_theta" is ${l.rope_theta}; it must be positive`);
  } else if (cfg.n_embd % cfg.n_head !== 0) throw new Error('config.json: n_embd must be a multiple of n_head');
  if (!(cfg.layer_norm_epsilon > 0 && cfg.layer_norm_epsilon < 1)) throw new Error(`config.json: "layer_norm_epsilon" is ${cfg.layer_norm_epsilon}; it must be between 0 and 1`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`config.json: dropout "resid_pdrop" is ${cfg.dropout}; it must be in [0, 1)`);
}

/**
 * Parameters of the GPT-2 layout: embeddings, per layer 12·E² + 13·E, the final LayerNorm.
 * The Llama family: embeddings (and an untied head), per layer the q/k/v/o and SwiGLU
 * projections with their biases and two RMSNorm gains, the final RMSNorm.
 */
export function parameterCount(cfg: ModelConfig): number {
  const E = cfg.n_embd;
  const l = cfg.llama;
  if (l) {
    const q = cfg.n_head * l.head_dim, kv = l.num_key_value_heads * l.head_dim, F = l.intermediate_size;
    const attn = E * q + 2 * E * kv + q * E + (l.qkv_bias ? q + 2 * kv : 0) + (l.o_bias ? E : 0);
    const mlp = 3 * E * F + (l.mlp_bias ? 2 * F + E : 0);
    return cfg.vocab_size * E * (l.tie_word_embeddings ? 1 : 2) + cfg.n_layer * (attn + mlp + 2 * E) + E;
  }
  return cfg.vocab_size * E + cfg.n_positions * E + cfg.n_layer * (12 * E * E + 13 * E) + 2 * E;
}

export function configToJson(cfg: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const l = cfg.llama;
  if (l) {
    const qwen = cfg.arch === 'qwen2';
    return {
      model_type: cfg.arch,
      architectures: [qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
      num_hidden_layers: cfg.n_layer,
      num_attention_heads: cfg.n_head,
      num_key_value_heads: l.num_key_value_heads,
      hidden_size: cfg.n_embd,
      head_dim: l.head_dim,
      intermediate_size: l.intermediate_size,
      max_position_embeddings: cfg.n_positions,
      vocab_size: cfg.vocab_size,
      rms_norm_eps: cfg.layer_norm_epsilon,
      hidden_act: 'silu',
      rope_theta: l.rope_theta,
      rope_scaling: l.rope_scaling,
      ...(qwen ? { use_sliding_window: false } : { attention_bias: l.qkv_bias, mlp_bias: l.mlp_bias }),
      attention_dropout: 0,
      tie_word_embeddings: l.tie_word_embeddings,
      bos_token_id: l.bos_token_id,
      eos_token_id: l.eos_token_id,
      pad_token_id: l.pad_token_id,
      torch_dtype: l.torch_dtype,
      ...(cfg.tokenizer === 'char' ? { tokenizer: 'char' } : {}),
      ...extra,
    };
  }
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
