// Reading and rewriting a serialized ONNX model for training-free context extension. Only what a rewrite touches is
// decoded — the graph's nodes (op, inputs, outputs, name) and initializers (name, dims, type, data) — and every other
// field is carried through byte for byte, so a rewritten model differs from the original only where it was changed.
// Protobuf wire format: each field is a varint key (field number << 3 | wire type) then its value.
import { varint } from './onnx-proto.js';

const VARINT = 0, FIXED64 = 1, BYTES = 2, FIXED32 = 5;

interface Field {
  field: number;
  wire: number;
  /** The value's bytes (for varints, the varint itself), a view into the source. */
  value: Uint8Array;
}

function readVarint(b: Uint8Array, at: number): [bigint, number] {
  let v = 0n, shift = 0n;
  for (;;) {
    if (at >= b.length) throw new RangeError('ONNX model: truncated varint');
    const byte = b[at++]!;
    v |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [v, at];
    shift += 7n;
    if (shift > 70n) throw new RangeError('ONNX model: malformed varint');
  }
}

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < b.length) {
    const [key, next] = readVarint(b, at);
    const field = Number(key >> 3n), wire = Number(key & 7n);
    let end: number, start = next;
    if (wire === VARINT) end = readVarint(b, next)[1];
    else if (wire === FIXED64) end = next + 8;
    else if (wire === FIXED32) end = next + 4;
    else if (wire === BYTES) {
      const [n, s] = readVarint(b, next);
      start = s;
      end = s + Number(n);
    } else throw new RangeError(`ONNX model: unsupported wire type ${wire}`);
    if (end > b.length) throw new RangeError('ONNX model: a field runs past the end of its message');
    out.push({ field, wire, value: b.subarray(start, end) });
    at = end;
  }
  return out;
}

function encode(fs: Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fs) {
    parts.push(varint(BigInt((f.field << 3) | f.wire)));
    if (f.wire === BYTES) parts.push(varint(BigInt(f.value.length)));
    parts.push(f.value);
  }
  return Buffer.concat(parts);
}

const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
const bytesOf = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

export interface GraphNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** The node's own fields (attributes and all), for carrying it through unchanged. */
  fields: Field[];
}

export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes (from raw_data, or re-encoded from float_data / int64_data). */
  data: Uint8Array;
}

const FLOAT = 1, INT64 = 7;

function parseNode(b: Uint8Array): GraphNode {
  const fs = fields(b);
  const strings = (n: number) => fs.filter((f) => f.field === n).map((f) => text(f.value));
  return { op: strings(4)[0] ?? '', name: strings(3)[0] ?? '', inputs: strings(1), outputs: strings(2), fields: fs };
}

function packedOrRepeated(fs: Field[], n: number, width: 4 | 8): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fs.filter((x) => x.field === n)) {
    if (f.wire === BYTES && width === 4) parts.push(f.value); // packed floats
    else if (f.wire === BYTES) {
      let at = 0;
      while (at < f.value.length) {
        const [v, next] = readVarint(f.value, at);
        const e = Buffer.alloc(8);
        e.writeBigInt64LE(BigInt.asIntN(64, v));
        parts.push(e);
        at = next;
      }
    } else if (f.wire === FIXED32) parts.push(f.value);
    else if (f.wire === VARINT) {
      const e = Buffer.alloc(8);
      e.writeBigInt64LE(BigInt.asIntN(64, readVarint(f.value, 0)[0]));
      parts.push(e);
    }
  }
  return Buffer.concat(parts);
}

function parseInitializer(b: Uint8Array): Initializer {
  const fs = fields(b);
  const dims: number[] = [];
  for (const f of fs.filter((x) => x.field === 1)) {
    if (f.wire === BYTES) {
      let at = 0;
      while (at < f.value.length) {
        const [v, next] = readVarint(f.value, at);
        dims.push(Number(v));
        at = next;
      }
    } else dims.push(Number(readVarint(f.value, 0)[0]));
  }
  const dataType = Number(readVarint(fs.find((f) => f.field === 2)?.value ?? Uint8Array.of(0), 0)[0]);
  const name = text(fs.find((f) => f.field === 8)?.value ?? new Uint8Array(0));
  const raw = fs.find((f) => f.field === 9);
  if (fs.some((f) => f.field === 13 || f.field === 14)) throw new RangeError(`ONNX model: initializer "${name}" keeps its data in an external file`);
  const data = raw ? raw.value : dataType === FLOAT ? packedOrRepeated(fs, 4, 4) : dataType === INT64 ? packedOrRepeated(fs, 7, 8) : new Uint8Array(0);
  return { name, dims, dataType, data };
}

function encodeInitializer(t: Initializer): Uint8Array {
  return encode([
    ...t.dims.map((d) => ({ field: 1, wire: VARINT, value: varint(BigInt(d)) })),
    { field: 2, wire: VARINT, value: varint(BigInt(t.dataType)) },
    { field: 8, wire: BYTES, value: bytesOf(t.name) },
    { field: 9, wire: BYTES, value: t.data },
  ]);
}

/** A model opened for rewriting: its graph's nodes and initializers, editable; everything else kept as it was. */
export class OnnxGraph {
  #model: Field[];
  #graph: Field[];
  nodes: GraphNode[];
  initializers: Map<string, Initializer>;
  readonly inputs: string[];
  readonly outputs: string[];

  constructor(model: Uint8Array) {
    this.#model = fields(model);
    const g = this.#model.find((f) => f.field === 7);
    if (!g) throw new RangeError('ONNX model: no graph (is this an ONNX file?)');
    this.#graph = fields(g.value);
    this.nodes = this.#graph.filter((f) => f.field === 1).map((f) => parseNode(f.value));
    this.initializers = new Map(this.#graph.filter((f) => f.field === 5).map((f) => parseInitializer(f.value)).map((t) => [t.name, t]));
    const names = (n: number) => this.#graph.filter((f) => f.field === n).map((f) => text(fields(f.value).find((x) => x.field === 1)?.value ?? new Uint8Array(0)));
    this.inputs = names(11);
    this.outputs = names(12);
  }

  /** Nodes that read `name`. */
  consumers(name: string): GraphNode[] {
    return this.nodes.filter((n) => n.inputs.includes(name));
  }

  /** The node that writes `name`, if any. */
  producer(name: string): GraphNode | undefined {
    return this.nodes.find((n) => n.outputs.includes(name));
  }

  /** A name not used by any value of the graph. */
  fresh(base: string): string {
    const used = new Set([...this.nodes.flatMap((n) => [...n.inputs, ...n.outputs]), ...this.initializers.keys(), ...this.inputs, ...this.outputs]);
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  /** A new node, encoded from scratch (no attributes). */
  static node(op: string, inputs: string[], outputs: string[], name: string): GraphNode {
    const fs: Field[] = [
      ...inputs.map((i) => ({ field: 1, wire: BYTES, value: bytesOf(i) })),
      ...outputs.map((o) => ({ field: 2, wire: BYTES, value: bytesOf(o) })),
      { field: 3, wire: BYTES, value: bytesOf(name) },
      { field: 4, wire: BYTES, value: bytesOf(op) },
    ];
    return { op, name, inputs, outputs, fields: fs };
  }

  /** Points `node`'s input `from` at `to` (its encoded fields follow). */
  static rewire(node: GraphNode, from: string, to: string): void {
    node.inputs = node.inputs.map((i) => (i === from ? to : i));
    let k = 0;
    node.fields = node.fields.map((f) => {
      if (f.field !== 1) return f;
      const value = bytesOf(node.inputs[k++]!);
      return { ...f, value };
    });
  }

  /** The rewritten model's bytes: nodes in their current order, initializers replaced, the rest untouched. */
  serialize(): Uint8Array {
    const graph: Field[] = [];
    let nodesWritten = false, initializersWritten = false;
    for (const f of this.#graph) {
      if (f.field === 1) {
        if (!nodesWritten) graph.push(...this.nodes.map((n) => ({ field: 1, wire: BYTES, value: encode(n.fields) })));
        nodesWritten = true;
      } else if (f.field === 5) {
        if (!initializersWritten) graph.push(...[...this.initializers.values()].map((t) => ({ field: 5, wire: BYTES, value: encodeInitializer(t) })));
        initializersWritten = true;
      } else graph.push(f);
    }
    if (!nodesWritten) graph.push(...this.nodes.map((n) => ({ field: 1, wire: BYTES, value: encode(n.fields) })));
    if (!initializersWritten) graph.push(...[...this.initializers.values()].map((t) => ({ field: 5, wire: BYTES, value: encodeInitializer(t) })));
    return encode(this.#model.map((f) => (f.field === 7 ? { ...f, value: encode(graph) } : f)));
  }
}

export const TENSOR_FLOAT = FLOAT, TENSOR_INT64 = INT64;

/** An initializer's data as float32 (a copy). */
export function floatsOf(t: Initializer): Float32Array {
  if (t.dataType !== FLOAT) throw new RangeError(`initializer "${t.name}" is not float32`);
  const copy = new Uint8Array(t.data); // its own, aligned buffer
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

/** An initializer's data as int64 numbers. */
export function int64sOf(t: Initializer): number[] {
  if (t.dataType !== INT64) throw new RangeError(`initializer "${t.name}" is not int64`);
  const b = Buffer.from(t.data);
  return Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigInt64LE(i * 8)));
}
