// RoPE applied in place, against onnxruntime-node's com.microsoft RotaryEmbedding operator on the same tensors (as a
// Node service calls it: session.run, which allocates and fills a fresh output), a plain-JS loop, and a threaded
// memcpy of the same bytes (the bandwidth limit: RoPE reads and writes the tensor once).
import * as ort from 'onnxruntime-node';

import { applyRope, applyRopeAsync, capabilities, ropeCosSin, ropeFrequencies, Rng } from '../dist/index.js';
import { halves } from './half.mjs';
import { rotaryEmbeddingModel } from './onnx-model.mjs';

const sessions = [];

/** The plain-JS peer: NeoX pairs with Math.cos / Math.sin per token (angles shared by the heads). */
export function ropePlainJs(x, seqLen, heads, headDim, positions, invFreq) {
  const half = headDim / 2, cos = new Float64Array(half), sin = new Float64Array(half);
  for (let s = 0; s < seqLen; s++) {
    for (let i = 0; i < half; i++) {
      const a = positions[s] * invFreq[i];
      cos[i] = Math.cos(a);
      sin[i] = Math.sin(a);
    }
    for (let h = 0; h < heads; h++) {
      const row = (s * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[row + i], b = x[row + i + half];
        x[row + i] = a * cos[i] - b * sin[i];
        x[row + i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
  return x;
}

export async function cases({ quick = false } = {}) {
  const heads = 32, headDim = 128, maxPositions = 65536;
  const { invFreq } = ropeFrequencies({ type: 'default', base: 500000, dim: headDim });
  const tablePositions = Int32Array.from({ length: maxPositions }, (_, i) => i);
  const tables = ropeCosSin(tablePositions, invFreq);
  const halfTables = { cos: halves(tables.cos), sin: halves(tables.sin) };
  const rng = new Rng(31);
  const lengths = quick ? [256] : [4096, 65536];
  const out = [];
  for (const dtype of ['float32', 'float16']) {
    for (const seqLen of lengths) {
      const n = seqLen * heads * headDim, elementBytes = dtype === 'float32' ? 4 : 2;
      const values = rng.normal(n);
      const data = dtype === 'float32' ? values : halves(values);
      const positions = Int32Array.from({ length: seqLen }, (_, i) => i);
      const session = await ort.InferenceSession.create(
        rotaryEmbeddingModel({ batch: 1, seqLen, heads, headDim, rotaryDim: headDim, maxPositions, interleaved: false, float16: dtype === 'float16' }),
        { intraOpNumThreads: capabilities().threads },
      );
      sessions.push(session);
      const dims = [1, seqLen, heads * headDim];
      const feeds = {
        input: new ort.Tensor(dtype, data, dims),  // ORT reads it and writes a fresh output
        position_ids: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [1, seqLen]),
        cos_cache: new ort.Tensor(dtype, dtype === 'float32' ? tables.cos : halfTables.cos, [maxPositions, headDim / 2]),
        sin_cache: new ort.Tensor(dtype, dtype === 'float32' ? tables.sin : halfTables.sin, [maxPositions, headDim / 2]),
      };
      // Tessera rotates its own copy in place (repeated rotation keeps the values bounded: cos² + sin² = 1).
      const mine = data.slice();
      const options = { layout: 'bshd', seqLen, heads, headDim, positions, invFreq, dtype };
      const jsTokens = Math.max(1, Math.floor(seqLen / 64));
      const jsData = values.slice(0, jsTokens * heads * headDim);
      const contenders = {
        'onnxruntime-node': { run: () => session.run(feeds), note: `com.microsoft RotaryEmbedding ${ort.env.versions?.common ?? ''}, session.run from JS (fresh output each call)` },
        tessera: () => applyRope(mine, options),
        'tessera-async': () => applyRopeAsync(mine, options),
        'tessera (cos/sin tables)': () => applyRope(mine, { layout: 'bshd', seqLen, heads, headDim, positions, cos: tables.cos, sin: tables.sin, dtype }),
      };
      if (dtype === 'float32') {
        contenders['plain-js'] = { run: () => ropePlainJs(jsData, jsTokens, heads, headDim, positions, invFreq), scale: seqLen / jsTokens, note: `rotates 1/${seqLen / jsTokens} of the tokens; time scaled` };
      }
      out.push({
        name: `${dtype} ${seqLen} tokens × ${heads} heads × ${headDim}`,
        params: { dtype, seqLen, heads, headDim, threads: capabilities().threads },
        baseline: 'onnxruntime-node',
        bytes: 2 * n * elementBytes,  // the tensor read and written once
        rounds: quick ? 3 : 7,
        minMs: quick ? 2 : 30,
        contenders,
        summarize(result) {
          const copyShare = (name) => (100 * result.gbPerS[name]) / result.copyGBs;
          return [
            `tessera: ${copyShare('tessera').toFixed(0)}% of a threaded memcpy of the same bytes (target ≥ 70%), ${result.speedup.tessera.toFixed(1)}× onnxruntime-node's operator (target ≥ 2×)`,
          ];
        },
      });
    }
  }
  return out;
}

export async function teardown() {
  await Promise.all(sessions.splice(0).map((s) => s.release()));
}

export const machineInfo = () => ({ simd: capabilities().simd, threads: capabilities().threads });
