// Matryoshka truncation + renormalisation against the plain-JS loop a Node user would write, and the async form.
import { capabilities, matryoshka, matryoshkaAsync, Rng } from '../dist/index.js';

/** The peer: a straightforward typed-array loop, float64 accumulation like ours. */
export function matryoshkaPlainJs(vectors, dim, keep, out) {
  const rows = vectors.length / dim;
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < keep; i++) ss += vectors[base + i] * vectors[base + i];
    const scale = ss > 0 ? 1 / Math.sqrt(ss) : 1;
    const o = r * keep;
    for (let i = 0; i < keep; i++) out[o + i] = vectors[base + i] * scale;
  }
  return out;
}

export function cases({ quick = false } = {}) {
  const shapes = quick
    ? [{ name: '64→16, 1k rows', rows: 1000, dim: 64, keep: 16 }]
    : [
        { name: 'ada-002 1536→512, 20k rows', rows: 20_000, dim: 1536, keep: 512 },
        { name: '768→256, 50k rows', rows: 50_000, dim: 768, keep: 256 },
        { name: '384→128, 100k rows', rows: 100_000, dim: 384, keep: 128 },
        { name: '1024→1024 (l2 normalise), 20k', rows: 20_000, dim: 1024, keep: 1024 },
        { name: '768→256, 16 rows (latency)', rows: 16, dim: 768, keep: 256 },
      ];
  const rng = new Rng(2024);
  return shapes.map(({ name, rows, dim, keep }) => {
    const vectors = rng.normal(rows * dim);
    const outNative = new Float32Array(rows * keep);
    const outJs = new Float32Array(rows * keep);
    return {
      name,
      params: { rows, dim, keep },
      baseline: 'plain-js',
      bytes: rows * keep * 4 * 2,  // the prefix read once, the output written once
      rounds: quick ? 3 : 9,
      minMs: quick ? 2 : 40,
      contenders: {
        'plain-js': () => matryoshkaPlainJs(vectors, dim, keep, outJs),
        tessera: () => matryoshka(vectors, { dim, keep, out: outNative }),
        'tessera-async': () => matryoshkaAsync(vectors, { dim, keep, out: outNative }),
      },
    };
  });
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
