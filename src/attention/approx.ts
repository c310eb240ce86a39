// Approximate long-context attention (native/include/tessera/approx_attention.h): Squeezed Attention over a fixed,
// clustered context, and HyperAttention (sortLSH block diagonal + sampled columns). Float32 only.
import type { HyperAttentionArgs, HyperShapeArgs, SqueezedAttentionHandle } from '../native/binding.js';
import { binding } from '../native/load.js';
import { NativeResource } from '../core/resource.js';
import type { AttentionShapeOptions } from './attention.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectU64,
  required,
  viewsOverlap,
  expectFinite,
  MAX_ELEMENTS,
  shapeCount,
  expectFloat32Length,
} from '../core/validate.js';

const MAX_SEQ = 2 ** 32 - 1;



// ---- Squeezed Attention ----------------------------------------------------------------------------------------

export interface SqueezedAttentionOptions {
  /** Key/value heads of the fixed context. */
  headsKV: number;
  /** Fixed-context length (keys per head). */
  seqK: number;
  /** Key head size, up to 256. */
  headDim: number;
  /** Value head size (default headDim), up to 256. */
  headDimV?: number;
  /** Clusters per head as a fraction of seqK (default 0.05, the reference's 5%); at least one cluster. */
  clusterFraction?: number;
  /** Lloyd iterations after k-means++ seeding (default 25; stops early when no key changes cluster). */
  iterations?: number;
  /** Seed of the k-means++ draws (Tessera's generator; default 42). */
  seed?: number | bigint;
}

export interface SqueezedAttendOptions {
  headsQ: number;
  seqQ: number;
  /** Multiplies q·k and q·centroid (default 1 / √headDim). */
  scale?: number;
  /** Keep the clusters whose estimated per-key softmax mass exp(s_c) / Σ_k N_k exp(s_k) exceeds this (0 keeps
   *  all). Exclusive with keepFraction. */
  threshold?: number;
  /** Keep the best clusters by that estimate until at least this fraction of the keys is kept, in (0, 1]
   *  (default 0.25 when neither option is given). */
  keepFraction?: number;
  /** Also return the natural-log LSE of each query over the kept keys, [headsQ, seqQ], for mergeAttentionStates. */
  returnLse?: boolean;
  /** Where to write the output, [seqQ, headsQ, headDimV]. */
  out?: Float32Array;
}

export interface SqueezedAttendResult {
  /** [seqQ, headsQ, headDimV] ('bshd', batch 1). A query that keeps no key gets zeros (and lse −Infinity). */
  out: Float32Array;
  lse?: Float32Array;
  /** Kept keys / seqK, averaged over queries and heads. */
  keptFraction: number;
}

export interface SqueezedLayout {
  /** Per head, clusters + 1 offsets: cluster c holds stored keys [offsets[c], offsets[c + 1]). */
  offsets: Int32Array;
  /** Per head, seqK original key indices in stored (cluster) order. */
  order: Int32Array;
  /** Per head, clusters × headDim centroids (means of the un-normalised keys). */
  centroids: Float32Array;
}

const BUILD_OPTIONS: readonly (keyof SqueezedAttentionOptions)[] = [
  'headsKV', 'seqK', 'headDim', 'headDimV', 'clusterFraction', 'iterations', 'seed',
];
const ATTEND_OPTIONS: readonly (keyof SqueezedAttendOptions)[] = ['headsQ', 'seqQ', 'scale', 'threshold', 'keepFraction', 'returnLse', 'out'];

interface SqueezedConfig {
  headsKV: number;
  seqK: number;
  headDim: number;
  headDimV: number;
  clusters: number;
  iterations: number;
  seed: bigint;
}

function buildArgs(keys: unknown, values: unknown, options: unknown) {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<SqueezedAttentionOptions>(options, 'options', BUILD_OPTIONS);
  const headsKV = expectInteger(required(o.headsKV, 'headsKV'), 'headsKV', 1, MAX_ELEMENTS);
  const seqK = expectInteger(required(o.seqK, 'seqK'), 'seqK', 1, MAX_SEQ);
  const headDim = expectInteger(required(o.headDim, 'headDim'), 'headDim', 1, 256);
  const headDimV = o.headDimV === undefined ? headDim : expectInteger(o.headDimV, 'headDimV', 1, 256);
  const fraction = expectFinite(o.clusterFraction, 'clusterFraction', 0.05);
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`"clusterFraction" must be in (0, 1], got ${fraction}`);
  const clusters = Math.min(seqK, Math.max(1, Math.round(fraction * seqK)));
  const iterations = o.iterations === undefined ? 25 : expectInteger(o.iterations, 'iterations', 0, 100000);
  const seed = o.seed === undefined ? 42n : expectU64(o.seed, 'seed');
  const k = expectFloat32Length(keys, 'keys', shapeCount(seqK, headsKV, headDim));
  const v = expectFloat32Length(values, 'values', shapeCount(seqK, headsKV, headDimV));
  const config: SqueezedConfig = { headsKV, seqK, headDim, headDimV, clusters, iterations, seed };
  return { k, v, config };
}

/**
 * Squeezed Attention (Hooper et al., arXiv 2411.09688) over a fixed context: keys [seqK, headsKV, headDim] and values
 * [seqK, headsKV, headDimV] ('bshd', batch 1) are clustered once per head (k-means++ then Lloyd on the L2-normalised
 * keys; centroid = mean of the raw keys); each query then scores the centroids, keeps the clusters whose estimated
 * softmax mass is large, and attends exactly (float32) to their keys. Merge its LSE with exact attention over the
 * rest of the prompt (mergeAttentionStates) for attention over everything.
 */
export class SqueezedAttention extends NativeResource<SqueezedAttentionHandle> {
  readonly headsKV: number;
  readonly seqK: number;
  readonly headDim: number;
  readonly headDimV: number;
  /** Clusters per head. */
  readonly clusters: number;
  readonly iterations: number;
  readonly seed: bigint;

  private constructor(handle: SqueezedAttentionHandle, c: SqueezedConfig) {
    super(handle, (h) => h.release());
    this.headsKV = c.headsKV;
    this.seqK = c.seqK;
    this.headDim = c.headDim;
    this.headDimV = c.headDimV;
    this.clusters = c.clusters;
    this.iterations = c.iterations;
    this.seed = c.seed;
  }

  /** Clusters the keys (on the calling thread; see buildAsync for large contexts). The arrays are copied. */
  static build(keys: Float32Array, values: Float32Array, options: SqueezedAttentionOptions): SqueezedAttention {
    const { k, v, config: c } = buildArgs(keys, values, options);
    const handle = new (binding().SqueezedAttentionHandle)();
    try {
      handle.build(k, v, c.headsKV, c.seqK, c.headDim, c.headDimV, c.clusters, c.iterations, c.seed);
    } catch (e) {
      handle.release();
      throw e;
    }
    return new SqueezedAttention(handle, c);
  }

  /** build() on a worker thread. Do not modify keys or values until the promise settles. */
  static async buildAsync(keys: Float32Array, values: Float32Array, options: SqueezedAttentionOptions): Promise<SqueezedAttention> {
    const { k, v, config: c } = buildArgs(keys, values, options);
    const handle = new (binding().SqueezedAttentionHandle)();
    try {
      await handle.buildAsync(k, v, c.headsKV, c.seqK, c.headDim, c.headDimV, c.clusters, c.iterations, c.seed);
    } catch (e) {
      handle.release();
      throw e;
    }
    return new SqueezedAttention(handle, c);
  }

  #args(q: unknown, options: unknown) {
    if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
    const o = expectOptions<SqueezedAttendOptions>(options, 'options', ATTEND_OPTIONS);
    const handle = this.handle;
    const headsQ = expectInteger(required(o.headsQ, 'headsQ'), 'headsQ', 1, MAX_ELEMENTS);
    if (headsQ % this.headsKV !== 0) throw new RangeError(`"headsQ" (${headsQ}) must be a multiple of headsKV (${this.headsKV})`);
    const seqQ = expectInteger(required(o.seqQ, 'seqQ'), 'seqQ', 0, MAX_ELEMENTS);
    const scale = expectFinite(o.scale, 'scale', 1 / Math.sqrt(this.headDim));
    if (o.threshold !== undefined && o.keepFraction !== undefined) {
      throw new RangeError('give "threshold" or "keepFraction", not both');
    }
    const threshold = expectFinite(o.threshold, 'threshold', 0);
    if (threshold < 0) throw new RangeError(`"threshold" must not be negative, got ${threshold}`);
    const keepFraction = o.threshold !== undefined ? 0 : expectFinite(o.keepFraction, 'keepFraction', 0.25);
    if (o.threshold === undefined && !(keepFraction > 0 && keepFraction <= 1)) {
      throw new RangeError(`"keepFraction" must be in (0, 1], got ${keepFraction}`);
    }
    const qa = expectFloat32Length(q, 'q', shapeCount(seqQ, headsQ, this.headDim));
    const outLength = shapeCount(seqQ, headsQ, this.headDimV);
    const out = o.out === undefined ? new Float32Array(outLength) : expectFloat32Length(o.out, 'out', outLength);
    if (viewsOverlap(out, qa)) throw new RangeError('"out" overlaps "q"');
    const lse = expectBoolean(o.returnLse, 'returnLse', false) ? new Float32Array(headsQ * seqQ) : null;
    return { handle, args: [qa, out, lse, headsQ, seqQ, scale, threshold, keepFraction] as const };
  }

  /** Approximate attention of q [seqQ, headsQ, headDim] ('bshd') over the fixed context. */
  attend(q: Float32Array, options: SqueezedAttendOptions): SqueezedAttendResult {
    const { handle, args } = this.#args(q, options);
    const keptFraction = handle.attend(...args);
    return args[2] ? { out: args[1], lse: args[2], keptFraction } : { out: args[1], keptFraction };
  }

  /** attend() on worker threads. Do not modify q (or `out`) until the promise settles. */
  async attendAsync(q: Float32Array, options: SqueezedAttendOptions): Promise<SqueezedAttendResult> {
    const { handle, args } = this.#args(q, options);
    const { keptFraction } = await handle.attendAsync(...args);
    return args[2] ? { out: args[1], lse: args[2], keptFraction } : { out: args[1], keptFraction };
  }

  /** The clustering (copies): offsets, stored order and centroids per head. */
  layout(): SqueezedLayout {
    return this.handle.layout();
  }

  /** Bytes of native memory held (reordered keys and values, centroids, offsets). */
  memoryBytes(): number {
    return this.handle.memoryBytes();
  }
}

// ---- HyperAttention ---------------------------------------------------------------------------------------------

export interface HyperAttentionOptions extends AttentionShapeOptions {
  /** Causal (needs seqQ = seqK): recursive halving into two causal halves and a non-causal block. */
  causal?: boolean;
  /** Keys per block of the sorted block diagonal (default 256). */
  blockSize?: number;
  /** Sampled key columns per (batch, head) (default 256; 0: block diagonal only). */
  sampleSize?: number;
  /** Gaussian projections of the angular LSH (default 7, at most 16). */
  lshBits?: number;
  /** Exact attention when seqQ or seqK is below this (causal: when seqK ≤ it) (default 4096). */
  minSeqLen?: number;
  /** Seed of the LSH projections and the samples (Tessera's generator; default 42). */
  seed?: number | bigint;
  returnLse?: boolean;
  out?: Float32Array;
}

export interface HyperAttentionResult {
  out: Float32Array;
  /** [batch, headsQ, seqQ], natural log. */
  lse?: Float32Array;
}

const HYPER_OPTIONS: readonly (keyof HyperAttentionOptions)[] = [
  'layout', 'batch', 'headsQ', 'headsKV', 'seqQ', 'seqK', 'headDim', 'headDimV', 'scale', 'causal', 'blockSize',
  'sampleSize', 'lshBits', 'minSeqLen', 'seed', 'returnLse', 'out',
];

/** Checks HyperAttention's options; the shape arguments of the native call. Exported for the tests' plan calls. */
export function hyperShape(options: unknown): { shape: HyperShapeArgs; returnLse: boolean; out: Float32Array | undefined } {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<HyperAttentionOptions>(options, 'options', HYPER_OPTIONS);
  const layout = expectOneOf(o.layout, 'layout', ['bshd', 'bhsd'] as const);
  const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1, MAX_ELEMENTS);
  const headsQ = expectInteger(required(o.headsQ, 'headsQ'), 'headsQ', 1, MAX_ELEMENTS);
  const headsKV = o.headsKV === undefined ? headsQ : expectInteger(o.headsKV, 'headsKV', 1, MAX_ELEMENTS);
  if (headsQ % headsKV !== 0) throw new RangeError(`"headsQ" (${headsQ}) must be a multiple of "headsKV" (${headsKV})`);
  const seqQ = expectInteger(required(o.seqQ, 'seqQ'), 'seqQ', 0, 2 ** 24);
  const seqK = expectInteger(required(o.seqK, 'seqK'), 'seqK', 0, 2 ** 24);
  const headDim = expectInteger(required(o.headDim, 'headDim'), 'headDim', 1, 256);
  const headDimV = o.headDimV === undefined ? headDim : expectInteger(o.headDimV, 'headDimV', 1, 256);
  const scale = expectFinite(o.scale, 'scale', 1 / Math.sqrt(headDim));
  const causal = expectBoolean(o.causal, 'causal', false);
  if (causal && seqQ !== seqK) throw new RangeError(`causal HyperAttention needs "seqQ" (${seqQ}) equal to "seqK" (${seqK})`);
  const blockSize = o.blockSize === undefined ? 256 : expectInteger(o.blockSize, 'blockSize', 1, 2 ** 24);
  const sampleSize = o.sampleSize === undefined ? 256 : expectInteger(o.sampleSize, 'sampleSize', 0, 2 ** 24);
  const lshBits = o.lshBits === undefined ? 7 : expectInteger(o.lshBits, 'lshBits', 0, 16);
  const minSeqLen = o.minSeqLen === undefined ? 4096 : expectInteger(o.minSeqLen, 'minSeqLen', 0, MAX_ELEMENTS);
  const seed = o.seed === undefined ? 42n : expectU64(o.seed, 'seed');
  shapeCount(batch, headsQ, seqQ, Math.max(headDim, headDimV));
  shapeCount(batch, headsKV, seqK, Math.max(headDim, headDimV));
  const returnLse = expectBoolean(o.returnLse, 'returnLse', false);
  const out = o.out === undefined ? undefined : expectFloat32Array(o.out, 'out');
  return {
    shape: [layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale, causal, blockSize, sampleSize, lshBits, minSeqLen, seed],
    returnLse,
    out,
  };
}

function hyperArgs(q: unknown, k: unknown, v: unknown, options: unknown): HyperAttentionArgs {
  const { shape, returnLse, out: given } = hyperShape(options);
  const [, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV] = shape;
  const qa = expectFloat32Length(q, 'q', batch * headsQ * seqQ * headDim);
  const ka = expectFloat32Length(k, 'k', batch * headsKV * seqK * headDim);
  const va = expectFloat32Length(v, 'v', batch * headsKV * seqK * headDimV);
  const outLength = batch * headsQ * seqQ * headDimV;
  const out = given === undefined ? new Float32Array(outLength) : expectFloat32Length(given, 'out', outLength);
  for (const [name, a] of [['q', qa], ['k', ka], ['v', va]] as const) {
    if (viewsOverlap(out, a)) throw new RangeError(`"out" overlaps "${name}"`);
  }
  const lse = returnLse ? new Float32Array(batch * headsQ * seqQ) : null;
  return [qa, ka, va, out, lse, ...shape];
}

function hyperResult(args: HyperAttentionArgs): HyperAttentionResult {
  return args[4] ? { out: args[3], lse: args[4] } : { out: args[3] };
}

/**
 * HyperAttention (Han et al., arXiv 2310.05869): queries and keys sorted by a Gray-coded angular LSH, exact attention
 * on the sorted block diagonal, plus sampleSize uniformly sampled key columns reweighted by seqK / sampleSize, merged
 * through their LSEs; causal by recursive halving. Exact attention below minSeqLen. Float32; deterministic for a seed.
 */
export function hyperAttention(q: Float32Array, k: Float32Array, v: Float32Array, options: HyperAttentionOptions): HyperAttentionResult {
  const args = hyperArgs(q, k, v, options);
  binding().hyperAttention(...args);
  return hyperResult(args);
}

/** hyperAttention() on a worker thread. Do not modify the inputs (or `out`) until the promise settles. */
export async function hyperAttentionAsync(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  options: HyperAttentionOptions,
): Promise<HyperAttentionResult> {
  const args = hyperArgs(q, k, v, options);
  await binding().hyperAttentionAsync(...args);
  return hyperResult(args);
}
