// Context extension by ONNX graph rewrites, each on a small model built here and run by onnxruntime, against a
// hand-computed float64 reference; refusals when a pattern is absent; the untouched parts stay byte-identical.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { Embedder, extendContext } from '../src/index.js';
import { OnnxGraph } from '../src/embed/onnx-graph.js';
import { floatTensor, int64Tensor, onnxModel, ONNX_FLOAT, ONNX_INT64 } from '../src/embed/onnx-proto.js';
import { randomFloats, SHARED_DATA, sharedDataAvailable } from './helpers.js';

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const s = await ort.InferenceSession.create(model);
  const out = await s.run(feeds);
  await s.release();
  return out;
}

const softmaxModel = () => new Uint8Array(onnxModel({
  name: 'softmax', initializers: [], nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', int: -1 }] }],
  inputs: [{ name: 'x', elemType: ONNX_FLOAT, dims: [2, 5] }], outputs: [{ name: 'y', elemType: ONNX_FLOAT, dims: [2, 5] }],
}));

describe('extendContext', () => {
  it('temperature divides every Softmax input by τ (TempScale)', async () => {
    const x = randomFloats(10, 3, 3);
    for (const tau of [0.5, 1.7]) {
      const y = (await run(extendContext(softmaxModel(), { temperature: tau }), { x: new ort.Tensor('float32', x, [2, 5]) })).y!.data as Float32Array;
      for (let r = 0; r < 2; r++) {
        const row = Array.from(x.subarray(r * 5, r * 5 + 5), (v) => v / tau), m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m)), sum = e.reduce((a, b) => a + b, 0);
        e.forEach((v, c) => expect(Math.abs(y[r * 5 + c]! - v / sum)).toBeLessThan(1e-6));
      }
    }
  });

  it('a position table stretched by interpolation, with its position-id buffer, reads longer inputs', async () => {
    const rows = 8, dim = 4, table = randomFloats(rows * dim, 9);
    const model = new Uint8Array(onnxModel({
      name: 'positions',
      initializers: [
        floatTensor('position_embeddings', table, [rows, dim]),
        int64Tensor('position_ids', [...Array(rows).keys()], [1, rows]),
        int64Tensor('one', [1], []), int64Tensor('zero', [0]), int64Tensor('axis0', [0]), int64Tensor('axis1', [1]),
      ],
      nodes: [
        { op: 'Shape', inputs: ['input_ids'], outputs: ['shape'] },
        { op: 'Gather', inputs: ['shape', 'one'], outputs: ['seq'], attributes: [{ name: 'axis', int: 0 }] },
        { op: 'Unsqueeze', inputs: ['seq', 'axis0'], outputs: ['seq1'] },
        { op: 'Slice', inputs: ['position_ids', 'zero', 'seq1', 'axis1'], outputs: ['ids'] },
        { op: 'Gather', inputs: ['position_embeddings', 'ids'], outputs: ['out'], attributes: [{ name: 'axis', int: 0 }] },
      ],
      inputs: [{ name: 'input_ids', elemType: ONNX_INT64, dims: [1, 's'] }],
      outputs: [{ name: 'out', elemType: ONNX_FLOAT, dims: [1, 's', dim] }],
    }));
    const feeds = (n: number) => ({ input_ids: new ort.Tensor('int64', new BigInt64Array(n), [1, n]) });
    expect((await run(model, feeds(16))).out!.dims).toEqual([1, 8, dim]); // the original cannot reach past 8
    for (const keep of [0, 3]) {
      const stretched = extendContext(model, { positionTable: { rows: 16, keep } });
      const out = await run(stretched, feeds(16));
      expect(out.out!.dims).toEqual([1, 16, dim]);
      const got = out.out!.data as Float32Array;
      for (let j = 0; j < 16; j++) {
        const x = j < keep ? j : keep + ((j - keep) * (rows - keep)) / (16 - keep);
        const lo = Math.min(Math.floor(x), rows - 2), f = x - lo; // past the last row: along the last two rows
        for (let d = 0; d < dim; d++) {
          const want = (1 - f) * table[lo * dim + d]! + f * table[(lo + 1) * dim + d]!;
          expect(Math.abs(got[j * dim + d]! - want)).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('rope replaces inverse frequencies and recomputes cos / sin caches for more positions', async () => {
    const half = 3, rows = 4;
    const oldFreq = Float32Array.of(1, 0.1, 0.01), newFreq = Float64Array.of(0.5, 0.02, 0.001);
    const cache = (f: (x: number) => number) => Float32Array.from({ length: rows * 2 * half }, (_, i) => f(Math.floor(i / (2 * half)) * oldFreq[i % half]!));
    const model = new Uint8Array(onnxModel({
      name: 'rope',
      initializers: [floatTensor('inv_freq', oldFreq, [1, half]), floatTensor('cos_cached', cache(Math.cos), [rows, 2 * half]), floatTensor('sin_cached', cache(Math.sin), [rows, 2 * half])],
      nodes: [
        { op: 'MatMul', inputs: ['p', 'inv_freq'], outputs: ['angles'] },
        { op: 'Gather', inputs: ['cos_cached', 'idx'], outputs: ['cos'], attributes: [{ name: 'axis', int: 0 }] },
        { op: 'Gather', inputs: ['sin_cached', 'idx'], outputs: ['sin'], attributes: [{ name: 'axis', int: 0 }] },
      ],
      inputs: [{ name: 'p', elemType: ONNX_FLOAT, dims: ['n', 1] }, { name: 'idx', elemType: ONNX_INT64, dims: ['n'] }],
      outputs: [{ name: 'angles', elemType: ONNX_FLOAT, dims: ['n', half] }, { name: 'cos', elemType: ONNX_FLOAT, dims: ['n', 2 * half] }, { name: 'sin', elemType: ONNX_FLOAT, dims: ['n', 2 * half] }],
    }));
    const rewritten = extendContext(model, { rope: { invFreq: newFreq, maxPositions: 10 } });
    const positions = [0, 3, 9];
    const out = await run(rewritten, {
      p: new ort.Tensor('float32', Float32Array.from(positions), [3, 1]),
      idx: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [3]),
    });
    positions.forEach((p, r) => {
      for (let i = 0; i < half; i++) expect(Math.abs((out.angles!.data as Float32Array)[r * half + i]! - p * newFreq[i]!)).toBeLessThan(1e-6);
      for (let i = 0; i < 2 * half; i++) {
        expect(Math.abs((out.cos!.data as Float32Array)[r * 2 * half + i]! - Math.cos(p * newFreq[i % half]!))).toBeLessThan(1e-6);
        expect(Math.abs((out.sin!.data as Float32Array)[r * 2 * half + i]! - Math.sin(p * newFreq[i % half]!))).toBeLessThan(1e-6);
      }
    });
    expect(() => extendContext(model, { rope: { invFreq: [1, 2] } })).toThrow(/holds 2 values/);
  });

  it('refuses rewrites whose pattern is absent, and bad options', () => {
    const m = softmaxModel();
    expect(() => extendContext(m, { positionTable: { rows: 16 } })).toThrow(/position/);
    expect(() => extendContext(m, { rope: { invFreq: [1] } })).toThrow(/inv_freq/);
    const noSoftmax = new Uint8Array(onnxModel({
      name: 'id', initializers: [], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', elemType: ONNX_FLOAT, dims: [1] }], outputs: [{ name: 'y', elemType: ONNX_FLOAT, dims: [1] }],
    }));
    expect(() => extendContext(noSoftmax, { temperature: 0.5 })).toThrow(/Softmax/);
    expect(() => extendContext(m, { temperature: 0 })).toThrow(RangeError);
    expect(() => extendContext(m, {})).toThrow(RangeError);
    expect(() => extendContext(m, { temp: 1 } as never)).toThrow(/temp/);
    expect(() => extendContext('model' as never, { temperature: 1 })).toThrow(TypeError);
    expect(() => extendContext(new Uint8Array([0x3a, 0x05, 1]), { temperature: 1 })).toThrow(RangeError); // truncated
  });

  it('leaves the model byte-identical where it did not rewrite', () => {
    const m = softmaxModel();
    expect(Buffer.from(new OnnxGraph(m).serialize()).equals(Buffer.from(m))).toBe(true);
  });
});

describe.skipIf(!sharedDataAvailable('bert-dummy'))('context extension through the Embedder (a BERT-shaped model)', () => {
  const dir = path.join(SHARED_DATA, 'bert-dummy');
  const model = path.join(dir, 'dummy_transformer_mlm.onnx'), tokenizer = path.join(dir, 'real_tokenizer.json');
  it('feeds position_ids, grouped SelfExtend-style beyond a window (a position-table model, exact reference)', async () => {
    const rows = 12, dim = 3, table = randomFloats(rows * dim, 21);
    const bytes = new Uint8Array(onnxModel({
      name: 'positions', initializers: [floatTensor('position_embeddings', table, [rows, dim])],
      nodes: [{ op: 'Gather', inputs: ['position_embeddings', 'position_ids'], outputs: ['hidden'], attributes: [{ name: 'axis', int: 0 }] },
        { op: 'Identity', inputs: ['input_ids'], outputs: ['ids_out'] }, { op: 'Identity', inputs: ['attention_mask'], outputs: ['mask_out'] }],
      inputs: ['input_ids', 'attention_mask', 'position_ids'].map((name) => ({ name, elemType: ONNX_INT64, dims: ['b', 's'] })),
      outputs: [{ name: 'hidden', elemType: ONNX_FLOAT, dims: ['b', 's', dim] }, { name: 'ids_out', elemType: ONNX_INT64, dims: ['b', 's'] }, { name: 'mask_out', elemType: ONNX_INT64, dims: ['b', 's'] }],
    }));
    // 'hello world …' with 16 words: [CLS] + 16 + [SEP] = 18 tokens, more than the 12 positions; grouped (W 6, G 2)
    // the last is 6 + ⌊11 / 2⌋ = 11.
    const text = Array(16).fill('hello').join(' ');
    const e = await Embedder.load({ model: bytes, tokenizer, pooling: 'last', normalize: false, positionGrouping: { groupSize: 2, window: 6 } });
    const t = await e.embedTokens([text]);
    expect(t.lengths[0]).toBe(16);
    for (let c = 0; c < 16; c++) {
      const p = c + 1, q = p < 6 ? p : 6 + Math.floor((p - 6) / 2);
      for (let d = 0; d < dim; d++) expect(t.data[c * dim + d]).toBe(table[q * dim + d]);
    }
    await e.dispose();
    const plain = await Embedder.load({ model: bytes, tokenizer });
    await expect(plain.embed([text])).rejects.toThrow(/indices|out of bounds|index/i); // 18 positions, 12 rows
    await plain.dispose();
  });

  it('TempScale rewires every attention softmax behind a Mul by 1/τ; τ = 1 leaves the embeddings bit-identical', async () => {
    const bytes = new Uint8Array(fs.readFileSync(model));
    const before = new OnnxGraph(bytes);
    const softmaxes = before.nodes.filter((n) => n.op === 'Softmax').length;
    expect(softmaxes).toBe(2); // one per layer
    const after = new OnnxGraph(extendContext(bytes, { temperature: 0.5 }));
    for (const s of after.nodes.filter((n) => n.op === 'Softmax')) {
      const mul = after.producer(s.inputs[0]!)!;
      expect(mul.op).toBe('Mul');
      const inverse = after.initializers.get(mul.inputs[1]!)!;
      expect(new Float32Array(new Uint8Array(inverse.data).buffer)[0]).toBe(2);
    }
    expect(after.nodes.length).toBe(before.nodes.length + softmaxes);
    // (This random-weight test model's outputs do not move at τ = 0.5 either; the Softmax test above checks the math.)
    const texts = ['long context embeddings', 'temperature'];
    const embed = async (extend?: { temperature: number }) => {
      const e = await Embedder.load({ model, tokenizer, batchSize: 1, ...(extend ? { extend } : {}) });
      const r = await e.embed(texts);
      await e.dispose();
      return r.data;
    };
    expect(await embed({ temperature: 1 })).toEqual(await embed());
  });
});
