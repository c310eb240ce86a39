// RoPE applied in place to query or key tensors (native, SIMD, threaded); see native/include/tessera/rope.h.
import type { RopeArgs } from '../native/binding.js';
import { binding } from '../native/load.js';
import { cudaKernels, expectDevice, type Device } from '../core/cuda.js';
import { expectFloat32Array, expectInteger, expectOneOf, expectOptions, expectStorage, typeName, type StorageDType } from '../core/validate.js';
import { types } from 'node:util';

export type RopeLayout = 'bshd' | 'bhsd';
export type RopeStyle = 'neox' | 'interleaved';
export type RopeDType = StorageDType;
export type RopePositions = Int32Array | Float32Array | Float64Array;

export interface ApplyRopeOptions {
  /** [batch, seq, heads, headDim] (Hugging Face's q/k before the transpose, ONNX's 3D input) or
   *  [batch, heads, seq, headDim] (after it; ONNX's 4D input). */
  layout: RopeLayout;
  batch?: number;
  seqLen: number;
  heads: number;
  headDim: number;
  /** Channels that rotate, the first ones of each head (default headDim); the rest are left untouched. */
  rotaryDim?: number;
  /** One position per token: seqLen values shared by the batch, or batch × seqLen. Integers or fractions. */
  positions: RopePositions;
  /** rotaryDim / 2 inverse frequencies (from ropeFrequencies); or give cos and sin tables instead. */
  invFreq?: Float64Array | Float32Array | readonly number[];
  /** [rows, rotaryDim / 2] tables indexed by (integer) position, as ONNX's RotaryEmbedding takes them. */
  cos?: Float32Array;
  sin?: Float32Array;
  /** Multiplies cos and sin (YaRN's and LongRoPE's magnitude correction; default 1). */
  attentionFactor?: number;
  /** Pairs (i, i + rotaryDim/2) ('neox', Hugging Face's rotate_half; default) or (2i, 2i+1) ('interleaved', GPT-J). */
  style?: RopeStyle;
  /** The element type: float32 data is a Float32Array; float16 and bfloat16 data are Uint16Arrays of their bits. */
  dtype?: RopeDType;
  /** 'cuda': rotate on the GPU (the data is copied there and back; the same results as the CPU). Default 'cpu'. */
  device?: Device;
}

const OPTION_KEYS: readonly (keyof ApplyRopeOptions)[] = [
  'layout', 'batch', 'seqLen', 'heads', 'headDim', 'rotaryDim', 'positions', 'invFreq', 'cos', 'sin',
  'attentionFactor', 'style', 'dtype', 'device',
];


function positionsOf(value: unknown): RopePositions {
  if (types.isInt32Array(value) || types.isFloat32Array(value) || types.isFloat64Array(value)) return value;
  throw new TypeError(`Expected "positions" to be an Int32Array, Float32Array or Float64Array, got ${typeName(value)}`);
}

// Finite; with tables of `rows` rows, also whole row indices (the native layer checks again).
function checkPositions(positions: RopePositions, rows: number): void {
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if (!Number.isFinite(p)) throw new RangeError(`"positions"[${i}] is ${p}: positions must be finite`);
    if (rows > 0 && !(Number.isInteger(p) && p >= 0 && p < rows)) {
      throw new RangeError(`"positions"[${i}] is ${p}: with cos/sin tables of ${rows} rows, positions must be integers from 0 to ${rows - 1}`);
    }
  }
}

function frequenciesOf(value: unknown): Float64Array {
  if (types.isFloat64Array(value)) return value;
  if (types.isFloat32Array(value) || Array.isArray(value)) {
    const f = Float64Array.from(value as ArrayLike<number>);
    return f;
  }
  throw new TypeError(`Expected "invFreq" to be a Float64Array, Float32Array or array of numbers, got ${typeName(value)}`);
}

function nativeArgs(data: unknown, options: unknown): RopeArgs {
  const o = expectOptions<ApplyRopeOptions>(options, 'options', OPTION_KEYS);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const { dtype } = expectStorage(data, 'data', o.dtype);
  const layout = expectOneOf(o.layout, 'layout', ['bshd', 'bhsd'] as const);
  const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1);
  const seqLen = expectInteger(o.seqLen, 'seqLen', 0);
  const heads = expectInteger(o.heads, 'heads', 1);
  const headDim = expectInteger(o.headDim, 'headDim', 2);
  const rotaryDim = o.rotaryDim === undefined ? headDim : expectInteger(o.rotaryDim, 'rotaryDim', 2);
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw new RangeError(`"rotaryDim" must be even and at most "headDim" (${headDim}), got ${rotaryDim}`);
  }
  const elements = batch * seqLen * heads * headDim;
  const length = (data as Float32Array | Uint16Array).length;
  if (length !== elements) {
    throw new RangeError(`"data" must hold batch × seqLen × heads × headDim = ${elements} values, got ${length}`);
  }
  const positions = positionsOf(o.positions);
  if (positions.length !== seqLen && positions.length !== batch * seqLen) {
    throw new RangeError(`"positions" must hold seqLen (${seqLen}) or batch × seqLen (${batch * seqLen}) values, got ${positions.length}`);
  }
  const half = rotaryDim / 2;
  let invFreq: Float64Array | null = null, cos: Float32Array | null = null, sin: Float32Array | null = null;
  if (o.invFreq !== undefined) {
    if (o.cos !== undefined || o.sin !== undefined) throw new RangeError('Give either "invFreq" or "cos" and "sin", not both');
    invFreq = frequenciesOf(o.invFreq);
    if (invFreq.length !== half) throw new RangeError(`"invFreq" must hold rotaryDim / 2 = ${half} values, got ${invFreq.length}`);
    if (!invFreq.every(Number.isFinite)) throw new RangeError('"invFreq" must hold finite numbers');
  } else {
    if (o.cos === undefined || o.sin === undefined) throw new RangeError('Give "invFreq", or both "cos" and "sin" tables');
    cos = expectFloat32Array(o.cos, 'cos');
    sin = expectFloat32Array(o.sin, 'sin');
    if (cos.length !== sin.length || cos.length === 0 || cos.length % half !== 0) {
      throw new RangeError(`"cos" and "sin" must both hold rows × rotaryDim / 2 (${half}) values, got ${cos.length} and ${sin.length}`);
    }
  }
  checkPositions(positions, cos ? cos.length / half : 0);
  const attentionFactor = o.attentionFactor ?? 1;
  if (typeof attentionFactor !== 'number') throw new TypeError(`Expected "attentionFactor" to be a number, got ${typeName(attentionFactor)}`);
  if (!Number.isFinite(attentionFactor)) throw new RangeError(`"attentionFactor" must be finite, got ${attentionFactor}`);
  const style = o.style === undefined ? 'neox' : expectOneOf(o.style, 'style', ['neox', 'interleaved'] as const);
  return [data as Float32Array | Uint16Array, dtype, layout, batch, seqLen, heads, headDim, rotaryDim, positions, invFreq, cos,
    sin, attentionFactor, style];
}

/**
 * Rotates `data` in place by RoPE and returns it. Angles are formed in float64 (exact phase at any position),
 * cos and sin within 1e-7; float32 data agrees with a float64 rotation to about 1e-7 relative, half types to one
 * rounding of their own. Non-finite positions, or table positions outside the table, throw RangeError before
 * anything is written. Threaded over tokens, SIMD (AVX-512, AVX2).
 */
export function applyRope<T extends Float32Array | Uint16Array>(data: T, options: ApplyRopeOptions): T {
  const args = nativeArgs(data, options);
  if (expectDevice(options.device) === 'cuda') return cudaKernels().cudaApplyRope(...args) as T;
  return binding().applyRope(...args) as T;
}

/** applyRope() on worker threads. Do not touch `data`, `positions` or the angles until the promise settles. */
export async function applyRopeAsync<T extends Float32Array | Uint16Array>(data: T, options: ApplyRopeOptions): Promise<T> {
  const args = nativeArgs(data, options);
  if (expectDevice(options.device) === 'cuda') return (await cudaKernels().cudaApplyRopeAsync(...args)) as T;
  return (await binding().applyRopeAsync(...args)) as T;
}

/**
 * The cos and sin tables applyRope computes: [positions.length, invFreq.length] each, of positions[t] × invFreq[i]
 * with the phase in float64, times attentionFactor. What ONNX's RotaryEmbedding (and onnxruntime's) take as caches.
 */
export function ropeCosSin(
  positions: RopePositions,
  invFreq: Float64Array | Float32Array | readonly number[],
  options?: { attentionFactor?: number },
): { cos: Float32Array; sin: Float32Array } {
  const p = positionsOf(positions);
  const f = frequenciesOf(invFreq);
  if (f.length === 0) throw new RangeError('"invFreq" must not be empty');
  if (!f.every(Number.isFinite)) throw new RangeError('"invFreq" must hold finite numbers');
  const o = expectOptions<{ attentionFactor?: number }>(options, 'options', ['attentionFactor']);
  const factor = o.attentionFactor ?? 1;
  if (typeof factor !== 'number') throw new TypeError(`Expected "attentionFactor" to be a number, got ${typeName(factor)}`);
  if (!Number.isFinite(factor)) throw new RangeError(`"attentionFactor" must be finite, got ${factor}`);
  checkPositions(p, 0);
  return binding().ropeCosSin(p, f, factor);
}
