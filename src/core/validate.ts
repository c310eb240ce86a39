import { types } from 'node:util';

// Argument checks shared by every public function: TypeError for a wrong type, RangeError for a bad value or shape,
// each message naming the argument, what was expected and what was given.

/** "Float32Array", "Array", "null", "string" ... for messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'object';
}

function show(value: unknown): string {
  return typeof value === 'bigint' ? `${value}n` : typeof value === 'string' ? JSON.stringify(value) : String(value);
}

// util.types checks the engine's own tag, so arrays from another realm (vm contexts) pass too.
const typedArrayChecks = {
  Float32Array: types.isFloat32Array,
  Float64Array: types.isFloat64Array,
  Uint8Array: types.isUint8Array,
  Uint16Array: types.isUint16Array,
  Int32Array: types.isInt32Array,
  Uint32Array: types.isUint32Array,
  BigUint64Array: types.isBigUint64Array,
} as const;
type TypedArrayName = keyof typeof typedArrayChecks;
type TypedArrayOf<N extends TypedArrayName> = InstanceType<(typeof globalThis)[N]>;

export function expectTypedArray<N extends TypedArrayName>(value: unknown, type: N, name: string): TypedArrayOf<N> {
  if (!typedArrayChecks[type](value)) {
    throw new TypeError(`Expected "${name}" to be a ${type}, got ${typeName(value)}`);
  }
  return value as TypedArrayOf<N>;
}

export function expectFloat32Array(value: unknown, name: string): Float32Array {
  return expectTypedArray(value, 'Float32Array', name);
}

/** An integer number in [min, max]. */
export function expectInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw new TypeError(`Expected "${name}" to be a number, got ${typeName(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" must be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}

export function expectBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`Expected "${name}" to be a boolean, got ${typeName(value)}`);
  return value;
}

export function expectOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw new TypeError(`Expected "${name}" to be a string, got ${typeName(value)}`);
  if (!allowed.includes(value as T)) {
    throw new RangeError(`"${name}" must be one of ${allowed.join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

/** An options object with only known keys: a misspelt option is an error, not silently ignored. */
export function expectOptions<T extends object>(
  value: unknown,
  name: string,
  known: readonly (keyof T & string)[],
): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`Expected "${name}" to be an object, got ${typeName(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key as keyof T & string)) {
      throw new TypeError(`Unknown option "${key}" in "${name}" (known options: ${known.join(', ')})`);
    }
  }
  return value as Partial<T>;
}

/** A required option, read after expectOptions. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new TypeError(`Missing required option "${name}"`);
  return value;
}

/** A seed or counter: a BigInt in [0, 2^64) or a non-negative safe integer. */
export function expectU64(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`"${name}" must be in [0, 2^64), got ${show(value)}`);
    return value;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`"${name}" must be a non-negative safe integer or a bigint, got ${show(value)}`);
    }
    return BigInt(value);
  }
  throw new TypeError(`Expected "${name}" to be a bigint or a number, got ${typeName(value)}`);
}

/** The most elements a shape argument may describe; larger shapes are refused before anything is allocated. */
export const MAX_ELEMENTS = 2 ** 40;

/** The element count of a shape (the product of its factors); RangeError when it exceeds MAX_ELEMENTS. */
export function shapeCount(...factors: number[]): number {
  const n = factors.reduce((a, b) => a * b, 1);
  if (n > MAX_ELEMENTS) throw new RangeError(`the shape holds ${n} values, more than 2^40`);
  return n;
}

/** A Float32Array of exactly `length` values (TypeError for another type, RangeError for another length). */
export function expectFloat32Length(value: unknown, name: string, length: number): Float32Array {
  const a = expectFloat32Array(value, name);
  if (a.length !== length) throw new RangeError(`"${name}" must hold ${length} values, got ${a.length}`);
  return a;
}

/** An optional finite number: `fallback` when undefined, TypeError when not a number, RangeError when not finite. */
export function expectFinite(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`Expected "${name}" to be a number, got ${typeName(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`"${name}" must be finite, got ${value}`);
  return value;
}

/** Per-head slopes (ALiBi) as float32: a Float32Array, Float64Array or array of `count` finite numbers. */
export function expectSlopes(value: unknown, name: string, count: number): Float32Array {
  if (!types.isFloat32Array(value) && !types.isFloat64Array(value) && !Array.isArray(value)) {
    throw new TypeError(`Expected "${name}" to be a Float32Array, Float64Array or array, got ${typeName(value)}`);
  }
  const slopes = Float32Array.from(value as ArrayLike<number>);
  if (slopes.length !== count) throw new RangeError(`"${name}" must hold ${count} values, got ${slopes.length}`);
  if (!slopes.every(Number.isFinite)) throw new RangeError(`"${name}" must be finite`);
  return slopes;
}

export type StorageDType = 'float32' | 'float16' | 'bfloat16';

/** Tensor storage: a Float32Array (float32), or a Uint16Array of float16 or bfloat16 bits as `dtype` says. */
export function expectStorage(value: unknown, name: string, dtype: unknown): { data: Float32Array | Uint16Array; dtype: StorageDType } {
  const d = dtype === undefined ? undefined : expectOneOf(dtype, 'dtype', ['float32', 'float16', 'bfloat16'] as const);
  if (types.isFloat32Array(value)) {
    if (d !== undefined && d !== 'float32') throw new TypeError(`"${name}" is a Float32Array but "dtype" is ${d}`);
    return { data: value, dtype: 'float32' };
  }
  if (types.isUint16Array(value)) {
    if (d === undefined) throw new TypeError('"dtype" is required for Uint16Array data: "float16" or "bfloat16"');
    if (d === 'float32') throw new TypeError(`"${name}" is a Uint16Array but "dtype" is float32`);
    return { data: value, dtype: d };
  }
  throw new TypeError(`Expected "${name}" to be a Float32Array (float32) or Uint16Array (float16, bfloat16), got ${typeName(value)}`);
}

/** True when two views share any byte of memory. */
export function viewsOverlap(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** A Float32Array whose memory is not zero-filled first: for outputs a kernel overwrites entirely. */
export function uninitializedFloat32(length: number): Float32Array {
  return new Float32Array(Buffer.allocUnsafeSlow(length * 4).buffer, 0, length);
}
