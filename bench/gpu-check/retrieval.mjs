// GPU check of the retrieval backend (issue 8): parity with the CPU path on fresh random inputs first, then device
// timings by CUDA events after warm-up (median of several runs), and a short table last. Runs on a GPU machine with
// nothing but what bench/gpu-check/run.sh carries (the compiled addons, dist/, a compressed node binary).
//
//   node bench/gpu-check/retrieval.mjs [--quick | --scale=N]     (TESSERA_NATIVE_PATH defaults to the CUDA addon)
import { binding, check, finish, median, now, rng, sized, t } from './common.mjs';
function randomBytes(n) {
  const u = rng.uniform(n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(u[i] * 256);
  return out;
}
function randomLengths(count, lo, hi) {
  const u = rng.uniform(count);
  return Int32Array.from(u, (x) => lo + Math.floor(x * (hi - lo + 1)));
}
const sum = (a) => a.reduce((s, x) => s + x, 0);
function shuffledIds(n) {
  const ids = Int32Array.from({ length: n }, (_, i) => i * 7 - 3 * n);  // negative and positive, distinct
  const u = rng.uniform(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}
const sameInts = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const sameFloats = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]) || (x === b[i]));
async function deviceMs(run, repeats) {
  await run();  // warm-up
  const ms = [];
  for (let i = 0; i < repeats; i++) ms.push((await run()).ms);
  return median(ms);
}
async function wallMs(run, repeats) {
  await run();
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = now();
    await run();
    ms.push(now() - t0);
  }
  return median(ms);
}

// ---- parity: Hamming on sign codes -------------------------------------------------------------------------------
for (const { n, bits, nq, k, lowEntropy } of [
  { n: 1, bits: 8, nq: 1, k: 1 },
  { n: 37, bits: 100, nq: 3, k: 50 },
  { n: 5003, bits: 1024, nq: 64, k: 10 },
  { n: 20011, bits: 16, nq: 9, k: 1024, lowEntropy: true },  // many ties: their order is checked
  { n: 100003, bits: 256, nq: 17, k: 100 },
]) {
  const row = Math.ceil(bits / 8);
  const codes = randomBytes(n * row);
  if (lowEntropy) for (let i = 0; i < codes.length; i++) codes[i] &= 0x11;
  const queries = randomBytes(nq * row);
  const cpu = await t.hammingTopKAsync(queries, codes, { bits, k });
  const device = await t.CudaBinaryIndex.fromCodes(codes, { bits });
  const gpu = await device.searchAsync(queries, k);
  check(`hamming n=${n} bits=${bits} nq=${nq} k=${k}`, sameInts(gpu.ids, cpu.indices) && sameInts(gpu.distances, cpu.distances));
  device.dispose();
}

// ---- parity: BinaryIndex (ids, residual planes, dot and l2) -------------------------------------------------------
for (const { dim, bits, similarity, n } of [
  { dim: 100, bits: 1, similarity: 'dot', n: 777 },
  { dim: 256, bits: 2, similarity: 'dot', n: 20011 },
  { dim: 96, bits: 3, similarity: 'l2', n: 5001 },
  { dim: 1024, bits: 4, similarity: 'l2', n: 20000 },
]) {
  const index = new t.BinaryIndex({ dim, bits, similarity });
  index.add(shuffledIds(n), rng.normal(n * dim));
  const queries = rng.normal(13 * dim);
  const device = await t.CudaBinaryIndex.fromIndex(index);
  for (const metric of bits === 1 ? ['hamming'] : ['hamming', 'sdc']) {
    for (const k of [1, 10, 300]) {
      const cpu = index.search(queries, k, { metric });
      const gpu = await device.searchAsync(queries, k, { metric });
      check(`BinaryIndex dim=${dim} bits=${bits} ${similarity} ${metric} k=${k}`,
        gpu.k === cpu.k && sameInts(gpu.ids, cpu.ids) && sameFloats(gpu.scores, cpu.scores));
    }
  }
  device.dispose();
  index.dispose();
}

// ---- parity: FDE encoding ----------------------------------------------------------------------------------------
function fdeDifference(gpu, cpu, blockFloats) {
  let worst = 0, scale = 0, blocks = 0;
  for (let b = 0; b < cpu.length; b += blockFloats) {
    let blockWorst = 0;
    for (let i = b; i < b + blockFloats; i++) {
      blockWorst = Math.max(blockWorst, Math.abs(gpu[i] - cpu[i]));
      scale = Math.max(scale, Math.abs(cpu[i]));
    }
    if (blockWorst > 0) blocks++;
    worst = Math.max(worst, blockWorst);
  }
  return { relative: worst / (scale || 1), blocksDiffering: blocks / (cpu.length / blockFloats) };
}
for (const options of [
  { dim: 128, repetitions: 20, simhashBits: 5, projection: 'countsketch', projectionDim: 16, fillEmpty: true },
  { dim: 96, repetitions: 4, simhashBits: 3, projection: 'dense', projectionDim: 8, finalDim: 512 },
  { dim: 33, repetitions: 3, simhashBits: 0, projection: 'identity' },
  { dim: 64, repetitions: 10, simhashBits: 6, projection: 'countsketch', projectionDim: 32, fillEmpty: false },
  { dim: 1024, repetitions: 2, simhashBits: 4, projection: 'identity' },
]) {
  const encoder = new t.FdeEncoder({ ...options, seed: 7n });
  const device = await t.CudaFdeEncoder.create(encoder);
  const lengths = randomLengths(301, 1, 120);
  lengths[0] = 1000;
  const tokens = rng.normal(sum(lengths) * options.dim);
  for (const kind of ['Documents', 'Queries']) {
    const cpu = await encoder[`encode${kind}Async`](tokens, lengths);
    const gpu = await device[`encode${kind}Async`](tokens, lengths);
    // A token whose SimHash value is within rounding of zero may change partition: allow a few blocks to differ,
    // never a large relative error elsewhere.
    const block = options.finalDim ? encoder.outputDim : (options.projection === 'identity' ? options.dim : options.projectionDim);
    const d = fdeDifference(gpu, cpu, block);
    check(`FDE ${kind.toLowerCase()} ${options.projection} dim=${options.dim} k=${options.simhashBits}${options.finalDim ? ` final=${options.finalDim}` : ''}`,
      d.blocksDiffering <= 0.002 && (d.blocksDiffering > 0 || d.relative <= 1e-5),
      `max relative difference ${d.relative.toExponential(2)}, ${(100 * d.blocksDiffering).toFixed(3)}% of blocks differ`);
  }
  device.dispose();
  encoder.dispose();
}

// ---- parity: Chamfer against a float64 reference ------------------------------------------------------------------
function chamfer64(q, qLengths, docs, dLengths, dim) {
  const out = new Float64Array(qLengths.length * dLengths.length);
  const bound = new Float64Array(out.length);  // per pair: sum over query tokens of max_t sum_i |q_i d_ti|
  let qo = 0;
  for (let a = 0; a < qLengths.length; a++) {
    let dOff = 0;
    for (let d = 0; d < dLengths.length; d++) {
      let total = 0, abs = 0;
      for (let x = 0; x < qLengths[a]; x++) {
        let best = -Infinity, bestAbs = 0;
        for (let y = 0; y < dLengths[d]; y++) {
          let s = 0, m = 0;
          for (let i = 0; i < dim; i++) {
            const p = q[(qo + x) * dim + i] * docs[(dOff + y) * dim + i];
            s += p;
            m += Math.abs(p);
          }
          best = Math.max(best, s);
          bestAbs = Math.max(bestAbs, m);
        }
        total += best;
        abs += bestAbs;
      }
      out[a * dLengths.length + d] = total;
      bound[a * dLengths.length + d] = abs;
      dOff += dLengths[d];
    }
    qo += qLengths[a];
  }
  return { scores: out, abs: bound };
}
for (const dim of [128, 100, 7]) {
  const dLengths = randomLengths(257, 1, 150);
  const docs = rng.normal(sum(dLengths) * dim);
  const qLengths = randomLengths(5, 1, 40);
  const queries = rng.normal(sum(qLengths) * dim);
  const ref = chamfer64(queries, qLengths, docs, dLengths, dim);
  for (const precision of ['float32', 'bfloat16']) {
    const device = await t.CudaMultiVectorIndex.create(docs, dLengths, { dim, precision });
    const gpu = await device.chamferScoresAsync(queries, qLengths);
    // The bounds: float32, 1e-6 relative to the absolute sum; bf16 the stated (2^-7 + 2^-16 + 1.01 dim 2^-23) per
    // dot product, twice (the true best token and the one the device picked).
    const per = precision === 'float32' ? 1e-6 : 2 * (2 ** -7 + 2 ** -16 + 1.01 * dim * 2 ** -23);
    let worst = 0;
    for (let i = 0; i < gpu.length; i++) worst = Math.max(worst, Math.abs(gpu[i] - ref.scores[i]) / (per * ref.abs[i]));
    check(`Chamfer ${precision} dim=${dim}`, worst <= 1, `worst error ${worst.toFixed(3)} of the bound`);
    if (precision === 'float32') {
      const cpu = new Float32Array(gpu.length);
      let qo = 0;
      for (let a = 0; a < qLengths.length; a++) {
        cpu.set(t.chamferScores(queries.subarray(qo * dim, (qo + qLengths[a]) * dim), docs, dLengths, dim), a * dLengths.length);
        qo += qLengths[a];
      }
      let rel = 0;
      for (let i = 0; i < gpu.length; i++) rel = Math.max(rel, Math.abs(gpu[i] - cpu[i]) / (ref.abs[i] || 1));
      check(`Chamfer float32 dim=${dim} vs the CPU path`, rel <= 2e-6, `max difference ${rel.toExponential(2)} of the absolute sum`);
    }
    device.dispose();
  }
}

// ---- parity: device Chamfer top-k against sorting the device's own scores on the host -----------------------------
{
  const dim = 64, dLengths = randomLengths(3001, 1, 40);
  for (let d = 1; d < 40; d += 2) dLengths[d] = dLengths[0];
  const docs = rng.normal(sum(dLengths) * dim);
  for (let d = 1; d < 40; d += 2)  // documents 1, 3, ... 39 repeat document 0: equal scores, ranked by id
    docs.copyWithin(dLengths.subarray(0, d).reduce((a, b) => a + b, 0) * dim, 0, dLengths[0] * dim);
  const ids = shuffledIds(dLengths.length);
  const qLengths = randomLengths(7, 1, 20);
  const queries = rng.normal(sum(qLengths) * dim);
  for (const precision of ['bfloat16', 'float32']) {
    const device = await t.CudaMultiVectorIndex.create(docs, dLengths, { dim, precision, ids });
    const scores = await device.chamferScoresAsync(queries, qLengths);
    for (const k of [1, 10, 1024]) {
      const top = await device.searchAsync(queries, qLengths, k);
      let ok = top.k === Math.min(k, dLengths.length);
      for (let q = 0; q < qLengths.length && ok; q++) {
        const row = scores.subarray(q * dLengths.length, (q + 1) * dLengths.length);
        const order = Array.from(row.keys()).sort((a, b) => (row[b] - row[a]) || (ids[a] - ids[b]));
        for (let r = 0; r < top.k; r++) ok &&= top.ids[q * top.k + r] === ids[order[r]] && top.scores[q * top.k + r] === row[order[r]];
      }
      check(`Chamfer top-${k} ${precision} on the device (ids, ties)`, ok);
    }
    device.dispose();
  }
}

// ---- bad input: device out of memory is an Error with the sizes, and the device stays usable ------------------------
{
  let message = '';
  try {
    binding().cudaCopyBandwidth(2 ** 40, 1);  // 1 TiB: more than any card holds
  } catch (e) {
    message = e.message;
  }
  check('out of memory says what was asked and what is free', /needs \d+ MiB .* of \d+ MiB are free/.test(message), message);
  const device = await t.CudaBinaryIndex.fromCodes(randomBytes(64 * 16), { bits: 128 });
  const r = await device.searchAsync(randomBytes(16), 3);
  check('the device still answers after the failed allocation', r.ids.length === 3);
  device.dispose();
}

// ---- timings -----------------------------------------------------------------------------------------------------
const rows = [];
const copyRate = binding().cudaCopyBandwidth(1 << 30, 20);  // bytes read + written per second
console.log(`device copy bandwidth: ${(copyRate / 1e9).toFixed(0)} GB/s (read + written)`);

{ // Hamming scan: 1M x 1024-bit codes
  const n = sized(1 << 20), bits = 1024, row = bits / 8;
  const codes = randomBytes(n * row);
  const device = await t.CudaBinaryIndex.fromCodes(codes, { bits });
  for (const nq of [1, 64]) {
    const queries = randomBytes(nq * row);
    const ms = await deviceMs(async () => (device.search(queries, 10), { ms: device.lastKernelMs }), 20);
    const e2e = await wallMs(() => device.searchAsync(queries, 10), 5);
    const cpu = await wallMs(() => t.hammingTopKAsync(queries, codes, { bits, k: 10 }), 3);
    const gbs = (n * row) / (ms / 1e3) / 1e9;
    const comps = (n * nq) / (ms / 1e3) / 1e9;
    const peer = nq === 1 ? 1.6 : 3.1;  // CuPy bitwise_count + argpartition on an H200, gpu.md
    rows.push([`Hamming top-10, ${n} x ${bits}-bit, ${nq} quer${nq > 1 ? 'ies' : 'y'}`, `${ms.toFixed(3)} ms`,
      `${gbs.toFixed(0)} GB/s = ${(100 * gbs * 1e9 / copyRate).toFixed(0)}% of copy`, `${comps.toFixed(1)} G cmp/s = ${(comps / peer).toFixed(1)}x CuPy`,
      `${(cpu / ms).toFixed(0)}x (end to end ${(cpu / e2e).toFixed(1)}x)`]);
  }
  device.dispose();
}

{ // SDC: 2-bit residual codes, 1024 dims
  const n = sized(1 << 18), dim = 1024;
  const index = new t.BinaryIndex({ dim, bits: 2 });
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  for (let b = 0; b < n; b += 1 << 15) index.add(ids.subarray(b, b + (1 << 15)), rng.normal(Math.min(1 << 15, n - b) * dim));
  const device = await t.CudaBinaryIndex.fromIndex(index);
  const queries = index.binarizer.encode(rng.normal(64 * dim));
  const ms = await deviceMs(async () => (device.search(queries, 10, { metric: 'sdc' }), { ms: device.lastKernelMs }), 10);
  const cpu = await wallMs(() => index.searchAsync(queries, 10, { metric: 'sdc' }), 3);
  rows.push([`SDC top-10, ${n} x 2-bit ${dim}-d, 64 queries`, `${ms.toFixed(3)} ms`, `${((n * 64) / (ms / 1e3) / 1e9).toFixed(1)} G pairs/s`, '', `${(cpu / ms).toFixed(0)}x`]);
  device.dispose();
  index.dispose();
}

{ // FDE documents: 80 tokens x 128-d, R = 20, k = 5, count-sketch p = 16, fill on
  const docs = sized(20000), ntok = 80, dim = 128;
  const encoder = new t.FdeEncoder({ dim, repetitions: 20, simhashBits: 5, projection: 'countsketch', projectionDim: 16, seed: 1n });
  const device = await t.CudaFdeEncoder.create(encoder);
  const lengths = new Int32Array(docs).fill(ntok);
  const tokens = rng.normal(docs * ntok * dim);
  const ms = await deviceMs(async () => (device.encodeDocuments(tokens, lengths), { ms: device.lastKernelMs }), 5);
  const cpu = await wallMs(() => encoder.encodeDocumentsAsync(tokens, lengths), 3);
  rows.push([`FDE documents, ${docs} x ${ntok} x ${dim}`, `${ms.toFixed(3)} ms`, `${(docs / (ms / 1e3) / 1e6).toFixed(2)} M docs/s`, '', `${(cpu / ms).toFixed(0)}x`]);
  device.dispose();
  encoder.dispose();
}

{ // Chamfer: 100k docs x 100 tokens x 128, queries of 32 tokens
  const docs = sized(100000), ntok = 100, dim = 128, qtok = 32;
  const lengths = new Int32Array(docs).fill(ntok);
  const tokens = rng.normal(docs * ntok * dim);
  for (const precision of ['bfloat16', 'float32']) {
    const device = await t.CudaMultiVectorIndex.create(tokens, lengths, { dim, precision });
    for (const nq of [1, 64]) {
      const qLengths = new Int32Array(nq).fill(qtok);
      const queries = rng.normal(nq * qtok * dim);
      const ms = await deviceMs(async () => (device.chamferScores(queries, qLengths), { ms: device.lastKernelMs }), 10);
      const flops = 2 * qtok * ntok * dim * docs * nq;
      const tflops = flops / (ms / 1e3) / 1e12;
      const peer = nq === 1 ? 70 : 166;  // torch matmul + amax + sum, bf16, H200 (gpu.md)
      let speedup = '';
      if (nq === 1) {
        const cpu = await wallMs(() => t.chamferScoresAsync(queries, tokens, lengths, dim), 2);
        speedup = `${(cpu / ms).toFixed(0)}x`;
      }
      rows.push([`Chamfer ${precision}, ${docs} docs x ${ntok} x ${dim}, ${nq} x ${qtok}-token quer${nq > 1 ? 'ies' : 'y'}`, `${ms.toFixed(3)} ms`,
        `${tflops.toFixed(0)} TFLOP/s`, `${(tflops / peer).toFixed(2)}x torch`, speedup]);
    }
    device.dispose();
  }
}

// ---- the table, last ---------------------------------------------------------------------------------------------
const header = ['case', 'device time', 'rate', 'vs peer', 'vs CPU path'];
finish('retrieval', header, rows, copyRate);
