// The positions module: RoPE frequencies against transformers' golden values, RoPE applied in place against a
// float64 reference, ONNX's own RotaryEmbedding cases and onnxruntime-node's operator; remapping, tables, biases.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import {
  alibiSlopes,
  anchorMask,
  applyRope,
  applyRopeAsync,
  groupedPositions,
  interpolatePositionTable,
  lmInfiniteDistances,
  lmInfiniteMask,
  packedDocuments,
  recurrentPositions,
  ropeCosSin,
  ropeFrequencies,
  ropeFromHfConfig,
  selfExtendPositions,
  selfExtendRelativePositions,
  setSimd,
  setThreads,
  capabilities,
  t5RelativeBucket,
  type RopeConfig,
} from '../src/index.js';
import { fromBf16, fromHalf, halves, toBf16, toHalf } from '../bench/half.mjs';
import { randomFloats, sameBytes, seeded, SHARED_DATA, sharedDataAvailable } from './helpers.js';
import { rotaryEmbeddingModel } from './onnx-builder.js';
import { parseFirstNode, parseTensor, ONNX_FLOAT, ONNX_FLOAT16 } from './onnx-reader.js';

// ---- independent helpers ----------------------------------------------------------------------------------------

const defaultFreq = (base: number, dim: number) => Float64Array.from({ length: dim / 2 }, (_, i) => base ** (-(2 * i) / dim));

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.abs(want[i]!));
  return worst;
}

interface Shape {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
  rotaryDim: number;
  layout: 'bshd' | 'bhsd';
  style: 'neox' | 'interleaved';
}

/** RoPE in float64: angle positions[t] · f[i] (or table rows), pairs by style, channels past rotaryDim copied. */
function referenceRope(
  x: ArrayLike<number>,
  s: Shape,
  position: (b: number, q: number) => number,
  cosSin: (p: number, i: number) => [number, number],
): Float64Array {
  const out = Float64Array.from(x);
  const half = s.rotaryDim / 2;
  for (let b = 0; b < s.batch; b++)
    for (let q = 0; q < s.seqLen; q++)
      for (let h = 0; h < s.heads; h++) {
        const row = (s.layout === 'bshd' ? (b * s.seqLen + q) * s.heads + h : (b * s.heads + h) * s.seqLen + q) * s.headDim;
        const p = position(b, q);
        for (let i = 0; i < half; i++) {
          const [c, sn] = cosSin(p, i);
          const ia = row + (s.style === 'neox' ? i : 2 * i), ib = row + (s.style === 'neox' ? i + half : 2 * i + 1);
          out[ia] = x[ia]! * c - x[ib]! * sn;
          out[ib] = x[ib]! * c + x[ia]! * sn;
        }
      }
  return out;
}

// ---- frequencies ------------------------------------------------------------------------------------------------

interface GoldenCase {
  name: string;
  theta: number;
  head_dim: number;
  max_position_embeddings: number;
  scaling: Record<string, unknown>;
  seq_len: number | null;
  inv_freq: number[];
  attention_factor: number;
}

const golden: GoldenCase[] = sharedDataAvailable('hf-rope-golden.json')
  ? (JSON.parse(fs.readFileSync(path.join(SHARED_DATA, 'hf-rope-golden.json'), 'utf8')) as { cases: GoldenCase[] }).cases
  : [];

function configOf(c: GoldenCase): RopeConfig {
  const s = c.scaling as Record<string, number | string>;
  const cfg: RopeConfig = { type: s.rope_type as RopeConfig['type'], base: c.theta, dim: c.head_dim, maxPositions: c.max_position_embeddings };
  if (s.factor !== undefined) cfg.factor = s.factor as number;
  if (s.original_max_position_embeddings !== undefined) cfg.originalMaxPositions = s.original_max_position_embeddings as number;
  if (s.low_freq_factor !== undefined) cfg.lowFreqFactor = s.low_freq_factor as number;
  if (s.high_freq_factor !== undefined) cfg.highFreqFactor = s.high_freq_factor as number;
  return cfg;
}

// transformers' tests/utils/test_modeling_rope_utils.py snapshots (LlamaConfig: dim 128, base 10000, 2048 positions),
// printed to 5 significant digits.
const HF_DYNAMIC_F10_16384 = [
  1.0, 8.0931e-1, 6.5498e-1, 5.3008e-1, 4.29e-1, 3.472e-1, 2.8099e-1, 2.2741e-1, 1.8404e-1, 1.4895e-1, 1.2055e-1,
  9.7558e-2, 7.8955e-2, 6.3899e-2, 5.1714e-2, 4.1853e-2, 3.3872e-2, 2.7413e-2, 2.2185e-2, 1.7955e-2, 1.4531e-2,
  1.176e-2, 9.5176e-3, 7.7027e-3, 6.2339e-3, 5.0451e-3, 4.0831e-3, 3.3045e-3, 2.6744e-3, 2.1644e-3, 1.7517e-3,
  1.4176e-3, 1.1473e-3, 9.2852e-4, 7.5146e-4, 6.0817e-4, 4.922e-4, 3.9834e-4, 3.2238e-4, 2.6091e-4, 2.1115e-4,
  1.7089e-4, 1.383e-4, 1.1193e-4, 9.0585e-5, 7.3312e-5, 5.9332e-5, 4.8018e-5, 3.8861e-5, 3.1451e-5, 2.5453e-5, 2.06e-5,
  1.6672e-5, 1.3492e-5, 1.092e-5, 8.8374e-6, 7.1522e-6, 5.7883e-6, 4.6845e-6, 3.7912e-6, 3.0683e-6, 2.4832e-6,
  2.0097e-6, 1.6265e-6,
];
const HF_YARN_F10 = [
  1.0, 8.6596e-1, 7.4989e-1, 6.4938e-1, 5.6234e-1, 4.8697e-1, 4.217e-1, 3.6517e-1, 3.1623e-1, 2.7384e-1, 2.3714e-1,
  2.0535e-1, 1.7783e-1, 1.5399e-1, 1.3335e-1, 1.1548e-1, 1.0e-1, 8.3479e-2, 6.959e-2, 5.7925e-2, 4.8136e-2, 3.9931e-2,
  3.3061e-2, 2.7315e-2, 2.2515e-2, 1.8512e-2, 1.5177e-2, 1.2403e-2, 1.0101e-2, 8.1924e-3, 6.6143e-3, 5.312e-3, 4.24e-3,
  3.3599e-3, 2.6396e-3, 2.052e-3, 1.5746e-3, 1.1882e-3, 8.7713e-4, 6.281e-4, 4.3007e-4, 2.7384e-4, 2.3714e-4, 2.0535e-4,
  1.7783e-4, 1.5399e-4, 1.3335e-4, 1.1548e-4, 1.0e-4, 8.6596e-5, 7.4989e-5, 6.4938e-5, 5.6234e-5, 4.8697e-5, 4.217e-5,
  3.6517e-5, 3.1623e-5, 2.7384e-5, 2.3714e-5, 2.0535e-5, 1.7783e-5, 1.5399e-5, 1.3335e-5, 1.1548e-5,
];
const HF_LLAMA3_F10 = [
  1.0, 8.6596e-1, 7.4989e-1, 6.4938e-1, 5.6234e-1, 4.8697e-1, 4.217e-1, 3.6517e-1, 3.1623e-1, 2.7384e-1, 2.3714e-1,
  2.0535e-1, 1.7783e-1, 1.5399e-1, 1.3335e-1, 1.1548e-1, 1.0e-1, 8.6596e-2, 7.4989e-2, 6.4938e-2, 5.6234e-2, 4.8697e-2,
  4.217e-2, 3.6517e-2, 3.1623e-2, 2.7384e-2, 2.3714e-2, 2.0535e-2, 1.7783e-2, 1.5399e-2, 1.3335e-2, 1.073e-2, 7.7785e-3,
  5.6009e-3, 3.9991e-3, 2.8248e-3, 1.9675e-3, 1.3449e-3, 8.9549e-4, 5.7363e-4, 3.4539e-4, 2.7384e-4, 2.3714e-4, 2.0535e-4,
  1.7783e-4, 1.5399e-4, 1.3335e-4, 1.1548e-4, 1.0e-4, 8.6596e-5, 7.4989e-5, 6.4938e-5, 5.6234e-5, 4.8697e-5, 4.217e-5,
  3.6517e-5, 3.1623e-5, 2.7384e-5, 2.3714e-5, 2.0535e-5, 1.7783e-5, 1.5399e-5, 1.3335e-5, 1.1548e-5,
];

describe('ropeFrequencies', () => {
  it('matches transformers 5.17 float32 values to 1e-6 on every shared golden case, from configs in both forms', () => {
    if (golden.length === 0) return;
    expect(golden.length).toBeGreaterThanOrEqual(7);
    for (const c of golden) {
      const seqLen = c.seq_len ?? undefined;
      const options = seqLen === undefined ? undefined : { seqLen };
      const r = ropeFrequencies(configOf(c), options);
      expect(r.invFreq.length).toBe(c.inv_freq.length);
      expect(maxRelative(r.invFreq, c.inv_freq), `${c.name} ${seqLen}`).toBeLessThan(1e-6);
      expect(Math.abs(r.attentionFactor - c.attention_factor) / c.attention_factor).toBeLessThan(1e-6);
      // The same case as a v5 config.json (rope_parameters) and as a v4 one (rope_scaling + rope_theta).
      const v5 = { rope_parameters: { ...c.scaling, rope_theta: c.theta }, head_dim: c.head_dim, max_position_embeddings: c.max_position_embeddings };
      const v4 = {
        rope_scaling: c.scaling,
        rope_theta: c.theta,
        hidden_size: c.head_dim * 32,
        num_attention_heads: 32,
        max_position_embeddings: c.max_position_embeddings,
      };
      for (const config of [v5, v4]) {
        const h = ropeFromHfConfig(config, options);
        expect(Array.from(h.invFreq)).toEqual(Array.from(r.invFreq));
        expect(h.attentionFactor).toBe(r.attentionFactor);
        expect(h.rotaryDim).toBe(c.head_dim);
      }
    }
  });

  it("matches transformers' own test snapshots for dynamic NTK, YaRN and Llama 3 (5 digits)", () => {
    const llama = { base: 10000, dim: 128, maxPositions: 2048 };
    const dyn = ropeFrequencies({ ...llama, type: 'dynamic', factor: 10 }, { seqLen: 16384 });
    expect(maxRelative(dyn.invFreq, HF_DYNAMIC_F10_16384)).toBeLessThan(6e-5);
    const yarn = ropeFrequencies({ ...llama, type: 'yarn', factor: 10, originalMaxPositions: 2048, betaFast: 32, betaSlow: 1 });
    expect(maxRelative(yarn.invFreq, HF_YARN_F10)).toBeLessThan(6e-5);
    expect(yarn.attentionFactor).toBeCloseTo(0.1 * Math.log(10) + 1, 12);
    const l3 = ropeFrequencies({ ...llama, type: 'llama3', factor: 10, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 2048 });
    expect(maxRelative(l3.invFreq, HF_LLAMA3_F10)).toBeLessThan(6e-5);
    expect(l3.attentionFactor).toBe(1);
  });

  it('keeps every method within its defining bounds and identities', () => {
    const d = defaultFreq(10000, 128);
    const base = { base: 10000, dim: 128, maxPositions: 2048 };
    expect(maxRelative(ropeFrequencies({ ...base, type: 'default' }).invFreq, d)).toBeLessThan(1e-15);
    for (const factor of [2, 10, 20]) {
      const lin = ropeFrequencies({ ...base, type: 'linear', factor });
      expect(maxRelative(lin.invFreq, d.map((f) => f / factor))).toBeLessThan(1e-15);
      const y = ropeFrequencies({ ...base, type: 'yarn', factor, originalMaxPositions: 2048 });
      expect(y.attentionFactor).toBeCloseTo(0.1 * Math.log(factor) + 1, 14);
      y.invFreq.forEach((f, i) => {
        expect(f).toBeGreaterThanOrEqual(d[i]! / factor - 1e-12);
        expect(f).toBeLessThanOrEqual(d[i]! + 1e-12);
      });
      const l3 = ropeFrequencies({ ...base, type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 2048 });
      l3.invFreq.forEach((f, i) => {
        expect(f).toBeGreaterThanOrEqual((d[i]! / factor) * (1 - 1e-15));
        expect(f).toBeLessThanOrEqual(d[i]! * (1 + 1e-15));
      });
    }
    // Dynamic NTK is the default at or below maxPositions.
    for (const seqLen of [undefined, 0, 1, 2048]) {
      const dyn = ropeFrequencies({ ...base, type: 'dynamic', factor: 4 }, seqLen === undefined ? undefined : { seqLen });
      expect(maxRelative(dyn.invFreq, d)).toBeLessThan(1e-15);
    }
    // YaRN: beta_fast 1000 interpolates all but the first pair; the explicit attention factor wins; DeepSeek's equal
    // mscales cancel; truncate=false keeps the fractional correction range.
    const wide = ropeFrequencies({ ...base, type: 'yarn', factor: 10, originalMaxPositions: 2048, betaFast: 1000 });
    expect(wide.invFreq[0]).toBe(1);
    for (let i = 44; i < 64; i++) expect(wide.invFreq[i]).toBeCloseTo(d[i]! / 10, 18);
    expect(ropeFrequencies({ ...base, type: 'yarn', factor: 10, originalMaxPositions: 2048, attentionFactor: 0.5 }).attentionFactor).toBe(0.5);
    const deepseek = ropeFrequencies({ ...base, type: 'yarn', factor: 40, originalMaxPositions: 4096, mscale: 0.707, mscaleAllDim: 0.707 });
    expect(deepseek.attentionFactor).toBe(1);
    const ratio = ropeFrequencies({ ...base, type: 'yarn', factor: 40, originalMaxPositions: 4096, mscale: 1, mscaleAllDim: 0.5 });
    expect(ratio.attentionFactor).toBeCloseTo((0.1 * Math.log(40) + 1) / (0.05 * Math.log(40) + 1), 14);
    const untruncated = ropeFrequencies({ ...base, type: 'yarn', factor: 10, originalMaxPositions: 2048, truncate: false });
    expect(maxRelative(untruncated.invFreq, wide.invFreq)).toBeGreaterThan(1e-3);
    // YaRN derives a missing factor from maxPositions / originalMaxPositions, as transformers does.
    const derived = ropeFrequencies({ base: 10000, dim: 64, type: 'yarn', maxPositions: 8192, originalMaxPositions: 2048 });
    expect(Array.from(derived.invFreq)).toEqual(Array.from(ropeFrequencies({ base: 10000, dim: 64, type: 'yarn', factor: 4, originalMaxPositions: 2048 }).invFreq));
    // LongRoPE: short factors up to and including the original length, long ones strictly past it.
    const shortFactor = Array(64).fill(2), longFactor = Array.from({ length: 64 }, (_, i) => i + 1);
    const lr = { ...base, type: 'longrope' as const, factor: 8, originalMaxPositions: 2048, shortFactor, longFactor };
    expect(ropeFrequencies(lr).attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(8) / Math.log(2048)), 14);
    for (const seqLen of [undefined, 0, 2048]) {
      expect(maxRelative(ropeFrequencies(lr, seqLen === undefined ? undefined : { seqLen }).invFreq, d.map((f) => f / 2))).toBeLessThan(1e-15);
    }
    expect(maxRelative(ropeFrequencies(lr, { seqLen: 2049 }).invFreq, d.map((f, i) => f / (i + 1)))).toBeLessThan(1e-15);
    // Giraffe: kept above 2π/T, ρ in [2π/8T, 2π/T), zero below.
    const T = 4096, cut = (2 * Math.PI) / T;
    const tr = ropeFrequencies({ base: 10000, dim: 128, type: 'truncated', truncateLength: T });
    const own = ropeFrequencies({ base: 10000, dim: 128, type: 'default' }).invFreq;  // the frequencies it truncates
    tr.invFreq.forEach((f, i) => expect(f).toBe(own[i]! >= cut ? own[i]! : own[i]! >= cut / 8 ? cut / 16 : 0));
    expect(new Set(tr.invFreq).size).toBeGreaterThan(3);  // all three bands occur for this T
    // Per-pair factors.
    const factors = Array.from({ length: 64 }, (_, i) => 1 + i / 10);
    expect(maxRelative(ropeFrequencies({ base: 10000, dim: 128, type: 'factors', factors }).invFreq, d.map((f, i) => f / factors[i]!))).toBeLessThan(1e-15);
  });

  it('rejects unknown types, missing fields and bad factors with RangeError naming them', () => {
    const base = { base: 10000, dim: 64 };
    expect(() => ropeFrequencies({ ...base, type: 'ntk' as never })).toThrow(/Unknown RoPE type "ntk" \(known types: default, linear, dynamic, yarn, longrope, llama3, truncated, factors\)/);
    expect(() => ropeFrequencies({ ...base, type: 'yarn', factor: 4 })).toThrow(RangeError);
    expect(() => ropeFrequencies({ ...base, type: 'yarn', factor: 4 })).toThrow(/"originalMaxPositions" is required/);
    expect(() => ropeFrequencies({ ...base, type: 'linear' })).toThrow(/"factor" is required/);
    for (const factor of [0, -2, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => ropeFrequencies({ ...base, type: 'linear', factor })).toThrow(/"factor" must be a finite number above 0/);
    }
    expect(() => ropeFrequencies({ ...base, type: 'dynamic', factor: 2 })).toThrow(/"maxPositions" is required/);
    expect(() => ropeFrequencies({ ...base, type: 'llama3', factor: 8, lowFreqFactor: 4, highFreqFactor: 1, originalMaxPositions: 8192 })).toThrow(/must exceed/);
    expect(() => ropeFrequencies({ ...base, type: 'longrope', originalMaxPositions: 4096, factor: 2, shortFactor: [1], longFactor: [1] })).toThrow(/must hold dim \/ 2 = 32 factors/);
    expect(() => ropeFrequencies({ ...base, type: 'factors', factors: Array(32).fill(0) })).toThrow(/"factors"\[0\] must be a finite number above 0/);
    expect(() => ropeFrequencies({ base: 10000, dim: 63, type: 'default' })).toThrow(/"dim" must be an even integer/);
    expect(() => ropeFrequencies({ base: Number.NaN, dim: 64, type: 'default' })).toThrow(/"base"/);
    expect(() => ropeFrequencies({ ...base, type: 'default', theta: 5 } as never)).toThrow(TypeError);
    expect(() => ropeFrequencies({ ...base, type: 'default' }, { seqLen: -1 })).toThrow(RangeError);
    expect(() => ropeFrequencies(null as never)).toThrow(TypeError);
  });
});

describe('ropeFromHfConfig', () => {
  it('reads Phi-3 (top-level original length wins), partial rotary, nested layer types and legacy keys', () => {
    // Phi-3-mini-128k-like: longrope in rope_scaling, original_max_position_embeddings at the top level.
    const shortFactor = Array.from({ length: 48 }, (_, i) => 1 + i / 100), longFactor = Array.from({ length: 48 }, (_, i) => 2 + i / 10);
    const phi3 = {
      hidden_size: 3072, num_attention_heads: 32, max_position_embeddings: 131072, original_max_position_embeddings: 4096,
      rope_theta: 10000, rope_scaling: { type: 'longrope', short_factor: shortFactor, long_factor: longFactor, original_max_position_embeddings: 999 },
    };
    const d96 = defaultFreq(10000, 96);
    const short = ropeFromHfConfig(phi3, { seqLen: 4096 });
    expect(short.config.originalMaxPositions).toBe(4096);
    expect(short.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 14);  // factor 131072 / 4096
    expect(maxRelative(short.invFreq, d96.map((f, i) => f / shortFactor[i]!))).toBeLessThan(1e-15);
    expect(maxRelative(ropeFromHfConfig(phi3, { seqLen: 4097 }).invFreq, d96.map((f, i) => f / longFactor[i]!))).toBeLessThan(1e-15);
    // GPT-NeoX-like partial rotary: 25 % of a 128-wide head.
    const neox = ropeFromHfConfig({ hidden_size: 4096, num_attention_heads: 32, rotary_pct: 1, partial_rotary_factor: 0.25, rope_theta: 10000 });
    expect(neox.headDim).toBe(128);
    expect(neox.rotaryDim).toBe(32);
    expect(maxRelative(neox.invFreq, defaultFreq(10000, 32))).toBeLessThan(1e-15);
    // Gemma-3-like nested parameters per layer type.
    const gemma = {
      head_dim: 256, max_position_embeddings: 131072, layer_types: ['sliding_attention', 'full_attention'],
      rope_parameters: {
        sliding_attention: { rope_type: 'default', rope_theta: 10000 },
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1000000 },
      },
    };
    expect(() => ropeFromHfConfig(gemma)).toThrow(/give "layerType", one of sliding_attention, full_attention/);
    const full = ropeFromHfConfig(gemma, { layerType: 'full_attention' });
    expect(maxRelative(full.invFreq, defaultFreq(1e6, 256).map((f) => f / 8))).toBeLessThan(1e-15);
    expect(maxRelative(ropeFromHfConfig(gemma, { layerType: 'sliding_attention' }).invFreq, defaultFreq(10000, 256))).toBeLessThan(1e-15);
    // A v4 config without scaling; yarn without an original length falls back to max_position_embeddings.
    expect(ropeFromHfConfig({ head_dim: 64, rope_theta: 500000, rope_scaling: null }).config.type).toBe('default');
    const yarn = ropeFromHfConfig({ head_dim: 64, max_position_embeddings: 32768, rope_parameters: { rope_type: 'yarn', factor: 4, rope_theta: 1e6, beta_fast: 0 } });
    expect(yarn.config.originalMaxPositions).toBe(32768);
    expect(yarn.config.betaFast).toBeUndefined();  // transformers reads `beta_fast or 32`
  });

  it('rejects what it cannot read, naming the field', () => {
    expect(() => ropeFromHfConfig({ head_dim: 64, rope_parameters: { rope_type: 'mrope' } })).toThrow(/Unknown RoPE type "mrope" in the config/);
    expect(() => ropeFromHfConfig({ rope_theta: 10000 })).toThrow(/"head_dim", or "hidden_size" and "num_attention_heads"/);
    expect(() => ropeFromHfConfig({ head_dim: 64, rope_parameters: { rope_type: 'linear', factor: 'x' } })).toThrow(/"rope_parameters.factor" to be a number/);
    expect(() => ropeFromHfConfig({ head_dim: 64, rope_parameters: { rope_type: 'dynamic', factor: 2 } })).toThrow(/"maxPositions" is required/);
    expect(() => ropeFromHfConfig('{}' as never)).toThrow(TypeError);
    expect(() => ropeFromHfConfig({ head_dim: 64 }, { layerType: 'full_attention' })).toThrow(/not per layer type/);
  });
});

// ---- applying RoPE -------------------------------------------------------------------------------------------------

describe('applyRope', () => {
  const levels = capabilities().simdAvailable as string[];

  it('gives the same bits on every SIMD level (fused rotations and float64 angles everywhere; CUDA matches them)', () => {
    const outputs = new Map<string, Uint8Array[]>();
    try {
      for (const level of levels) {
        setSimd(level as never);
        const results: Uint8Array[] = [];
        let seed = 900;
        for (const dtype of ['float32', 'float16', 'bfloat16'] as const)
          for (const style of ['neox', 'interleaved'] as const)
            for (const [headDim, rotaryDim] of [[64, 64], [130, 98], [34, 34], [48, 22], [2, 2]] as const) {
              const values = randomFloats(3 * 5 * headDim, seed++);
              const data = dtype === 'float32' ? values : Uint16Array.from(values, dtype === 'float16' ? toHalf : toBf16);
              const positions = Float64Array.from({ length: 5 }, (_, i) => i * 123457.25);
              const { invFreq, attentionFactor } = ropeFrequencies({ type: 'yarn', base: 10000, dim: rotaryDim, factor: 4, originalMaxPositions: 2048 });
              applyRope(data, { layout: 'bshd', seqLen: 5, heads: 3, headDim, rotaryDim, positions, invFreq, attentionFactor, style, dtype });
              results.push(new Uint8Array(data.buffer.slice(0)));
            }
        outputs.set(level, results);
      }
    } finally {
      setSimd(capabilities().simdDetected as never);
    }
    const [first, ...rest] = [...outputs.values()];
    for (const other of rest) other.forEach((bytes, i) => expect(sameBytes(bytes, first![i]!)).toBe(true));
  });

  it('equals a float64 rotation on every SIMD level, layout, style, type and position kind', async () => {
    const r = seeded(11);
    const shapes: [number, number, number, number, number][] = [
      [1, 1, 1, 2, 2], [2, 5, 3, 16, 16], [1, 7, 2, 130, 98], [3, 4, 1, 64, 32], [2, 3, 4, 80, 80], [1, 17, 3, 34, 34],
    ];
    let seed = 100;
    try {
      for (const level of levels) {
        setSimd(level as never);
        for (const [batch, seqLen, heads, headDim, rotaryDim] of shapes)
          for (const layout of ['bshd', 'bhsd'] as const)
            for (const style of ['neox', 'interleaved'] as const)
              for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
                const s: Shape = { batch, seqLen, heads, headDim, rotaryDim, layout, style };
                const n = batch * seqLen * heads * headDim;
                const values = randomFloats(n, seed++);
                const perBatch = r() < 0.5 && batch > 1;
                const npos = perBatch ? batch * seqLen : seqLen;
                const positions = Float64Array.from({ length: npos }, () => Math.floor(r() * 100000) + (r() < 0.3 ? 0.5 : 0));
                const { invFreq, attentionFactor } = ropeFrequencies({ type: 'yarn', base: 10000, dim: rotaryDim, factor: 4, originalMaxPositions: 2048 });
                const pos = (b: number, q: number) => positions[perBatch ? b * seqLen + q : q]!;
                let data: Float32Array | Uint16Array, input: number[];
                if (dtype === 'float32') (data = Float32Array.from(values)), (input = Array.from(data));
                else if (dtype === 'float16') (data = Uint16Array.from(values, toHalf)), (input = Array.from(data, fromHalf));
                else (data = Uint16Array.from(values, toBf16)), (input = Array.from(data, fromBf16));
                const want = referenceRope(input, s, pos, (p, i) => [Math.cos(p * invFreq[i]!) * attentionFactor, Math.sin(p * invFreq[i]!) * attentionFactor]);
                const options = { layout, batch, seqLen, heads, headDim, rotaryDim, positions, invFreq, attentionFactor, style, dtype };
                const out = seed % 2 ? applyRope(data, options) : await applyRopeAsync(data, options);
                expect(out).toBe(data);  // in place
                const got = dtype === 'float32' ? Array.from(data) : Array.from(data as Uint16Array, dtype === 'float16' ? fromHalf : fromBf16);
                // float32: a few roundings of |x| · (|cos| + |sin|) ≤ 1e-6 relative; half types: one rounding of their own
                // (2^-11 or 2^-8 relative) on top.
                const unit = dtype === 'float32' ? 0 : dtype === 'float16' ? 2 ** -11 : 2 ** -8;
                for (let i = 0; i < n; i++) {
                  const bound = 1e-6 * (Math.abs(input[i]!) + 2 * Math.abs(want[i]!) + 1e-30) + unit * Math.abs(want[i]!) * 1.01 + (dtype === 'float16' ? 2 ** -24 : 0);
                  if (!(Math.abs(got[i]! - want[i]!) <= bound)) {
                    throw new Error(`${level} ${layout} ${style} ${dtype} ${batch}x${seqLen}x${heads}x${headDim}/${rotaryDim} [${i}]: ${got[i]} vs ${want[i]}`);
                  }
                }
              }
      }
    } finally {
      setSimd(capabilities().simdDetected as never);
    }
  });

  it('keeps the phase exact at positions up to 10^6 and beyond 2^24 (float64 angles)', () => {
    const headDim = 128, heads = 2;
    const positions = Int32Array.from([0, 1, 4095, 65535, 500000, 999999, 16777217, 2147483647]);
    const { invFreq } = ropeFrequencies({ type: 'default', base: 500000, dim: headDim });
    const x = randomFloats(positions.length * heads * headDim, 3);
    const y = Float32Array.from(x);
    applyRope(y, { layout: 'bshd', seqLen: positions.length, heads, headDim, positions, invFreq });
    const s: Shape = { batch: 1, seqLen: positions.length, heads, headDim, rotaryDim: headDim, layout: 'bshd', style: 'neox' };
    const want = referenceRope(x, s, (_, q) => positions[q]!, (p, i) => [Math.cos(p * invFreq[i]!), Math.sin(p * invFreq[i]!)]);
    let worst = 0, scale = 0;
    want.forEach((w, i) => ((worst = Math.max(worst, Math.abs(y[i]! - w))), (scale = Math.max(scale, Math.abs(w)))));
    expect(worst / scale).toBeLessThan(1e-6);
    // Float32 angles (what most implementations compute) are off by whole hundredths of a radian here.
    const p = 999999, f32 = Math.fround(Math.fround(p) * Math.fround(invFreq[1]!));
    expect(Math.abs(Math.sin(f32) - Math.sin(p * invFreq[1]!))).toBeGreaterThan(1e-3);
  });

  it('gathers cos/sin tables by position (ONNX style), scaled by the attention factor, and ropeCosSin builds them', () => {
    const headDim = 24, rotaryDim = 16, heads = 3, seqLen = 6, batch = 2;
    const positions = Int32Array.from([5, 0, 3, 3, 9, 1, 2, 2, 7, 0, 4, 8]);  // per batch row
    const { invFreq } = ropeFrequencies({ type: 'default', base: 10000, dim: rotaryDim });
    const tablePositions = Int32Array.from({ length: 10 }, (_, i) => i);
    const { cos, sin } = ropeCosSin(tablePositions, invFreq);
    expect(cos.length).toBe(10 * 8);
    cos.forEach((c, k) => expect(Math.abs(c - Math.cos(Math.floor(k / 8) * invFreq[k % 8]!))).toBeLessThan(1e-7));
    const x = randomFloats(batch * seqLen * heads * headDim, 9);
    for (const style of ['neox', 'interleaved'] as const) {
      const viaTables = applyRope(Float32Array.from(x), { layout: 'bhsd', batch, seqLen, heads, headDim, rotaryDim, positions, cos, sin, attentionFactor: 0.75, style });
      const direct = applyRope(Float32Array.from(x), { layout: 'bhsd', batch, seqLen, heads, headDim, rotaryDim, positions, invFreq, attentionFactor: 0.75, style });
      viaTables.forEach((v, i) => expect(Math.abs(v - direct[i]!)).toBeLessThan(1e-6));
    }
    expect(() => applyRope(Float32Array.from(x), { layout: 'bhsd', batch, seqLen, heads, headDim, rotaryDim, positions: positions.map((p) => p + 5), cos, sin })).toThrow(/positions must be integers from 0 to 9/);
  });

  it("reproduces every ONNX RotaryEmbedding node test (opset 23)", () => {
    if (!sharedDataAvailable('onnx-node-tests')) return;
    const root = path.join(SHARED_DATA, 'onnx-node-tests');
    const cases = fs.readdirSync(root).filter((d) => d.startsWith('test_rotary_embedding'));
    expect(cases.length).toBe(8);
    for (const name of cases) {
      const node = parseFirstNode(fs.readFileSync(path.join(root, name, 'model.onnx')));
      expect(node.opType).toBe('RotaryEmbedding');
      const dir = path.join(root, name, 'test_data_set_0');
      const inputs = node.inputs.map((_, i) => parseTensor(fs.readFileSync(path.join(dir, `input_${i}.pb`))));
      const want = parseTensor(fs.readFileSync(path.join(dir, 'output_0.pb')));
      const [X, cosCache, sinCache, positionIds] = inputs as [ReturnType<typeof parseTensor>, ...ReturnType<typeof parseTensor>[]];
      expect(X.dataType).toBe(ONNX_FLOAT);
      const is3d = X.dims.length === 3;
      const batch = X.dims[0]!;
      const heads = is3d ? node.attributes.num_heads! : X.dims[1]!;
      const seqLen = is3d ? X.dims[1]! : X.dims[2]!;
      const headDim = is3d ? X.dims[2]! / heads : X.dims[3]!;
      const rotaryDim = node.attributes.rotary_embedding_dim || headDim;
      const style = node.attributes.interleaved ? 'interleaved' : 'neox';
      // With position_ids the caches are [maxPos, rot/2]; without, [batch, seq, rot/2]: row b · seq + s.
      const positions = positionIds
        ? Int32Array.from(positionIds.data as BigInt64Array, Number)
        : Int32Array.from({ length: batch * seqLen }, (_, i) => i);
      const data = Float32Array.from(X.data as Float32Array);
      applyRope(data, {
        layout: is3d ? 'bshd' : 'bhsd', batch, seqLen, heads, headDim, rotaryDim, style,
        positions, cos: cosCache!.data as Float32Array, sin: sinCache!.data as Float32Array,
      });
      const expected = want.data as Float32Array;
      expect(data.length).toBe(expected.length);
      let worst = 0;
      expected.forEach((w, i) => (worst = Math.max(worst, Math.abs(data[i]! - w) / (1 + Math.abs(w)))));
      expect(worst, name).toBeLessThan(1e-6);
    }
  });

  it("agrees with onnxruntime-node's com.microsoft RotaryEmbedding on random float32 and float16 tensors", async () => {
    const r = seeded(5);
    for (const [dtype, interleaved, rotaryDim] of [['float32', 0, 64], ['float32', 1, 32], ['float16', 0, 64], ['float16', 1, 48]] as const) {
      const batch = 2, seqLen = 9, heads = 4, headDim = 64, maxPos = 4096;
      const model = rotaryEmbeddingModel({ batch, seqLen, heads, headDim, rotaryDim, maxPositions: maxPos, interleaved, float16: dtype === 'float16' });
      const session = await ort.InferenceSession.create(model);
      const { invFreq } = ropeFrequencies({ type: 'default', base: 10000, dim: rotaryDim });
      const { cos, sin } = ropeCosSin(Int32Array.from({ length: maxPos }, (_, i) => i), invFreq);
      const positions = Int32Array.from({ length: batch * seqLen }, () => Math.floor(r() * maxPos));
      const x = randomFloats(batch * seqLen * heads * headDim, 17);
      const half = (a: Float32Array) => halves(a);
      const feeds = {
        input: dtype === 'float32' ? new ort.Tensor('float32', x, [batch, seqLen, heads * headDim]) : new ort.Tensor('float16', half(x), [batch, seqLen, heads * headDim]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [batch, seqLen]),
        cos_cache: dtype === 'float32' ? new ort.Tensor('float32', cos, [maxPos, rotaryDim / 2]) : new ort.Tensor('float16', half(cos), [maxPos, rotaryDim / 2]),
        sin_cache: dtype === 'float32' ? new ort.Tensor('float32', sin, [maxPos, rotaryDim / 2]) : new ort.Tensor('float16', half(sin), [maxPos, rotaryDim / 2]),
      };
      const theirs = (await session.run(feeds)).output!.data as Float32Array | Uint16Array;
      await session.release();
      const style = interleaved ? 'interleaved' : 'neox';
      const common = { layout: 'bshd' as const, batch, seqLen, heads, headDim, rotaryDim, positions, style } as const;
      if (dtype === 'float32') {
        const ours = applyRope(Float32Array.from(x), { ...common, invFreq });
        let worst = 0;
        ours.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (theirs as Float32Array)[i]!))));
        expect(worst).toBeLessThan(2e-6);
      } else {
        // ORT's caches are float16 (cos and sin off by up to 2^-11 relative), ours float32: compare against the
        // magnitude of the pair rotated, where that rounding lands, allowing four half ulps of it.
        const ours = applyRope(half(x), { ...common, invFreq, dtype: 'float16' });
        const xs = Array.from(half(x), fromHalf);
        const partner = (i: number) => {
          const c = i % headDim;
          if (c >= rotaryDim) return i;
          return interleaved ? i ^ 1 : c < rotaryDim / 2 ? i + rotaryDim / 2 : i - rotaryDim / 2;
        };
        let worst = 0;
        ours.forEach((v, i) => {
          const a = fromHalf(v), b = fromHalf((theirs as Uint16Array)[i]!);
          const magnitude = Math.abs(xs[i]!) + Math.abs(xs[partner(i)]!);
          worst = Math.max(worst, Math.abs(a - b) / Math.max(2 ** -14, magnitude));
        });
        expect(worst, `${interleaved} ${rotaryDim}`).toBeLessThan(4 * 2 ** -11);
      }
    }
  });

  it('is identical for any thread count', () => {
    const headDim = 64, heads = 8, seqLen = 513;
    const positions = Int32Array.from({ length: seqLen }, (_, i) => i * 7);
    const { invFreq } = ropeFrequencies({ type: 'default', base: 10000, dim: headDim });
    const x = randomFloats(seqLen * heads * headDim, 4);
    const before = capabilities().threads;
    try {
      setThreads(1);
      const one = applyRope(Float32Array.from(x), { layout: 'bhsd', seqLen, heads, headDim, positions, invFreq });
      setThreads(5);
      const many = applyRope(Float32Array.from(x), { layout: 'bhsd', seqLen, heads, headDim, positions, invFreq });
      expect(Buffer.from(many.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    } finally {
      setThreads(before);
    }
  });

  it('rejects bad input with TypeError or RangeError naming the argument, and writes nothing', async () => {
    const { invFreq } = ropeFrequencies({ type: 'default', base: 10000, dim: 8 });
    const x = randomFloats(2 * 3 * 8, 1);
    const ok = { layout: 'bshd' as const, seqLen: 2, heads: 3, headDim: 8, positions: Int32Array.of(0, 1), invFreq };
    const copy = Float32Array.from(x);
    const check = (options: object, pattern: RegExp, data: unknown = copy) => {
      expect(() => applyRope(data as Float32Array, options as never)).toThrow(pattern);
      expect(Buffer.from(copy.buffer).equals(Buffer.from(x.buffer))).toBe(true);
    };
    check({ ...ok, positions: Int32Array.of(0, 1, 2) }, /"positions" must hold seqLen \(2\) or batch × seqLen \(2\) values, got 3/);
    check({ ...ok, positions: Float64Array.of(0, Number.NaN) }, /"positions"\[1\] is NaN/);
    check({ ...ok, rotaryDim: 5 }, /"rotaryDim" must be even/);
    check({ ...ok, rotaryDim: 10 }, /"rotaryDim" must be even and at most "headDim" \(8\)/);
    check({ ...ok, headDim: 6, invFreq: invFreq.subarray(0, 3) }, /"data" must hold/);
    check({ ...ok, invFreq: new Float64Array(3) }, /"invFreq" must hold rotaryDim \/ 2 = 4/);
    check({ ...ok, attentionFactor: Number.POSITIVE_INFINITY }, /"attentionFactor" must be finite/);
    check({ ...ok, layout: 'sbhd' }, /"layout" must be one of bshd, bhsd/);
    check({ ...ok, style: 'gptj' }, /"style" must be one of neox, interleaved/);
    check({ ...ok, positions: [0, 1] }, TypeError);
    check({ ...ok, invFreq: undefined }, /Give "invFreq", or both "cos" and "sin"/);
    check({ ...ok, cos: new Float32Array(4) }, /not both/);
    check(ok, /"dtype" is required for Uint16Array data/, new Uint16Array(48));
    check({ ...ok, dtype: 'float16' }, /"data" is a Float32Array but "dtype" is float16/);
    check({ ...ok, dtype: 'float8' }, /"dtype" must be one of float32, float16, bfloat16/);
    check(ok, /Expected "data" to be a Float32Array/, new Float64Array(48));
    check({ ...ok, bogus: 1 }, /Unknown option "bogus"/);
    await expect(applyRopeAsync(copy, { ...ok, seqLen: 3 })).rejects.toThrow(RangeError);
    expect(() => ropeCosSin(Int32Array.of(1), new Float64Array(0))).toThrow(/must not be empty/);
  });
});

// ---- remapping, tables, biases ---------------------------------------------------------------------------------------

describe('position remapping', () => {
  it("SelfExtend: LongEmbed's example, and grouped positions that reproduce the relative distances", () => {
    const p = Int32Array.from({ length: 10 }, (_, i) => i);
    const rel = selfExtendRelativePositions(p, p, { groupSize: 2, window: 4 });
    expect(Array.from(rel.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 4, 5, 5, 6, 6]);
    expect(Array.from(rel.subarray(40, 50))).toEqual([-4, -3, -2, -1, 0, 1, 2, 3, 4, 4]);
    // Causal use: beyond the window, groupedQuery − groupedKey is the grouped distance q − k would be.
    const long = Int32Array.from({ length: 300 }, (_, i) => i * 3 + 1);
    const { neighbor, groupedQuery, groupedKey } = selfExtendPositions(long, { groupSize: 8, window: 64 });
    const full = selfExtendRelativePositions(long, long, { groupSize: 8, window: 64 });
    for (let q = 0; q < long.length; q++)
      for (let k = 0; k <= q; k++) {
        const d = long[q]! - long[k]!;
        const viaCopies = d < 64 ? neighbor[q]! - neighbor[k]! : groupedQuery[q]! - groupedKey[k]!;
        expect(viaCopies).toBe(0 - full[q * long.length + k]!);
      }
    expect(() => selfExtendPositions(p, { groupSize: 0, window: 4 })).toThrow(/"groupSize"/);
  });

  it('LM-Infinite: the Λ-shaped mask and capped distances', () => {
    const p = Int32Array.from({ length: 12 }, (_, i) => i);
    const mask = lmInfiniteMask(p, p, { globalTokens: 2, window: 3 });
    const dist = lmInfiniteDistances(p, p, { globalTokens: 2, window: 3, distanceCap: 5 });
    for (let q = 0; q < 12; q++)
      for (let k = 0; k < 12; k++) {
        expect(mask[q * 12 + k]).toBe(k <= q && (k < 2 || q - k < 3) ? 1 : 0);
        expect(dist[q * 12 + k]).toBe(Math.min(q - k, 5));
      }
  });

  it('AnchorAttention: positions restart per packed document behind a shared anchor, with its mask', () => {
    const { positions, documentIds } = packedDocuments(Int32Array.of(3, 2, 4));
    expect(Array.from(positions)).toEqual([0, 1, 2, 3, 1, 2, 1, 2, 3, 4]);
    expect(Array.from(documentIds)).toEqual([0, 1, 1, 1, 2, 2, 3, 3, 3, 3]);
    const mask = anchorMask(documentIds);
    const n = documentIds.length;
    for (let q = 0; q < n; q++)
      for (let k = 0; k < n; k++) {
        expect(mask[q * n + k]).toBe(k <= q && (documentIds[k] === 0 || documentIds[k] === documentIds[q]) ? 1 : 0);
      }
    expect(Array.from(packedDocuments(Int32Array.of(2), { anchorTokens: 0 }).positions)).toEqual([0, 1]);
    expect(() => packedDocuments(Int32Array.of(2, -1))).toThrow(/"documentLengths"\[1\] is -1/);
  });

  it("LongEmbed's grouped and recurrent positions", () => {
    expect(Array.from(groupedPositions(10, { originalLength: 4 }))).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    expect(Array.from(groupedPositions(4, { originalLength: 8 }))).toEqual([0, 1, 2, 3]);
    expect(Array.from(recurrentPositions(10, { originalLength: 4 }))).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
    expect(() => groupedPositions(10, { originalLength: 0 })).toThrow(RangeError);
  });
});

describe('interpolatePositionTable', () => {
  it("is Long-CLIP's knowledge-preserved stretching: 77 → 248 rows, the first 20 kept, the rest 4×", () => {
    const dim = 5, pe = randomFloats(77 * dim, 8);
    const out = interpolatePositionTable(pe, { rows: 77, dim, newRows: 248, keep: 20 });
    expect(out.length).toBe(248 * dim);
    const row = (i: number, c: number) => pe[i * dim + c]!;
    for (let c = 0; c < dim; c++) {
      for (let i = 0; i < 20; i++) expect(out[i * dim + c]).toBe(pe[i * dim + c]);
      for (let k = 0; k < 56; k++)
        for (let r = 0; r < 4; r++) {
          expect(out[(20 + 4 * k + r) * dim + c]).toBe(Math.fround(((4 - r) * row(20 + k, c) + r * row(21 + k, c)) / 4));
        }
      for (let r = 0; r < 4; r++) {
        expect(out[(244 + r) * dim + c]).toBeCloseTo(row(76, c) + (r * (row(76, c) - row(75, c))) / 4, 6);
      }
    }
  });

  it("is LongEmbed's position interpolation with keep = 0, and grouped rows with 'nearest'", () => {
    const dim = 3, rows = 8, pe = randomFloats(rows * dim, 2);
    const out = interpolatePositionTable(pe, { rows, dim, newRows: 32 });
    for (let i = 0; i < rows; i++) for (let c = 0; c < dim; c++) expect(out[4 * i * dim + c]).toBe(pe[i * dim + c]);
    expect(out[(4 * 2 + 1) * dim]).toBe(Math.fround(0.75 * pe[2 * dim]! + 0.25 * pe[3 * dim]!));
    const nearest = interpolatePositionTable(pe, { rows, dim, newRows: 32, method: 'nearest' });
    for (let j = 0; j < 32; j++) expect(nearest[j * dim]).toBe(pe[Math.floor(j / 4) * dim]);
    expect(() => interpolatePositionTable(pe, { rows, dim: 4, newRows: 32 })).toThrow(/"table" must hold rows × dim = 32/);
    expect(() => interpolatePositionTable(pe, { rows, dim, newRows: 32, method: 'cubic' as never })).toThrow(/"method"/);
    expect(() => interpolatePositionTable(pe, { rows, dim, newRows: 5, keep: 5 })).toThrow(/"newRows"/);
  });
});

describe('biases', () => {
  it('ALiBi slopes: geometric for powers of two, interleaved otherwise', () => {
    expect(Array.from(alibiSlopes(8))).toEqual([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
    const twelve = alibiSlopes(12);
    const of16 = Array.from({ length: 16 }, (_, h) => 2 ** (-0.5 * (h + 1)));
    expect(Array.from(twelve.subarray(0, 8))).toEqual(Array.from(alibiSlopes(8)));
    twelve.subarray(8).forEach((s, i) => expect(s).toBeCloseTo(of16[2 * i]!, 15));
    expect(alibiSlopes(1)[0]).toBeCloseTo(2 ** -8, 15);
    expect(() => alibiSlopes(0)).toThrow(RangeError);
  });

  it("T5 buckets: exact near, logarithmic far, per direction; the reference's float32 arithmetic at the edges", () => {
    const rel = Int32Array.from({ length: 601 }, (_, i) => i - 300);
    const enc = t5RelativeBucket(rel);
    const dec = t5RelativeBucket(rel, { bidirectional: false });
    for (let i = 0; i < rel.length; i++) {
      const r = rel[i]!;
      // Encoder: 16 buckets a direction, 8 exact; decoder: 32 for the past, 16 exact.
      const n = Math.abs(r), nd = Math.max(-r, 0);
      const far = (m: number, exact: number, per: number) => Math.min(per - 1, exact + Math.log(m / exact) / Math.log(128 / exact) * (per - exact));
      const wantEnc = (r > 0 ? 16 : 0) + (n < 8 ? n : far(n, 8, 16));
      const wantDec = nd < 16 ? nd : far(nd, 16, 32);
      // Away from a bucket edge the float64 formula decides; at an edge float32 may land on either side.
      if (Math.abs(wantEnc - Math.round(wantEnc)) > 1e-5 || n < 8) expect(enc[i]).toBe(Math.floor(wantEnc));
      else expect(Math.abs(enc[i]! - wantEnc)).toBeLessThanOrEqual(1);
      if (Math.abs(wantDec - Math.round(wantDec)) > 1e-5 || nd < 16) expect(dec[i]).toBe(Math.floor(wantDec));
      else expect(Math.abs(dec[i]! - wantDec)).toBeLessThanOrEqual(1);
    }
    expect(enc[300]).toBe(0);
    expect(enc[301]).toBe(17);
    expect(enc[0]).toBe(15);  // far past: the last bucket
    expect(enc[600]).toBe(31);
    expect(() => t5RelativeBucket(rel, { numBuckets: 2 })).toThrow(RangeError);
    expect(() => t5RelativeBucket([1] as never)).toThrow(TypeError);
  });
});
