// Messages between the Embedder and its worker thread.
export type Pooling = 'mean' | 'cls' | 'last' | 'none';

export interface InitMessage {
  type: 'init';
  /** A path or the model's bytes; null for the default model. */
  model: string | Uint8Array | null;
  tokenizer: string | null;
  threads: number;
  pooling: Pooling;
  output: string | null;
  /** embedTokens needs a [batch, seq, dim] output even when pooling is 'none'. */
  needTokens: boolean;
  /** Graph rewrites for context extension (context.ts), applied before the session is made. */
  extend: import('./context.js').ContextExtensionOptions | null;
}

export interface RunMessage {
  type: 'run';
  id: number;
  texts: string[];
  /** One vector per text, token vectors, or both from the same inference. */
  mode: 'pooled' | 'tokens' | 'both';
  pooling: Pooling;
  maxLength: number;
  batchSize: number;
  bucketing: boolean;
  /** Long texts: chunked (true) or truncated; chunks share `overlap` tokens and merge by mean or length-weighted. */
  chunk: boolean;
  overlap: number;
  merge: 'mean' | 'weighted';
  /** Position-id grouping fed to a model with a position_ids input (null: 0 … n − 1). */
  grouping: { groupSize: number; window: number } | null;
}

export interface ModelInfo {
  inputs: string[];
  outputs: string[];
  tokenOutput: string | null;
  sentenceOutput: string | null;
  /** The output size when the model declares it, else null until the first run. */
  dim: number | null;
  /** Where the weights came from: a path, 'bytes', or the default model's npm package and version. */
  source: string;
}

export interface RunResult {
  id: number;
  /** One pooled vector per text (modes 'pooled' and 'both'). */
  data: Float32Array | null;
  dim: number;
  /** Each text's token vectors (modes 'tokens' and 'both'). */
  tokens: { data: Float32Array; lengths: Int32Array; dim: number } | null;
  /** Tokens the texts had, and token slots the batches ran (with padding). */
  realTokens: number;
  paddedTokens: number;
}

export type WorkerReply =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'init-error'; error: string }
  | { type: 'result'; result: RunResult }
  | { type: 'run-error'; id: number; error: string };
