// Exact Chamfer (MaxSim) similarity between a multi-vector query and multi-vector documents.
import { binding } from '../native/load.js';
import { expectFloat32Array, expectInteger } from '../core/validate.js';
import { checkClouds } from './encoder.js';

function check(query: unknown, docs: unknown, lengths: unknown, dim: unknown): number {
  const d = expectInteger(dim, 'dim', 1, 2 ** 20);
  const q = expectFloat32Array(query, 'query');
  if (q.length === 0 || q.length % d !== 0) {
    throw new RangeError(`"query" must hold one or more tokens of dim (${d}) floats, got ${q.length} floats`);
  }
  checkClouds(docs, lengths, d, 'docs');
  return d;
}

/**
 * For each document (`lengths[i]` consecutive rows of `docs`), the sum over query tokens of the largest dot product
 * with any of its tokens. Exact float32 arithmetic (fused multiply-adds in a fixed order; compared with float64 the
 * relative error is about 1e-7 × dim), blocked like a matrix product with no score matrix stored, SIMD and threaded.
 */
export function chamferScores(query: Float32Array, docs: Float32Array, lengths: Int32Array, dim: number): Float32Array {
  return binding().chamferScores(query, docs, lengths, check(query, docs, lengths, dim));
}

/** chamferScores() on worker threads. Do not modify the inputs until the promise settles. */
export async function chamferScoresAsync(query: Float32Array, docs: Float32Array, lengths: Int32Array, dim: number): Promise<Float32Array> {
  return binding().chamferScoresAsync(query, docs, lengths, check(query, docs, lengths, dim));
}
