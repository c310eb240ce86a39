// The key/value cache for incremental decoding (native/include/tessera/kv_cache.h): native storage per layer,
// appends with type conversion, eviction (none, sliding window, LM-Infinite's Λ), attention of the newest queries.

import type { KvCacheHandle } from '../native/binding.js';
import { binding } from '../native/load.js';
import { NativeResource } from '../core/resource.js';
import {
  expectBoolean,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectStorage,
  required,
  type StorageDType,
  expectFinite,
  expectSlopes,
} from '../core/validate.js';

type Storage = Float32Array | Uint16Array;
export type KvEviction = 'none' | 'sliding' | 'lambda';

const MAX_TOKENS = 2 ** 24;

export interface KvCacheOptions {
  layers: number;
  /** Batch rows, all of the same length (default 1). */
  batch?: number;
  headsKV: number;
  headDim: number;
  /** Value head size (default headDim). */
  headDimV?: number;
  /** Storage type (default 'float32'); appended data of another type is converted (rounded to nearest even). */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** 'none' keeps every token; 'sliding' the last `window`; 'lambda' the first `globalTokens` and the last `window`
   *  (LM-Infinite's Λ, StreamingLLM's attention sinks). Default 'none'. */
  eviction?: KvEviction;
  window?: number;
  globalTokens?: number;
}

export interface KvAppendOptions {
  /** The type of k and v: 'float32' for Float32Arrays; 'float16' or 'bfloat16' for Uint16Arrays (required then). */
  dtype?: StorageDType;
}

export interface KvAttendOptions {
  /** Query heads (default headsKV); a multiple of headsKV (GQA, MQA). */
  headsQ?: number;
  /** Queries per batch row (default: inferred from q's length); they are the newest tokens appended. */
  seqQ?: number;
  scale?: number;
  temperature?: number;
  softcap?: number;
  /** Default true: a query sees keys up to its own position. */
  causal?: boolean;
  /** Eviction 'none' only: a window mask on top (the evicting caches use their own). */
  window?: number;
  /** Eviction 'none' only, with window. */
  globalTokens?: number;
  /** Eviction 'none' only (after eviction, storage distances are not token distances). */
  alibiSlopes?: Float32Array | Float64Array | readonly number[];
  returnLse?: boolean;
  /** The type of q, and of the output: 'float32' (default for Float32Array) or 'float16' / 'bfloat16'. */
  dtype?: StorageDType;
  out?: Storage;
}

export interface KvAttendResult<T extends Storage> {
  /** [batch, seqQ, headsQ, headDimV] in q's type. */
  out: T;
  /** [batch, headsQ, seqQ], natural log. */
  lse?: Float32Array;
}

const ATTEND_KEYS: readonly (keyof KvAttendOptions)[] = [
  'headsQ', 'seqQ', 'scale', 'temperature', 'softcap', 'causal', 'window', 'globalTokens', 'alibiSlopes', 'returnLse',
  'dtype', 'out',
];

/**
 * A key/value cache for incremental decoding: `append(layer, k, v)` adds tokens ([batch, tokens, headsKV, headDim]
 * row-major, Hugging Face's layout before the transpose), `attend(layer, q)` runs exact attention of the newest
 * tokens' queries over what the layer keeps. With eviction, memory stays O(globalTokens + window + the largest
 * append). Holds native memory: call dispose() (or `using`) when done.
 */
export class KvCache extends NativeResource<KvCacheHandle> {
  readonly layers: number;
  readonly batch: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly headDimV: number;
  readonly dtype: 'float32' | 'float16' | 'bfloat16';
  readonly eviction: KvEviction;
  readonly window: number;
  readonly globalTokens: number;

  constructor(options: KvCacheOptions) {
    if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
    const o = expectOptions<KvCacheOptions>(options, 'options', [
      'layers', 'batch', 'headsKV', 'headDim', 'headDimV', 'dtype', 'eviction', 'window', 'globalTokens',
    ]);
    const layers = expectInteger(required(o.layers, 'layers'), 'layers', 1, 2 ** 20);
    const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1, 2 ** 20);
    const headsKV = expectInteger(required(o.headsKV, 'headsKV'), 'headsKV', 1, 2 ** 20);
    const headDim = expectInteger(required(o.headDim, 'headDim'), 'headDim', 1, 256);
    const headDimV = o.headDimV === undefined ? headDim : expectInteger(o.headDimV, 'headDimV', 1, 256);
    const dtype = o.dtype === undefined ? 'float32' : expectOneOf(o.dtype, 'dtype', ['float32', 'float16', 'bfloat16'] as const);
    const eviction = o.eviction === undefined ? 'none' : expectOneOf(o.eviction, 'eviction', ['none', 'sliding', 'lambda'] as const);
    let window = 0, globalTokens = 0;
    if (eviction === 'none') {
      if (o.window !== undefined) throw new RangeError('"window" needs eviction \'sliding\' or \'lambda\' (for a mask only, give it to attend())');
      if (o.globalTokens !== undefined) throw new RangeError('"globalTokens" needs eviction \'lambda\'');
    } else {
      window = expectInteger(required(o.window, 'window'), 'window', 1, MAX_TOKENS);
      if (o.globalTokens !== undefined) {
        globalTokens = expectInteger(o.globalTokens, 'globalTokens', 0, MAX_TOKENS);
        if (eviction !== 'lambda' && globalTokens > 0) throw new RangeError('"globalTokens" needs eviction \'lambda\'');
      }
    }
    super(new (binding().KvCacheHandle)(layers, batch, headsKV, headDim, headDimV, dtype, eviction, window, globalTokens),
      (h) => h.release());
    this.layers = layers;
    this.batch = batch;
    this.headsKV = headsKV;
    this.headDim = headDim;
    this.headDimV = headDimV;
    this.dtype = dtype;
    this.eviction = eviction;
    this.window = window;
    this.globalTokens = globalTokens;
  }

  #layer(layer: unknown): number {
    return expectInteger(layer, 'layer', 0, this.layers - 1);
  }

  /** Tokens appended to `layer` since the last reset: the position of its next token. */
  position(layer: number): number {
    return this.handle.position(this.#layer(layer));
  }

  /** Tokens `layer` keeps now (after eviction). */
  stored(layer: number): number {
    return this.handle.stored(this.#layer(layer));
  }

  /** Native memory held, in bytes. */
  get memoryBytes(): number {
    return this.handle.memoryBytes();
  }

  /**
   * Appends tokens to every batch row of `layer`: k [batch, tokens, headsKV, headDim] and v [batch, tokens, headsKV,
   * headDimV] (same token count; RoPE already applied). Throws while an attendAsync on this cache is in flight.
   */
  append(layer: number, k: Storage, v: Storage, options?: KvAppendOptions): void {
    const handle = this.handle;
    const l = this.#layer(layer);
    const o = options === undefined ? {} : expectOptions<KvAppendOptions>(options, 'options', ['dtype']);
    const ks = expectStorage(k, 'k', o.dtype);
    const vs = expectStorage(v, 'v', ks.dtype);
    const rowK = this.batch * this.headsKV * this.headDim, rowV = this.batch * this.headsKV * this.headDimV;
    if (ks.data.length % rowK !== 0) {
      throw new RangeError(`"k" must hold batch × tokens × headsKV × headDim values (a multiple of ${rowK}), got ${ks.data.length}`);
    }
    const tokens = ks.data.length / rowK;
    if (vs.data.length !== tokens * rowV) {
      throw new RangeError(`"v" must hold ${tokens * rowV} values (${tokens} tokens, as k), got ${vs.data.length}`);
    }
    if (tokens > MAX_TOKENS) throw new RangeError(`append at most 2^24 tokens at a time, got ${tokens}`);
    handle.append(l, ks.data, vs.data, ks.dtype, tokens);
  }

  #args(layer: unknown, q: unknown, options: unknown) {
    const handle = this.handle;
    const l = this.#layer(layer);
    const o = options === undefined ? {} : expectOptions<KvAttendOptions>(options, 'options', ATTEND_KEYS);
    const qs = expectStorage(q, 'q', o.dtype);
    const headsQ = o.headsQ === undefined ? this.headsKV : expectInteger(o.headsQ, 'headsQ', 1, 2 ** 20);
    if (headsQ % this.headsKV !== 0) throw new RangeError(`"headsQ" (${headsQ}) must be a multiple of headsKV (${this.headsKV})`);
    const row = this.batch * headsQ * this.headDim;
    let seqQ: number;
    if (o.seqQ === undefined) {
      if (qs.data.length % row !== 0) throw new RangeError(`"q" must hold batch × seqQ × headsQ × headDim values (a multiple of ${row}), got ${qs.data.length}`);
      seqQ = qs.data.length / row;
    } else {
      seqQ = expectInteger(o.seqQ, 'seqQ', 0, MAX_TOKENS);
      if (qs.data.length !== seqQ * row) throw new RangeError(`"q" must hold ${seqQ * row} values, got ${qs.data.length}`);
    }
    const outLength = this.batch * seqQ * headsQ * this.headDimV;
    let out: Storage;
    if (o.out === undefined) out = qs.dtype === 'float32' ? new Float32Array(outLength) : new Uint16Array(outLength);
    else {
      out = expectStorage(o.out, 'out', qs.dtype).data;
      if (out.length !== outLength) throw new RangeError(`"out" must hold ${outLength} values, got ${out.length}`);
    }
    const scale = expectFinite(o.scale, 'scale', 1 / Math.sqrt(this.headDim));
    const temperature = expectFinite(o.temperature, 'temperature', 1);
    if (temperature <= 0) throw new RangeError(`"temperature" must be above 0, got ${temperature}`);
    const softcap = expectFinite(o.softcap, 'softcap', 0);
    if (softcap < 0) throw new RangeError(`"softcap" must not be negative, got ${softcap}`);
    const causal = expectBoolean(o.causal, 'causal', true);
    const evicting = this.eviction !== 'none';
    for (const name of ['window', 'globalTokens', 'alibiSlopes'] as const) {
      if (evicting && o[name] !== undefined) throw new RangeError(`"${name}" needs a cache with eviction 'none' (this one masks by its own window)`);
    }
    const window = o.window === undefined ? 0 : expectInteger(o.window, 'window', 1, MAX_TOKENS);
    const globalTokens = o.globalTokens === undefined ? 0 : expectInteger(o.globalTokens, 'globalTokens', 0, MAX_TOKENS);
    if (globalTokens > 0 && window === 0) throw new RangeError('"globalTokens" needs a "window"');
    const alibi = o.alibiSlopes === undefined ? null : expectSlopes(o.alibiSlopes, 'alibiSlopes', headsQ);
    const returnLse = expectBoolean(o.returnLse, 'returnLse', false);
    const lse = returnLse ? new Float32Array(this.batch * headsQ * seqQ) : null;
    const args = [l, qs.data, qs.dtype, headsQ, seqQ, out, lse, scale, temperature, softcap, causal, window, globalTokens,
      alibi] as const;
    return { handle, args, out, lse };
  }

  /**
   * Exact attention of the newest seqQ tokens' queries (q [batch, seqQ, headsQ, headDim]) over the keys `layer`
   * keeps, with the cache's window (or the options' masks with eviction 'none'). Query i of the block sits at the
   * position of the i-th of the last seqQ tokens, so call it after appending those tokens.
   */
  attend<T extends Storage>(layer: number, q: T, options?: KvAttendOptions): KvAttendResult<T> {
    const { handle, args, out, lse } = this.#args(layer, q, options);
    handle.attend(...args);
    return lse ? { out: out as T, lse } : { out: out as T };
  }

  /** attend() on a worker thread; append() and reset() throw until it settles. Do not modify q or out meanwhile. */
  async attendAsync<T extends Storage>(layer: number, q: T, options?: KvAttendOptions): Promise<KvAttendResult<T>> {
    const { handle, args, out, lse } = this.#args(layer, q, options);
    await handle.attendAsync(...args);
    return lse ? { out: out as T, lse } : { out: out as T };
  }

  /** Forgets every layer's tokens, keeping the memory for the next sequence. */
  reset(): void {
    this.handle.reset();
  }
}
