// GPU check of the attention backend (issue 9): parity first (RoPE and the LSE merge bit for bit against the CPU
// path; attention within the bf16 bound against a float64 reference), then device timings by CUDA events after
// warm-up (median of several runs), and a short table last. Runs on a GPU machine with nothing but what
// bench/gpu-check/run.sh carries.
//
//   node bench/gpu-check/attention.mjs [--quick | --scale=N]
import { binding, check, finish, median, rng, sized, t } from './common.mjs';
import * as half from '../half.mjs';

// Half bits from floats and back, by bench/half.mjs (plain JS, independent of the library's conversions).
function toHalf(x, dtype) {
  const to = dtype === 'bfloat16' ? half.toBf16 : half.toHalf, out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = to(x[i]);
  return out;
}
function fromHalf(h, dtype) {
  const from = dtype === 'bfloat16' ? half.fromBf16 : half.fromHalf, out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = from(h[i]);
  return out;
}
const roundHalf = (v, dtype) => (dtype === 'bfloat16' ? half.fromBf16(half.toBf16(v)) : half.fromHalf(half.toHalf(v)));
const sameBits = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

// ---- parity: RoPE, bit for bit -----------------------------------------------------------------------------------
for (const dtype of ['float32', 'float16', 'bfloat16']) {
  for (const style of ['neox', 'interleaved']) {
    for (const layout of ['bshd', 'bhsd']) {
      const batch = 2, seqLen = 37, heads = 3, headDim = 64, rotaryDim = 48;
      const x = rng.normal(batch * seqLen * heads * headDim);
      const data = dtype === 'float32' ? x : toHalf(x, dtype);
      const positions = Float64Array.from({ length: batch * seqLen }, (_, i) => (i * 7919.5) % 1e6);
      const invFreq = t.ropeFrequencies({ type: 'yarn', dim: rotaryDim, base: 500000, factor: 8, originalMaxPositions: 8192 }).invFreq;
      const options = { layout, batch, seqLen, heads, headDim, rotaryDim, positions, invFreq, style, dtype, attentionFactor: 1.1 };
      const cpu = t.applyRope(data.slice(), options);
      const gpu = t.applyRope(data.slice(), { ...options, device: 'cuda' });
      check(`RoPE ${dtype} ${style} ${layout}`, sameBits(cpu, gpu));
    }
  }
}
{
  const seqLen = 33, heads = 2, headDim = 16, rows = 100;
  const tables = t.ropeCosSin(Int32Array.from({ length: rows }, (_, i) => i), t.ropeFrequencies({ type: 'default', base: 10000, dim: headDim }).invFreq);
  const data = rng.normal(seqLen * heads * headDim);
  const positions = Int32Array.from({ length: seqLen }, (_, i) => (i * 13) % rows);
  const options = { layout: 'bshd', seqLen, heads, headDim, positions, cos: tables.cos, sin: tables.sin };
  check('RoPE from cos/sin tables', sameBits(t.applyRope(data.slice(), options), t.applyRope(data.slice(), { ...options, device: 'cuda' })));
}

// ---- parity: LSE merge, bit for bit ------------------------------------------------------------------------------
{
  const batch = 2, heads = 3, seq = 41, dim = 72, rows = batch * heads * seq;
  const outA = rng.normal(rows * dim), outB = rng.normal(rows * dim);
  const lseA = rng.normal(rows), lseB = rng.normal(rows);
  lseA[0] = -Infinity, lseB[1] = -Infinity, lseA[2] = lseB[2] = -Infinity;
  const options = { layout: 'bhsd', batch, heads, seq, dim };
  const cpu = t.mergeAttentionStates(outA, lseA, outB, lseB, options);
  const gpu = t.mergeAttentionStates(outA, lseA, outB, lseB, { ...options, device: 'cuda' });
  check('mergeAttentionStates', sameBits(cpu.out, gpu.out) && sameBits(cpu.lse, gpu.lse));
}

// ---- parity: attention against float64, within the bf16 bound ---------------------------------------------------
// The bound (FlashAttention's tests): the device's largest error against a float64 reference is at most twice that
// of a standard half-precision kernel (inputs in half, scores in float32, probabilities rounded to half before P·V,
// float32 accumulation, output rounded to half), plus a small floor for rows whose errors are all tiny.
function referenceAttention(q, k, v, o, dtype) {
  const { batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale, temperature, visible } = o;
  const ref = new Float64Array(batch * headsQ * seqQ * headDimV), std = new Float64Array(ref.length);
  const s = new Float64Array(seqK);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < headsQ; h++) {
      const hk = Math.floor(h / (headsQ / headsKV));
      for (let i = 0; i < seqQ; i++) {
        let max = -Infinity;
        for (let j = 0; j < seqK; j++) {
          if (!visible(b, i, j)) { s[j] = -Infinity; continue; }
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[((b * seqQ + i) * headsQ + h) * headDim + d] * k[((b * seqK + j) * headsKV + hk) * headDim + d];
          s[j] = (dot * scale) / temperature;
          max = Math.max(max, s[j]);
        }
        const row = ((b * seqQ + i) * headsQ + h) * headDimV;
        if (max === -Infinity) continue;
        let sum = 0, sumStd = 0;
        const accStd = new Float64Array(headDimV);
        for (let j = 0; j < seqK; j++) {
          if (s[j] === -Infinity) continue;
          const p = Math.exp(s[j] - max), pStd = roundHalf(Math.fround(Math.exp(Math.fround(s[j]) - Math.fround(max))), dtype);
          sum += p, sumStd += Math.fround(Math.exp(Math.fround(s[j]) - Math.fround(max)));
          for (let d = 0; d < headDimV; d++) {
            const vv = v[((b * seqK + j) * headsKV + hk) * headDimV + d];
            ref[row + d] += p * vv;
            accStd[d] = Math.fround(accStd[d] + pStd * vv);
          }
        }
        for (let d = 0; d < headDimV; d++) {
          ref[row + d] /= sum;
          std[row + d] = roundHalf(accStd[d] / sumStd, dtype);
        }
      }
    }
  return { ref, std };
}
const maxError = (x, ref) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
for (const dtype of ['bfloat16', 'float16']) {
  for (const c of [
    { name: 'bidirectional d=128', headDim: 128, seq: 300 },
    { name: 'causal d=64 GQA', headDim: 64, seq: 257, causal: true, headsQ: 4, headsKV: 2 },
    { name: 'window + global (Λ) d=128', headDim: 128, seq: 400, causal: true, window: 64, globalTokens: 4 },
    { name: 'segments + anchor d=96', headDim: 96, seq: 333, segments: Int32Array.of(0, 100, 101, 250, 333), anchor: true },
    { name: 'seqQ < seqK, temperature, d=40', headDim: 40, seq: 200, seqQ: 37, temperature: 0.7, causal: true },
    { name: 'key lengths (one empty row) d=64', headDim: 64, seq: 150, batch: 3, keyLengths: Int32Array.of(150, 0, 77) },
  ]) {
    const batch = c.batch ?? 1, headsQ = c.headsQ ?? 2, headsKV = c.headsKV ?? headsQ, seqK = c.seq, seqQ = c.seqQ ?? c.seq;
    const headDim = c.headDim, headDimV = headDim, scale = 1 / Math.sqrt(headDim), temperature = c.temperature ?? 1;
    const q16 = toHalf(rng.normal(batch * seqQ * headsQ * headDim), dtype);
    const k16 = toHalf(rng.normal(batch * seqK * headsKV * headDim), dtype);
    const v16 = toHalf(rng.normal(batch * seqK * headsKV * headDimV), dtype);
    const options = { layout: 'bshd', batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, dtype, returnLse: true, temperature };
    for (const key of ['causal', 'window', 'globalTokens', 'segments', 'anchor', 'keyLengths']) if (c[key] !== undefined) options[key] = c[key];
    const cpu = t.attention(q16, k16, v16, options);
    const gpu = t.attention(q16, k16, v16, { ...options, device: 'cuda' });
    // Which keys a query sees, from the CPU path's own definition: a key is visible iff perturbing it changes the
    // output. Cheaper: rebuild the rule here, as documented in attention.h.
    const visible = (b, i, j) => {
      const n = c.keyLengths ? c.keyLengths[b] : seqK;
      if (j >= n) return false;
      const p = i + n - seqQ;
      if (c.causal && j > p) return false;
      let ok = true;
      if (c.window) ok = c.causal ? p - j < c.window : Math.abs(p - j) < c.window;
      if (c.segments) {
        let s = 0;
        while (c.segments[s + 1] <= p) s++;
        ok = ok && j >= c.segments[s] && j < c.segments[s + 1];
      }
      if (!ok && c.globalTokens && j < c.globalTokens) ok = true;
      if (!ok && c.anchor && j === 0) ok = true;
      return ok;
    };
    const { ref, std } = referenceAttention(fromHalf(q16, dtype), fromHalf(k16, dtype), fromHalf(v16, dtype),
      { batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale, temperature, visible }, dtype);
    const gpuOut = fromHalf(gpu.out, dtype), cpuOut = fromHalf(cpu.out, dtype);
    const eGpu = maxError(gpuOut, ref), eStd = maxError(std, ref), eCpu = maxError(cpuOut, ref);
    const lseOk = gpu.lse.every((x, i) => (x === -Infinity) === (cpu.lse[i] === -Infinity) && (x === -Infinity || Math.abs(x - cpu.lse[i]) <= 1e-3 * Math.max(1, Math.abs(x))));
    const zerosOk = gpuOut.every((x, i) => cpuOut[i] !== 0 || cpu.lse[Math.floor(i / headDimV)] !== -Infinity || x === 0);
    check(`attention ${dtype} ${c.name}`, eGpu <= 2 * eStd + 1e-3 && lseOk && zerosOk,
      `max error ${eGpu.toExponential(2)} (standard half kernel ${eStd.toExponential(2)}, CPU ${eCpu.toExponential(2)})${lseOk ? '' : ', LSE differs'}${zerosOk ? '' : ', masked rows not zero'}`);
  }
}

// ---- timings -----------------------------------------------------------------------------------------------------
const rows = [];
const copyRate = binding().cudaCopyBandwidth(1 << 30, 20);
const last = () => t.cudaLastKernelMs();
async function deviceMs(run, repeats) {
  await run();
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    await run();
    ms.push(last());
  }
  return median(ms);
}
{ // RoPE: bf16 NeoX, 16384 tokens x 32 heads x 128
  const seqLen = sized(16384), heads = 32, headDim = 128;
  const data = toHalf(rng.normal(seqLen * heads * headDim), 'bfloat16');
  const options = { layout: 'bshd', seqLen, heads, headDim, positions: Int32Array.from({ length: seqLen }, (_, i) => i),
    invFreq: t.ropeFrequencies({ type: 'default', base: 10000, dim: headDim }).invFreq, dtype: 'bfloat16', device: 'cuda' };
  const ms = await deviceMs(() => t.applyRopeAsync(data, options), 20);
  const rate = (2 * data.byteLength) / (ms / 1e3);
  rows.push([`RoPE NeoX bf16, ${seqLen} x ${heads} x ${headDim}`, `${ms.toFixed(3)} ms`, `${(rate / 1e9).toFixed(0)} GB/s = ${(100 * rate / copyRate).toFixed(0)}% of copy`, 'torch.compile 47%']);
}
for (const c of [
  { name: 'bidirectional 16 x 128', heads: 16, headDim: 128, peer: 'torch FA2 359 TFLOP/s (H200)' },
  { name: 'causal 16 x 128', heads: 16, headDim: 128, causal: true, peer: 'cuDNN 593 TFLOP/s (H200)' },
  { name: 'bidirectional 32 x 64', heads: 32, headDim: 64, peer: 'cuDNN 467 TFLOP/s (H200)' },
  { name: 'Λ mask (4 global + 4096 window) 16 x 128', heads: 16, headDim: 128, causal: true, window: 4096, globalTokens: 4, peer: 'flex_attention 1.47 ms (H200)' },
]) {
  const seq = sized(16384), { heads, headDim } = c;
  const q = toHalf(rng.normal(seq * heads * headDim), 'bfloat16');
  const k = toHalf(rng.normal(seq * heads * headDim), 'bfloat16');
  const v = toHalf(rng.normal(seq * heads * headDim), 'bfloat16');
  const options = { layout: 'bshd', headsQ: heads, seqQ: seq, seqK: seq, headDim, dtype: 'bfloat16', device: 'cuda' };
  for (const key of ['causal', 'window', 'globalTokens']) if (c[key] !== undefined) options[key] = c[key];
  const ms = await deviceMs(() => t.attentionAsync(q, k, v, options), 10);
  // Visible (query, key) pairs, for the useful FLOPs: 4 · heads · pairs · headDim.
  let pairs = 0;
  for (let p = 0; p < seq; p++) {
    let n = c.causal ? p + 1 : seq;
    if (c.window) n = Math.min(p + 1, c.window) + Math.min(c.globalTokens ?? 0, Math.max(0, p + 1 - c.window));
    pairs += n;
  }
  const tflops = (4 * heads * pairs * headDim) / (ms / 1e3) / 1e12;
  rows.push([`attention bf16 ${c.name}, S = ${seq}`, `${ms.toFixed(3)} ms`, `${tflops.toFixed(0)} TFLOP/s useful`, c.peer]);
}

const header = ['case', 'device time', 'rate', 'peer'];
finish('attention', header, rows, copyRate);
