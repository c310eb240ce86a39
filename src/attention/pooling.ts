// Pooling heads of embedding models (native/include/tessera/pooling.h): token pooling (mean, CLS, last token),
// NV-Embed's latent attention, ECAPA-TDNN's attentive statistics pooling and Deep Interest Network's target attention.
import { types } from 'node:util';

import type { LatentAttentionArgs, PoolTokensArgs, StatsPoolArgs, TargetAttentionArgs } from '../native/binding.js';
import { binding } from '../native/load.js';
import {
  expectBoolean,
  expectFloat32Array,
  expectInteger,
  expectOneOf,
  expectOptions,
  expectTypedArray,
  required,
  typeName,
  viewsOverlap,
  MAX_ELEMENTS,
  shapeCount,
  expectFloat32Length,
} from '../core/validate.js';




function outArray(value: unknown, length: number, inputs: readonly ArrayBufferView[]): Float32Array {
  if (value === undefined) return new Float32Array(length);
  const out = expectFloat32Length(value, 'out', length);
  if (inputs.some((a) => viewsOverlap(out, a))) throw new RangeError('"out" must not overlap an input');
  return out;
}

function epsilon(value: unknown, name: string, fallback: number, allowZero: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`Expected "${name}" to be a number, got ${typeName(value)}`);
  if (!(allowZero ? value >= 0 : value > 0) || !(value < 1)) {
    throw new RangeError(`"${name}" must be ${allowZero ? 'from 0' : 'above 0'} and below 1, got ${value}`);
  }
  return value;
}

function lengthsOf(value: unknown, batch: number, seq: number, seqName: string): Int32Array {
  const lengths = expectTypedArray(value, 'Int32Array', 'lengths');
  if (lengths.length !== batch) throw new RangeError(`"lengths" must hold batch (${batch}) values, got ${lengths.length}`);
  lengths.forEach((n, b) => {
    if (n < 0 || n > seq) throw new RangeError(`"lengths"[${b}] is ${n}: it must be from 0 to ${seqName} (${seq})`);
  });
  return lengths;
}

/** A [batch, seq] token mask (Uint8Array or Int32Array, nonzero = a real token) or per-row lengths, not both. */
function tokenMask(mask: unknown, lengths: unknown, batch: number, seq: number): [Uint8Array | null, Int32Array | null, Int32Array | null] {
  if (mask !== undefined && lengths !== undefined) throw new RangeError('give "mask" or "lengths", not both');
  if (mask !== undefined) {
    if (!types.isUint8Array(mask) && !types.isInt32Array(mask)) {
      throw new TypeError(`Expected "mask" to be a Uint8Array or Int32Array, got ${typeName(mask)}`);
    }
    const m = mask as Uint8Array | Int32Array;
    if (m.length !== batch * seq) throw new RangeError(`"mask" must hold batch × seq = ${batch * seq} values, got ${m.length}`);
    return types.isUint8Array(m) ? [m as Uint8Array, null, null] : [null, m as Int32Array, null];
  }
  if (lengths !== undefined) return [null, null, lengthsOf(lengths, batch, seq, 'seq')];
  return [null, null, null];
}

function expectObject(value: unknown, name: string): void {
  if (value === undefined) throw new TypeError(`Missing required option "${name}"`);
}

// ---- poolTokens ------------------------------------------------------------------------------------------------

export type TokenPoolingMode = 'mean' | 'cls' | 'last';

export interface PoolTokensOptions {
  batch: number;
  seq: number;
  dim: number;
  /** 'mean': masked mean; 'cls': the first valid token; 'last': the last valid token (decoder embedders). */
  mode: TokenPoolingMode;
  /** [batch, seq], nonzero = a real token; padding may be on either side (left padding works with 'last'). */
  mask?: Uint8Array | Int32Array;
  /** Instead of a mask: the number of valid tokens of each row, the rest right padding. */
  lengths?: Int32Array;
  /** L2-normalise each output row (x / max(‖x‖, 1e-12), as torch.nn.functional.normalize). Default false. */
  normalize?: boolean;
  /** Where to write [batch, dim]. */
  out?: Float32Array;
}

const TOKEN_OPTIONS: readonly (keyof PoolTokensOptions)[] = ['batch', 'seq', 'dim', 'mode', 'mask', 'lengths', 'normalize', 'out'];

function tokenArgs(hidden: unknown, options: unknown): PoolTokensArgs {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<PoolTokensOptions>(options, 'options', TOKEN_OPTIONS);
  const batch = expectInteger(required(o.batch, 'batch'), 'batch', 0, MAX_ELEMENTS);
  const seq = expectInteger(required(o.seq, 'seq'), 'seq', 0, MAX_ELEMENTS);
  const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_ELEMENTS);
  const h = expectFloat32Length(hidden, 'hidden', shapeCount(batch, seq, dim));
  const mode = expectOneOf(required(o.mode, 'mode'), 'mode', ['mean', 'cls', 'last'] as const);
  const [u8, i32, lengths] = tokenMask(o.mask, o.lengths, batch, seq);
  const normalize = expectBoolean(o.normalize, 'normalize', false);
  const out = outArray(o.out, shapeCount(batch, dim), [h, ...[u8, i32, lengths].filter((a) => a !== null)]);
  return [h, out, batch, seq, dim, mode, u8, i32, lengths, normalize];
}

/**
 * Pools token hidden states [batch, seq, dim] into one vector per row, [batch, dim]: the masked mean ('mean'), the
 * first valid token ('cls') or the last valid token ('last', as E5-Mistral and other decoder embedders; with left
 * padding that is the row's final position). A row with no valid token gives zeros. Means are summed in float64.
 * Threaded over rows.
 */
export function poolTokens(hidden: Float32Array, options: PoolTokensOptions): Float32Array {
  const args = tokenArgs(hidden, options);
  binding().poolTokens(...args);
  return args[1];
}

/** poolTokens() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function poolTokensAsync(hidden: Float32Array, options: PoolTokensOptions): Promise<Float32Array> {
  const args = tokenArgs(hidden, options);
  await binding().poolTokensAsync(...args);
  return args[1];
}

// ---- latentAttentionPool ---------------------------------------------------------------------------------------

/**
 * NV-Embed's latent-attention weights, each a Float32Array in torch.nn.Linear's layout [out, in] (row-major, as the
 * checkpoint stores them under latent_attention_model.*). inner = heads × headDim, ff = the feed-forward width.
 */
export interface LatentAttentionWeights {
  /** [numLatents, dim]: `latents`. */
  latents: Float32Array;
  /** [dim]: `cross_attend_blocks.0.norm.{weight,bias}` (LayerNorm of the token states). */
  normWeight: Float32Array;
  normBias: Float32Array;
  /** [dim]: `cross_attend_blocks.0.norm_context.{weight,bias}` (LayerNorm of the latents). */
  contextNormWeight: Float32Array;
  contextNormBias: Float32Array;
  /** [inner, dim]: `cross_attend_blocks.0.fn.to_q.weight`. */
  toQ: Float32Array;
  /** [2·inner, dim]: `cross_attend_blocks.0.fn.to_kv.weight` (keys first, then values). */
  toKv: Float32Array;
  /** [dim, inner]: `cross_attend_blocks.0.fn.to_out.weight`. */
  toOut: Float32Array;
  /** [dim]: a bias for to_out, for variants that have one (NV-Embed's own to_out has none). */
  toOutBias?: Float32Array;
  /** [dim]: `cross_attend_blocks.1.norm.{weight,bias}`. */
  ffNormWeight: Float32Array;
  ffNormBias: Float32Array;
  /** [2·ff, dim] and [2·ff]: `cross_attend_blocks.1.fn.net.0.{weight,bias}` (value half first, then the gate). */
  ffIn: Float32Array;
  ffInBias: Float32Array;
  /** [dim, ff] and [dim]: `cross_attend_blocks.1.fn.net.2.{weight,bias}`. */
  ffOut: Float32Array;
  ffOutBias: Float32Array;
}

export interface LatentAttentionPoolOptions {
  batch: number;
  seq: number;
  dim: number;
  /** Attention heads (NV-Embed-v2: 8). */
  heads: number;
  /** Size of each head (NV-Embed-v2: 4096). Heads up to 256 run on the tiled attention kernel. */
  headDim: number;
  /** [batch, seq], nonzero = a token that enters the mean (NV-Embed's pool_mask: instruction tokens excluded). */
  mask?: Uint8Array | Int32Array;
  /** Instead of a mask: valid tokens per row, right padding. */
  lengths?: Int32Array;
  weights: LatentAttentionWeights;
  /** L2-normalise the pooled vectors (the reference's output_normalize). Default true. */
  normalize?: boolean;
  /** LayerNorm epsilon (default 1e-5, torch's). */
  eps?: number;
  out?: Float32Array;
}

const LATENT_OPTIONS: readonly (keyof LatentAttentionPoolOptions)[] = [
  'batch', 'seq', 'dim', 'heads', 'headDim', 'mask', 'lengths', 'weights', 'normalize', 'eps', 'out',
];
const LATENT_WEIGHTS: readonly (keyof LatentAttentionWeights)[] = [
  'latents', 'normWeight', 'normBias', 'contextNormWeight', 'contextNormBias', 'toQ', 'toKv', 'toOut', 'toOutBias',
  'ffNormWeight', 'ffNormBias', 'ffIn', 'ffInBias', 'ffOut', 'ffOutBias',
];

function latentArgs(hidden: unknown, options: unknown): LatentAttentionArgs {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<LatentAttentionPoolOptions>(options, 'options', LATENT_OPTIONS);
  const batch = expectInteger(required(o.batch, 'batch'), 'batch', 0, MAX_ELEMENTS);
  const seq = expectInteger(required(o.seq, 'seq'), 'seq', 0, MAX_ELEMENTS);
  const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_ELEMENTS);
  const heads = expectInteger(required(o.heads, 'heads'), 'heads', 1, MAX_ELEMENTS);
  const headDim = expectInteger(required(o.headDim, 'headDim'), 'headDim', 1, MAX_ELEMENTS);
  const h = expectFloat32Length(hidden, 'hidden', shapeCount(batch, seq, dim));
  const [u8, i32, lengths] = tokenMask(o.mask, o.lengths, batch, seq);
  expectObject(o.weights, 'weights');
  const w = expectOptions<LatentAttentionWeights>(o.weights, 'weights', LATENT_WEIGHTS);
  const latents = expectFloat32Array(w.latents, 'weights.latents');
  if (latents.length === 0 || latents.length % dim !== 0) {
    throw new RangeError(`"weights.latents" must hold numLatents × dim (${dim}) values, got ${latents.length}`);
  }
  const numLatents = latents.length / dim;
  const ffInBias = expectFloat32Array(w.ffInBias, 'weights.ffInBias');
  if (ffInBias.length === 0 || ffInBias.length % 2 !== 0) {
    throw new RangeError(`"weights.ffInBias" must hold 2 × ff values (an even, nonzero count), got ${ffInBias.length}`);
  }
  const ff = ffInBias.length / 2, inner = shapeCount(heads, headDim);
  const vec = (key: keyof LatentAttentionWeights, n: number) => expectFloat32Length(w[key], `weights.${key}`, n);
  const weights = [
    latents, vec('normWeight', dim), vec('normBias', dim), vec('contextNormWeight', dim), vec('contextNormBias', dim),
    vec('toQ', shapeCount(inner, dim)), vec('toKv', shapeCount(2, inner, dim)), vec('toOut', shapeCount(dim, inner)),
    w.toOutBias === undefined ? null : vec('toOutBias', dim),
    vec('ffNormWeight', dim), vec('ffNormBias', dim), vec('ffIn', shapeCount(2, ff, dim)), ffInBias, vec('ffOut', shapeCount(dim, ff)),
    vec('ffOutBias', dim),
  ] as const;
  const normalize = expectBoolean(o.normalize, 'normalize', true);
  const eps = epsilon(o.eps, 'eps', 1e-5, false);
  const inputs = [h, ...[u8, i32, lengths, ...weights].filter((a): a is NonNullable<typeof a> => a !== null)];
  const out = outArray(o.out, shapeCount(batch, dim), inputs);
  return [h, out, batch, seq, dim, heads, headDim, numLatents, ff, u8, i32, lengths, eps, normalize, ...weights];
}

/**
 * NV-Embed's latent-attention pooling (Lee et al. 2024, arXiv 2405.17428): each valid token state x becomes
 * y = x + to_out(MHA(LN(x) → q; LN(latents) → k, v)), z = y + FF(LN(y)) with a GEGLU feed-forward (exact erf GELU on
 * the second half of net.0's outputs), then the masked mean of z over the row's tokens, L2-normalised by default.
 * `hidden` is the backbone's last hidden state [batch, seq, dim]; the result is [batch, dim]. A row with no valid
 * token gives zeros (the reference would divide by zero). Float32 with float64 statistics; agrees with a float64
 * evaluation to about 1e-5 relative.
 */
export function latentAttentionPool(hidden: Float32Array, options: LatentAttentionPoolOptions): Float32Array {
  const args = latentArgs(hidden, options);
  binding().latentAttentionPool(...args);
  return args[1];
}

/** latentAttentionPool() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function latentAttentionPoolAsync(hidden: Float32Array, options: LatentAttentionPoolOptions): Promise<Float32Array> {
  const args = latentArgs(hidden, options);
  await binding().latentAttentionPoolAsync(...args);
  return args[1];
}

// ---- attentiveStatsPool ----------------------------------------------------------------------------------------

/**
 * ECAPA-TDNN attentive statistics pooling weights (speechbrain `asp.*`), Float32Arrays; Conv1d weights with the size-1
 * kernel axis dropped, [out, in] row-major. A = attention channels, C = channels.
 */
export interface AttentiveStatsWeights {
  /** [A, 3C] with global context (input order [x, mean, std]), else [A, C]: `tdnn.conv.conv.weight`. */
  tdnnWeight: Float32Array;
  /** [A]: `tdnn.conv.conv.bias`. */
  tdnnBias: Float32Array;
  /** [A]: `tdnn.norm.norm.{running_mean, running_var, weight, bias}` (inference batch norm). */
  bnMean: Float32Array;
  bnVar: Float32Array;
  bnWeight: Float32Array;
  bnBias: Float32Array;
  /** [C, A] and [C]: `conv.conv.{weight,bias}`. */
  convWeight: Float32Array;
  convBias: Float32Array;
}

export interface AttentiveStatsPoolOptions {
  batch: number;
  channels: number;
  frames: number;
  /** Valid frames per row (absolute counts; speechbrain's relative length r keeps frames t < r × frames). */
  lengths?: Int32Array;
  weights: AttentiveStatsWeights;
  /** Feed the utterance's mean and std to the attention (speechbrain's default true). */
  globalContext?: boolean;
  /** Variance floor before the square root (default 1e-12). */
  eps?: number;
  /** Batch-norm epsilon (default 1e-5). */
  bnEps?: number;
  out?: Float32Array;
}

const STATS_OPTIONS: readonly (keyof AttentiveStatsPoolOptions)[] = [
  'batch', 'channels', 'frames', 'lengths', 'weights', 'globalContext', 'eps', 'bnEps', 'out',
];
const STATS_WEIGHTS: readonly (keyof AttentiveStatsWeights)[] = [
  'tdnnWeight', 'tdnnBias', 'bnMean', 'bnVar', 'bnWeight', 'bnBias', 'convWeight', 'convBias',
];

function statsArgs(x: unknown, options: unknown): StatsPoolArgs {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<AttentiveStatsPoolOptions>(options, 'options', STATS_OPTIONS);
  const batch = expectInteger(required(o.batch, 'batch'), 'batch', 0, MAX_ELEMENTS);
  const channels = expectInteger(required(o.channels, 'channels'), 'channels', 1, MAX_ELEMENTS);
  const frames = expectInteger(required(o.frames, 'frames'), 'frames', 0, MAX_ELEMENTS);
  const xs = expectFloat32Length(x, 'x', shapeCount(batch, channels, frames));
  const lengths = o.lengths === undefined ? null : lengthsOf(o.lengths, batch, frames, 'frames');
  const globalContext = expectBoolean(o.globalContext, 'globalContext', true);
  const eps = epsilon(o.eps, 'eps', 1e-12, true);
  const bnEps = epsilon(o.bnEps, 'bnEps', 1e-5, true);
  expectObject(o.weights, 'weights');
  const w = expectOptions<AttentiveStatsWeights>(o.weights, 'weights', STATS_WEIGHTS);
  const tdnnBias = expectFloat32Array(w.tdnnBias, 'weights.tdnnBias');
  const A = tdnnBias.length;
  if (A === 0) throw new RangeError('"weights.tdnnBias" must hold the attention channels (at least 1)');
  const vec = (key: keyof AttentiveStatsWeights, n: number) => expectFloat32Length(w[key], `weights.${key}`, n);
  const weights = [
    vec('tdnnWeight', shapeCount(A, globalContext ? 3 * channels : channels)), tdnnBias, vec('bnMean', A), vec('bnVar', A),
    vec('bnWeight', A), vec('bnBias', A), vec('convWeight', shapeCount(channels, A)), vec('convBias', channels),
  ] as const;
  const out = outArray(o.out, shapeCount(batch, 2 * channels), [xs, ...weights, ...(lengths ? [lengths] : [])]);
  return [xs, out, batch, channels, frames, A, globalContext, lengths, eps, bnEps, ...weights];
}

/**
 * ECAPA-TDNN attentive statistics pooling (Desplanques et al. 2020; speechbrain's AttentiveStatisticsPooling):
 * x [batch, channels, frames] → [batch, 2·channels] = per channel the attention-weighted mean, then the weighted
 * std sqrt(max(var, eps)). Attention: Conv1d(tanh(BN(relu(Conv1d([x, mean, std]))))), softmax over the valid frames
 * per channel. A row with no valid frame gives zeros.
 */
export function attentiveStatsPool(x: Float32Array, options: AttentiveStatsPoolOptions): Float32Array {
  const args = statsArgs(x, options);
  binding().attentiveStatsPool(...args);
  return args[1];
}

/** attentiveStatsPool() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function attentiveStatsPoolAsync(x: Float32Array, options: AttentiveStatsPoolOptions): Promise<Float32Array> {
  const args = statsArgs(x, options);
  await binding().attentiveStatsPoolAsync(...args);
  return args[1];
}

// ---- targetAttention -------------------------------------------------------------------------------------------

/**
 * Deep Interest Network activation-unit weights as TensorFlow Dense layers store them: kernels [in, out] row-major.
 * H = dim, h1 = hidden1 (the official code: 80), h2 = hidden2 (40).
 */
export interface TargetAttentionWeights {
  /** [4H, h1]: rows in feature order [q, k, q − k, q ⊙ k] (`f1_att/kernel`); b1 [h1]. */
  w1: Float32Array;
  b1: Float32Array;
  /** [h1, h2] (`f2_att/kernel`); b2 [h2]. */
  w2: Float32Array;
  b2: Float32Array;
  /** [h2] (`f3_att/kernel`, [h2, 1]); b3 [1]. */
  w3: Float32Array;
  b3: Float32Array;
  /** With activation 'prelu': per-unit slopes [h1] and [h2] (Keras PReLU alpha). */
  prelu1?: Float32Array;
  prelu2?: Float32Array;
}

export interface TargetAttentionOptions {
  batch: number;
  /** Candidate items per row (attention_multi_items' N; default 1). */
  items?: number;
  /** Behaviour steps T. */
  seqK: number;
  /** Embedding size H. */
  dim: number;
  /** Valid steps per row (keys_length), the rest padding. */
  lengths?: Int32Array;
  weights: TargetAttentionWeights;
  /** 'sigmoid' (the official code, default), 'relu' or 'prelu'. */
  activation?: 'sigmoid' | 'relu' | 'prelu';
  /** 'softmax' over the valid steps of score / √H (the official code, default) or 'none' (the paper's raw weights). */
  normalize?: 'softmax' | 'none';
  out?: Float32Array;
}

const TARGET_OPTIONS: readonly (keyof TargetAttentionOptions)[] = [
  'batch', 'items', 'seqK', 'dim', 'lengths', 'weights', 'activation', 'normalize', 'out',
];
const TARGET_WEIGHTS: readonly (keyof TargetAttentionWeights)[] = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3', 'prelu1', 'prelu2'];

function targetArgs(query: unknown, keys: unknown, options: unknown): TargetAttentionArgs {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<TargetAttentionOptions>(options, 'options', TARGET_OPTIONS);
  const batch = expectInteger(required(o.batch, 'batch'), 'batch', 0, MAX_ELEMENTS);
  const items = o.items === undefined ? 1 : expectInteger(o.items, 'items', 1, MAX_ELEMENTS);
  const seqK = expectInteger(required(o.seqK, 'seqK'), 'seqK', 0, MAX_ELEMENTS);
  const dim = expectInteger(required(o.dim, 'dim'), 'dim', 1, MAX_ELEMENTS);
  const q = expectFloat32Length(query, 'query', shapeCount(batch, items, dim));
  const k = expectFloat32Length(keys, 'keys', shapeCount(batch, seqK, dim));
  const lengths = o.lengths === undefined ? null : lengthsOf(o.lengths, batch, seqK, 'seqK');
  const activation = o.activation === undefined ? 'sigmoid' : expectOneOf(o.activation, 'activation', ['sigmoid', 'relu', 'prelu'] as const);
  const normalize = o.normalize === undefined ? 'softmax' : expectOneOf(o.normalize, 'normalize', ['softmax', 'none'] as const);
  expectObject(o.weights, 'weights');
  const w = expectOptions<TargetAttentionWeights>(o.weights, 'weights', TARGET_WEIGHTS);
  const b1 = expectFloat32Array(w.b1, 'weights.b1'), b2 = expectFloat32Array(w.b2, 'weights.b2');
  const h1 = b1.length, h2 = b2.length;
  if (h1 === 0) throw new RangeError('"weights.b1" must hold hidden1 values (at least 1)');
  if (h2 === 0) throw new RangeError('"weights.b2" must hold hidden2 values (at least 1)');
  const vec = (key: keyof TargetAttentionWeights, n: number) => expectFloat32Length(w[key], `weights.${key}`, n);
  let prelu1: Float32Array | null = null, prelu2: Float32Array | null = null;
  if (activation === 'prelu') {
    prelu1 = vec('prelu1', h1);
    prelu2 = vec('prelu2', h2);
  } else if (w.prelu1 !== undefined || w.prelu2 !== undefined) {
    throw new RangeError('"weights.prelu1" and "weights.prelu2" belong to activation \'prelu\'');
  }
  const weights = [vec('w1', shapeCount(4, dim, h1)), b1, vec('w2', shapeCount(h1, h2)), b2, vec('w3', h2), vec('b3', 1)] as const;
  const inputs = [q, k, ...weights, ...[lengths, prelu1, prelu2].filter((a): a is NonNullable<typeof a> => a !== null)];
  const out = outArray(o.out, shapeCount(batch, items, dim), inputs);
  return [q, k, out, batch, items, seqK, dim, h1, h2, lengths, activation, normalize, ...weights, prelu1, prelu2];
}

/**
 * Deep Interest Network's local activation unit (Zhou et al., KDD 2018): for each candidate query [batch, items, dim]
 * and each valid behaviour key [batch, seqK, dim] of its row, an MLP scores [q, k, q − k, q ⊙ k]; the keys'
 * weighted sum is the user-interest vector, [batch, items, dim]. 'softmax' follows the official code (scores / √dim,
 * softmax over the valid steps); 'none' uses the raw scores as weights (the paper). A row with no valid step gives
 * zeros.
 */
export function targetAttention(query: Float32Array, keys: Float32Array, options: TargetAttentionOptions): Float32Array {
  const args = targetArgs(query, keys, options);
  binding().targetAttention(...args);
  return args[2];
}

/** targetAttention() on worker threads. Do not modify the inputs (or `out`) until the promise settles. */
export async function targetAttentionAsync(query: Float32Array, keys: Float32Array, options: TargetAttentionOptions): Promise<Float32Array> {
  const args = targetArgs(query, keys, options);
  await binding().targetAttentionAsync(...args);
  return args[2];
}
