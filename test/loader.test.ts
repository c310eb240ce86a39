import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';

import { capabilities } from '../src/index.js';
import { ROOT, runNode } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-loader-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cpuAddon = path.join(ROOT, 'build', 'Release', 'tessera.node');
const cudaAddon = path.join(ROOT, 'build-cuda', 'Release', 'tessera_cuda.node');

/** A copy of the package (dist, package.json, node_modules link) with chosen addon files, to load from. */
function fakePackage(name: string, version: string, files: Record<string, string>): string {
  const root = path.join(tmp, name);
  fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ ...pkg, version }));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  for (const [to, from] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, to)), { recursive: true });
    fs.copyFileSync(from, path.join(root, to));
  }
  return root;
}

const report = (root: string, env: Record<string, string> = {}) =>
  runNode(
    `try { const t = require(${JSON.stringify(root)}); console.log(JSON.stringify(t.capabilities())); }
     catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`,
    env,
  );

const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const platformDir = `prebuilds/${process.platform}-${process.arch}`;

describe('addon loader', () => {
  it('prefers prebuilds/ over the local build', () => {
    const root = fakePackage('both', version, {
      [`${platformDir}/tessera-native.node`]: cpuAddon,
      'build/Release/tessera.node': cpuAddon,
    });
    const c = JSON.parse(report(root, { TESSERA_BACKEND: 'cpu' }).stdout);
    expect(c.addon).toBe(path.join(root, platformDir, 'tessera-native.node'));
  });

  it('falls back to the local build (node-gyp-build) when no prebuild matches', () => {
    const root = fakePackage('local', version, { 'build/Release/tessera.node': cpuAddon });
    const c = JSON.parse(report(root, { TESSERA_BACKEND: 'cpu' }).stdout);
    expect(c.addon).toBe(path.join(root, 'build', 'Release', 'tessera.node'));
  });

  it('lists every path tried, and why, in one error with a fix', () => {
    const root = fakePackage('stale', '9.9.9', { 'build/Release/tessera.node': cpuAddon });
    const e = JSON.parse(report(root).stdout);
    expect(e.name).toBe('AddonLoadError');
    expect(e.code).toBe('ERR_TESSERA_ADDON');
    expect(e.message).toContain(`${path.join(root, 'build-cuda', 'Release', 'tessera_cuda.node')}: not found`);
    expect(e.message).toContain(`${path.join(root, platformDir)}: not found`);
    expect(e.message).toContain(`${path.join(root, 'build', 'Release', 'tessera.node')}: stale: built from version ${version}, the package is 9.9.9`);
    expect(e.message).toMatch(/npm rebuild tessera-native/);
    expect(e.message).toMatch(/TESSERA_NATIVE_PATH/);
  });

  it('reports an unloadable file and a missing explicit path', () => {
    const root = fakePackage('broken', version, { 'build/Release/tessera.node': path.join(ROOT, 'package.json') });
    const e = JSON.parse(report(root, { TESSERA_BACKEND: 'cpu' }).stdout);
    expect(e.message).toMatch(/tessera\.node: failed to load: .*(invalid ELF|file too short|not a valid)/i);
    const missing = JSON.parse(report(ROOT, { TESSERA_NATIVE_PATH: path.join(tmp, 'none.node') }).stdout);
    expect(missing.message).toContain(`${path.join(tmp, 'none.node')}: not found`);
  });

  it('passes over an addon with an unresolved symbol instead of dying at its first call (RTLD_NOW)', () => {
    // A shared object whose initialiser calls a function no library defines: with lazy binding the process would
    // abort inside it; resolved at load time, it is one more failed attempt and the CPU addon is used.
    const broken = path.join(tmp, 'missing-symbol.node');
    const source = 'extern "C" void tessera_no_such_symbol(); __attribute__((constructor)) static void init() { tessera_no_such_symbol(); }';
    const cc = spawnSync('g++', ['-shared', '-fPIC', '-x', 'c++', '-', '-o', broken], { input: source });
    if (cc.error || cc.status !== 0) return;  // no compiler here: nothing to build the broken addon with
    const root = fakePackage('unresolved', version, { 'build-cuda/Release/tessera_cuda.node': broken, 'build/Release/tessera.node': cpuAddon });
    const r = report(root, { TESSERA_BACKEND: 'auto' });
    expect(r.status).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.backend).toBe('cpu');
    expect(c.addon).toBe(path.join(root, 'build', 'Release', 'tessera.node'));
  });

  it('TESSERA_NATIVE_PATH loads exactly that file', () => {
    const c = JSON.parse(report(ROOT, { TESSERA_NATIVE_PATH: cpuAddon }).stdout);
    expect(c.addon).toBe(cpuAddon);
    expect(c.backend).toBe('cpu');
  });
});

describe('CUDA fallback', () => {
  const cudaUsable = capabilities().cuda;

  it.skipIf(cudaUsable)('without a usable device, auto falls back to the CPU addon and cuda=false', () => {
    const c = JSON.parse(report(ROOT).stdout);
    expect(c.cuda).toBe(false);
    expect(c.backend).toBe('cpu');
    expect(c.cudaDevice).toBeUndefined();
    expect(path.basename(c.addon)).not.toMatch(/cuda/);
  });

  it.skipIf(cudaUsable)('without a usable device, TESSERA_BACKEND=cuda fails and says why', () => {
    const e = JSON.parse(report(ROOT, { TESSERA_BACKEND: 'cuda' }).stdout);
    expect(e.code).toBe('ERR_TESSERA_ADDON');
    expect(e.message).toContain(cudaAddon);
    expect(e.message).toMatch(fs.existsSync(cudaAddon) ? /loaded, but no usable device/ : /not found/);
    expect(e.message).toMatch(/npm run build:cuda/);
  });

  it('TESSERA_BACKEND=cpu never loads the CUDA addon', () => {
    const r = runNode(
      `const { addon } = require('./dist/native/load.js'); console.log(JSON.stringify(addon().attempts.map((a) => a.path)));`,
      { TESSERA_BACKEND: 'cpu' },
    );
    expect(JSON.parse(r.stdout).some((p: string) => p.includes('cuda'))).toBe(false);
  });
});
