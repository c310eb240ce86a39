import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import {
  capabilities,
  hammingTopK,
  hammingTopKAsync,
  packSigns,
  ResidualBinarizer,
  setSimd,
  setThreads,
  unpackSigns,
} from '../src/index.js';
import {
  hammingReference,
  loadAda2,
  randomBytes,
  randomFloats,
  SHARED_DATA,
  sameBytes,
  sharedDataAvailable,
} from './helpers.js';

const defaultThreads = capabilities().threads;
afterEach(() => {
  setSimd('auto');
  setThreads(defaultThreads);
});

/** numpy.packbits(x > t) for msb, FAISS-style for lsb: written bit by bit. */
function packReference(x: Float32Array, dim: number, order: 'msb' | 'lsb', threshold = 0): Uint8Array {
  const rows = x.length / dim;
  const bytes = Math.ceil(dim / 8);
  const out = new Uint8Array(rows * bytes);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < dim; i++)
      if (x[r * dim + i]! > threshold) out[r * bytes + (i >> 3)]! |= order === 'msb' ? 0x80 >> (i & 7) : 1 << (i & 7);
  return out;
}

/** Brute-force top-k by (distance, index). */
function topkReference(queries: Uint8Array, codes: Uint8Array, bits: number, k: number, order: 'msb' | 'lsb' = 'msb') {
  const bytes = Math.ceil(bits / 8);
  const nq = queries.length / bytes;
  const n = codes.length / bytes;
  const kk = Math.min(k, n);
  const indices = new Int32Array(nq * kk);
  const distances = new Int32Array(nq * kk);
  for (let q = 0; q < nq; q++) {
    const all = Array.from({ length: n }, (_, j) => [hammingReference(queries, q * bytes, codes, j * bytes, bits, order), j] as const);
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let r = 0; r < kk; r++) {
      distances[q * kk + r] = all[r]![0];
      indices[q * kk + r] = all[r]![1];
    }
  }
  return { indices, distances };
}

describe('packSigns / unpackSigns', () => {
  it('match numpy.packbits (msb) and FAISS (lsb) on edge dims and thresholds, with padding bits zero', () => {
    for (const dim of [1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1536]) {
      const x = randomFloats(5 * dim, dim);
      x[0] = 0;  // exactly at the threshold: not set
      for (const order of ['msb', 'lsb'] as const) {
        for (const threshold of [0, 0.5, -1]) {
          const got = packSigns(x, dim, { bitOrder: order, threshold, out: new Uint8Array(5 * Math.ceil(dim / 8)).fill(0xaa) });
          expect(sameBytes(got, packReference(x, dim, order, threshold))).toBe(true);
        }
        const signs = unpackSigns(packSigns(x, dim, { bitOrder: order }), dim, { bitOrder: order });
        expect(Array.from(signs)).toEqual(Array.from(x, (v) => (v > 0 ? 1 : -1)));
        expect(sameBytes(packSigns(signs, dim, { bitOrder: order }), packSigns(x, dim, { bitOrder: order }))).toBe(true);
      }
    }
  });

  it('matches a known byte: numpy.packbits([1,0,0,1,0,1,0,1]) is 149', () => {
    expect(Array.from(packSigns(new Float32Array([1, -1, 0, 2, -3, 0.5, -0.1, 9]), 8))).toEqual([149]);
    expect(Array.from(packSigns(new Float32Array([1, -1, 0, 2, -3, 0.5, -0.1, 9]), 8, { bitOrder: 'lsb' }))).toEqual([169]);
  });

  it('rejects bad input', () => {
    expect(() => packSigns([1] as never, 1)).toThrow(TypeError);
    expect(() => packSigns(new Float32Array(3), 2)).toThrow(/not a multiple of 2/);
    expect(() => packSigns(new Float32Array(4), 0)).toThrow(RangeError);
    expect(() => packSigns(new Float32Array(4), 2, { bitOrder: 'big' as never })).toThrow(RangeError);
    expect(() => packSigns(new Float32Array(4), 2, { threshold: Number.NaN })).toThrow(RangeError);
    expect(() => packSigns(new Float32Array(4), 2, { threshold: '0' as never })).toThrow(TypeError);
    expect(() => packSigns(new Float32Array(4), 2, { out: new Uint8Array(3) })).toThrow(/"out" must hold 2 bytes/);
    expect(() => unpackSigns(new Uint8Array(3), 9)).toThrow(/not a multiple of 2/);
    expect(() => unpackSigns(new Int8Array(2) as never, 8)).toThrow(TypeError);
  });
});

describe('hammingTopK', () => {
  it('equals a brute-force reference on every SIMD path, code length, padding and thread count', () => {
    for (const level of capabilities().simdAvailable) {
      setSimd(level);
      for (const bits of [1, 7, 8, 13, 64, 100, 128, 255, 256, 512, 1000, 1024, 1536, 2049]) {
        const bytes = Math.ceil(bits / 8);
        for (const [nq, n] of [[1, 40], [3, 261], [17, 100]] as const) {
          const queries = randomBytes(nq * bytes, bits + nq);  // random padding bits: ignored
          const codes = randomBytes(n * bytes, bits + n);
          codes.copyWithin(5 * bytes, 0, 2 * bytes);  // duplicates: ties broken by index
          for (const order of ['msb', 'lsb'] as const) {
            const want = topkReference(queries, codes, bits, 7, order);
            const got = hammingTopK(queries, codes, { bits, k: 7, bitOrder: order });
            expect(got.distances).toEqual(want.distances);
            expect(got.indices).toEqual(want.indices);
          }
        }
      }
    }
  });

  it('is identical for any thread count, including more threads than codes, and async equals sync', async () => {
    const bits = 256;
    const queries = randomBytes(70 * 32, 1);
    const codes = randomBytes(20_000 * 32, 2);
    for (let i = 0; i < 200; i++) codes.copyWithin((i * 97 + 13) * 32, i * 32, i * 32 + 32);  // many ties
    setThreads(1);
    const one = hammingTopK(queries, codes, { bits, k: 25 });
    for (const threads of [2, 3, 16]) {
      setThreads(threads);
      const many = hammingTopK(queries, codes, { bits, k: 25 });
      expect(sameBytes(many.indices, one.indices)).toBe(true);
      expect(sameBytes(many.distances, one.distances)).toBe(true);
    }
    setThreads(64);
    const tiny = hammingTopK(queries.subarray(0, 32), codes.subarray(0, 3 * 32), { bits, k: 5 });
    expect(Array.from(tiny.indices)).toEqual(Array.from(topkReference(queries.subarray(0, 32), codes.subarray(0, 96), bits, 5).indices));
    const async = await hammingTopKAsync(queries, codes, { bits, k: 25 });
    expect(sameBytes(async.indices, one.indices)).toBe(true);
  });

  it('handles empty inputs and k beyond n', () => {
    const r0 = hammingTopK(new Uint8Array(0), randomBytes(40, 1), { bits: 32, k: 3 });
    expect(r0.indices.length).toBe(0);
    const r1 = hammingTopK(randomBytes(8, 1), new Uint8Array(0), { bits: 32, k: 3 });
    expect(r1.indices.length).toBe(0);
    const r2 = hammingTopK(randomBytes(4, 1), randomBytes(8, 2), { bits: 32, k: 5 });
    expect(r2.indices.length).toBe(2);
  });

  it('ranks the OpenSearch k-NN Hamming ground truth distance for distance, at every rank', () => {
    if (!sharedDataAvailable('opensearch-hamming')) return;
    const dir = path.join(SHARED_DATA, 'opensearch-hamming');
    const docs = fs.readFileSync(path.join(dir, 'test_vectors_binary_1000x128.json'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { id: number; vector: number[] });
    const codes = Uint8Array.from(docs.flatMap((d) => d.vector.map((v) => v & 0xff)));
    const ids = docs.map((d) => d.id);
    const row = new Map(ids.map((id, i) => [id, i]));
    const queries = Uint8Array.from(fs.readFileSync(path.join(dir, 'test_queries_binary_100x128.csv'), 'utf8').trim().split('\n')
      .flatMap((l) => l.split(',').map((v) => Number(v) & 0xff)));
    const truth = fs.readFileSync(path.join(dir, 'test_ground_truth_binary_100.csv'), 'utf8').trim().split('\n')
      .map((l) => l.split(',').map((v) => Number(v.trim())));
    expect(queries.length).toBe(100 * 16);
    const got = hammingTopK(queries, codes, { bits: 128, k: 1000 });
    for (let q = 0; q < 100; q++) {
      for (let r = 0; r < 1000; r++) {
        const theirs = hammingReference(queries, q * 16, codes, row.get(truth[q]![r]!)! * 16, 128);
        expect(got.distances[q * 1000 + r]).toBe(theirs);
      }
      // Among equal distances the order is ours (lower index first); the set at each distance is theirs.
      const ours = new Set(Array.from(got.indices.subarray(q * 1000, q * 1000 + 100)));
      const lastDistance = got.distances[q * 1000 + 99]!;
      for (const id of truth[q]!.slice(0, 100)) {
        const j = row.get(id)!;
        if (hammingReference(queries, q * 16, codes, j * 16, 128) < lastDistance) expect(ours.has(j)).toBe(true);
      }
    }
  });

  it('rejects bad input with the right error class', async () => {
    const c = new Uint8Array(16);
    expect(() => hammingTopK([] as never, c, { bits: 64, k: 1 })).toThrow(TypeError);
    expect(() => hammingTopK(c, new Int8Array(16) as never, { bits: 64, k: 1 })).toThrow(TypeError);
    expect(() => hammingTopK(c, c, { bits: 0, k: 1 })).toThrow(RangeError);
    expect(() => hammingTopK(c, c, { bits: -8, k: 1 })).toThrow(RangeError);
    expect(() => hammingTopK(c, c, { bits: 64, k: 0 })).toThrow(RangeError);
    expect(() => hammingTopK(c, c, { bits: 64, k: 1.5 })).toThrow(RangeError);
    expect(() => hammingTopK(c, c, { bits: 24, k: 1 })).toThrow(/"queries" length \(16\) is not a multiple of 3/);
    expect(() => hammingTopK(c, c.subarray(0, 15), { bits: 64, k: 1 })).toThrow(/"codes" length \(15\)/);
    expect(() => hammingTopK(c, c, { k: 1 } as never)).toThrow(/Missing required option "bits"/);
    await expect(hammingTopKAsync(c, c, { bits: 64, k: 0 })).rejects.toThrow(RangeError);
  });
});

describe('ResidualBinarizer', () => {
  function readRow(codes: Uint8Array, r: number, dim: number, bits: number) {
    const bytes = Math.ceil(dim / 8);
    const row = r * (bits * bytes + 4);
    const alpha = new DataView(codes.buffer, codes.byteOffset + row + bits * bytes, 4).getFloat32(0, true);
    const v = new Float64Array(dim);
    for (let t = 0; t < bits; t++)
      for (let i = 0; i < dim; i++) v[i]! += ((codes[row + t * bytes + (i >> 3)]! >> (7 - (i & 7))) & 1 ? 1 : -1) * 2 ** -t;
    return { alpha, v };
  }

  it('decodes by the documented layout and reconstructs real ada-002 vectors better with every bit', () => {
    if (!sharedDataAvailable('ada2-sample100')) return;
    const { vectors, dim, count } = loadAda2();
    // ada-002 vectors share a large common component (a few dims 25 sigma out): centring them first is what makes
    // the uniform planes fit. Both ways, quality rises with every bit.
    for (const centred of [false, true]) {
      let previous = 0;
      for (let bits = 1; bits <= 4; bits++) {
        const rb = new ResidualBinarizer({ dim, bits });
        if (centred) rb.fit(vectors);
        const codes = rb.encode(vectors);
        expect(codes.length).toBe(count * rb.rowBytes);
        const decoded = rb.decode(codes);
        let cosine = 0;
        let layoutMismatches = 0;
        for (let r = 0; r < count; r++) {
          const { alpha, v } = readRow(codes, r, dim, bits);
          let dot = 0, nx = 0, ny = 0;
          for (let i = 0; i < dim; i++) {
            const want = Math.fround(Math.fround(alpha * v[i]!) + (rb.center ? rb.center[i]! : 0));
            if (decoded[r * dim + i] !== want) layoutMismatches++;
            dot += vectors[r * dim + i]! * decoded[r * dim + i]!;
            nx += vectors[r * dim + i]! ** 2;
            ny += decoded[r * dim + i]! ** 2;
          }
          cosine += dot / Math.sqrt(nx * ny) / count;
        }
        expect(layoutMismatches).toBe(0);
        expect(cosine).toBeGreaterThan(previous);
        previous = cosine;
      }
      expect(previous).toBeGreaterThan(centred ? 0.995 : 0.8);  // 4 bits; measured 0.998 and 0.84
    }
  });

  it('SDC and ADC scores are the inner products of the reconstructions, sorted', async () => {
    const dim = 96, n = 500, nq = 5;
    for (const bits of [1, 2, 3, 4]) {
      const rb = new ResidualBinarizer({ dim, bits });
      const docs = randomFloats(n * dim, bits);
      const queries = randomFloats(nq * dim, 10 + bits);
      const dc = rb.encode(docs);
      const qc = rb.encode(queries);
      const sdc = rb.sdcTopK(qc, dc, { k: 10 });
      const adc = rb.adcTopK(queries, dc, { k: 10 });
      for (let q = 0; q < nq; q++) {
        const qd = readRow(qc, q, dim, bits);
        for (let r = 0; r < 10; r++) {
          const d = readRow(dc, sdc.indices[q * 10 + r]!, dim, bits);
          let exact = 0;
          for (let i = 0; i < dim; i++) exact += qd.alpha * qd.v[i]! * d.alpha * d.v[i]!;
          expect(Math.abs(sdc.scores[q * 10 + r]! - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -24);
          const a = readRow(dc, adc.indices[q * 10 + r]!, dim, bits);
          let exactA = 0, magnitude = 0;
          for (let i = 0; i < dim; i++) {
            exactA += queries[q * dim + i]! * a.alpha * a.v[i]!;
            magnitude += Math.abs(queries[q * dim + i]! * a.alpha * a.v[i]!);
          }
          expect(Math.abs(adc.scores[q * 10 + r]! - exactA)).toBeLessThanOrEqual(magnitude * dim * 2 ** -22);
          if (r > 0) expect(sdc.scores[q * 10 + r]!).toBeLessThanOrEqual(sdc.scores[q * 10 + r - 1]!);
        }
      }
      const sdcAsync = await rb.sdcTopKAsync(qc, dc, { k: 10 });
      expect(sameBytes(sdcAsync.indices, sdc.indices)).toBe(true);
      const adcAsync = await rb.adcTopKAsync(queries, dc, { k: 10 });
      expect(sameBytes(adcAsync.scores, adc.scores)).toBe(true);
    }
  });

  it('fits a centre, round-trips through JSON, and encodes async like sync', async () => {
    const dim = 40;
    const x = randomFloats(300 * dim, 4);
    for (let i = 0; i < x.length; i++) x[i]! += 10 + (i % dim);  // far from zero: plain signs would be all ones
    const rb = new ResidualBinarizer({ dim, bits: 2 }).fit(x);
    expect(rb.center![3]).toBeCloseTo(13, 0);
    const codes = rb.encode(x);
    expect(sameBytes(await rb.encodeAsync(x), codes)).toBe(true);
    const back = ResidualBinarizer.fromJSON(JSON.parse(JSON.stringify(rb)));
    expect(sameBytes(back.encode(x), codes)).toBe(true);
    expect(sameBytes(await back.decodeAsync(codes), rb.decode(codes))).toBe(true);
    const plane0 = codes.subarray(0, Math.ceil(dim / 8));
    expect(plane0.some((b) => b !== 0xff)).toBe(true);
  });

  it('rejects bad input', () => {
    expect(() => new ResidualBinarizer({ dim: 8, bits: 5 })).toThrow(RangeError);
    expect(() => new ResidualBinarizer({ dim: 8, bits: 0 })).toThrow(RangeError);
    expect(() => new ResidualBinarizer({ dim: 0 })).toThrow(RangeError);
    expect(() => new ResidualBinarizer({ dim: 8, center: new Float32Array(7) })).toThrow(/"center" must hold dim \(8\)/);
    const rb = new ResidualBinarizer({ dim: 8, bits: 2 });
    expect(() => rb.encode(new Float32Array(9))).toThrow(RangeError);
    expect(() => rb.decode(new Uint8Array(5))).toThrow(/not a multiple of 6/);
    expect(() => rb.sdcTopK(new Uint8Array(6), new Uint8Array(6), { k: 0 })).toThrow(RangeError);
    expect(() => rb.adcTopK(new Uint8Array(8) as never, new Uint8Array(6), { k: 1 })).toThrow(TypeError);
    expect(() => rb.fit(new Float32Array(0))).toThrow(RangeError);
    expect(() => ResidualBinarizer.fromJSON({} as never)).toThrow(TypeError);
  });
});
