import * as os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';

import { capabilities, setSimd, setThreads } from '../src/index.js';
import { runNode } from './helpers.js';

const initialThreads = capabilities().threads;
afterEach(() => {
  setThreads(initialThreads);
  setSimd('auto');
});

describe('capabilities', () => {
  it('reports version, SIMD level, threads and the CUDA state', () => {
    const c = capabilities();
    const pkg = require('../package.json') as { version: string };
    expect(c.version).toBe(pkg.version);
    expect(['scalar', 'avx2', 'avx512', 'avx512-vpopcntdq', 'neon']).toContain(c.simd);
    expect(c.simdAvailable).toContain('scalar');
    expect(c.simdAvailable).toContain(c.simdDetected);
    expect(c.threads).toBe(os.availableParallelism());
    expect(typeof c.cuda).toBe('boolean');
    expect(c.cuda).toBe(c.backend === 'cuda');
    if (c.cuda) expect(typeof c.cudaDevice).toBe('string');
    else expect(c.cudaDevice).toBeUndefined();
    expect(c.addon).toMatch(/\.node$/);
  });

  it('detects what /proc/cpuinfo says on Linux x86-64', () => {
    if (process.platform !== 'linux' || process.arch !== 'x64') return;
    const flags = new Set(require('node:fs').readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)[1].trim().split(/\s+/));
    const has = (...f: string[]) => f.every((x) => flags.has(x));
    const want = !has('avx2', 'fma', 'f16c', 'bmi2')
      ? 'scalar'
      : !has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl')
        ? 'avx2'
        : has('avx512_vpopcntdq', 'avx512_bitalg', 'avx512vbmi')
          ? 'avx512-vpopcntdq'
          : 'avx512';
    expect(capabilities().simdDetected).toBe(want);
  });
});

describe('setThreads', () => {
  it('resizes the pool and reports it', () => {
    expect(setThreads(3)).toBe(3);
    expect(capabilities().threads).toBe(3);
    expect(setThreads(1)).toBe(1);
  });

  it('rejects bad counts', () => {
    expect(() => setThreads(0)).toThrow(RangeError);
    expect(() => setThreads(-2)).toThrow(/"threads" must be an integer from 1 to 1024/);
    expect(() => setThreads(2.5)).toThrow(RangeError);
    expect(() => setThreads(1025)).toThrow(RangeError);
    expect(() => setThreads('2' as never)).toThrow(TypeError);
    expect(() => setThreads(undefined as never)).toThrow(TypeError);
  });
});

describe('setSimd', () => {
  it('lowers dispatch to each available level and restores it with auto', () => {
    for (const level of capabilities().simdAvailable) {
      expect(setSimd(level)).toBe(level);
      expect(capabilities().simd).toBe(level);
    }
    expect(setSimd('auto')).toBe(capabilities().simdDetected);
  });

  it('rejects unknown and unsupported levels', () => {
    expect(() => setSimd('sse9' as never)).toThrow(RangeError);
    expect(() => setSimd(3 as never)).toThrow(TypeError);
    const missing = (['neon', 'avx2', 'avx512', 'avx512-vpopcntdq'] as const).find((l) => !capabilities().simdAvailable.includes(l));
    if (missing) expect(() => setSimd(missing)).toThrow(/not supported by this CPU/);
  });
});

describe('environment', () => {
  const probe = "const t = require('./dist/index.js'); const c = t.capabilities(); console.log(JSON.stringify(c));";

  it('TESSERA_THREADS and TESSERA_SIMD set the defaults', () => {
    const r = runNode(probe, { TESSERA_THREADS: '5', TESSERA_SIMD: 'scalar' });
    expect(r.status).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.threads).toBe(5);
    expect(c.simd).toBe('scalar');
  });

  it('bad values are RangeErrors that name the variable', () => {
    for (const [name, value] of [['TESSERA_THREADS', '0'], ['TESSERA_THREADS', 'many'], ['TESSERA_SIMD', 'sse9'], ['TESSERA_BACKEND', 'tpu']]) {
      const r = runNode(`try { require('./dist/index.js').capabilities(); } catch (e) { console.log(e.name + ': ' + e.message); }`, { [name!]: value });
      expect(r.stdout).toMatch(new RegExp(`^RangeError: ${name}`));
    }
  });
});
