// The embedding runtime: Embedder (onnxruntime-node, a worker thread, Tessera's pooling and normalisation) and the
// default model's packaging.
export { Embedder } from './embedder.js';
export type { EmbedderOptions, Embeddings, TokenEmbeddings, BatchStats, Pooling } from './embedder.js';
export { cacheDir, ensureDefaultModel, DEFAULT_MODEL_PACKAGE } from './default-model.js';
export type { DefaultModelFiles } from './default-model.js';
export type { ModelInfo } from './protocol.js';
export { extendContext } from './context.js';
export type { ContextExtensionOptions } from './context.js';
