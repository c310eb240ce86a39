// Exact attention on the CPU (native/include/tessera/attention.h): tiled online softmax, memory O(seq × headDim).

import type { AttentionArgs } from '../native/binding.js';
import { binding } from '../native/load.js';
import { cudaKernels, expectDevice, type Device } from '../core/cuda.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectStorage,
  expectTypedArray,
  type StorageDType,
  expectFinite,
  expectSlopes,
  MAX_ELEMENTS,
  shapeCount,
} from '../core/validate.js';

export type AttentionDType = StorageDType;
type Storage = Float32Array | Uint16Array;

/** The shape of q, k and v, shared by every attention entry point. */
export interface AttentionShapeOptions {
  /** q, k, v and out as [batch, seq, heads, dim] ('bshd') or [batch, heads, seq, dim] ('bhsd'). */
  layout: 'bshd' | 'bhsd';
  batch?: number;
  headsQ: number;
  /** Key/value heads (default headsQ); query head h reads head ⌊h / (headsQ / headsKV)⌋ (GQA, MQA). */
  headsKV?: number;
  seqQ: number;
  seqK: number;
  /** Query/key head size, up to 256. */
  headDim: number;
  /** Value (and output) head size (default headDim), up to 256. */
  headDimV?: number;
  /** Multiplies q·k (default 1 / √headDim). */
  scale?: number;
}

export interface AttentionOptions extends AttentionShapeOptions {
  /** TempScale: logits are divided by it (default 1). */
  temperature?: number;
  /** Keys after the query's aligned position are hidden: query i sits at p = i + n − seqQ, n the row's valid keys
   *  (keyLengths, else seqK) — bottom-right, as FlashAttention aligns. */
  causal?: boolean;
  /** Keys with p − j ≥ window (causal) or |p − j| ≥ window are hidden. */
  window?: number;
  /** With a window: keys j < globalTokens stay visible (with causal, LM-Infinite's Λ mask). */
  globalTokens?: number;
  /** Valid keys per batch row (the rest are right padding; masks align to the valid keys). */
  keyLengths?: Int32Array;
  /** Cumulative document offsets of a packed row, 0 … seqK: a query sees only its own document's keys. */
  segments?: Int32Array;
  /** With segments: the row's first token is visible to every query (AnchorAttention). */
  anchor?: boolean;
  /** ALiBi: adds −slope[h] · |p − j| to the logits. */
  alibiSlopes?: Float32Array | Float64Array | readonly number[];
  /** An additive bias of [batch | 1, headsQ | 1, seqQ, seqK] floats (−Infinity hides a key). */
  bias?: Float32Array;
  /** The bias's leading dimensions when its length leaves them ambiguous. */
  biasShape?: readonly [number, number];
  /** Gemma-style logit soft-capping: cap · tanh(scale · q·k / cap), before the bias is added (as ONNX and Gemma 2). */
  softcap?: number;
  /** Also return the natural-log log-sum-exp of each query's logits, [batch, headsQ, seqQ]. */
  returnLse?: boolean;
  /** float32 data are Float32Arrays; float16 and bfloat16 data are Uint16Arrays of their bits. */
  dtype?: AttentionDType;
  /** Where to write the output (the query layout with headDimV). */
  out?: Storage;
  /** 'cuda': run on the GPU (float16 and bfloat16 data; tensor cores, float32 accumulation). Options the device does
   *  not implement (softcap, alibiSlopes, bias, float32 data) throw an Error saying which. Default 'cpu'. */
  device?: Device;
}

export interface AttentionResult<T extends Storage> {
  out: T;
  /** [batch, headsQ, seqQ]; −Infinity for a query that sees no key (its output row is zeros). */
  lse?: Float32Array;
}

const OPTIONS: readonly (keyof AttentionOptions)[] = [
  'layout', 'batch', 'headsQ', 'headsKV', 'seqQ', 'seqK', 'headDim', 'headDimV', 'scale', 'temperature', 'causal',
  'window', 'globalTokens', 'keyLengths', 'segments', 'anchor', 'alibiSlopes', 'bias', 'biasShape', 'softcap',
  'returnLse', 'dtype', 'out', 'device',
];



type NativeArgs = AttentionArgs;

function nativeArgs(q: unknown, k: unknown, v: unknown, options: unknown): { args: NativeArgs; returnLse: boolean } {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<AttentionOptions>(options, 'options', OPTIONS);
  const qs = expectStorage(q, 'q', o.dtype);
  const ks = expectStorage(k, 'k', qs.dtype), vs = expectStorage(v, 'v', qs.dtype);
  const layout = expectOneOf(o.layout, 'layout', ['bshd', 'bhsd'] as const);
  const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1, MAX_ELEMENTS);
  const headsQ = expectInteger(o.headsQ, 'headsQ', 1, MAX_ELEMENTS);
  const headsKV = o.headsKV === undefined ? headsQ : expectInteger(o.headsKV, 'headsKV', 1, MAX_ELEMENTS);
  if (headsQ % headsKV !== 0) throw new RangeError(`"headsQ" (${headsQ}) must be a multiple of "headsKV" (${headsKV})`);
  const seqQ = expectInteger(o.seqQ, 'seqQ', 0, 2 ** 24);
  const seqK = expectInteger(o.seqK, 'seqK', 0, 2 ** 24);
  const headDim = expectInteger(o.headDim, 'headDim', 1, 256);
  const headDimV = o.headDimV === undefined ? headDim : expectInteger(o.headDimV, 'headDimV', 1, 256);
  const lengths = [shapeCount(batch, headsQ, seqQ, headDim), shapeCount(batch, headsKV, seqK, headDim), shapeCount(batch, headsKV, seqK, headDimV)];
  ([['q', qs.data], ['k', ks.data], ['v', vs.data]] as const).forEach(([name, a], i) => {
    if (a.length !== lengths[i]) throw new RangeError(`"${name}" must hold ${lengths[i]} values for this shape, got ${a.length}`);
  });
  const outLength = shapeCount(batch, headsQ, seqQ, headDimV);
  let out: Storage;
  if (o.out === undefined) out = qs.dtype === 'float32' ? new Float32Array(outLength) : new Uint16Array(outLength);
  else {
    out = expectStorage(o.out, 'out', qs.dtype).data;
    if (out.length !== outLength) throw new RangeError(`"out" must hold ${outLength} values, got ${out.length}`);
  }
  const scale = expectFinite(o.scale, 'scale', 1 / Math.sqrt(headDim));
  const temperature = expectFinite(o.temperature, 'temperature', 1);
  if (temperature <= 0) throw new RangeError(`"temperature" must be above 0, got ${temperature}`);
  const softcap = expectFinite(o.softcap, 'softcap', 0);
  if (softcap < 0) throw new RangeError(`"softcap" must not be negative, got ${softcap}`);
  const causal = expectBoolean(o.causal, 'causal', false);
  const window = o.window === undefined ? 0 : expectInteger(o.window, 'window', 1, MAX_ELEMENTS);
  const globalTokens = o.globalTokens === undefined ? 0 : expectInteger(o.globalTokens, 'globalTokens', 0, MAX_ELEMENTS);
  if (globalTokens > 0 && window === 0) throw new RangeError('"globalTokens" needs a "window" (the Λ mask keeps global and local keys)');
  const anchor = expectBoolean(o.anchor, 'anchor', false);
  let keyLengths: Int32Array | null = null;
  if (o.keyLengths !== undefined) {
    keyLengths = expectTypedArray(o.keyLengths, 'Int32Array', 'keyLengths');
    if (keyLengths.length !== batch) throw new RangeError(`"keyLengths" must hold batch (${batch}) values, got ${keyLengths.length}`);
    keyLengths.forEach((n, b) => {
      if (n < 0 || n > seqK) throw new RangeError(`"keyLengths"[${b}] is ${n}: it must be from 0 to seqK (${seqK})`);
    });
  }
  let segments: Int32Array | null = null;
  if (o.segments !== undefined) {
    segments = expectTypedArray(o.segments, 'Int32Array', 'segments');
    if (segments.length < 2 || segments[0] !== 0 || segments[segments.length - 1] !== seqK) {
      throw new RangeError(`"segments" must be offsets from 0 to seqK (${seqK}), at least two`);
    }
    for (let i = 1; i < segments.length; i++) {
      if (segments[i]! <= segments[i - 1]!) throw new RangeError(`"segments" must increase: [${i - 1}] = ${segments[i - 1]}, [${i}] = ${segments[i]}`);
    }
  } else if (anchor) {
    throw new RangeError('"anchor" needs "segments" (the anchor is the packed row\'s shared first token)');
  }
  const alibi = o.alibiSlopes === undefined ? null : expectSlopes(o.alibiSlopes, 'alibiSlopes', headsQ);
  let bias: Float32Array | null = null, biasBatch = 1, biasHeads = 1;
  if (o.bias !== undefined) {
    bias = expectFloat32Array(o.bias, 'bias');
    const plane = seqQ * seqK;
    if (o.biasShape !== undefined) {
      const shape = o.biasShape;
      if (!Array.isArray(shape) || shape.length !== 2) throw new TypeError('Expected "biasShape" to be [batch | 1, headsQ | 1]');
      [biasBatch, biasHeads] = shape as [number, number];
      if ((biasBatch !== 1 && biasBatch !== batch) || (biasHeads !== 1 && biasHeads !== headsQ)) {
        throw new RangeError(`"biasShape" must be [1 or ${batch}, 1 or ${headsQ}], got [${shape.join(', ')}]`);
      }
    } else {
      const n = plane === 0 ? 1 : bias.length / plane;
      const fits = [[1, 1], [batch, 1], [1, headsQ], [batch, headsQ]].filter(([b, h]) => b! * h! === n);
      const distinct = new Set(fits.map(([b, h]) => `${b},${h}`));
      if (distinct.size === 0) throw new RangeError(`"bias" must hold [batch | 1, headsQ | 1, seqQ, seqK] values, got ${bias.length}`);
      if (distinct.size > 1) throw new RangeError('"bias" could be [batch, 1, …] or [1, headsQ, …]: give "biasShape"');
      [biasBatch, biasHeads] = fits[0] as [number, number];
    }
    if (bias.length !== biasBatch * biasHeads * plane) {
      throw new RangeError(`"bias" must hold ${biasBatch * biasHeads * plane} values for biasShape [${biasBatch}, ${biasHeads}], got ${bias.length}`);
    }
  }
  const returnLse = expectBoolean(o.returnLse, 'returnLse', false);
  const lse = returnLse ? new Float32Array(batch * headsQ * seqQ) : null;
  return {
    args: [qs.data, ks.data, vs.data, out, lse, qs.dtype, layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale,
      temperature, softcap, causal, window, globalTokens, anchor, keyLengths, segments, alibi, bias, biasBatch, biasHeads],
    returnLse,
  };
}

function result<T extends Storage>(args: NativeArgs, returnLse: boolean): AttentionResult<T> {
  return returnLse ? { out: args[3] as T, lse: args[4] as Float32Array } : { out: args[3] as T };
}

/**
 * Exact attention: softmax((softcap(scale · q·kᵀ) + bias) / temperature, masked) · v, tiled so memory stays
 * O(seq × headDim). Float32 arithmetic; outputs agree with a float64 reference to about 1e-6 relative. A query
 * that sees no key gets zeros (and lse −Infinity).
 */
export function attention<T extends Storage>(q: T, k: T, v: T, options: AttentionOptions): AttentionResult<T> {
  const { args, returnLse } = nativeArgs(q, k, v, options);
  if (expectDevice(options.device) === 'cuda') cudaKernels().cudaAttention(...args);
  else binding().attention(...args);
  return result<T>(args, returnLse);
}

/** attention() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function attentionAsync<T extends Storage>(q: T, k: T, v: T, options: AttentionOptions): Promise<AttentionResult<T>> {
  const { args, returnLse } = nativeArgs(q, k, v, options);
  if (expectDevice(options.device) === 'cuda') await cudaKernels().cudaAttentionAsync(...args);
  else await binding().attentionAsync(...args);
  return result<T>(args, returnLse);
}

export interface MergeAttentionOptions {
  layout: 'bshd' | 'bhsd';
  batch?: number;
  heads: number;
  seq: number;
  /** The output head size. */
  dim: number;
  /** Where to write (may be outA or outB themselves). */
  out?: Float32Array;
  lse?: Float32Array;
  /** 'cuda': merge on the GPU (host arrays copied there and back). Default 'cpu'. */
  device?: Device;
}

/**
 * Merges two attention states computed over disjoint key sets (split-KV decoding, RingAttention, SelfExtend's
 * neighbour and grouped passes) through their log-sum-exps: the result equals attention over the union of the keys.
 */
export function mergeAttentionStates(
  outA: Float32Array,
  lseA: Float32Array,
  outB: Float32Array,
  lseB: Float32Array,
  options: MergeAttentionOptions,
): { out: Float32Array; lse: Float32Array } {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<MergeAttentionOptions>(options, 'options', ['layout', 'batch', 'heads', 'seq', 'dim', 'out', 'lse', 'device']);
  const layout = expectOneOf(o.layout, 'layout', ['bshd', 'bhsd'] as const);
  const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1, MAX_ELEMENTS);
  const heads = expectInteger(o.heads, 'heads', 1, MAX_ELEMENTS);
  const seq = expectInteger(o.seq, 'seq', 0, MAX_ELEMENTS);
  const dim = expectInteger(o.dim, 'dim', 1, MAX_ELEMENTS);
  const rows = shapeCount(batch, heads, seq), n = shapeCount(rows, dim);
  const arrays = { outA, lseA, outB, lseB } as const;
  for (const [name, a] of Object.entries(arrays)) {
    const f = expectFloat32Array(a, name);
    const want = name.startsWith('out') ? n : rows;
    if (f.length !== want) throw new RangeError(`"${name}" must hold ${want} values, got ${f.length}`);
  }
  const out = o.out === undefined ? new Float32Array(n) : expectFloat32Array(o.out, 'out');
  const lse = o.lse === undefined ? new Float32Array(rows) : expectFloat32Array(o.lse, 'lse');
  if (out.length !== n) throw new RangeError(`"out" must hold ${n} values, got ${out.length}`);
  if (lse.length !== rows) throw new RangeError(`"lse" must hold ${rows} values, got ${lse.length}`);
  const args = [outA, lseA, outB, lseB, out, lse, layout, batch, heads, seq, dim] as const;
  if (expectDevice(o.device) === 'cuda') cudaKernels().cudaMergeAttentionStates(...args);
  else binding().mergeAttentionStates(...args);
  return { out, lse };
}
