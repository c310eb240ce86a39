// The multi-vector module: MUVERA FDEs, exact Chamfer, and the multi-vector index.
export { FdeEncoder, FDE_ALGORITHM_VERSION } from './encoder.js';
export type { FdeBatchOptions, FdeEncoderOptions, FdeEncoderJSON, FdeProjection } from './encoder.js';
export { chamferScores, chamferScoresAsync } from './chamfer.js';
export { MultiVectorIndex } from './multivector-index.js';
export type { MultiVectorIndexOptions, MultiVectorSearchOptions, MultiVectorSearchResult } from './multivector-index.js';
export { CudaFdeEncoder } from './cuda-encoder.js';
export { CudaMultiVectorIndex } from './cuda-multivector-index.js';
export type { ChamferPrecision, CudaMultiVectorIndexOptions, CudaChamferSearchResult } from './cuda-multivector-index.js';
