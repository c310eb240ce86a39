// Embedding throughput on a BERT-shaped ONNX model (../shared/data/bert-dummy: 2 layers, real bert-base-uncased
// tokenizer) over real text of mixed lengths (CACM abstracts): the Embedder with length-bucketed batches, the same
// without bucketing (batches padded to their longest text), and a naive onnxruntime-node loop on the main thread
// (tokenize, pad to the longest text of each batch in input order, run, mean-pool in JS). All use the same threads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';

import { capabilities, Embedder } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = path.resolve(here, '..', '..', 'shared', 'data');
const MODEL = path.join(SHARED, 'bert-dummy', 'dummy_transformer_mlm.onnx');
const TOKENIZER = path.join(SHARED, 'bert-dummy', 'real_tokenizer.json');
const embedders = [];

function texts(count) {
  const lines = fs.readFileSync(path.join(SHARED, 'cacm', 'cacm.json'), 'utf8').trim().split('\n');
  return lines.slice(0, count).map((l) => JSON.parse(l).contents.replace(/\s+/g, ' ').trim());
}

async function naiveLoop(batchTexts, batchSize, maxLength) {
  const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(TOKENIZER, 'utf8')), {});
  const session = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: capabilities().threads });
  return async () => {
    const out = [];
    for (let start = 0; start < batchTexts.length; start += batchSize) {
      const ids = batchTexts.slice(start, start + batchSize).map((t) => tokenizer.encode(t).ids.slice(0, maxLength));
      const seq = Math.max(...ids.map((x) => x.length));
      const inputIds = new BigInt64Array(ids.length * seq), mask = new BigInt64Array(ids.length * seq);
      ids.forEach((row, r) => row.forEach((id, c) => { inputIds[r * seq + c] = BigInt(id); mask[r * seq + c] = 1n; }));
      const dims = [ids.length, seq];
      const o = await session.run({ input_ids: new ort.Tensor('int64', inputIds, dims), attention_mask: new ort.Tensor('int64', mask, dims), token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length * seq), dims) });
      const logits = o.logits.data, dim = o.logits.dims[2];
      ids.forEach((row, r) => {
        const v = new Float32Array(dim);
        for (let c = 0; c < row.length; c++) for (let d = 0; d < dim; d++) v[d] += logits[(r * seq + c) * dim + d] / row.length;
        out.push(v);
      });
    }
    return out;
  };
}

export async function cases({ quick = false } = {}) {
  if (!fs.existsSync(MODEL) || !fs.existsSync(path.join(SHARED, 'cacm'))) return [];
  const batch = texts(quick ? 16 : 128);
  const batchSize = 16, maxLength = 256;
  const load = async (bucketing) => {
    const e = await Embedder.load({ model: MODEL, tokenizer: TOKENIZER, batchSize, maxLength, bucketing });
    embedders.push(e);
    return e;
  };
  const bucketed = await load(true), padded = await load(false);
  await bucketed.embed(batch);
  await padded.embed(batch);
  const padding = (e) => e.lastBatchStats.paddedTokens / e.lastBatchStats.realTokens;
  return [{
    name: `${batch.length} CACM abstracts, BERT-shaped 2-layer model, batches of ${batchSize}, ≤ ${maxLength} tokens`,
    params: { texts: batch.length, batchSize, maxLength, threads: capabilities().threads },
    baseline: 'naive onnxruntime-node loop',
    rounds: quick ? 3 : 5,
    minMs: quick ? 2 : 30,
    contenders: {
      'tessera Embedder (length buckets)': () => bucketed.embed(batch),
      'tessera Embedder (input order)': () => padded.embed(batch),
      'naive onnxruntime-node loop': { run: await naiveLoop(batch, batchSize, maxLength), note: 'main thread, input-order batches, JS mean pooling' },
    },
    summarize: (result) => [
      ...Object.entries(result.medianMs).map(([n, ms]) => `${n}: ${(batch.length / (ms / 1e3)).toFixed(0)} texts/s`),
      `token slots run per real token: ${padding(bucketed).toFixed(2)} with length buckets, ${padding(padded).toFixed(2)} in input order`,
    ],
  }];
}

export async function teardown() {
  await Promise.all(embedders.splice(0).map((e) => e.dispose()));
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
