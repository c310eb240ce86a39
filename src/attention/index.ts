// The attention module: exact tiled attention with the masks long context needs, the merge of attention states, and
// approximate long-context attention (Squeezed Attention, HyperAttention).
export { attention, attentionAsync, mergeAttentionStates } from './attention.js';
export type { AttentionOptions, AttentionResult, AttentionDType, MergeAttentionOptions } from './attention.js';
export { SqueezedAttention, hyperAttention, hyperAttentionAsync } from './approx.js';
export type {
  SqueezedAttentionOptions,
  SqueezedAttendOptions,
  SqueezedAttendResult,
  SqueezedLayout,
  HyperAttentionOptions,
  HyperAttentionResult,
} from './approx.js';
