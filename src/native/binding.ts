// The raw addon's shape. Only src/ talks to it, after validating arguments; the addon validates again.

export type SimdLevelName = 'scalar' | 'neon' | 'avx2' | 'avx512' | 'avx512-vpopcntdq';

export interface NativeCapabilities {
  simd: SimdLevelName;
  simdDetected: SimdLevelName;
  simdAvailable: SimdLevelName[];
  threads: number;
  maxThreads: number;
  cudaBuild: boolean;
}

export interface CudaProbe {
  deviceCount: number;
  usable: boolean;
  name: string;
  computeCapability: string;
  memoryBytes: number;
  driverVersion: number;
  runtimeVersion: number;
  error: string;
}

export type RngKind = 'u64' | 'uniform' | 'normal' | 'signs';

export interface Binding {
  readonly version: string;
  readonly rngAlgorithmVersion: number;
  capabilities(): NativeCapabilities;
  setThreads(threads: number): number;
  setSimd(level: SimdLevelName): SimdLevelName;
  rngFill(kind: 'u64', seed: bigint, offset: bigint, out: BigUint64Array): BigUint64Array;
  rngFill(kind: Exclude<RngKind, 'u64'>, seed: bigint, offset: bigint, out: Float32Array): Float32Array;
  rngDerive(seed: bigint, label: bigint): bigint;
  crc32c(data: ArrayBufferView | ArrayBuffer, crc?: number): number;
  /** Threaded memcpy: the memory-bandwidth yardstick of bench/. */
  copyBytes(dst: ArrayBufferView | ArrayBuffer, src: ArrayBufferView | ArrayBuffer): void;
  matryoshka(vectors: Float32Array, dim: number, keep: number, normalize: boolean, out?: Float32Array): Float32Array;
  matryoshkaAsync(
    vectors: Float32Array,
    dim: number,
    keep: number,
    normalize: boolean,
    out?: Float32Array,
  ): Promise<Float32Array>;
  /** Present in the CUDA addon only. */
  cudaProbe?(): CudaProbe;
}
