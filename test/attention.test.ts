// Exact attention against a float64 reference, ONNX's own Attention node cases, and onnxruntime-node's
// MultiHeadAttention; the LSE merge; bad input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { attention, attentionAsync, capabilities, mergeAttentionStates, setSimd, type AttentionOptions } from '../src/index.js';
import { fromHalf, toHalf } from '../bench/half.mjs';
import { randomFloats, SHARED_DATA, sharedDataAvailable } from './helpers.js';
import { singleNodeModel } from './onnx-builder.js';
import { parseFirstNode, parseTensor, ONNX_BOOL, ONNX_FLOAT16, type Tensor } from './onnx-reader.js';

interface Dims {
  batch: number;
  headsQ: number;
  headsKV: number;
  seqQ: number;
  seqK: number;
  headDim: number;
  headDimV: number;
  layout: 'bshd' | 'bhsd';
}

const idx = (d: Dims, heads: number, seq: number, dim: number, b: number, h: number, t: number, c: number) =>
  d.layout === 'bshd' ? ((b * seq + t) * heads + h) * dim + c : ((b * heads + h) * seq + t) * dim + c;

/** Attention in float64 from the definition, with the same mask rules as the library. */
function reference(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, d: Dims, o: Partial<AttentionOptions>) {
  const out = new Float64Array(d.batch * d.headsQ * d.seqQ * d.headDimV);
  const lse = new Float64Array(d.batch * d.headsQ * d.seqQ).fill(-Infinity);
  const scale = o.scale ?? 1 / Math.sqrt(d.headDim), tau = o.temperature ?? 1, cap = o.softcap ?? 0;
  const group = d.headsQ / d.headsKV;
  for (let b = 0; b < d.batch; b++)
    for (let h = 0; h < d.headsQ; h++)
      for (let i = 0; i < d.seqQ; i++) {
        const len = o.keyLengths ? o.keyLengths[b]! : d.seqK;
        const p = i + len - d.seqQ;
        const logits = new Float64Array(d.seqK).fill(-Infinity);
        for (let j = 0; j < d.seqK; j++) {
          let main = j < len;
          if (o.causal) main &&= j <= p;
          if (o.window) main &&= o.causal ? p - j < o.window : Math.abs(p - j) < o.window;
          let prefix = (j < (o.globalTokens ?? 0)) && j < len;
          if (o.causal) prefix &&= j <= p;
          if (!main && !prefix) continue;
          let dot = 0;
          for (let c = 0; c < d.headDim; c++) dot += q[idx(d, d.headsQ, d.seqQ, d.headDim, b, h, i, c)]! * k[idx(d, d.headsKV, d.seqK, d.headDim, b, Math.floor(h / group), j, c)]!;
          let x = scale * dot;
          if (cap > 0) x = cap * Math.tanh(x / cap);
          if (o.bias) {
            const [bb, bh] = o.biasShape ?? [1, 1];
            x += o.bias[(((bb === 1 ? 0 : b) * bh + (bh === 1 ? 0 : h)) * d.seqQ + i) * d.seqK + j]!;
          }
          if (o.alibiSlopes) x -= (o.alibiSlopes as ArrayLike<number>)[h]! * Math.abs(p - j);
          logits[j] = x / tau;
        }
        const m = Math.max(...logits);
        if (m === -Infinity) continue;
        let sum = 0;
        for (const x of logits) sum += Math.exp(x - m);
        lse[(b * d.headsQ + h) * d.seqQ + i] = m + Math.log(sum);
        for (let j = 0; j < d.seqK; j++) {
          const w = Math.exp(logits[j]! - m) / sum;
          if (w === 0) continue;
          for (let c = 0; c < d.headDimV; c++) out[idx(d, d.headsQ, d.seqQ, d.headDimV, b, h, i, c)] += w * v[idx(d, d.headsKV, d.seqK, d.headDimV, b, Math.floor(h / group), j, c)]!;
        }
      }
  return { out, lse };
}

function worstRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!, g = got[i]!;
    if (w === -Infinity && g === -Infinity) continue;
    worst = Math.max(worst, Math.abs(g - w) / (1 + Math.abs(w)));
  }
  return worst;
}

describe('attention', () => {
  const levels = capabilities().simdAvailable as string[];

  it('equals a float64 reference on every SIMD level: layouts, GQA, masks, bias, ALiBi, softcap, temperature, LSE', async () => {
    const cases: [Dims, Partial<AttentionOptions>][] = [
      [{ batch: 2, headsQ: 4, headsKV: 2, seqQ: 9, seqK: 70, headDim: 24, headDimV: 16, layout: 'bshd' }, { causal: true }],
      [{ batch: 1, headsQ: 2, headsKV: 1, seqQ: 130, seqK: 130, headDim: 64, headDimV: 64, layout: 'bhsd' }, { window: 17, causal: true, globalTokens: 3 }],
      [{ batch: 2, headsQ: 3, headsKV: 3, seqQ: 20, seqK: 33, headDim: 8, headDimV: 8, layout: 'bhsd' }, { window: 5, keyLengths: Int32Array.of(33, 12) }],
      [{ batch: 1, headsQ: 2, headsKV: 2, seqQ: 12, seqK: 40, headDim: 16, headDimV: 12, layout: 'bshd' }, { alibiSlopes: [0.5, 0.0625], softcap: 4, temperature: 0.8, causal: true }],
      [{ batch: 1, headsQ: 1, headsKV: 1, seqQ: 50, seqK: 20, headDim: 4, headDimV: 4, layout: 'bshd' }, { causal: true }],
    ];
    let seed = 1;
    try {
      for (const level of levels) {
        setSimd(level as never);
        for (const [d, o] of cases) {
          const q = randomFloats(d.batch * d.headsQ * d.seqQ * d.headDim, seed++);
          const k = randomFloats(d.batch * d.headsKV * d.seqK * d.headDim, seed++);
          const v = randomFloats(d.batch * d.headsKV * d.seqK * d.headDimV, seed++);
          const want = reference(q, k, v, d, o);
          const options = { ...d, ...o, returnLse: true };
          const got = seed % 2 ? attention(q, k, v, options) : await attentionAsync(q, k, v, options);
          expect(worstRelative(got.out, want.out), `${level} ${JSON.stringify(d)}`).toBeLessThan(2e-6);
          expect(worstRelative(got.lse!, want.lse)).toBeLessThan(2e-6);
        }
      }
    } finally {
      setSimd(capabilities().simdDetected as never);
    }
  });

  it('applies softcap before the bias (a -Infinity bias hides its key); a dense bias broadcasts over batch or heads', () => {
    const d: Dims = { batch: 2, headsQ: 3, headsKV: 3, seqQ: 5, seqK: 7, headDim: 8, headDimV: 8, layout: 'bhsd' };
    const q = randomFloats(2 * 3 * 5 * 8, 3), k = randomFloats(2 * 3 * 7 * 8, 4), v = randomFloats(2 * 3 * 7 * 8, 5);
    const bias = randomFloats(2 * 1 * 5 * 7, 6);
    bias[3] = -Infinity;
    bias[40] = -Infinity;
    for (const softcap of [0, 2]) {
      const o = { bias, biasShape: [2, 1] as [number, number], softcap };
      const got = attention(q, k, v, { ...d, ...o, returnLse: true });
      expect(worstRelative(got.out, reference(q, k, v, d, o).out)).toBeLessThan(2e-6);
    }
    // Ambiguous broadcast (batch == headsQ) needs biasShape.
    const square = { ...d, batch: 3 };
    expect(() => attention(randomFloats(3 * 3 * 5 * 8, 1), randomFloats(3 * 3 * 7 * 8, 2), randomFloats(3 * 3 * 7 * 8, 3), { ...square, bias: new Float32Array(3 * 5 * 7) })).toThrow(/give "biasShape"/);
  });

  it("reproduces ONNX's Attention node cases (opsets 23 and 24) whose features it has", () => {
    if (!sharedDataAvailable('onnx-node-tests')) return;
    const root = path.join(SHARED_DATA, 'onnx-node-tests');
    const names = fs.readdirSync(root).filter((n) => n.startsWith('test_attention'));
    const passed: string[] = [], failed: string[] = [];
    for (const name of names) {
      const node = parseFirstNode(fs.readFileSync(path.join(root, name, 'model.onnx')));
      const dir = path.join(root, name, 'test_data_set_0');
      const inputs: (Tensor | undefined)[] = node.inputs.map((input, i) => {
        const file = path.join(dir, `input_${node.inputs.slice(0, i).filter((x) => x !== '').length}.pb`);
        return input === '' ? undefined : parseTensor(fs.readFileSync(file));
      });
      const [Q, K, V, mask, pastKey, pastValue, nonpad] = inputs;
      const want = parseTensor(fs.readFileSync(path.join(dir, 'output_0.pb')));
      const a = node.attributes;
      const half = Q!.dataType === ONNX_FLOAT16;
      const widen = (t: Tensor) => (half ? Float64Array.from(t.data as Uint16Array, fromHalf) : Float64Array.from(t.data as Float32Array));
      // Everything as [batch, heads, seq, dim] (3D inputs are [batch, seq, heads · dim]).
      const as4d = (t: Tensor, heads: number) => {
        if (t.dims.length === 4) return { data: widen(t), heads: t.dims[1]!, seq: t.dims[2]!, dim: t.dims[3]! };
        const [bt, seq, hidden] = t.dims as [number, number, number];
        const dim = hidden / heads, src = widen(t), out = new Float64Array(src.length);
        for (let b = 0; b < bt; b++)
          for (let s = 0; s < seq; s++)
            for (let h = 0; h < heads; h++)
              for (let c = 0; c < dim; c++) out[((b * heads + h) * seq + s) * dim + c] = src[((b * seq + s) * heads + h) * dim + c]!;
        return { data: out, heads, seq, dim };
      };
      const batch = Q!.dims[0]!;
      const q = as4d(Q!, a.q_num_heads ?? 0), k0 = as4d(K!, a.kv_num_heads ?? 0), v0 = as4d(V!, a.kv_num_heads ?? 0);
      // Past keys and values come first along the sequence.
      const concat = (past: Tensor | undefined, cur: { data: Float64Array; heads: number; seq: number; dim: number }) => {
        if (!past) return cur;
        const p = as4d(past, cur.heads), seq = p.seq + cur.seq, out = new Float64Array(batch * cur.heads * seq * cur.dim);
        for (let b = 0; b < batch; b++)
          for (let h = 0; h < cur.heads; h++) {
            const dst = ((b * cur.heads + h) * seq) * cur.dim;
            out.set(p.data.subarray(((b * cur.heads + h) * p.seq) * cur.dim, ((b * cur.heads + h) * p.seq + p.seq) * cur.dim), dst);
            out.set(cur.data.subarray(((b * cur.heads + h) * cur.seq) * cur.dim, ((b * cur.heads + h) * cur.seq + cur.seq) * cur.dim), dst + p.seq * cur.dim);
          }
        return { ...cur, data: out, seq };
      };
      const k = concat(pastKey, k0), v = concat(pastValue, v0);
      const options: AttentionOptions = {
        layout: 'bhsd', batch, headsQ: q.heads, headsKV: k.heads, seqQ: q.seq, seqK: k.seq, headDim: q.dim, headDimV: v.dim,
        causal: a.is_causal === 1,
      };
      if (a.scale !== undefined) options.scale = a.scale;
      if (a.softcap) options.softcap = a.softcap;
      if (nonpad) options.keyLengths = Int32Array.from(nonpad.data as BigInt64Array, Number);
      if (mask) {
        // Broadcast [.., seqQ, seqK] right-aligned to [batch | 1, heads | 1, seqQ, seqK]; booleans become 0 / -inf.
        const dims = [1, 1, 1, 1].concat(mask.dims).slice(-4);
        const values = mask.dataType === ONNX_BOOL ? Float32Array.from(mask.data as Uint8Array, (x) => (x ? 0 : -Infinity))
          : mask.dataType === ONNX_FLOAT16 ? Float32Array.from(mask.data as Uint16Array, fromHalf) : (mask.data as Float32Array);
        // A mask narrower than the keys (opset 24, padded KV) hides the keys past its width.
        const width = dims[3]!, planes = dims[0]! * dims[1]! * dims[2]!;
        const padded = new Float32Array(planes * k.seq).fill(-Infinity);
        for (let r = 0; r < planes; r++) padded.set(values.subarray(r * width, (r + 1) * width), r * k.seq);
        options.bias = padded;
        options.biasShape = [dims[0]!, dims[1]!];
      }
      const toStorage = (x: Float64Array) => (half ? Uint16Array.from(x, toHalf) : Float32Array.from(x));
      // ONNX's is_causal keeps keys j <= i + (past keys): aligned top-left after the past, while nonpad lengths align
      // the queries to the end of each row's valid keys (bottom-right, as here). The rest becomes a bias.
      const pastLength = pastKey ? k.seq - k0.seq : 0;
      if (options.causal && q.seq + pastLength !== k.seq && !nonpad) {
        const [bb, bh] = options.biasShape ?? [1, 1];
        const bias = new Float32Array(bb * bh * q.seq * k.seq);
        if (options.bias) bias.set(options.bias);
        for (let plane = 0; plane < bb * bh; plane++)
          for (let i = 0; i < q.seq; i++)
            for (let j = i + pastLength + 1; j < k.seq; j++) bias[(plane * q.seq + i) * k.seq + j] = -Infinity;
        options.bias = bias;
        options.biasShape = [bb, bh];
        options.causal = false;
      }
      if (half) options.dtype = 'float16';
      const { out } = attention(toStorage(q.data), toStorage(k.data), toStorage(v.data), options);
      const got = half ? Float64Array.from(out as Uint16Array, fromHalf) : Float64Array.from(out as Float32Array);
      // Back to the expected layout (3D outputs are [batch, seq, heads · dimV]).
      const expected = widen(want);
      const ours = new Float64Array(expected.length);
      if (want.dims.length === 4) ours.set(got);
      else
        for (let b = 0; b < batch; b++)
          for (let s = 0; s < q.seq; s++)
            for (let h = 0; h < q.heads; h++)
              for (let c = 0; c < v.dim; c++) ours[((b * q.seq + s) * q.heads + h) * v.dim + c] = got[((b * q.heads + h) * q.seq + s) * v.dim + c]!;
      let worst = 0;
      expected.forEach((w, i) => (worst = Math.max(worst, Math.abs(ours[i]! - w) / (1 + Math.abs(w)))));
      if (worst < (half ? 2e-3 : 1e-5)) passed.push(name);
      else failed.push(`${name}: ${worst.toExponential(2)}`);
    }
    console.log(`ONNX Attention cases: ${passed.length} of ${names.length} pass`);
    expect(failed).toEqual([]);
  });

  it("agrees with onnxruntime-node's com.microsoft MultiHeadAttention on random inputs", async () => {
    const batch = 2, heads = 4, seq = 37, dim = 32;
    const model = singleNodeModel({
      op: 'MultiHeadAttention', domain: 'com.microsoft',
      inputs: ['query', 'key', 'value'].map((name) => ({ name, elemType: 1, dims: [batch, seq, heads * dim] })),
      outputs: [{ name: 'output', elemType: 1, dims: [batch, seq, heads * dim] }],
      attributes: { num_heads: heads },
      opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    });
    const session = await ort.InferenceSession.create(model);
    const q = randomFloats(batch * seq * heads * dim, 1), k = randomFloats(batch * seq * heads * dim, 2), v = randomFloats(batch * seq * heads * dim, 3);
    const dims = [batch, seq, heads * dim];
    const theirs = (await session.run({ query: new ort.Tensor('float32', q, dims), key: new ort.Tensor('float32', k, dims), value: new ort.Tensor('float32', v, dims) })).output!.data as Float32Array;
    await session.release();
    const { out } = attention(q, k, v, { layout: 'bshd', batch, headsQ: heads, seqQ: seq, seqK: seq, headDim: dim });
    let worst = 0;
    out.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - theirs[i]!))));
    expect(worst).toBeLessThan(1e-5);
  });

  it('merges two states over a key split into attention over all keys', () => {
    const d: Dims = { batch: 1, headsQ: 2, headsKV: 2, seqQ: 6, seqK: 50, headDim: 16, headDimV: 16, layout: 'bhsd' };
    const q = randomFloats(2 * 6 * 16, 7), k = randomFloats(2 * 50 * 16, 8), v = randomFloats(2 * 50 * 16, 9);
    const part = (x: Float32Array, from: number, to: number) => {
      const out = new Float32Array(2 * (to - from) * 16);
      for (let h = 0; h < 2; h++) out.set(x.subarray((h * 50 + from) * 16, (h * 50 + to) * 16), h * (to - from) * 16);
      return out;
    };
    const full = attention(q, k, v, { ...d, returnLse: true });
    const a = attention(q, part(k, 0, 20), part(v, 0, 20), { ...d, seqK: 20, returnLse: true });
    const b = attention(q, part(k, 20, 50), part(v, 20, 50), { ...d, seqK: 30, returnLse: true });
    const merged = mergeAttentionStates(a.out, a.lse!, b.out, b.lse!, { layout: 'bhsd', heads: 2, seq: 6, dim: 16 });
    expect(worstRelative(merged.out, full.out)).toBeLessThan(2e-6);
    expect(worstRelative(merged.lse, full.lse!)).toBeLessThan(2e-6);
    expect(() => mergeAttentionStates(a.out, a.lse!, b.out, b.lse!, { layout: 'bhsd', heads: 3, seq: 6, dim: 16 })).toThrow(RangeError);
  });

  it('rejects bad input with TypeError or RangeError naming the option', () => {
    const q = new Float32Array(2 * 4 * 8), k = new Float32Array(2 * 4 * 8), v = new Float32Array(2 * 4 * 8);
    const ok: AttentionOptions = { layout: 'bshd', headsQ: 2, seqQ: 4, seqK: 4, headDim: 8 };
    expect(() => attention(q, k, v, { ...ok, headsKV: 3 })).toThrow(/"headsQ" \(2\) must be a multiple of "headsKV" \(3\)/);
    expect(() => attention(q, k, v, { ...ok, window: 0 })).toThrow(/"window" must be an integer from 1/);
    expect(() => attention(q, k, v, { ...ok, scale: Number.NaN })).toThrow(/"scale" must be finite/);
    expect(() => attention(q, k, v, { ...ok, temperature: Number.POSITIVE_INFINITY })).toThrow(/"temperature" must be finite/);
    expect(() => attention(q, k, v, { ...ok, temperature: 0 })).toThrow(/"temperature" must be above 0/);
    expect(() => attention(q, k, v, { ...ok, seqK: 5 })).toThrow(/"k" must hold 80 values/);
    expect(() => attention(q, k, v, { ...ok, headDim: 300 })).toThrow(/"headDim"/);
    expect(() => attention(q, k, v, { ...ok, globalTokens: 2 })).toThrow(/needs a "window"/);
    expect(() => attention(q, k, v, { ...ok, anchor: true })).toThrow(/"anchor" needs "segments"/);
    expect(() => attention(q, k, v, { ...ok, segments: Int32Array.of(0, 3, 2, 4) })).toThrow(/"segments" must increase/);
    expect(() => attention(q, k, v, { ...ok, keyLengths: Int32Array.of(5) })).toThrow(/"keyLengths"\[0\] is 5/);
    expect(() => attention(q, k, [1] as never, ok)).toThrow(TypeError);
    expect(() => attention(new Uint16Array(64), new Uint16Array(64), new Uint16Array(64), ok)).toThrow(/"dtype" is required/);
    expect(() => attention(q, k, v, { ...ok, headsQ: 2 ** 20, seqQ: 2 ** 20 })).toThrow(RangeError);
    expect(() => attention(q, k, v, { ...ok, causal: 'yes' } as never)).toThrow(TypeError);
    expect(() => attention(q, k, v, { ...ok, mask: 1 } as never)).toThrow(/Unknown option "mask"/);
  });
});
