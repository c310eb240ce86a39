// MUVERA quality. Real ColBERTv2 embeddings (../shared/data/colbert-nanofiqa): per query, the recall of the exact
// Chamfer top-10 within the FDE top-N (N = 10, 15, 20), and nDCG@10 against the qrels for exact Chamfer, FDE alone
// and FDE + Chamfer rerank, averaged over 10 seeds, for four configurations. Seeded synthetic clustered data at
// scale (10k documents × 100 tokens × 128-d): the recall curve, and the correlation of FDE inner products with
// Chamfer scores.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { capabilities, chamferScores, FdeEncoder, l2Normalize, Rng } from '../dist/index.js';
import { machine } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.resolve(here, '..', '..', 'shared', 'data', 'colbert-nanofiqa');
const CONFIGS = [
  { repetitions: 20, simhashBits: 5, projection: 'countsketch', projectionDim: 16 },
  { repetitions: 20, simhashBits: 5, projection: 'dense', projectionDim: 16 },
  { repetitions: 20, simhashBits: 4, projection: 'dense', projectionDim: 8 },
  { repetitions: 10, simhashBits: 4, projection: 'identity' },
];
const label = (c) => `(${c.repetitions}, ${c.simhashBits}, ${c.projection}${c.projection === 'identity' ? '' : `, ${c.projectionDim}`})`;

function splitClouds(tokens, lengths, dim) {
  const out = [];
  let offset = 0;
  for (const n of lengths) {
    out.push(tokens.subarray(offset * dim, (offset + n) * dim));
    offset += n;
  }
  return out;
}

function fdeScores(fq, fdes, dim) {
  const n = fdes.length / dim;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let j = 0; j < dim; j++) v += fq[j] * fdes[i * dim + j];
    s[i] = v;
  }
  return s;
}

const ranking = (scores) => Array.from(scores, (s, i) => [s, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((x) => x[1]);

function ndcg10(ranked, relevant) {
  let dcg = 0;
  ranked.slice(0, 10).forEach((d, i) => { if (relevant.has(d)) dcg += 1 / Math.log2(i + 2); });
  let ideal = 0;
  for (let i = 0; i < Math.min(10, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal ? dcg / ideal : 0;
}

const mean = (xs) => xs.reduce((s, v) => s + v, 0) / xs.length;
const sd = (xs) => Math.sqrt(mean(xs.map((v) => (v - mean(xs)) ** 2)));

function colbert(quick) {
  if (!fs.existsSync(path.join(DATA, 'manifest.json'))) return undefined;
  const m = JSON.parse(fs.readFileSync(path.join(DATA, 'manifest.json'), 'utf8'));
  const read = (f) => { const b = fs.readFileSync(path.join(DATA, f)); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)); };
  const dim = m.dim;
  const docs = read(m.sets.documents.file), docLengths = Int32Array.from(m.sets.documents.token_counts);
  const queries = splitClouds(read(m.sets.queries.file), m.sets.queries.token_counts, dim);
  const docIds = m.sets.documents.ids;
  const relevant = m.sets.queries.ids.map((q) => new Set(Object.keys(m.qrels[q] ?? {}).map((d) => docIds.indexOf(d)).filter((i) => i >= 0)));
  const chamfer = queries.map((q) => chamferScores(q, docs, docLengths, dim));
  const exactTop = chamfer.map((s) => ranking(s).slice(0, 10));
  const seeds = quick ? [0, 1] : [...Array(10).keys()];
  const rows = [];
  for (const config of CONFIGS) {
    const recall = { 10: [], 15: [], 20: [] }, fdeNdcg = [], rerankNdcg = [];
    for (const seed of seeds) {
      const e = new FdeEncoder({ dim, ...config, seed });
      const fdes = e.encodeDocuments(docs, docLengths);
      queries.forEach((q, qi) => {
        const ranked = ranking(fdeScores(e.encodeQuery(q), fdes, e.outputDim));
        for (const n of [10, 15, 20]) { const top = new Set(ranked.slice(0, n)); recall[n].push(exactTop[qi].filter((d) => top.has(d)).length / 10); }
        fdeNdcg.push(ndcg10(ranked, relevant[qi]));
        const reranked = ranked.slice(0, 20).sort((a, b) => chamfer[qi][b] - chamfer[qi][a] || a - b);
        rerankNdcg.push(ndcg10(reranked, relevant[qi]));
      });
      e.dispose();
    }
    rows.push({
      config: label(config),
      outputDim: config.repetitions * 2 ** config.simhashBits * (config.projection === 'identity' ? dim : config.projectionDim),
      recallTop10In: Object.fromEntries(Object.entries(recall).map(([n, v]) => [n, { mean: mean(v), sd: sd(v) }])),
      ndcg10: { fde: mean(fdeNdcg), fdeRerank20: mean(rerankNdcg) },
    });
  }
  const chamferNdcg = mean(chamfer.map((s, qi) => ndcg10(ranking(s), relevant[qi])));
  return { dataset: 'ColBERTv2 NanoFiQA (35 documents, 4,430 tokens; 5 queries × 32 tokens)', seeds, chamferNdcg, rows };
}

/** Seeded clustered token clouds: each document draws its tokens around a few of its topic's centres. */
function synthetic(quick) {
  const dim = 128, ndocs = quick ? 1000 : 10_000, ntok = 100, topics = 200, nq = quick ? 10 : 40;
  const rng = new Rng(2026);
  const centres = l2Normalize(rng.normal(topics * 8 * dim), { dim });  // 8 sub-centres per topic
  const pick = (n) => Math.floor(rng.uniform(1)[0] * n);
  const cloud = (topic, tokens) => {
    const noise = rng.normal(tokens * dim);
    const out = new Float32Array(tokens * dim);
    for (let t = 0; t < tokens; t++) {
      const c = (topic * 8 + pick(8)) * dim;
      for (let i = 0; i < dim; i++) out[t * dim + i] = centres[c + i] + (0.5 / Math.sqrt(dim)) * noise[t * dim + i];  // noise of norm ~0.5
    }
    return l2Normalize(out, { dim });
  };
  const docs = new Float32Array(ndocs * ntok * dim);
  for (let d = 0; d < ndocs; d++) docs.set(cloud(pick(topics), ntok), d * ntok * dim);
  const lengths = new Int32Array(ndocs).fill(ntok);
  const queries = Array.from({ length: nq }, () => cloud(pick(topics), 32));
  const e = new FdeEncoder({ dim, ...CONFIGS[0], seed: 7 });
  const fdes = e.encodeDocuments(docs, lengths);
  const ns = [10, 20, 50, 100, 200];
  const recall = Object.fromEntries(ns.map((n) => [n, []]));
  const xs = [], ys = [];
  for (const q of queries) {
    const ch = chamferScores(q, docs, lengths, dim);
    const exact = ranking(ch).slice(0, 10);
    const f = fdeScores(e.encodeQuery(q), fdes, e.outputDim);
    const ranked = ranking(f);
    for (const n of ns) { const top = new Set(ranked.slice(0, n)); recall[n].push(exact.filter((d) => top.has(d)).length / 10); }
    for (let d = 0; d < ndocs; d += 10) { xs.push(f[d]); ys.push(ch[d]); }
  }
  e.dispose();
  const mx = mean(xs), my = mean(ys);
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < xs.length; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; syy += (ys[i] - my) ** 2; }
  return {
    dataset: `synthetic clustered (${ndocs} documents × ${ntok} tokens × ${dim}, ${topics} topics, ${nq} queries × 32 tokens; seed 2026)`,
    config: label(CONFIGS[0]),
    recallTop10In: Object.fromEntries(ns.map((n) => [n, mean(recall[n])])),
    pearsonFdeVsChamfer: sxy / Math.sqrt(sxx * syy),
  };
}

export async function report({ quick = false, outDir }) {
  const real = colbert(quick);
  const synth = synthetic(quick);
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  const lines = [];
  if (real) {
    lines.push(`**${real.dataset}**, seeds ${real.seeds[0]}–${real.seeds[real.seeds.length - 1]}; exact Chamfer nDCG@10 = ${real.chamferNdcg.toFixed(3)}:`, '');
    lines.push('| (R, k, projection, p) | FDE dims | Chamfer top-10 in FDE top-10 | top-15 | top-20 | nDCG@10 FDE | nDCG@10 FDE top-20 + rerank |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of real.rows) {
      const c = (n) => `${pct(r.recallTop10In[n].mean)} ± ${(100 * r.recallTop10In[n].sd).toFixed(1)}`;
      lines.push(`| ${r.config} | ${r.outputDim} | ${c(10)} | ${c(15)} | ${c(20)} | ${r.ndcg10.fde.toFixed(3)} | ${r.ndcg10.fdeRerank20.toFixed(3)} |`);
    }
    lines.push('');
  }
  lines.push(`**${synth.dataset}**, ${synth.config}: Chamfer top-10 within the FDE top-N: ${Object.entries(synth.recallTop10In).map(([n, v]) => `N=${n} ${pct(v)}`).join(', ')}; Pearson correlation of FDE inner products with Chamfer scores ${synth.pearsonFdeVsChamfer.toFixed(3)}.`);
  const markdown = lines.join('\n');
  console.log(markdown);
  const record = { suite: 'fde-quality', date: new Date().toISOString(), machine: machine({ simd: capabilities().simd }), colbert: real, synthetic: synth, markdown };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'fde-quality.json'), `${JSON.stringify(record, null, 2)}\n`);
}
