// tessera-native: the public API. Everything a user imports is re-exported here (and mirrored by index.mts for ESM).
export { capabilities, setThreads, setSimd } from './core/runtime.js';
export type { Capabilities, SimdLevel } from './core/runtime.js';
export { Rng, RNG_ALGORITHM_VERSION } from './core/rng.js';
export { NativeResource, DisposedError } from './core/resource.js';
export {
  writeTesseraFile,
  writeTesseraFileAsync,
  readTesseraFile,
  readTesseraFileAsync,
  parseTesseraFile,
  TesseraFileError,
  CONTAINER_VERSION,
} from './core/files.js';
export type { TesseraFileContents, ReadOptions } from './core/files.js';
export { AddonLoadError } from './native/load.js';
export { matryoshka, matryoshkaAsync, l2Normalize, l2NormalizeAsync } from './vectors.js';
export type { MatryoshkaOptions, L2NormalizeOptions } from './vectors.js';
export {
  packSigns,
  unpackSigns,
  hammingTopK,
  hammingTopKAsync,
  codeBytes,
  ResidualBinarizer,
  MAX_RESIDUAL_BITS,
  BinaryIndex,
  OnnxTransform,
  CudaBinaryIndex,
  CUDA_MAX_K,
} from './binary/index.js';
export type {
  BitOrder,
  PackSignsOptions,
  UnpackSignsOptions,
  HammingTopKOptions,
  HammingTopKResult,
  ResidualBinarizerOptions,
  ResidualBinarizerJSON,
  ScoreTopKOptions,
  ScoreTopKResult,
  BinaryIndexOptions,
  BinarySearchOptions,
  BinarySearchResult,
  BinaryMetric,
  VectorStore,
  Similarity,
  OnnxTransformOptions,
  CudaBinaryMetric,
  CudaBinarySearchOptions,
  CudaBinarySearchResult,
  CudaCodesOptions,
} from './binary/index.js';
export {
  FdeEncoder,
  FDE_ALGORITHM_VERSION,
  chamferScores,
  chamferScoresAsync,
  MultiVectorIndex,
  CudaFdeEncoder,
  CudaMultiVectorIndex,
} from './fde/index.js';
export type {
  FdeBatchOptions,
  FdeEncoderOptions,
  FdeEncoderJSON,
  FdeProjection,
  MultiVectorIndexOptions,
  MultiVectorSearchOptions,
  MultiVectorSearchResult,
  ChamferPrecision,
  CudaMultiVectorIndexOptions,
  CudaChamferSearchResult,
} from './fde/index.js';
export { cudaAvailable, cudaLastKernelMs, CudaUnavailableError } from './core/cuda.js';
export type { Device } from './core/cuda.js';
export type { FdeMatrices } from './native/binding.js';
export {
  ropeFrequencies,
  ROPE_TYPES,
  ropeFromHfConfig,
  applyRope,
  applyRopeAsync,
  ropeCosSin,
  selfExtendPositions,
  selfExtendRelativePositions,
  lmInfiniteMask,
  lmInfiniteDistances,
  packedDocuments,
  anchorMask,
  groupedPositions,
  recurrentPositions,
  interpolatePositionTable,
  alibiSlopes,
  t5RelativeBucket,
} from './rope/index.js';
export type {
  RopeConfig,
  RopeFrequencies,
  RopeFrequencyOptions,
  RopeType,
  HfRope,
  HfRopeOptions,
  ApplyRopeOptions,
  RopeDType,
  RopeLayout,
  RopePositions,
  RopeStyle,
  SelfExtendOptions,
  SelfExtendPositions,
  LmInfiniteOptions,
  PackedDocuments,
  PackedDocumentsOptions,
  LongEmbedPositionOptions,
  InterpolatePositionTableOptions,
  T5BucketOptions,
} from './rope/index.js';
export {
  attention,
  attentionAsync,
  mergeAttentionStates,
  KvCache,
  selfExtendAttention,
  selfExtendAttentionAsync,
  poolTokens,
  poolTokensAsync,
  latentAttentionPool,
  latentAttentionPoolAsync,
  attentiveStatsPool,
  attentiveStatsPoolAsync,
  targetAttention,
  targetAttentionAsync,
} from './attention/index.js';
export type {
  AttentionOptions,
  AttentionShapeOptions,
  AttentionResult,
  AttentionDType,
  MergeAttentionOptions,
  KvCacheOptions,
  KvAppendOptions,
  KvAttendOptions,
  KvAttendResult,
  KvEviction,
  SelfExtendAttentionOptions,
  TokenPoolingMode,
  PoolTokensOptions,
  LatentAttentionWeights,
  LatentAttentionPoolOptions,
  AttentiveStatsWeights,
  AttentiveStatsPoolOptions,
  TargetAttentionWeights,
  TargetAttentionOptions,
} from './attention/index.js';
export { Embedder, ensureDefaultModel, cacheDir, DEFAULT_MODEL_PACKAGE, extendContext } from './embed/index.js';
export type { EmbedderOptions, Embeddings, TokenEmbeddings, BatchStats, Pooling, DefaultModelFiles, ModelInfo, ContextExtensionOptions } from './embed/index.js';
export { SqueezedAttention, hyperAttention, hyperAttentionAsync } from './attention/index.js';
export type {
  SqueezedAttentionOptions,
  SqueezedAttendOptions,
  SqueezedAttendResult,
  SqueezedLayout,
  HyperAttentionOptions,
  HyperAttentionResult,
} from './attention/index.js';
export {
  relativeRepresentation,
  relativeRepresentationAsync,
  RelativeProjector,
  Whitening,
  projectOut,
  projectOutAsync,
} from './embed/index.js';
export type {
  RelativeRepresentationOptions,
  RelativeProjectorOptions,
  RelativeTransformOptions,
  WhiteningFitOptions,
  WhiteningTransformOptions,
  WhiteningJSON,
  ProjectOutOptions,
} from './embed/index.js';
