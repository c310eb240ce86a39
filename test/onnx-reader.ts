// Reads the few protobuf messages the ONNX node tests need (TensorProto; a model's single node and its integer
// attributes), straight from the wire format, so tests need no protobuf library.

interface Field {
  field: number;
  wire: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const field = key >> 3, wire = key & 7;
    if (wire === 0) out.push({ field, wire, varint: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ field, wire, bytes: buf.subarray(at, at + n) });
      at += n;
    } else if (wire === 5) {
      out.push({ field, wire, bytes: buf.subarray(at, at + 4) });
      at += 4;
    } else if (wire === 1) {
      out.push({ field, wire, bytes: buf.subarray(at, at + 8) });
      at += 8;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

function packedVarints(bytes: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let v = 0n, shift = 0n;
  for (const b of bytes) {
    v |= BigInt(b & 0x7f) << shift;
    if (b & 0x80) shift += 7n;
    else out.push(v), (v = 0n), (shift = 0n);
  }
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const copy = (b: Uint8Array) => new Uint8Array(b).buffer;  // a fresh buffer (a Buffer's slice() is a view)

export const ONNX_FLOAT = 1, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_BOOL = 9, ONNX_FLOAT16 = 10, ONNX_BFLOAT16 = 16;

export interface Tensor {
  name: string;
  dims: number[];
  dataType: number;
  /** FLOAT: Float32Array; FLOAT16 / BFLOAT16: Uint16Array of bits; INT64: BigInt64Array; INT32: Int32Array; BOOL: Uint8Array. */
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}

export function parseTensor(buf: Uint8Array): Tensor {
  let name = '', dataType = 0, raw: Uint8Array | undefined;
  const dims: number[] = [];
  const floats: number[] = [], int64s: bigint[] = [], int32s: number[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1) f.varint !== undefined ? dims.push(Number(f.varint)) : dims.push(...packedVarints(f.bytes!).map(Number));
    else if (f.field === 2) dataType = Number(f.varint);
    else if (f.field === 8) name = text(f.bytes!);
    else if (f.field === 9) raw = f.bytes;
    else if (f.field === 4) {
      if (f.wire === 2) floats.push(...new Float32Array(copy(f.bytes!)));
      else floats.push(new Float32Array(copy(f.bytes!))[0]!);
    } else if (f.field === 7) f.wire === 2 ? int64s.push(...packedVarints(f.bytes!)) : int64s.push(f.varint!);
    else if (f.field === 5) f.wire === 2 ? int32s.push(...packedVarints(f.bytes!).map(Number)) : int32s.push(Number(f.varint));
  }
  let data: Tensor['data'];
  if (dataType === ONNX_FLOAT) data = raw ? new Float32Array(copy(raw)) : Float32Array.from(floats);
  else if (dataType === ONNX_FLOAT16 || dataType === ONNX_BFLOAT16) {
    data = raw ? new Uint16Array(copy(raw)) : Uint16Array.from(int32s);  // halves travel in int32_data
  } else if (dataType === ONNX_INT64) data = raw ? new BigInt64Array(copy(raw)) : BigInt64Array.from(int64s.map((v) => BigInt.asIntN(64, v)));
  else if (dataType === ONNX_INT32) data = raw ? new Int32Array(copy(raw)) : Int32Array.from(int32s);
  else if (dataType === ONNX_BOOL) data = raw ? new Uint8Array(copy(raw)) : Uint8Array.from(int32s);  // bools travel in int32_data
  else throw new Error(`unsupported tensor type ${dataType}`);
  return { name, dims, dataType, data };
}

export interface NodeInfo {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** Integer and float attributes by name. */
  attributes: Record<string, number>;
}

/** The first node of a model's graph. */
export function parseFirstNode(model: Uint8Array): NodeInfo {
  const graph = fields(model).find((f) => f.field === 7)!.bytes!;
  const node = fields(graph).find((f) => f.field === 1)!.bytes!;
  const info: NodeInfo = { opType: '', domain: '', inputs: [], outputs: [], attributes: {} };
  for (const f of fields(node)) {
    if (f.field === 1) info.inputs.push(text(f.bytes!));
    else if (f.field === 2) info.outputs.push(text(f.bytes!));
    else if (f.field === 4) info.opType = text(f.bytes!);
    else if (f.field === 7) info.domain = text(f.bytes!);
    else if (f.field === 5) {
      let name = '', value = 0;
      for (const a of fields(f.bytes!)) {
        if (a.field === 1) name = text(a.bytes!);
        else if (a.field === 3) value = Number(BigInt.asIntN(64, a.varint!));
        else if (a.field === 2) value = new Float32Array(copy(a.bytes!))[0]!;
      }
      info.attributes[name] = value;
    }
  }
  return info;
}
