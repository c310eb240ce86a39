// The CUDA addon: built by `npm run build:cuda` where nvcc exists. Without a GPU these tests check that it loads and
// reports why it cannot run; the device tests skip.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { ROOT, randomFloats, runNode, sameBytes } from './helpers.js';
import {
  applyRope,
  attention,
  mergeAttentionStates,
  BinaryIndex,
  chamferScores,
  CudaBinaryIndex,
  CudaFdeEncoder,
  CudaMultiVectorIndex,
  CudaUnavailableError,
  cudaAvailable,
  FdeEncoder,
  hammingTopK,
  matryoshka,
  Rng,
} from '../src/index.js';

const cudaAddon = path.join(ROOT, 'build-cuda', 'Release', 'tessera_cuda.node');
const built = fs.existsSync(cudaAddon);
const probe = built
  ? JSON.parse(runNode(`console.log(JSON.stringify(require(${JSON.stringify(cudaAddon)}).cudaProbe()))`).stdout)
  : undefined;
const usable = Boolean(probe?.usable);

describe.skipIf(!built)('CUDA addon (built)', () => {
  it('loads without a device and explains itself', () => {
    expect(typeof probe.usable).toBe('boolean');
    expect(probe.runtimeVersion).toBeGreaterThanOrEqual(12000);
    if (!probe.usable) expect(probe.error).not.toBe('');
  });

  it('carries the same CPU kernels as the CPU addon', () => {
    const input = randomFloats(50 * 24, 3);
    const r = runNode(
      `const a = require(${JSON.stringify(cudaAddon)});
       const input = new Float32Array(${JSON.stringify(Array.from(input))});
       process.stdout.write(Buffer.from(a.matryoshka(input, 24, 10, true).buffer).toString('hex'));`,
    );
    const fromCuda = new Float32Array(Uint8Array.from(Buffer.from(r.stdout, 'hex')).buffer);
    expect(sameBytes(fromCuda, matryoshka(input, { dim: 24, keep: 10 }))).toBe(true);
  });

  it('is compiled for sm_90 and links the CUDA runtime statically', () => {
    const bytes = fs.readFileSync(cudaAddon).toString('latin1');
    expect(bytes).toContain('sm_90');
    expect(bytes).toContain('cudaGetDeviceCount');
    const cpu = fs.readFileSync(path.join(ROOT, 'build', 'Release', 'tessera.node')).toString('latin1');
    expect(cpu).not.toContain('cudaGetDeviceCount');
  });
});

describe.skipIf(!usable)('CUDA device', () => {
  it('runs the probe kernel on device 0', () => {
    expect(probe.deviceCount).toBeGreaterThan(0);
    expect(probe.name).not.toBe('');
    expect(Number(probe.computeCapability)).toBeGreaterThanOrEqual(8);
  });
});

// ---- the device classes ------------------------------------------------------------------------------------------

describe.skipIf(cudaAvailable())('device classes where no device answers', () => {
  it('reject with CudaUnavailableError saying why', async () => {
    const encoder = new FdeEncoder({ dim: 8, repetitions: 2, simhashBits: 2 });
    const index = new BinaryIndex({ dim: 16 });
    for (const attempt of [
      CudaBinaryIndex.fromCodes(new Uint8Array(16), { bits: 64 }),
      CudaBinaryIndex.fromIndex(index),
      CudaFdeEncoder.create(encoder),
      CudaMultiVectorIndex.create(new Float32Array(8), Int32Array.of(1), { dim: 8 }),
    ]) {
      const error = await attempt.then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(CudaUnavailableError);
      expect((error as Error).message).toMatch(/CPU addon is loaded|no usable device/);
    }
    encoder.dispose();
    index.dispose();
  });

  it('device: "cuda" on attention, RoPE and the merge says why it cannot run; other devices are RangeErrors', () => {
    const q = randomFloats(2 * 8, 5);
    const shape = { layout: 'bshd', headsQ: 1, seqQ: 2, seqK: 2, headDim: 8 } as const;
    expect(() => attention(q, q, q, { ...shape, device: 'cuda' })).toThrow(CudaUnavailableError);
    expect(() => attention(q, q, q, { ...shape, device: 'gpu' as never })).toThrow(RangeError);
    expect(attention(q, q, q, { ...shape, device: 'cpu' }).out.length).toBe(16);
    const rope = { layout: 'bshd', seqLen: 2, heads: 1, headDim: 8, positions: Int32Array.of(0, 1), invFreq: [1, 0.5, 0.25, 0.125] } as const;
    expect(() => applyRope(q.slice(), { ...rope, device: 'cuda' })).toThrow(CudaUnavailableError);
    const lse = new Float32Array(2);
    expect(() => mergeAttentionStates(q, lse, q, lse, { layout: 'bshd', heads: 1, seq: 2, dim: 8, device: 'cuda' })).toThrow(CudaUnavailableError);
  });

  it('check their arguments before looking for a device', async () => {
    await expect(CudaBinaryIndex.fromCodes(new Float32Array(4) as never, { bits: 8 })).rejects.toThrow(TypeError);
    await expect(CudaBinaryIndex.fromCodes(new Uint8Array(5), { bits: 16 })).rejects.toThrow(/multiple of 2/);
    await expect(CudaBinaryIndex.fromCodes(new Uint8Array(4), { bits: 16, ids: Int32Array.of(1, 1) })).rejects.toThrow(/distinct/);
    await expect(CudaBinaryIndex.fromIndex({} as never)).rejects.toThrow(TypeError);
    await expect(CudaFdeEncoder.create({} as never)).rejects.toThrow(TypeError);
    await expect(CudaMultiVectorIndex.create(new Float32Array(8), Int32Array.of(2), { dim: 8 })).rejects.toThrow(RangeError);
    await expect(CudaMultiVectorIndex.create(new Float32Array(8), Int32Array.of(1), { dim: 8, precision: 'fp8' as never })).rejects.toThrow(RangeError);
  });
});

describe.skipIf(!built)('CUDA addon device handles (raw binding)', () => {
  it('validate, and turn a missing device or CUDA error into an Error, never a crash', () => {
    const r = runNode(
      `const a = require(${JSON.stringify(cudaAddon)});
       const out = {};
       const attempt = (name, f) => { try { f(); out[name] = 'ok'; } catch (e) { out[name] = e.constructor.name + ': ' + e.message; } };
       const h = new a.CudaCodesHandle();
       attempt('beforeLoad', () => h.hammingTopK(new Uint8Array(8), 1, 1, false));
       attempt('badType', () => h.load(new Float32Array(2), 2, 8, 1, false, true, undefined, false, false));
       attempt('badSize', () => h.load(new Uint8Array(3), 2, 8, 1, false, true, undefined, false, false));
       attempt('l2WithoutScales', () => h.load(new Uint8Array(2), 2, 8, 1, false, true, undefined, true, false));
       attempt('load', () => h.load(new Uint8Array(2), 2, 8, 1, false, true, undefined, false, false));
       attempt('fdeType', () => new a.CudaFdeHandle().load({}, false));
       attempt('chamferLengths', () => new a.CudaMultiVectorsHandle().load(new Float32Array(8), Int32Array.of(2), 8, true, false));
       new a.CudaMultiVectorsHandle().load(new Float32Array(8), Int32Array.of(1), 8, true, true).then(
         () => { out.async = 'ok'; }, (e) => { out.async = e.constructor.name + ': ' + e.message; })
         .finally(() => { out.usable = a.cudaProbe().usable; console.log(JSON.stringify(out)); });`,
    );
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string | boolean>;
    expect(out.beforeLoad).toMatch(/^Error: .*not loaded/);
    expect(out.badType).toMatch(/^TypeError: .*rows/);
    expect(out.badSize).toMatch(/^RangeError: .*rows/);
    expect(out.l2WithoutScales).toMatch(/^RangeError: .*l2/);
    expect(out.fdeType).toMatch(/^TypeError: .*FdeEncoder/);
    expect(out.chamferLengths).toMatch(/^RangeError/);
    if (out.usable) {
      expect(out.load).toBe('ok');
      expect(out.async).toBe('ok');
    } else {
      // The CUDA runtime's own error, named, from the first call that needs the device.
      expect(out.load).toMatch(/^Error: CudaBinaryIndex: .*cuda\w+/);
      expect(out.async).toMatch(/^Error: CudaMultiVectorIndex: .*cuda\w+/);
    }
  });
});

// ---- parity on a device (skipped here; bench/gpu-check/retrieval.mjs runs the large version) ---------------------

describe.skipIf(!cudaAvailable())('device parity with the CPU path', () => {
  it('Hamming and SDC top-k: the same ids, scores and tie order', async () => {
    const rng = new Rng(81n);
    const bits = 100, row = 13, n = 3001;
    const codes = Uint8Array.from(rng.uniform(n * row), (u) => Math.floor(u * 256) & 0x13);  // many ties
    const queries = Uint8Array.from(rng.uniform(5 * row), (u) => Math.floor(u * 256));
    const device = await CudaBinaryIndex.fromCodes(codes, { bits });
    const cpu = hammingTopK(queries, codes, { bits, k: 70 });
    const gpu = await device.searchAsync(queries, 70);
    expect(Array.from(gpu.ids)).toEqual(Array.from(cpu.indices));
    expect(Array.from(gpu.distances!)).toEqual(Array.from(cpu.distances));
    device.dispose();
    for (const similarity of ['dot', 'l2'] as const) {
      const index = new BinaryIndex({ dim: 96, bits: 3, similarity });
      index.add(Int32Array.from({ length: 999 }, (_, i) => 5000 - 3 * i), rng.normal(999 * 96));
      const twin = await CudaBinaryIndex.fromIndex(index);
      const q = rng.normal(7 * 96);
      for (const metric of ['hamming', 'sdc'] as const) {
        const a = index.search(q, 25, { metric });
        const b = twin.search(q, 25, { metric });
        expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
        expect(sameBytes(b.scores, a.scores)).toBe(true);
      }
      twin.dispose();
      index.dispose();
    }
  });

  it('FDE encodings within float tolerance, Chamfer within the stated bounds', async () => {
    const rng = new Rng(82n);
    const encoder = new FdeEncoder({ dim: 40, repetitions: 6, simhashBits: 4, projection: 'countsketch', projectionDim: 8 });
    const device = await CudaFdeEncoder.create(encoder);
    const lengths = Int32Array.of(1, 17, 300, 5);
    const tokens = rng.normal(323 * 40);
    const cpu = encoder.encodeDocuments(tokens, lengths);
    const gpu = await device.encodeDocumentsAsync(tokens, lengths);
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(cpu[i]! - gpu[i]!));
    expect(worst).toBeLessThan(1e-4);
    device.dispose();
    encoder.dispose();

    const docs = rng.normal(60 * 33);
    const docLengths = Int32Array.of(1, 20, 39);
    const query = rng.normal(4 * 33);
    const exact = chamferScores(query, docs, docLengths, 33);
    for (const precision of ['float32', 'bfloat16'] as const) {
      const mv = await CudaMultiVectorIndex.create(docs, docLengths, { dim: 33, precision });
      const scores = await mv.chamferScoresAsync(query, Int32Array.of(4));
      const tolerance = precision === 'float32' ? 1e-4 : 0.5;
      for (let d = 0; d < 3; d++) expect(Math.abs(scores[d]! - exact[d]!)).toBeLessThan(tolerance);
      const top = await mv.searchAsync(query, Int32Array.of(4), 2);
      const order = [0, 1, 2].sort((a, b) => scores[b]! - scores[a]! || a - b);
      expect(Array.from(top.ids)).toEqual(order.slice(0, 2));
      expect(Array.from(top.scores)).toEqual(order.slice(0, 2).map((d) => scores[d]!));
      mv.dispose();
    }
  });
});
