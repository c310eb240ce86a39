// A flat binary index: residual codes (or sign codes, bits = 1) with ids, searched exhaustively by Hamming, SDC or
// ADC, optionally rescored against stored float32 or int8 vectors; persisted as a checksummed Tessera file.
import { types } from 'node:util';

import type { BinaryIndexHandle, IndexContents } from '../native/binding.js';
import { binding } from '../native/load.js';
import { NativeResource } from '../core/resource.js';
import {
  readTesseraFile,
  readTesseraFileAsync,
  TesseraFileError,
  writeTesseraFile,
  writeTesseraFileAsync,
  type TesseraFileContents,
} from '../core/files.js';
import {
  expectFloat32Array,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectTypedArray,
  required,
  typeName,
} from '../core/validate.js';
import { ResidualBinarizer } from './residual.js';

export type VectorStore = 'none' | 'float32' | 'int8';
export type Similarity = 'dot' | 'l2';
export type BinaryMetric = 'hamming' | 'sdc' | 'adc';

export interface BinaryIndexOptions {
  dim: number;
  /** Bit planes per dimension, 1 to 4 (default 1: sign codes). */
  bits?: number;
  /** Keep the vectors for rescoring: 'float32', 'int8' (4× smaller, per-row scale) or 'none' (default). */
  store?: VectorStore;
  /** Rescoring similarity: 'dot' (default; cosine for normalised vectors) or 'l2' (scores are -‖q − v‖²). */
  similarity?: Similarity;
  /** Subtracted before binarizing (for data not centred at zero; see ResidualBinarizer.fit). */
  center?: Float32Array;
}

export interface BinarySearchOptions {
  /** 'hamming' (the sign planes), 'sdc' (all planes, query binarized too) or 'adc' (float queries); default
   *  'hamming' for 1-bit indexes and 'sdc' otherwise. */
  metric?: BinaryMetric;
  /** Take k × oversample candidates from the binary stage and rank them by the stored vectors. */
  rescore?: { oversample: number };
}

export interface BinarySearchResult {
  /** nq × k ids (k = min(requested k, size)), each row sorted by (score descending, id ascending). */
  ids: Int32Array;
  /** Higher is better: hamming dim − 2·distance of the sign planes; sdc / adc the inner product with the
   *  reconstructions (similarity 'dot'; the centre left out) or −‖q − reconstruction‖² ('l2'); rescored: the dot
   *  product with the stored vector, or −‖q − v‖². */
  scores: Float32Array;
  k: number;
}

const FILE_KIND = 'binary-index';
const FILE_VERSION = 1;
const STORES = ['none', 'float32', 'int8'] as const;
const SIMILARITIES = ['dot', 'l2'] as const;
const METRICS = ['hamming', 'sdc', 'adc'] as const;
const MAX_K = 2 ** 24;

interface Meta {
  dim: number;
  bits: number;
  store: VectorStore;
  similarity: Similarity;
  count: number;
  binarizer: { version: number };
}

/** A copy of an index's rows (ids, codes, stored vectors), for the device index built from it (not public API). */
export let indexContents: (index: BinaryIndex) => IndexContents;

export class BinaryIndex extends NativeResource<BinaryIndexHandle> {
  static {
    indexContents = (index) => index.handle.exportContents();
  }

  readonly dim: number;
  readonly bits: number;
  readonly store: VectorStore;
  readonly similarity: Similarity;
  /** Encodes added vectors and queries; its centre is saved with the index. */
  readonly binarizer: ResidualBinarizer;

  constructor(options: BinaryIndexOptions) {
    const o = expectOptions<BinaryIndexOptions>(options, 'options', ['dim', 'bits', 'store', 'similarity', 'center']);
    const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, 2 ** 24);
    const bits = o.bits === undefined ? 1 : expectInteger(o.bits, 'bits', 1, 4);
    const store = o.store === undefined ? 'none' : expectOneOf(o.store, 'store', STORES);
    const similarity = o.similarity === undefined ? 'dot' : expectOneOf(o.similarity, 'similarity', SIMILARITIES);
    const binarizer = new ResidualBinarizer(o.center === undefined ? { dim, bits } : { dim, bits, center: o.center });
    super(new (binding().BinaryIndexHandle)(dim, bits, store, similarity), (h) => h.release());
    this.dim = dim;
    this.bits = bits;
    this.store = store;
    this.similarity = similarity;
    this.binarizer = binarizer;
  }

  /** Rows in the index. */
  get size(): number {
    return this.handle.size();
  }

  /** Native memory held: codes, ids, stored vectors and the id map. */
  get memoryBytes(): number {
    return this.handle.memoryBytes();
  }

  /**
   * Adds rows with distinct ids: Float32Array vectors (rows of dim floats, binarized here, and kept if the index
   * stores vectors), or Uint8Array codes already in this index's row layout (only when it stores no vectors).
   * A repeated id (in the batch or in the index) is a RangeError and nothing is added.
   */
  add(ids: Int32Array, data: Float32Array | Uint8Array): void {
    const handle = this.handle;
    const i = expectTypedArray(ids, 'Int32Array', 'ids');
    if (types.isFloat32Array(data)) {
      this.#rows(data, i.length, this.dim, 'vectors', 'floats');
      handle.add(i, this.binarizer.encode(data), this.store === 'none' ? undefined : data);
    } else if (types.isUint8Array(data)) {
      if (this.store !== 'none') {
        throw new RangeError(`this index stores ${this.store} vectors for rescoring: add Float32Array vectors, not codes`);
      }
      this.#rows(data, i.length, this.binarizer.rowBytes, 'codes', 'bytes');
      handle.add(i, data);
    } else {
      throw new TypeError(`Expected "data" to be a Float32Array or a Uint8Array, got ${typeName(data)}`);
    }
  }

  /** Removes these ids (unknown ones are skipped); returns how many were removed. */
  remove(ids: Int32Array): number {
    return this.handle.remove(expectTypedArray(ids, 'Int32Array', 'ids'));
  }

  /**
   * The k best rows for each query (rows of dim floats, or of this index's codes for hamming and sdc without
   * rescoring). See BinarySearchResult for what the scores mean.
   */
  search(queries: Float32Array | Uint8Array, k: number, options: BinarySearchOptions = {}): BinarySearchResult {
    const p = this.#plan(queries, k, options);
    return this.handle.search(p.floats, p.codes, this.binarizer.center, p.nq, p.k, p.metric, p.candidates, p.rescore);
  }

  /**
   * search() on a worker thread (float queries are binarized there too). Do not modify `queries` until the promise
   * settles. Disposing the index meanwhile is safe: the search keeps what it reads alive.
   */
  async searchAsync(queries: Float32Array | Uint8Array, k: number, options: BinarySearchOptions = {}): Promise<BinarySearchResult> {
    const p = this.#plan(queries, k, options);
    return this.handle.searchAsync(p.floats, p.codes, this.binarizer.center, p.nq, p.k, p.metric, p.candidates, p.rescore);
  }

  /** Writes the index to `path` (versioned, checksummed, atomically replaced). */
  save(path: string): void {
    writeTesseraFile(path, FILE_KIND, FILE_VERSION, this.#sections());
  }

  async saveAsync(path: string): Promise<void> {
    await writeTesseraFileAsync(path, FILE_KIND, FILE_VERSION, this.#sections());
  }

  /** Reads an index written by save(); a truncated, corrupted or foreign file throws TesseraFileError. */
  static load(path: string): BinaryIndex {
    return BinaryIndex.#fromFile(readTesseraFile(path, { kind: FILE_KIND, maxVersion: FILE_VERSION }), path);
  }

  static async loadAsync(path: string): Promise<BinaryIndex> {
    return BinaryIndex.#fromFile(await readTesseraFileAsync(path, { kind: FILE_KIND, maxVersion: FILE_VERSION }), path);
  }

  #rows(data: ArrayBufferView & { length: number }, count: number, per: number, name: string, unit: string) {
    if (data.length !== count * per) {
      throw new RangeError(`"${name}" must hold ${count} rows (one per id) of ${per} ${unit}, got ${data.length} ${unit}`);
    }
  }

  #plan(queries: Float32Array | Uint8Array, k: number, options: BinarySearchOptions) {
    const o = expectOptions<BinarySearchOptions>(options, 'options', ['metric', 'rescore']);
    const metric = o.metric === undefined ? (this.bits === 1 ? 'hamming' : 'sdc') : expectOneOf(o.metric, 'metric', METRICS);
    const kk = expectInteger(k, 'k', 1, MAX_K);
    let candidates = 0;
    const rescore = o.rescore !== undefined;
    if (rescore) {
      const r = expectOptions<{ oversample: number }>(o.rescore, 'rescore', ['oversample']);
      const oversample = expectInteger(required(r.oversample, 'oversample'), 'oversample', 1, 1024);
      if (this.store === 'none') throw new RangeError('rescoring needs an index created with store: "float32" or "int8"');
      candidates = Math.min(MAX_K, kk * oversample);
    }
    let floats: Float32Array | undefined;
    let codes: Uint8Array | undefined;
    let nq: number;
    if (types.isFloat32Array(queries)) {
      if (queries.length % this.dim !== 0) throw new RangeError(`"queries" length (${queries.length}) is not a multiple of dim (${this.dim})`);
      floats = queries;
      nq = queries.length / this.dim;
    } else if (types.isUint8Array(queries)) {
      if (metric === 'adc' || rescore) throw new RangeError(`${rescore ? 'rescoring' : 'adc'} needs Float32Array queries`);
      const row = this.binarizer.rowBytes;
      if (queries.length % row !== 0) throw new RangeError(`"queries" length (${queries.length}) is not a multiple of ${row} (bytes per code)`);
      codes = queries;
      nq = queries.length / row;
    } else {
      throw new TypeError(`Expected "queries" to be a Float32Array or a Uint8Array, got ${typeName(queries)}`);
    }
    return { metric, k: kk, candidates, rescore, floats, codes, nq };
  }

  #sections(): Record<string, ArrayBufferView> {
    const c = this.handle.exportContents();
    const meta: Meta = {
      dim: this.dim,
      bits: this.bits,
      store: this.store,
      similarity: this.similarity,
      count: c.ids.length,
      binarizer: { version: 1 },
    };
    const sections: Record<string, ArrayBufferView> = {
      meta: new TextEncoder().encode(JSON.stringify(meta)),
      ids: c.ids,
      codes: c.codes,
    };
    if (c.vectors) sections.vectors = c.vectors;
    if (c.quantized) sections.quantized = c.quantized;
    if (c.scales) sections.scales = c.scales;
    if (this.binarizer.center) sections.center = this.binarizer.center;
    return sections;
  }

  static #fromFile(file: TesseraFileContents, path: string): BinaryIndex {
    const corrupt = (why: string) => new TesseraFileError(why, 'ERR_TESSERA_FILE_CORRUPT', path);
    const section = (name: string) => file.sections.get(name);
    let meta: Meta;
    try {
      meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(section('meta') ?? new Uint8Array())) as Meta;
    } catch {
      throw corrupt('the index metadata is not valid JSON');
    }
    const isInt = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
    if (!meta || typeof meta !== 'object' || !isInt(meta.dim, 1, 2 ** 24) || !isInt(meta.bits, 1, 4) ||
        !isInt(meta.count, 0, 2 ** 31 - 1) || !STORES.includes(meta.store) || !SIMILARITIES.includes(meta.similarity)) {
      throw corrupt('the index metadata is incomplete or out of range');
    }
    const view = <T>(name: string, make: (b: ArrayBuffer, o: number, n: number) => T, width: number, count: number): T => {
      const s = section(name);
      if (!s || s.byteLength !== count * width) throw corrupt(`section "${name}" is missing or has the wrong size`);
      return make(s.buffer as ArrayBuffer, s.byteOffset, count);
    };
    const index = new BinaryIndex({ dim: meta.dim, bits: meta.bits, store: meta.store, similarity: meta.similarity });
    try {
      const center = section('center');
      if (center) index.binarizer.center = view('center', (b, o, n) => new Float32Array(b, o, n), 4, meta.dim);
      const ids = view('ids', (b, o, n) => new Int32Array(b, o, n), 4, meta.count);
      const codes = view('codes', (b, o, n) => new Uint8Array(b, o, n), 1, meta.count * index.binarizer.rowBytes);
      const c: IndexContents = { ids, codes };
      if (meta.store === 'float32') c.vectors = view('vectors', (b, o, n) => new Float32Array(b, o, n), 4, meta.count * meta.dim);
      if (meta.store === 'int8') {
        c.quantized = view('quantized', (b, o, n) => new Int8Array(b, o, n), 1, meta.count * meta.dim);
        c.scales = view('scales', (b, o, n) => new Float32Array(b, o, n), 4, meta.count);
      }
      try {
        index.handle.importContents(c.ids, c.codes, c.vectors, c.quantized, c.scales);
      } catch (e) {
        throw corrupt(`the index contents are inconsistent: ${(e as Error).message}`);
      }
    } catch (e) {
      index.dispose();
      throw e;
    }
    return index;
  }
}
