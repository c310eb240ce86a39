// SelfExtend attention (Jin et al. 2024, "LLM Maybe LongLM", arXiv 2401.01325): a pre-trained RoPE model reads
// past its training length by keeping exact relative positions inside a neighbour window W and grouping positions
// G to one beyond it. Built as the reference's FlashAttention path is: two exact attention passes over disjoint key
// sets, merged through their log-sum-exps.
//   neighbour: q and k rotated at their own positions, keys with p − j < W (causal window);
//   grouped:   q rotated at ⌊p/G⌋ + W − ⌊W/G⌋, k at ⌊j/G⌋, keys with p − j ≥ W.
// Both passes cost what exact attention costs (the neighbour pass seq × W); memory O(seq × headDim).
import { applyRope, applyRopeAsync, type RopeStyle } from '../rope/apply.js';
import { expectFloat32Array, expectInteger, expectOneOf, expectOptions, expectTypedArray, required } from '../core/validate.js';
import { attention, attentionAsync, mergeAttentionStates, type AttentionOptions, type AttentionShapeOptions } from './attention.js';

export interface SelfExtendAttentionOptions extends AttentionShapeOptions {
  /** G: beyond the window, positions are grouped G to one. */
  groupSize: number;
  /** W: keys closer than this to the query keep their exact relative position. */
  window: number;
  /** The model's RoPE inverse frequencies (rotaryDim / 2 of them, from ropeFrequencies). */
  invFreq: Float64Array | Float32Array | readonly number[];
  rotaryDim?: number;
  style?: RopeStyle;
  attentionFactor?: number;
  /** Valid keys per batch row (right padding); token j sits at position j and the queries are the last seqQ. */
  keyLengths?: Int32Array;
  temperature?: number;
  softcap?: number;
  returnLse?: boolean;
}

interface Plan {
  o: SelfExtendAttentionOptions;
  batch: number;
  headsKV: number;
  lengths: Int32Array;
  queryPositions: Int32Array;
  groupedQueryPositions: Int32Array;
  keyPositions: Int32Array;
  groupedKeyPositions: Int32Array;
  groupedLengths: Int32Array;
}

const KEYS: readonly (keyof SelfExtendAttentionOptions)[] = [
  'layout', 'batch', 'headsQ', 'headsKV', 'seqQ', 'seqK', 'headDim', 'headDimV', 'groupSize', 'window', 'invFreq',
  'rotaryDim', 'style', 'attentionFactor', 'keyLengths', 'scale', 'temperature', 'softcap', 'returnLse',
];

function plan(q: unknown, k: unknown, v: unknown, options: unknown): Plan {
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<SelfExtendAttentionOptions>(options, 'options', KEYS);
  const layout = expectOneOf(o.layout, 'layout', ['bshd', 'bhsd'] as const);
  const headDim = expectInteger(required(o.headDim, 'headDim'), 'headDim', 2, 256);
  if (o.invFreq === undefined) throw new TypeError('"invFreq" is required: the model\'s RoPE inverse frequencies');
  const batch = o.batch === undefined ? 1 : expectInteger(o.batch, 'batch', 1);
  const headsQ = expectInteger(required(o.headsQ, 'headsQ'), 'headsQ', 1);
  const headsKV = o.headsKV === undefined ? headsQ : expectInteger(o.headsKV, 'headsKV', 1);
  const seqQ = expectInteger(required(o.seqQ, 'seqQ'), 'seqQ', 0, 2 ** 24);
  const seqK = expectInteger(required(o.seqK, 'seqK'), 'seqK', 0, 2 ** 24);
  const groupSize = expectInteger(required(o.groupSize, 'groupSize'), 'groupSize', 1, 2 ** 24);
  const window = expectInteger(required(o.window, 'window'), 'window', 1, 2 ** 24);
  const headDimV = o.headDimV === undefined ? headDim : expectInteger(o.headDimV, 'headDimV', 1, 256);
  const sizes = { q: batch * headsQ * seqQ * headDim, k: batch * headsKV * seqK * headDim, v: batch * headsKV * seqK * headDimV };
  for (const [name, x] of [['q', q], ['k', k], ['v', v]] as const) {
    const n = expectFloat32Array(x, name).length;
    if (n !== sizes[name]) throw new RangeError(`"${name}" must hold ${sizes[name]} values for this shape, got ${n}`);
  }
  let lengths: Int32Array;
  if (o.keyLengths === undefined) lengths = new Int32Array(batch).fill(seqK);
  else {
    lengths = expectTypedArray(o.keyLengths, 'Int32Array', 'keyLengths');
    if (lengths.length !== batch) throw new RangeError(`"keyLengths" must hold batch (${batch}) values, got ${lengths.length}`);
    lengths.forEach((n, b) => {
      if (n < 0 || n > seqK) throw new RangeError(`"keyLengths"[${b}] is ${n}: it must be from 0 to seqK (${seqK})`);
    });
  }
  // Query i of row b sits at p = n_b − seqQ + i (the queries are the row's last tokens); key j at j.
  const shift = window - Math.floor(window / groupSize);
  const queryPositions = new Int32Array(batch * seqQ), groupedQueryPositions = new Int32Array(batch * seqQ);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seqQ; i++) {
      const p = lengths[b]! - seqQ + i;
      queryPositions[b * seqQ + i] = p;
      groupedQueryPositions[b * seqQ + i] = Math.floor(p / groupSize) + shift;
    }
  }
  const keyPositions = new Int32Array(seqK), groupedKeyPositions = new Int32Array(seqK);
  for (let j = 0; j < seqK; j++) {
    keyPositions[j] = j;
    groupedKeyPositions[j] = Math.floor(j / groupSize);
  }
  // The grouped pass sees keys j ≤ p − W: with valid lengths n − W, attention's bottom-right causal alignment puts
  // query i at p − W, so its causal mask is exactly that set.
  const groupedLengths = lengths.map((n) => Math.max(0, n - window));
  const checked = { ...o, layout, headDim, headsQ, seqQ, seqK, groupSize, window } as SelfExtendAttentionOptions;
  return { o: checked, batch, headsKV, lengths, queryPositions, groupedQueryPositions, keyPositions, groupedKeyPositions, groupedLengths };
}

function ropeOptions(p: Plan, seqLen: number, heads: number, positions: Int32Array) {
  const o = p.o;
  return {
    layout: o.layout, batch: p.batch, seqLen, heads, headDim: o.headDim, positions, invFreq: o.invFreq,
    ...(o.rotaryDim === undefined ? {} : { rotaryDim: o.rotaryDim }),
    ...(o.style === undefined ? {} : { style: o.style }),
    ...(o.attentionFactor === undefined ? {} : { attentionFactor: o.attentionFactor }),
  };
}

function attentionOptions(p: Plan, neighbour: boolean): AttentionOptions {
  const o = p.o;
  return {
    layout: o.layout, batch: p.batch, headsQ: o.headsQ, headsKV: p.headsKV, seqQ: o.seqQ, seqK: o.seqK, headDim: o.headDim,
    ...(o.headDimV === undefined ? {} : { headDimV: o.headDimV }),
    ...(o.scale === undefined ? {} : { scale: o.scale }),
    ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
    ...(o.softcap === undefined ? {} : { softcap: o.softcap }),
    causal: true,
    ...(neighbour ? { window: o.window, keyLengths: p.lengths } : { keyLengths: p.groupedLengths }),
    returnLse: true,
  };
}

function merged(p: Plan, a: { out: Float32Array; lse?: Float32Array }, b: { out: Float32Array; lse?: Float32Array }) {
  const o = p.o;
  const { out, lse } = mergeAttentionStates(a.out, a.lse!, b.out, b.lse!, {
    layout: o.layout, batch: p.batch, heads: o.headsQ, seq: o.seqQ, dim: o.headDimV ?? o.headDim, out: a.out, lse: a.lse!,
  });
  return o.returnLse ? { out, lse } : { out };
}

/**
 * SelfExtend attention over un-rotated q and k (float32; q [.., seqQ, headsQ, headDim] or bhsd, k and v likewise
 * with headsKV): causal, each query the last seqQ tokens of its row. Equals one softmax over the row with
 * neighbour scores for keys within the window and grouped scores beyond it (the reference's eager form) to about
 * 1e-6 relative. Needs the model's RoPE `invFreq`; rotates copies, never q or k themselves.
 */
export function selfExtendAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  options: SelfExtendAttentionOptions,
): { out: Float32Array; lse?: Float32Array } {
  const p = plan(q, k, v, options);
  const o = p.o;
  const qn = applyRope(q.slice(), ropeOptions(p, o.seqQ, o.headsQ, p.queryPositions));
  const kn = applyRope(k.slice(), ropeOptions(p, o.seqK, p.headsKV, p.keyPositions));
  const neighbour = attention(qn, kn, v, attentionOptions(p, true));
  qn.set(q); // the same buffers, rotated again for the grouped pass
  kn.set(k);
  applyRope(qn, ropeOptions(p, o.seqQ, o.headsQ, p.groupedQueryPositions));
  applyRope(kn, ropeOptions(p, o.seqK, p.headsKV, p.groupedKeyPositions));
  const grouped = attention(qn, kn, v, attentionOptions(p, false));
  return merged(p, neighbour, grouped);
}

/** selfExtendAttention() with its RoPE and attention passes on worker threads. Do not modify the inputs meanwhile. */
export async function selfExtendAttentionAsync(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  options: SelfExtendAttentionOptions,
): Promise<{ out: Float32Array; lse?: Float32Array }> {
  const p = plan(q, k, v, options);
  const o = p.o;
  const [qn, kn, qg, kg] = await Promise.all([
    applyRopeAsync(q.slice(), ropeOptions(p, o.seqQ, o.headsQ, p.queryPositions)),
    applyRopeAsync(k.slice(), ropeOptions(p, o.seqK, p.headsKV, p.keyPositions)),
    applyRopeAsync(q.slice(), ropeOptions(p, o.seqQ, o.headsQ, p.groupedQueryPositions)),
    applyRopeAsync(k.slice(), ropeOptions(p, o.seqK, p.headsKV, p.groupedKeyPositions)),
  ]);
  const neighbour = await attentionAsync(qn, kn, v, attentionOptions(p, true));
  const grouped = await attentionAsync(qg, kg, v, attentionOptions(p, false));
  return merged(p, neighbour, grouped);
}
