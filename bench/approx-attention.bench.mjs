// Approximate attention: how far Squeezed Attention and HyperAttention land from Tessera's exact attention, and how
// much faster they are, on the same float32 tensors in one process.
//
// Error: relative Frobenius ‖approx − exact‖ / ‖exact‖ and the largest absolute difference, over the whole output.
// Speed: exact attention's time / the approximation's time (median of a few calls each; Squeezed's offline k-means
// is reported separately as its build time). Data:
//   (a) real: ColBERTv2 token embeddings of NanoFiQA2018 (../shared/data/colbert-nanofiqa, read in place): the 4,430
//       document tokens (128-d, L2-normalised) as the fixed context's keys, the 160 query tokens as queries; values the
//       keys themselves or seeded Gaussians. For HyperAttention, self-attention over the document tokens.
//       Unit vectors give nearly flat softmaxes at scale 1/√128, so a sharper scale (16) is reported too.
//   (b) synthetic, seeded (Tessera's Rng): 64 cluster centres per head of norm 4, keys = centre + 0.1·N(0, I); queries
//       = 3 × a random centre + 0.1·N(0, I) ("clustered"), or for self-attention 3 × the centre of the same token's key
//       ("clustered, matched"), also with 0.02·N(0, I) noise ("tight"), where the LSH buckets follow the clusters;
//       and plain N(0, I) queries and keys ("gaussian"), where attention is nearly uniform and both approximations are
//       weak.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { attention, capabilities, hyperAttention, Rng, SqueezedAttention } from '../dist/index.js';
import { machine, median } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.resolve(here, '..', '..', 'shared', 'data', 'colbert-nanofiqa');
const now = () => Number(process.hrtime.bigint()) / 1e6;

function errors(approx, exact) {
  let num = 0, den = 0, maxAbs = 0;
  for (let i = 0; i < exact.length; i++) {
    const d = approx[i] - exact[i];
    num += d * d;
    den += exact[i] * exact[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { relFrobenius: Math.sqrt(num / den), maxAbs };
}

/** Median milliseconds of `reps` calls (after the call that produced the result, which warms up). */
function time(fn, reps) {
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    fn();
    ts.push(now() - t0);
  }
  return median(ts);
}

function colbert() {
  const manifest = JSON.parse(fs.readFileSync(path.join(DATA, 'manifest.json'), 'utf8'));
  const read = (set) => {
    const buf = fs.readFileSync(path.join(DATA, manifest.sets[set].file));
    return { data: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), count: manifest.sets[set].total_tokens };
  };
  return { dim: manifest.dim, docs: read('documents'), queries: read('queries') };
}

/**
 * Keys around `clusters` centres per head, [seq, heads, dim]; queries near centres, [seqQ, heads, dim]. `matched`:
 * query j lies in key j's cluster (self-attention, where token j's query and key come from one hidden state);
 * otherwise each query picks its own random cluster.
 */
function clustered(rng, seq, seqQ, heads, dim, { clusters = 64, matched = false, spread = 0.1 } = {}) {
  const centres = rng.normal(heads * clusters * dim);
  for (let c = 0; c < heads * clusters; c++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += centres[c * dim + d] ** 2;
    for (let d = 0; d < dim; d++) centres[c * dim + d] *= 4 / Math.sqrt(s);
  }
  const keys = rng.normal(seq * heads * dim);
  const q = rng.normal(seqQ * heads * dim);
  const pick = rng.uniform((seq + seqQ) * heads);
  const cluster = (t, h) => Math.floor(pick[t * heads + h] * clusters);
  for (let j = 0; j < seq; j++)
    for (let h = 0; h < heads; h++) {
      const c = cluster(j, h);
      for (let d = 0; d < dim; d++) keys[(j * heads + h) * dim + d] = centres[(h * clusters + c) * dim + d] + spread * keys[(j * heads + h) * dim + d];
    }
  for (let i = 0; i < seqQ; i++)
    for (let h = 0; h < heads; h++) {
      const c = cluster(matched ? i : seq + i, h);
      for (let d = 0; d < dim; d++) q[(i * heads + h) * dim + d] = 3 * centres[(h * clusters + c) * dim + d] + spread * q[(i * heads + h) * dim + d];
    }
  return { keys, q };
}

function squeezedRows({ data, keys, values, q, heads, seqK, seqQ, dim, scale, iterations = 25, settings, decode = true }) {
  const t0 = now();
  const sq = SqueezedAttention.build(keys, values, { headsKV: heads, seqK, headDim: dim, iterations });
  const buildMs = now() - t0;
  const rows = [];
  // A chunk of prompt queries, and one decoding query (where exact attention must read every key for one row).
  for (const nq of decode ? [seqQ, 1] : [seqQ]) {
    const qq = q.subarray(0, nq * heads * dim);
    const shape = { layout: 'bshd', headsQ: heads, headsKV: heads, seqQ: nq, seqK, headDim: dim, scale };
    const exactOut = attention(qq, keys, values, shape).out;
    const exactMs = time(() => attention(qq, keys, values, shape), nq === 1 ? 9 : 3);
    for (const setting of settings) {
      const opts = { headsQ: heads, seqQ: nq, scale, ...setting };
      const r = sq.attend(qq, opts);
      const ms = time(() => sq.attend(qq, opts), nq === 1 ? 9 : 3);
      rows.push({
        method: 'squeezed', data, shape: `S=${seqK} queries=${nq} D=${dim} × ${heads} heads`, setting: JSON.stringify(setting), scale: +scale.toFixed(4),
        clusters: sq.clusters, iterations, ...errors(r.out, exactOut), keptFraction: r.keptFraction, exactMs, ms, speedup: exactMs / ms, buildMs,
      });
    }
  }
  sq.dispose();
  return rows;
}

function hyperRows({ data, q, keys, values, heads, seq, dim, scale, causal = false, settings = [{}, { sampleSize: 0 }] }) {
  const shape = { layout: 'bshd', headsQ: heads, headsKV: heads, seqQ: seq, seqK: seq, headDim: dim, scale, causal };
  let exactOut;
  const exactMs = time(() => (exactOut = attention(q, keys, values, shape).out), seq >= 16384 ? 1 : 2);
  return settings.map((setting) => {
    const opts = { ...shape, ...setting };
    const r = hyperAttention(q, keys, values, opts);
    const ms = time(() => hyperAttention(q, keys, values, opts), 3);
    return {
      method: causal ? 'hyper (causal)' : 'hyper', data, shape: `S=${seq} D=${dim} × ${heads} heads`, setting: JSON.stringify({ blockSize: 256, sampleSize: 256, ...setting }),
      scale: +scale.toFixed(4), ...errors(r.out, exactOut), exactMs, ms, speedup: exactMs / ms,
    };
  });
}

export async function report({ quick = false, outDir }) {
  const rows = [];
  const log = (r) => {
    rows.push(r);
    console.log(`${r.method.padEnd(15)} ${r.data.padEnd(22)} ${r.shape.padEnd(34)} ${r.setting.padEnd(40)} rel ${r.relFrobenius.toFixed(4)} maxAbs ${r.maxAbs.toFixed(4)}` +
      `${r.keptFraction === undefined ? '' : ` kept ${r.keptFraction.toFixed(3)}`} ${r.speedup.toFixed(2)}× (${r.ms.toFixed(1)} vs ${r.exactMs.toFixed(1)} ms)${r.buildMs ? ` build ${r.buildMs.toFixed(0)} ms` : ''}`);
  };
  const squeezedSettings = [{ keepFraction: 0.1 }, { keepFraction: 0.25 }, { threshold: 1e-4 }];
  // (a) ColBERTv2 token embeddings.
  if (fs.existsSync(path.join(DATA, 'manifest.json'))) {
    const { dim, docs, queries } = colbert();
    const random = new Rng(7).normal(docs.count * dim);
    for (const [label, values] of [['values=keys', docs.data], ['values=gaussian', random]])
      for (const scale of [1 / Math.sqrt(dim), 16]) {
        for (const r of squeezedRows({ data: `colbert ${label}`, keys: docs.data, values, q: queries.data, heads: 1, seqK: docs.count, seqQ: queries.count, dim, scale, settings: squeezedSettings, decode: false })) log(r);
        for (const r of hyperRows({ data: `colbert ${label}`, q: docs.data, keys: docs.data, values, heads: 1, seq: docs.count, dim, scale })) log(r);
      }
  } else {
    console.log(`(${DATA} not found: the real-data rows are skipped)`);
  }
  // (b) Synthetic, 8 heads.
  const heads = 8;
  const grid = quick ? [[4096, 64]] : [[4096, 64], [4096, 128], [16384, 64], [16384, 128]];
  for (const [seq, dim] of grid) {
    const rng = new Rng(seq + dim);
    const scale = 1 / Math.sqrt(dim);
    const values = rng.normal(seq * heads * dim);
    const c = clustered(rng, seq, 256, heads, dim);
    const iterations = seq >= 16384 ? 10 : 25;
    for (const r of squeezedRows({ data: 'synthetic clustered', keys: c.keys, values, q: c.q, heads, seqK: seq, seqQ: 256, dim, scale, iterations, settings: squeezedSettings })) log(r);
    const gk = rng.normal(seq * heads * dim), gq = rng.normal(256 * heads * dim);
    for (const r of squeezedRows({ data: 'synthetic gaussian', keys: gk, values, q: gq, heads, seqK: seq, seqQ: 256, dim, scale, iterations, settings: [{ keepFraction: 0.25 }], decode: false })) log(r);
    // HyperAttention: self-attention over S tokens drawn the same ways.
    const self = clustered(rng, seq, seq, heads, dim, { matched: true });
    for (const r of hyperRows({ data: 'synthetic clustered, matched', q: self.q, keys: self.keys, values, heads, seq, dim, scale })) log(r);
    const tight = clustered(rng, seq, seq, heads, dim, { matched: true, spread: 0.02 });
    for (const r of hyperRows({ data: 'synthetic tight (0.02), matched', q: tight.q, keys: tight.keys, values, heads, seq, dim, scale })) log(r);
    const gs = rng.normal(seq * heads * dim);
    for (const r of hyperRows({ data: 'synthetic gaussian', q: gs, keys: gk, values, heads, seq, dim, scale })) log(r);
    if (seq >= 16384 && dim === 128) {
      for (const r of hyperRows({ data: 'synthetic clustered, matched', q: self.q, keys: self.keys, values, heads, seq, dim, scale, causal: true, settings: [{}] })) log(r);
    }
  }
  const f = (x, d = 3) => (x >= 100 ? x.toFixed(0) : x.toFixed(d));
  const markdown = [
    '| method | data | shape | setting | scale | rel. Frobenius error | max abs error | kept fraction | speed-up vs exact |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.method} | ${r.data} | ${r.shape} | ${r.setting} | ${r.scale} | ${f(r.relFrobenius)} | ${f(r.maxAbs)} | ${r.keptFraction === undefined ? '-' : f(r.keptFraction)} | ${f(r.speedup, 2)}× |`),
  ].join('\n');
  const record = { suite: 'approx-attention', date: new Date().toISOString(), machine: machine({ simd: capabilities().simd, threads: capabilities().threads }), rows, markdown };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'approx-attention.json'), `${JSON.stringify(record, null, 2)}\n`);
  console.log(markdown);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await report({ quick: process.argv.includes('--quick'), outDir: path.join(here, 'results') });
}
