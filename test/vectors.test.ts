import { afterEach, describe, expect, it } from 'vitest';

import {
  capabilities,
  l2Normalize,
  l2NormalizeAsync,
  matryoshka,
  matryoshkaAsync,
  setSimd,
  setThreads,
} from '../src/index.js';
import { loadAda2, loadColbertDocuments, poisoned, randomFloats, sameBytes, sharedDataAvailable } from './helpers.js';

// The documented bound: within half an ulp of the exact value plus 1e-12 relative (float64 accumulation), for any
// finite input. Checked against a float64 reference written here.
function expectMatchesReference(out: Float32Array, input: Float32Array, dim: number, keep: number, normalize = true) {
  const rows = input.length / dim;
  expect(out.length).toBe(rows * keep);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < keep; i++) ss += input[r * dim + i]! * input[r * dim + i]!;
    const scale = normalize && ss > 0 ? 1 / Math.sqrt(ss) : 1;
    for (let i = 0; i < keep; i++) {
      const want = input[r * dim + i]! * scale;
      const got = out[r * keep + i]!;
      const bound = Math.abs(want) * (2 ** -24 + 1e-12) + 1.5e-45;
      if (!(Math.abs(got - want) <= bound)) {
        throw new Error(`row ${r} [${i}]: got ${got}, want ${want} (bound ${bound}), dim ${dim} keep ${keep}`);
      }
    }
  }
}

const levels = () => capabilities().simdAvailable;
const defaultThreads = capabilities().threads;

afterEach(() => {
  setSimd('auto');
  setThreads(defaultThreads);
});

describe('matryoshka', () => {
  it('matches a float64 reference on every SIMD path, edge dims and SIMD tails', () => {
    for (const level of levels()) {
      setSimd(level);
      for (const dim of [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 768, 1025]) {
        for (const keep of new Set([1, Math.ceil(dim / 2), Math.max(1, dim - 1), dim])) {
          for (const rows of [0, 1, 2, 13]) {
            const input = randomFloats(rows * dim, dim * 7919 + keep * 31 + rows);
            const out = matryoshka(input, { dim, keep, out: poisoned(rows * keep) });
            expectMatchesReference(out, input, dim, keep);
          }
        }
      }
    }
  });

  it('returns the exact prefix with normalize: false', () => {
    const input = randomFloats(5 * 33, 3);
    const out = matryoshka(input, { dim: 33, keep: 10, normalize: false });
    for (let r = 0; r < 5; r++) expect(Array.from(out.subarray(r * 10, r * 10 + 10))).toEqual(Array.from(input.subarray(r * 33, r * 33 + 10)));
  });

  it('keeps zero rows zero (no NaN), propagates NaN, and survives extreme magnitudes', () => {
    for (const level of levels()) {
      setSimd(level);
      const dim = 19;
      const input = randomFloats(4 * dim, 11);
      input.fill(0, dim, 2 * dim); // row 1: all zeros
      input.fill(0, 2 * dim, 2 * dim + 5); // row 2: zero prefix of 5, non-zero after
      input[3 * dim + 2] = Number.NaN; // row 3: NaN
      const out = matryoshka(input, { dim, keep: 5 });
      expect(Array.from(out.subarray(5, 10))).toEqual([0, 0, 0, 0, 0]);
      expect(Array.from(out.subarray(10, 15))).toEqual([0, 0, 0, 0, 0]);
      expect(Array.from(out.subarray(15, 20)).every(Number.isNaN)).toBe(true);
      expectMatchesReference(out.subarray(0, 5), input.subarray(0, dim), dim, 5);
      for (const scale of [1e30, 1e-30, 1e-40, 6e37]) {
        const big = randomFloats(3 * 40, 17, scale);
        expectMatchesReference(matryoshka(big, { dim: 40, keep: 24 }), big, 40, 24);
      }
    }
  });

  it('gives bit-identical results for any thread count, including more threads than rows', () => {
    const dim = 96;
    for (const rows of [1, 3, 2001]) {
      const input = randomFloats(rows * dim, rows);
      setThreads(1);
      const one = matryoshka(input, { dim, keep: 40 });
      for (const threads of [2, 3, 8, 64]) {
        setThreads(threads);
        expect(sameBytes(matryoshka(input, { dim, keep: 40 }), one)).toBe(true);
      }
    }
  });

  it('works on subarray views at any offset', () => {
    const backing = randomFloats(1 + 6 * 17, 5);
    const view = backing.subarray(1);
    const out = new Float32Array(100);
    const target = out.subarray(3, 3 + 6 * 9);
    matryoshka(view, { dim: 17, keep: 9, out: target });
    expectMatchesReference(target, view, 17, 9);
    expect(out[2]).toBe(0);
    expect(out[3 + 54]).toBe(0);
  });

  it('matches the reference on real ada-002 embeddings at Matryoshka prefixes', () => {
    if (!sharedDataAvailable('ada2-sample100')) return;
    const { vectors, dim } = loadAda2();
    for (const keep of [64, 256, 512, 1024, 1536]) {
      expectMatchesReference(matryoshka(vectors, { dim, keep, out: poisoned((vectors.length / dim) * keep) }), vectors, dim, keep);
    }
  });

  it('async gives the same bytes as sync and keeps its input alive through garbage collection', async () => {
    const dim = 256;
    const rows = 4000;
    const expected = matryoshka(randomFloats(rows * dim, 99), { dim, keep: 64 });
    const pending = [];
    for (let i = 0; i < 4; i++) pending.push(matryoshkaAsync(randomFloats(rows * dim, 99), { dim, keep: 64 }));
    (globalThis as { gc?: () => void }).gc?.(); // the inputs are only referenced by the native workers now
    for (const out of await Promise.all(pending)) expect(sameBytes(out, expected)).toBe(true);
  });

  it('rejects bad input with TypeError or RangeError naming the argument', async () => {
    const v = new Float32Array(12);
    const cases: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => matryoshka([1, 2, 3] as unknown as Float32Array, { dim: 3, keep: 1 }), TypeError, /"vectors".*Float32Array, got Array/],
      [() => matryoshka(new Float64Array(3) as unknown as Float32Array, { dim: 3, keep: 1 }), TypeError, /got Float64Array/],
      [() => matryoshka(v, undefined as never), TypeError, /Missing required option "dim"/],
      [() => matryoshka(v, null as never), TypeError, /"options" to be an object, got null/],
      [() => matryoshka(v, { dim: 4, keep: 2, normalise: true } as never), TypeError, /Unknown option "normalise"/],
      [() => matryoshka(v, { dim: '4', keep: 2 } as never), TypeError, /"dim" to be a number, got string/],
      [() => matryoshka(v, { dim: 4, keep: 2, normalize: 1 } as never), TypeError, /"normalize" to be a boolean/],
      [() => matryoshka(v, { dim: 0, keep: 1 }), RangeError, /"dim" must be an integer/],
      [() => matryoshka(v, { dim: 1.5, keep: 1 }), RangeError, /"dim" must be an integer/],
      [() => matryoshka(v, { dim: Number.NaN, keep: 1 }), RangeError, /"dim" must be an integer/],
      [() => matryoshka(v, { dim: 4, keep: 0 }), RangeError, /"keep" must be an integer/],
      [() => matryoshka(v, { dim: 4, keep: 5 }), RangeError, /"keep" \(5\) must not exceed "dim" \(4\)/],
      [() => matryoshka(v, { dim: 5, keep: 2 }), RangeError, /length \(12\) is not a multiple of "dim" \(5\)/],
      [() => matryoshka(v, { dim: 4, keep: 2, out: new Float32Array(5) }), RangeError, /"out" must hold 6 floats/],
      [() => matryoshka(v, { dim: 4, keep: 2, out: [] as never }), TypeError, /"out" to be a Float32Array/],
      [() => matryoshka(v, { dim: 4, keep: 2, out: v.subarray(0, 6) }), RangeError, /overlaps/],
      [() => matryoshka(v, { dim: 4, keep: 4, out: new Float32Array(v.buffer, 4, 12 - 1).subarray(0, 12 - 1) }), RangeError, /"out" must hold 12/],
      [() => l2Normalize(v, { dim: 5 }), RangeError, /not a multiple/],
      [() => l2Normalize(v, { dim: 4, keep: 2 } as never), TypeError, /Unknown option "keep"/],
    ];
    for (const [call, type, message] of cases) {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    }
    await expect(matryoshkaAsync(v, { dim: 4, keep: 5 })).rejects.toThrow(RangeError);
    await expect(matryoshkaAsync('x' as never, { dim: 4, keep: 1 })).rejects.toThrow(TypeError);
    await expect(l2NormalizeAsync(v, { dim: 7 })).rejects.toThrow(RangeError);
  });
});

describe('l2Normalize', () => {
  it('normalises in place when out is the input, identically to out of place', async () => {
    const input = randomFloats(300 * 48, 21);
    const copy = input.slice();
    const out = l2Normalize(input, { dim: 48 });
    expectMatchesReference(out, input, 48, 48);
    const same = l2Normalize(copy, { dim: 48, out: copy });
    expect(same).toBe(copy);
    expect(sameBytes(copy, out)).toBe(true);
    const asyncOut = await l2NormalizeAsync(input, { dim: 48 });
    expect(sameBytes(asyncOut, out)).toBe(true);
  });

  it('leaves already unit-norm real ColBERT token vectors unchanged within the bound', () => {
    if (!sharedDataAvailable('colbert-nanofiqa')) return;
    const { vectors, dim } = loadColbertDocuments();
    const out = l2Normalize(vectors, { dim, out: poisoned(vectors.length) });
    expectMatchesReference(out, vectors, dim, dim);
    let worst = 0;  // stored vectors are unit norm to float32 rounding: renormalising moves them by an ulp or so
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - vectors[i]!));
    expect(worst).toBeLessThan(4 * 2 ** -24);
  });
});
