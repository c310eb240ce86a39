// Binary codes on a CUDA device: Hamming and SDC top-k for batches of queries, with the CPU path's results.
import { types } from 'node:util';

import type { CudaCodesHandle } from '../native/binding.js';
import { afterLoad, CUDA_MAX_K, cudaBinding } from '../core/cuda.js';
import { NativeResource } from '../core/resource.js';
import { expectInteger, expectOneOf, expectOptions, expectTypedArray, required, typeName } from '../core/validate.js';
import { BinaryIndex, indexContents, type BinarySearchResult, type Similarity } from './binary-index.js';
import type { ResidualBinarizer } from './residual.js';
import { codeBytes, type BitOrder } from './signs.js';

export type CudaBinaryMetric = 'hamming' | 'sdc';

export interface CudaBinarySearchOptions {
  /** 'hamming' (the sign planes) or 'sdc' (all planes, queries binarized too); default as on the CPU: 'hamming'
   *  for 1-bit codes, 'sdc' otherwise. */
  metric?: CudaBinaryMetric;
}

export interface CudaBinarySearchResult extends BinarySearchResult {
  /** Hamming distances of the sign planes (metric 'hamming' only). */
  distances?: Int32Array;
}

export interface CudaCodesOptions {
  /** Bits per code; each takes ceil(bits / 8) bytes, padding bits ignored. */
  bits: number;
  /** One distinct id per code (default: the row index). */
  ids?: Int32Array;
  bitOrder?: BitOrder;
}

const METRICS = ['hamming', 'sdc'] as const;

/**
 * A snapshot of binary codes in CUDA device memory, searched exhaustively on the device for batches of queries.
 * Results are identical to the CPU path's (BinaryIndex.search, hammingTopK): the same scores, the same order,
 * ties by id. Build one with CudaBinaryIndex.fromIndex (residual codes with their scales, ids and the index's
 * similarity) or CudaBinaryIndex.fromCodes (packed sign codes). Rescoring against stored vectors stays on the
 * CPU index. dispose() frees the device memory (calls in flight finish first).
 */
export class CudaBinaryIndex extends NativeResource<CudaCodesHandle> {
  /** Dimensions (bits per plane). */
  readonly dim: number;
  /** Bit planes per dimension. */
  readonly bits: number;
  readonly similarity: Similarity;
  readonly #binarizer: ResidualBinarizer | undefined;
  readonly #rowBytes: number;
  readonly #residual: boolean;

  private constructor(handle: CudaCodesHandle, dim: number, bits: number, similarity: Similarity,
    binarizer: ResidualBinarizer | undefined) {
    super(handle, (h) => h.release());
    this.dim = dim;
    this.bits = bits;
    this.similarity = similarity;
    this.#binarizer = binarizer;
    this.#residual = binarizer !== undefined;
    this.#rowBytes = binarizer ? binarizer.rowBytes : codeBytes(dim);
  }

  /** Copies a BinaryIndex's codes, ids and (for similarity 'l2') reconstruction norms to the device. Later changes
   *  to the index are not seen: make a new snapshot. Float queries are binarized with the index's binarizer. */
  static async fromIndex(index: BinaryIndex): Promise<CudaBinaryIndex> {
    if (!(index instanceof BinaryIndex)) throw new TypeError(`Expected "index" to be a BinaryIndex, got ${typeName(index)}`);
    const handle = new (cudaBinding().CudaCodesHandle)();
    const c = indexContents(index);
    return afterLoad(new CudaBinaryIndex(handle, index.dim, index.bits, index.similarity, index.binarizer), () =>
      handle.load(c.codes, c.ids.length, index.dim, index.bits, true, true, c.ids, index.similarity === 'l2', true));
  }

  /** Copies packed sign codes (rows of ceil(bits / 8) bytes) to the device, for Hamming top-k. */
  static async fromCodes(codes: Uint8Array, options: CudaCodesOptions): Promise<CudaBinaryIndex> {
    expectTypedArray(codes, 'Uint8Array', 'codes');
    const o = expectOptions<CudaCodesOptions>(options, 'options', ['bits', 'ids', 'bitOrder']);
    const bits = expectInteger(required(o.bits, 'bits'), 'bits', 1, 2 ** 24);
    const order = o.bitOrder === undefined ? 'msb' : expectOneOf(o.bitOrder, 'bitOrder', ['msb', 'lsb'] as const);
    const row = codeBytes(bits);
    if (codes.length % row !== 0) throw new RangeError(`"codes" length (${codes.length}) is not a multiple of ${row} (bytes per ${bits}-bit code)`);
    const n = codes.length / row;
    const ids = o.ids === undefined ? undefined : expectTypedArray(o.ids, 'Int32Array', 'ids');
    if (ids) {
      if (ids.length !== n) throw new RangeError(`"ids" must hold one id per code (${n}), got ${ids.length}`);
      if (new Set(ids).size !== n) throw new RangeError('"ids" must be distinct');
    }
    const handle = new (cudaBinding().CudaCodesHandle)();
    return afterLoad(new CudaBinaryIndex(handle, bits, 1, 'dot', undefined), () =>
      handle.load(codes, n, bits, 1, false, order === 'msb', ids, false, true));
  }

  /** Rows on the device. */
  get size(): number {
    return this.handle.size();
  }

  /** Device memory held: the codes, ids, scales, norms and the reusable search buffers. */
  get deviceBytes(): number {
    return this.handle.deviceBytes();
  }

  /** Device milliseconds of the last completed call's kernels (CUDA events; host copies excluded). */
  get lastKernelMs(): number {
    return this.handle.lastKernelMs();
  }

  /**
   * The k best rows for each query (k at most 1024): Float32Array rows of dim floats (binarized on the host by
   * the source index's binarizer; fromIndex only) or Uint8Array rows of this index's code layout. Scores as
   * BinaryIndex.search: hamming dim − 2·distance, sdc the reconstructions' inner product (or −‖q − d‖² for 'l2').
   * Runs on a worker thread while the device works; do not modify `queries` until the promise settles.
   */
  async searchAsync(queries: Float32Array | Uint8Array, k: number, options: CudaBinarySearchOptions = {}): Promise<CudaBinarySearchResult> {
    const p = this.#plan(queries, k, options);
    if (p.metric === 'hamming') return this.#hamming(await this.handle.hammingTopK(p.codes, p.nq, p.k, true), p.resultK);
    return { ...(await this.handle.sdcTopK(p.codes, p.nq, p.k, true)), k: p.resultK };
  }

  /** searchAsync() on the calling thread, which waits for the device: for small batches. */
  search(queries: Float32Array | Uint8Array, k: number, options: CudaBinarySearchOptions = {}): CudaBinarySearchResult {
    const p = this.#plan(queries, k, options);
    if (p.metric === 'hamming') {
      return this.#hamming(this.handle.hammingTopK(p.codes, p.nq, p.k, false) as { ids: Int32Array; distances: Int32Array }, p.resultK);
    }
    return { ...(this.handle.sdcTopK(p.codes, p.nq, p.k, false) as { ids: Int32Array; scores: Float32Array }), k: p.resultK };
  }

  #hamming(r: { ids: Int32Array; distances: Int32Array }, k: number): CudaBinarySearchResult {
    const scores = new Float32Array(r.distances.length);
    for (let i = 0; i < scores.length; i++) scores[i] = this.dim - 2 * r.distances[i]!;
    return { ids: r.ids, scores, distances: r.distances, k };
  }

  #plan(queries: Float32Array | Uint8Array, k: number, options: CudaBinarySearchOptions) {
    const o = expectOptions<CudaBinarySearchOptions>(options, 'options', ['metric']);
    const metric = o.metric === undefined ? (this.bits === 1 ? 'hamming' : 'sdc') : expectOneOf(o.metric, 'metric', METRICS);
    if (metric === 'sdc' && !this.#residual) throw new RangeError('sdc needs residual codes: build the device index with fromIndex');
    const kk = expectInteger(k, 'k', 1, CUDA_MAX_K);
    let codes: Uint8Array;
    if (types.isFloat32Array(queries)) {
      if (!this.#binarizer) throw new RangeError('Float32Array queries need a binarizer: build the device index with fromIndex, or pass packed codes');
      if (queries.length % this.dim !== 0) throw new RangeError(`"queries" length (${queries.length}) is not a multiple of dim (${this.dim})`);
      codes = this.#binarizer.encode(queries);
    } else if (types.isUint8Array(queries)) {
      if (queries.length % this.#rowBytes !== 0) {
        throw new RangeError(`"queries" length (${queries.length}) is not a multiple of ${this.#rowBytes} (bytes per code)`);
      }
      codes = queries;
    } else {
      throw new TypeError(`Expected "queries" to be a Float32Array or a Uint8Array, got ${typeName(queries)}`);
    }
    const nq = codes.length / this.#rowBytes;
    return { metric, k: kk, codes, nq, resultK: Math.min(kk, this.size) };
  }
}
