// SelfExtend attention against the reference's eager form in float64: one softmax per query over neighbour scores
// (exact RoPE positions) for keys within the window and grouped scores (⌊p/G⌋ + W − ⌊W/G⌋ against ⌊j/G⌋) beyond it.
import { describe, expect, it } from 'vitest';

import { attention, applyRope, selfExtendAttention, selfExtendAttentionAsync } from '../src/index.js';
import { randomFloats } from './helpers.js';

interface Case {
  layout: 'bshd' | 'bhsd';
  batch: number;
  headsQ: number;
  headsKV: number;
  seqQ: number;
  seqK: number;
  dim: number;
  groupSize: number;
  window: number;
  keyLengths?: Int32Array;
}

const invFreqOf = (dim: number) => Float64Array.from({ length: dim / 2 }, (_, i) => 10000 ** (-(2 * i) / dim));

function at(c: Case, heads: number, seq: number, b: number, h: number, t: number, d: number) {
  return c.layout === 'bshd' ? ((b * seq + t) * heads + h) * c.dim + d : ((b * heads + h) * seq + t) * c.dim + d;
}

/** A head vector rotated by RoPE (neox pairs i, i + dim/2) at `position`, in float64. */
function rotated(x: Float32Array, base: number, dim: number, position: number, invFreq: Float64Array): Float64Array {
  const out = new Float64Array(dim), half = dim / 2;
  for (let i = 0; i < half; i++) {
    const a = position * invFreq[i]!, cos = Math.cos(a), sin = Math.sin(a);
    const x0 = x[base + i]!, x1 = x[base + i + half]!;
    out[i] = x0 * cos - x1 * sin;
    out[i + half] = x1 * cos + x0 * sin;
  }
  return out;
}

function reference(c: Case, q: Float32Array, k: Float32Array, v: Float32Array) {
  const invFreq = invFreqOf(c.dim), scale = 1 / Math.sqrt(c.dim), group = c.headsQ / c.headsKV;
  const shift = c.window - Math.floor(c.window / c.groupSize);
  const out = new Float64Array(q.length), lse = new Float64Array(c.batch * c.headsQ * c.seqQ).fill(-Infinity);
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  for (let b = 0; b < c.batch; b++) {
    const n = c.keyLengths ? c.keyLengths[b]! : c.seqK;
    for (let h = 0; h < c.headsQ; h++)
      for (let i = 0; i < c.seqQ; i++) {
        const p = n - c.seqQ + i, kh = Math.floor(h / group);
        const qBase = at(c, c.headsQ, c.seqQ, b, h, i, 0);
        const qNear = rotated(q, qBase, c.dim, p, invFreq);
        const qFar = rotated(q, qBase, c.dim, Math.floor(p / c.groupSize) + shift, invFreq);
        const logits: number[] = [], keys: number[] = [];
        for (let j = 0; j <= p && j < n; j++) {
          const kBase = at(c, c.headsKV, c.seqK, b, kh, j, 0);
          const near = p - j < c.window;
          const s = near ? dot(qNear, rotated(k, kBase, c.dim, j, invFreq)) : dot(qFar, rotated(k, kBase, c.dim, Math.floor(j / c.groupSize), invFreq));
          logits.push(s * scale);
          keys.push(j);
        }
        if (logits.length === 0) continue;
        const m = Math.max(...logits), w = logits.map((x) => Math.exp(x - m)), sum = w.reduce((a, x) => a + x, 0);
        lse[(b * c.headsQ + h) * c.seqQ + i] = m + Math.log(sum);
        for (let d = 0; d < c.dim; d++) {
          let acc = 0;
          keys.forEach((j, r) => (acc += w[r]! * v[at(c, c.headsKV, c.seqK, b, kh, j, d)]!));
          out[at(c, c.headsQ, c.seqQ, b, h, i, d)] = acc / sum;
        }
      }
  }
  return { out, lse };
}

function run(c: Case, seed: number) {
  const q = randomFloats(c.batch * c.headsQ * c.seqQ * c.dim, seed);
  const k = randomFloats(c.batch * c.headsKV * c.seqK * c.dim, seed + 1);
  const v = randomFloats(c.batch * c.headsKV * c.seqK * c.dim, seed + 2);
  const [q0, k0] = [q.slice(), k.slice()];
  const options = {
    layout: c.layout, batch: c.batch, headsQ: c.headsQ, headsKV: c.headsKV, seqQ: c.seqQ, seqK: c.seqK, headDim: c.dim,
    groupSize: c.groupSize, window: c.window, invFreq: invFreqOf(c.dim), returnLse: true,
    ...(c.keyLengths ? { keyLengths: c.keyLengths } : {}),
  };
  const got = selfExtendAttention(q, k, v, options);
  expect(q).toEqual(q0); // rotates copies
  expect(k).toEqual(k0);
  return { got, want: reference(c, q, k, v), q, k, v, options };
}

function relative(got: ArrayLike<number>, want: Float64Array) {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

describe('selfExtendAttention', () => {
  const cases: Case[] = [
    { layout: 'bshd', batch: 1, headsQ: 2, headsKV: 2, seqQ: 40, seqK: 40, dim: 16, groupSize: 4, window: 8 },
    { layout: 'bhsd', batch: 2, headsQ: 4, headsKV: 2, seqQ: 7, seqK: 53, dim: 22, groupSize: 3, window: 10 },
    { layout: 'bshd', batch: 3, headsQ: 3, headsKV: 1, seqQ: 5, seqK: 37, dim: 8, groupSize: 8, window: 5, keyLengths: Int32Array.from([37, 20, 3]) },
    { layout: 'bshd', batch: 1, headsQ: 1, headsKV: 1, seqQ: 1, seqK: 100, dim: 34, groupSize: 2, window: 1 },
  ];
  cases.forEach((c, n) =>
    it(`equals the eager float64 reference (case ${n}: ${c.layout}, seq ${c.seqQ}/${c.seqK}, G ${c.groupSize}, W ${c.window}; ≤ 2e-6)`, () => {
      const { got, want } = run(c, 100 + n);
      expect(relative(got.out, want.out)).toBeLessThan(2e-6);
      want.lse.forEach((x, i) => (x === -Infinity ? expect(got.lse![i]).toBe(-Infinity) : expect(Math.abs(got.lse![i]! - x)).toBeLessThan(2e-5)));
    }),
  );

  it('with the window covering the row it is plain causal RoPE attention', () => {
    const c: Case = { layout: 'bshd', batch: 1, headsQ: 2, headsKV: 2, seqQ: 12, seqK: 12, dim: 16, groupSize: 4, window: 12 };
    const { got, q, k, v } = run(c, 7);
    const positions = Int32Array.from({ length: 12 }, (_, i) => i);
    const rope = { layout: 'bshd' as const, seqLen: 12, heads: 2, headDim: 16, positions, invFreq: invFreqOf(16) };
    const plain = attention(applyRope(q.slice(), rope), applyRope(k.slice(), rope), v, {
      layout: 'bshd', headsQ: 2, seqQ: 12, seqK: 12, headDim: 16, causal: true,
    });
    expect(relative(got.out, Float64Array.from(plain.out))).toBeLessThan(1e-6);
  });

  it('the async form gives the same bytes', async () => {
    const c = cases[1]!;
    const { got, q, k, v, options } = run(c, 101);
    const again = await selfExtendAttentionAsync(q, k, v, options);
    expect(again.out).toEqual(got.out);
    expect(again.lse).toEqual(got.lse);
  });

  it('rejects bad input, naming the option', () => {
    const q = new Float32Array(16), base = { layout: 'bshd' as const, headsQ: 1, seqQ: 1, seqK: 1, headDim: 16, invFreq: invFreqOf(16) };
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 0, window: 4 })).toThrow(/groupSize/);
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 2, window: 0 })).toThrow(/window/);
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 2, window: 4, invFreq: [1] })).toThrow(/invFreq/);
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 2 } as never)).toThrow(/window/);
    expect(() => selfExtendAttention(new Float64Array(16) as never, q, q, { ...base, groupSize: 2, window: 4 })).toThrow(TypeError);
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 2, window: 4, keyLengths: Int32Array.from([2]) })).toThrow(/keyLengths/);
    expect(() => selfExtendAttention(q, q, q, { ...base, groupSize: 2, window: 4, seqK: 2 })).toThrow(/"k"/);
  });
});
