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
  /** Threaded read of every byte: the read-bandwidth yardstick of bench/. */
  readBytes(data: ArrayBufferView | ArrayBuffer): number;
  /** About `flops` fused-multiply-add flops over the pool: the FMA-peak yardstick of bench/. */
  fmaWork(flops: number): number;
  matryoshka(vectors: Float32Array, dim: number, keep: number, normalize: boolean, out?: Float32Array): Float32Array;
  matryoshkaAsync(
    vectors: Float32Array,
    dim: number,
    keep: number,
    normalize: boolean,
    out?: Float32Array,
  ): Promise<Float32Array>;
  packSigns(x: Float32Array, dim: number, msb: boolean, threshold: number, out?: Uint8Array): Uint8Array;
  unpackSigns(codes: Uint8Array, dim: number, msb: boolean, out?: Float32Array): Float32Array;
  hammingTopK(queries: Uint8Array, codes: Uint8Array, bits: number, k: number, msb: boolean): HammingResult;
  hammingTopKAsync(queries: Uint8Array, codes: Uint8Array, bits: number, k: number, msb: boolean): Promise<HammingResult>;
  residualEncode(x: Float32Array, dim: number, bits: number, center?: Float32Array, out?: Uint8Array): Uint8Array;
  residualEncodeAsync(x: Float32Array, dim: number, bits: number, center?: Float32Array, out?: Uint8Array): Promise<Uint8Array>;
  residualDecode(codes: Uint8Array, dim: number, bits: number, center?: Float32Array, out?: Float32Array): Float32Array;
  residualDecodeAsync(codes: Uint8Array, dim: number, bits: number, center?: Float32Array, out?: Float32Array): Promise<Float32Array>;
  sdcTopK(queryCodes: Uint8Array, docCodes: Uint8Array, dim: number, bits: number, k: number): ScoreResult;
  sdcTopKAsync(queryCodes: Uint8Array, docCodes: Uint8Array, dim: number, bits: number, k: number): Promise<ScoreResult>;
  adcTopK(queries: Float32Array, docCodes: Uint8Array, dim: number, bits: number, k: number): ScoreResult;
  adcTopKAsync(queries: Float32Array, docCodes: Uint8Array, dim: number, bits: number, k: number): Promise<ScoreResult>;
  /** XOR + popcount of `bytes` bytes in L1 over the pool: the Hamming scan's compute ceiling, timed by bench/. */
  popcountWork(bytes: number): number;
  BinaryIndexHandle: new (dim: number, bits: number, store: string, similarity: string) => BinaryIndexHandle;
  KvCacheHandle: new (
    layers: number,
    batch: number,
    headsKV: number,
    headDim: number,
    headDimV: number,
    dtype: string,
    eviction: string,
    window: number,
    globalTokens: number,
  ) => KvCacheHandle;
  FdeEncoderHandle: new (
    dim: number,
    repetitions: number,
    simhashBits: number,
    projection: string,
    projectionDim: number,
    finalDim: number,
    seed: bigint,
    fillEmpty: boolean,
    simhash?: Float32Array,
    projectionMatrix?: Float32Array,
    finalBucket?: Int32Array,
    finalSign?: Float32Array,
  ) => FdeEncoderHandle;
  chamferScores(query: Float32Array, docs: Float32Array, lengths: Int32Array, dim: number): Float32Array;
  chamferScoresAsync(query: Float32Array, docs: Float32Array, lengths: Int32Array, dim: number): Promise<Float32Array>;
  MultiVectorIndexHandle: new (encoder: FdeEncoderHandle, fdeBits: number) => MultiVectorIndexHandle;
  applyRope(...args: RopeArgs): Float32Array | Uint16Array;
  applyRopeAsync(...args: RopeArgs): Promise<Float32Array | Uint16Array>;
  ropeCosSin(
    positions: Int32Array | Float32Array | Float64Array,
    invFreq: Float64Array,
    attentionFactor: number,
  ): { cos: Float32Array; sin: Float32Array };
  attention(...args: AttentionArgs): Float32Array | Uint16Array;
  poolTokens(...args: PoolTokensArgs): Float32Array;
  poolTokensAsync(...args: PoolTokensArgs): Promise<Float32Array>;
  latentAttentionPool(...args: LatentAttentionArgs): Float32Array;
  latentAttentionPoolAsync(...args: LatentAttentionArgs): Promise<Float32Array>;
  attentiveStatsPool(...args: StatsPoolArgs): Float32Array;
  attentiveStatsPoolAsync(...args: StatsPoolArgs): Promise<Float32Array>;
  targetAttention(...args: TargetAttentionArgs): Float32Array;
  targetAttentionAsync(...args: TargetAttentionArgs): Promise<Float32Array>;
  attentionAsync(...args: AttentionArgs): Promise<Float32Array | Uint16Array>;
  relativeRepresentation(...args: RelativeRepresentationArgs): Float32Array;
  relativeRepresentationAsync(...args: RelativeRepresentationArgs): Promise<Float32Array>;
  /** L2-normalises rows of `dim` into out (which may be x); zero rows stay zero. */
  normalizeRows(x: Float32Array, out: Float32Array, n: number, dim: number): Float32Array;
  whiteningFit(...args: WhiteningFitArgs): Float32Array;
  whiteningFitAsync(...args: WhiteningFitArgs): Promise<Float32Array>;
  whiteningTransform(...args: WhiteningTransformArgs): Float32Array;
  whiteningTransformAsync(...args: WhiteningTransformArgs): Promise<Float32Array>;
  projectOut(...args: ProjectOutArgs): Float32Array;
  projectOutAsync(...args: ProjectOutArgs): Promise<Float32Array>;
  mergeAttentionStates(
    outA: Float32Array,
    lseA: Float32Array,
    outB: Float32Array,
    lseB: Float32Array,
    out: Float32Array,
    lse: Float32Array,
    layout: 'bshd' | 'bhsd',
    batch: number,
    heads: number,
    seq: number,
    dim: number,
  ): void;
  SqueezedAttentionHandle: new () => SqueezedAttentionHandle;
  hyperAttention(...args: HyperAttentionArgs): Float32Array;
  hyperAttentionAsync(...args: HyperAttentionArgs): Promise<Float32Array>;
  hyperAttentionPlan(
    q: Float32Array,
    k: Float32Array,
    ...shape: HyperShapeArgs
  ): { queryOrder: Int32Array; keyOrder: Int32Array; samples: Int32Array };
  /** Present in the CUDA addon only. */
  cudaProbe?(): CudaProbe;
  /** Device-to-device copy rate, bytes read plus written per second (median of `repeats` after a warm-up). */
  cudaCopyBandwidth?(bytes: number, repeats: number): number;
  cudaAttention?(...args: AttentionArgs): Float32Array | Uint16Array;
  cudaAttentionAsync?(...args: AttentionArgs): Promise<Float32Array | Uint16Array>;
  cudaApplyRope?(...args: RopeArgs): Float32Array | Uint16Array;
  cudaApplyRopeAsync?(...args: RopeArgs): Promise<Float32Array | Uint16Array>;
  cudaMergeAttentionStates?(...args: MergeArgs): void;
  cudaMergeAttentionStatesAsync?(...args: MergeArgs): Promise<void>;
  cudaAttentionLastKernelMs?(): number;
  CudaCodesHandle?: new () => CudaCodesHandle;
  CudaFdeHandle?: new () => CudaFdeHandle;
  CudaMultiVectorsHandle?: new () => CudaMultiVectorsHandle;
}

/** mergeAttentionStates' positional arguments. */
export type MergeArgs = [
  outA: Float32Array, lseA: Float32Array, outB: Float32Array, lseB: Float32Array, out: Float32Array, lse: Float32Array,
  layout: string, batch: number, heads: number, seq: number, dim: number,
];

/** Device handles (CUDA addon): load() fills them, synchronously or on a worker (async = true). */
export interface CudaCodesHandle {
  load(rows: Uint8Array, n: number, dim: number, planes: number, hasAlpha: boolean, msb: boolean,
       ids: Int32Array | undefined, l2: boolean, async: boolean): Promise<void> | undefined;
  hammingTopK(queries: Uint8Array, nq: number, k: number, async: boolean):
    { ids: Int32Array; distances: Int32Array } | Promise<{ ids: Int32Array; distances: Int32Array }>;
  sdcTopK(queries: Uint8Array, nq: number, k: number, async: boolean):
    { ids: Int32Array; scores: Float32Array } | Promise<{ ids: Int32Array; scores: Float32Array }>;
  size(): number;
  deviceBytes(): number;
  lastKernelMs(): number;
  release(): void;
}

export interface CudaFdeHandle {
  load(encoder: FdeEncoderHandle, async: boolean): Promise<void> | undefined;
  encode(tokens: Float32Array, lengths: Int32Array, document: boolean, async: boolean): Float32Array | Promise<Float32Array>;
  deviceBytes(): number;
  lastKernelMs(): number;
  release(): void;
}

export interface CudaMultiVectorsHandle {
  load(tokens: Float32Array, lengths: Int32Array, dim: number, bfloat16: boolean, async: boolean): Promise<void> | undefined;
  chamfer(queries: Float32Array, queryLengths: Int32Array, async: boolean): Float32Array | Promise<Float32Array>;
  topK(queries: Float32Array, queryLengths: Int32Array, ids: Int32Array | undefined, k: number, async: boolean):
    { ids: Int32Array; scores: Float32Array } | Promise<{ ids: Int32Array; scores: Float32Array }>;
  size(): number;
  deviceBytes(): number;
  lastKernelMs(): number;
  release(): void;
}

/** The native RoPE call's positional arguments (src/rope/apply.ts builds them). */
export type RopeArgs = [
  data: Float32Array | Uint16Array,
  dtype: 'float32' | 'float16' | 'bfloat16',
  layout: 'bshd' | 'bhsd',
  batch: number,
  seqLen: number,
  heads: number,
  headDim: number,
  rotaryDim: number,
  positions: Int32Array | Float32Array | Float64Array,
  invFreq: Float64Array | null,
  cos: Float32Array | null,
  sin: Float32Array | null,
  attentionFactor: number,
  style: 'neox' | 'interleaved',
];

/** The native poolTokens call's positional arguments (src/attention/pooling.ts builds them). */
export type PoolTokensArgs = [
  hidden: Float32Array,
  out: Float32Array,
  batch: number,
  seq: number,
  dim: number,
  mode: 'mean' | 'cls' | 'last',
  maskU8: Uint8Array | null,
  maskI32: Int32Array | null,
  lengths: Int32Array | null,
  normalize: boolean,
];

/** The native latentAttentionPool call's positional arguments; weights in torch.nn.Linear layout. */
export type LatentAttentionArgs = [
  hidden: Float32Array,
  out: Float32Array,
  batch: number,
  seq: number,
  dim: number,
  heads: number,
  headDim: number,
  numLatents: number,
  ffDim: number,
  maskU8: Uint8Array | null,
  maskI32: Int32Array | null,
  lengths: Int32Array | null,
  eps: number,
  normalize: boolean,
  latents: Float32Array,
  normWeight: Float32Array,
  normBias: Float32Array,
  contextNormWeight: Float32Array,
  contextNormBias: Float32Array,
  toQ: Float32Array,
  toKv: Float32Array,
  toOut: Float32Array,
  toOutBias: Float32Array | null,
  ffNormWeight: Float32Array,
  ffNormBias: Float32Array,
  ffIn: Float32Array,
  ffInBias: Float32Array,
  ffOut: Float32Array,
  ffOutBias: Float32Array,
];

/** The native attentiveStatsPool call's positional arguments. */
export type StatsPoolArgs = [
  x: Float32Array,
  out: Float32Array,
  batch: number,
  channels: number,
  frames: number,
  attentionChannels: number,
  globalContext: boolean,
  lengths: Int32Array | null,
  eps: number,
  bnEps: number,
  tdnnWeight: Float32Array,
  tdnnBias: Float32Array,
  bnMean: Float32Array,
  bnVar: Float32Array,
  bnWeight: Float32Array,
  bnBias: Float32Array,
  convWeight: Float32Array,
  convBias: Float32Array,
];

/** The native targetAttention call's positional arguments; weights as TensorFlow Dense kernels [in, out]. */
export type TargetAttentionArgs = [
  query: Float32Array,
  keys: Float32Array,
  out: Float32Array,
  batch: number,
  items: number,
  seqK: number,
  dim: number,
  hidden1: number,
  hidden2: number,
  lengths: Int32Array | null,
  activation: 'sigmoid' | 'relu' | 'prelu',
  normalize: 'softmax' | 'none',
  w1: Float32Array,
  b1: Float32Array,
  w2: Float32Array,
  b2: Float32Array,
  w3: Float32Array,
  b3: Float32Array,
  prelu1: Float32Array | null,
  prelu2: Float32Array | null,
];

/** The native attention call's positional arguments (src/attention/attention.ts builds them). */
export type AttentionArgs = [
  q: Float32Array | Uint16Array,
  k: Float32Array | Uint16Array,
  v: Float32Array | Uint16Array,
  out: Float32Array | Uint16Array,
  lse: Float32Array | null,
  dtype: 'float32' | 'float16' | 'bfloat16',
  layout: 'bshd' | 'bhsd',
  batch: number,
  headsQ: number,
  headsKV: number,
  seqQ: number,
  seqK: number,
  headDim: number,
  headDimV: number,
  scale: number,
  temperature: number,
  softcap: number,
  causal: boolean,
  window: number,
  globalTokens: number,
  anchor: boolean,
  keyLengths: Int32Array | null,
  segments: Int32Array | null,
  alibiSlopes: Float32Array | null,
  bias: Float32Array | null,
  biasBatch: number,
  biasHeads: number,
];

export interface HammingResult {
  indices: Int32Array;
  distances: Int32Array;
}

export interface ScoreResult {
  indices: Int32Array;
  scores: Float32Array;
}

export interface IndexSearchResult {
  ids: Int32Array;
  scores: Float32Array;
  k: number;
}

export interface IndexContents {
  ids: Int32Array;
  codes: Uint8Array;
  vectors?: Float32Array;
  quantized?: Int8Array;
  scales?: Float32Array;
}

/** KvCacheHandle.attend's positional arguments (src/attention/kv-cache.ts builds them). */
export type KvAttendArgs = readonly [
  layer: number,
  q: Float32Array | Uint16Array,
  dtype: string,
  headsQ: number,
  seqQ: number,
  out: Float32Array | Uint16Array,
  lse: Float32Array | null,
  scale: number,
  temperature: number,
  softcap: number,
  causal: boolean,
  window: number,
  globalTokens: number,
  alibiSlopes: Float32Array | null,
];

export interface KvCacheHandle {
  append(layer: number, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, dtype: string, tokens: number): void;
  attend(...args: KvAttendArgs): Float32Array | Uint16Array;
  attendAsync(...args: KvAttendArgs): Promise<Float32Array | Uint16Array>;
  position(layer: number): number;
  stored(layer: number): number;
  memoryBytes(): number;
  reset(): void;
  release(): void;
}

export interface BinaryIndexHandle {
  add(ids: Int32Array, codes: Uint8Array, vectors?: Float32Array): void;
  remove(ids: Int32Array): number;
  search(
    queries: Float32Array | undefined,
    queryCodes: Uint8Array | undefined,
    center: Float32Array | undefined,
    nq: number,
    k: number,
    metric: string,
    candidates: number,
    rescore: boolean,
  ): IndexSearchResult;
  searchAsync(
    queries: Float32Array | undefined,
    queryCodes: Uint8Array | undefined,
    center: Float32Array | undefined,
    nq: number,
    k: number,
    metric: string,
    candidates: number,
    rescore: boolean,
  ): Promise<IndexSearchResult>;
  size(): number;
  memoryBytes(): number;
  exportContents(): IndexContents;
  importContents(ids: Int32Array, codes: Uint8Array, vectors?: Float32Array, quantized?: Int8Array, scales?: Float32Array): void;
  release(): void;
}

export interface FdeMatrices {
  /** dim × (repetitions · simhashBits): column r·k + j is SimHash projection j of repetition r. */
  simhash: Float32Array;
  /** repetitions × dim × projectionDim, dense (count-sketch rows hold one ±1); empty for identity. */
  projection: Float32Array;
  /** The final Count-Sketch (empty without finalDim): a bucket and a sign per coordinate. */
  finalBucket: Int32Array;
  finalSign: Float32Array;
}

export interface FdeEncoderHandle {
  encode(tokens: Float32Array, lengths: Int32Array, document: boolean, out?: Float32Array): Float32Array;
  encodeAsync(tokens: Float32Array, lengths: Int32Array, document: boolean, out?: Float32Array): Promise<Float32Array>;
  outputDim(): number;
  exportMatrices(): FdeMatrices;
  release(): void;
}

export interface MultiVectorSearchResult {
  ids: Int32Array;
  scores: Float32Array;
}

export interface MultiVectorContents {
  ids: Int32Array;
  lengths: Int32Array;
  tokens: Float32Array;
  fdes: Float32Array;
  codes: Uint8Array;
}

export interface MultiVectorIndexHandle {
  add(ids: Int32Array, tokens: Float32Array, lengths: Int32Array): void;
  remove(ids: Int32Array): number;
  search(query: Float32Array, k: number, candidates: number, rerank: boolean): MultiVectorSearchResult;
  searchAsync(query: Float32Array, k: number, candidates: number, rerank: boolean): Promise<MultiVectorSearchResult>;
  size(): number;
  memoryBytes(): number;
  exportContents(): MultiVectorContents;
  importContents(ids: Int32Array, lengths: Int32Array, tokens: Float32Array, fdes: Float32Array, codes: Uint8Array): void;
  release(): void;
}

/** Squeezed Attention's native index (src/attention/approx.ts owns it). */
export interface SqueezedAttentionHandle {
  build(keys: Float32Array, values: Float32Array, headsKV: number, seqK: number, headDim: number, headDimV: number,
    clusters: number, iterations: number, seed: bigint): void;
  buildAsync(keys: Float32Array, values: Float32Array, headsKV: number, seqK: number, headDim: number, headDimV: number,
    clusters: number, iterations: number, seed: bigint): Promise<object>;
  attend(q: Float32Array, out: Float32Array, lse: Float32Array | null, headsQ: number, seqQ: number, scale: number,
    threshold: number, keepFraction: number): number;
  attendAsync(q: Float32Array, out: Float32Array, lse: Float32Array | null, headsQ: number, seqQ: number, scale: number,
    threshold: number, keepFraction: number): Promise<{ keptFraction: number }>;
  layout(): { offsets: Int32Array; order: Int32Array; centroids: Float32Array };
  memoryBytes(): number;
  release(): void;
}

/** HyperAttention's shape and options, in the native call's order. */
export type HyperShapeArgs = [
  layout: 'bshd' | 'bhsd',
  batch: number,
  headsQ: number,
  headsKV: number,
  seqQ: number,
  seqK: number,
  headDim: number,
  headDimV: number,
  scale: number,
  causal: boolean,
  blockSize: number,
  sampleSize: number,
  lshBits: number,
  minSeqLen: number,
  seed: bigint,
];

/** The native HyperAttention call's positional arguments. */
export type HyperAttentionArgs = [q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array | null, ...shape: HyperShapeArgs];
/** The native relativeRepresentation call's positional arguments (src/embed/postprocess.ts builds them). */
export type RelativeRepresentationArgs = [
  vectors: Float32Array,
  anchors: Float32Array,
  out: Float32Array,
  n: number,
  anchorCount: number,
  dim: number,
  anchorsNormalized: boolean,
  normalize: boolean,
];

/** The native whiteningFit call's positional arguments; resolves to `mean`. */
export type WhiteningFitArgs = [
  sample: Float32Array,
  mean: Float32Array,
  matrix: Float32Array,
  eigenvalues: Float64Array,
  n: number,
  dim: number,
  components: number,
  epsilon: number,
];

/** The native whiteningTransform call's positional arguments. */
export type WhiteningTransformArgs = [
  vectors: Float32Array,
  out: Float32Array,
  mean: Float32Array,
  matrix: Float32Array,
  n: number,
  dim: number,
  components: number,
  normalize: boolean,
];

/** The native projectOut call's positional arguments; out may be vectors itself. */
export type ProjectOutArgs = [
  vectors: Float32Array,
  directions: Float32Array,
  out: Float32Array,
  n: number,
  count: number,
  dim: number,
  normalize: boolean,
];
