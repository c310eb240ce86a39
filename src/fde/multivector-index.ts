// MUVERA multi-vector retrieval: FDE inner products find candidates, exact Chamfer reranks them.
import type { MultiVectorIndexHandle } from '../native/binding.js';
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
import { expectBoolean, expectFloat32Array, expectInteger, expectOptions, expectTypedArray, typeName } from '../core/validate.js';
import { checkClouds, FdeEncoder, type FdeEncoderJSON, type FdeEncoderOptions } from './encoder.js';

export interface MultiVectorIndexOptions {
  /** The FDE encoder (the index uses it; dispose it yourself), or options for one it owns. */
  encoder: FdeEncoder | FdeEncoderOptions;
  /** Keep each document's FDE as a binary residual code of this many bits per dimension (1 to 4; through the
   *  binary module, candidates by ADC) instead of float32 (0, the default). */
  fdeBits?: number;
}

export interface MultiVectorSearchOptions {
  /** How many documents to take by FDE inner product before reranking (default max(10 k, 100)). */
  candidates?: number;
  /** Rerank the candidates by exact Chamfer (default true); without, scores are FDE inner products. */
  rerank?: boolean;
}

export interface MultiVectorSearchResult {
  /** min(k, size) ids, sorted by (score descending, id ascending). */
  ids: Int32Array;
  scores: Float32Array;
}

const FILE_KIND = 'multivector-index';
const FILE_VERSION = 1;

interface Meta {
  encoder: FdeEncoderJSON;
  fdeBits: number;
  count: number;
}

export class MultiVectorIndex extends NativeResource<MultiVectorIndexHandle> {
  readonly encoder: FdeEncoder;
  readonly fdeBits: number;
  #ownsEncoder: boolean;

  constructor(options: MultiVectorIndexOptions) {
    const o = expectOptions<MultiVectorIndexOptions>(options, 'options', ['encoder', 'fdeBits']);
    if (o.encoder === undefined || o.encoder === null || typeof o.encoder !== 'object') {
      throw new TypeError(`Expected "encoder" to be an FdeEncoder or its options, got ${typeName(o.encoder)}`);
    }
    const owns = !(o.encoder instanceof FdeEncoder);
    const encoder = o.encoder instanceof FdeEncoder ? o.encoder : new FdeEncoder(o.encoder);
    const fdeBits = o.fdeBits === undefined ? 0 : expectInteger(o.fdeBits, 'fdeBits', 0, 4);
    super(new (binding().MultiVectorIndexHandle)(encoder.nativeHandle, fdeBits), (h) => h.release());
    this.encoder = encoder;
    this.fdeBits = fdeBits;
    this.#ownsEncoder = owns;
  }

  get size(): number {
    return this.handle.size();
  }

  /** Native memory held: tokens, FDEs (or codes), ids and the id map. */
  get memoryBytes(): number {
    return this.handle.memoryBytes();
  }

  /** Adds documents: `lengths[i]` consecutive token rows of `tokens` each, with distinct ids (all or nothing). */
  add(ids: Int32Array, tokens: Float32Array, lengths: Int32Array): void {
    const handle = this.handle;
    const i = expectTypedArray(ids, 'Int32Array', 'ids');
    const count = checkClouds(tokens, lengths, this.encoder.dim);
    if (i.length !== count) throw new RangeError(`"ids" must hold one id per document (${count}), got ${i.length}`);
    handle.add(i, tokens, lengths);
  }

  remove(ids: Int32Array): number {
    return this.handle.remove(expectTypedArray(ids, 'Int32Array', 'ids'));
  }

  /** The k best documents for a query (tokens × dim floats). */
  search(query: Float32Array, k: number, options: MultiVectorSearchOptions = {}): MultiVectorSearchResult {
    const p = this.#plan(query, k, options);
    return this.handle.search(query, p.k, p.candidates, p.rerank);
  }

  /** search() on worker threads. Do not modify `query` until the promise settles. */
  async searchAsync(query: Float32Array, k: number, options: MultiVectorSearchOptions = {}): Promise<MultiVectorSearchResult> {
    const p = this.#plan(query, k, options);
    return this.handle.searchAsync(query, p.k, p.candidates, p.rerank);
  }

  save(path: string): void {
    writeTesseraFile(path, FILE_KIND, FILE_VERSION, this.#sections());
  }

  async saveAsync(path: string): Promise<void> {
    await writeTesseraFileAsync(path, FILE_KIND, FILE_VERSION, this.#sections());
  }

  /** Reads an index written by save(), with the encoder's matrices as saved (never regenerated). */
  static load(path: string): MultiVectorIndex {
    return MultiVectorIndex.#fromFile(readTesseraFile(path, { kind: FILE_KIND, maxVersion: FILE_VERSION }), path);
  }

  static async loadAsync(path: string): Promise<MultiVectorIndex> {
    return MultiVectorIndex.#fromFile(await readTesseraFileAsync(path, { kind: FILE_KIND, maxVersion: FILE_VERSION }), path);
  }

  override dispose(): void {
    super.dispose();
    if (this.#ownsEncoder) this.encoder.dispose();
  }

  #plan(query: Float32Array, k: number, options: MultiVectorSearchOptions) {
    const o = expectOptions<MultiVectorSearchOptions>(options, 'options', ['candidates', 'rerank']);
    expectFloat32Array(query, 'query');
    if (query.length === 0 || query.length % this.encoder.dim !== 0) {
      throw new RangeError(`"query" must hold one or more tokens of dim (${this.encoder.dim}) floats, got ${query.length} floats`);
    }
    const kk = expectInteger(k, 'k', 1, 2 ** 24);
    const candidates = o.candidates === undefined ? Math.max(10 * kk, 100) : expectInteger(o.candidates, 'candidates', 1, 2 ** 24);
    return { k: kk, candidates: Math.max(candidates, kk), rerank: expectBoolean(o.rerank, 'rerank', true) };
  }

  #sections(): Record<string, ArrayBufferView> {
    const c = this.handle.exportContents();
    const m = this.encoder.matrices();
    const meta: Meta = { encoder: this.encoder.toJSON(), fdeBits: this.fdeBits, count: c.ids.length };
    return {
      meta: new TextEncoder().encode(JSON.stringify(meta)),
      simhash: m.simhash,
      projection: m.projection,
      finalBucket: m.finalBucket,
      finalSign: m.finalSign,
      ids: c.ids,
      lengths: c.lengths,
      tokens: c.tokens,
      fdes: c.fdes,
      codes: c.codes,
    };
  }

  static #fromFile(file: TesseraFileContents, path: string): MultiVectorIndex {
    const corrupt = (why: string) => new TesseraFileError(why, 'ERR_TESSERA_FILE_CORRUPT', path);
    const bytes = (name: string) => {
      const s = file.sections.get(name);
      if (!s) throw corrupt(`section "${name}" is missing`);
      return s;
    };
    const floats = (name: string) => {
      const s = bytes(name);
      if (s.byteLength % 4) throw corrupt(`section "${name}" is not whole floats`);
      return new Float32Array(s.buffer as ArrayBuffer, s.byteOffset, s.byteLength / 4);
    };
    const ints = (name: string) => {
      const s = bytes(name);
      if (s.byteLength % 4) throw corrupt(`section "${name}" is not whole integers`);
      return new Int32Array(s.buffer as ArrayBuffer, s.byteOffset, s.byteLength / 4);
    };
    let meta: Meta;
    try {
      meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes('meta'))) as Meta;
    } catch (e) {
      if (e instanceof TesseraFileError) throw e;
      throw corrupt('the index metadata is not valid JSON');
    }
    let encoder: FdeEncoder;
    try {
      encoder = new FdeEncoder(FdeEncoder.optionsOf(meta.encoder), {
        simhash: floats('simhash'),
        projection: floats('projection'),
        finalBucket: ints('finalBucket'),
        finalSign: floats('finalSign'),
      });
    } catch (e) {
      if (e instanceof TesseraFileError) throw e;
      throw corrupt(`the saved encoder is invalid: ${(e as Error).message}`);
    }
    let index: MultiVectorIndex;
    try {
      index = new MultiVectorIndex({ encoder, fdeBits: meta.fdeBits });
    } catch (e) {
      encoder.dispose();
      throw corrupt(`the index metadata is invalid: ${(e as Error).message}`);
    }
    index.#takeEncoder();
    try {
      index.handle.importContents(ints('ids'), ints('lengths'), floats('tokens'), floats('fdes'), bytes('codes'));
    } catch (e) {
      index.dispose();
      throw e instanceof TesseraFileError ? e : corrupt(`the index contents are inconsistent: ${(e as Error).message}`);
    }
    return index;
  }

  // A loaded index made its encoder: it disposes it too.
  #takeEncoder(): void {
    this.#ownsEncoder = true;
  }
}
