// MUVERA Fixed Dimensional Encodings: multi-vector point clouds (token embeddings) to single vectors whose inner
// products approximate Chamfer similarity. Algorithm and matrix specification: native/include/tessera/fde.h.
import type { FdeEncoderHandle, FdeMatrices } from '../native/binding.js';
import { binding } from '../native/load.js';
import { NativeResource } from '../core/resource.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectTypedArray,
  expectU64,
  required,
  uninitializedFloat32,
  viewsOverlap,
} from '../core/validate.js';

export type FdeProjection = 'countsketch' | 'dense' | 'identity';

export interface FdeEncoderOptions {
  /** Token dimensions. */
  dim: number;
  /** Independent repetitions (default 20). */
  repetitions?: number;
  /** SimHash bits k: 2^k partitions per repetition, 0 to 16 (default 5). */
  simhashBits?: number;
  /** Inner projection: 'countsketch' (Google's reference: one ±1 per input coordinate, default), 'dense' (the
   *  paper's ±1/√p matrix) or 'identity'. */
  projection?: FdeProjection;
  /** Projected dimensions p (default 16; identity uses dim). */
  projectionDim?: number;
  /** A final Count-Sketch of the whole encoding down to this many dimensions (default: none). */
  finalDim?: number;
  /** Seed of the random matrices (default 42): a safe integer or a bigint below 2^64. */
  seed?: number | bigint;
  /** Fill a document's empty partitions with the token nearest them in SimHash space (default true). */
  fillEmpty?: boolean;
}

export interface FdeEncoderJSON {
  type: 'FdeEncoder';
  /** The algorithm and matrix specification version: encodings from the same JSON and version are identical. */
  algorithmVersion: 1;
  dim: number;
  repetitions: number;
  simhashBits: number;
  projection: FdeProjection;
  projectionDim: number;
  finalDim?: number;
  seed: string;
  fillEmpty: boolean;
}

/** Options of the batch encoders. */
export interface FdeBatchOptions {
  /** Where to write the encodings (clouds × outputDim floats), instead of a new array. */
  out?: Float32Array;
}

export const FDE_ALGORITHM_VERSION = 1;
const PROJECTIONS = ['countsketch', 'dense', 'identity'] as const;

/** Checks token rows and per-cloud counts; returns the cloud count. */
export function checkClouds(tokens: unknown, lengths: unknown, dim: number, name = 'tokens'): number {
  const t = expectFloat32Array(tokens, name);
  const l = expectTypedArray(lengths, 'Int32Array', 'lengths');
  if (t.length % dim !== 0) throw new RangeError(`"${name}" length (${t.length}) is not a multiple of dim (${dim})`);
  let total = 0;
  for (let i = 0; i < l.length; i++) {
    if (l[i]! < 1) throw new RangeError(`"lengths"[${i}] is ${l[i]}: every ${name === 'tokens' ? 'cloud' : 'document'} needs at least one token`);
    total += l[i]!;
  }
  if (total !== t.length / dim) throw new RangeError(`"lengths" sum to ${total} tokens, "${name}" holds ${t.length / dim}`);
  return l.length;
}

/** The native handle of an encoder, for the device encoder built from it (not part of the public API). */
export let encoderHandle: (encoder: FdeEncoder) => FdeEncoderHandle;

export class FdeEncoder extends NativeResource<FdeEncoderHandle> {
  static {
    encoderHandle = (encoder) => encoder.handle;
  }

  readonly dim: number;
  readonly repetitions: number;
  readonly simhashBits: number;
  readonly projection: FdeProjection;
  readonly projectionDim: number;
  readonly finalDim: number | undefined;
  readonly seed: bigint;
  readonly fillEmpty: boolean;
  /** Floats per encoding: finalDim, or repetitions × 2^simhashBits × projectionDim. */
  readonly outputDim: number;

  constructor(options: FdeEncoderOptions, matrices?: FdeMatrices) {
    const o = expectOptions<FdeEncoderOptions>(options, 'options',
      ['dim', 'repetitions', 'simhashBits', 'projection', 'projectionDim', 'finalDim', 'seed', 'fillEmpty']);
    const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, 2 ** 20);
    const repetitions = o.repetitions === undefined ? 20 : expectInteger(o.repetitions, 'repetitions', 1, 4096);
    const simhashBits = o.simhashBits === undefined ? 5 : expectInteger(o.simhashBits, 'simhashBits', 0, 16);
    const projection = o.projection === undefined ? 'countsketch' : expectOneOf(o.projection, 'projection', PROJECTIONS);
    const projectionDim = projection === 'identity' ? dim : o.projectionDim === undefined ? 16 : expectInteger(o.projectionDim, 'projectionDim', 1, 2 ** 16);
    const finalDim = o.finalDim === undefined ? undefined : expectInteger(o.finalDim, 'finalDim', 1, 2 ** 26);
    const seed = o.seed === undefined ? 42n : expectU64(o.seed, 'seed');
    const fillEmpty = expectBoolean(o.fillEmpty, 'fillEmpty', true);
    const blockDim = repetitions * 2 ** simhashBits * projectionDim;
    if (blockDim > 2 ** 26) {
      throw new RangeError(`repetitions × 2^simhashBits × projectionDim = ${blockDim} exceeds 2^26 floats per encoding`);
    }
    const Handle = binding().FdeEncoderHandle;
    const args = [dim, repetitions, simhashBits, projection, projectionDim, finalDim ?? 0, seed, fillEmpty] as const;
    const handle = matrices
      ? new Handle(...args, matrices.simhash, matrices.projection, matrices.finalBucket, matrices.finalSign)
      : new Handle(...args);
    super(handle, (h) => h.release());
    this.dim = dim;
    this.repetitions = repetitions;
    this.simhashBits = simhashBits;
    this.projection = projection;
    this.projectionDim = projectionDim;
    this.finalDim = finalDim;
    this.seed = seed;
    this.fillEmpty = fillEmpty;
    this.outputDim = finalDim ?? blockDim;
  }

  /** The query encoding of one point cloud (tokens × dim floats): sums per partition. */
  encodeQuery(tokens: Float32Array): Float32Array {
    return this.#one(tokens, false);
  }

  /** The document encoding of one point cloud: means per partition, empty ones filled (with fillEmpty). */
  encodeDocument(tokens: Float32Array): Float32Array {
    return this.#one(tokens, true);
  }

  /** Query encodings of many clouds: `lengths` tokens each, consecutive in `tokens`; rows of outputDim floats.
   *  `options.out` (clouds × outputDim floats) receives them instead of a new array, for hot loops that reuse it. */
  encodeQueries(tokens: Float32Array, lengths: Int32Array, options?: FdeBatchOptions): Float32Array {
    const handle = this.handle;
    return handle.encode(tokens, lengths, false, this.#output(tokens, lengths, options));
  }

  encodeDocuments(tokens: Float32Array, lengths: Int32Array, options?: FdeBatchOptions): Float32Array {
    const handle = this.handle;
    return handle.encode(tokens, lengths, true, this.#output(tokens, lengths, options));
  }

  /** encodeQueries() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
  async encodeQueriesAsync(tokens: Float32Array, lengths: Int32Array, options?: FdeBatchOptions): Promise<Float32Array> {
    const handle = this.handle;
    return handle.encodeAsync(tokens, lengths, false, this.#output(tokens, lengths, options));
  }

  async encodeDocumentsAsync(
    tokens: Float32Array,
    lengths: Int32Array,
    options?: FdeBatchOptions,
  ): Promise<Float32Array> {
    const handle = this.handle;
    return handle.encodeAsync(tokens, lengths, true, this.#output(tokens, lengths, options));
  }

  // Checks the clouds and gives their output: the caller's `out`, or a new array left uninitialized (the encoder
  // writes every element).
  #output(tokens: Float32Array, lengths: Int32Array, options: unknown): Float32Array {
    const length = checkClouds(tokens, lengths, this.dim) * this.outputDim;
    const o = expectOptions<FdeBatchOptions>(options, 'options', ['out']);
    if (o.out === undefined) return uninitializedFloat32(length);
    const out = expectFloat32Array(o.out, 'out');
    if (out.length !== length) {
      throw new RangeError(`"out" must hold ${length} floats (clouds × outputDim ${this.outputDim}), got ${out.length}`);
    }
    if (viewsOverlap(out, tokens) || viewsOverlap(out, lengths)) {
      throw new RangeError('"out" overlaps "tokens" or "lengths"');
    }
    return out;
  }

  /** Copies of the random matrices (what a saved index stores, and what a CUDA backend is given). */
  matrices(): FdeMatrices {
    return this.handle.exportMatrices();
  }

  toJSON(): FdeEncoderJSON {
    const json: FdeEncoderJSON = {
      type: 'FdeEncoder',
      algorithmVersion: FDE_ALGORITHM_VERSION,
      dim: this.dim,
      repetitions: this.repetitions,
      simhashBits: this.simhashBits,
      projection: this.projection,
      projectionDim: this.projectionDim,
      seed: this.seed.toString(),
      fillEmpty: this.fillEmpty,
    };
    if (this.finalDim !== undefined) json.finalDim = this.finalDim;
    return json;
  }

  /** The encoder a toJSON() describes; its matrices are regenerated from (seed, algorithm version). */
  static fromJSON(json: FdeEncoderJSON): FdeEncoder {
    return new FdeEncoder(FdeEncoder.optionsOf(json));
  }

  /** Options from toJSON() output (checking its type and algorithm version). */
  static optionsOf(json: FdeEncoderJSON): FdeEncoderOptions {
    if (json === null || typeof json !== 'object' || json.type !== 'FdeEncoder') {
      throw new TypeError('Expected an FdeEncoder JSON object (from toJSON())');
    }
    if (json.algorithmVersion !== FDE_ALGORITHM_VERSION) {
      throw new RangeError(`FDE algorithm version ${json.algorithmVersion} is not supported (this library: ${FDE_ALGORITHM_VERSION})`);
    }
    if (typeof json.seed !== 'string' || !/^\d+$/.test(json.seed)) throw new TypeError('Expected "seed" to be a decimal string');
    const options: FdeEncoderOptions = {
      dim: json.dim,
      repetitions: json.repetitions,
      simhashBits: json.simhashBits,
      projection: json.projection,
      projectionDim: json.projectionDim,
      seed: BigInt(json.seed),
      fillEmpty: json.fillEmpty,
    };
    if (json.finalDim !== undefined) options.finalDim = json.finalDim;
    return options;
  }

  /** @internal the native handle, for the multi-vector index. */
  get nativeHandle(): FdeEncoderHandle {
    return this.handle;
  }

  #one(tokens: Float32Array, document: boolean): Float32Array {
    expectFloat32Array(tokens, 'tokens');
    if (tokens.length === 0 || tokens.length % this.dim !== 0) {
      throw new RangeError(`"tokens" must hold one or more tokens of dim (${this.dim}) floats, got ${tokens.length} floats`);
    }
    return this.handle.encode(tokens, Int32Array.of(tokens.length / this.dim), document);
  }
}
