// RoPE angle accuracy against position ("When Precision Meets Position", Wang et al. 2024): the worst error of cos
// and sin over all frequencies of a 128-dim head (base 500000, Llama 3's), for
//   - float32 angles as Hugging Face forms them (inv_freq in float32, times the position in float32),
//   - float32 angles built incrementally as ggml's CPU kernel does (theta *= theta_scale per pair),
//   - Tessera (ropeCosSin / applyRope: the phase in float64, cos and sin rounded once to float32),
// each against cos and sin of the float64 angle. Not a timing suite: it writes rope-angles.json and a README table.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { capabilities, ropeCosSin, ropeFrequencies } from '../dist/index.js';
import { machine } from './harness.mjs';

const f32 = Math.fround;

function worst(position, invFreq, cosSinOf) {
  let err = 0;
  for (let i = 0; i < invFreq.length; i++) {
    const exact = position * invFreq[i];
    const [c, s] = cosSinOf(i);
    err = Math.max(err, Math.abs(c - Math.cos(exact)), Math.abs(s - Math.sin(exact)));
  }
  return err;
}

export async function report({ outDir }) {
  const dim = 128, base = 500000;
  const { invFreq } = ropeFrequencies({ type: 'default', base, dim });
  const invFreq32 = invFreq.map(f32);
  const positions = [1024, 4096, 32768, 131072, 524288, 1000000, 4000000];
  const rows = positions.map((p) => {
    const hf = worst(p, invFreq, (i) => {
      const a = f32(f32(p) * invFreq32[i]);
      return [f32(Math.cos(a)), f32(Math.sin(a))];
    });
    // ggml: theta starts at the position and is multiplied by base^(-2/dim) in float32 for each pair.
    const scale = f32(base ** (-2 / dim));
    let theta = f32(p);
    const incremental = [];
    for (let i = 0; i < invFreq.length; i++) {
      incremental.push([f32(Math.cos(theta)), f32(Math.sin(theta))]);
      theta = f32(theta * scale);
    }
    const ggml = worst(p, invFreq, (i) => incremental[i]);
    const { cos, sin } = ropeCosSin(Int32Array.of(p), invFreq);
    const ours = worst(p, invFreq, (i) => [cos[i], sin[i]]);
    return { position: p, hfFloat32: hf, ggmlIncremental: ggml, tessera: ours };
  });
  const e = (x) => x.toExponential(1);
  const lines = [
    `Worst |error| of cos and sin over the ${dim / 2} frequencies of a ${dim}-dim head (base ${base}), against the float64 angle:`,
    '',
    '| position | float32 angle (Hugging Face) | float32 incremental (ggml CPU) | Tessera (float64 phase) |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.position.toLocaleString('en-US')} | ${e(r.hfFloat32)} | ${e(r.ggmlIncremental)} | ${e(r.tessera)} |`),
  ];
  const markdown = lines.join('\n');
  console.log(markdown);
  const record = { suite: 'rope-angles', date: new Date().toISOString(), machine: machine({ simd: capabilities().simd }), dim, base, rows, markdown };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'rope-angles.json'), `${JSON.stringify(record, null, 2)}\n`);
}
