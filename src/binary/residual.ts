// Multi-bit residual codes (BEBR's recurrent binarization with fixed plane weights) and their SDC / ADC search.
import { binding } from '../native/load.js';
import { expectFloat32Array, expectInteger, expectOptions, expectTypedArray, required } from '../core/validate.js';
import { codeBytes } from './signs.js';
import { OnnxTransform, type OnnxTransformOptions } from './transform.js';

const MAX_DIM = 2 ** 24;
const MAX_K = 2 ** 24;
export const MAX_RESIDUAL_BITS = 4;

export interface ResidualBinarizerOptions {
  /** Dimensions of each vector. */
  dim: number;
  /** Sign planes per dimension, 1 to 4 (default 2, BEBR's setting): each row takes bits * ceil(dim / 8) + 4 bytes. */
  bits?: number;
  /** Subtracted from every vector before encoding and added back by decode (see fit()). */
  center?: Float32Array;
}

export interface ScoreTopKOptions {
  k: number;
}

export interface ScoreTopKResult {
  /** nq × min(k, n) document indices, each row sorted by (score descending, index ascending). */
  indices: Int32Array;
  scores: Float32Array;
}

export interface ResidualBinarizerJSON {
  type: 'ResidualBinarizer';
  version: 1;
  dim: number;
  bits: number;
  center?: number[];
}

/**
 * Encodes float vectors as `bits` sign planes s_0..s_{bits-1} and a scale alpha, decoding to
 * alpha * sum_t 2^-t s_t (BEBR's recurrent binarization with its fixed power-of-two plane weights). Planes are
 * chosen greedily on the residual and alpha by least squares, alternated to convergence.
 *
 * Row layout (rowBytes bytes): plane t at byte t * ceil(dim / 8), bits msb-first (bit set = +1; plane 0 is
 * exactly packSigns(x - center)), then alpha as a little-endian float32.
 */
export class ResidualBinarizer {
  readonly dim: number;
  readonly bits: number;
  #center: Float32Array | undefined;
  #transform: OnnxTransform | undefined;

  /**
   * A binarizer with a learned transform in front (BEBR's MLP): an ONNX model from inputDim floats to dim floats,
   * run with onnxruntime-node before every encode. Encoding is then asynchronous only (encodeAsync, fitAsync).
   */
  static async withTransform(options: ResidualBinarizerOptions & { transform: OnnxTransformOptions }): Promise<ResidualBinarizer> {
    const { transform, ...rest } = expectOptions<ResidualBinarizerOptions & { transform: OnnxTransformOptions }>(
      options, 'options', ['dim', 'bits', 'center', 'transform']);
    const binarizer = new ResidualBinarizer(rest as ResidualBinarizerOptions);
    const loaded = await OnnxTransform.load(required(transform, 'transform'));
    if (loaded.outputDim !== binarizer.dim) {
      await loaded.dispose();
      throw new RangeError(`the transform outputs ${loaded.outputDim} dims, the binarizer encodes ${binarizer.dim}`);
    }
    binarizer.#transform = loaded;
    return binarizer;
  }

  /** The learned transform in front, if any. */
  get transform(): OnnxTransform | undefined {
    return this.#transform;
  }

  /** Floats per input row: the transform's input width, else dim. */
  get inputDim(): number {
    return this.#transform ? this.#transform.inputDim : this.dim;
  }

  constructor(options: ResidualBinarizerOptions) {
    const o = expectOptions<ResidualBinarizerOptions>(options, 'options', ['dim', 'bits', 'center']);
    this.dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_DIM);
    this.bits = o.bits === undefined ? 2 : expectInteger(o.bits, 'bits', 1, MAX_RESIDUAL_BITS);
    if (o.center !== undefined) this.center = o.center;
  }

  /** Bytes of one encoded row. */
  get rowBytes(): number {
    return this.bits * codeBytes(this.dim) + 4;
  }

  get center(): Float32Array | undefined {
    return this.#center;
  }

  set center(value: Float32Array | undefined) {
    if (value !== undefined) {
      expectFloat32Array(value, 'center');
      if (value.length !== this.dim) throw new RangeError(`"center" must hold dim (${this.dim}) floats, got ${value.length}`);
      value = value.slice();  // our own copy: later changes to the caller's array must not change the codes
    }
    this.#center = value;
  }

  /** Sets the centre to the per-dimension mean of `sample` (rows of dim floats), for data not centred at zero. */
  fit(sample: Float32Array): this {
    this.#syncOnly('fit');
    return this.#fitTo(sample);
  }

  /** fit(), through the transform when there is one: `sample` rows are inputDim floats. */
  async fitAsync(sample: Float32Array): Promise<this> {
    return this.#fitTo(this.#transform ? await this.#transform.run(sample) : sample);
  }

  #fitTo(sample: Float32Array): this {
    const rows = this.#rows(sample, 'sample');
    if (rows === 0) throw new RangeError('"sample" is empty');
    const sum = new Float64Array(this.dim);
    for (let r = 0; r < rows; r++) for (let i = 0; i < this.dim; i++) sum[i]! += sample[r * this.dim + i]!;
    this.#center = Float32Array.from(sum, (s) => s / rows);
    return this;
  }

  encode(x: Float32Array, out?: Uint8Array): Uint8Array {
    this.#syncOnly('encode');
    this.#rows(x, 'x');
    return binding().residualEncode(x, this.dim, this.bits, this.#center, this.#out(out, (x.length / this.dim) * this.rowBytes));
  }

  /** encode() on a worker thread, through the transform when there is one (rows of inputDim floats then).
   *  Do not modify `x` until the promise settles. */
  async encodeAsync(x: Float32Array, out?: Uint8Array): Promise<Uint8Array> {
    if (this.#transform) {
      expectFloat32Array(x, 'x');
      x = await this.#transform.run(x);
    }
    this.#rows(x, 'x');
    const o = this.#out(out, (x.length / this.dim) * this.rowBytes);
    return binding().residualEncodeAsync(x, this.dim, this.bits, this.#center, o);
  }

  decode(codes: Uint8Array, out?: Float32Array): Float32Array {
    const rows = this.#codeRows(codes, 'codes');
    return binding().residualDecode(codes, this.dim, this.bits, this.#center, this.#floatOut(out, rows * this.dim));
  }

  async decodeAsync(codes: Uint8Array, out?: Float32Array): Promise<Float32Array> {
    const rows = this.#codeRows(codes, 'codes');
    return binding().residualDecodeAsync(codes, this.dim, this.bits, this.#center, this.#floatOut(out, rows * this.dim));
  }

  /**
   * Symmetric distance calculation (BEBR's SDC): for each query code, the documents whose reconstructions have the
   * largest inner product with the query's reconstruction (centres excluded). Computed from popcounts of every pair of
   * bit planes times the two scales: exact up to the final rounding to float32.
   */
  sdcTopK(queryCodes: Uint8Array, docCodes: Uint8Array, options: ScoreTopKOptions): ScoreTopKResult {
    const k = this.#scoreArgs(queryCodes, docCodes, options, true);
    return binding().sdcTopK(queryCodes, docCodes, this.dim, this.bits, k);
  }

  async sdcTopKAsync(queryCodes: Uint8Array, docCodes: Uint8Array, options: ScoreTopKOptions): Promise<ScoreTopKResult> {
    const k = this.#scoreArgs(queryCodes, docCodes, options, true);
    return binding().sdcTopKAsync(queryCodes, docCodes, this.dim, this.bits, k);
  }

  /** As sdcTopK, with float queries (nq × dim): the score is <query, reconstruction> (centre excluded). */
  adcTopK(queries: Float32Array, docCodes: Uint8Array, options: ScoreTopKOptions): ScoreTopKResult {
    this.#syncOnly('adcTopK');
    const k = this.#scoreArgs(queries, docCodes, options, false);
    return binding().adcTopK(queries, docCodes, this.dim, this.bits, k);
  }

  /** adcTopK() on a worker thread, through the transform when there is one (queries are inputDim floats then). */
  async adcTopKAsync(queries: Float32Array, docCodes: Uint8Array, options: ScoreTopKOptions): Promise<ScoreTopKResult> {
    if (this.#transform) queries = await this.#transform.run(expectFloat32Array(queries, 'queries'));
    const k = this.#scoreArgs(queries, docCodes, options, false);
    return binding().adcTopKAsync(queries, docCodes, this.dim, this.bits, k);
  }

  /** Releases the transform's onnxruntime session, if any. */
  async dispose(): Promise<void> {
    await this.#transform?.dispose();
  }

  /** The configuration (not the transform's model: pass it again to withTransform). */
  toJSON(): ResidualBinarizerJSON {
    const json: ResidualBinarizerJSON = { type: 'ResidualBinarizer', version: 1, dim: this.dim, bits: this.bits };
    if (this.#center) json.center = Array.from(this.#center);
    return json;
  }

  static fromJSON(json: ResidualBinarizerJSON): ResidualBinarizer {
    if (json === null || typeof json !== 'object' || json.type !== 'ResidualBinarizer') {
      throw new TypeError('Expected a ResidualBinarizer JSON object (from toJSON())');
    }
    if (json.version !== 1) throw new RangeError(`ResidualBinarizer JSON version ${json.version} is not supported`);
    const options: ResidualBinarizerOptions = { dim: json.dim, bits: json.bits };
    if (json.center !== undefined) {
      if (!Array.isArray(json.center)) throw new TypeError('Expected "center" to be an array of numbers');
      options.center = Float32Array.from(json.center);
    }
    return new ResidualBinarizer(options);
  }

  #syncOnly(what: string): void {
    if (this.#transform) throw new Error(`${what}() cannot run the ONNX transform synchronously: use ${what}Async()`);
  }

  #rows(x: Float32Array, name: string): number {
    expectFloat32Array(x, name);
    if (x.length % this.dim !== 0) throw new RangeError(`"${name}" length (${x.length}) is not a multiple of dim (${this.dim})`);
    return x.length / this.dim;
  }

  #codeRows(codes: Uint8Array, name: string): number {
    expectTypedArray(codes, 'Uint8Array', name);
    if (codes.length % this.rowBytes !== 0) {
      throw new RangeError(`"${name}" length (${codes.length}) is not a multiple of ${this.rowBytes} (bytes per ${this.bits}-bit row of ${this.dim} dims)`);
    }
    return codes.length / this.rowBytes;
  }

  #out(out: Uint8Array | undefined, length: number): Uint8Array | undefined {
    if (out === undefined) return undefined;
    expectTypedArray(out, 'Uint8Array', 'out');
    if (out.length !== length) throw new RangeError(`"out" must hold ${length} bytes, got ${out.length}`);
    return out;
  }

  #floatOut(out: Float32Array | undefined, length: number): Float32Array | undefined {
    if (out === undefined) return undefined;
    expectFloat32Array(out, 'out');
    if (out.length !== length) throw new RangeError(`"out" must hold ${length} floats, got ${out.length}`);
    return out;
  }

  #scoreArgs(queries: Uint8Array | Float32Array, docCodes: Uint8Array, options: ScoreTopKOptions, codes: boolean): number {
    if (codes) this.#codeRows(queries as Uint8Array, 'queryCodes');
    else this.#rows(queries as Float32Array, 'queries');
    this.#codeRows(docCodes, 'docCodes');
    const o = expectOptions<ScoreTopKOptions>(options, 'options', ['k']);
    return expectInteger(required(o.k, 'k'), 'k', 1, MAX_K);
  }
}
