// FDE encoding on a CUDA device, with the CPU encoder's configuration and random matrices.
import type { CudaFdeHandle } from '../native/binding.js';
import { afterLoad, cudaBinding } from '../core/cuda.js';
import { NativeResource } from '../core/resource.js';
import { typeName } from '../core/validate.js';
import { checkClouds, encoderHandle, FdeEncoder } from './encoder.js';

/**
 * A device twin of an FdeEncoder: the same configuration and the same matrices (generated on the host by Tessera's
 * generator and copied to the device), encoding batches of point clouds on the GPU. Encodings agree with the CPU
 * encoder's to float tolerance: the projected sums are added in the same order, but the SimHash dot products are
 * not, so a token whose projection is within rounding of zero may land in a neighbouring partition.
 */
export class CudaFdeEncoder extends NativeResource<CudaFdeHandle> {
  readonly dim: number;
  readonly outputDim: number;

  private constructor(handle: CudaFdeHandle, encoder: FdeEncoder) {
    super(handle, (h) => h.release());
    this.dim = encoder.dim;
    this.outputDim = encoder.outputDim;
  }

  /** Copies the encoder's matrices to the device. The encoder may be disposed afterwards. */
  static async create(encoder: FdeEncoder): Promise<CudaFdeEncoder> {
    if (!(encoder instanceof FdeEncoder)) throw new TypeError(`Expected "encoder" to be an FdeEncoder, got ${typeName(encoder)}`);
    const handle = new (cudaBinding().CudaFdeHandle)();
    return afterLoad(new CudaFdeEncoder(handle, encoder), () =>
      handle.load(encoderHandle(encoder), true));
  }

  /** Document encodings (means per partition, empty ones filled as configured): clouds × outputDim floats. */
  async encodeDocumentsAsync(tokens: Float32Array, lengths: Int32Array): Promise<Float32Array> {
    checkClouds(tokens, lengths, this.dim);
    return this.handle.encode(tokens, lengths, true, true);
  }

  /** Query encodings (sums per partition). */
  async encodeQueriesAsync(tokens: Float32Array, lengths: Int32Array): Promise<Float32Array> {
    checkClouds(tokens, lengths, this.dim);
    return this.handle.encode(tokens, lengths, false, true);
  }

  /** encodeDocumentsAsync() on the calling thread, which waits for the device. */
  encodeDocuments(tokens: Float32Array, lengths: Int32Array): Float32Array {
    checkClouds(tokens, lengths, this.dim);
    return this.handle.encode(tokens, lengths, true, false) as Float32Array;
  }

  encodeQueries(tokens: Float32Array, lengths: Int32Array): Float32Array {
    checkClouds(tokens, lengths, this.dim);
    return this.handle.encode(tokens, lengths, false, false) as Float32Array;
  }

  /** Device memory held: the matrices and the reusable batch buffers. */
  get deviceBytes(): number {
    return this.handle.deviceBytes();
  }

  /** Device milliseconds of the last completed call's kernels (CUDA events; host copies excluded). */
  get lastKernelMs(): number {
    return this.handle.lastKernelMs();
  }
}
