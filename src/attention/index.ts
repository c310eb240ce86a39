// The attention module: exact tiled attention with the masks long context needs, the merge of attention states, and
// the pooling heads of embedding models, approximate long-context attention (Squeezed Attention, HyperAttention).
export { attention, attentionAsync, mergeAttentionStates } from './attention.js';
export type { AttentionOptions, AttentionShapeOptions, AttentionResult, AttentionDType, MergeAttentionOptions } from './attention.js';
export { KvCache } from './kv-cache.js';
export type { KvCacheOptions, KvAppendOptions, KvAttendOptions, KvAttendResult, KvEviction } from './kv-cache.js';
export { selfExtendAttention, selfExtendAttentionAsync } from './self-extend.js';
export type { SelfExtendAttentionOptions } from './self-extend.js';
export {
  poolTokens,
  poolTokensAsync,
  latentAttentionPool,
  latentAttentionPoolAsync,
  attentiveStatsPool,
  attentiveStatsPoolAsync,
  targetAttention,
  targetAttentionAsync,
} from './pooling.js';
export type {
  TokenPoolingMode,
  PoolTokensOptions,
  LatentAttentionWeights,
  LatentAttentionPoolOptions,
  AttentiveStatsWeights,
  AttentiveStatsPoolOptions,
  TargetAttentionWeights,
  TargetAttentionOptions,
} from './pooling.js';
export { SqueezedAttention, hyperAttention, hyperAttentionAsync } from './approx.js';
export type {
  SqueezedAttentionOptions,
  SqueezedAttendOptions,
  SqueezedAttendResult,
  SqueezedLayout,
  HyperAttentionOptions,
  HyperAttentionResult,
} from './approx.js';
