// Retrieval quality of binary search on real vectors: recall@10 against exact float search, for sign codes
// (Hamming) and 2-bit residual codes (SDC), with and without rescoring from stored float32 vectors at oversampling
// 1, 2, 4 and 8; and 2-bit SDC against 1-bit Hamming at equal bytes. Data: ../shared/data (skipped when absent).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BinaryIndex, capabilities } from '../dist/index.js';
import { machine } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.resolve(here, '..', '..', 'shared', 'data');
const K = 10;

function loadAda2() {
  const file = path.join(DATA, 'ada2-sample100', 'sample100.json');
  if (!fs.existsSync(file)) return undefined;
  const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).vector);
  return { name: 'ada-002 (100 MS MARCO passages, 1536-d)', dim: rows[0].length, docs: Float32Array.from(rows.flat()), similarity: 'dot' };
}

function loadSift() {
  const file = path.join(DATA, 'sift5k', 'sift-dataset-5k.tsv');
  if (!fs.existsSync(file)) return undefined;
  const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t').slice(0, 128).map(Number));
  return { name: 'SIFT (5,000 descriptors, 128-d)', dim: 128, docs: Float32Array.from(rows.flat()), similarity: 'l2' };
}

/** Exact top-k by the data's own similarity, leaving the query's own row out. */
function exactTopK(set, q) {
  const { dim, docs } = set;
  const n = docs.length / dim;
  const scored = [];
  for (let j = 0; j < n; j++) {
    if (j === q) continue;
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const a = docs[q * dim + i], b = docs[j * dim + i];
      s += set.similarity === 'dot' ? a * b : -((a - b) * (a - b));
    }
    scored.push([s, j]);
  }
  scored.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  return scored.slice(0, K).map((e) => e[1]);
}

/** Mean recall@10 of an index configuration, each query a row of the data searched against all the others. */
function recall(set, queries, truth, { bits, dims, metric, oversample, center }) {
  const { dim, docs } = set;
  const n = docs.length / dim;
  const sub = dims ?? dim;  // equal-bytes runs keep the leading dims (a Matryoshka-style prefix)
  const take = (src, rows) => {
    const out = new Float32Array(rows.length * sub);
    rows.forEach((r, i) => out.set(src.subarray(r * dim, r * dim + sub), i * sub));
    return out;
  };
  const all = Array.from({ length: n }, (_, i) => i);
  const vectors = take(docs, all);
  const index = new BinaryIndex({ dim: sub, bits, store: oversample ? 'float32' : 'none', similarity: set.similarity });
  if (center) index.binarizer.fit(vectors);
  index.add(Int32Array.from(all), vectors);
  let hits = 0;
  const qv = take(docs, queries);
  const result = index.search(qv, K + 1, { metric, ...(oversample ? { rescore: { oversample } } : {}) });
  queries.forEach((q, i) => {
    const got = Array.from(result.ids.subarray(i * result.k, (i + 1) * result.k)).filter((id) => id !== q).slice(0, K);
    const want = new Set(truth[i]);
    hits += got.filter((id) => want.has(id)).length;
  });
  index.dispose();
  return hits / (queries.length * K);
}

export async function report({ quick = false, outDir }) {
  const sets = [loadAda2(), loadSift()].filter(Boolean);
  if (!sets.length) {
    console.log('binary-quality: ../shared/data not found; skipped');
    return;
  }
  const results = [];
  for (const set of sets) {
    const n = set.docs.length / set.dim;
    const queries = Array.from({ length: Math.min(n, quick ? 20 : 200) }, (_, i) => Math.floor((i * n) / Math.min(n, quick ? 20 : 200)));
    const truth = queries.map((q) => exactTopK(set, q));
    const centre = set.similarity === 'l2';  // SIFT values are all non-negative: signs need a centre
    const rows = [];
    for (const [label, config] of [
      ['1-bit Hamming', { bits: 1, metric: 'hamming' }],
      ['2-bit SDC', { bits: 2, metric: 'sdc' }],
      ['2-bit ADC', { bits: 2, metric: 'adc' }],
    ]) {
      const row = { config: label };
      for (const oversample of [0, 1, 2, 4, 8]) row[oversample ? `rescore ×${oversample}` : 'no rescore'] = recall(set, queries, truth, { ...config, oversample, center: centre });
      rows.push(row);
    }
    // Equal bytes: 1 bit over every dim, against 2 bits over the first half of the dims.
    const half = Math.floor(set.dim / 2);
    const equal = [
      { config: `1-bit Hamming, ${set.dim} dims (${set.dim / 8} B)`, recall: recall(set, queries, truth, { bits: 1, metric: 'hamming', center: centre }) },
      { config: `2-bit SDC, first ${half} dims (${half / 4} B)`, recall: recall(set, queries, truth, { bits: 2, dims: half, metric: 'sdc', center: centre }) },
      { config: `2-bit SDC, ${set.dim} dims (${set.dim / 4} B)`, recall: recall(set, queries, truth, { bits: 2, metric: 'sdc', center: centre }) },
    ];
    results.push({ dataset: set.name, queries: queries.length, centred: centre, recallAt10: rows, equalBytes: equal });
  }
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  const lines = [];
  for (const r of results) {
    lines.push(`**${r.dataset}**, recall@10 against exact float search, ${r.queries} leave-one-out queries${r.centred ? ', codes centred (fit)' : ''}:`, '');
    const cols = Object.keys(r.recallAt10[0]).filter((c) => c !== 'config');
    lines.push(`| codes | ${cols.join(' | ')} |`, `| --- | ${cols.map(() => '---').join(' | ')} |`);
    for (const row of r.recallAt10) lines.push(`| ${row.config} | ${cols.map((c) => pct(row[c])).join(' | ')} |`);
    lines.push('', `Equal bytes, no rescoring: ${r.equalBytes.map((e) => `${e.config}: ${pct(e.recall)}`).join('; ')}.`, '');
  }
  const markdown = lines.join('\n');
  console.log(markdown);
  const record = { suite: 'binary-quality', date: new Date().toISOString(), machine: machine({ simd: capabilities().simd }), results, markdown };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'binary-quality.json'), `${JSON.stringify(record, null, 2)}\n`);
}
