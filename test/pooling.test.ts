// The pooling heads against float64 references written here from each method's definition (tessera/pooling.h cites
// the sources): token pooling, NV-Embed latent attention, ECAPA-TDNN attentive statistics, DIN target attention.
// Inputs are fresh seeded random data; outputs start poisoned (NaN) so an element the kernel skips shows.
//
// Error bound: float32 kernels against float64 references, max |got − want| / max |want| ≤ 1e-5 (the project's
// numerical contract); token pooling's 'cls' and 'last' are exact copies.
import { describe, expect, it } from 'vitest';

import {
  attentiveStatsPool,
  attentiveStatsPoolAsync,
  capabilities,
  latentAttentionPool,
  latentAttentionPoolAsync,
  poolTokens,
  poolTokensAsync,
  setSimd,
  setThreads,
  targetAttention,
  targetAttentionAsync,
  type AttentiveStatsWeights,
  type LatentAttentionWeights,
  type TargetAttentionWeights,
} from '../src/index.js';
import { poisoned, randomFloats, runNode, sameBytes, seeded } from './helpers.js';

const BOUND = 1e-5;

/** max |got − want| / max |want| (the scale of the output), 0 for two all-zero arrays. */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let scale = 0, worst = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= Number.MAX_VALUE)) return Infinity; // NaN or a poisoned element left behind
    worst = Math.max(worst, d);
  }
  return scale === 0 ? worst : worst / scale;
}

function randomMask(batch: number, seq: number, seed: number, keep = 0.7): Uint8Array {
  const r = seeded(seed);
  return Uint8Array.from({ length: batch * seq }, () => (r() < keep ? 1 : 0));
}

/** A left-padded mask: row b's last lengths[b] positions are real. */
function leftPadded(lengths: number[], seq: number): Int32Array {
  const m = new Int32Array(lengths.length * seq);
  lengths.forEach((n, b) => m.fill(1, b * seq + seq - n, (b + 1) * seq));
  return m;
}

function valid(mask: ArrayLike<number> | undefined, lengths: ArrayLike<number> | undefined, seq: number, b: number, t: number) {
  if (mask) return mask[b * seq + t] !== 0;
  if (lengths) return t < lengths[b]!;
  return true;
}

function l2(row: Float64Array): Float64Array {
  let s = 0;
  for (const x of row) s += x * x;
  const n = Math.max(Math.sqrt(s), 1e-12);
  return s === 0 ? row : row.map((x) => x / n);
}

// ---- token pooling ---------------------------------------------------------------------------------------------

function poolReference(h: Float32Array, batch: number, seq: number, dim: number, mode: string, mask?: ArrayLike<number>, lengths?: ArrayLike<number>, normalize = false) {
  const out = new Float64Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    let row = new Float64Array(dim);
    const picks: number[] = [];
    for (let t = 0; t < seq; t++) if (valid(mask, lengths, seq, b, t)) picks.push(t);
    const use = mode === 'mean' ? picks : mode === 'cls' ? picks.slice(0, 1) : picks.slice(-1);
    for (const t of use) for (let d = 0; d < dim; d++) row[d] += h[(b * seq + t) * dim + d]! / use.length;
    if (normalize) row = l2(row);
    out.set(row, b * dim);
  }
  return out;
}

describe('poolTokens', () => {
  const cases = [
    { batch: 3, seq: 9, dim: 37 },
    { batch: 1, seq: 1, dim: 1 },
    { batch: 5, seq: 17, dim: 64 },
    { batch: 2, seq: 33, dim: 129 },
  ];
  for (const { batch, seq, dim } of cases) {
    for (const mode of ['mean', 'cls', 'last'] as const) {
      it(`${mode}, batch ${batch}, seq ${seq}, dim ${dim}: no mask, a random mask, lengths, left padding, normalized`, () => {
        const h = randomFloats(batch * seq * dim, 11 + dim + seq);
        const mask = randomMask(batch, seq, 5 + batch);
        if (batch > 1) mask.fill(0, seq, 2 * seq); // a fully masked row
        const lengths = Int32Array.from({ length: batch }, (_, b) => (b * 7 + 3) % (seq + 1));
        const left = leftPadded(Array.from({ length: batch }, (_, b) => (b * 5 + 1) % (seq + 1)), seq);
        const variants: Array<[Uint8Array | Int32Array | undefined, Int32Array | undefined, boolean]> = [
          [undefined, undefined, false], [mask, undefined, false], [undefined, lengths, false], [left, undefined, false],
          [mask, undefined, true], [left, undefined, true],
        ];
        for (const [m, len, normalize] of variants) {
          const out = poisoned(batch * dim);
          const got = poolTokens(h, { batch, seq, dim, mode, normalize, out, ...(m ? { mask: m } : {}), ...(len ? { lengths: len } : {}) });
          expect(got).toBe(out);
          const want = poolReference(h, batch, seq, dim, mode, m, len, normalize);
          if (mode !== 'mean' && !normalize) expect(Array.from(got)).toEqual(Array.from(want)); // exact copies
          else expect(relativeError(got, want)).toBeLessThanOrEqual(BOUND);
        }
      });
    }
  }

  it('last token with left padding is each row\'s final position; cls is the first real token', () => {
    const seq = 5, dim = 3, h = randomFloats(2 * seq * dim, 3);
    const mask = leftPadded([2, 5], seq);
    const last = poolTokens(h, { batch: 2, seq, dim, mode: 'last', mask });
    const cls = poolTokens(h, { batch: 2, seq, dim, mode: 'cls', mask });
    expect(Array.from(last)).toEqual([...h.subarray(4 * dim, 5 * dim), ...h.subarray(9 * dim, 10 * dim)]);
    expect(Array.from(cls)).toEqual([...h.subarray(3 * dim, 4 * dim), ...h.subarray(5 * dim, 6 * dim)]);
  });

  it('rows with no valid token (and seq 0, batch 0) give zeros', () => {
    const z = poolTokens(new Float32Array(0), { batch: 2, seq: 0, dim: 4, mode: 'mean', normalize: true });
    expect(Array.from(z)).toEqual(new Array(8).fill(0));
    expect(poolTokens(new Float32Array(0), { batch: 0, seq: 3, dim: 4, mode: 'last' }).length).toBe(0);
    const h = randomFloats(2 * 3 * 4, 9);
    for (const mode of ['mean', 'cls', 'last'] as const) {
      const out = poolTokens(h, { batch: 2, seq: 3, dim: 4, mode, lengths: new Int32Array([0, 3]), normalize: true });
      expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    }
  });

  it('gives the same bits for any thread count, and the async form agrees', async () => {
    const batch = 37, seq = 41, dim = 100;
    const h = randomFloats(batch * seq * dim, 21);
    const mask = randomMask(batch, seq, 22);
    const before = capabilities().threads;
    try {
      setThreads(1);
      const one = poolTokens(h, { batch, seq, dim, mode: 'mean', mask, normalize: true });
      setThreads(Math.max(2, before));
      const many = poolTokens(h, { batch, seq, dim, mode: 'mean', mask, normalize: true });
      expect(sameBytes(one, many)).toBe(true);
      const a = await poolTokensAsync(h, { batch, seq, dim, mode: 'mean', mask, normalize: true });
      expect(sameBytes(one, a)).toBe(true);
    } finally {
      setThreads(before);
    }
  });

  it('rejects bad input with the argument named', () => {
    const h = new Float32Array(2 * 3 * 4);
    const o = { batch: 2, seq: 3, dim: 4, mode: 'mean' as const };
    expect(() => poolTokens([] as unknown as Float32Array, o)).toThrow(TypeError);
    expect(() => poolTokens([] as unknown as Float32Array, o)).toThrow(/"hidden"/);
    expect(() => poolTokens(new Float32Array(5), o)).toThrow(RangeError);
    expect(() => poolTokens(h, { ...o, mode: 'max' as 'mean' })).toThrow(/"mode"/);
    expect(() => poolTokens(h, { ...o, mask: new Float32Array(6) as unknown as Uint8Array })).toThrow(TypeError);
    expect(() => poolTokens(h, { ...o, mask: new Uint8Array(5) })).toThrow(/"mask"/);
    expect(() => poolTokens(h, { ...o, lengths: new Int32Array([1, 4]) })).toThrow(RangeError);
    expect(() => poolTokens(h, { ...o, lengths: new Int32Array([1, 4]) })).toThrow(/"lengths"/);
    expect(() => poolTokens(h, { ...o, mask: new Uint8Array(6), lengths: new Int32Array(2) })).toThrow(RangeError);
    expect(() => poolTokens(h, { ...o, dim: 0 })).toThrow(/"dim"/);
    expect(() => poolTokens(h, { ...o, normalise: true } as unknown as typeof o)).toThrow(/Unknown option "normalise"/);
    expect(() => poolTokens(h, { ...o, out: new Float32Array(7) })).toThrow(/"out"/);
    expect(() => poolTokens(h, { ...o, out: h.subarray(0, 8) })).toThrow(/overlap/);
    expect(() => poolTokens(h, undefined as unknown as typeof o)).toThrow(TypeError);
  });
});

// ---- NV-Embed latent attention ---------------------------------------------------------------------------------

/** erf in float64: Maclaurin series for |x| < 3, the erfc continued fraction beyond (both to ~1e-14). */
function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = x, sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = a; // erfc(a) = exp(-a²)/√π / (a + 1/2 / (a + 1 / (a + 3/2 / (a + …))))
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** y = x Wᵀ + b, W [out, in] row-major (torch.nn.Linear). */
function linear(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined, inF: number, outF: number): Float64Array {
  const y = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < inF; i++) s += w[o * inF + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function layerNorm(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  v /= n;
  return Float64Array.from({ length: n }, (_, i) => ((x[i]! - mean) / Math.sqrt(v + eps)) * w[i]! + b[i]!);
}

interface LatentDims { batch: number; seq: number; dim: number; heads: number; headDim: number; latents: number; ff: number }

function latentWeights(d: LatentDims, seed: number, withOutBias = false): LatentAttentionWeights {
  const inner = d.heads * d.headDim;
  let s = seed;
  const g = (n: number, scale: number) => randomFloats(n, s++, scale);
  const near1 = (n: number) => g(n, 0.1).map((x) => 1 + x);
  return {
    latents: g(d.latents * d.dim, 1),
    normWeight: near1(d.dim), normBias: g(d.dim, 0.1),
    contextNormWeight: near1(d.dim), contextNormBias: g(d.dim, 0.1),
    toQ: g(inner * d.dim, 1 / Math.sqrt(d.dim)),
    toKv: g(2 * inner * d.dim, 1 / Math.sqrt(d.dim)),
    toOut: g(d.dim * inner, 1 / Math.sqrt(inner)),
    ...(withOutBias ? { toOutBias: g(d.dim, 0.1) } : {}),
    ffNormWeight: near1(d.dim), ffNormBias: g(d.dim, 0.1),
    ffIn: g(2 * d.ff * d.dim, 1 / Math.sqrt(d.dim)), ffInBias: g(2 * d.ff, 0.1),
    ffOut: g(d.dim * d.ff, 1 / Math.sqrt(d.ff)), ffOutBias: g(d.dim, 0.1),
  };
}

/** modeling_nvembed.py's LatentAttentionModel.forward, token by token, in float64. */
function latentReference(h: Float32Array, d: LatentDims, w: LatentAttentionWeights, mask?: ArrayLike<number>, lengths?: ArrayLike<number>, normalize = true, eps = 1e-5) {
  const inner = d.heads * d.headDim;
  const keys: Float64Array[] = [], values: Float64Array[] = [];
  for (let j = 0; j < d.latents; j++) {
    const c = layerNorm(w.latents.subarray(j * d.dim, (j + 1) * d.dim), w.contextNormWeight, w.contextNormBias, eps);
    const kv = linear(c, w.toKv, undefined, d.dim, 2 * inner);
    keys.push(kv.subarray(0, inner));
    values.push(kv.subarray(inner));
  }
  const out = new Float64Array(d.batch * d.dim);
  for (let b = 0; b < d.batch; b++) {
    const sum = new Float64Array(d.dim);
    let n = 0;
    for (let t = 0; t < d.seq; t++) {
      if (!valid(mask, lengths, d.seq, b, t)) continue;
      n++;
      const x = h.subarray((b * d.seq + t) * d.dim, (b * d.seq + t + 1) * d.dim);
      const q = linear(layerNorm(x, w.normWeight, w.normBias, eps), w.toQ, undefined, d.dim, inner);
      const o = new Float64Array(inner);
      for (let hh = 0; hh < d.heads; hh++) {
        const base = hh * d.headDim;
        const s = keys.map((k) => {
          let dot = 0;
          for (let c = 0; c < d.headDim; c++) dot += q[base + c]! * k[base + c]!;
          return dot / Math.sqrt(d.headDim);
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, v) => a + v, 0);
        e.forEach((p, j) => {
          for (let c = 0; c < d.headDim; c++) o[base + c] += (p / z) * values[j]![base + c]!;
        });
      }
      const y = linear(o, w.toOut, w.toOutBias, inner, d.dim).map((v, i) => v + x[i]!);
      const g = linear(layerNorm(y, w.ffNormWeight, w.ffNormBias, eps), w.ffIn, w.ffInBias, d.dim, 2 * d.ff);
      const act = Float64Array.from({ length: d.ff }, (_, j) => g[j]! * 0.5 * g[d.ff + j]! * (1 + erf(g[d.ff + j]! / Math.SQRT2)));
      const z = linear(act, w.ffOut, w.ffOutBias, d.ff, d.dim);
      for (let i = 0; i < d.dim; i++) sum[i] += z[i]! + y[i]!;
    }
    let row = n ? sum.map((v) => v / n) : sum;
    if (normalize) row = l2(row);
    out.set(row, b * d.dim);
  }
  return out;
}

describe('latentAttentionPool', () => {
  it('erf reference is accurate (checked against known values)', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
  });

  const cases: Array<LatentDims & { note: string }> = [
    { note: 'tiled attention kernel, odd sizes', batch: 3, seq: 7, dim: 19, heads: 2, headDim: 13, latents: 5, ff: 23 },
    { note: 'one token, one head, one latent', batch: 1, seq: 1, dim: 1, heads: 1, headDim: 1, latents: 1, ff: 1 },
    { note: 'more tokens than a chunk, dims past SIMD tails', batch: 2, seq: 70, dim: 33, heads: 3, headDim: 17, latents: 9, ff: 20 },
    { note: 'heads wider than the tiled kernel (matmul path)', batch: 2, seq: 4, dim: 24, heads: 2, headDim: 260, latents: 6, ff: 12 },
  ];
  for (const d of cases) {
    it(`${d.note}: batch ${d.batch}, seq ${d.seq}, dim ${d.dim}, ${d.heads}×${d.headDim}, ${d.latents} latents, ff ${d.ff}`, () => {
      const h = randomFloats(d.batch * d.seq * d.dim, 100 + d.dim);
      const weights = latentWeights(d, 200 + d.seq, d.dim % 2 === 1);
      const mask = randomMask(d.batch, d.seq, 300 + d.seq, 0.6);
      if (d.batch > 1) mask.fill(0, 0, d.seq); // row 0 fully masked: zeros
      const left = leftPadded(Array.from({ length: d.batch }, (_, b) => Math.max(1, d.seq - b)), d.seq);
      const o = { batch: d.batch, seq: d.seq, dim: d.dim, heads: d.heads, headDim: d.headDim, weights };
      for (const [m, normalize] of [[undefined, true], [mask, true], [left, false], [mask, false]] as const) {
        const out = poisoned(d.batch * d.dim);
        const got = latentAttentionPool(h, { ...o, out, normalize, ...(m ? { mask: m } : {}) });
        const want = latentReference(h, d, weights, m, undefined, normalize);
        expect(relativeError(got, want)).toBeLessThanOrEqual(BOUND);
      }
      const lengths = Int32Array.from({ length: d.batch }, (_, b) => (b * 3 + 1) % (d.seq + 1));
      const got = latentAttentionPool(h, { ...o, lengths });
      expect(relativeError(got, latentReference(h, d, weights, undefined, lengths))).toBeLessThanOrEqual(BOUND);
    });
  }

  it('batch 0 and seq 0; a fully masked row gives zeros', () => {
    const d = { batch: 2, seq: 0, dim: 8, heads: 2, headDim: 4, latents: 3, ff: 5 };
    const weights = latentWeights(d, 7);
    const o = { dim: d.dim, heads: d.heads, headDim: d.headDim, weights };
    expect(Array.from(latentAttentionPool(new Float32Array(0), { ...o, batch: 2, seq: 0 }))).toEqual(new Array(16).fill(0));
    expect(latentAttentionPool(new Float32Array(0), { ...o, batch: 0, seq: 4 }).length).toBe(0);
    const h = randomFloats(2 * 3 * d.dim, 8);
    const got = latentAttentionPool(h, { ...o, batch: 2, seq: 3, lengths: new Int32Array([3, 0]), out: poisoned(16) });
    expect(Array.from(got.subarray(8))).toEqual(new Array(8).fill(0));
    expect(relativeError(got, latentReference(h, { ...d, seq: 3 }, weights, undefined, new Int32Array([3, 0])))).toBeLessThanOrEqual(BOUND);
  });

  it('agrees with the reference on every SIMD level this CPU runs', () => {
    const d = { batch: 2, seq: 5, dim: 35, heads: 2, headDim: 18, latents: 7, ff: 21 };
    const h = randomFloats(d.batch * d.seq * d.dim, 41);
    const weights = latentWeights(d, 42, true);
    const want = latentReference(h, d, weights);
    const before = capabilities().simd;
    try {
      for (const level of capabilities().simdAvailable) {
        setSimd(level);
        const got = latentAttentionPool(h, { batch: d.batch, seq: d.seq, dim: d.dim, heads: d.heads, headDim: d.headDim, weights });
        expect(relativeError(got, want), level).toBeLessThanOrEqual(BOUND);
      }
    } finally {
      setSimd(before);
    }
  });

  it('async agrees with sync bit for bit, and with one thread', async () => {
    const d = { batch: 4, seq: 40, dim: 48, heads: 4, headDim: 12, latents: 16, ff: 64 };
    const h = randomFloats(d.batch * d.seq * d.dim, 31);
    const weights = latentWeights(d, 32);
    const o = { batch: d.batch, seq: d.seq, dim: d.dim, heads: d.heads, headDim: d.headDim, weights, mask: randomMask(d.batch, d.seq, 33) };
    const sync = latentAttentionPool(h, o);
    const before = capabilities().threads;
    try {
      setThreads(1);
      expect(sameBytes(latentAttentionPool(h, o), sync)).toBe(true);
    } finally {
      setThreads(before);
    }
    const pending = latentAttentionPoolAsync(h, o);
    (globalThis as { gc?: () => void }).gc?.();
    expect(sameBytes(await pending, sync)).toBe(true);
  });

  it('rejects bad input with the argument named', () => {
    const d = { batch: 1, seq: 2, dim: 4, heads: 2, headDim: 3, latents: 2, ff: 3 };
    const weights = latentWeights(d, 1);
    const h = new Float32Array(8);
    const o = { batch: 1, seq: 2, dim: 4, heads: 2, headDim: 3, weights };
    expect(() => latentAttentionPool(h, { ...o, weights: { ...weights, toQ: new Float32Array(5) } })).toThrow(/"weights.toQ" must hold 24/);
    expect(() => latentAttentionPool(h, { ...o, weights: { ...weights, toKv: [] as unknown as Float32Array } })).toThrow(TypeError);
    expect(() => latentAttentionPool(h, { ...o, weights: { ...weights, latents: new Float32Array(6) } })).toThrow(/"weights.latents"/);
    expect(() => latentAttentionPool(h, { ...o, weights: { ...weights, ffInBias: new Float32Array(5) } })).toThrow(/"weights.ffInBias"/);
    expect(() => latentAttentionPool(h, { ...o, weights: { ...weights, extra: h } as unknown as LatentAttentionWeights })).toThrow(/Unknown option "extra" in "weights"/);
    const { toOut: _, ...missing } = weights;
    expect(() => latentAttentionPool(h, { ...o, weights: missing as LatentAttentionWeights })).toThrow(/"weights.toOut"/);
    expect(() => latentAttentionPool(h, { ...o, heads: 0 })).toThrow(/"heads"/);
    expect(() => latentAttentionPool(h, { ...o, eps: 0 })).toThrow(/"eps"/);
    expect(() => latentAttentionPool(h, { ...o, normalize: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => latentAttentionPool(h, { ...o, weights: undefined as unknown as LatentAttentionWeights })).toThrow(/"weights"/);
    expect(() => latentAttentionPool(h, { ...o, out: weights.normBias })).toThrow(/overlap/);
    expect(() => latentAttentionPool(new Float32Array(7), o)).toThrow(/"hidden"/);
  });
});

// ---- ECAPA-TDNN attentive statistics pooling -------------------------------------------------------------------

function statsWeights(C: number, A: number, global: boolean, seed: number): AttentiveStatsWeights {
  let s = seed;
  const g = (n: number, scale: number) => randomFloats(n, s++, scale);
  const inC = global ? 3 * C : C;
  return {
    tdnnWeight: g(A * inC, 1 / Math.sqrt(inC)), tdnnBias: g(A, 0.1),
    bnMean: g(A, 0.2), bnVar: g(A, 0.3).map((x) => 0.5 + Math.abs(x)), bnWeight: g(A, 0.2).map((x) => 1 + x), bnBias: g(A, 0.1),
    convWeight: g(C * A, 1.5 / Math.sqrt(A)), convBias: g(C, 0.1),
  };
}

/** speechbrain's AttentiveStatisticsPooling.forward (inference), one row at a time in float64. */
function statsReference(x: Float32Array, N: number, C: number, L: number, w: AttentiveStatsWeights, lengths?: Int32Array, global = true, eps = 1e-12, bnEps = 1e-5) {
  const A = w.tdnnBias.length, inC = global ? 3 * C : C;
  const out = new Float64Array(N * 2 * C);
  const stats = (row: ArrayLike<number>, wt: ArrayLike<number>, n: number) => {
    let mean = 0, v = 0;
    for (let t = 0; t < n; t++) mean += wt[t]! * row[t]!;
    for (let t = 0; t < n; t++) v += wt[t]! * (row[t]! - mean) ** 2;
    return [mean, Math.sqrt(Math.max(v, eps))] as const;
  };
  for (let b = 0; b < N; b++) {
    const n = lengths ? lengths[b]! : L;
    if (n === 0) continue;
    const xr = (c: number) => x.subarray((b * C + c) * L, (b * C + c + 1) * L);
    const uniform = new Float64Array(n).fill(1 / n);
    const ctx = Array.from({ length: C }, (_, c) => stats(xr(c), uniform, n));
    const e = Array.from({ length: C }, () => new Float64Array(n));
    for (let t = 0; t < n; t++) {
      const input = new Float64Array(inC);
      for (let c = 0; c < C; c++) {
        input[c] = xr(c)[t]!;
        if (global) { input[C + c] = ctx[c]![0]; input[2 * C + c] = ctx[c]![1]; }
      }
      const hdn = linear(input, w.tdnnWeight, w.tdnnBias, inC, A).map((u, a) => {
        const r = Math.max(u, 0);
        return Math.tanh(((r - w.bnMean[a]!) / Math.sqrt(w.bnVar[a]! + bnEps)) * w.bnWeight[a]! + w.bnBias[a]!);
      });
      const ec = linear(hdn, w.convWeight, w.convBias, A, C);
      for (let c = 0; c < C; c++) e[c]![t] = ec[c]!;
    }
    for (let c = 0; c < C; c++) {
      const m = Math.max(...e[c]!);
      const p = e[c]!.map((v) => Math.exp(v - m));
      const z = p.reduce((a, v) => a + v, 0);
      const [mean, std] = stats(xr(c), p.map((v) => v / z), n);
      out[b * 2 * C + c] = mean;
      out[b * 2 * C + C + c] = std;
    }
  }
  return out;
}

describe('attentiveStatsPool', () => {
  const cases = [
    { N: 3, C: 19, L: 23, A: 7 },
    { N: 1, C: 1, L: 1, A: 1 },
    { N: 2, C: 40, L: 150, A: 17 },
  ];
  for (const { N, C, L, A } of cases) {
    for (const global of [true, false]) {
      it(`batch ${N}, channels ${C}, frames ${L}, attention ${A}, globalContext ${global}`, () => {
        const x = randomFloats(N * C * L, 400 + C + L);
        const weights = statsWeights(C, A, global, 500 + A);
        const lengths = Int32Array.from({ length: N }, (_, b) => (b === 1 ? 0 : Math.max(1, L - 3 * b)));
        for (const len of [undefined, lengths]) {
          const out = poisoned(N * 2 * C);
          const got = attentiveStatsPool(x, { batch: N, channels: C, frames: L, weights, globalContext: global, out, ...(len ? { lengths: len } : {}) });
          expect(relativeError(got, statsReference(x, N, C, L, weights, len, global))).toBeLessThanOrEqual(BOUND);
        }
      });
    }
  }

  it('eps floors the variance before the square root (a constant channel gives sqrt(eps))', () => {
    const C = 2, L = 5, A = 3;
    const x = randomFloats(C * L, 1);
    x.fill(0.25, 0, L); // channel 0 is constant
    const weights = statsWeights(C, A, true, 2);
    const got = attentiveStatsPool(x, { batch: 1, channels: C, frames: L, weights, eps: 1e-4 });
    expect(got[0]).toBeCloseTo(0.25, 6);
    expect(got[C]).toBeCloseTo(1e-2, 6);
    expect(relativeError(got, statsReference(x, 1, C, L, weights, undefined, true, 1e-4))).toBeLessThanOrEqual(BOUND);
  });

  it('batch 0, an empty row, async and thread-count independence', async () => {
    const C = 24, L = 64, A = 8;
    expect(attentiveStatsPool(new Float32Array(0), { batch: 0, channels: C, frames: L, weights: statsWeights(C, A, true, 3) }).length).toBe(0);
    const x = randomFloats(3 * C * L, 4);
    const weights = statsWeights(C, A, true, 5);
    const o = { batch: 3, channels: C, frames: L, weights, lengths: new Int32Array([64, 0, 13]) };
    const sync = attentiveStatsPool(x, o);
    expect(Array.from(sync.subarray(2 * C, 4 * C))).toEqual(new Array(2 * C).fill(0));
    const before = capabilities().threads;
    try {
      setThreads(1);
      expect(sameBytes(attentiveStatsPool(x, o), sync)).toBe(true);
    } finally {
      setThreads(before);
    }
    expect(sameBytes(await attentiveStatsPoolAsync(x, o), sync)).toBe(true);
  });

  it('rejects bad input with the argument named', () => {
    const C = 3, L = 4, A = 2;
    const weights = statsWeights(C, A, true, 6);
    const x = new Float32Array(C * L);
    const o = { batch: 1, channels: C, frames: L, weights };
    expect(() => attentiveStatsPool(x, { ...o, globalContext: false })).toThrow(/"weights.tdnnWeight" must hold 6/);
    expect(() => attentiveStatsPool(x, { ...o, weights: { ...weights, bnVar: new Float64Array(2) as unknown as Float32Array } })).toThrow(TypeError);
    expect(() => attentiveStatsPool(x, { ...o, weights: { ...weights, convWeight: new Float32Array(5) } })).toThrow(/"weights.convWeight"/);
    expect(() => attentiveStatsPool(x, { ...o, lengths: new Int32Array([5]) })).toThrow(/"lengths"/);
    expect(() => attentiveStatsPool(x, { ...o, eps: -1 })).toThrow(/"eps"/);
    expect(() => attentiveStatsPool(x, { ...o, bnEps: Number.NaN })).toThrow(/"bnEps"/);
    expect(() => attentiveStatsPool(x, { ...o, attentionChannels: 2 } as unknown as typeof o)).toThrow(/Unknown option "attentionChannels"/);
    expect(() => attentiveStatsPool(new Float32Array(3), o)).toThrow(/"x"/);
  });
});

// ---- DIN target attention --------------------------------------------------------------------------------------

function targetWeights(H: number, h1: number, h2: number, seed: number, prelu = false): TargetAttentionWeights {
  let s = seed;
  const g = (n: number, scale: number) => randomFloats(n, s++, scale);
  return {
    w1: g(4 * H * h1, 1 / Math.sqrt(4 * H)), b1: g(h1, 0.1), w2: g(h1 * h2, 1 / Math.sqrt(h1)), b2: g(h2, 0.1),
    w3: g(h2, 2 / Math.sqrt(h2)), b3: g(1, 0.1),
    ...(prelu ? { prelu1: g(h1, 0.2), prelu2: g(h2, 0.2) } : {}),
  };
}

/** din/model.py attention_multi_items in float64 (TF Dense: y = x W + b with W [in, out]). */
function targetReference(q: Float32Array, k: Float32Array, B: number, N: number, T: number, H: number, w: TargetAttentionWeights, lengths: Int32Array | undefined, activation: string, normalize: string) {
  const h1 = w.b1.length, h2 = w.b2.length;
  const dense = (x: ArrayLike<number>, W: ArrayLike<number>, b: ArrayLike<number>, inF: number, outF: number) =>
    Float64Array.from({ length: outF }, (_, o) => {
      let s = b[o]!;
      for (let i = 0; i < inF; i++) s += x[i]! * W[i * outF + o]!;
      return s;
    });
  const act = (v: Float64Array, slopes?: Float32Array) => v.map((z, u) =>
    activation === 'sigmoid' ? 1 / (1 + Math.exp(-z)) : activation === 'relu' ? Math.max(z, 0) : z > 0 ? z : slopes![u]! * z);
  const out = new Float64Array(B * N * H);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < N; i++) {
      const n = lengths ? lengths[b]! : T;
      if (n === 0) continue;
      const qv = q.subarray((b * N + i) * H, (b * N + i + 1) * H);
      const scores: number[] = [];
      for (let t = 0; t < n; t++) {
        const kv = k.subarray((b * T + t) * H, (b * T + t + 1) * H);
        const f = new Float64Array(4 * H);
        for (let d = 0; d < H; d++) { f[d] = qv[d]!; f[H + d] = kv[d]!; f[2 * H + d] = qv[d]! - kv[d]!; f[3 * H + d] = qv[d]! * kv[d]!; }
        const z2 = act(dense(act(dense(f, w.w1, w.b1, 4 * H, h1), w.prelu1), w.w2, w.b2, h1, h2), w.prelu2);
        scores.push(dense(z2, w.w3, w.b3, h2, 1)[0]!);
      }
      let weights = scores;
      if (normalize === 'softmax') {
        const sc = scores.map((s) => s / Math.sqrt(H));
        const m = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - m));
        const z = e.reduce((a, v) => a + v, 0);
        weights = e.map((v) => v / z);
      }
      for (let t = 0; t < n; t++) for (let d = 0; d < H; d++) out[(b * N + i) * H + d] += weights[t]! * k[(b * T + t) * H + d]!;
    }
  return out;
}

describe('targetAttention', () => {
  const cases = [
    { B: 3, N: 1, T: 11, H: 13, h1: 9, h2: 5 },
    { B: 1, N: 1, T: 1, H: 1, h1: 1, h2: 1 },
    { B: 2, N: 3, T: 50, H: 24, h1: 80, h2: 40 },
  ];
  for (const { B, N, T, H, h1, h2 } of cases) {
    for (const activation of ['sigmoid', 'relu', 'prelu'] as const) {
      it(`batch ${B}, items ${N}, seqK ${T}, dim ${H}, hidden ${h1}/${h2}, ${activation}: softmax and none`, () => {
        const q = randomFloats(B * N * H, 600 + H), k = randomFloats(B * T * H, 700 + T);
        const weights = targetWeights(H, h1, h2, 800 + h1, activation === 'prelu');
        const lengths = Int32Array.from({ length: B }, (_, b) => (b === 1 ? 0 : Math.max(1, T - 4 * b)));
        for (const normalize of ['softmax', 'none'] as const) {
          for (const len of [undefined, lengths]) {
            const out = poisoned(B * N * H);
            const got = targetAttention(q, k, { batch: B, items: N, seqK: T, dim: H, weights, activation, normalize, out, ...(len ? { lengths: len } : {}) });
            expect(got).toBe(out);
            expect(relativeError(got, targetReference(q, k, B, N, T, H, weights, len, activation, normalize))).toBeLessThanOrEqual(BOUND);
          }
        }
      });
    }
  }

  it('defaults to the official code (sigmoid, softmax); batch 0; async; thread-count independence', async () => {
    const B = 5, T = 30, H = 16;
    const q = randomFloats(B * H, 1), k = randomFloats(B * T * H, 2);
    const weights = targetWeights(H, 12, 6, 3);
    const lengths = new Int32Array([30, 1, 0, 17, 29]);
    const got = targetAttention(q, k, { batch: B, seqK: T, dim: H, weights, lengths });
    expect(relativeError(got, targetReference(q, k, B, 1, T, H, weights, lengths, 'sigmoid', 'softmax'))).toBeLessThanOrEqual(BOUND);
    expect(Array.from(got.subarray(2 * H, 3 * H))).toEqual(new Array(H).fill(0));
    expect(Array.from(got.subarray(H, 2 * H))).toEqual(Array.from(k.subarray(T * H, T * H + H))); // one step: weight 1
    expect(targetAttention(new Float32Array(0), new Float32Array(0), { batch: 0, seqK: T, dim: H, weights }).length).toBe(0);
    const before = capabilities().threads;
    try {
      setThreads(1);
      expect(sameBytes(targetAttention(q, k, { batch: B, seqK: T, dim: H, weights, lengths }), got)).toBe(true);
    } finally {
      setThreads(before);
    }
    expect(sameBytes(await targetAttentionAsync(q, k, { batch: B, seqK: T, dim: H, weights, lengths }), got)).toBe(true);
  });

  it('rejects bad input with the argument named', () => {
    const H = 4, weights = targetWeights(H, 3, 2, 9);
    const q = new Float32Array(H), k = new Float32Array(2 * H);
    const o = { batch: 1, seqK: 2, dim: H, weights };
    expect(() => targetAttention(q, k, { ...o, weights: { ...weights, w1: new Float32Array(47) } })).toThrow(/"weights.w1" must hold 48/);
    expect(() => targetAttention(q, k, { ...o, weights: { ...weights, w3: new Float32Array(3) } })).toThrow(/"weights.w3"/);
    expect(() => targetAttention(q, k, { ...o, activation: 'prelu' })).toThrow(/"weights.prelu1"/);
    expect(() => targetAttention(q, k, { ...o, weights: { ...weights, prelu1: new Float32Array(3) } })).toThrow(/prelu/);
    expect(() => targetAttention(q, k, { ...o, activation: 'dice' as 'relu' })).toThrow(/"activation"/);
    expect(() => targetAttention(q, k, { ...o, normalize: 'sum' as 'none' })).toThrow(/"normalize"/);
    expect(() => targetAttention(q, k, { ...o, lengths: new Int32Array([3]) })).toThrow(/"lengths"/);
    expect(() => targetAttention(q, new Float32Array(5), o)).toThrow(/"keys"/);
    expect(() => targetAttention(q, k, { ...o, items: 0 })).toThrow(/"items"/);
    expect(() => targetAttention(q, k, { ...o, out: k.subarray(0, 4) })).toThrow(/overlap/);
    expect(() => targetAttention(q, k, { ...o, weights: { ...weights, b1: null as unknown as Float32Array } })).toThrow(TypeError);
  });
});

describe('raw binding checks (TS validation bypassed)', () => {
  it('survives thousands of calls with the right argument count and garbage values', () => {
    const r = runNode(`
      const addon = require(${JSON.stringify(capabilities().addon)});
      let a = 0x1234567;
      const rand = () => ((a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0) / 4294967296;
      const values = [() => undefined, () => null, () => true, () => 0, () => 1, () => 2, () => 3, () => -1, () => 1.5,
        () => NaN, () => 2 ** 41, () => 1e-5, () => 'mean', () => 'last', () => 'prelu', () => 'softmax', () => 'none',
        () => new Float32Array(0), () => new Float32Array(1), () => new Float32Array(2), () => new Float32Array(4),
        () => new Float32Array(8), () => new Float32Array(12), () => new Uint8Array(2), () => new Int32Array([2]),
        () => new Int32Array([-1, 5]), () => new Float64Array(4), () => ({})];
      const arity = { poolTokens: 10, poolTokensAsync: 10, latentAttentionPool: 29, latentAttentionPoolAsync: 29,
        attentiveStatsPool: 18, attentiveStatsPoolAsync: 18, targetAttention: 20, targetAttentionAsync: 20 };
      const counts = {};
      const pending = [];
      const note = (e) => { counts[e ? e.constructor.name : 'ok'] = (counts[e ? e.constructor.name : 'ok'] || 0) + 1; };
      for (let trial = 0; trial < 8000; trial++) {
        const names = Object.keys(arity), name = names[trial % names.length];
        const args = Array.from({ length: arity[name] }, () => values[Math.floor(rand() * values.length)]());
        try {
          const p = addon[name](...args);
          if (p && typeof p.then === 'function') pending.push(p.then(() => note(null), note));
          else note(null);
        } catch (e) {
          if (!(e instanceof Error)) throw new Error('non-error thrown');
          note(e);
        }
      }
      Promise.all(pending).then(() => console.log(JSON.stringify(counts)));`);
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const counts = JSON.parse(r.stdout) as Record<string, number>;
    expect(counts.TypeError).toBeGreaterThan(1000);
    expect(Object.keys(counts).every((k) => ['ok', 'TypeError', 'RangeError'].includes(k))).toBe(true);
  });

  it('throws instead of crashing on wrong arguments', async () => {
    const { binding } = await import('../src/native/load.js');
    const b = binding();
    expect(() => b.poolTokens(new Float32Array(4), new Float32Array(2), 1, 2, 2, 'mean', null, null, new Int32Array([3]), false)).toThrow(RangeError);
    expect(() => b.poolTokens(new Float32Array(4), new Float32Array(2), 1, 2, 2, 'mean', new Uint8Array(2), null, new Int32Array([1]), false)).toThrow(RangeError);
    expect(() => (b.poolTokens as (...a: unknown[]) => unknown)(new Float32Array(4))).toThrow(TypeError);
    expect(() => (b.attentiveStatsPool as (...a: unknown[]) => unknown)(...new Array(18).fill(null))).toThrow(TypeError);
    expect(() => (b.targetAttention as (...a: unknown[]) => unknown)(...new Array(20).fill(1))).toThrow(TypeError);
    expect(() => (b.latentAttentionPool as (...a: unknown[]) => unknown)(...new Array(29).fill(undefined))).toThrow(TypeError);
  });
});
