// The learned transform in front of the binarizer (BEBR's MLP), run with onnxruntime-node on a model built here.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { ResidualBinarizer } from '../src/index.js';
import { randomFloats, sameBytes } from './helpers.js';
import { mlpModel, mlpReference, type Mlp } from './onnx-builder.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-onnx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const mlp: Mlp = {
  inputDim: 24,
  hidden: 32,
  outputDim: 16,
  w1: randomFloats(24 * 32, 1, 0.3),
  b1: randomFloats(32, 2, 0.1),
  w2: randomFloats(32 * 16, 3, 0.3),
  b2: randomFloats(16, 4, 0.1),
};
const model = mlpModel(mlp);

describe('ResidualBinarizer with an ONNX transform', () => {
  it('runs the MLP as a float64 reference computes it, then encodes its output', async () => {
    const rb = await ResidualBinarizer.withTransform({ dim: 16, bits: 2, transform: { model, inputDim: 24, chunkRows: 7 } });
    expect(rb.inputDim).toBe(24);
    const x = randomFloats(100 * 24, 5);
    const y = await rb.transform!.run(x);
    const want = mlpReference(mlp, x);
    let worst = 0;
    for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
    expect(worst).toBeLessThan(1e-5);  // float32 matmuls of 24 and 32 terms
    const plain = new ResidualBinarizer({ dim: 16, bits: 2 });
    expect(sameBytes(await rb.encodeAsync(x), plain.encode(y))).toBe(true);
    const adc = await rb.adcTopKAsync(x.subarray(0, 24 * 3), plain.encode(y), { k: 4 });
    expect(Array.from(adc.indices)).toEqual(Array.from(plain.adcTopK(y.subarray(0, 16 * 3), plain.encode(y), { k: 4 }).indices));
    expect(() => rb.encode(x)).toThrow(/use encodeAsync/);
    expect(() => rb.fit(x)).toThrow(/use fitAsync/);
    await rb.fitAsync(x);
    expect(rb.center!.length).toBe(16);
    await rb.dispose();
    await expect(rb.transform!.run(x)).rejects.toThrow(/disposed/);
  });

  it('loads the model from a file, and rejects a model of the wrong width or shape', async () => {
    const file = path.join(tmp, 'mlp.onnx');
    fs.writeFileSync(file, model);
    const rb = await ResidualBinarizer.withTransform({ dim: 16, bits: 1, transform: { model: file, inputDim: 24 } });
    expect((await rb.encodeAsync(randomFloats(24, 9))).length).toBe(rb.rowBytes);
    await rb.dispose();
    await expect(ResidualBinarizer.withTransform({ dim: 8, transform: { model, inputDim: 24 } })).rejects.toThrow(/outputs 16 dims/);
    await expect(ResidualBinarizer.withTransform({ dim: 16, transform: { model, inputDim: 24, output: 'z' } })).rejects.toThrow(/no output "z"/);
    await expect(ResidualBinarizer.withTransform({ dim: 16, transform: { model, inputDim: 0 } })).rejects.toThrow(RangeError);
    await expect(ResidualBinarizer.withTransform({ dim: 16, transform: { model: 42 as never, inputDim: 24 } })).rejects.toThrow(TypeError);
    await expect(ResidualBinarizer.withTransform({ dim: 16, transform: { model: new Uint8Array([1, 2, 3]), inputDim: 24 } })).rejects.toThrow();
  });
});
