// The positions module: RoPE frequencies for every scaling method, RoPE applied in place, position remapping,
// absolute-position table interpolation, and ALiBi / T5 biases.
export { ropeFrequencies, ROPE_TYPES } from './frequencies.js';
export type { RopeConfig, RopeFrequencies, RopeFrequencyOptions, RopeType } from './frequencies.js';
export { ropeFromHfConfig } from './hf-config.js';
export type { HfRope, HfRopeOptions } from './hf-config.js';
export { applyRope, applyRopeAsync, ropeCosSin } from './apply.js';
export type { ApplyRopeOptions, RopeDType, RopeLayout, RopePositions, RopeStyle } from './apply.js';
export {
  selfExtendPositions,
  selfExtendRelativePositions,
  lmInfiniteMask,
  lmInfiniteDistances,
  packedDocuments,
  anchorMask,
  groupedPositions,
  recurrentPositions,
} from './remap.js';
export type {
  SelfExtendOptions,
  SelfExtendPositions,
  LmInfiniteOptions,
  PackedDocuments,
  PackedDocumentsOptions,
  LongEmbedPositionOptions,
} from './remap.js';
export { interpolatePositionTable } from './tables.js';
export type { InterpolatePositionTableOptions } from './tables.js';
export { alibiSlopes, t5RelativeBucket } from './biases.js';
export type { T5BucketOptions } from './biases.js';
