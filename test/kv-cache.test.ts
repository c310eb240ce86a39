// KvCache against a float64 reference over the whole token history: decode steps and chunked prefill, eviction
// none / sliding / Λ, GQA, float16 storage, batch rows, async; bounded memory; bad input.
import { describe, expect, it } from 'vitest';

import { KvCache, attention, DisposedError } from '../src/index.js';
import { fromHalf, toHalf } from '../bench/half.mjs';
import { randomFloats } from './helpers.js';

interface Setup {
  batch: number;
  headsQ: number;
  headsKV: number;
  dim: number;
  dimV: number;
  eviction: 'none' | 'sliding' | 'lambda';
  window: number;
  globals: number;
}

/** The history's queries [batch, total, headsQ, dim] attend the history's keys in float64: causal, with the
 *  cache's window (p − j < W) and global tokens (j < g). Rows `from`…`to` of each batch row are returned. */
function reference(s: Setup, q: Float64Array, k: Float64Array, v: Float64Array, total: number, from: number, to: number) {
  const n = to - from, group = s.headsQ / s.headsKV, scale = 1 / Math.sqrt(s.dim);
  const out = new Float64Array(s.batch * n * s.headsQ * s.dimV);
  for (let b = 0; b < s.batch; b++)
    for (let t = from; t < to; t++)
      for (let h = 0; h < s.headsQ; h++) {
        const kh = Math.floor(h / group);
        const logits: number[] = [], rows: number[] = [];
        for (let j = 0; j <= t; j++) {
          const inWindow = s.eviction === 'none' || t - j < s.window;
          if (!inWindow && !(s.eviction === 'lambda' && j < s.globals)) continue;
          let dot = 0;
          for (let c = 0; c < s.dim; c++) dot += q[((b * total + t) * s.headsQ + h) * s.dim + c]! * k[((b * total + j) * s.headsKV + kh) * s.dim + c]!;
          logits.push(dot * scale);
          rows.push(j);
        }
        const m = Math.max(...logits);
        const w = logits.map((x) => Math.exp(x - m)), sum = w.reduce((a, c) => a + c, 0);
        for (let c = 0; c < s.dimV; c++) {
          let acc = 0;
          rows.forEach((j, r) => (acc += w[r]! * v[((b * total + j) * s.headsKV + kh) * s.dimV + c]!));
          out[((b * n + (t - from)) * s.headsQ + h) * s.dimV + c] = acc / sum;
        }
      }
  return out;
}

/** Tokens [from, to) of a [batch, total, heads, dim] tensor. */
function tokens(x: Float32Array, batch: number, total: number, perToken: number, from: number, to: number): Float32Array {
  const out = new Float32Array(batch * (to - from) * perToken);
  for (let b = 0; b < batch; b++) out.set(x.subarray((b * total + from) * perToken, (b * total + to) * perToken), b * (to - from) * perToken);
  return out;
}

function maxRelative(got: ArrayLike<number>, want: Float64Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

/** Appends the history in the given chunk sizes, attending after each; returns the worst relative error. */
function replay(s: Setup, chunks: number[], dtype: 'float32' | 'float16', seed: number) {
  const total = chunks.reduce((a, c) => a + c, 0);
  let q = randomFloats(s.batch * total * s.headsQ * s.dim, seed);
  let k = randomFloats(s.batch * total * s.headsKV * s.dim, seed + 1);
  let v = randomFloats(s.batch * total * s.headsKV * s.dimV, seed + 2);
  // With float16 storage the cache rounds k, v and q to half; the reference reads the same rounded values.
  if (dtype === 'float16') [q, k, v] = [q, k, v].map((x) => Float32Array.from(x, (e) => fromHalf(toHalf(e))));
  const cache = new KvCache({
    layers: 2, batch: s.batch, headsKV: s.headsKV, headDim: s.dim, headDimV: s.dimV, dtype, eviction: s.eviction,
    ...(s.eviction === 'none' ? {} : { window: s.window }), ...(s.eviction === 'lambda' ? { globalTokens: s.globals } : {}),
  });
  let worst = 0, at = 0, maxStored = 0;
  for (const n of chunks) {
    const kk = tokens(k, s.batch, total, s.headsKV * s.dim, at, at + n), vv = tokens(v, s.batch, total, s.headsKV * s.dimV, at, at + n);
    cache.append(1, kk, vv);
    const qq = tokens(q, s.batch, total, s.headsQ * s.dim, at, at + n);
    const got = cache.attend(1, qq, { headsQ: s.headsQ });
    const want = reference(s, Float64Array.from(q), Float64Array.from(k), Float64Array.from(v), total, at, at + n);
    worst = Math.max(worst, maxRelative(got.out, want));
    at += n;
    expect(cache.position(1)).toBe(at);
    expect(cache.position(0)).toBe(0);
    maxStored = Math.max(maxStored, cache.stored(1));
  }
  const bytes = cache.memoryBytes;
  cache.dispose();
  return { worst, maxStored, bytes };
}

describe('KvCache', () => {
  const base: Setup = { batch: 1, headsQ: 4, headsKV: 2, dim: 24, dimV: 20, eviction: 'none', window: 0, globals: 0 };

  it('decodes token by token and in chunks like attention over the whole history (float32, ≤ 2e-6)', () => {
    const steps = [5, 1, 1, 3, 1, 1, 1, 7, 1, 1];
    expect(replay(base, steps, 'float32', 11).worst).toBeLessThan(2e-6);
    expect(replay({ ...base, batch: 3, headsQ: 3, headsKV: 3, dim: 17, dimV: 17 }, steps, 'float32', 12).worst).toBeLessThan(2e-6);
  });

  it('sliding-window eviction matches the windowed reference and keeps memory bounded', () => {
    const s: Setup = { ...base, eviction: 'sliding', window: 6 };
    const steps = [9, ...Array(40).fill(1), 4, ...Array(30).fill(1)];
    const r = replay(s, steps, 'float32', 21);
    expect(r.worst).toBeLessThan(2e-6);
    expect(r.maxStored).toBeLessThanOrEqual(2 * s.window + 9);
  });

  it("Λ eviction (LM-Infinite: global tokens + window) matches the reference", () => {
    const s: Setup = { ...base, batch: 2, eviction: 'lambda', window: 5, globals: 3 };
    const steps = [2, 1, 1, 6, ...Array(50).fill(1), 3, ...Array(20).fill(1)];
    const r = replay(s, steps, 'float32', 31);
    expect(r.worst).toBeLessThan(2e-6);
    expect(r.maxStored).toBeLessThanOrEqual(s.globals + 2 * s.window + 6);
  });

  it('float16 storage: the same math on half-rounded data, output rounded once to half (≤ 2e-3)', () => {
    const r = replay({ ...base, eviction: 'sliding', window: 7 }, [4, ...Array(20).fill(1)], 'float16', 41);
    expect(r.worst).toBeLessThan(2e-3);
  });

  it('memory stays O(window) over a long generation with eviction, and grows without', () => {
    const make = (eviction: 'none' | 'sliding') =>
      new KvCache({ layers: 1, headsKV: 1, headDim: 8, ...(eviction === 'sliding' ? { eviction, window: 16 } : {}) });
    const sliding = make('sliding'), full = make('none');
    const kv = new Float32Array(8).fill(0.5);
    let peak = 0;
    for (let t = 0; t < 2000; t++) {
      sliding.append(0, kv, kv);
      full.append(0, kv, kv);
      peak = Math.max(peak, sliding.memoryBytes);
    }
    expect(sliding.stored(0)).toBeLessThanOrEqual(32);
    expect(peak).toBeLessThanOrEqual(2 * 32 * 8 * 4);
    expect(full.stored(0)).toBe(2000);
    expect(full.memoryBytes).toBeGreaterThanOrEqual(2 * 2000 * 8 * 4);
    sliding.dispose();
    full.dispose();
  });

  it('attends with the options of attention(): scale, temperature, softcap, ALiBi, LSE, non-causal', () => {
    const headsQ = 2, dim = 16, n = 9;
    const q = randomFloats(n * headsQ * dim, 51), k = randomFloats(n * headsQ * dim, 52), v = randomFloats(n * headsQ * dim, 53);
    const cache = new KvCache({ layers: 1, headsKV: headsQ, headDim: dim });
    cache.append(0, k, v);
    const opts = { scale: 0.3, temperature: 0.7, softcap: 2, alibiSlopes: [0.5, 0.25], returnLse: true };
    const shape = { layout: 'bshd' as const, headsQ, seqQ: n, seqK: n, headDim: dim };
    for (const causal of [true, false]) {
      const got = cache.attend(0, q, { ...opts, headsQ, causal });
      const want = attention(q, k, v, { ...shape, ...opts, causal });
      expect(got.out).toEqual(want.out);
      expect(got.lse).toEqual(want.lse);
    }
    // The last 3 tokens' queries alone: the same rows of the full causal result.
    const last = cache.attend(0, q.subarray((n - 3) * headsQ * dim), { headsQ });
    const full = attention(q, k, v, { ...shape, causal: true });
    expect(last.out).toEqual(full.out.subarray((n - 3) * headsQ * dim));
    cache.dispose();
  });

  it('attendAsync gives the same result, and append waits for it (throws while it runs)', async () => {
    const cache = new KvCache({ layers: 1, headsKV: 2, headDim: 8, eviction: 'sliding', window: 4 });
    const kv = randomFloats(10 * 2 * 8, 61);
    cache.append(0, kv, kv);
    const q = randomFloats(2 * 2 * 8, 62);
    const sync = cache.attend(0, q);
    const pending = cache.attendAsync(0, q);
    expect(() => cache.append(0, kv, kv)).toThrow(/has not settled/);
    expect((await pending).out).toEqual(sync.out);
    cache.append(0, kv, kv);
    cache.dispose();
  });

  it('starts empty, resets, and refuses use after dispose', () => {
    const cache = new KvCache({ layers: 1, headsKV: 1, headDim: 4 });
    expect(cache.attend(0, new Float32Array(0)).out.length).toBe(0);
    cache.append(0, new Float32Array(0), new Float32Array(0));
    cache.append(0, new Float32Array(8).fill(1), new Float32Array(8).fill(2));
    expect(Array.from(cache.attend(0, new Float32Array(4).fill(1)).out)).toEqual([2, 2, 2, 2]);
    cache.reset();
    expect(cache.stored(0)).toBe(0);
    expect(() => cache.attend(0, new Float32Array(4))).toThrow(RangeError);
    cache.dispose();
    cache.dispose();
    expect(() => cache.append(0, new Float32Array(4), new Float32Array(4))).toThrow(DisposedError);
  });

  it('rejects bad configurations and inputs, naming the argument', () => {
    const bad: [object, RegExp, ErrorConstructor][] = [
      [{ headsKV: 1, headDim: 4 }, /layers/, TypeError],
      [{ layers: 1, headsKV: 1, headDim: 300 }, /headDim/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, eviction: 'sliding' }, /window/, TypeError],
      [{ layers: 1, headsKV: 1, headDim: 4, eviction: 'sliding', window: 0 }, /window/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, window: 4 }, /window/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, eviction: 'sliding', window: 4, globalTokens: 2 }, /globalTokens/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, eviction: 'ring' }, /eviction/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, dtype: 'int8' }, /dtype/, RangeError],
      [{ layers: 1, headsKV: 1, headDim: 4, extra: 1 }, /extra/, TypeError],
    ];
    for (const [options, message, kind] of bad) expect(() => new KvCache(options as never)).toThrow(kind), expect(() => new KvCache(options as never)).toThrow(message);
    const cache = new KvCache({ layers: 2, headsKV: 2, headDim: 4, eviction: 'sliding', window: 3 });
    expect(() => cache.append(2, new Float32Array(8), new Float32Array(8))).toThrow(/layer/);
    expect(() => cache.append(0, new Float32Array(7), new Float32Array(8))).toThrow(/"k"/);
    expect(() => cache.append(0, new Float32Array(8), new Float32Array(16))).toThrow(/"v"/);
    expect(() => cache.append(0, new Float64Array(8) as never, new Float32Array(8))).toThrow(TypeError);
    expect(() => cache.append(0, new Uint16Array(8), new Uint16Array(8))).toThrow(/dtype/);
    cache.append(0, new Float32Array(8), new Float32Array(8));
    expect(() => cache.attend(0, new Float32Array(8), { headsQ: 3 })).toThrow(/headsQ/);
    expect(() => cache.attend(0, new Float32Array(16))).toThrow(/seqQ/);
    expect(() => cache.attend(0, new Float32Array(8), { window: 2 })).toThrow(/window/);
    expect(() => cache.attend(0, new Float32Array(8), { alibiSlopes: [1, 1] })).toThrow(/alibiSlopes/);
    expect(() => cache.attend(0, new Float32Array(8), { temperature: 0 })).toThrow(/temperature/);
    expect(() => cache.attend(0, new Float32Array(8), { scale: NaN })).toThrow(/scale/);
    cache.dispose();
  });

  it('the raw handle re-checks its arguments', async () => {
    const { binding } = await import('../src/native/load.js');
    const Handle = binding().KvCacheHandle;
    expect(() => new Handle(1, 1, 1, 4, 4, 'float32', 'sliding', 0, 0)).toThrow(RangeError);
    const h = new Handle(1, 1, 1, 4, 4, 'float32', 'none', 0, 0);
    expect(() => h.append(0, new Float32Array(4), new Float32Array(4), 'float32', 2)).toThrow(/"k"/);
    h.append(0, new Float32Array(4), new Float32Array(4), 'float32', 1);
    const q = new Float32Array(4);
    expect(() => h.attend(0, q, 'float32', 1, 2, new Float32Array(8), null, 1, 1, 0, true, 0, 0, null)).toThrow(RangeError);
    expect(() => h.attend(0, q, 'float32', 1, 1, q, null, 1, 1, 0, true, 0, 0, null)).toThrow(/overlap/);
    h.release();
    expect(() => h.stored(0)).toThrow(/disposed/);
  });
});
