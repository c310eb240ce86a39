// Finds, loads and configures the native addon, once, on first use.
//
// Order: TESSERA_NATIVE_PATH if set (nothing else is tried); else the CUDA addon when TESSERA_BACKEND allows it and a
// device answers; else the CPU addon from prebuilds/ and then from the local build (node-gyp-build). Every path
// tried and why it was passed over is kept, for capabilities() and for the one error thrown when nothing loads.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Binding, CudaProbe, SimdLevelName } from './binding.js';

export type Backend = 'cpu' | 'cuda';

export interface LoadAttempt {
  path: string;
  outcome: string;
}

export interface LoadedAddon {
  binding: Binding;
  path: string;
  backend: Backend;
  /** What the CUDA addon reported, when one was found (also when it was passed over). */
  cuda: CudaProbe | undefined;
  attempts: LoadAttempt[];
}

/** Thrown when no addon loads; `attempts` lists every path tried and why it failed. */
export class AddonLoadError extends Error {
  readonly code = 'ERR_TESSERA_ADDON';
  constructor(
    message: string,
    readonly attempts: LoadAttempt[],
  ) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

export const packageRoot = path.resolve(__dirname, '..', '..');
const requireFromHere = createRequire(__filename);
const platformTuple = `${process.platform}-${process.arch}`;

function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

/**
 * Opens an addon with every symbol resolved at load time (RTLD_NOW where the platform has it): an addon built
 * against a stale source list, or a CUDA addon whose libraries are missing a symbol, then fails here with an error
 * the loader records and passes over, instead of killing the process at its first call into the missing symbol.
 */
function openAddon(file: string): Binding {
  const now = os.constants.dlopen?.RTLD_NOW;
  if (now === undefined) return requireFromHere(file) as Binding;
  const module = { exports: {} };
  process.dlopen(module, file, now);
  return module.exports as Binding;
}

/** Loads one addon file; returns the binding, or records why not. */
function tryLoad(file: string, version: string, attempts: LoadAttempt[]): Binding | undefined {
  if (!fs.existsSync(file)) {
    attempts.push({ path: file, outcome: 'not found' });
    return undefined;
  }
  let binding: Binding;
  try {
    binding = openAddon(file);
  } catch (e) {
    attempts.push({ path: file, outcome: `failed to load: ${errorText(e)}` });
    return undefined;
  }
  if (binding.version !== version) {
    attempts.push({ path: file, outcome: `stale: built from version ${binding.version}, the package is ${version}` });
    return undefined;
  }
  return binding;
}

function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return process.platform === 'linux' && !report?.header?.glibcVersionRuntime;
}

/** prebuildify's files for this platform, most specific first, CUDA builds excluded. */
function prebuildCandidates(): string[] {
  const dir = path.join(packageRoot, 'prebuilds', platformTuple);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.node') && !n.includes('cuda'));
  } catch {
    return [dir];  // reported as "not found"
  }
  const tagsOf = (n: string) => n.split('.').slice(1, -1);
  const needsLibc = names.some((n) => tagsOf(n).some((t) => t === 'musl' || t === 'glibc'));
  const libc = needsLibc ? (isMusl() ? 'musl' : 'glibc') : undefined;
  const usable = names.filter((n) => {
    const tags = tagsOf(n);
    return !(libc && ((tags.includes('musl') && libc !== 'musl') || (tags.includes('glibc') && libc !== 'glibc')));
  });
  const score = (n: string) => tagsOf(n).length;
  return (usable.length ? usable : names).sort((a, b) => score(b) - score(a)).map((n) => path.join(dir, n));
}

function localBuildCandidate(attempts: LoadAttempt[]): string | undefined {
  try {
    const nodeGypBuild = requireFromHere('node-gyp-build') as { path(dir: string): string };
    return nodeGypBuild.path(packageRoot);
  } catch (e) {
    attempts.push({ path: path.join(packageRoot, 'build', 'Release'), outcome: `no local build: ${errorText(e)}` });
    return undefined;
  }
}

function backendPreference(): 'auto' | Backend {
  const v = process.env.TESSERA_BACKEND ?? 'auto';
  if (v !== 'auto' && v !== 'cpu' && v !== 'cuda') {
    throw new RangeError(`TESSERA_BACKEND must be one of auto, cpu, cuda, got "${v}"`);
  }
  return v;
}

function loadCuda(version: string, attempts: LoadAttempt[]): LoadedAddon | { probe: CudaProbe | undefined } {
  const files = [
    path.join(packageRoot, 'build-cuda', 'Release', 'tessera_cuda.node'),
    path.join(packageRoot, 'prebuilds', platformTuple, 'tessera_cuda.node'),
  ];
  let lastProbe: CudaProbe | undefined;
  for (const file of files) {
    const binding = tryLoad(file, version, attempts);
    if (!binding) continue;
    if (typeof binding.cudaProbe !== 'function') {
      attempts.push({ path: file, outcome: 'not a CUDA build' });
      continue;
    }
    const probe = binding.cudaProbe();
    lastProbe = probe;
    if (probe.usable) return { binding, path: file, backend: 'cuda', cuda: probe, attempts };
    attempts.push({ path: file, outcome: `loaded, but no usable device: ${probe.error}` });
  }
  return { probe: lastProbe };
}

function describeFailure(attempts: LoadAttempt[], preference: string): string {
  const lines = attempts.map((a) => `  - ${a.path}: ${a.outcome}`);
  const fix =
    preference === 'cuda'
      ? 'TESSERA_BACKEND=cuda needs the CUDA addon (npm run build:cuda) and a working NVIDIA driver and device; ' +
        'unset it to fall back to the CPU.'
      : 'Reinstall to compile it from source (npm rebuild tessera-native; needs python3, make and a C++20 compiler), ' +
        'or point TESSERA_NATIVE_PATH at a built tessera.node.';
  return `tessera-native could not load its native addon (${platformTuple}, Node ${process.version}). Tried:\n${lines.join('\n')}\n${fix}`;
}

export function loadAddon(): LoadedAddon {
  const version = packageVersion();
  const attempts: LoadAttempt[] = [];
  const explicit = process.env.TESSERA_NATIVE_PATH;
  if (explicit) {
    const file = path.resolve(explicit);
    const binding = tryLoad(file, version, attempts);
    if (!binding) throw new AddonLoadError(describeFailure(attempts, 'explicit'), attempts);
    const probe = binding.cudaProbe?.();
    const backend: Backend = probe?.usable ? 'cuda' : 'cpu';
    return { binding, path: file, backend, cuda: probe, attempts };
  }

  const preference = backendPreference();
  let cudaProbe: CudaProbe | undefined;
  if (preference !== 'cpu') {
    const cuda = loadCuda(version, attempts);
    if ('binding' in cuda) return cuda;
    cudaProbe = cuda.probe;
    if (preference === 'cuda') throw new AddonLoadError(describeFailure(attempts, 'cuda'), attempts);
  }
  const candidates = [...prebuildCandidates()];
  const local = localBuildCandidate(attempts);
  if (local && !candidates.includes(local)) candidates.push(local);
  for (const file of candidates) {
    const binding = tryLoad(file, version, attempts);
    if (binding) return { binding, path: file, backend: 'cpu', cuda: cudaProbe, attempts };
  }
  throw new AddonLoadError(describeFailure(attempts, preference), attempts);
}

/** Thread count and dispatch level from the environment, else one thread per available core. */
export function configureFromEnvironment(binding: Binding): void {
  const threadsVar = process.env.TESSERA_THREADS;
  let threads = os.availableParallelism();
  if (threadsVar !== undefined && threadsVar !== '') {
    threads = Number(threadsVar);
    if (!Number.isInteger(threads) || threads < 1 || threads > binding.capabilities().maxThreads) {
      throw new RangeError(`TESSERA_THREADS must be an integer from 1 to ${binding.capabilities().maxThreads}, got "${threadsVar}"`);
    }
  }
  binding.setThreads(Math.min(threads, binding.capabilities().maxThreads));
  const simd = process.env.TESSERA_SIMD;
  if (simd !== undefined && simd !== '' && simd !== 'auto') {
    const available = binding.capabilities().simdAvailable;
    if (!available.includes(simd as SimdLevelName)) {
      throw new RangeError(`TESSERA_SIMD must be auto or one of ${available.join(', ')} on this CPU, got "${simd}"`);
    }
    binding.setSimd(simd as SimdLevelName);
  }
}

let loaded: LoadedAddon | undefined;

/** The loaded addon (loading it on first use). */
export function addon(): LoadedAddon {
  if (!loaded) {
    const candidate = loadAddon();
    configureFromEnvironment(candidate.binding);
    loaded = candidate;
  }
  return loaded;
}

export function binding(): Binding {
  return addon().binding;
}
