// Test helpers: an independent seeded generator (not Tessera's), float64 references, poisoned outputs, shared data.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

export const ROOT = path.resolve(__dirname, '..');
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data');

/** mulberry32: a tiny generator independent of the library under test. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian floats (Box–Muller on the independent generator). */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const r = seeded(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r()) * scale;
  }
  return out;
}

/** An output array filled with NaN, so any element a kernel forgets to write shows. */
export function poisoned(n: number): Float32Array {
  return new Float32Array(n).fill(Number.NaN);
}

/** Runs a Node script in a child process from the project root; returns status and output. */
export function runNode(script: string, env: Record<string, string | undefined> = {}, args: string[] = []) {
  const r = spawnSync(process.execPath, [...args, '-e', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

export function sharedDataAvailable(sub: string): boolean {
  return fs.existsSync(path.join(SHARED_DATA, sub));
}

/** ada-002 embeddings of 100 MS MARCO passages (1536-d), row-major. */
export function loadAda2(): { vectors: Float32Array; dim: number; count: number } {
  const lines = fs.readFileSync(path.join(SHARED_DATA, 'ada2-sample100', 'sample100.json'), 'utf8').trim().split('\n');
  const rows = lines.map((l) => (JSON.parse(l) as { vector: number[] }).vector);
  const dim = rows[0]!.length;
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => vectors.set(r, i * dim));
  return { vectors, dim, count: rows.length };
}

/** Byte equality of two views (vitest's deep equality is far too slow on megabytes). */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Real ColBERTv2 token embeddings (128-d, L2-normalised) of 35 NanoFiQA documents. */
export function loadColbertDocuments(): { vectors: Float32Array; dim: number } {
  const dir = path.join(SHARED_DATA, 'colbert-nanofiqa');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { dim: number };
  const b = fs.readFileSync(path.join(dir, 'documents.f32'));
  const vectors = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  return { vectors, dim: manifest.dim };
}

/** Bits set in a byte. */
export const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, b) => {
  let c = 0;
  for (let x = b; x; x &= x - 1) c++;
  return c;
});

/** Hamming distance of two packed rows over their first `bits` bits (the reference: byte table plus a masked tail). */
export function hammingReference(a: Uint8Array, ao: number, b: Uint8Array, bo: number, bits: number, order: 'msb' | 'lsb' = 'msb'): number {
  const full = Math.floor(bits / 8);
  let d = 0;
  for (let i = 0; i < full; i++) d += POPCOUNT8[a[ao + i]! ^ b[bo + i]!]!;
  const r = bits % 8;
  if (r) {
    const mask = order === 'msb' ? (0xff00 >> r) & 0xff : (1 << r) - 1;
    d += POPCOUNT8[(a[ao + full]! ^ b[bo + full]!) & mask]!;
  }
  return d;
}

export function randomBytes(n: number, seed: number): Uint8Array {
  const r = seeded(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

/** Real ColBERTv2 NanoFiQA documents and queries as token matrices with counts, and the qrels. */
export function loadColbert() {
  const dir = path.join(SHARED_DATA, 'colbert-nanofiqa');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    dim: number;
    sets: Record<'documents' | 'queries', { file: string; ids: string[]; token_counts: number[] }>;
    qrels?: Record<string, Record<string, number>>;
  };
  const read = (file: string) => {
    const b = fs.readFileSync(path.join(dir, file));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  };
  return {
    dim: manifest.dim,
    docs: read(manifest.sets.documents.file),
    docLengths: Int32Array.from(manifest.sets.documents.token_counts),
    docIds: manifest.sets.documents.ids,
    queries: read(manifest.sets.queries.file),
    queryLengths: Int32Array.from(manifest.sets.queries.token_counts),
    queryIds: manifest.sets.queries.ids,
    qrels: manifest.qrels ?? {},
  };
}

// An independent BigInt model of the generator specified in native/include/tessera/rng.h (SplitMix64, counter-based).
export const U64_MASK = (1n << 64n) - 1n;
export const SPLITMIX_GAMMA = 0x9e3779b97f4a7c15n;
export function splitmixMix(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & U64_MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & U64_MASK;
  return z ^ (z >> 31n);
}
/** Word i of the stream with this seed. */
export const splitmixU64 = (seed: bigint, i: bigint) => splitmixMix((seed + (i + 1n) * SPLITMIX_GAMMA) & U64_MASK);
/** A derived seed: the stream for (kind, repetition) of a seed, as the FDE matrices use it. */
export const splitmixStream = (seed: bigint, kind: bigint, r: bigint) => splitmixMix(seed ^ splitmixMix(((kind << 32n) | r) + SPLITMIX_GAMMA));
