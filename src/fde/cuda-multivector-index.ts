// Multi-vector documents on a CUDA device: exact Chamfer (MaxSim) scores and top-k against every document.
import type { CudaMultiVectorsHandle } from '../native/binding.js';
import { afterLoad, CUDA_MAX_K, cudaBinding } from '../core/cuda.js';
import { NativeResource } from '../core/resource.js';
import { expectInteger, expectOneOf, expectOptions, expectTypedArray, required } from '../core/validate.js';
import { checkClouds } from './encoder.js';

export type ChamferPrecision = 'float32' | 'bfloat16';

export interface CudaMultiVectorIndexOptions {
  dim: number;
  /** 'bfloat16' (default): documents stored in bf16 and scored on the tensor cores, each dot product within
   *  (2^-7 + 2^-16 + 1.01·dim·2^-23)·Σ|q_i d_i| of exact; 'float32': stored in float32, CUDA-core FMAs, within
   *  about 1e-6 relative. */
  precision?: ChamferPrecision;
  /** One distinct id per document (default: its position). */
  ids?: Int32Array;
}

export interface CudaChamferSearchResult {
  /** nq × k ids, each row by (score descending, id ascending). */
  ids: Int32Array;
  scores: Float32Array;
  k: number;
}

const PRECISIONS = ['float32', 'bfloat16'] as const;

/**
 * Documents' token vectors in CUDA device memory, scored exactly against batches of multi-vector queries: the
 * Chamfer similarity of every (query, document) pair, the per-token maxima fused into the matrix product so no
 * token-by-token score matrix is ever written. Exhaustive, so no FDE candidate stage is needed at GPU speeds.
 */
export class CudaMultiVectorIndex extends NativeResource<CudaMultiVectorsHandle> {
  readonly dim: number;
  readonly precision: ChamferPrecision;
  readonly #ids: Int32Array | undefined;

  private constructor(handle: CudaMultiVectorsHandle, dim: number, precision: ChamferPrecision, ids: Int32Array | undefined) {
    super(handle, (h) => h.release());
    this.dim = dim;
    this.precision = precision;
    this.#ids = ids;
  }

  /** Copies `lengths[i]` consecutive token rows (dim floats) per document to the device. */
  static async create(tokens: Float32Array, lengths: Int32Array, options: CudaMultiVectorIndexOptions): Promise<CudaMultiVectorIndex> {
    const o = expectOptions<CudaMultiVectorIndexOptions>(options, 'options', ['dim', 'precision', 'ids']);
    const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, 2 ** 20);
    const precision = o.precision === undefined ? 'bfloat16' : expectOneOf(o.precision, 'precision', PRECISIONS);
    const count = checkClouds(tokens, lengths, dim);
    let ids: Int32Array | undefined;
    if (o.ids !== undefined) {
      ids = expectTypedArray(o.ids, 'Int32Array', 'ids').slice();
      if (ids.length !== count) throw new RangeError(`"ids" must hold one id per document (${count}), got ${ids.length}`);
      if (new Set(ids).size !== count) throw new RangeError('"ids" must be distinct');
    }
    const handle = new (cudaBinding().CudaMultiVectorsHandle)();
    return afterLoad(new CudaMultiVectorIndex(handle, dim, precision, ids), () =>
      handle.load(tokens, lengths, dim, precision === 'bfloat16', true));
  }

  /** Documents on the device. */
  get size(): number {
    return this.handle.size();
  }

  get deviceBytes(): number {
    return this.handle.deviceBytes();
  }

  /** Device milliseconds of the last completed call's kernels (CUDA events; host copies excluded). */
  get lastKernelMs(): number {
    return this.handle.lastKernelMs();
  }

  /** Chamfer scores of each query (queryLengths[q] consecutive token rows) against every document: nq × size,
   *  row-major, in document order. */
  async chamferScoresAsync(queries: Float32Array, queryLengths: Int32Array): Promise<Float32Array> {
    checkClouds(queries, queryLengths, this.dim, 'queries');
    return this.handle.chamfer(queries, queryLengths, true);
  }

  chamferScores(queries: Float32Array, queryLengths: Int32Array): Float32Array {
    checkClouds(queries, queryLengths, this.dim, 'queries');
    return this.handle.chamfer(queries, queryLengths, false) as Float32Array;
  }

  /** The k documents (k ≤ 1024) with the highest Chamfer score for each query, by (score descending, id
   *  ascending), NaN last: selected on the device, so only nq × k results come back. */
  async searchAsync(queries: Float32Array, queryLengths: Int32Array, k: number): Promise<CudaChamferSearchResult> {
    const kk = this.#checkSearch(queries, queryLengths, k);
    return { ...(await this.handle.topK(queries, queryLengths, this.#ids, kk, true)), k: Math.min(kk, this.size) };
  }

  search(queries: Float32Array, queryLengths: Int32Array, k: number): CudaChamferSearchResult {
    const kk = this.#checkSearch(queries, queryLengths, k);
    const r = this.handle.topK(queries, queryLengths, this.#ids, kk, false) as { ids: Int32Array; scores: Float32Array };
    return { ...r, k: Math.min(kk, this.size) };
  }

  #checkSearch(queries: Float32Array, queryLengths: Int32Array, k: number): number {
    checkClouds(queries, queryLengths, this.dim, 'queries');
    return expectInteger(k, 'k', 1, CUDA_MAX_K);
  }
}
