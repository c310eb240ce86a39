// Reads a Hugging Face config.json object as transformers 5.x does (RotaryEmbeddingConfigMixin
// .convert_rope_params_to_dict and .standardize_rope_params), in either form:
//   v5: "rope_parameters": { "rope_type", "rope_theta", "factor", "original_max_position_embeddings", ... },
//       possibly nested by layer type ({ "full_attention": {...}, "sliding_attention": {...} });
//   v4: "rope_scaling": { "type" | "rope_type", "factor", ... } or null, with "rope_theta" at the top level.
import { typeName } from '../core/validate.js';
import { ropeFrequencies, type RopeConfig, type RopeFrequencies, type RopeType } from './frequencies.js';

export interface HfRopeOptions {
  /** The sequence length (dynamic NTK and LongRoPE depend on it). */
  seqLen?: number;
  /** For configs whose rope_parameters are nested by layer type: which layer type's RoPE. */
  layerType?: string;
}

export interface HfRope extends RopeFrequencies {
  /** The config in ropeFrequencies' terms, as read. */
  config: RopeConfig;
  /** The attention head size, and how many of its channels rotate (head_dim × partial_rotary_factor). */
  headDim: number;
  rotaryDim: number;
}

type Json = Record<string, unknown>;

const HF_TYPES: Record<string, RopeType> = {
  default: 'default',
  linear: 'linear',
  dynamic: 'dynamic',
  yarn: 'yarn',
  longrope: 'longrope',
  llama3: 'llama3',
};

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// A JSON number field, or undefined when absent or null.
function num(o: Json, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new TypeError(`Expected "${where}${key}" to be a number, got ${typeName(v)}`);
  return v;
}

// Python's `x or default`: a missing, null or zero value takes the default.
function numOr(o: Json, key: string, where: string): number | undefined {
  const v = num(o, key, where);
  return v === 0 ? undefined : v;
}

function list(o: Json, key: string, where: string): number[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new TypeError(`Expected "${where}${key}" to be an array, got ${typeName(v)}`);
  return v as number[];
}

// The rope parameter dict that applies, and whether it came from a nested (per layer type) form.
function ropeParameters(config: Json, layerType: string | undefined): { params: Json; where: string; nested: boolean } {
  // transformers: `rope_scaling or rope_parameters` (an empty or null rope_scaling defers to rope_parameters)
  const legacy = isObject(config.rope_scaling) && Object.keys(config.rope_scaling).length > 0;
  const source = legacy ? 'rope_scaling' : 'rope_parameters';
  const raw = config[source];
  if (raw !== undefined && raw !== null && !isObject(raw)) {
    throw new TypeError(`Expected "${source}" to be an object, got ${typeName(raw)}`);
  }
  const params: Json = raw ? { ...raw } : {};
  const labels = Array.isArray(config.layer_types) ? (config.layer_types as unknown[]) : [];
  const nestedKeys = Object.keys(params).filter((k) => labels.includes(k));
  if (nestedKeys.length === 0) {
    if (layerType !== undefined) throw new RangeError(`"layerType" was given, but the config's RoPE is not per layer type`);
    return { params, where: `${source}.`, nested: false };
  }
  const key = layerType ?? (nestedKeys.length === 1 ? nestedKeys[0]! : undefined);
  if (key === undefined || !nestedKeys.includes(key)) {
    throw new RangeError(`The config's RoPE is per layer type: give "layerType", one of ${nestedKeys.join(', ')}`);
  }
  const inner = params[key];
  if (inner === null) throw new RangeError(`Layer type "${key}" has no RoPE (its rope_parameters are null)`);
  if (!isObject(inner)) throw new TypeError(`Expected "${source}.${key}" to be an object, got ${typeName(inner)}`);
  return { params: { ...inner }, where: `${source}.${key}.`, nested: true };
}

/**
 * RoPE frequencies from a Hugging Face config.json object as it is (v5 rope_parameters or v4 rope_scaling +
 * rope_theta; head_dim or hidden_size / num_attention_heads; partial_rotary_factor; max_position_embeddings),
 * read as transformers 5.x reads it.
 */
export function ropeFromHfConfig(config: object, options?: HfRopeOptions): HfRope {
  if (!isObject(config)) throw new TypeError(`Expected "config" to be an object, got ${typeName(config)}`);
  if (options !== undefined && !isObject(options)) throw new TypeError(`Expected "options" to be an object, got ${typeName(options)}`);
  for (const key of Object.keys(options ?? {})) {
    if (key !== 'seqLen' && key !== 'layerType') {
      throw new TypeError(`Unknown option "${key}" in "options" (known options: seqLen, layerType)`);
    }
  }
  const o = (options ?? {}) as HfRopeOptions;
  if (o.layerType !== undefined && typeof o.layerType !== 'string') {
    throw new TypeError(`Expected "layerType" to be a string, got ${typeName(o.layerType)}`);
  }
  const { params, where, nested } = ropeParameters(config, o.layerType);
  const typeName_ = params.rope_type ?? params.type ?? 'default';
  if (typeof typeName_ !== 'string') throw new TypeError(`Expected "${where}rope_type" to be a string, got ${typeName(typeName_)}`);
  const type = HF_TYPES[typeName_];
  if (type === undefined) {
    throw new RangeError(`Unknown RoPE type "${typeName_}" in the config (known types: ${Object.keys(HF_TYPES).join(', ')})`);
  }
  const base = num(params, 'rope_theta', where) ?? num(config, 'rope_theta', '') ?? 10000;
  const partial = num(params, 'partial_rotary_factor', where) ?? num(config, 'partial_rotary_factor', '') ?? 1;
  const headDim = num(config, 'head_dim', '') ?? headDimFromHidden(config);
  const rotaryDim = Math.trunc(headDim * partial);  // Python's int()
  const maxPositions = num(config, 'max_position_embeddings', '');
  let original = num(params, 'original_max_position_embeddings', where);
  if (type === 'llama3' || type === 'yarn' || type === 'longrope') {
    // Phi-3 keeps the pre-training length at the top level, and transformers gives it priority (flat form only).
    const topLevel = nested ? undefined : num(config, 'original_max_position_embeddings', '');
    original = topLevel ?? original ?? maxPositions;
  }
  const rope: RopeConfig = { type, base, dim: rotaryDim };
  const set = <K extends keyof RopeConfig>(key: K, value: RopeConfig[K] | undefined) => {
    if (value !== undefined) rope[key] = value;
  };
  if (type !== 'default') set('factor', num(params, 'factor', where));
  set('maxPositions', maxPositions);
  if (type === 'yarn' || type === 'longrope' || type === 'llama3') set('originalMaxPositions', original);
  if (type === 'yarn' || type === 'longrope') set('attentionFactor', num(params, 'attention_factor', where));
  if (type === 'yarn') {
    set('betaFast', numOr(params, 'beta_fast', where));
    set('betaSlow', numOr(params, 'beta_slow', where));
    set('mscale', num(params, 'mscale', where));
    set('mscaleAllDim', num(params, 'mscale_all_dim', where));
    const truncate = params.truncate;
    if (truncate !== undefined && truncate !== null) {
      if (typeof truncate !== 'boolean') throw new TypeError(`Expected "${where}truncate" to be a boolean, got ${typeName(truncate)}`);
      rope.truncate = truncate;
    }
  }
  if (type === 'longrope') {
    set('shortFactor', list(params, 'short_factor', where));
    set('longFactor', list(params, 'long_factor', where));
  }
  if (type === 'llama3') {
    set('lowFreqFactor', num(params, 'low_freq_factor', where));
    set('highFreqFactor', num(params, 'high_freq_factor', where));
  }
  const frequencies = ropeFrequencies(rope, o.seqLen === undefined ? undefined : { seqLen: o.seqLen });
  return { ...frequencies, config: rope, headDim, rotaryDim };
}

function headDimFromHidden(config: Json): number {
  const hidden = num(config, 'hidden_size', ''), heads = num(config, 'num_attention_heads', '');
  if (hidden === undefined || heads === undefined) {
    throw new RangeError('The config needs "head_dim", or "hidden_size" and "num_attention_heads"');
  }
  if (!(heads > 0)) throw new RangeError(`"num_attention_heads" must be above 0, got ${heads}`);
  return Math.floor(hidden / heads);
}
