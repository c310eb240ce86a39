// MUVERA: FDE document encoding against a plain numpy implementation of the same algorithm (bench/fde_numpy.py,
// in a child process that times itself, in the same alternating rounds), and exact Chamfer scoring against a
// plain-JS loop and the machine's FMA peak (all threads running independent fused multiply-adds, timed beside it).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { capabilities, chamferScores, chamferScoresAsync, FdeEncoder, Rng } from '../dist/index.js';
import { binding } from '../dist/native/load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let numpy;
let tmpDir;

/** The plain-JS Chamfer peer: the obvious triple loop. */
export function chamferPlainJs(query, docs, lengths, dim) {
  const nq = query.length / dim;
  const out = new Float32Array(lengths.length);
  let offset = 0;
  for (let d = 0; d < lengths.length; d++) {
    let total = 0;
    for (let a = 0; a < nq; a++) {
      let best = -Infinity;
      for (let j = 0; j < lengths[d]; j++) {
        let s = 0;
        const row = (offset + j) * dim;
        for (let i = 0; i < dim; i++) s += query[a * dim + i] * docs[row + i];
        if (s > best) best = s;
      }
      total += best;
    }
    out[d] = total;
    offset += lengths[d];
  }
  return out;
}

async function startNumpy(tokens, ntok, dim) {
  const python = 'python3';
  if (spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status !== 0) return 'unavailable (python3 cannot import numpy)';
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-fde-'));
  const file = path.join(tmpDir, 'tokens.f32');
  fs.writeFileSync(file, tokens.subarray(0, 400 * ntok * dim));
  const child = spawn(python, [path.join(here, 'fde_numpy.py'), file, String(ntok), String(dim), '20', '5', '16'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ready = (await lines.next()).value;
  numpy = {
    child,
    version: ready,
    async encode(count) {
      child.stdin.write(`encode ${count}\n`);
      return { ms: Number((await lines.next()).value) };
    },
  };
  return ready;
}

export async function teardown() {
  numpy?.child.stdin.end();
  numpy = undefined;
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

export async function cases({ quick = false } = {}) {
  const dim = 128, ntok = 80;
  const docs = quick ? 400 : 4000;
  const rng = new Rng(11);
  const tokens = rng.normal(docs * ntok * dim);
  const lengths = new Int32Array(docs).fill(ntok);
  const encoder = new FdeEncoder({ dim, repetitions: 20, simhashBits: 5, projection: 'countsketch', projectionDim: 16, fillEmpty: true });
  const numpyStatus = await startNumpy(tokens, ntok, dim);
  const numpyDocs = quick ? 20 : 200;
  const reused = new Float32Array(docs * encoder.outputDim);
  const encodeContenders = {
    tessera: () => encoder.encodeDocuments(tokens, lengths),
    'tessera-async': () => encoder.encodeDocumentsAsync(tokens, lengths),
    // A new output is fresh memory the OS zero-fills on first touch; a reused one shows the encoder alone.
    'tessera-out': { run: () => encoder.encodeDocuments(tokens, lengths, { out: reused }), note: 'writes into a reused array ({ out })' },
  };
  if (numpy) {
    encodeContenders['numpy'] = { run: () => numpy.encode(numpyDocs), scale: docs / numpyDocs, note: `${numpy.version}; encodes ${numpyDocs} documents per call (times itself), scaled to ${docs}` };
  }
  const threads = capabilities().threads;
  const encode = {
    name: `FDE encode ${docs} docs × ${ntok} tokens × ${dim}, (20, 5, countsketch, 16), fill`,
    params: { docs, ntok, dim, repetitions: 20, simhashBits: 5, projection: 'countsketch', projectionDim: 16, threads },
    baseline: numpy ? 'numpy' : 'tessera',
    rounds: quick ? 3 : 7,
    minMs: quick ? 2 : 50,
    contenders: encodeContenders,
    summarize(result) {
      const perSecond = (n) => docs / (result.medianMs[n] / 1e3);
      const lines = Object.keys(result.medianMs).map((n) => `${n}: ${perSecond(n).toFixed(0)} documents/s`);
      if (numpy) {
        const ratio = (n) => (result.medianMs.numpy / result.medianMs[n]).toFixed(1);
        lines.push(`tessera vs numpy: ${ratio('tessera')}× (target 50×), with a reused output ${ratio('tessera-out')}×; target 20,000 documents/s`);
      }
      else lines.push(`numpy: ${numpyStatus}`);
      return lines;
    },
  };

  const chamferCase = (ndocs, label) => {
    const q = rng.normal(32 * dim);
    const docTokens = rng.normal(ndocs * 100 * dim);
    const docLengths = new Int32Array(ndocs).fill(100);
    const flops = ndocs * 32 * 100 * dim * 2;
    const jsSlice = Math.max(1, Math.floor(ndocs / 50));
    const jsDocs = docTokens.subarray(0, Math.floor(ndocs / jsSlice) * 100 * dim);
    const jsLengths = docLengths.subarray(0, Math.floor(ndocs / jsSlice));
    return {
      name: `Chamfer 32-token query × ${ndocs} docs × 100 tokens × ${dim} (${label})`,
      params: { ndocs, queryTokens: 32, docTokens: 100, dim, threads },
      baseline: 'plain-js',
      rounds: quick ? 3 : 7,
      minMs: quick ? 2 : 30,
      contenders: {
        'plain-js': { run: () => chamferPlainJs(q, jsDocs, jsLengths, dim), scale: jsSlice, note: jsSlice > 1 ? `scores 1/${jsSlice} of the documents; time scaled by ${jsSlice}` : undefined },
        tessera: () => chamferScores(q, docTokens, docLengths, dim),
        'tessera-async': () => chamferScoresAsync(q, docTokens, docLengths, dim),
        'limit: FMA peak': { run: () => binding().fmaWork(flops), note: 'independent fused multiply-adds in registers, all threads, the same flops' },
      },
      summarize(result) {
        const gflops = (n) => flops / (result.medianMs[n] / 1e3) / 1e9;
        return [
          ...Object.keys(result.medianMs).map((n) => `${n}: ${gflops(n).toFixed(1)} GFLOP/s`),
          `tessera takes ${(result.medianMs.tessera / result.medianMs['limit: FMA peak']).toFixed(2)}× the FMA peak's time (target: within 2×); ${(result.medianMs['plain-js'] / result.medianMs.tessera).toFixed(0)}× plain JS`,
        ];
      },
    };
  };
  return [encode, chamferCase(quick ? 50 : 1000, 'documents in cache'), chamferCase(quick ? 100 : 20000, 'documents from memory')];
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
