// Builds small ONNX models byte by byte (protobuf wire format), for the benchmarks' onnxruntime-node peers and the
// tests: no Python, no downloaded model. Only what they use: tensors of a few element types, integer attributes.

const encoder = new TextEncoder();

export function varint(n) {
  let v = BigInt(n);
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

export const key = (field, wire) => varint((field << 3) | wire);
export const int = (field, value) => [...key(field, 0), ...varint(value)];
export const bytes = (field, data) => [...key(field, 2), ...varint(data.length), ...data];
export const str = (field, s) => bytes(field, [...encoder.encode(s)]);

/** ONNX element types. */
export const FLOAT = 1, INT32 = 6, INT64 = 7, FLOAT16 = 10;

/** A graph input or output: name, element type, dims (numbers, or strings for symbolic ones). */
export function valueInfo({ name, elemType, dims }) {
  const dimensions = dims.flatMap((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  const tensorType = [...int(1, elemType), ...bytes(2, dimensions)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

/**
 * A model of one node (any op and domain) with integer attributes; its inputs and outputs are the graph's.
 * spec: { op, domain?, inputs: ValueSpec[], outputs: ValueSpec[], attributes?: {name: int}, opsets: [{domain, version}],
 *   irVersion? (default 8; opset 23 needs 10) }
 */
export function singleNodeModel(spec) {
  const attributes = Object.entries(spec.attributes ?? {}).flatMap(([name, value]) =>
    bytes(5, [...str(1, name), ...int(3, value), ...int(20, 2 /* INT */)]),
  );
  const node = [
    ...spec.inputs.flatMap((i) => str(1, i.name)),
    ...spec.outputs.flatMap((o) => str(2, o.name)),
    ...str(3, `${spec.op}_0`),
    ...str(4, spec.op),
    ...attributes,
    ...(spec.domain ? str(7, spec.domain) : []),
  ];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'single-node'),
    ...spec.inputs.flatMap((i) => bytes(11, valueInfo(i))),
    ...spec.outputs.flatMap((o) => bytes(12, valueInfo(o))),
  ];
  const opsets = spec.opsets.flatMap((o) => bytes(8, [...str(1, o.domain), ...int(2, o.version)]));
  return Uint8Array.from([...int(1, spec.irVersion ?? 8), ...str(2, 'tessera'), ...bytes(7, graph), ...opsets]);
}

/** onnxruntime's com.microsoft RotaryEmbedding over [batch, seq, heads · headDim] float32 or float16 tensors. */
export function rotaryEmbeddingModel({ batch, seqLen, heads, headDim, rotaryDim, maxPositions, interleaved, float16 }) {
  const elemType = float16 ? FLOAT16 : FLOAT;
  return singleNodeModel({
    op: 'RotaryEmbedding',
    domain: 'com.microsoft',
    inputs: [
      { name: 'input', elemType, dims: [batch, seqLen, heads * headDim] },
      { name: 'position_ids', elemType: INT64, dims: [batch, seqLen] },
      { name: 'cos_cache', elemType, dims: [maxPositions, rotaryDim / 2] },
      { name: 'sin_cache', elemType, dims: [maxPositions, rotaryDim / 2] },
    ],
    outputs: [{ name: 'output', elemType, dims: [batch, seqLen, heads * headDim] }],
    attributes: { interleaved: interleaved ? 1 : 0, num_heads: heads, rotary_embedding_dim: rotaryDim },
    opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
  });
}

/** com.microsoft MultiHeadAttention (ORT's CPU flash path when not unidirectional) over [batch, seq, heads · dim]. */
export function multiHeadAttentionModel({ batch, seqQ, seqK, heads, dim, causal }) {
  return singleNodeModel({
    op: 'MultiHeadAttention',
    domain: 'com.microsoft',
    inputs: [
      { name: 'query', elemType: FLOAT, dims: [batch, seqQ, heads * dim] },
      { name: 'key', elemType: FLOAT, dims: [batch, seqK, heads * dim] },
      { name: 'value', elemType: FLOAT, dims: [batch, seqK, heads * dim] },
    ],
    outputs: [{ name: 'output', elemType: FLOAT, dims: [batch, seqQ, heads * dim] }],
    attributes: { num_heads: heads, unidirectional: causal ? 1 : 0 },
    opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
  });
}

/** ONNX Attention (opset 23) over the same 3D tensors, with an optional dense float mask [seqQ, seqK]. */
export function onnxAttentionModel({ batch, seqQ, seqK, heads, dim, causal, mask }) {
  const inputs = [
    { name: 'Q', elemType: FLOAT, dims: [batch, seqQ, heads * dim] },
    { name: 'K', elemType: FLOAT, dims: [batch, seqK, heads * dim] },
    { name: 'V', elemType: FLOAT, dims: [batch, seqK, heads * dim] },
  ];
  if (mask) inputs.push({ name: 'attn_mask', elemType: FLOAT, dims: [seqQ, seqK] });
  return singleNodeModel({
    op: 'Attention',
    inputs,
    outputs: [{ name: 'Y', elemType: FLOAT, dims: [batch, seqQ, heads * dim] }],
    attributes: { q_num_heads: heads, kv_num_heads: heads, is_causal: causal ? 1 : 0 },
    opsets: [{ domain: '', version: 23 }],
    irVersion: 10,
  });
}

/** onnxruntime's com.microsoft GroupQueryAttention, one decode step: a new token's q/k/v [batch, 1, heads · dim] and
 *  the past K/V [batch, kvHeads, past, dim] (BNSH); seqlens_k = total − 1 per row, total_sequence_length a scalar. */
export function groupQueryDecodeModel({ batch, past, heads, kvHeads, dim }) {
  return singleNodeModel({
    op: 'GroupQueryAttention',
    domain: 'com.microsoft',
    inputs: [
      { name: 'query', elemType: FLOAT, dims: [batch, 1, heads * dim] },
      { name: 'key', elemType: FLOAT, dims: [batch, 1, kvHeads * dim] },
      { name: 'value', elemType: FLOAT, dims: [batch, 1, kvHeads * dim] },
      { name: 'past_key', elemType: FLOAT, dims: [batch, kvHeads, past, dim] },
      { name: 'past_value', elemType: FLOAT, dims: [batch, kvHeads, past, dim] },
      { name: 'seqlens_k', elemType: INT32, dims: [batch] },
      { name: 'total_sequence_length', elemType: INT32, dims: [] },
    ],
    outputs: [
      { name: 'output', elemType: FLOAT, dims: [batch, 1, heads * dim] },
      { name: 'present_key', elemType: FLOAT, dims: [batch, kvHeads, past + 1, dim] },
      { name: 'present_value', elemType: FLOAT, dims: [batch, kvHeads, past + 1, dim] },
    ],
    attributes: { num_heads: heads, kv_num_heads: kvHeads },
    opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
  });
}
