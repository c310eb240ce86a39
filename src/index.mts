// The ESM entry re-exports the CommonJS entry, so both share one module instance (one addon, one thread pool, one
// registry). Node finds these names by reading TypeScript's CommonJS output; test/package.test.ts checks that every
// name of the CommonJS entry is listed here and arrives.
export {
  capabilities,
  setThreads,
  setSimd,
  Rng,
  RNG_ALGORITHM_VERSION,
  NativeResource,
  DisposedError,
  writeTesseraFile,
  writeTesseraFileAsync,
  readTesseraFile,
  readTesseraFileAsync,
  parseTesseraFile,
  TesseraFileError,
  CONTAINER_VERSION,
  AddonLoadError,
  matryoshka,
  matryoshkaAsync,
  l2Normalize,
  l2NormalizeAsync,
  packSigns,
  unpackSigns,
  hammingTopK,
  hammingTopKAsync,
  codeBytes,
  ResidualBinarizer,
  MAX_RESIDUAL_BITS,
  BinaryIndex,
  OnnxTransform,
} from './index.js';
export type * from './index.js';
