// The package as users load it: CommonJS require and ESM import of 'tessera-native' (self-reference through
// package.json "exports"), the same instance either way, and type declarations for both.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';

import { ROOT, runNode } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-types-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('package entry points', () => {
  it('require() and import() both work and share one module instance', () => {
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `
        import { createRequire } from 'node:module';
        import * as esm from 'tessera-native';
        const cjs = createRequire(import.meta.url)('tessera-native');
        const v = esm.matryoshka(new Float32Array([3, 4, 1]), { dim: 3, keep: 2 });
        console.log(JSON.stringify({ same: esm.matryoshka === cjs.matryoshka && esm.Rng === cjs.Rng, v: Array.from(v), simd: esm.capabilities().simd }));
      `],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.same).toBe(true);
    expect(out.v).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });

  it('ESM exports every name the CommonJS entry exports', () => {
    const cjs = Object.keys(require('../dist/index.js')).sort();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "import * as t from 'tessera-native'; console.log(JSON.stringify(Object.keys(t).filter((k) => k !== 'default').sort()))"], { cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toEqual(cjs);
  });

  it('ships type declarations that type-check from CommonJS and ESM consumers', () => {
    const consumer = `
      const v: Float32Array = t.matryoshka(new Float32Array(4), { dim: 4, keep: 2 });
      const c: t.Capabilities = t.capabilities();
      const r: t.Rng = new t.Rng(1n);
      const simd: 'scalar' | 'neon' | 'avx2' | 'avx512' | 'avx512-vpopcntdq' = c.simd;
      const p: Promise<Float32Array> = t.l2NormalizeAsync(v, { dim: 2 });
      // @ts-expect-error keep is required
      t.matryoshka(v, { dim: 4 });
      export { v, r, simd, p };
    `;
    fs.writeFileSync(path.join(tmp, 'esm.mts'), `import * as t from 'tessera-native';\n${consumer}`);
    fs.writeFileSync(path.join(tmp, 'cjs.cts'), `import t = require('tessera-native');\n${consumer}`);
    fs.mkdirSync(path.join(tmp, 'node_modules'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(tmp, 'node_modules', 'tessera-native'));
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(tmp, 'node_modules', '@types'));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', 'esm.mts', 'cjs.cts'], { cwd: tmp, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('loads in a worker thread', () => {
    const r = runNode(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker("const t = require('tessera-native'); require('node:worker_threads').parentPort.postMessage(Array.from(t.l2Normalize(new Float32Array([0, 2]), { dim: 2 })))", { eval: true });
      w.on('message', (m) => { console.log(JSON.stringify(m)); w.terminate(); });`);
    expect(JSON.parse(r.stdout)).toEqual([0, 1]);
  });
});
