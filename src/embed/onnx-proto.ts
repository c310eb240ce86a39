// A small writer of ONNX ModelProto messages (protobuf wire format), enough to build the graphs Tessera packages:
// nodes with int / ints / float attributes, initializers as raw little-endian data, typed inputs and outputs.
// Field numbers follow onnx/onnx.proto (ModelProto.graph = 7, GraphProto.initializer = 5, ...). Large initializers
// stay as Buffers and are concatenated once, so a 100 MB embedding table never passes through a JS array.

export const ONNX_FLOAT = 1, ONNX_INT32 = 6, ONNX_INT64 = 7;

type Part = Buffer;

/** The protobuf base-128 varint of an unsigned or (two's complement, 10 bytes) negative int64. */
export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n; // negative int64 values are written as 10-byte two's complement
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

const tag = (field: number, wire: number) => varint((field << 3) | wire);

function intField(field: number, value: number | bigint): Part {
  return Buffer.concat([tag(field, 0), varint(value)]);
}

function bytesField(field: number, parts: Part[] | Buffer): Part {
  const body = Array.isArray(parts) ? Buffer.concat(parts) : parts;
  return Buffer.concat([tag(field, 2), varint(body.length), body]);
}

const stringField = (field: number, s: string) => bytesField(field, Buffer.from(s, 'utf8'));

function floatField(field: number, value: number): Part {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  return Buffer.concat([tag(field, 5), b]);
}

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: number;
  dims: Dim[];
}

export interface Tensor {
  name: string;
  dataType: number;
  dims: number[];
  /** Little-endian element bytes. */
  raw: Buffer;
}

export type Attribute = { name: string; int: number } | { name: string; ints: number[] } | { name: string; float: number };

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes?: Attribute[];
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

function valueInfo(v: ValueInfo): Part {
  const dims = v.dims.map((d) => bytesField(1, [typeof d === 'number' ? intField(1, d) : stringField(2, d)]));
  const tensorType = [intField(1, v.elemType), bytesField(2, dims)];
  return Buffer.concat([stringField(1, v.name), bytesField(2, [bytesField(1, tensorType)])]);
}

function tensor(t: Tensor): Part {
  return Buffer.concat([...t.dims.map((d) => intField(1, d)), intField(2, t.dataType), stringField(8, t.name), bytesField(9, t.raw)]);
}

function attribute(a: Attribute): Part {
  const parts = [stringField(1, a.name)];
  if ('int' in a) parts.push(intField(3, a.int), intField(20, 2));
  else if ('float' in a) parts.push(floatField(2, a.float), intField(20, 1));
  else parts.push(...a.ints.map((i) => intField(8, i)), intField(20, 7));
  return Buffer.concat(parts);
}

function node(n: Node, index: number): Part {
  return Buffer.concat([
    ...n.inputs.map((i) => stringField(1, i)),
    ...n.outputs.map((o) => stringField(2, o)),
    stringField(3, `${n.op}_${index}`),
    stringField(4, n.op),
    ...(n.attributes ?? []).map((a) => bytesField(5, [attribute(a)])),
    ...(n.domain ? [stringField(7, n.domain)] : []),
  ]);
}

/** The serialized ModelProto of `graph` (IR version 8; default-domain opset `opset`). */
export function onnxModel(graph: Graph, opset = 17, producer = 'tessera-native'): Buffer {
  const g = Buffer.concat([
    ...graph.nodes.map((n, i) => bytesField(1, [node(n, i)])),
    stringField(2, graph.name),
    ...graph.initializers.map((t) => bytesField(5, [tensor(t)])),
    ...graph.inputs.map((v) => bytesField(11, [valueInfo(v)])),
    ...graph.outputs.map((v) => bytesField(12, [valueInfo(v)])),
  ]);
  return Buffer.concat([intField(1, 8), stringField(2, producer), bytesField(7, g), bytesField(8, [stringField(1, ''), intField(2, opset)])]);
}

/** An int64 initializer from numbers. */
export function int64Tensor(name: string, values: number[], dims: number[] = [values.length]): Tensor {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return { name, dataType: ONNX_INT64, dims, raw };
}

/** A float32 initializer viewing (not copying) `values`. */
export function floatTensor(name: string, values: Float32Array, dims: number[]): Tensor {
  return { name, dataType: ONNX_FLOAT, dims, raw: Buffer.from(values.buffer, values.byteOffset, values.byteLength) };
}
