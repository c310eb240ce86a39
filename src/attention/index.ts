// The attention module: exact tiled attention with the masks long context needs, and the merge of attention states.
export { attention, attentionAsync, mergeAttentionStates } from './attention.js';
export type { AttentionOptions, AttentionResult, AttentionDType, MergeAttentionOptions } from './attention.js';
export { KvCache } from './kv-cache.js';
export type { KvCacheOptions, KvAppendOptions, KvAttendOptions, KvAttendResult, KvEviction } from './kv-cache.js';
export { selfExtendAttention, selfExtendAttentionAsync } from './self-extend.js';
export type { SelfExtendAttentionOptions } from './self-extend.js';
