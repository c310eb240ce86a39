// Sign codes and Hamming top-k over packed codes.
import { binding } from '../native/load.js';
import {
  expectInteger,
  expectOneOf,
  expectOptions,
  expectTypedArray,
  expectFloat32Array,
  required,
  typeName,
} from '../core/validate.js';

export type BitOrder = 'msb' | 'lsb';

const MAX_DIM = 2 ** 24;
const MAX_K = 2 ** 24;
const BIT_ORDERS = ['msb', 'lsb'] as const;

export interface PackSignsOptions {
  /** 'msb' (default): numpy.packbits, sentence-transformers "ubinary"; 'lsb': FAISS. */
  bitOrder?: BitOrder;
  /** A bit is set where x > threshold (default 0). */
  threshold?: number;
  out?: Uint8Array;
}

export interface UnpackSignsOptions {
  bitOrder?: BitOrder;
  out?: Float32Array;
}

export interface HammingTopKOptions {
  /** Bits per code; each code takes ceil(bits / 8) bytes and padding bits are ignored. */
  bits: number;
  k: number;
  bitOrder?: BitOrder;
}

export interface HammingTopKResult {
  /** nq × min(k, n) row indices, each row sorted by (distance, index). */
  indices: Int32Array;
  distances: Int32Array;
}

/** ceil(bits / 8): the bytes of one packed row. */
export const codeBytes = (bits: number) => Math.ceil(bits / 8);

function rowsOf(length: number, row: number, name: string, unit: string): number {
  if (length % row !== 0) throw new RangeError(`"${name}" length (${length}) is not a multiple of ${row} (${unit})`);
  return length / row;
}

/**
 * Packs rows of `dim` floats into sign bits: bit i is x[i] > threshold. Each row takes ceil(dim / 8) bytes; padding
 * bits are zero. The default 'msb' order matches numpy.packbits(x > 0); 'lsb' matches FAISS.
 */
export function packSigns(x: Float32Array, dim: number, options: PackSignsOptions = {}): Uint8Array {
  expectFloat32Array(x, 'x');
  expectInteger(dim, 'dim', 1, MAX_DIM);
  const o = expectOptions<PackSignsOptions>(options, 'options', ['bitOrder', 'threshold', 'out']);
  const order = o.bitOrder === undefined ? 'msb' : expectOneOf(o.bitOrder, 'bitOrder', BIT_ORDERS);
  const threshold = o.threshold ?? 0;
  if (typeof threshold !== 'number') throw new TypeError(`Expected "threshold" to be a number, got ${typeName(threshold)}`);
  if (Number.isNaN(threshold)) throw new RangeError('"threshold" must not be NaN');
  const rows = rowsOf(x.length, dim, 'x', 'dim');
  const out = o.out === undefined ? undefined : expectTypedArray(o.out, 'Uint8Array', 'out');
  if (out && out.length !== rows * codeBytes(dim)) {
    throw new RangeError(`"out" must hold ${rows * codeBytes(dim)} bytes, got ${out.length}`);
  }
  return binding().packSigns(x, dim, order === 'msb', threshold, out);
}

/** The inverse of packSigns as ±1 floats: +1 where a bit is set, -1 where it is clear. */
export function unpackSigns(codes: Uint8Array, dim: number, options: UnpackSignsOptions = {}): Float32Array {
  expectTypedArray(codes, 'Uint8Array', 'codes');
  expectInteger(dim, 'dim', 1, MAX_DIM);
  const o = expectOptions<UnpackSignsOptions>(options, 'options', ['bitOrder', 'out']);
  const order = o.bitOrder === undefined ? 'msb' : expectOneOf(o.bitOrder, 'bitOrder', BIT_ORDERS);
  const rows = rowsOf(codes.length, codeBytes(dim), 'codes', 'bytes per row');
  const out = o.out === undefined ? undefined : expectFloat32Array(o.out, 'out');
  if (out && out.length !== rows * dim) throw new RangeError(`"out" must hold ${rows * dim} floats, got ${out.length}`);
  return binding().unpackSigns(codes, dim, order === 'msb', out);
}

function checkHamming(queries: unknown, codes: unknown, options: unknown) {
  const q = expectTypedArray(queries, 'Uint8Array', 'queries');
  const c = expectTypedArray(codes, 'Uint8Array', 'codes');
  const o = expectOptions<HammingTopKOptions>(options, 'options', ['bits', 'k', 'bitOrder']);
  const bits = expectInteger(required(o.bits, 'bits'), 'bits', 1, MAX_DIM);
  const k = expectInteger(required(o.k, 'k'), 'k', 1, MAX_K);
  const order = o.bitOrder === undefined ? 'msb' : expectOneOf(o.bitOrder, 'bitOrder', BIT_ORDERS);
  rowsOf(q.length, codeBytes(bits), 'queries', `bytes per ${bits}-bit code`);
  rowsOf(c.length, codeBytes(bits), 'codes', `bytes per ${bits}-bit code`);
  return { q, c, bits, k, msb: order === 'msb' };
}

/**
 * The k codes nearest each query in Hamming distance: exact, sorted by (distance, index), ties to the lower index,
 * identical for any thread count. Threaded over blocks of codes; queries are processed in blocks of 64 so each code
 * is read once per block.
 */
export function hammingTopK(queries: Uint8Array, codes: Uint8Array, options: HammingTopKOptions): HammingTopKResult {
  const a = checkHamming(queries, codes, options);
  return binding().hammingTopK(a.q, a.c, a.bits, a.k, a.msb);
}

/** hammingTopK() on a worker thread. Do not modify `queries` or `codes` until the promise settles. */
export async function hammingTopKAsync(
  queries: Uint8Array,
  codes: Uint8Array,
  options: HammingTopKOptions,
): Promise<HammingTopKResult> {
  const a = checkHamming(queries, codes, options);
  return binding().hammingTopKAsync(a.q, a.c, a.bits, a.k, a.msb);
}
