// Hamming top-k over packed codes against its peers: a plain-JS SWAR scan, the simsimd npm package's pairwise
// `hamming` in a loop, FAISS IndexBinaryFlat (Debian's python3-faiss, in a child process that times itself), and
// what usearch can and cannot do with packed codes. Also the machine's limits: popcount throughput (a native
// microbenchmark) and memory read bandwidth (a threaded read of the same codes), timed in the same rounds.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { capabilities, hammingTopK, hammingTopKAsync, Rng } from '../dist/index.js';
import { binding } from '../dist/native/load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PYTHON = '/usr/bin/python3';  // Debian's, where python3-faiss installs
let faiss;  // the child process, when FAISS is available
let tmpDir;

/** The plain-JS peer: 32-bit SWAR popcount over Uint32 words, a sorted top-k kept by insertion. */
export function hammingTopKPlainJs(queries, codes, bytes, k, nq = queries.length / bytes) {
  const w = bytes / 4, q32 = new Uint32Array(queries.buffer, queries.byteOffset, queries.length / 4);
  const c32 = new Uint32Array(codes.buffer, codes.byteOffset, codes.length / 4), n = codes.length / bytes;
  const out = new Int32Array(nq * k);
  const pop = (x) => {
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  };
  const dist = new Int32Array(k), idx = new Int32Array(k);
  for (let q = 0; q < nq; q++) {
    let size = 0;
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let j = 0; j < w; j++) d += pop(c32[i * w + j] ^ q32[q * w + j]);
      if (size === k && d >= dist[k - 1]) continue;
      let p = size < k ? size++ : k - 1;
      while (p > 0 && dist[p - 1] > d) { dist[p] = dist[p - 1]; idx[p] = idx[p - 1]; p--; }
      dist[p] = d; idx[p] = i;
    }
    out.set(idx.subarray(0, size), q * k);
  }
  return out;
}

/** The simsimd peer: its pairwise hamming over every (query, code) pair, with the same top-k insertion. */
function simsimdLoop(simsimd, queryViews, codeViews, k) {
  const dist = new Float64Array(k);
  for (const q of queryViews) {
    let size = 0;
    for (let i = 0; i < codeViews.length; i++) {
      const d = simsimd.hamming(q, codeViews[i]);
      if (size === k && d >= dist[k - 1]) continue;
      let p = size < k ? size++ : k - 1;
      while (p > 0 && dist[p - 1] > d) { dist[p] = dist[p - 1]; p--; }
      dist[p] = d;
    }
  }
}

function views(bytes, per, count) {
  return Array.from({ length: count }, (_, i) => bytes.subarray(i * per, (i + 1) * per));
}

/** What usearch (npm) does with packed binary codes; measured, not assumed. */
function probeUsearch(codes, queries, bytes) {
  let usearch;
  try {
    usearch = require('usearch');
  } catch (e) {
    return `not installed: ${e.message.split('\n')[0]}`;
  }
  const found = [];
  try {
    const index = new usearch.Index({ dimensions: bytes * 8, metric: 'hamming', quantization: 'b1' });
    index.add(0n, codes.subarray(0, bytes));
    found.push('b1 index accepted a packed code');
  } catch (e) {
    found.push(`a b1 Index rejects packed codes ("${e.message.split('\n')[0]}"): it takes one byte per bit`);
  }
  try {
    const unpacked = new Int8Array(4 * bytes * 8);
    for (let i = 0; i < unpacked.length; i++) unpacked[i] = (codes[i >> 3] >> (7 - (i & 7))) & 1;
    const m = usearch.exactSearch(unpacked, unpacked.subarray(0, bytes * 8), bytes * 8, 2, 'hamming');
    const d = Array.from(m.distances ?? []);
    found.push(`exactSearch on unpacked Int8 bits returns distances ${JSON.stringify(d)}${d.some(Number.isNaN) ? ' (NaN)' : ''}`);
  } catch (e) {
    found.push(`exactSearch fails: ${e.message.split('\n')[0]}`);
  }
  return found.join('; ');
}

async function startFaiss(codes, queries, bytes) {
  const probe = spawnSync(PYTHON, ['-c', 'import faiss'], { encoding: 'utf8' });
  if (probe.status !== 0) return `unavailable (${PYTHON} cannot import faiss: apt-get install python3-faiss)`;
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-'));
  fs.writeFileSync(path.join(tmpDir, 'codes.u8'), codes);
  fs.writeFileSync(path.join(tmpDir, 'queries.u8'), queries);
  const child = spawn(PYTHON, [path.join(here, 'faiss_peer.py'), path.join(tmpDir, 'codes.u8'), path.join(tmpDir, 'queries.u8'), String(bytes)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ready = (await lines.next()).value;
  faiss = {
    child,
    version: ready,
    async search(nq, k) {
      child.stdin.write(`search ${nq} ${k}\n`);
      const [ms, distance, label] = (await lines.next()).value.split(' ').map(Number);
      return { ms, distance, label };
    },
  };
  return ready;
}

export async function teardown() {
  faiss?.child.stdin.end();
  faiss = undefined;
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

export async function cases({ quick = false } = {}) {
  const n = quick ? 20_000 : 1_000_000, bits = 1024, bytes = bits / 8, k = 10;
  const rng = new Rng(7);
  const codes = new Uint8Array(rng.uint64((n * bytes) / 8).buffer);
  const queries = new Uint8Array(rng.uint64((64 * bytes) / 8).buffer);
  const simsimd = require('simsimd');
  const faissStatus = await startFaiss(codes, queries, bytes);
  const usearchNote = probeUsearch(codes, queries, bytes);
  const threads = capabilities().threads;

  // The reference answer, to check every peer agrees before timing anything.
  const check = hammingTopK(queries, codes, { bits, k });
  const js = hammingTopKPlainJs(queries.subarray(0, bytes), codes, bytes, k, 1);
  for (let j = 0; j < k; j++) if (js[j] !== check.indices[j]) throw new Error('plain-JS peer disagrees with hammingTopK');
  if (faiss) {
    const f = await faiss.search(1, 1);
    if (f.label !== check.indices[0] || f.distance !== check.distances[0]) throw new Error('FAISS disagrees with hammingTopK');
  }

  const make = (nq) => {
    const q = queries.subarray(0, nq * bytes);
    const jsSlice = nq === 1 ? 1 : 64;                 // slow peers scan a fixed fraction of the codes
    const simsimdSlice = nq === 1 ? 16 : 256;
    const simsimdCodes = views(codes, bytes, Math.floor(n / simsimdSlice));
    const simsimdQueries = views(q, bytes, nq);
    const jsCodes = codes.subarray(0, Math.floor(n / jsSlice) * bytes);
    const contenders = {
      'plain-js': { run: () => hammingTopKPlainJs(q, jsCodes, bytes, k), scale: jsSlice, note: jsSlice > 1 ? `scans 1/${jsSlice} of the codes; time scaled by ${jsSlice}` : undefined },
      tessera: () => hammingTopK(q, codes, { bits, k }),
      'tessera-async': () => hammingTopKAsync(q, codes, { bits, k }),
      simsimd: { run: () => simsimdLoop(simsimd, simsimdQueries, simsimdCodes, k), scale: simsimdSlice, note: `simsimd.hamming per pair over 1/${simsimdSlice} of the codes; time scaled by ${simsimdSlice}` },
    };
    if (faiss) contenders['faiss-IndexBinaryFlat'] = { run: () => faiss.search(nq, k), note: `${faiss.version}; times itself (no pipe)` };
    const comparisons = nq * n;
    const blocks = Math.ceil(nq / 64);
    // The machine's limits, timed in the same alternating rounds: all threads XOR-and-popcounting as many bytes as
    // the scan compares, in L1; and all threads reading the codes as many times as the scan streams them.
    contenders['limit: popcount'] = { run: () => binding().popcountWork(comparisons * bytes), note: 'XOR + vpopcnt + add over L1-resident data, all threads' };
    contenders['limit: memory'] = { run: () => { for (let b = 0; b < blocks; b++) binding().readBytes(codes); }, note: 'a threaded read of the codes, once per block of 64 queries' };
    return {
      name: `1M×1024-bit, k=10, ${nq} quer${nq === 1 ? 'y' : 'ies'}`.replace('1M', quick ? `${n / 1000}k` : '1M'),
      params: { n, bits, k, nq, threads },
      baseline: 'plain-js',
      bytes: n * bytes * blocks,  // the codes are read once per block of 64 queries
      rounds: quick ? 3 : 5,
      minMs: quick ? 2 : 20,
      contenders,
      summarize(result) {
        const perCore = (name) => comparisons / (result.medianMs[name] / 1e3) / threads;
        const limitMs = Math.max(result.medianMs['limit: popcount'], result.medianMs['limit: memory']);
        const bound = result.medianMs['limit: popcount'] >= result.medianMs['limit: memory'] ? 'popcount' : 'memory';
        result.limit = { bound, ms: limitMs, tesseraOverLimit: result.medianMs.tessera / limitMs };
        const lines = [];
        for (const name of Object.keys(result.medianMs).filter((x) => !x.startsWith('limit')))
          lines.push(`${name}: ${(perCore(name) / 1e6).toFixed(1)} M comparisons/s/core`);
        lines.push(`limit: ${(perCore(bound === 'popcount' ? 'limit: popcount' : 'limit: memory') / 1e6).toFixed(0)} M/s/core, ${bound} bound (popcount ${(perCore('limit: popcount') / 1e6).toFixed(0)}, memory ${(perCore('limit: memory') / 1e6).toFixed(0)}); tessera takes ${(result.medianMs.tessera / limitMs).toFixed(2)}× the limit's time`);
        lines.push(`tessera vs simsimd loop: ${(result.medianMs.simsimd / result.medianMs.tessera).toFixed(0)}×`);
        if (faiss) lines.push(`tessera vs FAISS IndexBinaryFlat: ${(result.medianMs['faiss-IndexBinaryFlat'] / result.medianMs.tessera).toFixed(1)}×`);
        else lines.push(`FAISS: ${faissStatus}`);
        lines.push(`usearch: ${usearchNote}`);
        result.usearch = usearchNote;
        return lines;
      },
    };
  };
  return [make(1), make(64)];
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
