// What this build and machine can do, and the process-wide knobs: threads and the SIMD dispatch level.
import type { SimdLevelName } from '../native/binding.js';
import { addon, binding } from '../native/load.js';
import { expectInteger, expectOneOf } from './validate.js';

export type SimdLevel = SimdLevelName;

export interface Capabilities {
  /** The package version (the addon is checked to match it when loaded). */
  version: string;
  /** The instruction-set level kernels dispatch on now. */
  simd: SimdLevel;
  /** The best level this CPU supports, and every level it can run. */
  simdDetected: SimdLevel;
  simdAvailable: SimdLevel[];
  /** Threads of the native pool (the calling thread included). */
  threads: number;
  /** True when the CUDA addon is loaded and its probe kernel ran on a device. */
  cuda: boolean;
  /** The CUDA device's name, when cuda is true. */
  cudaDevice?: string;
  /** Which addon file is loaded. */
  addon: string;
  backend: 'cpu' | 'cuda';
}

export function capabilities(): Capabilities {
  const loaded = addon();
  const native = loaded.binding.capabilities();
  const caps: Capabilities = {
    version: loaded.binding.version,
    simd: native.simd,
    simdDetected: native.simdDetected,
    simdAvailable: native.simdAvailable,
    threads: native.threads,
    cuda: loaded.backend === 'cuda',
    addon: loaded.path,
    backend: loaded.backend,
  };
  if (loaded.backend === 'cuda' && loaded.cuda) caps.cudaDevice = loaded.cuda.name;
  return caps;
}

/**
 * Sets the size of the native thread pool (the calling thread counts as one). Results do not depend on it: kernels
 * split work at fixed boundaries. The default is os.availableParallelism(), or TESSERA_THREADS when set.
 * Returns the new count.
 */
export function setThreads(threads: number): number {
  const max = binding().capabilities().maxThreads;
  return binding().setThreads(expectInteger(threads, 'threads', 1, max));
}

/**
 * Lowers the instruction-set level kernels use (for comparing paths, or working around a CPU erratum), or restores
 * the detected one with 'auto'. Asking for a level the CPU lacks is a RangeError. Returns the level now in use.
 */
export function setSimd(level: SimdLevel | 'auto'): SimdLevel {
  const caps = binding().capabilities();
  const wanted = expectOneOf(level, 'level', ['auto', 'scalar', 'neon', 'avx2', 'avx512', 'avx512-vpopcntdq'] as const);
  if (wanted === 'auto') return binding().setSimd(caps.simdDetected);
  if (!caps.simdAvailable.includes(wanted)) {
    throw new RangeError(`"level" ${wanted} is not supported by this CPU (available: ${caps.simdAvailable.join(', ')})`);
  }
  return binding().setSimd(wanted);
}
