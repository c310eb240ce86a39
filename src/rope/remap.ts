// Position remapping for long context: what position each token has (or which keys it sees) by the time attention
// runs. Positions are Int32Arrays; masks are Uint8Arrays of [queries × keys] (1 = visible), row-major.
import { expectInteger, expectOptions, expectTypedArray } from '../core/validate.js';

const MAX_POSITION = 2 ** 31 - 1;
const MAX_MATRIX = 2 ** 31;

function positionsArray(value: unknown, name: string): Int32Array {
  return expectTypedArray(value, 'Int32Array', name);
}

function range(seqLen: number): Int32Array {
  const out = new Int32Array(seqLen);
  for (let i = 0; i < seqLen; i++) out[i] = i;
  return out;
}

function matrixSize(rows: number, cols: number, what: string): number {
  const n = rows * cols;
  if (n > MAX_MATRIX) throw new RangeError(`${what}: ${rows} × ${cols} entries is too many (at most 2^31); tile the call`);
  return n;
}

// ---- SelfExtend (Jin et al. 2024, "LLM Maybe LongLM", arXiv 2401.01325) -----------------------------------------

export interface SelfExtendOptions {
  /** G: positions beyond the window are grouped G to one (floor(p / G)). */
  groupSize: number;
  /** W: keys within this distance of the query keep their exact relative position. */
  window: number;
}

export interface SelfExtendPositions {
  /** The neighbour attention's positions: the tokens' own. */
  neighbor: Int32Array;
  /** The grouped attention's query positions: floor(p / G) + W − floor(W / G). */
  groupedQuery: Int32Array;
  /** The grouped attention's key positions: floor(p / G). */
  groupedKey: Int32Array;
  groupSize: number;
  window: number;
}

function selfExtendOptions(options: unknown): SelfExtendOptions {
  const o = expectOptions<SelfExtendOptions>(options, 'options', ['groupSize', 'window']);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  return { groupSize: expectInteger(o.groupSize, 'groupSize', 1), window: expectInteger(o.window, 'window', 0) };
}

/**
 * SelfExtend's two sets of RoPE positions: queries and keys rotated with `neighbor` positions score keys within the
 * window (0 ≤ q − k < W); rotated with `groupedQuery` / `groupedKey` they score the keys beyond it, at the grouped
 * distance floor(q/G) − floor(k/G) + W − floor(W/G). One softmax over the merged row (or an LSE merge of the two).
 */
export function selfExtendPositions(positions: Int32Array, options: SelfExtendOptions): SelfExtendPositions {
  const p = positionsArray(positions, 'positions');
  const { groupSize, window } = selfExtendOptions(options);
  const shift = window - Math.floor(window / groupSize);
  const groupedQuery = new Int32Array(p.length), groupedKey = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const g = Math.floor(p[i]! / groupSize);
    groupedKey[i] = g;
    groupedQuery[i] = g + shift;
  }
  return { neighbor: Int32Array.from(p), groupedQuery, groupedKey, groupSize, window };
}

/**
 * The relative position k − q each query sees each key at under SelfExtend: exact within the window (|k − q| < W),
 * grouped beyond it (sign(k − q) · (|floor(k/G) − floor(q/G)| + W − floor(W/G))). [queries × keys], row-major.
 * LongEmbed's example (10 tokens, W = 4, G = 2): from token 0, {0, 1, 2, 3, 4, 4, 5, 5, 6, 6}.
 */
export function selfExtendRelativePositions(
  queryPositions: Int32Array,
  keyPositions: Int32Array,
  options: SelfExtendOptions,
): Int32Array {
  const q = positionsArray(queryPositions, 'queryPositions'), k = positionsArray(keyPositions, 'keyPositions');
  const { groupSize, window } = selfExtendOptions(options);
  const shift = window - Math.floor(window / groupSize);
  const out = new Int32Array(matrixSize(q.length, k.length, 'selfExtendRelativePositions'));
  for (let i = 0; i < q.length; i++) {
    const qi = q[i]!, gq = Math.floor(qi / groupSize);
    for (let j = 0; j < k.length; j++) {
      const kj = k[j]!, d = kj - qi;
      out[i * k.length + j] = Math.abs(d) < window ? d : Math.sign(d) * (Math.abs(Math.floor(kj / groupSize) - gq) + shift);
    }
  }
  return out;
}

// ---- LM-Infinite (Han et al. 2023, arXiv 2308.16137) ---------------------------------------------------------

export interface LmInfiniteOptions {
  /** Keys at positions below this are visible to every query (the "global branch"). */
  globalTokens: number;
  /** Keys with 0 ≤ q − k < window are visible (the "local branch"). */
  window: number;
  /** Relative distances are capped here (LM-Infinite's distance limit, the pre-training length); default window. */
  distanceCap?: number;
}

function lmInfiniteOptions(options: unknown): Required<LmInfiniteOptions> {
  const o = expectOptions<LmInfiniteOptions>(options, 'options', ['globalTokens', 'window', 'distanceCap']);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const window = expectInteger(o.window, 'window', 1);
  return {
    globalTokens: expectInteger(o.globalTokens, 'globalTokens', 0),
    window,
    distanceCap: o.distanceCap === undefined ? window : expectInteger(o.distanceCap, 'distanceCap', 1),
  };
}

/**
 * LM-Infinite's Λ-shaped mask: key k is visible to query q when it is not in the future (k ≤ q) and either among the
 * first `globalTokens` positions or within `window` of q. [queries × keys], 1 = visible.
 */
export function lmInfiniteMask(queryPositions: Int32Array, keyPositions: Int32Array, options: LmInfiniteOptions): Uint8Array {
  const q = positionsArray(queryPositions, 'queryPositions'), k = positionsArray(keyPositions, 'keyPositions');
  const { globalTokens, window } = lmInfiniteOptions(options);
  const out = new Uint8Array(matrixSize(q.length, k.length, 'lmInfiniteMask'));
  for (let i = 0; i < q.length; i++) {
    const qi = q[i]!;
    for (let j = 0; j < k.length; j++) {
      const d = qi - k[j]!;
      out[i * k.length + j] = d >= 0 && (k[j]! < globalTokens || d < window) ? 1 : 0;
    }
  }
  return out;
}

/**
 * LM-Infinite's effective distances min(q − k, distanceCap) (keys farther than the cap are scored as if at the cap:
 * unrotated keys against queries rotated by the cap's angle). [queries × keys]; future keys keep their negative
 * distance (the mask hides them).
 */
export function lmInfiniteDistances(queryPositions: Int32Array, keyPositions: Int32Array, options: LmInfiniteOptions): Int32Array {
  const q = positionsArray(queryPositions, 'queryPositions'), k = positionsArray(keyPositions, 'keyPositions');
  const { distanceCap } = lmInfiniteOptions(options);
  const out = new Int32Array(matrixSize(q.length, k.length, 'lmInfiniteDistances'));
  for (let i = 0; i < q.length; i++)
    for (let j = 0; j < k.length; j++) out[i * k.length + j] = Math.min(q[i]! - k[j]!, distanceCap);
  return out;
}

// ---- AnchorAttention (Wang et al. 2024, "When Precision Meets Position", arXiv 2411.13476) ----------------------

export interface PackedDocumentsOptions {
  /** Tokens at the start of the pack shared by every document (the anchor, e.g. one BOS); default 1. */
  anchorTokens?: number;
  /** The fixed position the anchor tokens start at (default 0); documents then start right after them. */
  anchorPosition?: number;
}

export interface PackedDocuments {
  /** Per token: anchor tokens anchorPosition, anchorPosition + 1, ...; each document restarts just after them. */
  positions: Int32Array;
  /** Per token: 0 for the anchor, 1, 2, ... for the documents in order. */
  documentIds: Int32Array;
}

/**
 * Positions and document ids for documents packed into one sequence behind a shared anchor (AnchorAttention):
 * every document's positions restart after the anchor, so each sees the anchor at the same relative distance.
 * `documentLengths` excludes the anchor tokens.
 */
export function packedDocuments(documentLengths: Int32Array, options?: PackedDocumentsOptions): PackedDocuments {
  const lengths = positionsArray(documentLengths, 'documentLengths');
  const o = expectOptions<PackedDocumentsOptions>(options, 'options', ['anchorTokens', 'anchorPosition']);
  const anchorTokens = o.anchorTokens === undefined ? 1 : expectInteger(o.anchorTokens, 'anchorTokens', 0);
  const anchorPosition = o.anchorPosition === undefined ? 0 : expectInteger(o.anchorPosition, 'anchorPosition', 0, MAX_POSITION);
  let total = anchorTokens;
  lengths.forEach((n, i) => {
    if (n < 0) throw new RangeError(`"documentLengths"[${i}] is ${n}: lengths must not be negative`);
    total += n;
  });
  if (total > MAX_MATRIX) throw new RangeError(`the pack holds ${total} tokens, more than 2^31`);
  const positions = new Int32Array(total), documentIds = new Int32Array(total);
  for (let t = 0; t < anchorTokens; t++) positions[t] = anchorPosition + t;
  let at = anchorTokens;
  const start = anchorPosition + anchorTokens;
  lengths.forEach((n, d) => {
    if (start + n - 1 > MAX_POSITION) throw new RangeError('positions would exceed 2^31 − 1');
    for (let t = 0; t < n; t++, at++) {
      positions[at] = start + t;
      documentIds[at] = d + 1;
    }
  });
  return { positions, documentIds };
}

/**
 * AnchorAttention's mask over a pack: query q sees key k when k ≤ q (causal) and k is in q's document or in the
 * anchor (document id 0). [tokens × tokens], 1 = visible.
 */
export function anchorMask(documentIds: Int32Array): Uint8Array {
  const ids = positionsArray(documentIds, 'documentIds');
  const n = ids.length;
  const out = new Uint8Array(matrixSize(n, n, 'anchorMask'));
  for (let q = 0; q < n; q++)
    for (let k = 0; k <= q; k++) out[q * n + k] = ids[k] === 0 || ids[k] === ids[q] ? 1 : 0;
  return out;
}

// ---- LongEmbed (Zhu et al. 2024, arXiv 2404.12096): positions for absolute-position models ------------------------

export interface LongEmbedPositionOptions {
  /** The model's trained length L (its position table's rows). */
  originalLength: number;
}

function originalLength(options: unknown): number {
  const o = expectOptions<LongEmbedPositionOptions>(options, 'options', ['originalLength']);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  return expectInteger(o.originalLength, 'originalLength', 1, MAX_POSITION);
}

/** Grouped positions: token p gets floor(p / s) with s = ceil(seqLen / L), so seqLen tokens fit in L positions. */
export function groupedPositions(seqLen: number, options: LongEmbedPositionOptions): Int32Array {
  const n = expectInteger(seqLen, 'seqLen', 0, MAX_MATRIX);
  const length = originalLength(options);
  const s = Math.max(1, Math.ceil(n / length));
  const out = range(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(i / s);
  return out;
}

/** Recurrent positions: token p gets p mod L. */
export function recurrentPositions(seqLen: number, options: LongEmbedPositionOptions): Int32Array {
  const n = expectInteger(seqLen, 'seqLen', 0, MAX_MATRIX);
  const length = originalLength(options);
  const out = range(n);
  for (let i = 0; i < n; i++) out[i] = i % length;
  return out;
}
