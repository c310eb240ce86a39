// Multi-vector documents on a CUDA device: exact Chamfer (MaxSim) scores and top-k against every document.
import type { CudaMultiVectorsHandle } from '../native/binding.js';
import { cudaBinding } from '../core/cuda.js';
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
    const out = new CudaMultiVectorIndex(handle, dim, precision, ids);
    try {
      await handle.load(tokens, lengths, dim, precision === 'bfloat16', true);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
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

  /** The k documents with the highest Chamfer score for each query, by (score descending, id ascending). */
  async searchAsync(queries: Float32Array, queryLengths: Int32Array, k: number): Promise<CudaChamferSearchResult> {
    const kk = expectInteger(k, 'k', 1, 2 ** 24);
    const scores = await this.chamferScoresAsync(queries, queryLengths);
    return this.#topK(scores, queryLengths.length, kk);
  }

  // Per query, a min-heap of the k best (score, id) seen so far: O(n log k).
  #topK(scores: Float32Array, nq: number, k: number): CudaChamferSearchResult {
    const n = this.size;
    const kk = Math.min(k, n);
    const ids = new Int32Array(nq * kk);
    const best = new Float32Array(nq * kk);
    const idOf = (j: number) => (this.#ids ? this.#ids[j]! : j);
    const heap: number[] = [];  // document positions; the root is the worst kept
    for (let q = 0; q < nq; q++) {
      const row = scores.subarray(q * n, (q + 1) * n);
      const value = (j: number) => (Number.isNaN(row[j]!) ? -Infinity : row[j]!);  // NaN ranks last, as on the CPU
      const worse = (a: number, b: number) => value(a) < value(b) || (value(a) === value(b) && idOf(a) > idOf(b));
      heap.length = 0;
      const siftDown = (i: number) => {
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
          if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
          if (m === i) return;
          [heap[i], heap[m]] = [heap[m]!, heap[i]!];
          i = m;
        }
      };
      for (let j = 0; j < n; j++) {
        if (heap.length < kk) {
          heap.push(j);
          for (let i = heap.length - 1; i > 0;) {
            const p = (i - 1) >> 1;
            if (!worse(heap[i]!, heap[p]!)) break;
            [heap[i], heap[p]] = [heap[p]!, heap[i]!];
            i = p;
          }
        } else if (worse(heap[0]!, j)) {
          heap[0] = j;
          siftDown(0);
        }
      }
      const ranked = heap.slice().sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
      for (let r = 0; r < kk; r++) {
        ids[q * kk + r] = idOf(ranked[r]!);
        best[q * kk + r] = row[ranked[r]!]!;
      }
    }
    return { ids, scores: best, k: kk };
  }
}
