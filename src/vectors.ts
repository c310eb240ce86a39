// Row-wise vector operations: Matryoshka truncation and L2 normalisation of row-major float32 matrices.
import { binding } from './native/load.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOptions,
  required,
  uninitializedFloat32,
  viewsOverlap,
} from './core/validate.js';

export interface MatryoshkaOptions {
  /** Dimensions of each input row. */
  dim: number;
  /** Leading dimensions to keep, 1 to dim. */
  keep: number;
  /** Rescale each truncated row to unit L2 norm (default true). */
  normalize?: boolean;
  /** Where to write rows × keep floats; a new array when absent. */
  out?: Float32Array;
}

export interface L2NormalizeOptions {
  dim: number;
  /** Where to write; pass the input itself to normalise in place. A new array when absent. */
  out?: Float32Array;
}

const MAX_DIM = 2 ** 30;

interface Checked {
  vectors: Float32Array;
  dim: number;
  keep: number;
  normalize: boolean;
  out: Float32Array;
}

function check(vectors: unknown, options: unknown, withKeep: boolean): Checked {
  const v = expectFloat32Array(vectors, 'vectors');
  const o = expectOptions<MatryoshkaOptions>(options, 'options', withKeep ? ['dim', 'keep', 'normalize', 'out'] : ['dim', 'out']);
  const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_DIM);
  const keep = withKeep ? expectInteger(required(o.keep, 'keep'), 'keep', 1, MAX_DIM) : dim;
  if (keep > dim) throw new RangeError(`"keep" (${keep}) must not exceed "dim" (${dim})`);
  if (v.length % dim !== 0) {
    throw new RangeError(`"vectors" length (${v.length}) is not a multiple of "dim" (${dim})`);
  }
  const rows = v.length / dim;
  const normalize = withKeep ? expectBoolean(o.normalize, 'normalize', true) : true;
  let out: Float32Array;
  if (o.out === undefined) {
    out = uninitializedFloat32(rows * keep);
  } else {
    out = expectFloat32Array(o.out, 'out');
    if (out.length !== rows * keep) {
      throw new RangeError(`"out" must hold ${rows * keep} floats (${rows} rows × ${keep}), got ${out.length}`);
    }
    const inPlace = out.buffer === v.buffer && out.byteOffset === v.byteOffset && keep === dim;
    if (!inPlace && viewsOverlap(out, v)) {
      throw new RangeError('"out" overlaps "vectors": only the same array, with keep equal to dim, works in place');
    }
  }
  return { vectors: v, dim, keep, normalize, out };
}

/**
 * Matryoshka truncation: the first `keep` dimensions of each row, rescaled to unit L2 norm unless
 * `normalize: false`. Models trained with Matryoshka Representation Learning (and 2D Matryoshka / Starbucks
 * embeddings) are meant to be used at such prefixes.
 *
 * Accuracy: the norm is accumulated and applied in float64, so each output is within half an ulp (plus 1e-12
 * relative) of the exact value, for any finite input: no overflow or underflow. A row whose prefix is all zeros is
 * returned as zeros, never NaN; NaN or infinite inputs give NaN in their row.
 * Threaded over rows; the output is identical for any thread count.
 */
export function matryoshka(vectors: Float32Array, options: MatryoshkaOptions): Float32Array {
  const c = check(vectors, options, true);
  return binding().matryoshka(c.vectors, c.dim, c.keep, c.normalize, c.out);
}

/** matryoshka() on a worker thread. Do not modify `vectors` or `out` until the promise settles. */
export function matryoshkaAsync(vectors: Float32Array, options: MatryoshkaOptions): Promise<Float32Array> {
  try {
    const c = check(vectors, options, true);
    return binding().matryoshkaAsync(c.vectors, c.dim, c.keep, c.normalize, c.out);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Scales each row of `dim` floats to unit L2 norm; all-zero rows stay zero. Same accuracy as matryoshka(). */
export function l2Normalize(vectors: Float32Array, options: L2NormalizeOptions): Float32Array {
  const c = check(vectors, options, false);
  return binding().matryoshka(c.vectors, c.dim, c.dim, true, c.out);
}

/** l2Normalize() on a worker thread. Do not modify `vectors` or `out` until the promise settles. */
export function l2NormalizeAsync(vectors: Float32Array, options: L2NormalizeOptions): Promise<Float32Array> {
  try {
    const c = check(vectors, options, false);
    return binding().matryoshkaAsync(c.vectors, c.dim, c.dim, true, c.out);
  } catch (e) {
    return Promise.reject(e);
  }
}
