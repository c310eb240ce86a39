// Access to the CUDA backend for the device classes (CudaBinaryIndex, CudaFdeEncoder, CudaMultiVectorIndex).
import type { Binding } from '../native/binding.js';
import { addon } from '../native/load.js';

/** Thrown when a device class is used where no CUDA device answers; the message says why. */
export class CudaUnavailableError extends Error {
  readonly code = 'ERR_TESSERA_NO_CUDA';
  constructor(reason: string) {
    super(`the CUDA backend is not available: ${reason}`);
    this.name = 'CudaUnavailableError';
  }
}

/** The most results per query a device top-k keeps (its per-warp lists live in shared memory). */
export const CUDA_MAX_K = 1024;

/** True when the CUDA addon is loaded and its probe kernel ran on a device (capabilities().cuda). */
export function cudaAvailable(): boolean {
  return addon().backend === 'cuda';
}

/** Where a call runs: 'cpu' (the default) or 'cuda' (host arrays are copied to the device and back). */
export type Device = 'cpu' | 'cuda';

/** Reads a `device` option: undefined or 'cpu' is the CPU; 'cuda' the device; anything else a RangeError. */
export function expectDevice(value: unknown): Device {
  if (value === undefined || value === 'cpu') return 'cpu';
  if (value === 'cuda') return 'cuda';
  throw new RangeError(`"device" must be 'cpu' or 'cuda', got ${typeof value === 'string' ? `'${value}'` : typeof value}`);
}

type CudaKernels = Required<Pick<Binding, 'cudaAttention' | 'cudaAttentionAsync' | 'cudaApplyRope' | 'cudaApplyRopeAsync' |
  'cudaMergeAttentionStates' | 'cudaMergeAttentionStatesAsync' | 'cudaAttentionLastKernelMs'>>;

/** The device versions of attention, RoPE and the LSE merge; throws CudaUnavailableError saying why. */
export function cudaKernels(): CudaKernels {
  const b = usableCudaAddon();
  if (!b.cudaAttention || !b.cudaApplyRope || !b.cudaMergeAttentionStates) {
    throw new CudaUnavailableError(`the CUDA addon at ${addon().path} predates the device attention; rebuild it`);
  }
  return b as CudaKernels;
}

/** Device milliseconds of the last attention, RoPE or merge call's kernels on the device (CUDA events). */
export function cudaLastKernelMs(): number {
  return cudaKernels().cudaAttentionLastKernelMs();
}

function usableCudaAddon(): Binding {
  const loaded = addon();
  if (loaded.backend !== 'cuda') {
    const why = loaded.cuda
      ? `the CUDA addon loaded but found no usable device (${loaded.cuda.error})`
      : 'the CPU addon is loaded (build the CUDA one with `npm run build:cuda` on a machine with nvcc; it is used ' +
        'when a device answers, unless TESSERA_BACKEND=cpu)';
    throw new CudaUnavailableError(why);
  }
  return loaded.binding;
}

/**
 * Finishes building a device object: runs and waits for its handle's load (the device upload, on a worker thread) and
 * returns it, or disposes it and rethrows, so a failed upload never leaves device memory held.
 */
export async function afterLoad<T extends { dispose(): void }>(object: T, load: () => Promise<void> | undefined): Promise<T> {
  try {
    await load();
  } catch (e) {
    object.dispose();
    throw e;
  }
  return object;
}

type CudaBinding = Required<Pick<Binding, 'CudaCodesHandle' | 'CudaFdeHandle' | 'CudaMultiVectorsHandle'>>;

/** The loaded addon's device handles; throws CudaUnavailableError, saying why, when there is no usable device. */
export function cudaBinding(): CudaBinding {
  const b = usableCudaAddon();
  if (!b.CudaCodesHandle || !b.CudaFdeHandle || !b.CudaMultiVectorsHandle) {
    throw new CudaUnavailableError(`the CUDA addon at ${addon().path} predates the device classes; rebuild it`);
  }
  return b as CudaBinding;
}
