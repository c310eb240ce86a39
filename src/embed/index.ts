// The embed module: post-processing of sentence embeddings (relative representations, whitening, removal of
// directions). The onnxruntime-node Embedder will live here too.
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
