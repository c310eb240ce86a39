// The binary module: sign codes, Hamming top-k, residual codes with SDC/ADC, and the flat index.
export { packSigns, unpackSigns, hammingTopK, hammingTopKAsync, codeBytes } from './signs.js';
export type { BitOrder, PackSignsOptions, UnpackSignsOptions, HammingTopKOptions, HammingTopKResult } from './signs.js';
export { ResidualBinarizer, MAX_RESIDUAL_BITS } from './residual.js';
export type { ResidualBinarizerOptions, ResidualBinarizerJSON, ScoreTopKOptions, ScoreTopKResult } from './residual.js';
export { BinaryIndex } from './binary-index.js';
export type { BinaryIndexOptions, BinarySearchOptions, BinarySearchResult, BinaryMetric, VectorStore, Similarity } from './binary-index.js';
export { OnnxTransform } from './transform.js';
export type { OnnxTransformOptions } from './transform.js';
export { CudaBinaryIndex } from './cuda-binary-index.js';
export { CUDA_MAX_K } from '../core/cuda.js';
export type { CudaBinaryMetric, CudaBinarySearchOptions, CudaBinarySearchResult, CudaCodesOptions } from './cuda-binary-index.js';
