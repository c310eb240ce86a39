// Embedding post-processing against float64 references written here: relative representations (cosines with the
// anchors), whitening (mean, covariance and a cyclic Jacobi eigendecomposition, or for a sample with fewer rows than
// dimensions the eigenpairs of its Gram matrix), and projection onto the orthogonal complement (Gram-Schmidt).
// Inputs are fresh seeded random data and 100 real ada-002 vectors from /work/shared/data; outputs start poisoned
// (NaN) so an element a kernel skips shows.
//
// Error bounds (max |got − want| / max |want| unless stated): relative representations 1e-6 absolute on 45-d random
// data, 1e-5 absolute on 1536-d ada-002 vectors (float32 products; measured 1.9e-6); whitening 1e-5, and the whitened
// sample's covariance within 1e-5 of diag(λ / (λ + ε)); projectOut 1e-7 (float64 arithmetic, one float32 rounding),
// and every output orthogonal to every direction within 1e-7 |v|.
import { describe, expect, it } from 'vitest';

import {
  capabilities,
  DisposedError,
  projectOut,
  projectOutAsync,
  RelativeProjector,
  relativeRepresentation,
  relativeRepresentationAsync,
  setSimd,
  setThreads,
  Whitening,
  type WhiteningJSON,
} from '../src/index.js';
import { binding } from '../src/native/load.js';
import { loadAda2, poisoned, randomFloats, sameBytes, sharedDataAvailable } from './helpers.js';

/** max |got − want| / max |want| (the absolute error for an all-zero want); Infinity for NaN. */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let scale = 0, worst = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= Number.MAX_VALUE)) return Infinity;
    worst = Math.max(worst, d);
  }
  return scale === 0 ? worst : worst / scale;
}

function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= Number.MAX_VALUE)) return Infinity;
    worst = Math.max(worst, d);
  }
  return worst;
}

function row(x: ArrayLike<number>, i: number, dim: number): Float64Array {
  return Float64Array.from({ length: dim }, (_, d) => x[i * dim + d]!);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function unit(v: Float64Array): Float64Array {
  const n = Math.sqrt(dot(v, v));
  return n === 0 ? v : v.map((x) => x / n);
}

/** Restores the thread count after a test that changes it. */
async function withThreads<T>(threads: number, f: () => T | Promise<T>): Promise<T> {
  const before = capabilities().threads;
  setThreads(threads);
  try {
    return await f();
  } finally {
    setThreads(before);
  }
}

// ---- relative representations ------------------------------------------------------------------------------------

function relativeReference(v: ArrayLike<number>, a: ArrayLike<number>, dim: number, normalize: boolean): Float64Array {
  const n = v.length / dim, m = a.length / dim;
  const anchors = Array.from({ length: m }, (_, j) => unit(row(a, j, dim)));
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const u = unit(row(v, i, dim));
    let r = Float64Array.from(anchors, (w) => dot(u, w));
    if (normalize) r = unit(r);
    out.set(r, i * m);
  }
  return out;
}

describe('relativeRepresentation', () => {
  it('matches float64 cosines on random data (odd dim, not a multiple of 16), zero rows give zeros', () => {
    const dim = 45, n = 77, m = 13;
    const v = randomFloats(n * dim, 1, 3);
    const a = randomFloats(m * dim, 2);
    v.fill(0, 5 * dim, 6 * dim); // a zero vector
    a.fill(0, 4 * dim, 5 * dim); // a zero anchor
    for (const normalize of [false, true]) {
      const out = poisoned(n * m);
      expect(relativeRepresentation(v, a, { dim, normalize, out })).toBe(out);
      expect(maxAbsDiff(out, relativeReference(v, a, dim, normalize))).toBeLessThan(1e-6);
      for (let j = 0; j < m; j++) expect(out[5 * m + j]).toBe(0);
      for (let i = 0; i < n; i++) expect(out[i * m + 4]).toBe(0);
    }
    // normalize defaults to true: unit output rows.
    const d = relativeRepresentation(v, a, { dim });
    expect(sameBytes(d, relativeRepresentation(v, a, { dim, normalize: true }))).toBe(true);
    expect(Math.abs(dot(d.subarray(0, m), d.subarray(0, m)) - 1)).toBeLessThan(1e-6);
  });

  it.skipIf(!sharedDataAvailable('ada2-sample100'))('matches float64 cosines on real ada-002 vectors (1536-d)', async () => {
    const { vectors, dim } = loadAda2();
    const v = vectors.subarray(0, 90 * dim), a = vectors.subarray(90 * dim);
    const out = poisoned(90 * 10);
    relativeRepresentation(v, a, { dim, normalize: false, out });
    const want = relativeReference(v, a, dim, false);
    // float32 products over 1536 terms: measured 1.9e-6.
    expect(maxAbsDiff(out, want)).toBeLessThan(1e-5);
    // ada-002 cosines sit in about [0.6, 1]: the reference is not trivially near zero.
    expect(Math.min(...want)).toBeGreaterThan(0.5);
    const async = await relativeRepresentationAsync(v, a, { dim, normalize: false });
    expect(sameBytes(async, out)).toBe(true);
  });

  it('edge sizes: no rows, one row, dim 1, more threads than rows; the same bits for any thread count', async () => {
    expect(relativeRepresentation(new Float32Array(0), new Float32Array(6), { dim: 3 })).toEqual(new Float32Array(0));
    const one = relativeRepresentation(new Float32Array([2, 0, 0]), new Float32Array([0, 5, 0, 3, 0, 0]), { dim: 3, normalize: false });
    expect(Array.from(one)).toEqual([0, 1]);
    const d1 = relativeRepresentation(new Float32Array([-2, 0, 3]), new Float32Array([4, -1]), { dim: 1, normalize: false });
    expect(Array.from(d1)).toEqual([-1, 1, 0, 0, 1, -1]);
    const dim = 17, n = 3, m = 40;
    const v = randomFloats(n * dim, 3), a = randomFloats(m * dim, 4);
    const serial = await withThreads(1, () => relativeRepresentation(v, a, { dim }));
    const wide = await withThreads(8, () => relativeRepresentation(v, a, { dim }));
    expect(sameBytes(serial, wide)).toBe(true);
    const big = randomFloats(300 * dim, 5);
    const b1 = await withThreads(1, () => relativeRepresentation(big, a, { dim }));
    const b3 = await withThreads(3, () => relativeRepresentationAsync(big, a, { dim }));
    expect(sameBytes(b1, b3)).toBe(true);
  });

  it('rejects bad input with TypeError or RangeError naming the argument', async () => {
    const v = new Float32Array(6), a = new Float32Array(4);
    expect(() => relativeRepresentation([] as unknown as Float32Array, a, { dim: 2 })).toThrow(TypeError);
    expect(() => relativeRepresentation(v, new Float64Array(4) as unknown as Float32Array, { dim: 2 })).toThrow(/"anchors"/);
    expect(() => relativeRepresentation(v, a, { dim: 4 })).toThrow(/"vectors" length \(6\) is not a multiple/);
    expect(() => relativeRepresentation(v, new Float32Array(0), { dim: 2 })).toThrow(/at least one anchor/);
    expect(() => relativeRepresentation(v, a, { dim: 0 })).toThrow(RangeError);
    expect(() => relativeRepresentation(v, a, { dim: 2.5 })).toThrow(/"dim"/);
    expect(() => relativeRepresentation(v, a, undefined as unknown as { dim: number })).toThrow(TypeError);
    expect(() => relativeRepresentation(v, a, { dim: 2, normalise: true } as unknown as { dim: number })).toThrow(/Unknown option "normalise"/);
    expect(() => relativeRepresentation(v, a, { dim: 2, normalize: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => relativeRepresentation(v, a, { dim: 2, out: new Float32Array(5) })).toThrow(/"out" must hold 6/);
    const shared = new Float32Array(12);
    expect(() => relativeRepresentation(shared.subarray(0, 6), a, { dim: 2, out: shared.subarray(4, 10) })).toThrow(/overlap/);
    await expect(relativeRepresentationAsync(v, a, { dim: 4 })).rejects.toThrow(RangeError);
  });
});

describe('RelativeProjector', () => {
  it('keeps normalised anchors and gives the same bits as relativeRepresentation; dispose() ends it', async () => {
    const dim = 31, m = 9;
    const a = randomFloats(m * dim, 11, 4);
    a.fill(0, 0, dim);
    const v = randomFloats(50 * dim, 12);
    const p = new RelativeProjector(a, { dim });
    expect(p.dim).toBe(dim);
    expect(p.anchorCount).toBe(m);
    const anchors = p.anchors;
    for (let j = 0; j < m; j++) {
      const r = anchors.subarray(j * dim, (j + 1) * dim);
      expect(Math.abs(dot(r, r) - (j === 0 ? 0 : 1))).toBeLessThan(1e-6);
    }
    for (const normalize of [true, false]) {
      const want = relativeRepresentation(v, a, { dim, normalize });
      const out = poisoned(50 * m);
      expect(sameBytes(p.transform(v, { normalize, out }), want)).toBe(true);
      expect(sameBytes(await p.transformAsync(v, { normalize }), want)).toBe(true);
    }
    a.fill(7); // the projector copied the anchors
    expect(sameBytes(p.transform(v), relativeRepresentation(v, anchors, { dim }))).toBe(true);
    expect(() => p.transform(new Float32Array(dim + 1))).toThrow(RangeError);
    expect(() => p.transform(v, { dim } as unknown as { normalize: boolean })).toThrow(/Unknown option "dim"/);
    expect(() => new RelativeProjector(a, { dim: 7 })).toThrow(/multiple/);
    expect(() => new RelativeProjector(new Float32Array(0), { dim })).toThrow(RangeError);
    p.dispose();
    expect(p.disposed).toBe(true);
    expect(() => p.transform(v)).toThrow(DisposedError);
    p.dispose();
  });
});

// ---- whitening ---------------------------------------------------------------------------------------------------

/** Cyclic Jacobi on a symmetric float64 matrix: eigenvalues descending and eigenvectors as columns. */
function jacobiEigen(input: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    for (let r = 0; r < n; r++) vectors[r * n + j] = v[r * n + src]!;
  });
  return { values, vectors };
}

function meanOf(x: Float32Array, n: number, dim: number): Float64Array {
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mu[d] += x[i * dim + d]!;
  return mu.map((s) => s / n);
}

function covarianceOf(x: ArrayLike<number>, n: number, dim: number, mu?: Float64Array): Float64Array {
  const c = new Float64Array(dim * dim);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < dim; p++) {
      const xp = x[i * dim + p]! - (mu ? mu[p]! : 0);
      for (let q = 0; q < dim; q++) c[p * dim + q] += xp * (x[i * dim + q]! - (mu ? mu[q]! : 0));
    }
  }
  return c.map((s) => s / (n - 1));
}

/** Reference whitened output (x − μ) u_j / sqrt(λ_j + ε) for the first k eigenpairs. */
function whitenReference(x: Float32Array, n: number, dim: number, mu: Float64Array, values: Float64Array, vectors: (j: number) => Float64Array, k: number, eps: number): Float64Array {
  const out = new Float64Array(n * k);
  for (let j = 0; j < k; j++) {
    const u = vectors(j);
    const s = 1 / Math.sqrt(Math.max(values[j]!, 0) + eps);
    for (let i = 0; i < n; i++) {
      let t = 0;
      for (let d = 0; d < dim; d++) t += (x[i * dim + d]! - mu[d]!) * u[d]!;
      out[i * k + j] = t * s;
    }
  }
  return out;
}

/** Flips each output column of `got` to the reference's sign (eigenvectors are defined up to sign). */
function alignSigns(got: Float32Array, want: Float64Array, n: number, k: number): Float64Array {
  const out = Float64Array.from(got);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += got[i * k + j]! * want[i * k + j]!;
    if (s < 0) for (let i = 0; i < n; i++) out[i * k + j] = -out[i * k + j]!;
  }
  return out;
}

/** Data with a known, well-conditioned covariance: independent columns of scales 1 .. 4 mixed by a rotation. */
function anisotropic(n: number, dim: number, seed: number): Float32Array {
  const g = randomFloats(n * dim, seed);
  const q = jacobiEigen(covarianceOf(randomFloats(3 * dim * dim, seed + 1), 3 * dim, dim), dim).vectors;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) {
      let s = 10 + d; // an offset the centring must remove
      for (let k = 0; k < dim; k++) s += q[d * dim + k]! * g[i * dim + k]! * (1 + (3 * k) / dim);
      x[i * dim + d] = s;
    }
  }
  return x;
}

describe('Whitening', () => {
  it('whitens a random sample to identity covariance and matches a float64 Jacobi reference', async () => {
    const n = 500, dim = 23;
    const x = anisotropic(n, dim, 21);
    const w = Whitening.fit(x, { dim });
    expect(w.dim).toBe(dim);
    expect(w.outputDim).toBe(dim);
    expect(w.epsilon).toBe(1e-6);
    const mu = meanOf(x, n, dim);
    expect(relativeError(w.mean, mu)).toBeLessThan(1e-7);
    const ref = jacobiEigen(covarianceOf(x, n, dim, mu), dim);
    expect(relativeError(w.eigenvalues, ref.values)).toBeLessThan(1e-12);
    expect(Math.min(...ref.values)).toBeGreaterThan(0.5); // λ / (λ + ε) is 1 within 2e-6
    const out = poisoned(n * dim);
    w.transform(x, { out });
    const cov = covarianceOf(out, n, dim);
    for (let p = 0; p < dim; p++) for (let q = 0; q < dim; q++) cov[p * dim + q] -= p === q ? 1 : 0;
    expect(Math.max(...cov.map(Math.abs))).toBeLessThan(1e-5);
    const want = whitenReference(x, n, dim, mu, ref.values, (j) => Float64Array.from({ length: dim }, (_, r) => ref.vectors[r * dim + j]!), dim, 1e-6);
    expect(relativeError(alignSigns(out, want, n, dim), want)).toBeLessThan(1e-5);
    // The sign rule: each column of the matrix has its largest-magnitude entry positive.
    const m = w.matrix;
    for (let j = 0; j < dim; j++) {
      let arg = 0;
      for (let r = 1; r < dim; r++) if (Math.abs(m[r * dim + j]!) > Math.abs(m[arg * dim + j]!)) arg = r;
      expect(m[arg * dim + j]).toBeGreaterThan(0);
    }
    // Async forms give the same bits.
    const wa = await Whitening.fitAsync(x, { dim });
    expect(sameBytes(wa.matrix, w.matrix)).toBe(true);
    expect(sameBytes(await wa.transformAsync(x), out)).toBe(true);
  });

  it('keeps the leading components, normalises on request, and fits the same bits for any thread count', async () => {
    const n = 200, dim = 33, k = 7;
    const x = anisotropic(n, dim, 31);
    const w = Whitening.fit(x, { dim, components: k, epsilon: 0.01 });
    expect(w.outputDim).toBe(k);
    expect(w.matrix.length).toBe(dim * k);
    const mu = meanOf(x, n, dim);
    const ref = jacobiEigen(covarianceOf(x, n, dim, mu), dim);
    const out = w.transform(x);
    const want = whitenReference(x, n, dim, mu, ref.values, (j) => Float64Array.from({ length: dim }, (_, r) => ref.vectors[r * dim + j]!), k, 0.01);
    expect(relativeError(alignSigns(out, want, n, k), want)).toBeLessThan(1e-5);
    const cov = covarianceOf(out, n, k);
    for (let j = 0; j < k; j++) expect(Math.abs(cov[j * k + j]! - ref.values[j]! / (ref.values[j]! + 0.01))).toBeLessThan(1e-5);
    const unitRows = w.transform(x, { normalize: true });
    for (let i = 0; i < n; i++) {
      const r = unitRows.subarray(i * k, (i + 1) * k);
      expect(Math.abs(dot(r, r) - 1)).toBeLessThan(1e-6);
      const u = unit(row(out, i, k));
      expect(maxAbsDiff(r, u)).toBeLessThan(1e-6);
    }
    const one = await withThreads(1, () => Whitening.fit(x, { dim, components: k, epsilon: 0.01 }));
    const many = await withThreads(5, () => Whitening.fit(x, { dim, components: k, epsilon: 0.01 }));
    expect(sameBytes(one.matrix, many.matrix)).toBe(true);
    expect(sameBytes(one.eigenvalues, many.eigenvalues)).toBe(true);
    const t1 = await withThreads(1, () => w.transform(x));
    const t8 = await withThreads(8, () => w.transform(x.subarray(0, 3 * dim)));
    expect(sameBytes(t1.subarray(0, 3 * k), t8)).toBe(true);
  });

  it('edge sizes: one sample row, dim 1, transform of no rows, every SIMD level agrees with the reference', () => {
    const w1 = Whitening.fit(new Float32Array([1, 2, 3]), { dim: 3 });
    expect(Array.from(w1.mean)).toEqual([1, 2, 3]);
    expect(Array.from(w1.eigenvalues)).toEqual([0, 0, 0]);
    expect(Array.from(w1.transform(new Float32Array([1, 2, 4])))).toEqual([0, 0, Math.fround(1 / Math.sqrt(1e-6))]);
    const d1 = Whitening.fit(new Float32Array([1, 3, 5]), { dim: 1 });
    expect(d1.eigenvalues[0]).toBe(4);
    expect(Math.abs(d1.matrix[0]! - 1 / Math.sqrt(4 + 1e-6))).toBeLessThan(1e-7);
    expect(d1.transform(new Float32Array(0))).toEqual(new Float32Array(0));
    const n = 90, dim = 19;
    const x = anisotropic(n, dim, 41);
    const w = Whitening.fit(x, { dim, components: 18 });
    const before = capabilities().simd;
    const want = w.transform(x);
    try {
      for (const level of ['scalar', 'avx2', 'avx512'] as const) {
        try {
          setSimd(level);
        } catch {
          continue; // this CPU cannot run the level
        }
        expect(relativeError(w.transform(x), want)).toBeLessThan(1e-6);
      }
    } finally {
      setSimd(before);
    }
  });

  it.skipIf(!sharedDataAvailable('ada2-sample100'))('fits 100 real ada-002 vectors (1536-d, rank deficient) against their Gram matrix eigenpairs', async () => {
    const { vectors: x, dim, count: n } = loadAda2();
    const w = await Whitening.fitAsync(x, { dim });
    const out = w.transform(x);
    for (const value of out) expect(Number.isFinite(value)).toBe(true);
    // Reference: the nonzero eigenpairs of Σ = Xcᵀ Xc / (n − 1) from the n × n Gram matrix G = Xc Xcᵀ / (n − 1):
    // G v = λ v gives Σ (Xcᵀ v) = λ (Xcᵀ v), u = Xcᵀ v / sqrt((n − 1) λ).
    const mu = meanOf(x, n, dim);
    const xc = new Float64Array(n * dim);
    for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) xc[i * dim + d] = x[i * dim + d]! - mu[d]!;
    const gram = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram[i * n + j] = dot(xc.subarray(i * dim, (i + 1) * dim), xc.subarray(j * dim, (j + 1) * dim)) / (n - 1);
    const g = jacobiEigen(gram, n);
    const rank = n - 1; // centring removes one dimension
    const eig = w.eigenvalues;
    expect(relativeError(eig.subarray(0, rank), g.values.subarray(0, rank))).toBeLessThan(1e-10);
    for (let j = rank; j < dim; j++) expect(Math.abs(eig[j]!)).toBeLessThan(1e-12 * eig[0]!);
    const k = 60;
    const u = (j: number) => {
      const v = new Float64Array(dim);
      for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) v[d] += xc[i * dim + d]! * g.vectors[i * n + j]!;
      return v.map((t) => t / Math.sqrt((n - 1) * g.values[j]!));
    };
    const want = whitenReference(x, n, dim, mu, g.values, u, k, 1e-6);
    const got = new Float32Array(n * k);
    for (let i = 0; i < n; i++) got.set(out.subarray(i * dim, i * dim + k), i * k);
    expect(relativeError(alignSigns(got, want, n, k), want)).toBeLessThan(1e-5);
    // The whitened sample's covariance: λ / (λ + ε) on the diagonal (about 1 where λ ≫ ε, 0 in the null space).
    const m = 110;
    const head = new Float32Array(n * m);
    for (let i = 0; i < n; i++) head.set(out.subarray(i * dim, i * dim + m), i * m);
    const cov = covarianceOf(head, n, m);
    for (let p = 0; p < m; p++) {
      for (let q = 0; q < m; q++) {
        const expected = p === q ? Math.max(eig[p]!, 0) / (Math.max(eig[p]!, 0) + 1e-6) : 0;
        expect(Math.abs(cov[p * m + q]! - expected)).toBeLessThan(1e-5);
      }
    }
  }, 120_000);

  it('round-trips through toJSON / fromJSON and rejects damaged JSON', () => {
    const n = 60, dim = 11;
    const x = anisotropic(n, dim, 51);
    const w = Whitening.fit(x, { dim, components: 5, epsilon: 1e-4 });
    const json = JSON.parse(JSON.stringify(w)) as WhiteningJSON;
    expect(json.type).toBe('Whitening');
    expect(json.version).toBe(1);
    const back = Whitening.fromJSON(json);
    expect(back.dim).toBe(dim);
    expect(back.outputDim).toBe(5);
    expect(back.epsilon).toBe(1e-4);
    expect(sameBytes(back.mean, w.mean)).toBe(true);
    expect(sameBytes(back.matrix, w.matrix)).toBe(true);
    expect(sameBytes(back.eigenvalues, w.eigenvalues)).toBe(true);
    expect(sameBytes(back.transform(x), w.transform(x))).toBe(true);
    expect(() => Whitening.fromJSON(null as unknown as WhiteningJSON)).toThrow(TypeError);
    expect(() => Whitening.fromJSON({ ...json, type: 'Other' } as unknown as WhiteningJSON)).toThrow(TypeError);
    expect(() => Whitening.fromJSON({ ...json, version: 2 } as unknown as WhiteningJSON)).toThrow(/version 2/);
    expect(() => Whitening.fromJSON({ ...json, outputDim: 12 })).toThrow(/"outputDim"/);
    expect(() => Whitening.fromJSON({ ...json, mean: json.mean.slice(1) })).toThrow(/"mean" must hold 11/);
    expect(() => Whitening.fromJSON({ ...json, matrix: json.matrix.map(() => 'x') as unknown as number[] })).toThrow(TypeError);
    expect(() => Whitening.fromJSON({ ...json, eigenvalues: json.eigenvalues.map(() => NaN) })).toThrow(/finite/);
    expect(() => Whitening.fromJSON({ ...json, epsilon: -1 })).toThrow(/"epsilon"/);
  });

  it('rejects bad input with TypeError or RangeError naming the argument', async () => {
    const x = new Float32Array(12);
    expect(() => Whitening.fit([] as unknown as Float32Array, { dim: 3 })).toThrow(TypeError);
    expect(() => Whitening.fit(x, { dim: 5 })).toThrow(/"sample" length \(12\) is not a multiple/);
    expect(() => Whitening.fit(new Float32Array(0), { dim: 3 })).toThrow(/at least one row/);
    expect(() => Whitening.fit(x, { dim: 3, components: 4 })).toThrow(/"components"/);
    expect(() => Whitening.fit(x, { dim: 3, components: 0 })).toThrow(RangeError);
    expect(() => Whitening.fit(x, { dim: 3, epsilon: -1 })).toThrow(/"epsilon"/);
    expect(() => Whitening.fit(x, { dim: 3, epsilon: '1' as unknown as number })).toThrow(TypeError);
    expect(() => Whitening.fit(x, { dim: 2 ** 17 })).toThrow(/"dim"/);
    expect(() => Whitening.fit(x, { dim: 3, eps: 1 } as unknown as { dim: number })).toThrow(/Unknown option "eps"/);
    expect(() => Whitening.fit(x, undefined as unknown as { dim: number })).toThrow(TypeError);
    const bad = new Float32Array(12);
    bad[4] = NaN;
    expect(() => Whitening.fit(bad, { dim: 3 })).toThrow(/"sample" must be finite, got NaN at index 4/);
    await expect(Whitening.fitAsync(bad, { dim: 3 })).rejects.toThrow(RangeError);
    // Four rows in five dimensions: rank 3, so epsilon 0 cannot scale the two zero-variance components.
    const deficient = randomFloats(20, 9);
    expect(() => Whitening.fit(deficient, { dim: 5, epsilon: 0 })).toThrow(/"epsilon" is 0 but a kept component has zero variance/);
    await expect(Whitening.fitAsync(deficient, { dim: 5, epsilon: 0 })).rejects.toThrow(/zero variance/);
    expect(Whitening.fit(deficient, { dim: 5, epsilon: 0, components: 3 }).outputDim).toBe(3);
    const w = Whitening.fit(randomFloats(30, 3), { dim: 3, components: 2 });
    expect(() => w.transform(new Float32Array(4))).toThrow(/"vectors" length \(4\)/);
    expect(() => w.transform(x, { out: new Float32Array(7) })).toThrow(/"out" must hold 8/);
    expect(() => w.transform(x, { out: x.subarray(0, 8) })).toThrow(/overlap/);
    expect(() => w.transform(x, { normalize: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => w.transform(x, { components: 1 } as unknown as { normalize: boolean })).toThrow(/Unknown option/);
    await expect(w.transformAsync(new Float32Array(4))).rejects.toThrow(RangeError);
  });
});

// ---- projectOut --------------------------------------------------------------------------------------------------

/** Classical Gram-Schmidt with reorthogonalisation in float64, dropping directions below 1e-10 of their norm. */
function basisReference(directions: ArrayLike<number>, dim: number): Float64Array[] {
  const basis: Float64Array[] = [];
  for (let k = 0; k < directions.length / dim; k++) {
    const d = row(directions, k, dim);
    const norm0 = Math.sqrt(dot(d, d));
    if (norm0 === 0) continue;
    for (let pass = 0; pass < 2; pass++) {
      const coefficients = basis.map((u) => dot(u, d));
      basis.forEach((u, j) => u.forEach((x, t) => (d[t] = d[t]! - coefficients[j]! * x)));
    }
    const norm = Math.sqrt(dot(d, d));
    if (norm >= 1e-10 * norm0) basis.push(d.map((x) => x / norm));
  }
  return basis;
}

function projectReference(v: ArrayLike<number>, directions: ArrayLike<number>, dim: number, normalize: boolean): Float64Array {
  const basis = basisReference(directions, dim);
  const n = v.length / dim, out = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    let r = row(v, i, dim);
    const x = row(v, i, dim);
    for (const u of basis) {
      const c = dot(x, u);
      r = r.map((t, d) => t - c * u[d]!);
    }
    if (normalize) r = unit(r);
    out.set(r, i * dim);
  }
  return out;
}

/** max over rows and directions of |out_i · unit(d_j)| / |v_i|. */
function worstAlignment(out: Float32Array, v: Float32Array, directions: Float32Array, dim: number): number {
  let worst = 0;
  for (let i = 0; i < v.length / dim; i++) {
    const o = row(out, i, dim), x = row(v, i, dim);
    const scale = Math.sqrt(dot(x, x)) || 1;
    for (let j = 0; j < directions.length / dim; j++) {
      const u = unit(row(directions, j, dim));
      worst = Math.max(worst, Math.abs(dot(o, u)) / scale);
    }
  }
  return worst;
}

describe('projectOut', () => {
  it('removes the directions: orthogonal outputs equal to a float64 reference; dependent directions dropped', async () => {
    const dim = 53, n = 150;
    const v = randomFloats(n * dim, 61, 2);
    // d0, d1, 2·d0 − d1 (dependent: small integers, exact in float32), a zero direction, d2.
    const base = randomFloats(3 * dim, 62).map((t) => Math.round(t * 8));
    const dirs = new Float32Array(5 * dim);
    dirs.set(base.subarray(0, 2 * dim));
    for (let d = 0; d < dim; d++) dirs[2 * dim + d] = 2 * base[d]! - base[dim + d]!;
    dirs.set(base.subarray(2 * dim), 4 * dim);
    for (const normalize of [false, true]) {
      const out = poisoned(n * dim);
      expect(projectOut(v, dirs, { dim, normalize, out })).toBe(out);
      expect(relativeError(out, projectReference(v, dirs, dim, normalize))).toBeLessThan(1e-7);
      if (!normalize) expect(worstAlignment(out, v, dirs, dim)).toBeLessThan(1e-7);
    }
    // The same bits without the dependent and zero directions; async and in place agree.
    const independent = new Float32Array(3 * dim);
    independent.set(dirs.subarray(0, 2 * dim));
    independent.set(dirs.subarray(4 * dim), 2 * dim);
    const want = projectOut(v, dirs, { dim });
    expect(sameBytes(projectOut(v, independent, { dim }), want)).toBe(true);
    expect(sameBytes(await projectOutAsync(v, dirs, { dim }), want)).toBe(true);
    const inPlace = v.slice();
    expect(projectOut(inPlace, dirs, { dim, out: inPlace })).toBe(inPlace);
    expect(sameBytes(inPlace, want)).toBe(true);
  });

  it.skipIf(!sharedDataAvailable('ada2-sample100'))('removes the common direction and two topics from real ada-002 vectors', () => {
    const { vectors, dim, count } = loadAda2();
    const mu = meanOf(vectors, count, dim);
    const dirs = new Float32Array(3 * dim);
    dirs.set(Float32Array.from(mu));
    dirs.set(vectors.subarray(0, 2 * dim), dim);
    const out = poisoned(count * dim);
    projectOut(vectors, dirs, { dim, out });
    expect(relativeError(out, projectReference(vectors, dirs, dim, false))).toBeLessThan(1e-7);
    expect(worstAlignment(out, vectors, dirs, dim)).toBeLessThan(1e-7);
    // Rows 0 and 1 are themselves directions: almost nothing of them remains.
    for (let i = 0; i < 2; i++) expect(Math.sqrt(dot(out.subarray(i * dim, (i + 1) * dim), out.subarray(i * dim, (i + 1) * dim)))).toBeLessThan(1e-5);
  });

  it('edge sizes: no rows, no directions, dim 1, more threads than rows; the same bits for any thread count', async () => {
    expect(projectOut(new Float32Array(0), new Float32Array(4), { dim: 2 })).toEqual(new Float32Array(0));
    const v = randomFloats(21, 71);
    const copy = projectOut(v, new Float32Array(0), { dim: 7 });
    expect(sameBytes(copy, v)).toBe(true);
    const unitRows = projectOut(v, new Float32Array(0), { dim: 7, normalize: true });
    expect(maxAbsDiff(unitRows, projectReference(v, [], 7, true))).toBeLessThan(1e-7);
    expect(Array.from(projectOut(new Float32Array([3, -2]), new Float32Array([5]), { dim: 1 }))).toEqual([0, 0]);
    const zero = projectOut(new Float32Array([0, 0, 0]), new Float32Array([1, 1, 0]), { dim: 3, normalize: true });
    expect(Array.from(zero)).toEqual([0, 0, 0]);
    const dim = 40, dirs = randomFloats(3 * dim, 72);
    const small = randomFloats(2 * dim, 73);
    const a = await withThreads(8, () => projectOut(small, dirs, { dim }));
    const b = await withThreads(1, () => projectOut(small, dirs, { dim }));
    expect(sameBytes(a, b)).toBe(true);
    const big = randomFloats(333 * dim, 74);
    const c = await withThreads(1, () => projectOut(big, dirs, { dim }));
    const d = await withThreads(4, () => projectOutAsync(big, dirs, { dim }));
    expect(sameBytes(c, d)).toBe(true);
  });

  it('rejects bad input with TypeError or RangeError naming the argument', async () => {
    const v = new Float32Array(6), d = new Float32Array(3);
    expect(() => projectOut(v, [] as unknown as Float32Array, { dim: 3 })).toThrow(TypeError);
    expect(() => projectOut(v, d, { dim: 4 })).toThrow(/"directions" length \(3\)/);
    expect(() => projectOut(v, new Float32Array([1, NaN, 0]), { dim: 3 })).toThrow(/"directions" must be finite/);
    expect(() => projectOut(v, d, { dim: 3, out: new Float32Array(5) })).toThrow(/"out" must hold 6/);
    const shared = new Float32Array(8);
    expect(() => projectOut(shared.subarray(0, 6), d, { dim: 3, out: shared.subarray(2, 8) })).toThrow(/overlap/);
    expect(() => projectOut(v, shared.subarray(0, 3), { dim: 3, out: shared.subarray(0, 6) })).toThrow(/overlap/);
    expect(() => projectOut(v, d, { dim: 3, unit: true } as unknown as { dim: number })).toThrow(/Unknown option "unit"/);
    expect(() => projectOut(v, d, {} as { dim: number })).toThrow(/"dim"/);
    await expect(projectOutAsync(v, d, { dim: 4 })).rejects.toThrow(RangeError);
  });
});

// ---- the raw binding: the native checks behind the TypeScript ones -------------------------------------------------

describe('raw post-processing binding', () => {
  it('rejects wrong shapes, overlaps and values with TypeError or RangeError instead of crashing', async () => {
    const b = binding();
    const f = (n: number) => new Float32Array(n);
    // relativeRepresentation(vectors, anchors, out, n, anchorCount, dim, anchorsNormalized, normalize)
    expect(() => b.relativeRepresentation(f(6), f(4), f(6), 3, 2, 2, false, true)).not.toThrow();
    expect(() => b.relativeRepresentation(f(6), f(4), f(5), 3, 2, 2, false, true)).toThrow(RangeError);
    expect(() => b.relativeRepresentation(f(6), f(4), f(6), 3, 0, 2, false, true)).toThrow(RangeError);
    expect(() => b.relativeRepresentation(f(6), f(4), f(6), 2 ** 40, 2 ** 40, 2, false, true)).toThrow(RangeError);
    expect(() => b.relativeRepresentation(f(6), new Float64Array(4) as unknown as Float32Array, f(6), 3, 2, 2, false, true)).toThrow(TypeError);
    const shared = f(12);
    expect(() => b.relativeRepresentation(shared.subarray(0, 6), f(4), shared.subarray(6, 12), 3, 2, 2, false, true)).not.toThrow();
    expect(() => b.relativeRepresentation(shared.subarray(0, 6), f(4), shared.subarray(5, 11), 3, 2, 2, false, true)).toThrow(/overlaps/);
    expect(() => (b.relativeRepresentation as unknown as (...a: unknown[]) => unknown)(f(6), f(4), f(6), 3, 2, 2, false)).toThrow(TypeError);
    // whiteningFit(sample, mean, matrix, eigenvalues, n, dim, components, epsilon)
    const e = (n: number) => new Float64Array(n);
    expect(() => b.whiteningFit(randomFloats(12, 1), f(3), f(9), e(3), 4, 3, 3, 1e-6)).not.toThrow();
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(3), 4, 3, 4, 1e-6)).toThrow(RangeError);
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(3), 0, 3, 3, 1e-6)).toThrow(RangeError);
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(3), 4, 3, 3, NaN)).toThrow(RangeError);
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(3), 4, 3, 3, -1)).toThrow(RangeError);
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(2), 4, 3, 3, 1e-6)).toThrow(RangeError);
    expect(() => b.whiteningFit(f(12), f(3), f(9), e(3), 4, 3, 3, 0)).toThrow(RangeError); // zero variance, epsilon 0
    await expect(b.whiteningFitAsync(f(12), f(3), f(9), e(3), 4, 3, 3, 0)).rejects.toThrow(RangeError);
    const buffer = f(21);
    expect(() => b.whiteningFit(buffer.subarray(0, 12), buffer.subarray(11, 14), f(9), e(3), 4, 3, 3, 1e-6)).toThrow(/"mean" overlaps/);
    // whiteningTransform(x, out, mean, matrix, n, dim, components, normalize)
    expect(() => b.whiteningTransform(f(6), f(4), f(3), f(6), 2, 3, 2, false)).not.toThrow();
    expect(() => b.whiteningTransform(f(6), f(4), f(3), f(6), 2, 3, 4, false)).toThrow(RangeError);
    expect(() => b.whiteningTransform(f(6), f(4), f(3), f(5), 2, 3, 2, false)).toThrow(RangeError);
    const t = f(10);
    expect(() => b.whiteningTransform(t.subarray(0, 6), t.subarray(6, 10), f(3), f(6), 2, 3, 2, false)).not.toThrow();
    expect(() => b.whiteningTransform(f(6), t.subarray(0, 4), t.subarray(2, 5), f(6), 2, 3, 2, false)).toThrow(/overlaps/);
    // projectOut(vectors, directions, out, n, count, dim, normalize): out may be vectors itself, nothing else
    const v = f(6);
    expect(() => b.projectOut(v, f(3), v, 2, 1, 3, false)).not.toThrow();
    expect(() => b.projectOut(v.subarray(0, 3), f(3), v.subarray(1, 4), 1, 1, 3, false)).toThrow(/overlaps/);
    expect(() => b.projectOut(v, v.subarray(0, 3), f(6), 2, 1, 3, false)).not.toThrow();
    expect(() => b.projectOut(f(6), v.subarray(0, 3), v, 2, 1, 3, false)).toThrow(/overlaps/);
    expect(() => b.projectOut(f(6), new Float32Array([NaN, 0, 0]), f(6), 2, 1, 3, false)).toThrow(RangeError);
    expect(() => b.projectOut(f(6), f(3), f(6), 2, 1, 0, false)).toThrow(RangeError);
    // normalizeRows(x, out, n, dim)
    expect(Array.from(b.normalizeRows(new Float32Array([3, 4]), f(2), 1, 2))).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(() => b.normalizeRows(v.subarray(0, 4), v.subarray(1, 5), 2, 2)).toThrow(/overlaps/);
  });
});
