// Exact attention against onnxruntime-node's com.microsoft MultiHeadAttention (its CPU flash path when
// bidirectional; `unidirectional` for causal) and ONNX Attention (opset 23), on the same float32 tensors, with the
// machine's FMA peak timed beside them (all threads running independent fused multiply-adds of the same flops).
// FLOP counts are the useful ones: 4 · seqQ · (visible keys) · heads · headDim.
import * as ort from 'onnxruntime-node';

import { attention, attentionAsync, capabilities, KvCache, Rng } from '../dist/index.js';
import { binding } from '../dist/native/load.js';
import { copyBandwidth } from './harness.mjs';
import { groupQueryDecodeModel, multiHeadAttentionModel, onnxAttentionModel } from './onnx-model.mjs';

const sessions = [];

async function session(model) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: capabilities().threads });
  sessions.push(s);
  return s;
}

// Visible (query, key) pairs of a causal band: query i sees keys max(0, i - window + 1) .. i, plus global keys.
function visiblePairs(seq, { causal, window = 0, globalTokens = 0 }) {
  if (!causal && !window) return seq * seq;
  let pairs = 0;
  for (let i = 0; i < seq; i++) {
    const lo = window ? Math.max(0, i - window + 1) : 0;
    pairs += i - lo + 1 + Math.min(globalTokens, lo);
  }
  return pairs;
}

export async function cases({ quick = false } = {}) {
  const heads = 8, rng = new Rng(41);
  const out = [];
  const grid = quick
    ? [[256, 64, false], [256, 64, true]]
    : [64, 128].flatMap((dim) => [1024, 4096, 16384].flatMap((seq) => [[seq, dim, false], [seq, dim, true]]));
  for (const [seq, dim, causal] of grid) {
    const n = seq * heads * dim;
    const q = rng.normal(n), k = rng.normal(n), v = rng.normal(n);
    const dims = [1, seq, heads * dim];
    const options = { layout: 'bshd', headsQ: heads, seqQ: seq, seqK: seq, headDim: dim, causal, out: new Float32Array(n) };
    const flops = 4 * visiblePairs(seq, { causal }) * heads * dim;
    const contenders = {
      tessera: () => attention(q, k, v, options),
      'tessera-async': () => attentionAsync(q, k, v, options),
      'limit: FMA peak': { run: () => binding().fmaWork(flops), note: 'independent fused multiply-adds in registers, all threads, the same flops' },
    };
    const mha = await session(multiHeadAttentionModel({ batch: 1, seqQ: seq, seqK: seq, heads, dim, causal }));
    const mhaFeeds = { query: new ort.Tensor('float32', q, dims), key: new ort.Tensor('float32', k, dims), value: new ort.Tensor('float32', v, dims) };
    // ORT's causal paths build the whole score matrix: 8 GiB at 16k tokens; run them where that fits in reason.
    const dense = seq * seq * heads * 4;
    if (!causal || dense <= 2 ** 31) {
      contenders['ORT MultiHeadAttention'] = { run: () => mha.run(mhaFeeds), note: causal ? 'unidirectional (materialises the scores)' : 'CPU flash path' };
    }
    if (dense <= 2 ** 31) {
      const a23 = await session(onnxAttentionModel({ batch: 1, seqQ: seq, seqK: seq, heads, dim, causal }));
      contenders['ORT Attention-23'] = { run: () => a23.run({ Q: mhaFeeds.query, K: mhaFeeds.key, V: mhaFeeds.value }), note: 'materialises the scores' };
    }
    const big = seq >= 16384;
    out.push({
      name: `${causal ? 'causal' : 'bidirectional'} S=${seq} D=${dim} × ${heads} heads`,
      params: { seq, dim, heads, causal, threads: capabilities().threads },
      baseline: 'ORT MultiHeadAttention' in contenders ? 'ORT MultiHeadAttention' : 'tessera',
      rounds: quick ? 3 : big ? 3 : 5,
      minMs: quick ? 2 : 30,
      contenders,
      summarize: summarizer(flops),
    });
  }
  // Banded masks at long range: cost seq × window, not seq².
  const bands = quick ? [[1024, 128, 0]] : [[8192, 1024, 0], [32768, 4096, 0], [32768, 4096, 16]];
  for (const [seq, window, globalTokens] of bands) {
    const dim = 128, n = seq * heads * dim;
    const q = rng.normal(n), k = rng.normal(n), v = rng.normal(n);
    const options = { layout: 'bshd', headsQ: heads, seqQ: seq, seqK: seq, headDim: dim, causal: true, window, globalTokens, out: new Float32Array(n) };
    const flops = 4 * visiblePairs(seq, { causal: true, window, globalTokens }) * heads * dim;
    const contenders = {
      tessera: () => attention(q, k, v, options),
      'limit: FMA peak': { run: () => binding().fmaWork(flops), note: 'the same (banded) flops' },
    };
    if (seq * seq * 4 * (heads + 1) <= 2 ** 32) {  // ORT takes the band as a dense [seq, seq] mask
      const mask = new Float32Array(seq * seq).fill(-Infinity);
      for (let i = 0; i < seq; i++) {
        for (let j = Math.max(0, i - window + 1); j <= i; j++) mask[i * seq + j] = 0;
        for (let j = 0; j < Math.min(globalTokens, i + 1); j++) mask[i * seq + j] = 0;
      }
      const a23 = await session(onnxAttentionModel({ batch: 1, seqQ: seq, seqK: seq, heads, dim, causal: false, mask: true }));
      const dims = [1, seq, heads * dim];
      const feeds = { Q: new ort.Tensor('float32', q, dims), K: new ort.Tensor('float32', k, dims), V: new ort.Tensor('float32', v, dims), attn_mask: new ort.Tensor('float32', mask, [seq, seq]) };
      contenders['ORT Attention-23 (dense mask)'] = { run: () => a23.run(feeds), note: 'the band as a dense float mask' };
    }
    out.push({
      name: `${globalTokens ? 'Λ' : 'sliding'} S=${seq} window ${window}${globalTokens ? ` + ${globalTokens} global` : ''} D=${dim} × ${heads} heads`,
      params: { seq, dim, heads, window, globalTokens, threads: capabilities().threads },
      baseline: 'ORT Attention-23 (dense mask)' in contenders ? 'ORT Attention-23 (dense mask)' : 'tessera',
      rounds: quick ? 3 : 3,
      minMs: quick ? 2 : 30,
      contenders,
      summarize: summarizer(flops),
    });
  }
  out.push(...(await decodeCases({ quick, rng })));
  return out;
}

// One decode step of a grouped-query model (32 query heads, 8 key/value heads, D = 128) over a cache of `past`
// tokens: the new token's K/V appended, then its query attends. Memory-bound: the step reads the whole cache once.
async function decodeCases({ quick, rng }) {
  const heads = 32, kvHeads = 8, dim = 128, out = [];
  for (const past of quick ? [512] : [4096, 16384]) {
    const pastK = rng.normal(kvHeads * past * dim), pastV = rng.normal(kvHeads * past * dim);
    const q = rng.normal(heads * dim), k = rng.normal(kvHeads * dim), v = rng.normal(kvHeads * dim);
    // The caches hold the past in their own layout ([token, head, dim]); each step appends one token and attends.
    const tokenMajor = (x) => {
      const t = new Float32Array(x.length);
      for (let h = 0; h < kvHeads; h++) for (let s = 0; s < past; s++) t.set(x.subarray((h * past + s) * dim, (h * past + s + 1) * dim), (s * kvHeads + h) * dim);
      return t;
    };
    const caches = {};
    for (const dtype of ['float32', 'float16']) {
      const cache = new KvCache({ layers: 1, headsKV: kvHeads, headDim: dim, dtype, eviction: 'sliding', window: past + 1 });
      cache.append(0, tokenMajor(pastK), tokenMajor(pastV));
      caches[dtype] = cache;
    }
    const outBuffer = new Float32Array(heads * dim);
    const step = (cache) => () => {
      cache.append(0, k, v);  // the sliding window keeps the cache at past + 1 tokens
      cache.attend(0, q, { headsQ: heads, out: outBuffer });
    };
    const gqa = await session(groupQueryDecodeModel({ batch: 1, past, heads, kvHeads, dim }));
    const feeds = {
      query: new ort.Tensor('float32', q, [1, 1, heads * dim]),
      key: new ort.Tensor('float32', k, [1, 1, kvHeads * dim]),
      value: new ort.Tensor('float32', v, [1, 1, kvHeads * dim]),
      past_key: new ort.Tensor('float32', pastK, [1, kvHeads, past, dim]),
      past_value: new ort.Tensor('float32', pastV, [1, kvHeads, past, dim]),
      seqlens_k: new ort.Tensor('int32', Int32Array.of(past), [1]),
      total_sequence_length: new ort.Tensor('int32', Int32Array.of(past + 1), []),
    };
    const bytes = 2 * (past + 1) * kvHeads * dim * 4;  // float32 K and V read once
    out.push({
      name: `decode step, ${past} cached tokens, 32 query / 8 KV heads, D=128`,
      params: { past, heads, kvHeads, dim, threads: capabilities().threads },
      baseline: 'ORT GroupQueryAttention',
      bytes,
      rounds: quick ? 3 : 7,
      minMs: quick ? 2 : 30,
      contenders: {
        'tessera KvCache float32': step(caches.float32),
        'tessera KvCache float16': step(caches.float16),
        'ORT GroupQueryAttention': { run: () => gqa.run(feeds), note: 'past K/V fed and present K/V returned each step' },
      },
      summarize: (result) => {
        const copy = copyBandwidth(bytes);
        return Object.entries(result.medianMs).map(([name, ms]) => {
          const readBytes = name.endsWith('float16') ? bytes / 2 : bytes;
          return `${name}: ${(ms * 1e3).toFixed(0)} µs, ${(readBytes / (ms / 1e3) / 1e9).toFixed(1)} GB/s of cache read (threaded memcpy: ${(copy / 1e9).toFixed(1)} GB/s)`;
        });
      },
    });
  }
  return out;
}

function summarizer(flops) {
  return (result) => {
    const gflops = (name) => flops / (result.medianMs[name] / 1e3) / 1e9;
    const lines = Object.keys(result.medianMs).map((name) => `${name}: ${gflops(name).toFixed(1)} GFLOP/s`);
    const peak = gflops('limit: FMA peak');
    const parts = [`tessera ${(100 * gflops('tessera') / peak).toFixed(0)}% of the FMA peak`];
    for (const peer of ['ORT MultiHeadAttention', 'ORT Attention-23', 'ORT Attention-23 (dense mask)']) {
      if (result.medianMs[peer] !== undefined) parts.push(`${(result.medianMs[peer] / result.medianMs.tessera).toFixed(2)}× ${peer}`);
    }
    lines.push(parts.join(', '));
    return lines;
  };
}

export async function teardown() {
  await Promise.all(sessions.splice(0).map((s) => s.release()));
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
