import { describe, expect, it } from 'vitest';

import { Rng, RNG_ALGORITHM_VERSION, setThreads, capabilities } from '../src/index.js';
import { sameBytes, splitmixMix as mix, splitmixU64 as u64, SPLITMIX_GAMMA as GAMMA, U64_MASK as M } from './helpers.js';

// Uniforms and normals from the independent BigInt generator model (helpers.ts), as native/include/tessera/rng.h specifies them.
const uniform01 = (u: bigint) => Number(u >> 11n) * 2 ** -53;
const uniform01f = (u: bigint) => Number(u >> 40n) * 2 ** -24;
function normal(seed: bigint, i: bigint): number {
  const j = i / 2n;
  const r = Math.sqrt(-2 * Math.log1p(-uniform01(u64(seed, 2n * j))));
  const t = 2 * Math.PI * uniform01(u64(seed, 2n * j + 1n));
  return i % 2n === 0n ? r * Math.cos(t) : r * Math.sin(t);
}

describe('Rng', () => {
  it('is SplitMix64: Vigna reference values from state 1234567', () => {
    expect(Array.from(new Rng(1234567).uint64(5))).toEqual([
      6457827717110365317n, 3203168211198807973n, 9817491932198370423n, 4593380528125082431n, 16408922859458223821n,
    ]);
    expect(RNG_ALGORITHM_VERSION).toBe(1);
  });

  it('follows the specification for uniform, signs and normal draws', () => {
    const seed = 0xfeedfacecafebeefn;
    const r = new Rng(seed);
    const u = r.uniform(1001);
    const s = r.signs(7);
    const g = r.normal(2001);
    u.forEach((x, i) => expect(x).toBe(uniform01f(u64(seed, BigInt(i)))));
    s.forEach((x, i) => expect(x).toBe(u64(seed, 1001n + BigInt(i)) >> 63n ? -1 : 1));
    // Normal draws start on an even counter: 1001 + 7 = 1008 is even already.
    let worst = 0;
    g.forEach((x, i) => {
      const want = Math.fround(normal(seed, 1008n + BigInt(i)));
      worst = Math.max(worst, Math.abs(x - want) / Math.max(Math.abs(want), 1e-30));
    });
    // Same float64 formula; libm and V8 may differ in the last bit of log/cos/sin before rounding to float32.
    expect(worst).toBeLessThanOrEqual(2 ** -23);
    expect(r.position).toBe(1008n + 2002n);  // 2001 normals round up to whole pairs
  });

  it('never reuses a counter across kinds of draw', () => {
    const r = new Rng(5);
    r.uniform(1);
    const before = r.position;
    r.normal(1);
    expect(before).toBe(1n);
    expect(r.position).toBe(4n);  // rounded up to 2, then one pair
  });

  it('is identical for any thread count and in chunks or at once', () => {
    const initial = capabilities().threads;
    try {
      setThreads(1);
      const one = new Rng(77).normal(100_001);
      setThreads(6);
      const many = new Rng(77).normal(100_001);
      expect(sameBytes(one, many)).toBe(true);
      const chunked = new Rng(77);
      const parts = [chunked.uniform(3), chunked.uniform(1000), chunked.uniform(5)];
      const whole = new Rng(77).uniform(1008);
      expect(sameBytes(Float32Array.from(parts.flatMap((p) => Array.from(p))), whole)).toBe(true);
    } finally {
      setThreads(initial);
    }
  });

  it('derives independent streams as specified', () => {
    const r = new Rng(42n);
    const d = r.derive(7);
    expect(d.seed).toBe(mix(42n ^ mix((7n + GAMMA) & M)));
    expect(d.uint64(1)[0]).not.toBe(r.uint64(1)[0]);
  });

  it('has sane statistics', () => {
    const u = new Rng(9).uniform(1 << 20);
    const mean = u.reduce((a, b) => a + b, 0) / u.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.003);  // standard error 2.8e-4
    const s = new Rng(9).signs(1 << 20);
    expect(Math.abs(s.reduce((a, b) => a + b, 0)) / s.length).toBeLessThan(0.005);  // standard error 1e-3
  });

  it('rejects bad seeds and counts', () => {
    expect(() => new Rng(-1)).toThrow(RangeError);
    expect(() => new Rng(1.5)).toThrow(RangeError);
    expect(() => new Rng(1n << 64n)).toThrow(RangeError);
    expect(() => new Rng('1' as never)).toThrow(TypeError);
    expect(() => new Rng(1).uniform(-1)).toThrow(RangeError);
    expect(() => new Rng(1).uniform(new Float64Array(2) as never)).toThrow(TypeError);
    expect(() => new Rng(1).derive(-3)).toThrow(RangeError);
  });
});
