// The CUDA addon: built by `npm run build:cuda` where nvcc exists. Without a GPU these tests check that it loads and
// reports why it cannot run; the device tests skip.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { ROOT, randomFloats, runNode, sameBytes } from './helpers.js';
import { matryoshka } from '../src/index.js';

const cudaAddon = path.join(ROOT, 'build-cuda', 'Release', 'tessera_cuda.node');
const built = fs.existsSync(cudaAddon);
const probe = built
  ? JSON.parse(runNode(`console.log(JSON.stringify(require(${JSON.stringify(cudaAddon)}).cudaProbe()))`).stdout)
  : undefined;
const usable = Boolean(probe?.usable);

describe.skipIf(!built)('CUDA addon (built)', () => {
  it('loads without a device and explains itself', () => {
    expect(typeof probe.usable).toBe('boolean');
    expect(probe.runtimeVersion).toBeGreaterThanOrEqual(12000);
    if (!probe.usable) expect(probe.error).not.toBe('');
  });

  it('carries the same CPU kernels as the CPU addon', () => {
    const input = randomFloats(50 * 24, 3);
    const r = runNode(
      `const a = require(${JSON.stringify(cudaAddon)});
       const input = new Float32Array(${JSON.stringify(Array.from(input))});
       process.stdout.write(Buffer.from(a.matryoshka(input, 24, 10, true).buffer).toString('hex'));`,
    );
    const fromCuda = new Float32Array(Uint8Array.from(Buffer.from(r.stdout, 'hex')).buffer);
    expect(sameBytes(fromCuda, matryoshka(input, { dim: 24, keep: 10 }))).toBe(true);
  });

  it('is compiled for sm_90 and links the CUDA runtime statically', () => {
    const bytes = fs.readFileSync(cudaAddon).toString('latin1');
    expect(bytes).toContain('sm_90');
    expect(bytes).toContain('cudaGetDeviceCount');
    const cpu = fs.readFileSync(path.join(ROOT, 'build', 'Release', 'tessera.node')).toString('latin1');
    expect(cpu).not.toContain('cudaGetDeviceCount');
  });
});

describe.skipIf(!usable)('CUDA device', () => {
  it('runs the probe kernel on device 0', () => {
    expect(probe.deviceCount).toBeGreaterThan(0);
    expect(probe.name).not.toBe('');
    expect(Number(probe.computeCapability)).toBeGreaterThanOrEqual(8);
  });
});
