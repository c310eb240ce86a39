// MUVERA FDEs and Chamfer: against a float64 reference written here, the algorithm's invariants, determinism,
// the matrix specification, real ColBERTv2 data, and bad input.
import { afterEach, describe, expect, it } from 'vitest';

import { capabilities, chamferScores, chamferScoresAsync, FdeEncoder, Rng, setSimd, setThreads } from '../src/index.js';
import { loadColbert, randomFloats, sameBytes, sharedDataAvailable, splitmixStream as stream, splitmixU64 as u64 } from './helpers.js';

const defaultThreads = capabilities().threads;
afterEach(() => {
  setSimd('auto');
  setThreads(defaultThreads);
});


/**
 * The algorithm in float64 from the encoder's own matrices (Google's reference semantics). Returns undefined when
 * a SimHash value is so near zero that float32 and float64 could disagree on its sign.
 */
function referenceFde(e: FdeEncoder, x: Float32Array, document: boolean): Float64Array | undefined {
  const { dim, repetitions: R, simhashBits: k, projectionDim: p } = e;
  const B = 2 ** k;
  const m = e.matrices();
  const n = x.length / dim;
  const block = new Float64Array(R * B * p);
  for (let r = 0; r < R; r++) {
    const bits: number[] = [];
    const part: number[] = [];
    for (let t = 0; t < n; t++) {
      let b = 0;
      for (let j = 0; j < k; j++) {
        let s = 0, scale = 0;
        for (let i = 0; i < dim; i++) {
          const v = x[t * dim + i]! * m.simhash[i * R * k + r * k + j]!;
          s += v;
          scale += Math.abs(v);
        }
        if (Math.abs(s) < 1e-4 * scale) return undefined;
        b = (b << 1) | (s > 0 ? 1 : 0);
      }
      let g = 0;
      for (let j = 0; j < k; j++) g = (g << 1) + (((b >> (k - 1 - j)) & 1) ^ (g & 1));  // AppendToGrayCode
      bits.push(b);
      part.push(g);
    }
    const project = (t: number) => {
      const y = new Float64Array(p);
      for (let i = 0; i < dim; i++) {
        if (e.projection === 'identity') y[i]! += x[t * dim + i]!;
        else for (let c = 0; c < p; c++) y[c]! += x[t * dim + i]! * m.projection[(r * dim + i) * p + c]!;
      }
      return y;
    };
    const count = new Float64Array(B);
    for (let t = 0; t < n; t++) {
      const y = project(t);
      for (let c = 0; c < p; c++) block[(r * B + part[t]!) * p + c]! += y[c]!;
      count[part[t]!]!++;
    }
    if (!document) continue;
    for (let g = 0; g < B; g++) {
      if (count[g]) {
        for (let c = 0; c < p; c++) block[(r * B + g) * p + c]! /= count[g]!;
      } else if (e.fillEmpty && k > 0) {
        const pattern = g ^ (g >> 1);
        let best = 0, bestD = Infinity;
        for (let t = 0; t < n; t++) {
          let d = 0;
          for (let v = bits[t]! ^ pattern; v; v &= v - 1) d++;
          if (d < bestD) (bestD = d), (best = t);
        }
        const y = project(best);
        for (let c = 0; c < p; c++) block[(r * B + g) * p + c] = y[c]!;
      }
    }
  }
  if (e.finalDim === undefined) return block;
  const out = new Float64Array(e.finalDim);
  for (let t = 0; t < block.length; t++) out[m.finalBucket[t]!]! += m.finalSign[t]! * block[t]!;
  return out;
}

describe('FdeEncoder', () => {
  it('matches a float64 reference on every SIMD path, projection, fill and final sketch', () => {
    const configs = [
      { dim: 16, repetitions: 3, simhashBits: 3, projection: 'countsketch', projectionDim: 8 },
      { dim: 16, repetitions: 2, simhashBits: 4, projection: 'dense', projectionDim: 5 },
      { dim: 7, repetitions: 2, simhashBits: 2, projection: 'identity', fillEmpty: false },
      { dim: 33, repetitions: 3, simhashBits: 5, projection: 'countsketch', projectionDim: 16, finalDim: 100 },
      { dim: 9, repetitions: 1, simhashBits: 0, projection: 'identity' },
    ] as const;
    for (const level of capabilities().simdAvailable) {
      setSimd(level);
      configs.forEach((config, c) => {
        const e = new FdeEncoder({ ...config, seed: 100 + c });
        const lengths = Int32Array.from([1, 2, 7, 30, 17]);
        const tokens = randomFloats(57 * config.dim, c);
        for (const document of [false, true]) {
          const got = document ? e.encodeDocuments(tokens, lengths) : e.encodeQueries(tokens, lengths);
          let offset = 0, compared = 0;
          lengths.forEach((n, d) => {
            const want = referenceFde(e, tokens.subarray(offset * config.dim, (offset + n) * config.dim), document);
            offset += n;
            if (!want) return;
            compared++;
            let worst = 0;
            for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[d * e.outputDim + j]! - want[j]!) / (1 + Math.abs(want[j]!)));
            expect(worst).toBeLessThan(1e-5);
          });
          expect(compared).toBeGreaterThanOrEqual(lengths.length - 1);
        }
        e.dispose();
      });
    }
  });

  it('with one partition and no projection, gives the token sum (query) and mean (document)', () => {
    const e = new FdeEncoder({ dim: 6, repetitions: 1, simhashBits: 0, projection: 'identity' });
    const x = randomFloats(5 * 6, 3);
    const q = e.encodeQuery(x), d = e.encodeDocument(x);
    for (let j = 0; j < 6; j++) {
      let sum = 0;
      for (let t = 0; t < 5; t++) sum = Math.fround(sum + x[t * 6 + j]!);
      expect(q[j]).toBe(sum);
      expect(Math.abs(d[j]! - sum / 5)).toBeLessThanOrEqual(Math.abs(sum / 5) * 2 ** -23);
    }
    expect(e.outputDim).toBe(6);
  });

  it('makes its matrices exactly as specified (SplitMix64 streams per kind and repetition)', () => {
    const e = new FdeEncoder({ dim: 10, repetitions: 3, simhashBits: 4, projection: 'countsketch', projectionDim: 6, finalDim: 50, seed: 7 });
    const m = e.matrices();
    const s1 = stream(7n, 1n, 2n);
    expect(m.simhash[3 * 12 + 2 * 4 + 1]).toBe(new Rng(s1).normal(3 * 4 + 2)[3 * 4 + 1]);
    const s2 = stream(7n, 2n, 1n);
    const column = Number((u64(s2, 8n) * 6n) >> 64n);
    const sign = u64(s2, 9n) >> 63n ? -1 : 1;
    expect(m.projection[(1 * 10 + 4) * 6 + column]).toBe(sign);
    const s3 = stream(7n, 3n, 0n);
    expect(m.finalBucket[17]).toBe(Number((u64(s3, 34n) * 50n) >> 64n));
    expect(m.finalSign[17]).toBe(u64(s3, 35n) >> 63n ? -1 : 1);
    e.dispose();
  });

  it('is deterministic: across instances, thread counts, sync and async, batch and single, JSON and saved matrices', async () => {
    const options = { dim: 32, repetitions: 5, simhashBits: 4, projectionDim: 8, seed: 5n };
    const a = new FdeEncoder(options), b = new FdeEncoder(options), c = new FdeEncoder({ ...options, seed: 6 });
    const lengths = Int32Array.from([3, 7, 1, 12, 40]);
    const tokens = randomFloats(63 * 32, 9);
    setThreads(1);
    const one = a.encodeDocuments(tokens, lengths);
    setThreads(7);
    expect(sameBytes(a.encodeDocuments(tokens, lengths), one)).toBe(true);
    expect(sameBytes(b.encodeDocuments(tokens, lengths), one)).toBe(true);
    expect(sameBytes(await a.encodeDocumentsAsync(tokens, lengths), one)).toBe(true);
    expect(sameBytes(c.encodeDocuments(tokens, lengths), one)).toBe(false);
    let offset = 0;
    lengths.forEach((n, i) => {
      expect(sameBytes(a.encodeDocument(tokens.subarray(offset * 32, (offset + n) * 32)), one.subarray(i * a.outputDim, (i + 1) * a.outputDim))).toBe(true);
      offset += n;
    });
    const fromJson = FdeEncoder.fromJSON(JSON.parse(JSON.stringify(a)));
    expect(sameBytes(fromJson.encodeDocuments(tokens, lengths), one)).toBe(true);
    const fromMatrices = new FdeEncoder(options, a.matrices());
    expect(sameBytes(fromMatrices.encodeDocuments(tokens, lengths), one)).toBe(true);
    const queries = await a.encodeQueriesAsync(tokens, lengths);
    expect(sameBytes(queries, a.encodeQueries(tokens, lengths))).toBe(true);
    for (const e of [a, b, c, fromJson, fromMatrices]) e.dispose();
  });

  it('writes batches into a caller\'s array when given one, and checks it', async () => {
    const e = new FdeEncoder({ dim: 16, repetitions: 3, simhashBits: 3, projectionDim: 4 });
    const lengths = Int32Array.from([5, 1, 9]);
    const tokens = randomFloats(15 * 16, 4);
    const want = e.encodeDocuments(tokens, lengths);
    const out = new Float32Array(3 * e.outputDim).fill(Number.NaN);  // poisoned: every element must be written
    expect(e.encodeDocuments(tokens, lengths, { out })).toBe(out);
    expect(sameBytes(out, want)).toBe(true);
    out.fill(Number.NaN);
    expect(await e.encodeQueriesAsync(tokens, lengths, { out })).toBe(out);
    expect(sameBytes(out, e.encodeQueries(tokens, lengths))).toBe(true);
    expect(() => e.encodeDocuments(tokens, lengths, { out: out.subarray(1) })).toThrow(/"out" must hold 288 floats/);
    expect(() => e.encodeDocuments(tokens, lengths, { out: new Float64Array(288) as never })).toThrow(TypeError);
    expect(() => e.encodeDocuments(tokens, lengths, { output: out } as never)).toThrow(/Unknown option "output"/);
    const shared = new Float32Array(15 * 16 + 3 * e.outputDim);
    shared.set(tokens);
    const overlapping = shared.subarray(15 * 16 - 1, 15 * 16 - 1 + 3 * e.outputDim);
    expect(() => e.encodeDocuments(shared.subarray(0, 15 * 16), lengths, { out: overlapping })).toThrow(/overlaps "tokens"/);
    e.dispose();
  });

  it('holds the exact Chamfer top-10 within its top-20 on real ColBERTv2 data, over 5 seeds', () => {
    if (!sharedDataAvailable('colbert-nanofiqa')) return;
    const data = loadColbert();
    const queries: Float32Array[] = [];
    let offset = 0;
    for (const n of data.queryLengths) {
      queries.push(data.queries.subarray(offset * 128, (offset + n) * 128));
      offset += n;
    }
    const recalls: number[] = [];
    for (let seed = 0; seed < 5; seed++) {
      const e = new FdeEncoder({ dim: 128, seed });
      const fdes = e.encodeDocuments(data.docs, data.docLengths);
      for (const q of queries) {
        const chamfer = Array.from(chamferScores(q, data.docs, data.docLengths, 128)).map((s, i) => [s, i] as const)
          .sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, 10).map((x) => x[1]);
        const fq = e.encodeQuery(q);
        const scored = Array.from({ length: data.docLengths.length }, (_, i) => {
          let s = 0;
          for (let j = 0; j < e.outputDim; j++) s += fq[j]! * fdes[i * e.outputDim + j]!;
          return [s, i] as const;
        }).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
        const top = new Set(scored.slice(0, 20).map((x) => x[1]));
        recalls.push(chamfer.filter((i) => top.has(i)).length / 10);
      }
      e.dispose();
    }
    expect(recalls.reduce((s, v) => s + v, 0) / recalls.length).toBeGreaterThan(0.9);  // a numpy baseline: 0.948
  });

  it('gives NaN, never a crash, for non-finite tokens', () => {
    const e = new FdeEncoder({ dim: 8, repetitions: 2, simhashBits: 2, projectionDim: 4 });
    const x = randomFloats(3 * 8, 1);
    x[5] = Number.NaN;
    x[12] = Number.POSITIVE_INFINITY;
    const d = e.encodeDocument(x);
    expect(d.length).toBe(e.outputDim);
    expect(d.some(Number.isNaN)).toBe(true);
    e.dispose();
  });

  it('rejects bad input with RangeError or TypeError naming the argument', async () => {
    expect(() => new FdeEncoder({ dim: 8, simhashBits: 17 })).toThrow(/"simhashBits" must be an integer from 0 to 16/);
    expect(() => new FdeEncoder({ dim: 8, simhashBits: -1 })).toThrow(RangeError);
    expect(() => new FdeEncoder({ dim: 8, projectionDim: 0 })).toThrow(/"projectionDim"/);
    expect(() => new FdeEncoder({ dim: 0 })).toThrow(RangeError);
    expect(() => new FdeEncoder({ dim: 8, projection: 'ams' as never })).toThrow(RangeError);
    expect(() => new FdeEncoder({ dim: 8, seed: -1 })).toThrow(RangeError);
    expect(() => new FdeEncoder({ dim: 8, repetitions: 4096, simhashBits: 16, projectionDim: 16 })).toThrow(/exceeds 2\^26/);
    expect(() => new FdeEncoder({ dim: 8, repetition: 3 } as never)).toThrow(/Unknown option "repetition"/);
    const e = new FdeEncoder({ dim: 8, repetitions: 2, simhashBits: 2, projectionDim: 4 });
    expect(() => e.encodeQuery(new Float32Array(0))).toThrow(/one or more tokens/);
    expect(() => e.encodeDocument(new Float32Array(9))).toThrow(RangeError);
    expect(() => e.encodeDocument([1] as never)).toThrow(TypeError);
    expect(() => e.encodeDocuments(new Float32Array(16), Int32Array.of(1))).toThrow(/sum to 1 tokens, "tokens" holds 2/);
    expect(() => e.encodeDocuments(new Float32Array(16), Int32Array.of(2, 0))).toThrow(/"lengths"\[1\] is 0/);
    expect(() => e.encodeDocuments(new Float32Array(16), [2] as never)).toThrow(TypeError);
    await expect(e.encodeDocumentsAsync(new Float32Array(15), Int32Array.of(2))).rejects.toThrow(RangeError);
    expect(() => new FdeEncoder({ dim: 8, repetitions: 2, simhashBits: 2, projectionDim: 4 }, { ...e.matrices(), simhash: new Float32Array(3) })).toThrow(/matrices do not fit/);
    expect(() => FdeEncoder.fromJSON({ ...e.toJSON(), algorithmVersion: 2 as never })).toThrow(RangeError);
    e.dispose();
    expect(() => e.encodeQuery(new Float32Array(8))).toThrow(/disposed/);
  });
});

describe('chamferScores', () => {
  it('matches a float64 reference on every SIMD path and edge size, async too', async () => {
    for (const level of capabilities().simdAvailable) {
      setSimd(level);
      for (const dim of [1, 3, 128]) {
        for (const nq of [1, 17, 33]) {
          const lengths = Int32Array.from([1, 6, 7, 8, 9, 100]);
          const query = randomFloats(nq * dim, dim + nq);
          const docs = randomFloats(131 * dim, dim * nq);
          const got = chamferScores(query, docs, lengths, dim);
          let offset = 0;
          lengths.forEach((n, d) => {
            let want = 0, magnitude = 0;
            for (let a = 0; a < nq; a++) {
              let best = -Infinity, mag = 0;
              for (let j = 0; j < n; j++) {
                let s = 0, m = 0;
                for (let i = 0; i < dim; i++) {
                  s += query[a * dim + i]! * docs[(offset + j) * dim + i]!;
                  m += Math.abs(query[a * dim + i]! * docs[(offset + j) * dim + i]!);
                }
                if (s > best) (best = s), (mag = m);
              }
              want += best;
              magnitude += mag + Math.abs(best);
            }
            expect(Math.abs(got[d]! - want)).toBeLessThanOrEqual(magnitude * 1e-6 * (dim + nq));
            offset += n;
          });
          expect(sameBytes(await chamferScoresAsync(query, docs, lengths, dim), got)).toBe(true);
        }
      }
    }
  });

  it('rejects empty queries and documents, and shapes that do not add up', async () => {
    const docs = new Float32Array(8);
    expect(() => chamferScores(new Float32Array(0), docs, Int32Array.of(2), 4)).toThrow(/"query" must hold one or more tokens/);
    expect(() => chamferScores(new Float32Array(5), docs, Int32Array.of(2), 4)).toThrow(RangeError);
    expect(() => chamferScores(new Float32Array(4), docs, Int32Array.of(1, 0, 1), 4)).toThrow(/"lengths"\[1\] is 0/);
    expect(() => chamferScores(new Float32Array(4), docs, Int32Array.of(3), 4)).toThrow(/sum to 3 tokens, "docs" holds 2/);
    expect(() => chamferScores(new Float32Array(4), docs, Int32Array.of(2), 0)).toThrow(RangeError);
    expect(() => chamferScores(new Float32Array(4), docs, [2] as never, 4)).toThrow(TypeError);
    await expect(chamferScoresAsync(new Float32Array(4), docs, Int32Array.of(3), 4)).rejects.toThrow(RangeError);
    expect(chamferScores(new Float32Array(4), new Float32Array(0), new Int32Array(0), 4).length).toBe(0);
  });
});
