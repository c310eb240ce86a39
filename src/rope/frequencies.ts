// RoPE inverse frequencies for every context-extension method, in float64.
//
// The Hugging Face types follow transformers 5.x (modeling_rope_utils: ROPE_INIT_FUNCTIONS) formula by formula; the
// library computes in float32, so its values agree with these to about 1e-7 relative. Two more types: Giraffe's
// truncated basis (Pal et al. 2023, arXiv 2308.10882) and caller-supplied per-dimension factors (how learned
// schedules such as CLEX's or LongRoPE's searched factors are used at inference).
import { typeName } from '../core/validate.js';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3', 'truncated', 'factors'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

export interface RopeConfig {
  type: RopeType;
  /** The rope theta. */
  base: number;
  /** Rotary dimensions (even); frequencies come in dim / 2 pairs. */
  dim: number;
  /** Context extension factor (linear, dynamic, yarn, llama3; longrope's attention factor; truncated's optional
   *  linear scaling first). */
  factor?: number;
  /** The pre-training context length (yarn, longrope, llama3). */
  originalMaxPositions?: number;
  /** The model's max_position_embeddings (dynamic; yarn and longrope derive a missing factor from it). */
  maxPositions?: number;
  /** YaRN ramp bounds in rotations (defaults 32 and 1). */
  betaFast?: number;
  betaSlow?: number;
  /** YaRN magnitude scales (DeepSeek): attention factor = mscale(factor, mscale) / mscale(factor, mscaleAllDim). */
  mscale?: number;
  mscaleAllDim?: number;
  /** Overrides the type's own attention factor (the multiplier of cos and sin). */
  attentionFactor?: number;
  /** YaRN: round the correction range to whole dimensions (default true; gpt-oss uses false). */
  truncate?: boolean;
  /** LongRoPE per-pair rescale factors, used at or below / above the original length. */
  shortFactor?: ArrayLike<number>;
  longFactor?: ArrayLike<number>;
  /** Llama 3.1 wavelength band edges (original length / factor). */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** Giraffe: the context length T whose wavelengths are kept; frequencies below 2 pi / T are truncated. */
  truncateLength?: number;
  /** Giraffe: the one small frequency the middle band gets (default 2 pi / (16 T), as in the paper's code). */
  truncateRho?: number;
  /** 'factors': per-pair divisors of the default frequencies. */
  factors?: ArrayLike<number>;
}

export interface RopeFrequencyOptions {
  /** The sequence length the frequencies are for (dynamic NTK grows its base past maxPositions; LongRoPE switches
   *  to its long factors past originalMaxPositions). */
  seqLen?: number;
}

export interface RopeFrequencies {
  /** dim / 2 inverse frequencies: the angle of pair i at position p is p · invFreq[i]. */
  invFreq: Float64Array;
  /** Multiplies cos and sin (so attention logits scale by its square), as Hugging Face applies it. */
  attentionFactor: number;
}

const CONFIG_KEYS: readonly (keyof RopeConfig)[] = [
  'type', 'base', 'dim', 'factor', 'originalMaxPositions', 'maxPositions', 'betaFast', 'betaSlow', 'mscale',
  'mscaleAllDim', 'attentionFactor', 'truncate', 'shortFactor', 'longFactor', 'lowFreqFactor', 'highFreqFactor',
  'truncateLength', 'truncateRho', 'factors',
];

function fail(type: string, message: string): never {
  throw new RangeError(`ropeFrequencies (${type}): ${message}`);
}

function number(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected "${name}" to be a number, got ${typeName(value)}`);
  return value;
}

/** A finite number above zero (or at least zero), or undefined when absent. */
function positive(c: RopeConfig, key: keyof RopeConfig, allowZero = false): number | undefined {
  const value = c[key];
  if (value === undefined) return undefined;
  const v = number(value, key);
  if (!Number.isFinite(v) || v < 0 || (v === 0 && !allowZero)) {
    fail(c.type, `"${key}" must be a finite number ${allowZero ? 'of at least 0' : 'above 0'}, got ${v}`);
  }
  return v;
}

function needPositive(c: RopeConfig, key: keyof RopeConfig, why: string): number {
  const v = positive(c, key);
  if (v === undefined) fail(c.type, `"${key}" is required (${why})`);
  return v;
}

function perPair(c: RopeConfig, key: 'shortFactor' | 'longFactor' | 'factors', half: number): Float64Array {
  const value = c[key];
  if (value === undefined) fail(c.type, `"${key}" is required: ${half} per-pair factors`);
  if (typeof value !== 'object' || value === null || typeof (value as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`Expected "${key}" to be an array of numbers, got ${typeName(value)}`);
  }
  if (value.length !== half) fail(c.type, `"${key}" must hold dim / 2 = ${half} factors, got ${value.length}`);
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const v = number(value[i], `${key}[${i}]`);
    if (!Number.isFinite(v) || v <= 0) fail(c.type, `"${key}"[${i}] must be a finite number above 0, got ${v}`);
    out[i] = v;
  }
  return out;
}

/** base^(-2i/dim): RoFormer's frequencies. */
function defaultFrequencies(base: number, dim: number): Float64Array {
  const f = new Float64Array(dim / 2);
  for (let i = 0; i < f.length; i++) f[i] = 1 / base ** ((2 * i) / dim);
  return f;
}

// YaRN's magnitude correction sqrt(1/t) = 0.1 ln(s) + 1 (Peng et al. 2023), with DeepSeek's mscale multiplier.
function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

function dynamicNtk(c: RopeConfig, seqLen: number | undefined): RopeFrequencies {
  const factor = needPositive(c, 'factor', 'the NTK scale');
  const maxPositions = needPositive(c, 'maxPositions', "the length past which the base grows (HF's max_position_embeddings)");
  if (c.dim === 2) return { invFreq: Float64Array.of(1), attentionFactor: 1 };  // one pair: angle p, any base
  const length = Math.max(seqLen ?? 0, maxPositions);
  const base = c.base * ((factor * length) / maxPositions - (factor - 1)) ** (c.dim / (c.dim - 2));
  return { invFreq: defaultFrequencies(base, c.dim), attentionFactor: 1 };
}

function yarn(c: RopeConfig): RopeFrequencies {
  const original = needPositive(c, 'originalMaxPositions', 'the pre-training context length');
  let factor = positive(c, 'factor');
  if (factor === undefined) {
    const maxPositions = positive(c, 'maxPositions');
    if (maxPositions === undefined) fail(c.type, '"factor" is required (or "maxPositions" to derive it)');
    factor = maxPositions / original;
  }
  const mscale = positive(c, 'mscale', true), mscaleAllDim = positive(c, 'mscaleAllDim', true);
  const attentionFactor = mscale && mscaleAllDim
    ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim)
    : yarnMscale(factor);
  const betaFast = positive(c, 'betaFast') ?? 32, betaSlow = positive(c, 'betaSlow') ?? 1;
  const truncate = c.truncate ?? true;
  if (typeof truncate !== 'boolean') throw new TypeError(`Expected "truncate" to be a boolean, got ${typeName(truncate)}`);
  // The dimension index at which a wavelength fits `rotations` times into the original context.
  const correctionDim = (rotations: number) => (c.dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(c.base));
  let low = correctionDim(betaFast), high = correctionDim(betaSlow);
  if (truncate) low = Math.floor(low), high = Math.ceil(high);
  low = Math.max(low, 0);
  high = Math.min(high, c.dim - 1);
  if (low === high) high += 0.001;  // as the reference: no zero-width ramp
  const invFreq = new Float64Array(c.dim / 2);
  for (let i = 0; i < invFreq.length; i++) {
    const posFreq = c.base ** ((2 * i) / c.dim);
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapolation = 1 - ramp;  // 1: keep the original frequency; 0: divide it by the factor
    invFreq[i] = (1 / (factor * posFreq)) * (1 - extrapolation) + (1 / posFreq) * extrapolation;
  }
  return { invFreq, attentionFactor };
}

function longrope(c: RopeConfig, seqLen: number | undefined): RopeFrequencies {
  const half = c.dim / 2;
  const original = needPositive(c, 'originalMaxPositions', 'the switch point between short and long factors');
  const shortFactor = perPair(c, 'shortFactor', half), longFactor = perPair(c, 'longFactor', half);
  let factor = positive(c, 'factor');
  if (factor === undefined) {
    const maxPositions = positive(c, 'maxPositions');
    if (maxPositions === undefined) fail(c.type, '"factor" is required (or "maxPositions" to derive it)');
    factor = maxPositions / original;
  }
  const attentionFactor = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
  // Strictly past the original length, as transformers switches (exactly the original length stays short).
  const ext = seqLen !== undefined && seqLen > original ? longFactor : shortFactor;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / (ext[i]! * c.base ** ((2 * i) / c.dim));
  return { invFreq, attentionFactor };
}

function llama3(c: RopeConfig): RopeFrequencies {
  const factor = needPositive(c, 'factor', 'the low-frequency divisor');
  const low = needPositive(c, 'lowFreqFactor', 'the long-wavelength band edge');
  const high = needPositive(c, 'highFreqFactor', 'the short-wavelength band edge');
  const original = needPositive(c, 'originalMaxPositions', 'the pre-training context length');
  if (!(high > low)) fail(c.type, `"highFreqFactor" (${high}) must exceed "lowFreqFactor" (${low})`);
  const lowWavelength = original / low, highWavelength = original / high;
  const invFreq = defaultFrequencies(c.base, c.dim);
  for (let i = 0; i < invFreq.length; i++) {
    const f = invFreq[i]!, wavelength = (2 * Math.PI) / f;
    if (wavelength < highWavelength) continue;  // short wavelengths: kept
    if (wavelength > lowWavelength) {
      invFreq[i] = f / factor;  // long wavelengths: interpolated
      continue;
    }
    // Between the edges (both inclusive, as the reference): a linear blend in 1 / wavelength.
    const smooth = (original / wavelength - low) / (high - low);
    invFreq[i] = ((1 - smooth) * f) / factor + smooth * f;
  }
  return { invFreq, attentionFactor: 1 };
}

// Giraffe's truncated basis: frequencies above b = 2 pi / T kept, those in [b / 8, b) replaced by rho, the rest 0
// (those pairs then carry no position at all).
function truncated(c: RopeConfig): RopeFrequencies {
  const length = needPositive(c, 'truncateLength', 'the context length T whose wavelengths are kept');
  const cutoff = (2 * Math.PI) / length, floor = cutoff / 8;
  const rho = positive(c, 'truncateRho', true) ?? cutoff / 16;
  const factor = positive(c, 'factor') ?? 1;
  const invFreq = defaultFrequencies(c.base, c.dim);
  for (let i = 0; i < invFreq.length; i++) {
    const f = invFreq[i]! / factor;
    invFreq[i] = f >= cutoff ? f : f >= floor ? rho : 0;
  }
  return { invFreq, attentionFactor: 1 };
}

/**
 * RoPE inverse frequencies and attention factor for a scaling method.
 *
 * Types: 'default' (RoFormer), 'linear' (position interpolation), 'dynamic' (dynamic NTK), 'yarn', 'longrope',
 * 'llama3', 'truncated' (Giraffe) and 'factors' (per-pair divisors). Values are float64 and exact to rounding;
 * transformers' float32 values agree to about 1e-7 relative.
 */
export function ropeFrequencies(config: RopeConfig, options?: RopeFrequencyOptions): RopeFrequencies {
  if (config === null || typeof config !== 'object') {
    throw new TypeError(`Expected "config" to be an object, got ${typeName(config)}`);
  }
  for (const key of Object.keys(config)) {
    if (!CONFIG_KEYS.includes(key as keyof RopeConfig)) {
      throw new TypeError(`Unknown option "${key}" in "config" (known options: ${CONFIG_KEYS.join(', ')})`);
    }
  }
  const type = config.type;
  if (typeof type !== 'string') throw new TypeError(`Expected "type" to be a string, got ${typeName(type)}`);
  if (!(ROPE_TYPES as readonly string[]).includes(type)) {
    throw new RangeError(`Unknown RoPE type "${type}" (known types: ${ROPE_TYPES.join(', ')})`);
  }
  const base = number(config.base, 'base');
  if (!Number.isFinite(base) || base <= 1) fail(type, `"base" must be a finite number above 1, got ${base}`);
  const dim = number(config.dim, 'dim');
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0 || dim > 1 << 20) {
    fail(type, `"dim" must be an even integer from 2 to 2^20, got ${dim}`);
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`Expected "options" to be an object, got ${typeName(options)}`);
  }
  for (const key of Object.keys(options ?? {})) {
    if (key !== 'seqLen') throw new TypeError(`Unknown option "${key}" in "options" (known options: seqLen)`);
  }
  const seqLen = options?.seqLen;
  if (seqLen !== undefined) {
    number(seqLen, 'seqLen');
    if (!Number.isSafeInteger(seqLen) || seqLen < 0) throw new RangeError(`"seqLen" must be a non-negative integer, got ${seqLen}`);
  }
  const explicit = positive(config, 'attentionFactor', true);
  let result: RopeFrequencies;
  switch (type) {
    case 'default':
      result = { invFreq: defaultFrequencies(base, dim), attentionFactor: 1 };
      break;
    case 'linear': {
      const factor = needPositive(config, 'factor', 'positions are divided by it');
      const invFreq = defaultFrequencies(base, dim).map((f) => f / factor);
      result = { invFreq, attentionFactor: 1 };
      break;
    }
    case 'dynamic':
      result = dynamicNtk(config, seqLen);
      break;
    case 'yarn':
      result = yarn(config);
      break;
    case 'longrope':
      result = longrope(config, seqLen);
      break;
    case 'llama3':
      result = llama3(config);
      break;
    case 'truncated':
      result = truncated(config);
      break;
    case 'factors': {
      const factors = perPair(config, 'factors', dim / 2);
      result = { invFreq: defaultFrequencies(base, dim).map((f, i) => f / factors[i]!), attentionFactor: 1 };
      break;
    }
  }
  if (explicit !== undefined) result.attentionFactor = explicit;
  return result;
}
