// Relative-position biases that replace rotary positions: ALiBi slopes and T5's relative position buckets.
import { expectBoolean, expectInteger, expectOptions, expectTypedArray } from '../core/validate.js';

/**
 * ALiBi head slopes (Press et al. 2022, arXiv 2108.12409): for a power of two n, 2^(−8/n), 2^(−16/n), ...; otherwise
 * the slopes of the nearest lower power of two c, then every other slope of 2c, up to n (the reference's interleave).
 * The bias of query i and key j in head h is −slopes[h] · (i − j).
 */
export function alibiSlopes(heads: number): Float64Array {
  const n = expectInteger(heads, 'heads', 1, 1 << 20);
  const powerOfTwo = (m: number) => {
    const start = 2 ** (-8 / m);
    return Array.from({ length: m }, (_, h) => start ** (h + 1));
  };
  const c = 2 ** Math.floor(Math.log2(n));
  if (c === n) return Float64Array.from(powerOfTwo(n));
  const extra = powerOfTwo(2 * c).filter((_, i) => i % 2 === 0).slice(0, n - c);
  return Float64Array.from([...powerOfTwo(c), ...extra]);
}

export interface T5BucketOptions {
  /** Encoder (true, default): separate buckets for keys before and after the query; decoder: only the past counts. */
  bidirectional?: boolean;
  numBuckets?: number;
  maxDistance?: number;
}

/**
 * T5's relative position buckets (transformers' T5Attention._relative_position_bucket) of relative positions
 * key − query: half the buckets (per direction) are exact distances, the rest logarithmic up to maxDistance.
 * The logarithm is computed in float32 as the reference does, so buckets agree at their edges too.
 */
export function t5RelativeBucket(relativePositions: Int32Array, options?: T5BucketOptions): Int32Array {
  const rel = expectTypedArray(relativePositions, 'Int32Array', 'relativePositions');
  const o = expectOptions<T5BucketOptions>(options, 'options', ['bidirectional', 'numBuckets', 'maxDistance']);
  const bidirectional = expectBoolean(o.bidirectional, 'bidirectional', true);
  const numBuckets = o.numBuckets === undefined ? 32 : expectInteger(o.numBuckets, 'numBuckets', bidirectional ? 4 : 2, 1 << 20);
  const maxDistance = o.maxDistance === undefined ? 128 : expectInteger(o.maxDistance, 'maxDistance', 1);
  const perDirection = bidirectional ? Math.floor(numBuckets / 2) : numBuckets;
  const maxExact = Math.floor(perDirection / 2);
  if (maxExact < 1) throw new RangeError(`"numBuckets" (${numBuckets}) leaves no exact buckets`);
  if (maxDistance <= maxExact) throw new RangeError(`"maxDistance" (${maxDistance}) must exceed the exact range (${maxExact})`);
  const f = Math.fround;
  const logRange = f(Math.log(maxDistance / maxExact));  // a Python float, used by torch as float32
  const out = new Int32Array(rel.length);
  for (let i = 0; i < rel.length; i++) {
    const r = rel[i]!;
    let bucket = 0, n: number;
    if (bidirectional) {
      if (r > 0) bucket += perDirection;
      n = Math.abs(r);
    } else {
      n = Math.max(-r, 0);
    }
    if (n < maxExact) {
      bucket += n;
    } else {
      const scaled = f(f(f(Math.log(f(n / maxExact))) / logRange) * (perDirection - maxExact));
      bucket += Math.min(perDirection - 1, maxExact + Math.trunc(scaled));
    }
    out[i] = bucket;
  }
  return out;
}
