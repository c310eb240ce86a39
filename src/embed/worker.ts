// The Embedder's worker thread: tokenizes, batches by length, runs the onnxruntime session and pools. onnxruntime-
// node's run() computes synchronously behind its Promise, so it runs here, never on the application's event loop.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { poolTokens, type TokenPoolingMode } from '../attention/pooling.js';
import { extendContext } from './context.js';
import { ensureDefaultModel } from './default-model.js';
import type { InitMessage, ModelInfo, RunMessage, RunResult, WorkerReply } from './protocol.js';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

interface Encoded {
  ids: number[];
}
interface TokenizerLike {
  encode(text: string): Encoded;
  get_added_tokens_decoder?(): Map<number, { special?: boolean }>;
}

let ort: Ort;
let session: Session;
let tokenizer: TokenizerLike;
let info: ModelInfo;
let specialIds = new Set<number>();
let padId = 0;
let inputTypes: Record<string, string> = {};

const port = parentPort!;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function rankOf(meta: unknown): number | undefined {
  const shape = (meta as { shape?: unknown[] }).shape;
  return Array.isArray(shape) ? shape.length : undefined;
}

function lastDim(meta: unknown): number | undefined {
  const shape = (meta as { shape?: unknown[] }).shape;
  const d = Array.isArray(shape) ? shape[shape.length - 1] : undefined;
  return typeof d === 'number' && d > 0 ? d : undefined;
}

async function init(m: InitMessage): Promise<void> {
  ort = require('onnxruntime-node') as Ort;
  let model: string | Uint8Array | null = m.model;
  let tokenizerPath = m.tokenizer;
  let source = typeof model === 'string' ? model : model ? 'bytes' : '';
  if (model === null) {
    const files = ensureDefaultModel();
    model = files.modelBytes; // read and checked already: not read again from disk
    tokenizerPath = files.tokenizer;
    source = files.source;
  }
  if (tokenizerPath === null) throw new Error('Embedder.load: a model needs its "tokenizer" (the path to its tokenizer.json)');
  const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (json: object, config: object) => TokenizerLike };
  const json = JSON.parse(fs.readFileSync(tokenizerPath, 'utf8')) as { added_tokens?: { id: number; content: string; special?: boolean }[] };
  tokenizer = new Tokenizer(json, {});
  specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
  const pad = (json.added_tokens ?? []).find((t) => /^(\[PAD\]|<pad>)$/i.test(t.content));
  padId = pad ? pad.id : 0;
  if (m.extend !== null) model = extendContext(typeof model === 'string' ? new Uint8Array(fs.readFileSync(model)) : model, m.extend);
  const options = { intraOpNumThreads: m.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
  session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  const inputs = [...session.inputNames], outputs = [...session.outputNames];
  const described = `the model's inputs are [${inputs.join(', ')}] and its outputs [${outputs.join(', ')}]`;
  for (const name of ['input_ids', 'attention_mask']) {
    if (!inputs.includes(name)) throw new Error(`Embedder.load: the model has no "${name}" input: ${described}`);
  }
  const unknown = inputs.filter((n) => !['input_ids', 'attention_mask', 'token_type_ids', 'position_ids'].includes(n));
  if (unknown.length) throw new Error(`Embedder.load: the model needs inputs Tessera cannot feed (${unknown.join(', ')}): ${described}`);
  inputTypes = Object.fromEntries(session.inputMetadata.map((meta) => [meta.name, (meta as { type?: string }).type ?? 'int64']));
  const metas = session.outputMetadata;
  const ranked = (rank: number) => metas.filter((meta) => rankOf(meta) === rank).map((meta) => meta.name);
  let tokenOutput: string | null = null, sentenceOutput: string | null = null;
  if (m.output !== null) {
    const meta = metas.find((x) => x.name === m.output);
    if (!meta) throw new Error(`Embedder.load: the model has no output "${m.output}": ${described}`);
    if (rankOf(meta) === 2) sentenceOutput = m.output;
    else tokenOutput = m.output;
  }
  tokenOutput ??= ranked(3)[0] ?? null;
  if (m.pooling === 'none') sentenceOutput ??= ranked(2)[0] ?? null;
  // Pooling 'none' with no [batch, dim] output still loads: embedTokens works, embed() says what is missing.
  if (tokenOutput === null && (m.pooling !== 'none' || m.needTokens)) {
    throw new Error(`Embedder.load: no [batch, seq, dim] token output to pool: ${described}`);
  }
  const dimMeta = metas.find((x) => x.name === (m.pooling === 'none' ? sentenceOutput : tokenOutput));
  info = { inputs, outputs, tokenOutput, sentenceOutput, dim: dimMeta ? lastDim(dimMeta) ?? null : null, source };
}

/** The token ids the model runs: one piece per text, or several when long texts are chunked. */
interface Pieces {
  ids: number[][];
  /** The text each piece belongs to, its weight in a length-weighted merge, and (for token output) how many of its
   *  leading content tokens repeat the previous piece's (the overlap). */
  owner: number[];
  weight: number[];
  skip: number[];
}

/**
 * Truncation cuts a text to maxLength tokens, keeping a final special token (e.g. [SEP]). Chunking (LongEmbed's
 * chunking baseline, LongAlign's segment encoding) cuts the content tokens into windows of maxLength minus the
 * special tokens, `overlap` tokens shared by neighbours, each window wrapped in the text's own leading and trailing
 * special tokens.
 */
function split(texts: string[], m: RunMessage): Pieces {
  const p: Pieces = { ids: [], owner: [], weight: [], skip: [] };
  texts.forEach((text, t) => {
    const ids = tokenizer.encode(text).ids;
    const add = (piece: number[], weight: number, skip: number) => {
      p.ids.push(piece);
      p.owner.push(t);
      p.weight.push(weight);
      p.skip.push(skip);
    };
    if (ids.length <= m.maxLength) return add(ids, Math.max(1, ids.filter((id) => !specialIds.has(id)).length), 0);
    const head = specialIds.has(ids[0]!) ? [ids[0]!] : [];
    const tail = ids.length > 1 && specialIds.has(ids[ids.length - 1]!) ? [ids[ids.length - 1]!] : [];
    if (!m.chunk) return add([...ids.slice(0, m.maxLength - tail.length), ...tail], m.maxLength, 0);
    const body = ids.slice(head.length, ids.length - tail.length);
    const width = Math.max(1, m.maxLength - head.length - tail.length);
    const step = Math.max(1, width - m.overlap);
    for (let start = 0; ; start += step) {
      const window = body.slice(start, start + width);
      add([...head, ...window, ...tail], window.length, start === 0 ? 0 : Math.min(m.overlap, width - 1));
      if (start + width >= body.length) break;
    }
  });
  return p;
}

/** Each text's pieces' token rows, in order (one pass: pieces come text by text). */
function groupByOwner(rows: Float32Array[], owner: number[], texts: number): Float32Array[][] {
  const out = Array.from({ length: texts }, () => [] as Float32Array[]);
  rows.forEach((r, i) => out[owner[i]!]!.push(r));
  return out;
}

/** Per-text vectors from per-piece vectors: a piece's own, or the (length-weighted) mean of a text's chunks. */
function merge(pieces: Pieces, vectors: Float32Array[], count: number, dim: number, weighted: boolean): Float32Array[] {
  const sums = Array.from({ length: count }, () => new Float64Array(dim));
  const totals = new Float64Array(count);
  vectors.forEach((v, i) => {
    const w = weighted ? pieces.weight[i]! : 1, t = pieces.owner[i]!;
    for (let d = 0; d < dim; d++) sums[t]![d]! += w * v[d]!;
    totals[t]! += w;
  });
  return sums.map((s, t) => Float32Array.from(s, (x) => x / totals[t]!));
}

function tensorOf(name: string, data: BigInt64Array, dims: number[]) {
  const type = inputTypes[name];
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(data, (x) => Number(x)), dims);
  return new ort.Tensor('int64', data, dims);
}

/** Each row's position ids (0 … n − 1, padding 0), grouped SelfExtend-style beyond a window when asked:
 *  p < W keeps p, farther positions become W + ⌊(p − W) / G⌋, so a model trained on L positions reads
 *  W + (L − W) · G tokens with neighbours at their exact distances. */
function positionIds(lengths: number[], seq: number, m: RunMessage): BigInt64Array {
  const out = new BigInt64Array(lengths.length * seq);
  lengths.forEach((n, r) => {
    for (let p = 0; p < n; p++) {
      const q = m.grouping === null || p < m.grouping.window ? p : m.grouping.window + Math.floor((p - m.grouping.window) / m.grouping.groupSize);
      out[r * seq + p] = BigInt(q);
    }
  });
  return out;
}

async function run(m: RunMessage): Promise<RunResult> {
  // 'both' serves embedWithTokens: one tokenization and one inference give the vectors and the token vectors.
  const wantPooled = m.mode !== 'tokens', wantTokens = m.mode !== 'pooled';
  const fromSentence = wantPooled && m.pooling === 'none';
  if (fromSentence && info.sentenceOutput === null) {
    throw new Error(`pooling 'none' needs a [batch, dim] output, and the model's outputs are [${info.outputs.join(', ')}]: ` +
      "load it with pooling 'mean', 'cls' or 'last', or use embedTokens()");
  }
  const pieces = split(m.texts, m);
  const ids = pieces.ids;
  const order = ids.map((_, i) => i);
  if (m.bucketing) order.sort((a, b) => ids[a]!.length - ids[b]!.length || a - b);
  let dim = info.dim ?? 0, tokenDim = m.pooling === 'none' ? 0 : info.dim ?? 0;
  const pooled: Float32Array[] = new Array(ids.length);
  const tokenRows: Float32Array[] = new Array(ids.length);
  let real = 0, padded = 0;
  for (let start = 0; start < order.length; start += m.batchSize) {
    const batch = order.slice(start, start + m.batchSize);
    const seq = Math.max(1, ...batch.map((i) => ids[i]!.length));
    const inputIds = new BigInt64Array(batch.length * seq).fill(BigInt(padId));
    const mask = new BigInt64Array(batch.length * seq);
    const mask8 = new Uint8Array(batch.length * seq);
    batch.forEach((t, r) => {
      ids[t]!.forEach((id, c) => {
        inputIds[r * seq + c] = BigInt(id);
        mask[r * seq + c] = 1n;
        mask8[r * seq + c] = 1;
      });
      real += ids[t]!.length;
    });
    padded += batch.length * seq;
    const dims = [batch.length, seq];
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {
      input_ids: tensorOf('input_ids', inputIds, dims),
      attention_mask: tensorOf('attention_mask', mask, dims),
    };
    if (info.inputs.includes('token_type_ids')) feeds.token_type_ids = tensorOf('token_type_ids', new BigInt64Array(batch.length * seq), dims);
    if (info.inputs.includes('position_ids')) feeds.position_ids = tensorOf('position_ids', positionIds(batch.map((t) => ids[t]!.length), seq, m), dims);
    const fetches = [fromSentence && !wantTokens ? null : info.tokenOutput, fromSentence ? info.sentenceOutput : null]
      .filter((x): x is string => x !== null);
    const outputs = await session.run(feeds, fetches);
    if (fromSentence) {
      const out = outputs[info.sentenceOutput!]!;
      const width = out.dims[1]!;
      const data = out.data as Float32Array;
      batch.forEach((t, r) => (pooled[t] = data.slice(r * width, (r + 1) * width)));
      dim = width;
      if (!wantTokens) continue;
    }
    const out = outputs[info.tokenOutput!]!;
    if (out.type !== 'float32' || out.dims.length !== 3) throw new Error(`the token output "${info.tokenOutput}" is ${out.type} [${out.dims.join(', ')}], not float32 [batch, seq, dim]`);
    tokenDim = out.dims[2]!;
    const data = out.data as Float32Array;
    if (wantPooled && !fromSentence) {
      dim = tokenDim;
      const rows = poolTokens(data, { batch: batch.length, seq, dim, mode: m.pooling as TokenPoolingMode, mask: mask8 });
      batch.forEach((t, r) => (pooled[t] = rows.subarray(r * dim, (r + 1) * dim)));
    }
    if (wantTokens) {
      const dim = tokenDim;
      batch.forEach((t, r) => {
        const keep = ids[t]!.map((id, c) => (specialIds.has(id) ? -1 : c)).filter((c) => c >= 0).slice(pieces.skip[t]!);
        const rows = new Float32Array(keep.length * dim);
        keep.forEach((c, n) => rows.set(data.subarray((r * seq + c) * dim, (r * seq + c + 1) * dim), n * dim));
        tokenRows[t] = rows;
      });
    }
  }
  // Pieces back to texts: chunk vectors merged, chunk token rows concatenated in order.
  const texts = m.texts.length;
  const vectors = wantPooled ? concat(ids.length === texts ? pooled : merge(pieces, pooled, texts, dim, m.merge === 'weighted')) : null;
  let tokens: RunResult['tokens'] = null;
  if (wantTokens) {
    const perText = groupByOwner(tokenRows, pieces.owner, texts);
    tokens = {
      data: concat(perText.flat()),
      lengths: Int32Array.from(perText, (rows) => (tokenDim ? rows.reduce((n, r) => n + r.length, 0) / tokenDim : 0)),
      dim: tokenDim,
    };
  }
  return { id: m.id, data: vectors, dim, tokens, realTokens: real, paddedTokens: padded };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

port.on('message', (message: InitMessage | RunMessage) => {
  const work = message.type === 'init'
    ? init(message).then(() => reply({ type: 'ready', info }))
    : run(message).then((r) => {
      const transfer = [r.data?.buffer, r.tokens?.data.buffer, r.tokens?.lengths.buffer].filter((b): b is ArrayBuffer => b !== undefined);
      reply({ type: 'result', result: r }, transfer);
    });
  work.catch((e: unknown) => {
    const error = e instanceof Error ? e.message : String(e);
    reply(message.type === 'init' ? { type: 'init-error', error } : { type: 'run-error', id: message.id, error });
  });
});
