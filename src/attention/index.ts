// The attention module: exact tiled attention with the masks long context needs, and the merge of attention states.
export { attention, attentionAsync, mergeAttentionStates } from './attention.js';
export type { AttentionOptions, AttentionResult, AttentionDType, MergeAttentionOptions } from './attention.js';
