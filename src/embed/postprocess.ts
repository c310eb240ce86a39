// Post-processing of sentence embeddings (native/include/tessera/postprocess.h): relative representations against
// anchors, whitening toward isotropy, and projection onto the orthogonal complement of given directions.
import type { ProjectOutArgs, RelativeRepresentationArgs, WhiteningFitArgs, WhiteningTransformArgs } from '../native/binding.js';
import { binding } from '../native/load.js';
import { NativeResource } from '../core/resource.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOptions,
  required,
  typeName,
  uninitializedFloat32,
  viewsOverlap,
} from '../core/validate.js';

const MAX_COUNT = 2 ** 40;
/** The covariance is dim × dim float64: 2^16 would already be 32 GiB. */
const MAX_WHITENING_DIM = 2 ** 16;

function dimOf(options: { dim?: unknown }): number {
  return expectInteger(required(options.dim, 'dim'), 'dim', 1, MAX_COUNT);
}

/** A Float32Array of whole rows of `dim` values; returns the row count. */
function rowsOf(value: unknown, name: string, dim: number): [Float32Array, number] {
  const a = expectFloat32Array(value, name);
  if (a.length % dim !== 0) throw new RangeError(`"${name}" length (${a.length}) is not a multiple of "dim" (${dim})`);
  return [a, a.length / dim];
}

/** The caller's `out` (exactly `length` values, overlapping no input except `same`) or a new array. */
function outArray(value: unknown, length: number, inputs: readonly ArrayBufferView[], same?: Float32Array): Float32Array {
  if (value === undefined) return uninitializedFloat32(length);
  const out = expectFloat32Array(value, 'out');
  if (out.length !== length) throw new RangeError(`"out" must hold ${length} values, got ${out.length}`);
  const exact = same !== undefined && out.buffer === same.buffer && out.byteOffset === same.byteOffset;
  for (const a of inputs) {
    if (a === same && exact) continue;
    if (viewsOverlap(out, a)) throw new RangeError(`"out" must not overlap an input${same ? ' (it may be "vectors" itself)' : ''}`);
  }
  return out;
}

function expectObject(value: unknown, name: string): void {
  if (value === undefined) throw new TypeError(`Expected "${name}" to be an object, got undefined`);
}

// ---- relative representations ----------------------------------------------------------------------------------

export interface RelativeRepresentationOptions {
  /** Values per vector (and per anchor). */
  dim: number;
  /** L2-normalise each output row of cosines. Default true. */
  normalize?: boolean;
  /** Where to write [n, anchorCount]. */
  out?: Float32Array;
}

const RELATIVE_OPTIONS: readonly (keyof RelativeRepresentationOptions)[] = ['dim', 'normalize', 'out'];

function relativeArgs(vectors: unknown, anchors: unknown, options: unknown, anchorsNormalized: boolean): RelativeRepresentationArgs {
  expectObject(options, 'options');
  const o = expectOptions<RelativeRepresentationOptions>(options, 'options', RELATIVE_OPTIONS);
  const dim = dimOf(o);
  const [a, anchorCount] = rowsOf(anchors, 'anchors', dim);
  if (anchorCount === 0) throw new RangeError('"anchors" must hold at least one anchor');
  const [v, n] = rowsOf(vectors, 'vectors', dim);
  if (n * anchorCount > MAX_COUNT) throw new RangeError(`the output would hold ${n * anchorCount} values, more than 2^40`);
  const normalize = expectBoolean(o.normalize, 'normalize', true);
  const out = outArray(o.out, n * anchorCount, [v, a]);
  return [v, a, out, n, anchorCount, dim, anchorsNormalized, normalize];
}

/**
 * Relative representations (Moschella et al., ICLR 2023, "Relative representations enable zero-shot latent space
 * communication"): row i of the result [n, anchorCount] holds the cosine similarity of vectors[i] with each anchor.
 * Vectors and anchors are L2-normalised first (norms summed in float64; a zero row gives zeros, not NaN; a NaN or
 * infinite value makes its row's or anchor's outputs NaN), then
 * multiplied on the blocked, threaded SIMD matrix product; with `normalize` (the default) each output row is then
 * L2-normalised. The products are float32: against a float64 reference the cosines are off by at most about 1e-6
 * at dim 45 and 2e-6 at dim 1536 (measured on ada-002 vectors). To reuse one set of anchors, a RelativeProjector
 * normalises them once.
 */
export function relativeRepresentation(vectors: Float32Array, anchors: Float32Array, options: RelativeRepresentationOptions): Float32Array {
  const args = relativeArgs(vectors, anchors, options, false);
  binding().relativeRepresentation(...args);
  return args[2];
}

/** relativeRepresentation() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function relativeRepresentationAsync(vectors: Float32Array, anchors: Float32Array, options: RelativeRepresentationOptions): Promise<Float32Array> {
  const args = relativeArgs(vectors, anchors, options, false);
  await binding().relativeRepresentationAsync(...args);
  return args[2];
}

export interface RelativeProjectorOptions {
  /** Values per anchor (and per vector to transform). */
  dim: number;
}

export interface RelativeTransformOptions {
  /** L2-normalise each output row of cosines. Default true. */
  normalize?: boolean;
  /** Where to write [n, anchorCount]. */
  out?: Float32Array;
}

const TRANSFORM_OPTIONS: readonly (keyof RelativeTransformOptions)[] = ['normalize', 'out'];

/**
 * A fixed set of anchors for relative representations: the constructor L2-normalises a copy of them once (natively,
 * exactly as relativeRepresentation() does, so transform() gives the same bits as relativeRepresentation() with the
 * original anchors). It holds only JavaScript memory; dispose() releases the anchors and makes later calls throw.
 */
export class RelativeProjector extends NativeResource<{ anchors: Float32Array }> {
  /** Values per anchor. */
  readonly dim: number;
  /** Number of anchors: the width of every transform's output. */
  readonly anchorCount: number;

  constructor(anchors: Float32Array, options: RelativeProjectorOptions) {
    expectObject(options, 'options');
    const o = expectOptions<RelativeProjectorOptions>(options, 'options', ['dim']);
    const dim = dimOf(o);
    const [a, anchorCount] = rowsOf(anchors, 'anchors', dim);
    if (anchorCount === 0) throw new RangeError('"anchors" must hold at least one anchor');
    const normalized = binding().normalizeRows(a, new Float32Array(a.length), anchorCount, dim);
    super({ anchors: normalized }, () => {});
    this.dim = dim;
    this.anchorCount = anchorCount;
  }

  /** A copy of the L2-normalised anchors, [anchorCount, dim] (zero anchors stay zero). */
  get anchors(): Float32Array {
    return this.handle.anchors.slice();
  }

  #args(vectors: unknown, options: unknown): RelativeRepresentationArgs {
    const o = expectOptions<RelativeTransformOptions>(options, 'options', TRANSFORM_OPTIONS);
    return relativeArgs(vectors, this.handle.anchors, { dim: this.dim, ...o }, true);
  }

  /** The relative representation [n, anchorCount] of vectors [n, dim]: cosines with each anchor (see relativeRepresentation). */
  transform(vectors: Float32Array, options?: RelativeTransformOptions): Float32Array {
    const args = this.#args(vectors, options);
    binding().relativeRepresentation(...args);
    return args[2];
  }

  /** transform() on worker threads. Do not modify `vectors` (or `out`) until the promise settles. */
  async transformAsync(vectors: Float32Array, options?: RelativeTransformOptions): Promise<Float32Array> {
    const args = this.#args(vectors, options);
    await binding().relativeRepresentationAsync(...args);
    return args[2];
  }
}

// ---- whitening -------------------------------------------------------------------------------------------------

export interface WhiteningFitOptions {
  /** Values per vector. At most 65536 (the covariance is dim × dim float64). */
  dim: number;
  /** Keep the leading `components` principal directions (largest variance first): the output dimension. Default dim. */
  components?: number;
  /** Added to each eigenvalue before 1 / sqrt: keeps the scale finite for zero-variance directions. Default 1e-6; >= 0. */
  epsilon?: number;
}

export interface WhiteningTransformOptions {
  /** L2-normalise each whitened row (for cosine retrieval, as Su et al. do). Default false. */
  normalize?: boolean;
  /** Where to write [n, outputDim]. */
  out?: Float32Array;
}

/** Whitening.toJSON()'s plain-data form. */
export interface WhiteningJSON {
  type: 'Whitening';
  version: 1;
  dim: number;
  outputDim: number;
  epsilon: number;
  /** [dim] */
  mean: number[];
  /** [dim, outputDim], row-major. */
  matrix: number[];
  /** [dim], descending. */
  eigenvalues: number[];
}

const FIT_OPTIONS: readonly (keyof WhiteningFitOptions)[] = ['dim', 'components', 'epsilon'];
const WHITEN_OPTIONS: readonly (keyof WhiteningTransformOptions)[] = ['normalize', 'out'];

function fitArgs(sample: unknown, options: unknown): WhiteningFitArgs {
  expectObject(options, 'options');
  const o = expectOptions<WhiteningFitOptions>(options, 'options', FIT_OPTIONS);
  const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_WHITENING_DIM);
  const [s, n] = rowsOf(sample, 'sample', dim);
  if (n === 0) throw new RangeError('"sample" must hold at least one row');
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i]!)) throw new RangeError(`"sample" must be finite, got ${s[i]} at index ${i}`);
  }
  const components = o.components === undefined ? dim : expectInteger(o.components, 'components', 1, dim);
  let epsilon = 1e-6;
  if (o.epsilon !== undefined) {
    if (typeof o.epsilon !== 'number') throw new TypeError(`Expected "epsilon" to be a number, got ${typeName(o.epsilon)}`);
    if (!Number.isFinite(o.epsilon) || o.epsilon < 0) throw new RangeError(`"epsilon" must be finite and at least 0, got ${o.epsilon}`);
    epsilon = o.epsilon;
  }
  return [s, new Float32Array(dim), new Float32Array(dim * components), new Float64Array(dim), n, dim, components, epsilon];
}

/** The one failure the native fit can still report after fitArgs' checks, said in words. */
function fitError(error: unknown): unknown {
  if (!(error instanceof RangeError)) return error;
  return new RangeError('"epsilon" is 0 but a kept component has zero variance (the sample is rank deficient): use epsilon > 0 or fewer components');
}

/**
 * Whitening of sentence embeddings toward isotropy (Su et al. 2021, "Whitening Sentence Representations for Better
 * Semantics and Faster Retrieval"; the anisotropy it removes is what DefSent+ and BERT-flow address too):
 * y = (x − mean) · matrix, matrix = U · diag(1 / sqrt(λ + ε)) from the eigendecomposition of the sample covariance,
 * optionally keeping only the leading `components` columns (dimension reduction, largest variance first).
 *
 * The fit accumulates the mean and the covariance (divisor n − 1, as np.cov) in float64 and decomposes it in float64
 * natively (Householder tridiagonalisation + implicit QL, about 9·dim³ flops, threaded: about 2 s for dim 1024 and
 * 7 s for dim 1536 on two busy cores, plus n·dim²/2 for the covariance), eigenvalues descending, each eigenvector's
 * largest-magnitude component positive, so a fit is reproducible bit for bit (any thread count or SIMD level). A sample
 * with fewer rows than dim is allowed but rank deficient: its trailing eigenvalues are about zero, ε alone sets their
 * scale (1 / sqrt(ε)), and those directions carry only noise; keep components below the row count for such samples.
 * The whitened sample's covariance is diag(λᵢ / (λᵢ + ε)), the identity wherever λᵢ ≫ ε.
 *
 * The instance holds only JavaScript memory (no dispose needed): `mean` and `matrix` are copies of its arrays.
 */
export class Whitening {
  /** Values per input vector. */
  readonly dim: number;
  /** Values per whitened vector (the kept components). */
  readonly outputDim: number;
  /** The ε the fit used. */
  readonly epsilon: number;
  #mean: Float32Array;
  #matrix: Float32Array;
  #eigenvalues: Float64Array;

  private constructor(dim: number, outputDim: number, epsilon: number, mean: Float32Array, matrix: Float32Array, eigenvalues: Float64Array) {
    this.dim = dim;
    this.outputDim = outputDim;
    this.epsilon = epsilon;
    this.#mean = mean;
    this.#matrix = matrix;
    this.#eigenvalues = eigenvalues;
  }

  /**
   * Fits the mean and whitening matrix on `sample` [n, dim], n >= 1, finite (see the class description). With
   * epsilon 0, a kept component of zero variance is a RangeError.
   */
  static fit(sample: Float32Array, options: WhiteningFitOptions): Whitening {
    const args = fitArgs(sample, options);
    try {
      binding().whiteningFit(...args);
    } catch (error) {
      throw fitError(error);
    }
    return new Whitening(args[5], args[6], args[7], args[1], args[2], args[3]);
  }

  /** fit() on a worker thread (the decomposition itself threaded). Do not modify `sample` until the promise settles. */
  static async fitAsync(sample: Float32Array, options: WhiteningFitOptions): Promise<Whitening> {
    const args = fitArgs(sample, options);
    await binding().whiteningFitAsync(...args).catch((error: unknown) => {
      throw fitError(error);
    });
    return new Whitening(args[5], args[6], args[7], args[1], args[2], args[3]);
  }

  /** A copy of the sample mean, [dim]. */
  get mean(): Float32Array {
    return this.#mean.slice();
  }

  /** A copy of the whitening matrix, [dim, outputDim] row-major: y = (x − mean) · matrix. */
  get matrix(): Float32Array {
    return this.#matrix.slice();
  }

  /** A copy of every eigenvalue of the sample covariance, [dim], descending (the first outputDim were kept). */
  get eigenvalues(): Float64Array {
    return this.#eigenvalues.slice();
  }

  #args(vectors: unknown, options: unknown): WhiteningTransformArgs {
    const o = expectOptions<WhiteningTransformOptions>(options, 'options', WHITEN_OPTIONS);
    const [v, n] = rowsOf(vectors, 'vectors', this.dim);
    if (n * this.outputDim > MAX_COUNT) throw new RangeError(`the output would hold ${n * this.outputDim} values, more than 2^40`);
    const normalize = expectBoolean(o.normalize, 'normalize', false);
    const out = outArray(o.out, n * this.outputDim, [v]);
    return [v, out, this.#mean, this.#matrix, n, this.dim, this.outputDim, normalize];
  }

  /**
   * Whitens vectors [n, dim] into [n, outputDim]: centring in float32, then the blocked, threaded SIMD matrix product
   * (within 1e-5 of the largest output against a float64 evaluation, measured on 1536-d ada-002 vectors);
   * optionally L2-normalised per row.
   */
  transform(vectors: Float32Array, options?: WhiteningTransformOptions): Float32Array {
    const args = this.#args(vectors, options);
    binding().whiteningTransform(...args);
    return args[1];
  }

  /** transform() on worker threads. Do not modify `vectors` (or `out`) until the promise settles. */
  async transformAsync(vectors: Float32Array, options?: WhiteningTransformOptions): Promise<Float32Array> {
    const args = this.#args(vectors, options);
    await binding().whiteningTransformAsync(...args);
    return args[1];
  }

  /** Plain data for JSON.stringify; Whitening.fromJSON() restores an identical instance (float32 values are exact). */
  toJSON(): WhiteningJSON {
    return {
      type: 'Whitening',
      version: 1,
      dim: this.dim,
      outputDim: this.outputDim,
      epsilon: this.epsilon,
      mean: Array.from(this.#mean),
      matrix: Array.from(this.#matrix),
      eigenvalues: Array.from(this.#eigenvalues),
    };
  }

  /** Restores a Whitening from toJSON()'s data; checks every field. */
  static fromJSON(json: WhiteningJSON): Whitening {
    if (json === null || typeof json !== 'object' || (json as { type?: unknown }).type !== 'Whitening') {
      throw new TypeError('Expected a Whitening JSON object (from toJSON())');
    }
    if (json.version !== 1) throw new RangeError(`Whitening JSON version ${String(json.version)} is not supported`);
    const dim = expectInteger(json.dim, 'dim', 1, MAX_WHITENING_DIM);
    const outputDim = expectInteger(json.outputDim, 'outputDim', 1, dim);
    if (typeof json.epsilon !== 'number') throw new TypeError(`Expected "epsilon" to be a number, got ${typeName(json.epsilon)}`);
    if (!Number.isFinite(json.epsilon) || json.epsilon < 0) throw new RangeError(`"epsilon" must be finite and at least 0, got ${json.epsilon}`);
    const numbers = (value: unknown, name: string, length: number): number[] => {
      if (!Array.isArray(value)) throw new TypeError(`Expected "${name}" to be an array of numbers, got ${typeName(value)}`);
      if (value.length !== length) throw new RangeError(`"${name}" must hold ${length} numbers, got ${value.length}`);
      for (const x of value) {
        if (typeof x !== 'number') throw new TypeError(`Expected "${name}" to hold numbers, got ${typeName(x)}`);
        if (!Number.isFinite(x)) throw new RangeError(`"${name}" must hold finite numbers, got ${x}`);
      }
      return value as number[];
    };
    const mean = Float32Array.from(numbers(json.mean, 'mean', dim));
    const matrix = Float32Array.from(numbers(json.matrix, 'matrix', dim * outputDim));
    const eigenvalues = Float64Array.from(numbers(json.eigenvalues, 'eigenvalues', dim));
    return new Whitening(dim, outputDim, json.epsilon, mean, matrix, eigenvalues);
  }
}

// ---- projection onto the orthogonal complement -----------------------------------------------------------------

export interface ProjectOutOptions {
  /** Values per vector (and per direction). */
  dim: number;
  /** L2-normalise each row after the projection (a zero row stays zero). Default false. */
  normalize?: boolean;
  /** Where to write [n, dim]; may be `vectors` itself (in place). */
  out?: Float32Array;
}

const PROJECT_OPTIONS: readonly (keyof ProjectOutOptions)[] = ['dim', 'normalize', 'out'];

function projectArgs(vectors: unknown, directions: unknown, options: unknown): ProjectOutArgs {
  expectObject(options, 'options');
  const o = expectOptions<ProjectOutOptions>(options, 'options', PROJECT_OPTIONS);
  const dim = dimOf(o);
  const [d, count] = rowsOf(directions, 'directions', dim);
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new RangeError(`"directions" must be finite, got ${d[i]} at index ${i}`);
  }
  const [v, n] = rowsOf(vectors, 'vectors', dim);
  const normalize = expectBoolean(o.normalize, 'normalize', false);
  const out = outArray(o.out, n * dim, [v, d], v);
  return [v, d, out, n, count, dim, normalize];
}

/**
 * Removes the given directions from every vector (DECOR-style debiasing, or dropping dominant components):
 * out = v − Σᵢ (v · uᵢ) uᵢ, where u is an orthonormal basis of the directions' span built by modified Gram-Schmidt in
 * float64 (two passes; a direction whose residual falls below 1e-10 of its norm, being zero or numerically in the
 * span of the earlier ones, is dropped). Each row's coefficients and residual are computed in float64 and rounded once
 * (a float32 matrix product lost up to 2e-5 on 1536-d vectors nearly inside the span), threaded over rows: outputs
 * match a float64 reference to float32 rounding and are orthogonal to every direction to about 1e-7 of |v|.
 * `directions` [count, dim] may be empty (a copy). `out` may be `vectors` itself.
 */
export function projectOut(vectors: Float32Array, directions: Float32Array, options: ProjectOutOptions): Float32Array {
  const args = projectArgs(vectors, directions, options);
  binding().projectOut(...args);
  return args[2];
}

/** projectOut() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function projectOutAsync(vectors: Float32Array, directions: Float32Array, options: ProjectOutOptions): Promise<Float32Array> {
  const args = projectArgs(vectors, directions, options);
  await binding().projectOutAsync(...args);
  return args[2];
}
