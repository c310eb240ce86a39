// Calls every function of the raw addon with garbage: wrong counts, wrong types, hostile numbers, detached and
// mismatched buffers. Each call must return or throw a TypeError, RangeError or Error; the process must survive.
import { describe, expect, it } from 'vitest';

import { capabilities } from '../src/index.js';
import { runNode } from './helpers.js';

const script = (addonPath: string) => `
const addon = require(${JSON.stringify(addonPath)});
let a = 0x2545f491;
const rand = () => ((a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0) / 4294967296;
const detached = () => { const b = new ArrayBuffer(64); const v = new Float32Array(b); structuredClone(b, { transfer: [b] }); return v; };
const values = [
  () => undefined, () => null, () => true, () => 0, () => -1, () => 1.5, () => NaN, () => Infinity, () => 2 ** 53 + 2,
  () => 1e300, () => 3, () => 8, () => 2 ** 30, () => 2 ** 31, () => -0, () => 1n, () => -1n, () => 2n ** 64n,
  () => 'u64', () => 'normal', () => 'uniform', () => 'signs', () => 'avx2', () => 'scalar', () => '', () => Symbol('s'),
  () => ({}), () => [], () => [1, 2, 3], () => () => 0, () => new Float32Array(0), () => new Float32Array(1),
  () => new Float32Array(24), () => new Float32Array(7), () => new Float64Array(24), () => new Uint8Array(9),
  () => new BigUint64Array(5), () => new Int32Array(4), () => new DataView(new ArrayBuffer(8)), () => new ArrayBuffer(16),
  () => detached(), () => new Float32Array(new SharedArrayBuffer(96)), () => Buffer.from('abc'),
  () => new Proxy({}, { get() { throw new Error('getter ran'); } }),
];
const handle = new addon.BinaryIndexHandle(16, 2, 'float32', 'dot');
handle.add(new Int32Array([1, 2]), new Uint8Array(2 * (2 * 2 + 4)), new Float32Array(32));
const methods = ['add', 'remove', 'search', 'searchAsync', 'size', 'memoryBytes', 'exportContents', 'importContents'];
for (const m of methods) addon['handle.' + m] = (...args) => handle[m](...args);
addon['new BinaryIndexHandle'] = (...args) => new addon.BinaryIndexHandle(...args);
const encoder = new addon.FdeEncoderHandle(8, 2, 2, 'countsketch', 4, 0, 1n, true);
for (const m of ['encode', 'encodeAsync', 'outputDim', 'exportMatrices']) addon['encoder.' + m] = (...args) => encoder[m](...args);
addon['new FdeEncoderHandle'] = (...args) => new addon.FdeEncoderHandle(...args);
const mv = new addon.MultiVectorIndexHandle(encoder, 0);
mv.add(new Int32Array([1]), new Float32Array(8), new Int32Array([1]));
for (const m of ['add', 'remove', 'search', 'searchAsync', 'size', 'memoryBytes', 'exportContents', 'importContents'])
  addon['mv.' + m] = (...args) => mv[m](...args);
addon['new MultiVectorIndexHandle'] = (...args) => new addon.MultiVectorIndexHandle(...args);
const sq = new addon.SqueezedAttentionHandle();
sq.build(new Float32Array(16), new Float32Array(16), 1, 4, 4, 4, 2, 2, 1n);
for (const m of ['build', 'buildAsync', 'attend', 'attendAsync', 'layout', 'memoryBytes'])
  addon['sq.' + m] = (...args) => sq[m](...args);
addon['new SqueezedAttentionHandle'] = (...args) => new addon.SqueezedAttentionHandle(...args);
const kv = new addon.KvCacheHandle(2, 1, 1, 4, 4, 'float32', 'sliding', 3, 0);
kv.append(0, new Float32Array(8), new Float32Array(8), 'float32', 2);
for (const m of ['append', 'attend', 'attendAsync', 'position', 'stored', 'memoryBytes', 'reset'])
  addon['kv.' + m] = (...args) => kv[m](...args);
addon['new KvCacheHandle'] = (...args) => new addon.KvCacheHandle(...args);
const fns = Object.keys(addon).filter((k) => typeof addon[k] === 'function');
const counts = { ok: 0, TypeError: 0, RangeError: 0, Error: 0 };
const pending = [];
for (let trial = 0; trial < 12000; trial++) {
  const name = fns[trial % fns.length];
  const args = Array.from({ length: Math.floor(rand() * 7) }, () => values[Math.floor(rand() * values.length)]());
  try {
    const r = addon[name](...args);
    if (r && typeof r.then === 'function') pending.push(r.then(() => counts.ok++, (e) => { counts[e.constructor.name] = (counts[e.constructor.name] || 0) + 1; }));
    else counts.ok++;
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError || e instanceof Error)) throw new Error('non-error thrown');
    if (e.message.includes('getter ran')) throw new Error('the addon ran user code while checking arguments');
    counts[e.constructor.name] = (counts[e.constructor.name] || 0) + 1;
  }
}
Promise.all(pending).then(() => console.log(JSON.stringify({ fns, counts })));
`;

describe('raw binding', () => {
  it('survives thousands of calls with garbage arguments', () => {
    const r = runNode(script(capabilities().addon));
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { fns, counts } = JSON.parse(r.stdout);
    expect(fns).toEqual(expect.arrayContaining(['matryoshka', 'matryoshkaAsync', 'setThreads', 'rngFill', 'crc32c',
      'hammingTopK', 'sdcTopK', 'residualEncode', 'handle.search', 'handle.importContents', 'new BinaryIndexHandle',
      'chamferScores', 'encoder.encode', 'new FdeEncoderHandle', 'mv.search', 'new MultiVectorIndexHandle']));
    expect(counts.TypeError).toBeGreaterThan(1000);
    expect(counts.RangeError).toBeGreaterThan(10);
    expect(counts.ok).toBeGreaterThan(10);
  });

  it('re-checks shapes the TypeScript layer already checks', () => {
    const r = runNode(`
      const a = require(${JSON.stringify(capabilities().addon)});
      const v = new Float32Array(12);
      const tryIt = (f) => { try { f(); return 'ok'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
      console.log(JSON.stringify([
        tryIt(() => a.matryoshka(v, 5, 2, true)),
        tryIt(() => a.matryoshka(v, 4, 5, true)),
        tryIt(() => a.matryoshka(v, 4, 2, true, new Float32Array(5))),
        tryIt(() => a.matryoshka(v, 4, 2, true, v.subarray(2, 8))),
        tryIt(() => a.matryoshka(v, 4, 2, 'yes')),
        tryIt(() => a.matryoshka(v)),
        tryIt(() => a.setThreads(0)),
        tryIt(() => a.rngFill('normal', 1n, 2n ** 64n - 2n, new Float32Array(4))),
        tryIt(() => a.setSimd('neon')),
      ]));`);
    const out: string[] = JSON.parse(r.stdout);
    expect(out[0]).toMatch(/^RangeError: "vectors" length \(12\) is not a multiple of "dim" \(5\)/);
    expect(out[1]).toMatch(/^RangeError: "keep" \(5\) must not exceed "dim" \(4\)/);
    expect(out[2]).toMatch(/^RangeError: "out" must hold 6 floats/);
    expect(out[3]).toMatch(/^RangeError: "out" overlaps "vectors"/);
    expect(out[4]).toMatch(/^TypeError: Expected "normalize" to be a boolean, got string/);
    expect(out[5]).toMatch(/^TypeError: matryoshka expects 4 to 5 arguments, got 1/);
    expect(out[6]).toMatch(/^RangeError: "threads" must be an integer in \[1, 1024\]/);
    expect(out[7]).toMatch(/^RangeError: "offset" \+ length exceeds/);
    if (process.arch === 'x64') expect(out[8]).toMatch(/^RangeError: "level" neon is not supported/);
  });
});
