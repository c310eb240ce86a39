// The embedding runtime: Embedder (onnxruntime-node, a worker thread, Tessera's pooling and normalisation), the
// default model's packaging, context extension by graph rewrites, and post-processing of sentence embeddings
// (relative representations, whitening, removal of directions).
export { Embedder } from './embedder.js';
export type { EmbedderOptions, Embeddings, TokenEmbeddings, BatchStats, Pooling } from './embedder.js';
export { cacheDir, ensureDefaultModel, DEFAULT_MODEL_PACKAGE } from './default-model.js';
export type { DefaultModelFiles } from './default-model.js';
export type { ModelInfo } from './protocol.js';
export { extendContext } from './context.js';
export type { ContextExtensionOptions } from './context.js';
export {
  relativeRepresentation,
  relativeRepresentationAsync,
  RelativeProjector,
  Whitening,
  projectOut,
  projectOutAsync,
} from './postprocess.js';
export type {
  RelativeRepresentationOptions,
  RelativeProjectorOptions,
  RelativeTransformOptions,
  WhiteningFitOptions,
  WhiteningTransformOptions,
  WhiteningJSON,
  ProjectOutOptions,
} from './postprocess.js';
